//! Cell rules (docs/spec/user_purchase.md, "Cell rules"): how one cell read
//! from any file format becomes a typed value ready for Postgres `COPY`, or the
//! reason its row is rejected.
//!
//! Readers (xlsx, csv, whitespace text) only translate what they read into
//! [`Cell`]s; every decision about what is acceptable lives here, per column
//! type, so the formats cannot drift apart and every dataset declared in
//! `datasets.toml` gets the same rules as `user_purchase`.
//!
//! The column types of any other dataset are docs/spec/datasets.md, "Column
//! types": the same shapes, one more module per type or check.
//!
//! The shapes every rule shares live here ([`Cell`], [`Value`], [`Reason`],
//! [`Refusal`]) with the flag rule; the other rules have a module each:
//! - `cpf_cnpj`: tax documents, their shapes and mod-11 check digits;
//! - `date`: dates, as text or as a 1900-system serial;
//! - `decimal`: exact decimals for `numeric(precision, scale)`;
//! - `integer`: whole numbers within `smallint`, `integer` or `bigint`;
//! - `float`: `real` and `double precision` numbers;
//! - `timestamp`: dates with a time of day, with or without an offset;
//! - `uuid`: UUIDs in their 36-character form;
//! - `labels`: enum labels and declared boolean words;
//! - `json`: text that parses as JSON;
//! - `checks`: what a column may add to its type (`max_length`, `min`,
//!   `max`, `pattern`, `email`, `one_of`);
//! - `row`: a whole row checked column by column, and why it is rejected;
//! - `copy_text`: accepted values and rows in `COPY ... (FORMAT text)` form.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

mod checks;
mod copy_text;
mod cpf_cnpj;
mod date;
mod decimal;
mod float;
mod integer;
mod json;
mod labels;
mod row;
mod timestamp;
mod uuid;

#[cfg(test)]
mod every_type;
#[cfg(test)]
mod test_support;

pub use checks::{Checks, Limit, Pattern, is_email};
pub use cpf_cnpj::{
    ShapeError, cnpj_check_digits, cnpj_check_digits_valid, cpf_check_digits,
    cpf_check_digits_valid, parse_document,
};
pub use date::{iso_date_fields, parse_date};
pub use decimal::{Decimal, parse_decimal};
pub use float::{Float, FloatType, parse_float};
pub use integer::{IntegerType, parse_integer};
pub use json::{JsonType, parse_json};
pub use labels::{FlagWords, Labels, label_key, parse_boolean, parse_label};
pub use row::{Rejection, RowOutcome, ValidRow, validate_row};
pub use timestamp::{Timestamp, TimestampRule, parse_timestamp, parse_zone, timestamp_fields};
pub use uuid::parse_uuid;

/// One cell as a reader found it, before any rule is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Nothing: an empty field, a blank xlsx cell, a formula with no cached value.
    Empty,
    /// A csv/text field or an xlsx string cell, exactly as read (untrimmed).
    Text(&'a str),
    /// An xlsx numeric cell whose number format is not a date format.
    Number(f64),
    /// An xlsx date cell, or a numeric cell with a date number format, as a
    /// serial in the **1900** date system. Readers of a 1904-system workbook add
    /// 1462 (the distance between the two systems' day zero) before handing it
    /// over, so the rules here only know one calendar.
    DateSerial(f64),
    /// An xlsx boolean cell.
    Bool(bool),
    /// A formula's cached error, such as `#DIV/0!`: a value like any other,
    /// treated as the text it shows.
    Error(&'a str),
}

impl<'a> Cell<'a> {
    /// The cell's text as the spec defines it, for error reports and messages:
    /// text as held, numbers as stored (shortest text that reads back as the
    /// same double, never in exponent form, integers without `.0`: `399`,
    /// `705.6900000000002`), date serials as their number, booleans as
    /// `TRUE`/`FALSE`, errors as their text.
    pub fn display_text(&self) -> Cow<'a, str> {
        match *self {
            Cell::Empty => Cow::Borrowed(""),
            Cell::Text(s) | Cell::Error(s) => Cow::Borrowed(s),
            Cell::Number(n) | Cell::DateSerial(n) => Cow::Owned(number_text(n)),
            Cell::Bool(true) => Cow::Borrowed("TRUE"),
            Cell::Bool(false) => Cow::Borrowed("FALSE"),
        }
    }

    /// Empty or whitespace-only: such cells do not make a row count. `NULL` is
    /// content, not blank.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// Blank, or the text `NULL` in any case: SQL NULL where null is allowed.
    fn is_null(&self) -> bool {
        self.is_blank() || matches!(self, Cell::Text(s) if s.trim().eq_ignore_ascii_case("NULL"))
    }
}

