//! End to end through `validate_row` and the COPY text: one dataset (a test
//! fixture, not shipped) using every column type and check of
//! docs/spec/datasets.md, "Column types"; a valid row's COPY line, and one
//! rejected row per reason with its message.

use super::{Cell, Reason, RowOutcome, validate_row};
use crate::dataset::Dataset;

const ORDERS: &str = r#"
[[dataset]]
name = "orders"
table = "orders"
key = "id"
timezone = "-03:00"
true_words = ["sim", "s"]
false_words = ["não", "nao", "n"]

[[dataset.column]]
name = "id"
header = "ID"
type = "integer"
min = 1

[[dataset.column]]
name = "quantity"
header = "Quantity"
type = "integer"
pg_type = "smallint"
min = 0
nullable = true

[[dataset.column]]
name = "status"
header = "Status"
type = "enum"
labels = ["pending", "Em Trânsito", "paid"]

[[dataset.column]]
name = "placed_at"
header = "Placed at"
type = "timestamp"
min = "2020-01-01 00:00"

[[dataset.column]]
name = "delivered_at"
header = "Delivered at"
type = "timestamp"
pg_type = "timestamp without time zone"
nullable = true

[[dataset.column]]
name = "reference"
header = "Reference"
type = "uuid"
nullable = true

[[dataset.column]]
name = "email"
header = "Email"
type = "text"
email = true
max_length = 40
nullable = true

[[dataset.column]]
name = "sku"
header = "SKU"
type = "text"
pattern = '[A-Z]{3}-\d{4}'
nullable = true

[[dataset.column]]
name = "country"
header = "Country"
type = "text"
one_of = ["BR", "PT"]
nullable = true

[[dataset.column]]
name = "weight"
header = "Weight"
type = "float"
pg_type = "real"
min = 0
nullable = true

[[dataset.column]]
name = "total"
header = "Total"
type = "decimal"
precision = 10
scale = 2
min = 0
max = "99999.99"
nullable = true

[[dataset.column]]
name = "shipped_on"
header = "Shipped on"
type = "date"
min = 2020-01-01
nullable = true

[[dataset.column]]
name = "gift"
header = "Gift"
type = "boolean"

[[dataset.column]]
name = "payload"
header = "Payload"
type = "json"
nullable = true

[[dataset.column]]
name = "customer"
header = "Customer"
type = "cpf"
validity_column = "customer_valid"
"#;

fn orders() -> Dataset {
    crate::Datasets::parse(ORDERS, "test")
        .unwrap()
        .get("orders")
        .unwrap()
        .clone()
}

/// A valid row, as text cells, in column order.
const ROW: [&str; 15] = [
    "1.234",
    "12",
    "EM TRANSITO",
    "02/01/2026 03:04",
    "2026-01-02T06:04:05.5Z",
    "{0F8FAD5B-D9CB-469F-A165-70867728950E}",
    "ana@example.com.br",
    "ABC-1234",
    "BR",
    "1,5",
    "1.234,56",
    "2026-01-05",
    "Sim",
    r#"{"tags": ["a\tb"], "n": 1}"#,
    "990.999.999-66",
];

