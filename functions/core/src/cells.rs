//! Cell rules (shared/spec/user_purchase.md, "Cell rules"): how one cell read
//! from any file format becomes a typed value ready for Postgres `COPY`, or the
//! reason its row is rejected.
//!
//! Readers (xlsx, csv, whitespace text) only translate what they read into
//! [`Cell`]s; every decision about what is acceptable lives here, per column
//! type, so the formats cannot drift apart and every dataset declared in
//! `datasets.toml` gets the same rules as `user_purchase`.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::dataset::{Column, ColumnType, Dataset};

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

/// An exact decimal number: `units / 10^scale`. Money never goes through a
/// binary double on its way to `numeric`.
///
/// Equality is representational: `1.0` at scale 1 and `1.00` at scale 2 differ,
/// which is what matters for values that all come out of one column's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    units: i128,
    scale: u32,
}

impl Decimal {
    pub fn new(units: i128, scale: u32) -> Self {
        Self { units, scale }
    }

    pub fn units(self) -> i128 {
        self.units
    }

    pub fn scale(self) -> u32 {
        self.scale
    }
}

/// Plain decimal text with exactly `scale` decimals (`399.00`, `-0.50`), which
/// Postgres reads as `numeric` and people read as a number.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.unsigned_abs().to_string();
        let scale = usize::try_from(self.scale).unwrap_or(usize::MAX);
        if self.units < 0 {
            f.write_char('-')?;
        }
        if scale == 0 {
            f.write_str(&digits)
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{digits:0>scale$}")
        }
    }
}

/// A parsed, typed value, ready for Postgres.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Null,
    Text(String),
    Bool(bool),
    Date(NaiveDate),
    Decimal(Decimal),
}