/// Rust's `Display` for `f64` is the shortest text that reads back as the same
/// double and never uses an exponent: the closest a reader that parsed the
/// file's number can get to "the number as stored in the file" (a file may
/// store more digits than a double tells apart, e.g. `705.6900000000001` is the
/// double 705.69).
fn number_text(n: f64) -> String {
    n.to_string()
}

/// A parsed, typed value, ready for Postgres.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    /// cpf, cnpj, text, and the types stored as their normalised text: uuid
    /// (lower case), enum (the label as declared), json (as written).
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    Decimal(Decimal),
    /// An `integer` column's value (docs/spec/datasets.md, "Column types").
    Integer(i64),
    /// A `float` column's value (docs/spec/datasets.md, "Column types").
    Float(Float),
    /// A `timestamp` column's value (docs/spec/datasets.md, "Column types").
    Timestamp(Timestamp),
}

impl Value {
    /// The value's text, when it is text (cpf, cnpj and text columns).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Why a row is rejected: the keys of the per-reason counts and of the error
/// report, hence stable snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A non-nullable cpf column is empty or `NULL`.
    MissingCpf,
    /// A cpf is not 11 digits once separators are removed.
    MalformedCpf,
    /// A boolean is not `0`/`1`/`true`/`false`/an Excel boolean (empty included).
    InvalidFlag,
    InvalidDate,
    /// Not a decimal in an accepted notation, or beyond the column's precision.
    InvalidDecimal,
    /// A cnpj is not 14 letters or digits once separators are removed.
    MalformedCnpj,
    /// A non-nullable column of any other type is empty or `NULL`.
    MissingValue,
    /// A text/csv row has more or fewer fields than the header.
    WrongColumnCount,
    /// The conflict policy `reject` met a key already seen.
    DuplicateKey,
    /// An `integer` cell is not a whole number (docs/spec/datasets.md,
    /// "Column types").
    InvalidInteger,
    /// A number, date or timestamp beyond its Postgres type or the column's
    /// `min`/`max` (docs/spec/datasets.md, "Column types").
    OutOfRange,
    /// A `float` cell is not a number (docs/spec/datasets.md, "Column types").
    InvalidNumber,
    /// A `timestamp` cell is not a date and time (docs/spec/datasets.md,
    /// "Column types").
    InvalidTimestamp,
    /// A `uuid` cell is not a UUID (docs/spec/datasets.md, "Column types").
    InvalidUuid,
    /// Not one of an `enum` column's labels or a text column's `one_of`
    /// (docs/spec/datasets.md, "Column types").
    NotInList,
    /// A `json` cell does not parse as JSON (docs/spec/datasets.md, "Column
    /// types").
    InvalidJson,
    /// Text longer than the column's `max_length` (docs/spec/datasets.md,
    /// "Column types").
    TooLong,
    /// Text the column's `pattern` does not match as a whole
    /// (docs/spec/datasets.md, "Column types").
    PatternMismatch,
    /// Not an email address by the column's `email` check
    /// (docs/spec/datasets.md, "Column types").
    InvalidEmail,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingCpf => "missing_cpf",
            Reason::MalformedCpf => "malformed_cpf",
            Reason::InvalidFlag => "invalid_flag",
            Reason::InvalidDate => "invalid_date",
            Reason::InvalidDecimal => "invalid_decimal",
            Reason::MalformedCnpj => "malformed_cnpj",
            Reason::MissingValue => "missing_value",
            Reason::WrongColumnCount => "wrong_column_count",
            Reason::DuplicateKey => "duplicate_key",
            Reason::InvalidInteger => "invalid_integer",
            Reason::OutOfRange => "out_of_range",
            Reason::InvalidNumber => "invalid_number",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::InvalidUuid => "invalid_uuid",
            Reason::NotInList => "not_in_list",
            Reason::InvalidJson => "invalid_json",
            Reason::TooLong => "too_long",
            Reason::PatternMismatch => "pattern_mismatch",
            Reason::InvalidEmail => "invalid_email",
        }
    }
}

