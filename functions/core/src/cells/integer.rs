//! Whole numbers (docs/spec/datasets.md, "Column types", `integer`): numeric
//! cells holding an integral value, or text of an optional sign and digits
//! with `.`, `,` or spaces as thousands separators in groups of three, within
//! the range of the column's Postgres type (`smallint`, `integer`, `bigint`).

use super::{Cell, Reason, Refusal};

/// The Postgres type of an `integer` column (its `pg_type`), which sets its
/// range (docs/spec/datasets.md, "Column types"); `bigint` when not declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegerType {
    /// `smallint` (`int2`, `smallserial`): -32768 to 32767.
    Smallint,
    /// `integer` (`int`, `int4`, `serial`): -2147483648 to 2147483647.
    Integer,
    /// `bigint` (`int8`, `bigserial`): the range of an `i64`.
    #[default]
    Bigint,
}

impl IntegerType {
    /// The type a `pg_type` names (lower case, single spaces), if it is one
    /// of Postgres's integer types or their aliases.
    pub fn of_pg_type(name: &str) -> Option<IntegerType> {
        match name {
            "smallint" | "int2" | "smallserial" | "serial2" => Some(IntegerType::Smallint),
            "integer" | "int" | "int4" | "serial" | "serial4" => Some(IntegerType::Integer),
            "bigint" | "int8" | "bigserial" | "serial8" => Some(IntegerType::Bigint),
            _ => None,
        }
    }

    /// Postgres's name for the type.
    pub const fn name(self) -> &'static str {
        match self {
            IntegerType::Smallint => "smallint",
            IntegerType::Integer => "integer",
            IntegerType::Bigint => "bigint",
        }
    }

    /// The smallest and the largest value the type holds.
    pub const fn range(self) -> (i64, i64) {
        match self {
            IntegerType::Smallint => (i16::MIN as i64, i16::MAX as i64),
            IntegerType::Integer => (i32::MIN as i64, i32::MAX as i64),
            IntegerType::Bigint => (i64::MIN, i64::MAX),
        }
    }

    /// The range as a rejection message shows it: `-32768 to 32767 (smallint)`.
    pub fn range_text(self) -> String {
        let (lo, hi) = self.range();
        format!("{lo} to {hi} ({})", self.name())
    }
}

/// An `integer` cell (docs/spec/datasets.md, "Column types").
///
/// A numeric cell must hold an integral value (`42`, not `42.5`). Text
/// (trimmed) is an optional `+` or `-` then digits, which may be grouped by
/// thousands: `1.234.567`, `1,234,567` or `1 234 567` (a space, no-break
/// space or narrow no-break space), one kind of separator in a number, the
/// first group one to three digits and every other exactly three. Anything
/// else (`1,5`, `1.0`, `1e3`, `1.234,00`, a currency symbol, non-ASCII
/// digits) is `invalid_integer`; a whole number beyond the type's range is
/// `out_of_range`, its range in the refusal.
pub fn parse_integer(cell: &Cell<'_>, kind: IntegerType) -> Result<i64, Refusal> {
    let whole = match *cell {
        Cell::Number(n) if n.is_finite() && n.fract() == 0.0 => {
            // Every integral double below 2^63 in magnitude is an i64.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
            if (-LIMIT..LIMIT).contains(&n) {
                Whole::Value(i128::from(n as i64))
            } else {
                Whole::TooBig
            }
        }
        Cell::Text(s) | Cell::Error(s) => {
            integer_from_text(s.trim()).ok_or(Reason::InvalidInteger)?
        }
        _ => return Err(Reason::InvalidInteger.into()),
    };
    let (lo, hi) = kind.range();
    match whole {
        Whole::Value(v) if (i128::from(lo)..=i128::from(hi)).contains(&v) => {
            // Within an i64 range, so the conversion holds.
            i64::try_from(v).map_err(|_| Refusal::new(Reason::OutOfRange, kind.range_text()))
        }
        _ => Err(Refusal::new(Reason::OutOfRange, kind.range_text())),
    }
}

/// A whole number read from text: its value, or too many digits for any
/// integer type.
#[derive(Debug, PartialEq, Eq)]
enum Whole {
    Value(i128),
    TooBig,
}

/// Is `c` a thousands separator, and which kind (spaces are one kind).
fn separator_kind(c: char) -> Option<char> {
    match c {
        '.' | ',' => Some(c),
        ' ' | '\u{a0}' | '\u{202f}' => Some(' '),
        _ => None,
    }
}