impl Value {
    /// The value's text, when it is text (cpf, cnpj and text columns).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Appends the value in `COPY ... (FORMAT text)` form: `\N` for NULL,
    /// `t`/`f`, ISO dates, plain decimals, and text with backslash, tab,
    /// newline and carriage return escaped so they cannot split fields or rows.
    pub fn write_copy_text(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("\\N"),
            Value::Text(s) => {
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
            Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
            // Writing to a String cannot fail. Dates are built within years
            // 1..=9999, so four-digit years are always right for Postgres.
            Value::Date(d) => {
                let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
            }
            Value::Decimal(d) => {
                let _ = write!(out, "{d}");
            }
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
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cell that is not a tax document of the expected length. The column type
/// decides which [`Reason`] that is (`malformed_cpf` or `malformed_cnpj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a tax document of the expected length")]
pub struct ShapeError;

/// Reads a CPF (`len` 11, `alnum` false) or a CNPJ (`len` 14, `alnum` true)
/// and says whether its check digits hold.
///
/// Text is trimmed, must start with a digit (or, when `alnum`, a letter or
/// digit) and may hold only ASCII digits (and letters when `alnum`) plus the
/// separators `.`, `-`, `/` and space, which are removed; letters are
/// upper-cased. Text is never padded: a missing leading zero is an error in
/// the data. A numeric cell is a non-negative whole number that Excel stripped
/// of its leading zeros, so it is left-padded to `len`. Anything else (empty,
/// boolean, date cells) and any length other than 11 or 14, which have no
/// check-digit algorithm, is a [`ShapeError`].
pub fn parse_document(
    cell: &Cell<'_>,
    len: usize,
    alnum: bool,
) -> Result<(String, bool), ShapeError> {
    let check: fn(&str) -> bool = match len {
        11 => cpf_check_digits_valid,
        14 => cnpj_check_digits_valid,
        _ => return Err(ShapeError),
    };
    let document = match *cell {
        Cell::Number(n) => numeric_document(n, len)?,
        Cell::Text(s) | Cell::Error(s) => text_document(s, len, alnum)?,
        Cell::Empty | Cell::DateSerial(_) | Cell::Bool(_) => return Err(ShapeError),
    };
    let valid = check(&document);
    Ok((document, valid))
}

fn numeric_document(n: f64, len: usize) -> Result<String, ShapeError> {
    if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
        return Err(ShapeError);
    }
    // A saturating cast: anything too large for u128 is far beyond `len` digits.
    let digits = (n as u128).to_string();
    if digits.len() > len {
        return Err(ShapeError);
    }
    Ok(format!("{digits:0>len$}"))
}

fn text_document(s: &str, len: usize, alnum: bool) -> Result<String, ShapeError> {
    let s = s.trim();
    let accepted = |c: char| c.is_ascii_digit() || (alnum && c.is_ascii_alphabetic());
    if !s.chars().next().is_some_and(accepted) {
        return Err(ShapeError);
    }
    let mut out = String::with_capacity(len);
    for c in s.chars() {
        match c {
            '.' | '-' | '/' | ' ' => {}
            c if accepted(c) => {
                // Stop early so a huge cell cannot make a huge string.
                if out.len() == len {
                    return Err(ShapeError);
                }
                out.push(c.to_ascii_uppercase());
            }
            _ => return Err(ShapeError),
        }
    }
    if out.len() == len {
        Ok(out)
    } else {
        Err(ShapeError)
    }
}

/// Mod-11 weights, the CPF's: 10..=2 for the first check digit over nine
/// digits, 11..=2 for the second over ten.
const CPF_WEIGHTS: [u32; 10] = [11, 10, 9, 8, 7, 6, 5, 4, 3, 2];
/// The CNPJ's: the last twelve for the first check digit, all thirteen for the
/// second.
const CNPJ_WEIGHTS: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit shared by CPF and CNPJ: the weighted sum of the character
/// values (ASCII code − 48, so digits are themselves and `A` is 17), 0 when the
/// remainder mod 11 is below 2, else 11 − remainder.
fn mod11_check_digit(chars: &[u8], weights: &[u32]) -> u8 {
    let sum: u32 = chars
        .iter()
        .zip(weights)
        .map(|(&c, &w)| u32::from(c.saturating_sub(b'0')) * w)
        .sum();
    match sum % 11 {
        r if r < 2 => b'0',
        // r is 2..=10, so the digit is 1..=9.
        r => b'0' + (11 - r) as u8,
    }
}

fn all_equal(b: &[u8]) -> bool {
    b.windows(2).all(|w| w[0] == w[1])
}

/// The two check digits of a CPF's first nine digits.
pub fn cpf_check_digits(base: &[u8; 9]) -> [u8; 2] {
    let first = mod11_check_digit(base, &CPF_WEIGHTS[1..]);
    let mut ten = [0u8; 10];
    ten[..9].copy_from_slice(base);
    ten[9] = first;
    [first, mod11_check_digit(&ten, &CPF_WEIGHTS)]
}

/// The two check digits of a CNPJ's first twelve characters (`0-9A-Z`).
pub fn cnpj_check_digits(base: &[u8; 12]) -> [u8; 2] {
    let first = mod11_check_digit(base, &CNPJ_WEIGHTS[1..]);
    let mut thirteen = [0u8; 13];
    thirteen[..12].copy_from_slice(base);
    thirteen[12] = first;
    [first, mod11_check_digit(&thirteen, &CNPJ_WEIGHTS)]
}

/// Whether 11 ASCII digits are a CPF with valid check digits. Numbers made of
/// one repeated digit pass the arithmetic but are not issued, so they fail.
pub fn cpf_check_digits_valid(cpf: &str) -> bool {
    let b = cpf.as_bytes();
    b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && !all_equal(b)
        && b[9] == mod11_check_digit(&b[..9], &CPF_WEIGHTS[1..])
        && b[10] == mod11_check_digit(&b[..10], &CPF_WEIGHTS)
}

/// Whether 14 characters are a CNPJ with valid check digits, classic (all
/// digits) or alphanumeric (twelve of `0-9A-Z`, upper case, then two digits),
/// the latter in force since July 2026. Fourteen equal characters fail.
pub fn cnpj_check_digits_valid(cnpj: &str) -> bool {
    let b = cnpj.as_bytes();
    b.len() == 14
        && b[..12]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[12..].iter().all(u8::is_ascii_digit)
        && !all_equal(b)
        && b[12] == mod11_check_digit(&b[..12], &CNPJ_WEIGHTS[1..])
        && b[13] == mod11_check_digit(&b[..13], &CNPJ_WEIGHTS)
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

/// A date: text `YYYY-MM-DD` or `DD/MM/YYYY` (exactly two-digit day and month,
/// four-digit year, 0001..=9999), optionally followed by a time part that is
/// dropped; or a date serial (see [`Cell::DateSerial`]). A bare number is not
/// a date: without a date format nothing says it means days.
///
/// The time part is checked only loosely, so that `2013-05-22 foo` is not
/// taken for a date: after one space, `T` or `t` it must start with a digit and
/// hold only ASCII letters, digits, spaces and `:.,+-` (`10:30:00`,
/// `00:00:00.000`, `10:30:00-03:00`, `10h30`).
pub fn parse_date(cell: &Cell<'_>) -> Result<NaiveDate, Reason> {
    let date = match *cell {
        Cell::DateSerial(serial) => date_from_serial(serial),
        Cell::Text(s) | Cell::Error(s) => date_from_text(s.trim()),
        _ => None,
    };
    date.ok_or(Reason::InvalidDate)
}

/// Serial 1 is 1900-01-01; serial 60 is Excel's fictitious 1900-02-29 and
/// rejected; from 61 on, serials are one day ahead of the real calendar. The
/// serial is first rounded to the nearest millisecond, as Excel does before it
/// shows a date (so `42571.9999999998`, a binary double just short of
/// midnight, is the next day), then the time of day is dropped (spec "Cell
/// rules", `data_ultima_compra`). Serials run up to 9999-12-31, as in Excel.
fn date_from_serial(serial: f64) -> Option<NaiveDate> {
    const LAST: i64 = 2_958_465; // 9999-12-31
    const MS_PER_DAY: f64 = 86_400_000.0;
    if !serial.is_finite() {
        return None;
    }
    let ms = (serial * MS_PER_DAY).round();
    // 1.0 ..= LAST + 1 day - 1 ms, in whole milliseconds.
    if !(MS_PER_DAY..(LAST as f64 + 1.0) * MS_PER_DAY).contains(&ms) {
        return None;
    }
    let days = (ms / MS_PER_DAY).floor() as u64;
    let day_zero = match days {
        60 => return None,
        ..60 => NaiveDate::from_ymd_opt(1899, 12, 31)?,
        _ => NaiveDate::from_ymd_opt(1899, 12, 30)?,
    };
    day_zero.checked_add_days(Days::new(days))
}

fn date_from_text(s: &str) -> Option<NaiveDate> {
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    if !rest.is_empty() && !is_time_part(rest) {
        return None;
    }
    let b = date.as_bytes();
    let (year, month, day) = match (b[4], b[2]) {
        (b'-', _) if b[7] == b'-' => (&b[..4], &b[5..7], &b[8..]),
        (_, b'/') if b[5] == b'/' => (&b[6..], &b[3..5], &b[..2]),
        _ => return None,
    };
    let year = i32::try_from(ascii_number(year)?).ok()?;
    if year < 1 {
        // Postgres has no year 0; chrono would print one.
        return None;
    }
    NaiveDate::from_ymd_opt(year, ascii_number(month)?, ascii_number(day)?)
}

fn is_time_part(rest: &str) -> bool {
    let Some(time) = rest.strip_prefix([' ', 'T', 't']) else {
        return false;
    };
    let time = time.trim_start();
    time.starts_with(|c: char| c.is_ascii_digit())
        && time
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " :.,+-".contains(c))
}

/// The value of a short run of ASCII digits; `None` if anything else is there.
fn ascii_number(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

/// A decimal for `numeric(precision, scale)`.
///
/// Text (trimmed), with an optional leading `-` (no `+`):
/// - containing a comma, it is Brazilian: `399,00`, `1.234,56`, `1234,5` (dots
///   optional, but when present they separate groups of exactly three digits,
///   the first group one to three digits; the comma is the decimal mark);
/// - with two or more dots in groups of three, a Brazilian integer: `1.234.567`;
/// - otherwise the dot, if any, is the decimal mark: `399.00`, `1.234` (= 1.234).
///
/// Both sides of a decimal mark must hold at least one digit: `,5`, `.5`,
/// `5,` and `5.` are rejected, as are spaces, currency symbols, exponents and
/// non-ASCII digits. Extra decimals are rounded half-even on the text itself
/// (`0.125` → `0.12`, `2.675` → `2.68`), never through a double. A numeric
/// cell uses the number as stored (see [`Cell::display_text`]) with the dot
/// rule, so `705.6900000000002` → `705.69`. A result with more than
/// `precision` digits in all, or a precision/scale that [`Decimal`] cannot
/// hold (precision over 38, scale over precision), is `invalid_decimal`.
pub fn parse_decimal(cell: &Cell<'_>, precision: u32, scale: u32) -> Result<Decimal, Reason> {
    let decimal = match *cell {
        Cell::Number(n) if n.is_finite() => decimal_from_text(&number_text(n), precision, scale),
        Cell::Text(s) | Cell::Error(s) => decimal_from_text(s.trim(), precision, scale),
        _ => None,
    };
    decimal.ok_or(Reason::InvalidDecimal)
}

fn decimal_from_text(s: &str, precision: u32, scale: u32) -> Option<Decimal> {
    const MAX_PRECISION: u32 = 38; // 10^38 still fits an i128
    if precision > MAX_PRECISION || scale > precision {
        return None;
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = if let Some((int, frac)) = body.split_once(',') {
        (grouped_integer(int)?, Some(frac))
    } else if body.matches('.').count() >= 2 {
        (grouped_integer(body)?, None)
    } else if let Some((int, frac)) = body.split_once('.') {
        (all_digits(int)?.to_owned(), Some(frac))
    } else {
        (all_digits(body)?.to_owned(), None)
    };
    let frac = match frac {
        Some(f) => all_digits(f)?,
        None => "",
    };

    let int = int.trim_start_matches('0');
    if int.len() > MAX_PRECISION as usize {
        return None;
    }
    let scale_len = scale as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(scale_len));
    let mut units: i128 = 0;
    let padding = std::iter::repeat_n(b'0', scale_len - kept.len());
    for d in int.bytes().chain(kept.bytes()).chain(padding) {
        units = units.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
    }
    if let Some((&first, rest)) = dropped.as_bytes().split_first() {
        let round_up = match first {
            b'6'..=b'9' => true,
            b'5' => rest.iter().any(|&d| d != b'0') || units % 2 == 1,
            _ => false,
        };
        if round_up {
            units = units.checked_add(1)?;
        }
    }
    if units >= 10i128.checked_pow(precision)? {
        return None;
    }
    Some(Decimal::new(if negative { -units } else { units }, scale))
}

/// Digits, with dots between groups of exactly three after a first group of
/// one to three (`1.234.567`), or no dots at all; returns the digits alone.
fn grouped_integer(s: &str) -> Option<String> {
    let mut groups = s.split('.');
    let head = all_digits(groups.next()?)?;
    let mut out = head.to_owned();
    for group in groups {
        if head.len() > 3 || group.len() != 3 {
            return None;
        }
        out.push_str(all_digits(group)?);
    }
    Some(out)
}

/// `s` itself if it is one or more ASCII digits.
fn all_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

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
        }
    }