/// A cell a rule refused: the row's [`Reason`], and for the rules with a
/// limit or a list (docs/spec/datasets.md, "Column types") what the column
/// takes, for the rejection's message (`-32768 to 32767 (smallint)`, `paid,
/// shipped or cancelled`, `255 characters`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why the row is rejected.
    pub reason: Reason,
    /// What the column takes, as people read it; `None` when the reason
    /// says it all.
    pub expected: Option<String>,
}

impl Refusal {
    /// Refused for `reason`, the column taking `expected`.
    pub fn new(reason: Reason, expected: impl Into<String>) -> Self {
        Refusal {
            reason,
            expected: Some(expected.into()),
        }
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        Refusal {
            reason,
            expected: None,
        }
    }
}

/// Items as a choice people read, for messages: `a`, `a or b`, `a, b or c`;
/// past ten, the first ten and how many there are in all.
pub(crate) fn listed(items: &[String]) -> String {
    const SHOWN: usize = 10;
    let names: Vec<&str> = items.iter().take(SHOWN).map(String::as_str).collect();
    if items.len() > SHOWN {
        format!("{}, … ({} in all)", names.join(", "), items.len())
    } else {
        xlport_contract::one_of(&names)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A boolean: `0`/`1`, `true`/`false` in any case (trimmed), numeric 0 or 1,
/// Excel booleans. Everything else, empty and `NULL` included, is
/// `invalid_flag`: a flag nobody filled in is not silently false.
pub fn parse_flag(cell: &Cell<'_>) -> Result<bool, Reason> {
    match *cell {
        Cell::Bool(b) => Ok(b),
        Cell::Number(0.0) => Ok(false),
        Cell::Number(1.0) => Ok(true),
        Cell::Text(s) | Cell::Error(s) => {
            let s = s.trim();
            if s == "1" || s.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if s == "0" || s.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(Reason::InvalidFlag)
            }
        }
        _ => Err(Reason::InvalidFlag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- Cell ----

    #[test]
    fn display_text_shows_what_the_file_holds() {
        assert_eq!(Cell::Empty.display_text(), "");
        assert_eq!(Cell::Text(" 399,00 ").display_text(), " 399,00 ");
        assert_eq!(Cell::Number(399.0).display_text(), "399");
        assert_eq!(
            Cell::Number(705.6900000000002).display_text(),
            "705.6900000000002"
        );
        // The spec's `705.6900000000001` is the very double 705.69 (the next
        // one up is ...02), so once a reader has parsed it, it shows as 705.69.
        let spec_example: f64 = "705.6900000000001".parse().unwrap();
        assert_eq!(Cell::Number(spec_example).display_text(), "705.69");
        assert_eq!(Cell::Number(-0.5).display_text(), "-0.5");
        assert_eq!(Cell::Number(1e20).display_text(), "100000000000000000000");
        assert_eq!(Cell::DateSerial(41416.0).display_text(), "41416");
        assert_eq!(Cell::Bool(true).display_text(), "TRUE");
        assert_eq!(Cell::Bool(false).display_text(), "FALSE");
        assert_eq!(Cell::Error("#DIV/0!").display_text(), "#DIV/0!");
    }

    #[test]
    fn blank_and_null() {
        assert!(Cell::Empty.is_blank());
        assert!(Cell::Text(" \t ").is_blank());
        assert!(!Cell::Text("NULL").is_blank());
        assert!(!Cell::Number(0.0).is_blank());
        assert!(Cell::Text(" null ").is_null());
        assert!(Cell::Text("Null").is_null());
        assert!(!Cell::Text("NULLS").is_null());
        assert!(!Cell::Error("#N/A").is_null());
    }

    // ---- Reason ----

    #[test]
    fn reason_names_are_snake_case_in_both_forms() {
        let all = [
            (Reason::MissingCpf, "missing_cpf"),
            (Reason::MalformedCpf, "malformed_cpf"),
            (Reason::InvalidFlag, "invalid_flag"),
            (Reason::InvalidDate, "invalid_date"),
            (Reason::InvalidDecimal, "invalid_decimal"),
            (Reason::MalformedCnpj, "malformed_cnpj"),
            (Reason::MissingValue, "missing_value"),
            (Reason::WrongColumnCount, "wrong_column_count"),
            (Reason::DuplicateKey, "duplicate_key"),
            (Reason::InvalidInteger, "invalid_integer"),
            (Reason::OutOfRange, "out_of_range"),
            (Reason::InvalidNumber, "invalid_number"),
            (Reason::InvalidTimestamp, "invalid_timestamp"),
            (Reason::InvalidUuid, "invalid_uuid"),
            (Reason::NotInList, "not_in_list"),
            (Reason::InvalidJson, "invalid_json"),
            (Reason::TooLong, "too_long"),
            (Reason::PatternMismatch, "pattern_mismatch"),
            (Reason::InvalidEmail, "invalid_email"),
        ];
        for (reason, name) in all {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
            assert_eq!(
                serde_json::to_string(&reason).unwrap(),
                format!("\"{name}\"")
            );
            let back: Reason = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, reason);
        }
    }

    #[test]
    fn lists_read_as_a_bounded_choice() {
        let items = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(listed(&items(1)), "1");
        assert_eq!(listed(&items(3)), "1, 2 or 3");
        assert_eq!(listed(&items(10)), "1, 2, 3, 4, 5, 6, 7, 8, 9 or 10");
        assert_eq!(
            listed(&items(12)),
            "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (12 in all)"
        );
    }

    // ---- flags ----

    #[test]
    fn flags() {
        for (cell, want) in [
            (Cell::Text("0"), false),
            (Cell::Text(" 1 "), true),
            (Cell::Text("TRUE"), true),
            (Cell::Text("False"), false),
            (Cell::Text("tRuE"), true),
            (Cell::Number(0.0), false),
            (Cell::Number(1.0), true),
            (Cell::Bool(true), true),
            (Cell::Bool(false), false),
        ] {
            assert_eq!(parse_flag(&cell), Ok(want), "{cell:?}");
        }
        for cell in [
            Cell::Empty,
            Cell::Text(""),
            Cell::Text("NULL"),
            Cell::Text("yes"),
            Cell::Text("2"),
            Cell::Text("00"),
            Cell::Text("1.0"),
            Cell::Text("t"),
            Cell::Number(2.0),
            Cell::Number(0.5),
            Cell::Number(f64::NAN),
            Cell::DateSerial(1.0),
            Cell::Error("#DIV/0!"),
        ] {
            assert_eq!(parse_flag(&cell), Err(Reason::InvalidFlag), "{cell:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in any::<String>(), t in "[-+0-9.,/ T:]{0,24}", n in any::<f64>()) {
            for text in [s.as_str(), t.as_str()] {
                for cell in [Cell::Text(text), Cell::Error(text)] {
                    let _ = parse_decimal(&cell, 14, 2);
                    let _ = parse_decimal(&cell, 38, 0);
                    let _ = parse_date(&cell);
                    let _ = parse_flag(&cell);
                    let _ = parse_document(&cell, 11, false);
                    let _ = parse_document(&cell, 14, true);
                    let _ = parse_integer(&cell, IntegerType::Smallint);
                    let _ = parse_float(&cell, FloatType::Real);
                    let _ = parse_timestamp(&cell, TimestampRule::default());
                    let _ = parse_uuid(&cell);
                    let _ = parse_json(&cell, JsonType::Jsonb);
                }
            }
            for cell in [Cell::Number(n), Cell::DateSerial(n)] {
                let _ = parse_decimal(&cell, 14, 2);
                let _ = parse_date(&cell);
                let _ = parse_flag(&cell);
                let _ = parse_document(&cell, 11, false);
                let _ = parse_document(&cell, 14, true);
                let _ = parse_integer(&cell, IntegerType::Bigint);
                let _ = parse_float(&cell, FloatType::Real);
                let _ = parse_timestamp(&cell, TimestampRule::default());
                let _ = cell.display_text();
            }
        }
    }
}
