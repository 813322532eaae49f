//! Floating-point numbers (docs/spec/datasets.md, "Column types", `float`):
//! numeric cells, or text in dot or Brazilian notation with an optional
//! exponent, for Postgres `real` and `double precision`.

use std::fmt;
use std::hash::{Hash, Hasher};

use super::decimal::{all_digits, grouped_integer};
use super::{Cell, Reason, Refusal};

/// The Postgres type of a `float` column (its `pg_type`;
/// docs/spec/datasets.md, "Column types"); `double precision` when not
/// declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FloatType {
    /// `real` (`float4`): a 32-bit float.
    Real,
    /// `double precision` (`float8`, `float`): a 64-bit float.
    #[default]
    Double,
}

impl FloatType {
    /// The type a `pg_type` names (lower case, single spaces), if it is one
    /// of Postgres's floating-point types.
    pub fn of_pg_type(name: &str) -> Option<FloatType> {
        match name {
            "real" | "float4" => Some(FloatType::Real),
            "double precision" | "float8" | "float" => Some(FloatType::Double),
            _ => None,
        }
    }

    /// Postgres's name for the type.
    pub const fn name(self) -> &'static str {
        match self {
            FloatType::Real => "real",
            FloatType::Double => "double precision",
        }
    }

    /// What the type holds, as a rejection message shows it.
    fn range_text(self) -> String {
        match self {
            FloatType::Real => format!("a real, at most {:e} in magnitude", f32::MAX),
            FloatType::Double => format!("a double precision, at most {:e} in magnitude", f64::MAX),
        }
    }
}

/// A finite float, as a `float` column holds it (docs/spec/datasets.md,
/// "Column types"). Equal and hashed by its bits, so it can be a [`Value`]
/// (`-0` and `0` differ, as they do in the file).
///
/// [`Value`]: super::Value
#[derive(Debug, Clone, Copy)]
pub struct Float(f64);

impl Float {
    /// The value, if it is finite (Postgres's `NaN` and `Infinity` are not
    /// accepted from files).
    pub fn new(value: f64) -> Option<Float> {
        value.is_finite().then_some(Float(value))
    }

    /// The number (docs/spec/datasets.md, "Column types", `float`).
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

impl Hash for Float {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// The shortest text that reads back as the same double (Rust's, correctly
/// rounded both ways, as Postgres's `float8in` reads it): plain digits from
/// 1e-5 to 1e16 in magnitude (`0.1`, `-1234.5`, `0`), an exponent outside
/// (`1e20`, `1.5e-7`), so the COPY text is exact and short.
impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x == 0.0 || (1e-5..1e16).contains(&x.abs()) {
            write!(f, "{x}")
        } else {
            write!(f, "{x:e}")
        }
    }
}

/// A `float` cell (docs/spec/datasets.md, "Column types").
///
/// A numeric cell is its number. Text (trimmed) is an optional `+` or `-`, a
/// number in the notations of the decimal rule (a comma makes it Brazilian:
/// `1.234,5`; two or more dot groups of three are thousands: `1.234.567`;
/// otherwise the dot is the decimal mark: `1234.5`, `1.234`), then an
/// optional exponent (`e` or `E`, an optional sign, digits: `1,5e3`,
/// `6.02E+23`). Anything else (`NaN`, `Infinity`, `.5`, `1e`, spaces,
/// currency symbols) is `invalid_number`. A number the column's type cannot
/// hold (beyond its largest magnitude, or so small it would become zero) is
/// `out_of_range`, as Postgres would refuse it.
pub fn parse_float(cell: &Cell<'_>, kind: FloatType) -> Result<Float, Refusal> {
    let (value, nonzero_digits) = match *cell {
        Cell::Number(n) if n.is_finite() => (n, n != 0.0),
        Cell::Text(s) | Cell::Error(s) => {
            let (text, nonzero) = float_text(s.trim()).ok_or(Reason::InvalidNumber)?;
            let value = match kind {
                FloatType::Real => text.parse::<f32>().map(f64::from).ok(),
                FloatType::Double => text.parse::<f64>().ok(),
            };
            (value.ok_or(Reason::InvalidNumber)?, nonzero)
        }
        _ => return Err(Reason::InvalidNumber.into()),
    };
    let fits = match kind {
        FloatType::Real => {
            let single = value as f32;
            single.is_finite() && (single != 0.0 || !nonzero_digits)
        }
        FloatType::Double => value.is_finite() && (value != 0.0 || !nonzero_digits),
    };
    match Float::new(value) {
        Some(float) if fits => Ok(float),
        _ => Err(Refusal::new(Reason::OutOfRange, kind.range_text())),
    }
}