fn integer_from_text(s: &str) -> Option<Whole> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut kind = None;
    let mut digits = String::with_capacity(body.len());
    for (i, group) in body.split(|c| separator_kind(c).is_some()).enumerate() {
        let first = i == 0;
        if !group.bytes().all(|b| b.is_ascii_digit())
            || group.is_empty()
            || (first && group.len() > 3 && body.len() != group.len())
            || (!first && group.len() != 3)
        {
            return None;
        }
        digits.push_str(group);
    }
    // One kind of separator in a number: `1.234,567` is not a whole number.
    for c in body.chars() {
        if let Some(k) = separator_kind(c)
            && kind.replace(k).is_some_and(|prev| prev != k)
        {
            return None;
        }
    }
    let digits = digits.trim_start_matches('0');
    // More than 39 digits cannot be an i128; far beyond any integer type.
    if digits.len() > 38 {
        return Some(Whole::TooBig);
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value * 10 + i128::from(b - b'0');
    }
    Some(Whole::Value(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(text: &str) -> Result<i64, Reason> {
        parse_integer(&Cell::Text(text), IntegerType::Bigint).map_err(|r| r.reason)
    }

    #[test]
    fn integer_text() {
        for (text, want) in [
            ("0", 0),
            ("42", 42),
            (" -42 ", -42),
            ("+42", 42),
            ("-0", 0),
            ("007", 7),
            ("1234567", 1_234_567),
            ("1.234", 1234),
            ("1,234", 1234),
            ("1.234.567", 1_234_567),
            ("1,234,567", 1_234_567),
            ("1 234 567", 1_234_567),
            ("1\u{a0}234", 1234),
            ("1\u{202f}234", 1234),
            ("-12.345", -12_345),
            ("123.456", 123_456),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
            ("9.223.372.036.854.775.807", i64::MAX),
            ("0000000000000000000000000000000000000000001", 1),
        ] {
            assert_eq!(int(text), Ok(want), "{text}");
        }
        for text in [
            "",
            "-",
            "+",
            "--1",
            "+-1",
            "1,5",
            "1.0",
            "1.2345",
            "1234.567",
            "1.23",
            ".123",
            "1.",
            "1..234",
            "1.234,567",
            "1 234.567",
            "1e3",
            "1E3",
            "0x10",
            "R$ 10",
            "10%",
            "٣",
            "１２",
            "1_000",
            "- 1",
            "NaN",
            "one",
        ] {
            assert_eq!(int(text), Err(Reason::InvalidInteger), "{text}");
        }
        assert_eq!(
            parse_integer(&Cell::Error("#N/A"), IntegerType::Bigint),
            Err(Reason::InvalidInteger.into())
        );
    }

    #[test]
    fn integer_ranges_follow_the_postgres_type() {
        let p = |text: &str, kind| parse_integer(&Cell::Text(text), kind);
        assert_eq!(p("32767", IntegerType::Smallint), Ok(32767));
        assert_eq!(p("-32768", IntegerType::Smallint), Ok(-32768));
        assert_eq!(
            p("32768", IntegerType::Smallint),
            Err(Refusal::new(
                Reason::OutOfRange,
                "-32768 to 32767 (smallint)"
            ))
        );
        assert_eq!(p("2147483647", IntegerType::Integer), Ok(2_147_483_647));
        assert_eq!(
            p("-2.147.483.649", IntegerType::Integer),
            Err(Refusal::new(
                Reason::OutOfRange,
                "-2147483648 to 2147483647 (integer)"
            ))
        );
        let bigint = "-9223372036854775808 to 9223372036854775807 (bigint)";
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999999999999999999999",
            &"9".repeat(200),
        ] {
            assert_eq!(
                p(text, IntegerType::Bigint),
                Err(Refusal::new(Reason::OutOfRange, bigint)),
                "{text}"
            );
        }
    }

    #[test]
    fn numeric_integer_cells_must_be_integral() {
        let num = |n: f64, kind| parse_integer(&Cell::Number(n), kind).map_err(|r| r.reason);
        assert_eq!(num(42.0, IntegerType::Bigint), Ok(42));
        assert_eq!(num(-0.0, IntegerType::Bigint), Ok(0));
        assert_eq!(num(-32768.0, IntegerType::Smallint), Ok(-32768));
        assert_eq!(num(1e15, IntegerType::Bigint), Ok(1_000_000_000_000_000));
        assert_eq!(num(i64::MIN as f64, IntegerType::Bigint), Ok(i64::MIN));
        assert_eq!(num(42.5, IntegerType::Bigint), Err(Reason::InvalidInteger));
        assert_eq!(
            num(f64::NAN, IntegerType::Bigint),
            Err(Reason::InvalidInteger)
        );
        assert_eq!(
            num(f64::INFINITY, IntegerType::Bigint),
            Err(Reason::InvalidInteger)
        );
        assert_eq!(num(40000.0, IntegerType::Smallint), Err(Reason::OutOfRange));
        assert_eq!(num(9.3e18, IntegerType::Bigint), Err(Reason::OutOfRange));
        assert_eq!(num(1e300, IntegerType::Bigint), Err(Reason::OutOfRange));
        for cell in [Cell::DateSerial(41416.0), Cell::Bool(true), Cell::Empty] {
            assert_eq!(
                parse_integer(&cell, IntegerType::Bigint),
                Err(Reason::InvalidInteger.into()),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn pg_type_names() {
        assert_eq!(IntegerType::of_pg_type("int2"), Some(IntegerType::Smallint));
        assert_eq!(
            IntegerType::of_pg_type("serial"),
            Some(IntegerType::Integer)
        );
        assert_eq!(IntegerType::of_pg_type("bigint"), Some(IntegerType::Bigint));
        assert_eq!(IntegerType::of_pg_type("numeric"), None);
        assert_eq!(IntegerType::default(), IntegerType::Bigint);
    }
}
