//! The .csv export: UTF-8 with a BOM, in one of the [`CSV_DIALECTS`] (RFC
//! 4180 by default), with the xlsx's headers and masks, and cells a
//! spreadsheet would run as formulas neutralised (OWASP CSV injection).

use std::io::Write;

use super::mask::{mask_cnpj, mask_cpf};
use super::{ExportError, out_columns};
use crate::cells::iso_date_fields;
use crate::dataset::{ColumnType, Dataset};
use xlport_contract::{CsvDialectName, one_of};

/// Streams rows into CSV (UTF-8 with BOM, comma-separated, the same masks and
/// headers as the xlsx).
pub struct CsvExport<W: Write> {
    out: csv::Writer<W>,
    dialect: &'static CsvDialect,
    kinds: Vec<ColumnType>,
    rows: u64,
    record: Vec<String>,
}

/// How a CSV export writes its cells: separator, decimal mark, dates, line
/// ends. Dialects are data: a locale is one more entry of [`CSV_DIALECTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// The name clients ask for (`csv: {"dialect": NAME}`): one of the
    /// API's [`CsvDialectName`]s.
    pub name: CsvDialectName,
    /// What it suits, for people.
    pub description: &'static str,
    pub delimiter: u8,
    /// `,` as the decimal mark (`399,00`).
    pub decimal_comma: bool,
    /// Dates as `DD/MM/YYYY` instead of ISO `YYYY-MM-DD`.
    pub day_month_year: bool,
    /// CRLF line ends (RFC 4180 §2); LF otherwise.
    pub crlf: bool,
}

/// The CSV dialects exports can be written in, one per [`CsvDialectName`]
/// and in its order; the first is the default.
/// Every one is UTF-8 with a BOM (so Excel reads the accents) and reads back
/// into the same table (xlport's import takes `;`, decimal commas and
/// `DD/MM/YYYY`).
pub const CSV_DIALECTS: &[CsvDialect] = &[
    CsvDialect {
        name: CsvDialectName::Rfc4180,
        description: "`,` between fields, `.` as decimal mark, ISO dates: scripts and US-locale tools",
        delimiter: b',',
        decimal_comma: false,
        day_month_year: false,
        crlf: false,
    },
    CsvDialect {
        name: CsvDialectName::ExcelBr,
        description: "`;` between fields, `,` as decimal mark, DD/MM/YYYY dates, CRLF: Excel and \
                      LibreOffice in Brazilian Portuguese",
        delimiter: b';',
        decimal_comma: true,
        day_month_year: true,
        crlf: true,
    },
];

impl CsvDialect {
    /// The dialect called `name`; the error lists the known ones.
    pub fn named(name: &str) -> Result<&'static CsvDialect, String> {
        CSV_DIALECTS
            .iter()
            .find(|d| d.name.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown CSV dialect `{}`: use {}",
                    name.chars().take(40).collect::<String>(),
                    one_of(&CsvDialectName::NAMES)
                )
            })
    }

    /// The default dialect (today's RFC 4180 export).
    /// The dialect of the API's name `name` (the table has one entry per
    /// name: tested below).
    pub fn of(name: CsvDialectName) -> &'static CsvDialect {
        CSV_DIALECTS
            .iter()
            .find(|d| d.name == name)
            .unwrap_or(&CSV_DIALECTS[0])
    }

    pub fn default_dialect() -> &'static CsvDialect {
        &CSV_DIALECTS[0]
    }

    /// A Postgres decimal (`-1234.50`) in this dialect.
    fn decimal<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        if self.decimal_comma {
            std::borrow::Cow::Owned(v.replacen('.', ",", 1))
        } else {
            std::borrow::Cow::Borrowed(v)
        }
    }

    /// A Postgres float (`-1234.5`, `1.5e+20`) in this dialect; `NaN` and
    /// `Infinity` as text.
    fn float<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => self.decimal(v),
            _ => neutralise_formula(v),
        }
    }

    /// A Postgres timestamp (`2026-01-02 03:04:05+00`) in this dialect: the
    /// date part as [`CsvDialect::date`] writes it, the rest as printed (the
    /// import reads both back exactly; docs/spec/datasets.md, "Column types").
    fn timestamp<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        match (v.get(..10), v.get(10..)) {
            (Some(date), Some(rest)) if self.day_month_year && iso_date_fields(date).is_some() => {
                std::borrow::Cow::Owned(format!("{}{rest}", self.date(date)))
            }
            _ => std::borrow::Cow::Borrowed(v),
        }
    }

    /// A Postgres date (`2013-05-22`) in this dialect.
    fn date<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        match iso_date_fields(v) {
            Some((year, month, day)) if self.day_month_year => {
                std::borrow::Cow::Owned(format!("{day}/{month}/{year}"))
            }
            _ => std::borrow::Cow::Borrowed(v),
        }
    }
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (OWASP CSV
/// injection); plain numbers, negative ones included, are left alone.
pub fn neutralise_formula(value: &str) -> std::borrow::Cow<'_, str> {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r', '|']);
    if risky && value.parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