    /// One line for a person: the column, the value, what was expected, e.g.
    /// `column cpf: "12.3" is not an 11-digit CPF`. Long values are cut.
    pub fn message(&self) -> String {
        let column = &self.column;
        let value = shown(&self.value);
        match self.reason {
            Reason::MissingCpf => format!("column {column}: a CPF is required, got {value}"),
            Reason::MalformedCpf => format!("column {column}: {value} is not an 11-digit CPF"),
            Reason::InvalidFlag => {
                format!("column {column}: {value} is not a flag (0, 1, true or false)")
            }
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

    /// Appends the row as one `COPY ... (FORMAT text)` line: the values, then
    /// the validity flags, tab-separated, in [`Dataset::stored_columns`] order.
    pub fn write_copy_line(&self, out: &mut String) {
        let mut first = true;
        let mut separate = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push('\t');
            }
        };
        for value in &self.values {
            separate(out);
            value.write_copy_text(out);
        }
        for flag in &self.validity {
            separate(out);
            flag.map_or(Value::Null, Value::Bool).write_copy_text(out);
        }
        out.push('\n');
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
            Err(reason) => {
                return RowOutcome::Rejected(Rejection {
                    reason,
                    column: column.name.clone(),
                    value: cell.display_text().into_owned(),
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
/// whether its check digits hold.
fn parse_cell(column: &Column, cell: &Cell<'_>) -> Result<(Value, Option<bool>), Reason> {
    if cell.is_null() {
        return match (column.nullable, column.kind) {
            (true, _) => Ok((Value::Null, None)),
            (false, ColumnType::Cpf) => Err(Reason::MissingCpf),
            (false, ColumnType::Boolean) => Err(Reason::InvalidFlag),
            (false, _) => Err(Reason::MissingValue),
        };
    }
    let plain = |value| (value, None);
    match column.kind {
        ColumnType::Cpf => parse_document(cell, 11, false)
            .map(|(doc, ok)| (Value::Text(doc), Some(ok)))
            .map_err(|ShapeError| Reason::MalformedCpf),
        ColumnType::Cnpj => parse_document(cell, 14, true)
            .map(|(doc, ok)| (Value::Text(doc), Some(ok)))
            .map_err(|ShapeError| Reason::MalformedCnpj),
        ColumnType::Boolean => parse_flag(cell).map(|b| plain(Value::Bool(b))),
        ColumnType::Date => parse_date(cell).map(|d| plain(Value::Date(d))),
        // Dataset::validate guarantees both; the fallback (numeric(38,0))
        // only keeps this total for hand-built datasets.
        ColumnType::Decimal => parse_decimal(
            cell,
            column.precision.unwrap_or(38),
            column.scale.unwrap_or(0),
        )
        .map(|d| plain(Value::Decimal(d))),
        ColumnType::Text => Ok(plain(Value::Text(text_value(cell)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datasets;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn dec(text: &str) -> Result<String, Reason> {
        parse_decimal(&Cell::Text(text), 14, 2).map(|d| d.to_string())
    }

    fn doc(cell: Cell<'_>, len: usize, alnum: bool) -> Option<(String, bool)> {
        parse_document(&cell, len, alnum).ok()
    }

    fn cpf(cell: Cell<'_>) -> Option<(String, bool)> {
        doc(cell, 11, false)
    }

    fn cnpj(cell: Cell<'_>) -> Option<(String, bool)> {
        doc(cell, 14, true)
    }

    fn user_purchase() -> Dataset {
        Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

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

    // ---- Decimal and Value ----

    #[test]
    fn decimal_display() {
        assert_eq!(Decimal::new(39900, 2).to_string(), "399.00");
        assert_eq!(Decimal::new(-50, 2).to_string(), "-0.50");
        assert_eq!(Decimal::new(123456, 2).to_string(), "1234.56");
        assert_eq!(Decimal::new(5, 2).to_string(), "0.05");
        assert_eq!(Decimal::new(0, 2).to_string(), "0.00");
        assert_eq!(Decimal::new(-7, 0).to_string(), "-7");
        assert_eq!(
            Decimal::new(i128::MIN, 0).to_string(),
            i128::MIN.to_string()
        );
    }

    #[test]
    fn copy_text_of_each_value() {
        let copy = |v: Value| {
            let mut s = String::new();
            v.write_copy_text(&mut s);
            s
        };
        assert_eq!(copy(Value::Null), "\\N");
        assert_eq!(copy(Value::Bool(true)), "t");
        assert_eq!(copy(Value::Bool(false)), "f");
        assert_eq!(copy(Value::Date(date(2013, 5, 22))), "2013-05-22");
        assert_eq!(copy(Value::Date(date(1, 1, 1))), "0001-01-01");
        assert_eq!(copy(Value::Decimal(Decimal::new(-50, 2))), "-0.50");
        assert_eq!(
            copy(Value::Text("a\\b\tc\nd\re ú".into())),
            "a\\\\b\\tc\\nd\\re ú"
        );
        assert_eq!(copy(Value::Text("\\N".into())), "\\\\N");
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

    // ---- CPF ----

    #[test]
    fn cpf_check_digits_of_the_spec_examples() {
        // 990.999.999 has check digits 41, so -66 is invalid (the spec says so).
        assert_eq!(
            cpf(Cell::Text("990.999.999-66")),
            Some(("99099999966".into(), false))
        );
        assert!(cpf_check_digits_valid("99099999941"));
        assert_eq!(
            cpf(Cell::Text("041.091.641-25")),
            Some(("04109164125".into(), true))
        );
    }

    #[test]
    fn cpf_known_valid_and_invalid() {
        for valid in ["11144477735", "52998224725", "04109164125", "70499962206"] {
            assert!(cpf_check_digits_valid(valid), "{valid}");
        }
        for invalid in [
            "11144477736",
            "11144477725",
            "11111111111",
            "00000000000",
            "99999999999",
            "1114447773",
            "111444777355",
            "1114447773a",
        ] {
            assert!(!cpf_check_digits_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn cpf_check_digits_cannot_catch_every_single_digit_change() {
        // A remainder of 0 and of 1 both give check digit 0, so this change
        // of the first digit keeps both check digits: both numbers are valid.
        assert!(cpf_check_digits_valid("70499962206"));
        assert!(cpf_check_digits_valid("80499962206"));
    }

    #[test]
    fn cpf_shapes() {
        assert_eq!(cpf(Cell::Text(" 04109164125 ")).unwrap().0, "04109164125");
        assert_eq!(cpf(Cell::Text("041 091 641/25")).unwrap().0, "04109164125");
        assert_eq!(
            cpf(Cell::Text("0.4.1.0.9.1.6.4.1.2.5")).unwrap().0,
            "04109164125"
        );
        // Text is never padded.
        assert_eq!(cpf(Cell::Text("4109164125")), None);
        assert_eq!(cpf(Cell::Text("041091641250")), None);
        assert_eq!(cpf(Cell::Text("12.3")), None);
        // Must start with a digit.
        assert_eq!(cpf(Cell::Text(".04109164125")), None);
        assert_eq!(cpf(Cell::Text("-04109164125")), None);
        // Only ASCII digits and the four separators.
        assert_eq!(cpf(Cell::Text("041_091_641_25")), None);
        assert_eq!(cpf(Cell::Text("041.091.641-2a")), None);
        assert_eq!(cpf(Cell::Text("٠٤١٠٩١٦٤١٢٥")), None);
        assert_eq!(cpf(Cell::Text("04109164125\u{a0}0")), None);
        assert_eq!(cpf(Cell::Text("")), None);
        assert_eq!(cpf(Cell::Error("#REF!")), None);
        assert_eq!(cpf(Cell::Bool(true)), None);
        assert_eq!(cpf(Cell::DateSerial(41416.0)), None);
        assert_eq!(cpf(Cell::Empty), None);
    }

    #[test]
    fn numeric_cpf_cells_are_padded() {
        assert_eq!(
            cpf(Cell::Number(4109164125.0)),
            Some(("04109164125".into(), true))
        );
        assert_eq!(cpf(Cell::Number(99099999966.0)).unwrap().0, "99099999966");
        assert_eq!(cpf(Cell::Number(0.0)), Some(("00000000000".into(), false)));
        assert_eq!(cpf(Cell::Number(4109164125.5)), None);
        assert_eq!(cpf(Cell::Number(-4109164125.0)), None);
        assert_eq!(cpf(Cell::Number(100000000000.0)), None);
        assert_eq!(cpf(Cell::Number(f64::NAN)), None);
        assert_eq!(cpf(Cell::Number(f64::INFINITY)), None);
        assert_eq!(cpf(Cell::Number(1e300)), None);
    }

    #[test]
    fn documents_have_two_known_lengths() {
        assert_eq!(doc(Cell::Text("123456789012"), 12, false), None);
    }

    // ---- CNPJ ----

    #[test]
    fn cnpj_spec_examples() {
        assert_eq!(
            cnpj(Cell::Text("79.379.491/0008-50")),
            Some(("79379491000850".into(), true))
        );
        assert_eq!(
            cnpj(Cell::Text("12.ABC.345/01DE-35")),
            Some(("12ABC34501DE35".into(), true))
        );
        // Letters are case-insensitive and stored upper case.
        assert_eq!(
            cnpj(Cell::Text("12.abc.345/01de-35")),
            Some(("12ABC34501DE35".into(), true))
        );
        assert!(!cnpj(Cell::Text("12.ABC.345/01DE-36")).unwrap().1);
        assert!(!cnpj(Cell::Text("79.379.491/0008-51")).unwrap().1);
    }

    #[test]
    fn cnpj_check_digit_rules() {
        assert!(cnpj_check_digits_valid("11222333000181"));
        assert!(!cnpj_check_digits_valid("00000000000000"));
        assert!(!cnpj_check_digits_valid("AAAAAAAAAAAAAA"));
        // Check digits are digits; lower case is not the stored form.
        assert!(!cnpj_check_digits_valid("12ABC34501DE3A"));
        assert!(!cnpj_check_digits_valid("12abc34501de35"));
        assert!(!cnpj_check_digits_valid("12ABC34501DE3"));
        // A value change of 22 (3 → I) is a multiple of 11 and goes unseen:
        // the alphanumeric check digits cannot catch every substitution.
        assert!(cnpj_check_digits_valid("12ABCI4501DE35"));
    }

    #[test]
    fn cnpj_shapes() {
        assert_eq!(
            cnpj(Cell::Text("ab.cde.fgh/ijkl-mn")).unwrap(),
            ("ABCDEFGHIJKLMN".into(), false)
        );
        assert_eq!(
            cnpj(Cell::Text("A2.ABC.345/01DE-35")).unwrap().0,
            "A2ABC34501DE35"
        );
        assert_eq!(cnpj(Cell::Text("/12.ABC.345/01DE-35")), None);
        assert_eq!(cnpj(Cell::Text("12.ABC.345/01DE-3")), None);
        assert_eq!(cnpj(Cell::Text("12.ABC.345/01DE-355")), None);
        assert_eq!(cnpj(Cell::Text("12.ÁBC.345/01DE-35")), None);
        assert_eq!(cnpj(Cell::Text("12_ABC_345_01DE_35")), None);
        assert_eq!(
            cnpj(Cell::Number(79379491000850.0)),
            Some(("79379491000850".into(), true))
        );
        assert_eq!(
            cnpj(Cell::Number(11222333000181.0)).unwrap().0,
            "11222333000181"
        );
        assert_eq!(cnpj(Cell::Number(1.0)).unwrap().0, "00000000000001");
        assert_eq!(cnpj(Cell::Number(123456789012345.0)), None);
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

    // ---- dates ----

    #[test]
    fn text_dates() {
        for (text, want) in [
            ("2013-05-22", date(2013, 5, 22)),
            (" 22/05/2013 ", date(2013, 5, 22)),
            ("2013-05-22 10:30:00", date(2013, 5, 22)),
            ("2013-05-22T10:30:00-03:00", date(2013, 5, 22)),
            ("2013-05-22 00:00:00.000", date(2013, 5, 22)),
            ("22/05/2013 10:30", date(2013, 5, 22)),
            ("22/05/2013  10h30", date(2013, 5, 22)),
            ("2012-02-29", date(2012, 2, 29)),
            ("0001-01-01", date(1, 1, 1)),
            ("9999-12-31", date(9999, 12, 31)),
        ] {
            assert_eq!(parse_date(&Cell::Text(text)), Ok(want), "{text}");
        }
        for text in [
            "",
            "NULL",
            "2013-02-30",
            "2013-13-01",
            "30/02/2013",
            "2013-5-22",
            "22/5/2013",
            "22/05/13",
            "13-05-22",
            "2013/05/22",
            "22-05-2013",
            "2013-05-22 foo",
            "2013-05-22T",
            "2013-05-2210:30",
            "2013-05-22x10:30",
            "0000-01-01",
            "+2013-05-22",
            "2013-05-22 10:30 ✓",
            "２０１３-05-22",
            "22.05.2013",
            "41416",
        ] {
            assert_eq!(
                parse_date(&Cell::Text(text)),
                Err(Reason::InvalidDate),
                "{text}"
            );
        }
        assert_eq!(
            parse_date(&Cell::Error("#VALUE!")),
            Err(Reason::InvalidDate)
        );
    }

    #[test]
    fn serial_dates_use_the_1900_system() {
        let serial = |n: f64| parse_date(&Cell::DateSerial(n));
        assert_eq!(serial(1.0), Ok(date(1900, 1, 1)));
        assert_eq!(serial(59.0), Ok(date(1900, 2, 28)));
        assert_eq!(serial(60.0), Err(Reason::InvalidDate));
        assert_eq!(serial(60.9), Err(Reason::InvalidDate));
        assert_eq!(serial(61.0), Ok(date(1900, 3, 1)));
        assert_eq!(serial(41416.0), Ok(date(2013, 5, 22)));
        assert_eq!(serial(41416.75), Ok(date(2013, 5, 22)));
        assert_eq!(serial(2_958_465.0), Ok(date(9999, 12, 31)));
        assert_eq!(serial(2_958_466.0), Err(Reason::InvalidDate));
        assert_eq!(serial(0.0), Err(Reason::InvalidDate));
        assert_eq!(serial(0.5), Err(Reason::InvalidDate));
        // Rounded to the millisecond before the time is dropped, as Excel shows it.
        assert_eq!(serial(42571.9999999998), Ok(date(2016, 7, 21)));
        assert_eq!(serial(42571.99999), Ok(date(2016, 7, 20)));
        assert_eq!(serial(41416.999999999), Ok(date(2013, 5, 23)));
        assert_eq!(serial(59.9999999999), Err(Reason::InvalidDate));
        assert_eq!(serial(0.9999999999), Ok(date(1900, 1, 1)));
        assert_eq!(serial(2_958_465.9999999999), Err(Reason::InvalidDate));
        assert_eq!(serial(f64::NAN), Err(Reason::InvalidDate));
        assert_eq!(serial(-1.0), Err(Reason::InvalidDate));
        assert_eq!(serial(f64::NAN), Err(Reason::InvalidDate));
        assert_eq!(serial(f64::INFINITY), Err(Reason::InvalidDate));
        // A 1904 workbook's serial 0 (1904-01-01), converted by the reader.
        assert_eq!(serial(1462.0), Ok(date(1904, 1, 1)));
    }

    #[test]
    fn only_date_cells_and_text_are_dates() {
        for cell in [Cell::Number(41416.0), Cell::Bool(true), Cell::Empty] {
            assert_eq!(parse_date(&cell), Err(Reason::InvalidDate), "{cell:?}");
        }
    }

    // ---- decimals ----

    #[test]
    fn decimal_notations() {
        for (text, want) in [
            ("399,00", "399.00"),
            ("399,0", "399.00"),
            ("399,5", "399.50"),
            ("1.234,56", "1234.56"),
            ("-1.234,5", "-1234.50"),
            ("1234,56", "1234.56"),
            ("12.345.678,9", "12345678.90"),
            ("1.234.567", "1234567.00"),
            ("-1.234.567", "-1234567.00"),
            ("399.00", "399.00"),
            ("399", "399.00"),
            ("1.234", "1.23"),
            ("1.235", "1.24"),
            ("0,5", "0.50"),
            ("0.5", "0.50"),
            ("007", "7.00"),
            ("-0", "0.00"),
            ("-0,001", "0.00"),
            (" 399,00 ", "399.00"),
            ("999999999999.99", "999999999999.99"),
            ("999.999.999.999,99", "999999999999.99"),
            ("-999999999999.99", "-999999999999.99"),
        ] {
            assert_eq!(dec(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn decimal_rounds_half_even_on_the_text() {
        for (text, want) in [
            ("0.125", "0.12"),
            ("0.135", "0.14"),
            ("0.1251", "0.13"),
            ("0.12500000000000000000000000001", "0.13"),
            ("0.124999", "0.12"),
            ("2.675", "2.68"),
            ("2.665", "2.66"),
            ("-2.675", "-2.68"),
            ("-0.125", "-0.12"),
            ("705.6900000000001", "705.69"),
            ("0,005", "0.00"),
            ("0,015", "0.02"),
            ("1.234,565", "1234.56"),
            ("9.995", "10.00"),
        ] {
            assert_eq!(dec(text).as_deref(), Ok(want), "{text}");
        }
    }

    #[test]
    fn decimal_rejections() {
        for text in [
            "",
            "-",
            "+1",
            "+399,00",
            "--1",
            "R$ 399,00",
            "399,00 R$",
            "$399",
            "1e5",
            "1E5",
            "1 234,56",
            "1.23,4",
            "1234.567,8",
            "1.2345,6",
            "1.234.56",
            "1.234.5678",
            "1,234,567",
            "1,2,3",
            "1.234,5.6",
            ",5",
            ".5",
            "5,",
            "5.",
            "-,5",
            "1..2",
            "NaN",
            "inf",
            "٣٩٩",
            "0x10",
            "1000000000000",
            "999999999999.995",
            "1.000.000.000.000",
            "99999999999999999999999999999999999999999999999",
        ] {
            assert_eq!(dec(text), Err(Reason::InvalidDecimal), "{text}");
        }
    }

    #[test]
    fn numeric_decimal_cells_use_the_stored_number() {
        let num = |n: f64| parse_decimal(&Cell::Number(n), 14, 2).map(|d| d.to_string());
        assert_eq!(num(399.0).as_deref(), Ok("399.00"));
        assert_eq!(num(705.6900000000002).as_deref(), Ok("705.69"));
        // The double nearest 2.675 is below it, but the stored text says 2.675.
        assert_eq!(num(2.675).as_deref(), Ok("2.68"));
        assert_eq!(num(1.234).as_deref(), Ok("1.23"));
        assert_eq!(num(-0.5).as_deref(), Ok("-0.50"));
        assert_eq!(num(-0.0).as_deref(), Ok("0.00"));
        assert_eq!(num(1e-7).as_deref(), Ok("0.00"));
        assert_eq!(num(999999999999.99).as_deref(), Ok("999999999999.99"));
        for n in [
            1e20,
            1e12,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
        ] {
            assert_eq!(num(n), Err(Reason::InvalidDecimal), "{n}");
        }
        for cell in [
            Cell::DateSerial(41416.0),
            Cell::Bool(true),
            Cell::Empty,
            Cell::Error("#DIV/0!"),
        ] {
            assert_eq!(
                parse_decimal(&cell, 14, 2),
                Err(Reason::InvalidDecimal),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn decimal_precision_and_scale() {
        let p = |text: &str, precision, scale| {
            parse_decimal(&Cell::Text(text), precision, scale).map(|d| d.to_string())
        };
        assert_eq!(p("12.5", 3, 0).as_deref(), Ok("12"));
        assert_eq!(p("13.5", 3, 0).as_deref(), Ok("14"));
        assert_eq!(p("999.4", 3, 0).as_deref(), Ok("999"));
        assert_eq!(p("999.5", 3, 0), Err(Reason::InvalidDecimal));
        assert_eq!(p("0.1234", 4, 4).as_deref(), Ok("0.1234"));
        assert_eq!(p("1", 4, 4), Err(Reason::InvalidDecimal));
        let max38 = "9".repeat(38);
        assert_eq!(p(&max38, 38, 0).as_deref(), Ok(max38.as_str()));
        assert_eq!(p("1", 39, 0), Err(Reason::InvalidDecimal));
        assert_eq!(p("1", 2, 3), Err(Reason::InvalidDecimal));
        assert_eq!(
            parse_decimal(&Cell::Text("1,5"), 14, 2),
            Ok(Decimal::new(150, 2))
        );
    }

    // ---- rows ----

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
        let decimal = if kind == "decimal" {
            "precision = 14\nscale = 2"
        } else {
            ""
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
        for kind in ["cpf", "cnpj", "boolean", "date", "decimal", "text"] {
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
    }

    #[test]
    fn rejection_serializes_for_reports() {
        let json = serde_json::to_value(Rejection {
            reason: Reason::InvalidDate,
            column: "d".into(),
            value: "x".into(),
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

    /// An independent statement of the CPF rule, as usually published:
    /// (sum × 10) mod 11, with 10 meaning 0.
    fn reference_cpf_digits(body: &[u32]) -> (u32, u32) {
        let dv = |digits: &[u32]| {
            let n = digits.len() as u32 + 1;
            let sum: u32 = digits
                .iter()
                .enumerate()
                .map(|(i, d)| d * (n - i as u32))
                .sum();
            (sum * 10 % 11) % 10
        };
        let d1 = dv(body);
        let mut ten = body.to_vec();
        ten.push(d1);
        (d1, dv(&ten))
    }

    fn cpf_text(digits: &[u32]) -> String {
        digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
    }

    fn reference_cpf_valid(digits: &[u32]) -> bool {
        let (d1, d2) = reference_cpf_digits(&digits[..9]);
        digits[9] == d1 && digits[10] == d2 && digits.iter().any(|d| *d != digits[0])
    }

    /// The CNPJ rule written out with the published weight tables.
    fn reference_cnpj_digits(body: &[u8]) -> (u8, u8) {
        const W1: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        const W2: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        let dv = |chars: &[u8], weights: &[u32]| {
            let sum: u32 = chars
                .iter()
                .zip(weights)
                .map(|(c, w)| (u32::from(*c) - 48) * w)
                .sum();
            let r = sum % 11;
            if r < 2 { b'0' } else { b'0' + (11 - r) as u8 }
        };
        let d1 = dv(body, &W1);
        let mut thirteen = body.to_vec();
        thirteen.push(d1);
        (d1, dv(&thirteen, &W2))
    }

    fn reference_cnpj_valid(chars: &[u8]) -> bool {
        let (d1, d2) = reference_cnpj_digits(&chars[..12]);
        chars[12] == d1 && chars[13] == d2 && chars.iter().any(|c| *c != chars[0])
    }

    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn alnum() -> impl Strategy<Value = u8> {
        proptest::sample::select(ALNUM)
    }

    /// Brazilian notation of an integer: thousands separated by dots.
    fn with_thousands(int: &str) -> String {
        let mut out = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i).is_multiple_of(3) {
                out.push('.');
            }
            out.push(c);
        }
        out
    }

    proptest! {
        #[test]
        fn cpf_with_computed_check_digits_validates(
            body in proptest::collection::vec(0u32..10, 9),
            position in 0usize..11,
            replacement in 0u32..10,
        ) {
            let (d1, d2) = reference_cpf_digits(&body);
            let mut digits = body.clone();
            digits.extend([d1, d2]);
            let all_equal = digits.iter().all(|d| *d == digits[0]);
            prop_assert_eq!(cpf_check_digits_valid(&cpf_text(&digits)), !all_equal);

            prop_assume!(digits[position] != replacement);
            digits[position] = replacement;
            let verdict = cpf_check_digits_valid(&cpf_text(&digits));
            prop_assert_eq!(verdict, reference_cpf_valid(&digits));
            // Changing a check digit always shows; changing a body digit shows
            // unless the new body happens to have the same check digits (the
            // remainders 0 and 1 both give 0).
            if position >= 9 {
                prop_assert!(!verdict);
            } else if verdict {
                prop_assert_eq!(reference_cpf_digits(&digits[..9]), (d1, d2));
            }
        }

        #[test]
        fn alphanumeric_cnpj_with_computed_check_digits_validates(
            body in proptest::collection::vec(alnum(), 12),
            position in 0usize..14,
            replacement in alnum(),
        ) {
            let (d1, d2) = reference_cnpj_digits(&body);
            let mut chars = body.clone();
            chars.extend([d1, d2]);
            let all_equal = chars.iter().all(|c| *c == chars[0]);
            let text = String::from_utf8(chars.clone()).unwrap();
            prop_assert_eq!(cnpj_check_digits_valid(&text), !all_equal);
            // Through the parser, masked and in lower case.
            let masked = format!(
                "{}.{}.{}/{}-{}",
                &text[..2], &text[2..5], &text[5..8], &text[8..12], &text[12..]
            )
            .to_lowercase();
            prop_assert_eq!(
                parse_document(&Cell::Text(&masked), 14, true),
                Ok((text.clone(), !all_equal))
            );

            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let verdict = cnpj_check_digits_valid(&String::from_utf8(chars.clone()).unwrap());
            prop_assert_eq!(verdict, reference_cnpj_valid(&chars));
            if position >= 12 {
                prop_assert!(!verdict);
            } else if verdict {
                prop_assert_eq!(reference_cnpj_digits(&chars[..12]), (d1, d2));
            }
        }

        #[test]
        fn decimal_text_round_trips(units in -99_999_999_999_999i64..=99_999_999_999_999) {
            let want = Decimal::new(i128::from(units), 2);
            let dot = want.to_string();
            prop_assert_eq!(parse_decimal(&Cell::Text(&dot), 14, 2), Ok(want));

            let (sign, digits) = dot.strip_prefix('-').map_or(("", dot.as_str()), |d| ("-", d));
            let (int, frac) = digits.split_once('.').unwrap();
            let brazilian = format!("{sign}{},{frac}", with_thousands(int));
            prop_assert_eq!(parse_decimal(&Cell::Text(&brazilian), 14, 2), Ok(want));
        }

        #[test]
        fn decimal_rounding_matches_integer_arithmetic(
            int in 0u64..1_000_000_000,
            frac in "[0-9]{3,8}",
        ) {
            // The exact value scaled by 10^len, rounded half-even to two places.
            let exact: u128 = format!("{int}{frac}").parse().unwrap();
            let step = 10u128.pow(frac.len() as u32 - 2);
            let (q, r) = (exact / step, exact % step);
            let rounded = if r * 2 > step || (r * 2 == step && q % 2 == 1) { q + 1 } else { q };
            let got = parse_decimal(&Cell::Text(&format!("{int}.{frac}")), 14, 2);
            prop_assert_eq!(got, Ok(Decimal::new(rounded as i128, 2)));
        }

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
                }
            }
            for cell in [Cell::Number(n), Cell::DateSerial(n)] {
                let _ = parse_decimal(&cell, 14, 2);
                let _ = parse_date(&cell);
                let _ = parse_flag(&cell);
                let _ = parse_document(&cell, 11, false);
                let _ = parse_document(&cell, 14, true);
                let _ = cell.display_text();
            }
        }

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