fn outcome(cells: &[Cell<'_>]) -> RowOutcome {
    validate_row(&orders(), cells)
}

#[test]
fn a_valid_row_of_every_type_becomes_one_copy_line() {
    let cells: Vec<Cell<'_>> = ROW.iter().map(|s| Cell::Text(s)).collect();
    let RowOutcome::Valid(row) = outcome(&cells) else {
        panic!("{:?}", outcome(&cells));
    };
    let mut line = String::new();
    row.write_copy_line(&mut line);
    assert_eq!(
        line,
        "1234\t12\tEm Trânsito\t2026-01-02 03:04:00-03:00\t2026-01-02 03:04:05.500000\t\
         0f8fad5b-d9cb-469f-a165-70867728950e\tana@example.com.br\tABC-1234\tBR\t1.5\t1234.56\t\
         2026-01-05\tt\t{\"tags\": [\"a\\\\tb\"], \"n\": 1}\t99099999966\tf\n"
    );
    assert_eq!(row.invalid_cpf, 1);
    assert_eq!(row.key(&orders()), &super::Value::Integer(1234));

    // The same row from spreadsheet cells, and with the nullable cells NULL.
    let typed = [
        Cell::Number(1234.0),
        Cell::Number(12.0),
        Cell::Text("em trânsito"),
        Cell::DateSerial(46024.0 + 3.0 / 24.0 + 4.0 / 1440.0),
        Cell::Text("2026-01-02 03:04:05.5"),
        Cell::Text("0f8fad5b-d9cb-469f-a165-70867728950e"),
        Cell::Text(" ana@example.com.br "),
        Cell::Text("ABC-1234"),
        Cell::Text("BR"),
        Cell::Number(1.5),
        Cell::Number(1234.56),
        Cell::DateSerial(46027.0),
        Cell::Bool(true),
        Cell::Text(r#"{"tags": ["a\tb"], "n": 1}"#),
        Cell::Number(99099999966.0),
    ];
    let RowOutcome::Valid(again) = outcome(&typed) else {
        panic!("{:?}", outcome(&typed));
    };
    let mut same = String::new();
    again.write_copy_line(&mut same);
    assert_eq!(same, line);

    let mut nulls: Vec<Cell<'_>> = cells.clone();
    for i in [1, 4, 5, 6, 7, 8, 9, 10, 11, 13] {
        nulls[i] = if i % 2 == 0 {
            Cell::Empty
        } else {
            Cell::Text("NULL")
        };
    }
    let RowOutcome::Valid(row) = outcome(&nulls) else {
        panic!("{:?}", outcome(&nulls));
    };
    let mut line = String::new();
    row.write_copy_line(&mut line);
    assert_eq!(
        line,
        "1234\t\\N\tEm Trânsito\t2026-01-02 03:04:00-03:00\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\
         \\N\tt\t\\N\t99099999966\tf\n"
    );
}

#[test]
fn each_rule_rejects_its_row_with_its_reason_and_message() {
    let cases: &[(usize, &str, Reason, &str)] = &[
        (
            0,
            "1,5",
            Reason::InvalidInteger,
            "column id: \"1,5\" is not a whole number (digits, an optional sign, thousands \
             separated in groups of three)",
        ),
        (
            0,
            "0",
            Reason::OutOfRange,
            "column id: \"0\" is out of range: the column takes at least 1",
        ),
        (
            0,
            "",
            Reason::MissingValue,
            "column id: a value is required, got an empty value",
        ),
        (
            1,
            "40.000",
            Reason::OutOfRange,
            "column quantity: \"40.000\" is out of range: the column takes -32768 to 32767 \
             (smallint)",
        ),
        (
            1,
            "-1",
            Reason::OutOfRange,
            "column quantity: \"-1\" is out of range: the column takes at least 0",
        ),
        (
            2,
            "shipped",
            Reason::NotInList,
            "column status: \"shipped\" is not one of pending, Em Trânsito or paid",
        ),
        (
            3,
            "2026-13-01 10:00",
            Reason::InvalidTimestamp,
            "column placed_at: \"2026-13-01 10:00\" is not a date and time (YYYY-MM-DD \
             HH:MM[:SS] or DD/MM/YYYY HH:MM[:SS], an optional Z or offset such as -03:00)",
        ),
        (
            3,
            "2019-12-31 23:59",
            Reason::OutOfRange,
            "column placed_at: \"2019-12-31 23:59\" is out of range: the column takes at \
             least 2020-01-01 00:00:00-03:00",
        ),
        (
            5,
            "0f8fad5b",
            Reason::InvalidUuid,
            "column reference: \"0f8fad5b\" is not a UUID (8-4-4-4-12 hexadecimal digits)",
        ),
        (
            6,
            "a very long address@example-of-a-domain.com",
            Reason::TooLong,
            "column email: \"a very long address@example-of-a-domain.com\" is too long: 43 \
             characters, the limit is 40",
        ),
        (
            6,
            "ana@example",
            Reason::InvalidEmail,
            "column email: \"ana@example\" is not an email address (one @, a dot in the \
             domain, no spaces)",
        ),
        (
            7,
            "abc-1234",
            Reason::PatternMismatch,
            "column sku: \"abc-1234\" does not match the pattern [A-Z]{3}-\\d{4}",
        ),
        (
            8,
            "br",
            Reason::NotInList,
            "column country: \"br\" is not one of BR or PT",
        ),
        (
            9,
            "1,5 kg",
            Reason::InvalidNumber,
            "column weight: \"1,5 kg\" is not a number (1234.5, 1.234,5 or 1.2345e3)",
        ),
        (
            9,
            "-0,5",
            Reason::OutOfRange,
            "column weight: \"-0,5\" is out of range: the column takes at least 0",
        ),
        (
            9,
            "1e39",
            Reason::OutOfRange,
            "column weight: \"1e39\" is out of range: the column takes a real, at most \
             3.4028235e38 in magnitude",
        ),
        (
            10,
            "100.000,00",
            Reason::OutOfRange,
            "column total: \"100.000,00\" is out of range: the column takes 0.00 to 99999.99",
        ),
        (
            10,
            "R$ 5",
            Reason::InvalidDecimal,
            "column total: \"R$ 5\" is not a decimal number that fits the column",
        ),
        (
            11,
            "31/12/2019",
            Reason::OutOfRange,
            "column shipped_on: \"31/12/2019\" is out of range: the column takes at least \
             2020-01-01",
        ),
        (
            12,
            "talvez",
            Reason::InvalidFlag,
            "column gift: \"talvez\" is not a flag (0, 1, true, false, sim, s, não, nao or n)",
        ),
        (
            13,
            "{\"a\": }",
            Reason::InvalidJson,
            "column payload: \"{\\\"a\\\": }\" is not valid JSON: expected value at line 1 \
             column 7",
        ),
        (
            14,
            "12.3",
            Reason::MalformedCpf,
            "column customer: \"12.3\" is not an 11-digit CPF",
        ),
    ];
    for &(i, text, reason, message) in cases {
        let mut cells: Vec<Cell<'_>> = ROW.iter().map(|s| Cell::Text(s)).collect();
        cells[i] = Cell::Text(text);
        let RowOutcome::Rejected(rejection) = outcome(&cells) else {
            panic!("{text}: {:?}", outcome(&cells));
        };
        assert_eq!(rejection.reason, reason, "{text}");
        assert_eq!(rejection.column, orders().columns[i].name, "{text}");
        assert_eq!(rejection.value, text);
        assert_eq!(rejection.message(), message, "{text}");
    }
    // Every new reason is among the cases.
    for reason in [
        Reason::InvalidInteger,
        Reason::OutOfRange,
        Reason::InvalidNumber,
        Reason::InvalidTimestamp,
        Reason::InvalidUuid,
        Reason::NotInList,
        Reason::InvalidJson,
        Reason::TooLong,
        Reason::PatternMismatch,
        Reason::InvalidEmail,
    ] {
        assert!(cases.iter().any(|c| c.2 == reason), "{reason}");
    }
}

#[test]
fn a_rejection_carries_what_the_column_takes_in_its_json() {
    let mut cells: Vec<Cell<'_>> = ROW.iter().map(|s| Cell::Text(s)).collect();
    cells[1] = Cell::Number(40000.0);
    let RowOutcome::Rejected(rejection) = outcome(&cells) else {
        panic!("{:?}", outcome(&cells));
    };
    assert_eq!(
        serde_json::to_value(&rejection).unwrap(),
        serde_json::json!({
            "reason": "out_of_range",
            "column": "quantity",
            "value": "40000",
            "expected": "-32768 to 32767 (smallint)"
        })
    );
}