/// The number in Rust's float syntax (`-1234.5e3`), and whether any of its
/// digits is not zero; `None` if the text is not in an accepted notation.
fn float_text(s: &str) -> Option<(String, bool)> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int, frac) = if let Some((int, frac)) = mantissa.split_once(',') {
        (grouped_integer(int)?, all_digits(frac)?)
    } else if mantissa.matches('.').count() >= 2 {
        (grouped_integer(mantissa)?, "0")
    } else if let Some((int, frac)) = mantissa.split_once('.') {
        (all_digits(int)?.to_owned(), all_digits(frac)?)
    } else {
        (all_digits(mantissa)?.to_owned(), "0")
    };
    let nonzero = int.bytes().chain(frac.bytes()).any(|b| b != b'0');
    let mut text = String::with_capacity(s.len() + 4);
    if negative {
        text.push('-');
    }
    text.push_str(&int);
    text.push('.');
    text.push_str(frac);
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        all_digits(digits)?;
        text.push('e');
        text.push_str(exponent);
    }
    Some((text, nonzero))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(text: &str) -> Result<f64, Reason> {
        parse_float(&Cell::Text(text), FloatType::Double)
            .map(Float::get)
            .map_err(|r| r.reason)
    }

    #[test]
    fn float_notations() {
        for (text, want) in [
            ("0", 0.0),
            ("1.5", 1.5),
            (" -1.5 ", -1.5),
            ("+1.5", 1.5),
            ("1,5", 1.5),
            ("1.234,5", 1234.5),
            ("-1.234.567", -1_234_567.0),
            ("1.234", 1.234),
            ("0.1", 0.1),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("1e+3", 1000.0),
            ("2.5e-3", 0.0025),
            ("1,5e3", 1500.0),
            ("1.234,5E-1", 123.45),
            ("6.02214076e23", 6.022_140_76e23),
            ("1.7976931348623157e308", f64::MAX),
            ("4.9e-324", 4.9e-324),
            ("-0", -0.0),
            ("0e999999", 0.0),
            ("007.50", 7.5),
        ] {
            assert_eq!(float(text), Ok(want), "{text}");
        }
        for text in [
            "",
            "-",
            "+",
            "--1",
            "e3",
            "1e",
            "1e+",
            "1e3.5",
            "1e3e3",
            ".5",
            "5.",
            ",5",
            "5,",
            "1,2,3",
            "1.23,4",
            "1 234,5",
            "1_000",
            "NaN",
            "nan",
            "inf",
            "Infinity",
            "-Infinity",
            "0x10",
            "R$ 1,50",
            "1.5%",
            "٣",
            "1,5 e3",
            "1e 3",
        ] {
            assert_eq!(float(text), Err(Reason::InvalidNumber), "{text}");
        }
    }

    #[test]
    fn float_ranges_follow_the_postgres_type() {
        let p = |text: &str, kind| parse_float(&Cell::Text(text), kind).map(Float::get);
        assert_eq!(float("1e309"), Err(Reason::OutOfRange));
        assert_eq!(float("-1e309"), Err(Reason::OutOfRange));
        // So small it becomes zero: Postgres refuses it (underflow).
        assert_eq!(float("1e-400"), Err(Reason::OutOfRange));
        assert_eq!(p("3.4e38", FloatType::Real), Ok(f64::from(3.4e38f32)));
        assert_eq!(p("0.1", FloatType::Real), Ok(f64::from(0.1f32)));
        assert_eq!(
            p("3.5e38", FloatType::Real),
            Err(Refusal::new(
                Reason::OutOfRange,
                "a real, at most 3.4028235e38 in magnitude"
            ))
        );
        assert_eq!(
            p("1e-50", FloatType::Real).map_err(|r| r.reason),
            Err(Reason::OutOfRange)
        );
        assert_eq!(p("3.5e38", FloatType::Double), Ok(3.5e38));
        let num = |n: f64, kind| parse_float(&Cell::Number(n), kind).map_err(|r| r.reason);
        assert_eq!(num(1e300, FloatType::Double).map(Float::get), Ok(1e300));
        assert_eq!(num(1e300, FloatType::Real), Err(Reason::OutOfRange));
        assert_eq!(num(1e-300, FloatType::Real), Err(Reason::OutOfRange));
        assert_eq!(num(0.0, FloatType::Real).map(Float::get), Ok(0.0));
        assert_eq!(num(f64::NAN, FloatType::Double), Err(Reason::InvalidNumber));
        assert_eq!(
            num(f64::INFINITY, FloatType::Double),
            Err(Reason::InvalidNumber)
        );
        for cell in [Cell::DateSerial(1.0), Cell::Bool(true), Cell::Empty] {
            assert_eq!(
                parse_float(&cell, FloatType::Double),
                Err(Reason::InvalidNumber.into()),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn float_copy_text_reads_back_exactly() {
        let text = |x: f64| Float::new(x).map(|f| f.to_string());
        assert_eq!(text(0.1).as_deref(), Some("0.1"));
        assert_eq!(text(-1234.5).as_deref(), Some("-1234.5"));
        assert_eq!(text(0.0).as_deref(), Some("0"));
        assert_eq!(text(-0.0).as_deref(), Some("-0"));
        assert_eq!(text(1e20).as_deref(), Some("1e20"));
        assert_eq!(text(1.5e-7).as_deref(), Some("1.5e-7"));
        assert_eq!(
            text(123456789012345.6).as_deref(),
            Some("123456789012345.6")
        );
        assert_eq!(text(f64::MAX).as_deref(), Some("1.7976931348623157e308"));
        assert_eq!(text(5e-324).as_deref(), Some("5e-324"));
        assert_eq!(text(f64::NAN), None);
        for x in [
            0.1,
            1.0 / 3.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -2.5e-5,
            9.99e15,
            1e16,
        ] {
            let back: f64 = text(x).unwrap_or_default().parse().unwrap_or(f64::NAN);
            assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        }
        assert_eq!(Float::new(0.0), Float::new(0.0));
        assert_ne!(Float::new(0.0), Float::new(-0.0));
    }

    #[test]
    fn pg_type_names() {
        assert_eq!(FloatType::of_pg_type("float4"), Some(FloatType::Real));
        assert_eq!(
            FloatType::of_pg_type("double precision"),
            Some(FloatType::Double)
        );
        assert_eq!(FloatType::of_pg_type("numeric"), None);
    }
}
