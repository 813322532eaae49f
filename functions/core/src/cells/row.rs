//! Row validation (docs/spec/user_purchase.md, "Cell rules"; for the types
//! of any other table docs/spec/datasets.md, "Column types"): each cell
//! under its column's rules, in table order, the first failing column
//! deciding the row's [`Reason`]; what a rejected row tells the user, and
//! what a valid one carries (values, check-digit flags, counts).

use serde::Serialize;

use super::cpf_cnpj::{ShapeError, parse_document};
use super::{
    Cell, Float, Reason, Refusal, Value, parse_boolean, parse_date, parse_decimal, parse_float,
    parse_integer, parse_json, parse_label, parse_timestamp, parse_uuid,
};
use crate::dataset::{Column, ColumnType, Dataset};

/// Text columns keep the cell's text, trimmed. U+0000 is dropped: Postgres
/// text cannot hold it, and a `COPY` refusing it would fail the whole batch.
fn text_value(cell: &Cell<'_>) -> String {
    cell.display_text().trim().replace('\0', "")
}

/// Why a row was rejected, with what to show the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub reason: Reason,
    /// The failing column's name (empty for `wrong_column_count`).
    pub column: String,
    /// The failing cell's display text (see [`Cell::display_text`]).
    pub value: String,
    /// What the column takes, for the rules with a limit or a list
    /// (docs/spec/datasets.md, "Column types"): `-32768 to 32767
    /// (smallint)`, `paid, shipped or cancelled`. Absent for the
    /// user_purchase rules, whose messages say it all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl Rejection {
    /// A row whose fields cannot be aligned with the header: there is no
    /// single cell to blame, so the value says what was counted.
    pub fn wrong_column_count(misaligned: crate::decode::Misaligned) -> Self {
        use crate::decode::{Misaligned, REPORT_RECORD_HEADER};
        Self {
            reason: Reason::WrongColumnCount,
            column: String::new(),
            value: match misaligned {
                Misaligned::Count { found, expected } => {
                    format!("{found} fields, the header has {expected}")
                }
                Misaligned::ReportRecord => format!(
                    "only its record in `{REPORT_RECORD_HEADER}`: fill in the row's cells from it"
                ),
            },
            expected: None,
        }
    }

    /// One line for a person: the column, the value, what was expected, e.g.
    /// `column cpf: "12.3" is not an 11-digit CPF`, and the column's limit or
    /// list when it has one (`column qty: "70000" is out of range: the column
    /// takes -32768 to 32767 (smallint)`). Long values are cut.
    pub fn message(&self) -> String {
        let column = &self.column;
        let value = shown(&self.value);
        let expected = self.expected.as_deref();
        match self.reason {
            Reason::MissingCpf => format!("column {column}: a CPF is required, got {value}"),
            Reason::MalformedCpf => format!("column {column}: {value} is not an 11-digit CPF"),
            Reason::InvalidFlag => match expected {
                Some(words) => format!("column {column}: {value} is not a flag ({words})"),
                None => format!("column {column}: {value} is not a flag (0, 1, true or false)"),
            },
            Reason::InvalidDate => {
                format!("column {column}: {value} is not a date (YYYY-MM-DD or DD/MM/YYYY)")
            }
            Reason::InvalidDecimal => {
                format!("column {column}: {value} is not a decimal number that fits the column")
            }
            Reason::MalformedCnpj => {
                format!("column {column}: {value} is not a 14-character CNPJ")
            }
            Reason::MissingValue => format!("column {column}: a value is required, got {value}"),
            Reason::WrongColumnCount => format!("row has {}", self.value),
            Reason::DuplicateKey => format!("column {column}: duplicate key {value}"),
            Reason::InvalidInteger => format!(
                "column {column}: {value} is not a whole number (digits, an optional sign, \
                 thousands separated in groups of three)"
            ),
            Reason::OutOfRange => match expected {
                Some(range) => {
                    format!("column {column}: {value} is out of range: the column takes {range}")
                }
                None => format!("column {column}: {value} is out of range for the column"),
            },
            Reason::InvalidNumber => {
                format!("column {column}: {value} is not a number (1234.5, 1.234,5 or 1.2345e3)")
            }
            Reason::InvalidTimestamp => format!(
                "column {column}: {value} is not a date and time (YYYY-MM-DD HH:MM[:SS] or \
                 DD/MM/YYYY HH:MM[:SS], an optional Z or offset such as -03:00)"
            ),
            Reason::InvalidUuid => {
                format!("column {column}: {value} is not a UUID (8-4-4-4-12 hexadecimal digits)")
            }
            Reason::NotInList => match expected {
                Some(list) => format!("column {column}: {value} is not one of {list}"),
                None => format!("column {column}: {value} is not one of the column's values"),
            },
            Reason::InvalidJson => match expected {
                Some(why) => format!("column {column}: {value} is not valid JSON: {why}"),
                None => format!("column {column}: {value} is not valid JSON"),
            },
            Reason::TooLong => match expected {
                Some(length) => format!("column {column}: {value} is too long: {length}"),
                None => format!("column {column}: {value} is too long for the column"),
            },
            Reason::PatternMismatch => match expected {
                Some(pattern) => {
                    format!("column {column}: {value} does not match the pattern {pattern}")
                }
                None => format!("column {column}: {value} does not match the column's pattern"),
            },
            Reason::InvalidEmail => format!(
                "column {column}: {value} is not an email address (one @, a dot in the \
                 domain, no spaces)"
            ),
        }
    }
}