impl<W: Write> CsvExport<W> {
    /// A CSV export in the default dialect ([`CsvDialect::default_dialect`]).
    pub fn new(dataset: &Dataset, out: W) -> Result<Self, ExportError> {
        Self::with_dialect(dataset, out, CsvDialect::default_dialect())
    }

    /// A CSV export in `dialect`: a UTF-8 BOM, the header, then the rows.
    pub fn with_dialect(
        dataset: &Dataset,
        mut out: W,
        dialect: &'static CsvDialect,
    ) -> Result<Self, ExportError> {
        out.write_all("\u{feff}".as_bytes())?;
        let columns = out_columns(dataset);
        let mut writer = csv::WriterBuilder::new()
            .delimiter(dialect.delimiter)
            .terminator(if dialect.crlf {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .from_writer(out);
        writer
            .write_record(columns.iter().map(|c| c.header.as_str()))
            .map_err(csv_io)?;
        Ok(CsvExport {
            out: writer,
            dialect,
            kinds: columns.iter().map(|c| c.kind).collect(),
            rows: 0,
            record: Vec::new(),
        })
    }

    pub fn write_row(
        &mut self,
        fields: &[Option<std::borrow::Cow<'_, str>>],
    ) -> Result<(), ExportError> {
        if fields.len() != self.kinds.len() {
            return Err(ExportError::Shape {
                row: self.rows + 1,
                expected: self.kinds.len(),
                got: fields.len(),
            });
        }
        self.record.clear();
        for (field, kind) in fields.iter().zip(&self.kinds) {
            let cell = match (field, kind) {
                (None, _) => String::new(),
                (Some(v), ColumnType::Cpf) => mask_cpf(v).to_string(),
                (Some(v), ColumnType::Cnpj) => mask_cnpj(v).to_string(),
                (Some(v), ColumnType::Boolean) => if v == "t" { "1" } else { "0" }.to_string(),
                (Some(v), ColumnType::Decimal) => self.dialect.decimal(v).into_owned(),
                (Some(v), ColumnType::Date) => self.dialect.date(v).into_owned(),
                (Some(v), ColumnType::Integer) => v.to_string(),
                (Some(v), ColumnType::Float) => self.dialect.float(v).into_owned(),
                (Some(v), ColumnType::Timestamp) => self.dialect.timestamp(v).into_owned(),
                (Some(v), _) => neutralise_formula(v).into_owned(),
            };
            self.record.push(cell);
        }
        self.out.write_record(&self.record).map_err(csv_io)?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> Result<W, ExportError> {
        self.out
            .into_inner()
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
    }
}

fn csv_io(e: csv::Error) -> ExportError {
    ExportError::Io(std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::{TYPED_ROWS, row, typed, up};

    #[test]
    fn formulas_are_neutralised_numbers_are_not() {
        assert_eq!(neutralise_formula("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(neutralise_formula("@cmd"), "'@cmd");
        assert_eq!(neutralise_formula("-12.50"), "-12.50");
        assert_eq!(neutralise_formula("-1+1"), "'-1+1");
        assert_eq!(neutralise_formula("plain"), "plain");
    }

    #[test]
    fn csv_export_writes_masks_flags_and_nulls() {
        let d = up();
        let mut csv = CsvExport::new(&d, Vec::new()).unwrap();
        csv.write_row(&row(
            "99099999966\tf\tt\t2013-05-22\t399.00\t-1.50\t79379491000850\t\\N\tf\tt\t\\N",
        ))
        .unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("\u{feff}CPF,PRIVATE,INCOMPLETO,DATA DA ÚLTIMA COMPRA")
        );
        assert_eq!(
            lines.next().unwrap(),
            "990.999.999-66,0,1,2013-05-22,399.00,-1.50,79.379.491/0008-50,,0,1,"
        );
    }

    #[test]
    fn the_excel_br_dialect_writes_semicolons_decimal_commas_dmy_dates_and_crlf() {
        let d = up();
        let dialect = CsvDialect::named("excel-br").unwrap();
        let mut csv = CsvExport::with_dialect(&d, Vec::new(), dialect).unwrap();
        csv.write_row(&row(
            "99099999966\tf\tt\t2013-05-22\t1234.00\t-1.50\t79379491000850\t\\N\tf\tt\t\\N",
        ))
        .unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\u{feff}CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;\
             LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA;CPF VÁLIDO;LOJA MAIS FREQUÊNTE VÁLIDA;\
             LOJA DA ÚLTIMA COMPRA VÁLIDA",
            "one spelling per column"
        );
        assert_eq!(
            lines[1],
            "990.999.999-66;0;1;22/05/2013;1234,00;-1,50;79.379.491/0008-50;;0;1;"
        );
        assert_eq!(lines[2], "", "CRLF after every record");
        assert_eq!(
            CsvDialect::named("excel-xx").unwrap_err(),
            "unknown CSV dialect `excel-xx`: use rfc4180 or excel-br"
        );
        assert_eq!(CsvDialect::default_dialect().name.as_str(), "rfc4180");
    }

    #[test]
    fn typed_columns_are_plain_numbers_timestamps_and_text_in_each_dialect() {
        let write = |dialect: &str| {
            let dialect = CsvDialect::named(dialect).unwrap();
            let mut csv = CsvExport::with_dialect(&typed(), Vec::new(), dialect).unwrap();
            for line in TYPED_ROWS {
                csv.write_row(&row(line)).unwrap();
            }
            String::from_utf8(csv.finish().unwrap()).unwrap()
        };
        assert_eq!(
            write("rfc4180"),
            "\u{feff}K,N,X,At,Id,Status,Doc\n\
             k1,42,-1.5,2026-01-02 03:04:05.5+00,0f8fad5b-d9cb-469f-a165-70867728950e,Em Trânsito,\
             \"{\"\"a\"\": 1}\"\n\
             k2,9223372036854775807,1e+20,2026-01-02 03:04:05-03:30,\
             00000000-0000-0000-0000-000000000000,paid,[1]\n\
             k3,,NaN,infinity,,,\n"
        );
        assert_eq!(
            write("excel-br"),
            "\u{feff}K;N;X;At;Id;Status;Doc\r\n\
             k1;42;-1,5;02/01/2026 03:04:05.5+00;0f8fad5b-d9cb-469f-a165-70867728950e;Em Trânsito;\
             \"{\"\"a\"\": 1}\"\r\n\
             k2;9223372036854775807;1e+20;02/01/2026 03:04:05-03:30;\
             00000000-0000-0000-0000-000000000000;paid;[1]\r\n\
             k3;;NaN;infinity;;;\r\n"
        );
        // What the excel-br dialect writes reads back as the same values.
        use crate::cells::{Cell, FloatType, TimestampRule, parse_float, parse_timestamp};
        assert_eq!(
            parse_float(&Cell::Text("-1,5"), FloatType::Double).map(|f| f.get()),
            Ok(-1.5)
        );
        assert_eq!(
            parse_timestamp(
                &Cell::Text("02/01/2026 03:04:05-03:30"),
                TimestampRule::default()
            ),
            parse_timestamp(
                &Cell::Text("2026-01-02 03:04:05-03:30"),
                TimestampRule::default()
            )
        );
        let dialect = CsvDialect::default_dialect();
        assert_eq!(dialect.float("1.5e+20"), "1.5e+20");
        assert_eq!(
            CsvDialect::of(CsvDialectName::ExcelBr).float("1.5e+20"),
            "1,5e+20"
        );
        assert_eq!(
            CsvDialect::of(CsvDialectName::ExcelBr).float("-Infinity"),
            "-Infinity"
        );
    }

    #[test]
    fn every_dialect_the_api_names_has_one_entry_in_its_order() {
        let names: Vec<CsvDialectName> = CSV_DIALECTS.iter().map(|d| d.name).collect();
        assert_eq!(names, CsvDialectName::ALL);
        assert_eq!(
            CsvDialect::default_dialect().name,
            CsvDialectName::default()
        );
    }
}
