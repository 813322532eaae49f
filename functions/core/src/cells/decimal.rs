//! Exact decimals (docs/spec/user_purchase.md, "Cell rules"): Brazilian
//! (`1.234,56`) and dot (`1234.56`) notations read on the text itself,
//! rounded half-even to the column's scale and checked against its
//! precision, so money never goes through a binary double on its way to
//! Postgres `numeric`.

use std::fmt;
use std::fmt::Write as _;

use super::{Cell, Reason, number_text};

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
pub(super) fn grouped_integer(s: &str) -> Option<String> {
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
pub(super) fn all_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Result<String, Reason> {
        parse_decimal(&Cell::Text(text), 14, 2).map(|d| d.to_string())
    }

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
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

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
    }
}