/// A value quoted for a message, cut to a readable length; blanks say so.
fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    if value.trim().is_empty() {
        return "an empty value".to_owned();
    }
    format!("{:?}", crate::job::clip(value, MAX_CHARS + 1))
}

/// A row that passed every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    /// One per dataset column, in table order.
    pub values: Vec<Value>,
    /// One per validity column, in [`Dataset::validity_columns`] order: whether
    /// the document's check digits hold, `None` when the document is NULL.
    pub validity: Vec<Option<bool>>,
    /// CPF cells whose check digits fail (kept, flagged, counted).
    pub invalid_cpf: u32,
    /// CNPJ cells whose check digits fail, once per failing cell.
    pub invalid_cnpj: u32,
}

impl ValidRow {
    /// The value of the dataset's key column, by which duplicates are found.
    pub fn key(&self, dataset: &Dataset) -> &Value {
        static NULL: Value = Value::Null;
        self.values.get(dataset.key_index()).unwrap_or(&NULL)
    }
}

/// What the rules make of one data row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// Every cell blank: skipped silently and not counted.
    Skip,
    Rejected(Rejection),
    Valid(ValidRow),
}

/// Applies the cell rules to one row. `cells[i]` is the cell for
/// `dataset.columns[i]` (the reader maps headers to columns); missing trailing
/// cells are empty and extra ones ignored. The first failing column in table
/// order decides the reason, so a row is reported the same whatever else is
/// wrong with it.
pub fn validate_row(dataset: &Dataset, cells: &[Cell<'_>]) -> RowOutcome {
    let cell_at = |i: usize| cells.get(i).copied().unwrap_or(Cell::Empty);
    if (0..dataset.columns.len()).all(|i| cell_at(i).is_blank()) {
        return RowOutcome::Skip;
    }
    let mut row = ValidRow {
        values: Vec::with_capacity(dataset.columns.len()),
        validity: Vec::new(),
        invalid_cpf: 0,
        invalid_cnpj: 0,
    };
    for (i, column) in dataset.columns.iter().enumerate() {
        let cell = cell_at(i);
        let (value, check_digits_ok) = match parse_cell(column, &cell) {
            Ok(parsed) => parsed,
            Err(refusal) => {
                return RowOutcome::Rejected(Rejection {
                    reason: refusal.reason,
                    column: column.name.clone(),
                    value: cell.display_text().into_owned(),
                    expected: refusal.expected,
                });
            }
        };
        if check_digits_ok == Some(false) {
            match column.kind {
                ColumnType::Cpf => row.invalid_cpf += 1,
                ColumnType::Cnpj => row.invalid_cnpj += 1,
                _ => {}
            }
        }
        if column.validity_column.is_some() {
            row.validity.push(check_digits_ok);
        }
        row.values.push(value);
    }
    RowOutcome::Valid(row)
}

/// One cell under its column's rules: the value, and for a non-NULL cpf/cnpj
/// whether its check digits hold. The type's rule first, then the checks the
/// column adds (docs/spec/datasets.md, "Column types").
fn parse_cell(column: &Column, cell: &Cell<'_>) -> Result<(Value, Option<bool>), Refusal> {
    if cell.is_null() {
        return match (column.nullable, column.kind) {
            (true, _) => Ok((Value::Null, None)),
            (false, ColumnType::Cpf) => Err(Reason::MissingCpf.into()),
            (false, ColumnType::Boolean) => Err(Reason::InvalidFlag.into()),
            (false, _) => Err(Reason::MissingValue.into()),
        };
    }
    let rules = &column.rules;
    let (value, check_digits_ok) = match column.kind {
        ColumnType::Cpf => parse_document(cell, 11, false)
            .map(|(doc, ok)| (Value::Text(doc), Some(ok)))
            .map_err(|ShapeError| Reason::MalformedCpf)?,
        ColumnType::Cnpj => parse_document(cell, 14, true)
            .map(|(doc, ok)| (Value::Text(doc), Some(ok)))
            .map_err(|ShapeError| Reason::MalformedCnpj)?,
        ColumnType::Boolean => (Value::Bool(parse_boolean(cell, &rules.words)?), None),
        ColumnType::Date => (Value::Date(parse_date(cell)?), None),
        // Dataset::validate guarantees both; the fallback (numeric(38,0))
        // only keeps this total for hand-built datasets.
        ColumnType::Decimal => {
            let decimal = parse_decimal(
                cell,
                column.precision.unwrap_or(38),
                column.scale.unwrap_or(0),
            )?;
            (Value::Decimal(decimal), None)
        }
        ColumnType::Text => (Value::Text(text_value(cell)), None),
        ColumnType::Integer => (Value::Integer(parse_integer(cell, rules.integer)?), None),
        ColumnType::Float => {
            let float: Float = parse_float(cell, rules.float)?;
            (Value::Float(float), None)
        }
        ColumnType::Timestamp => (
            Value::Timestamp(parse_timestamp(cell, rules.timestamp)?),
            None,
        ),
        ColumnType::Uuid => (Value::Text(parse_uuid(cell)?), None),
        ColumnType::Enum => (Value::Text(parse_label(cell, &rules.labels)?), None),
        ColumnType::Json => (Value::Text(parse_json(cell, rules.json)?), None),
    };
    // Most columns declare no check (user_purchase's none): skip the pass.
    if !rules.checks.is_empty() {
        rules.checks.apply(&value)?;
    }
    Ok((value, check_digits_ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datasets;

    fn user_purchase() -> Dataset {
        Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    fn outcome(cells: &[Cell<'_>]) -> RowOutcome {
        validate_row(&user_purchase(), cells)
    }

    fn rejected(cells: &[Cell<'_>]) -> (Reason, String, String) {
        match outcome(cells) {
            RowOutcome::Rejected(r) => (r.reason, r.column, r.value),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn valid(cells: &[Cell<'_>]) -> ValidRow {
        match outcome(cells) {
            RowOutcome::Valid(row) => row,
            other => panic!("expected a valid row, got {other:?}"),
        }
    }

    fn copy_line(row: &ValidRow) -> String {
        let mut s = String::new();
        row.write_copy_line(&mut s);
        s
    }

    const SPEC_ROW: [Cell<'static>; 8] = [
        Cell::Text("990.999.999-66"),
        Cell::Text("0"),
        Cell::Text("0"),
        Cell::Text("2013-05-22"),
        Cell::Text("399,00"),
        Cell::Text("399,00"),
        Cell::Text("79.379.491/0008-50"),
        Cell::Text("79.379.491/0008-50"),
    ];

    #[test]
    fn the_spec_example_rows() {
        let row = valid(&SPEC_ROW);
        assert_eq!(row.invalid_cpf, 1);
        assert_eq!(row.invalid_cnpj, 0);
        assert_eq!(row.validity, [Some(false), Some(true), Some(true)]);
        assert_eq!(
            copy_line(&row),
            "99099999966\tf\tf\t2013-05-22\t399.00\t399.00\t79379491000850\t79379491000850\tf\tt\tt\n"
        );
        let ds = user_purchase();
        assert_eq!(row.key(&ds).as_text(), Some("99099999966"));
        assert_eq!(
            row.values.len() + row.validity.len(),
            ds.stored_columns().len()
        );

        let row = valid(&[
            Cell::Text("041.091.641-25"),
            Cell::Text("0"),
            Cell::Text("0"),
            Cell::Text("NULL"),
            Cell::Text("NULL"),
            Cell::Text("NULL"),
            Cell::Text("NULL"),
            Cell::Text("NULL"),
        ]);
        assert_eq!((row.invalid_cpf, row.invalid_cnpj), (0, 0));
        assert_eq!(row.validity, [Some(true), None, None]);
        assert_eq!(
            copy_line(&row),
            "04109164125\tf\tf\t\\N\t\\N\t\\N\t\\N\t\\N\tt\t\\N\t\\N\n"
        );
    }

    #[test]
    fn xlsx_typed_cells_make_the_same_row() {
        let row = valid(&[
            Cell::Number(99099999966.0),
            Cell::Bool(false),
            Cell::Number(0.0),
            Cell::DateSerial(41416.0),
            Cell::Number(399.0),
            Cell::Number(399.0),
            Cell::Number(79379491000850.0),
            Cell::Text("79.379.491/0008-50"),
        ]);
        assert_eq!(row, valid(&SPEC_ROW));
    }

    #[test]
    fn blank_rows_are_skipped_but_null_is_content() {
        assert_eq!(outcome(&[]), RowOutcome::Skip);
        assert_eq!(outcome(&[Cell::Empty; 8]), RowOutcome::Skip);
        assert_eq!(
            outcome(&[Cell::Text(" "), Cell::Text("\t"), Cell::Empty]),
            RowOutcome::Skip
        );
        // Cells beyond the known columns do not count.
        let mut cells = vec![Cell::Empty; 8];
        cells.push(Cell::Text("extra"));
        assert_eq!(outcome(&cells), RowOutcome::Skip);
        assert_eq!(
            rejected(&[Cell::Text("NULL")]),
            (Reason::MissingCpf, "cpf".into(), "NULL".into())
        );
        assert_eq!(
            rejected(&[Cell::Empty, Cell::Text("1")]),
            (Reason::MissingCpf, "cpf".into(), "".into())
        );
    }

    #[test]
    fn missing_trailing_cells_are_empty() {
        let row = valid(&SPEC_ROW[..3]);
        assert_eq!(
            row.values[3..],
            [
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
        assert_eq!(row.validity, [Some(false), None, None]);
        assert_eq!(row.invalid_cnpj, 0);
    }

    #[test]
    fn each_column_type_names_its_reason() {
        let with = |i: usize, cell: Cell<'static>| {
            let mut cells = SPEC_ROW.to_vec();
            cells[i] = cell;
            rejected(&cells)
        };
        let cases = [
            (0, Cell::Text("12.3"), Reason::MalformedCpf, "cpf"),
            (0, Cell::Text(" null "), Reason::MissingCpf, "cpf"),
            (0, Cell::Empty, Reason::MissingCpf, "cpf"),
            (1, Cell::Text("yes"), Reason::InvalidFlag, "private"),
            (1, Cell::Empty, Reason::InvalidFlag, "private"),
            (2, Cell::Text("NULL"), Reason::InvalidFlag, "incompleto"),
            (
                3,
                Cell::Text("2013-02-30"),
                Reason::InvalidDate,
                "data_ultima_compra",
            ),
            (
                3,
                Cell::Number(41416.0),
                Reason::InvalidDate,
                "data_ultima_compra",
            ),
            (
                4,
                Cell::Text("R$ 399,00"),
                Reason::InvalidDecimal,
                "ticket_medio",
            ),
            (
                5,
                Cell::Error("#DIV/0!"),
                Reason::InvalidDecimal,
                "ticket_ultima_compra",
            ),
            (
                6,
                Cell::Text("79.379.491/0008"),
                Reason::MalformedCnpj,
                "loja_mais_frequente",
            ),
            (
                7,
                Cell::Text("#"),
                Reason::MalformedCnpj,
                "loja_ultima_compra",
            ),
        ];
        for (i, cell, reason, column) in cases {
            let (got, col, value) = with(i, cell);
            assert_eq!((got, col.as_str()), (reason, column), "{cell:?}");
            assert_eq!(value, cell.display_text());
        }
    }

    #[test]
    fn the_first_failing_column_decides() {
        let mut cells = SPEC_ROW.to_vec();
        cells[7] = Cell::Text("x");
        cells[4] = Cell::Text("x");
        cells[2] = Cell::Text("x");
        assert_eq!(rejected(&cells).0, Reason::InvalidFlag);
        assert_eq!(rejected(&cells).1, "incompleto");
        cells[0] = Cell::Text("x");
        assert_eq!(rejected(&cells).0, Reason::MalformedCpf);
    }

    #[test]
    fn invalid_cnpj_counts_each_failing_cell() {
        let mut cells = SPEC_ROW.to_vec();
        cells[0] = Cell::Text("041.091.641-25");
        cells[6] = Cell::Text("79.379.491/0008-51");
        cells[7] = Cell::Text("11.111.111/1111-11");
        let row = valid(&cells);
        assert_eq!((row.invalid_cpf, row.invalid_cnpj), (0, 2));
        assert_eq!(row.validity, [Some(true), Some(false), Some(false)]);
    }

    /// A dataset with a text key and one column `c` of the given type.
    fn one_column_dataset(kind: &str, nullable: bool) -> Dataset {
        let decimal = match kind {
            "decimal" => "precision = 14\nscale = 2",
            "enum" => "labels = [\"a\"]",
            _ => "",
        };
        let text = format!(
            r#"
            [[dataset]]
            name = "t"
            table = "t"
            key = "k"
            [[dataset.column]]
            name = "k"
            header = "K"
            type = "text"
            [[dataset.column]]
            name = "c"
            header = "C"
            type = "{kind}"
            nullable = {nullable}
            {decimal}
            "#
        );
        Datasets::parse(&text, "inline")
            .unwrap()
            .get("t")
            .unwrap()
            .clone()
    }

    #[test]
    fn null_handling_per_type_and_nullability() {
        let run = |kind: &str, nullable: bool, cell: Cell<'_>| {
            validate_row(
                &one_column_dataset(kind, nullable),
                &[Cell::Text("key"), cell],
            )
        };
        for kind in xlport_contract::ColumnType::NAMES {
            for cell in [Cell::Empty, Cell::Text("  "), Cell::Text("null")] {
                let RowOutcome::Valid(row) = run(kind, true, cell) else {
                    panic!("{kind} nullable {cell:?}");
                };
                assert_eq!(row.values[1], Value::Null);
                let RowOutcome::Rejected(r) = run(kind, false, cell) else {
                    panic!("{kind} not nullable {cell:?}");
                };
                let want = match kind {
                    "cpf" => Reason::MissingCpf,
                    "boolean" => Reason::InvalidFlag,
                    _ => Reason::MissingValue,
                };
                assert_eq!(r.reason, want, "{kind} {cell:?}");
                assert_eq!(r.column, "c");
            }
        }
    }

    #[test]
    fn text_columns_keep_the_trimmed_text() {
        let ds = one_column_dataset("text", false);
        let value = |cell: Cell<'_>| match validate_row(&ds, &[Cell::Text("k"), cell]) {
            RowOutcome::Valid(row) => row.values[1].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value(Cell::Text("  a\tb  ")), Value::Text("a\tb".into()));
        assert_eq!(value(Cell::Text("a\0b")), Value::Text("ab".into()));
        assert_eq!(
            value(Cell::Number(705.6900000000002)),
            Value::Text("705.6900000000002".into())
        );
        assert_eq!(value(Cell::Bool(true)), Value::Text("TRUE".into()));
        assert_eq!(value(Cell::Error("#N/A")), Value::Text("#N/A".into()));
        assert_eq!(value(Cell::Text("NULLS")), Value::Text("NULLS".into()));
    }

    #[test]
    fn rejection_messages_name_column_and_value() {
        let r = |reason, value: &str| {
            Rejection {
                reason,
                column: "cpf".into(),
                value: value.into(),
                expected: None,
            }
            .message()
        };
        assert_eq!(
            r(Reason::MalformedCpf, "12.3"),
            r#"column cpf: "12.3" is not an 11-digit CPF"#
        );
        assert_eq!(
            r(Reason::MissingCpf, ""),
            "column cpf: a CPF is required, got an empty value"
        );
        assert_eq!(
            r(Reason::MissingCpf, "NULL"),
            r#"column cpf: a CPF is required, got "NULL""#
        );
        assert_eq!(
            r(Reason::InvalidFlag, "a\"b"),
            r#"column cpf: "a\"b" is not a flag (0, 1, true or false)"#
        );
        let long = r(Reason::InvalidDecimal, &"9".repeat(1000));
        assert!(long.len() < 140, "{long}");
        assert!(long.contains('…'), "{long}");
        assert_eq!(
            Rejection::wrong_column_count(crate::decode::Misaligned::Count {
                found: 9,
                expected: 8
            })
            .message(),
            "row has 9 fields, the header has 8"
        );
        for reason in [
            Reason::InvalidDate,
            Reason::MalformedCnpj,
            Reason::MissingValue,
            Reason::DuplicateKey,
        ] {
            let m = r(reason, "x");
            assert!(m.starts_with("column cpf: ") && m.contains("\"x\""), "{m}");
        }
        // The rules with a limit or a list, built without one (the exact
        // messages with one are cells::every_type's).
        for (reason, want) in [
            (Reason::OutOfRange, "is out of range for the column"),
            (Reason::NotInList, "is not one of the column's values"),
            (Reason::InvalidJson, "is not valid JSON"),
            (Reason::TooLong, "is too long for the column"),
            (
                Reason::PatternMismatch,
                "does not match the column's pattern",
            ),
        ] {
            assert_eq!(r(reason, "x"), format!("column cpf: \"x\" {want}"));
        }
    }

    #[test]
    fn rejection_serializes_for_reports() {
        let json = serde_json::to_value(Rejection {
            reason: Reason::InvalidDate,
            column: "d".into(),
            value: "x".into(),
            expected: None,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reason": "invalid_date", "column": "d", "value": "x"})
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn rows_never_panic(cells in proptest::collection::vec(
            prop_oneof![
                Just(String::new()),
                "[ -~]{0,20}",
                any::<String>(),
            ],
            0..12,
        )) {
            let ds = crate::Datasets::builtin().unwrap().get("user_purchase").unwrap().clone();
            let cells: Vec<Cell<'_>> = cells.iter().map(|s| Cell::Text(s)).collect();
            if let RowOutcome::Valid(row) = validate_row(&ds, &cells) {
                let mut line = String::new();
                row.write_copy_line(&mut line);
                prop_assert_eq!(line.matches('\t').count(), ds.stored_columns().len() - 1);
            }
        }
    }
}
