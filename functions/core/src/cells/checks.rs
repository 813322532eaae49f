//! Checks a column may add to its type (docs/spec/datasets.md, "Column
//! types", the paragraph under the table): `max_length`, `one_of`, `pattern`
//! and `email` on text, `min`/`max` on numbers, dates and timestamps. They
//! run after the type's rule, on the value it made, in that order.

use std::cmp::Ordering;
use std::fmt;

use chrono::NaiveDate;
use regex::{Regex, RegexBuilder};

use super::{Decimal, Float, Reason, Refusal, Timestamp, Value, listed};

/// A column's `min` or `max`, read by the column's own type rule
/// (docs/spec/datasets.md, "Column types").
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    /// Of an `integer` column, within its Postgres type.
    Integer(i64),
    /// Of a `float` column.
    Float(Float),
    /// Of a `decimal` column, at its scale.
    Decimal(Decimal),
    /// Of a `date` column.
    Date(NaiveDate),
    /// Of a `timestamp` column, zoned or local as its values are.
    Timestamp(Timestamp),
}

impl Limit {
    /// How two limits of one column compare (`min` against `max`).
    pub fn compare(&self, other: &Limit) -> Option<Ordering> {
        other.order_of(&self.as_value())
    }

    /// The limit as the value of its type.
    fn as_value(&self) -> Value {
        match self {
            Limit::Integer(v) => Value::Integer(*v),
            Limit::Float(v) => Value::Float(*v),
            Limit::Decimal(v) => Value::Decimal(*v),
            Limit::Date(v) => Value::Date(*v),
            Limit::Timestamp(v) => Value::Timestamp(*v),
        }
    }

    /// How `value` compares with the limit; `None` for a value of another
    /// type (which the loader never pairs with it).
    fn order_of(&self, value: &Value) -> Option<Ordering> {
        match (value, self) {
            (Value::Integer(v), Limit::Integer(l)) => Some(v.cmp(l)),
            (Value::Float(v), Limit::Float(l)) => v.get().partial_cmp(&l.get()),
            (Value::Decimal(v), Limit::Decimal(l)) => decimal_order(*v, *l),
            (Value::Date(v), Limit::Date(l)) => Some(v.cmp(l)),
            (Value::Timestamp(v), Limit::Timestamp(l)) => v.compare(l),
            _ => None,
        }
    }
}

/// As a message shows it: the COPY text of the value (`10`, `0.5`,
/// `2020-01-01`, `2020-01-01 00:00:00+00:00`).
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Integer(v) => write!(f, "{v}"),
            Limit::Float(v) => write!(f, "{v}"),
            Limit::Decimal(v) => write!(f, "{v}"),
            Limit::Date(v) => write!(f, "{}", v.format("%Y-%m-%d")),
            Limit::Timestamp(v) => write!(f, "{v}"),
        }
    }
}

/// Two decimals compared exactly, whatever their scales (`None` if aligning
/// them overflows, which a column's own values and limits never do: they
/// share its scale).
fn decimal_order(a: Decimal, b: Decimal) -> Option<Ordering> {
    let scale = a.scale().max(b.scale());
    let align = |d: Decimal| {
        d.units()
            .checked_mul(10i128.checked_pow(scale - d.scale())?)
    };
    Some(align(a)?.cmp(&align(b)?))
}

/// A column's `pattern` (docs/spec/datasets.md, "Column types"): a regular
/// expression (the `regex` crate's syntax) the whole trimmed text must match,
/// compiled once, when the dataset is loaded.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    whole: Regex,
}

impl Pattern {
    /// Compiles `source` anchored at both ends (`\A(?:source)\z`); the error
    /// is the one line that says what is wrong with it.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let compile = |text: &str| {
            RegexBuilder::new(text)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    let text = e.to_string();
                    let line = text
                        .lines()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or(&text)
                        .to_owned();
                    format!(
                        "pattern `{}` is not a regular expression: {line}",
                        crate::job::clip(source, 60)
                    )
                })
        };
        // Alone first: `a)|(b` would otherwise close the anchoring group.
        compile(source)?;
        Ok(Pattern {
            source: source.to_owned(),
            whole: compile(&format!(r"\A(?:{source})\z"))?,
        })
    }

    /// The expression as declared.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.whole.is_match(text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// The `email` check (docs/spec/datasets.md, "Column types"): a practical
/// address check, not RFC 5322. Exactly one `@` with something before it;
/// after it a domain of two or more dot-separated labels, none empty; no
/// whitespace or control characters anywhere.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// What a column adds to its type (docs/spec/datasets.md, "Column types"),
/// as the loader read it from the declaration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    /// Text: at most this many characters (Unicode scalar values, as
    /// Postgres counts `varchar(n)`): `too_long`.
    pub max_length: Option<u32>,
    /// Text: one of these, exactly (after trimming): `not_in_list`.
    pub one_of: Vec<String>,
    /// Text: matches as a whole: `pattern_mismatch`.
    pub pattern: Option<Pattern>,
    /// Text: an email address by [`is_email`]: `invalid_email`.
    pub email: bool,
    /// Numbers, dates, timestamps: at least this: `out_of_range`.
    pub min: Option<Limit>,
    /// Numbers, dates, timestamps: at most this: `out_of_range`.
    pub max: Option<Limit>,
}

impl Checks {
    /// No check declared: the type's rule alone decides.
    pub fn is_empty(&self) -> bool {
        self.max_length.is_none()
            && self.one_of.is_empty()
            && self.pattern.is_none()
            && !self.email
            && self.min.is_none()
            && self.max.is_none()
    }

    /// Applies the checks to a value the type's rule accepted, in the order
    /// of the fields; the first failing one refuses it, with what the column
    /// takes. NULL passes every check.
    pub fn apply(&self, value: &Value) -> Result<(), Refusal> {
        if let Value::Text(text) = value {
            if let Some(limit) = self.max_length {
                let length = text.chars().count();
                if length > limit as usize {
                    return Err(Refusal::new(
                        Reason::TooLong,
                        format!("{length} characters, the limit is {limit}"),
                    ));
                }
            }
            if !self.one_of.is_empty() && !self.one_of.iter().any(|v| v == text) {
                return Err(Refusal::new(Reason::NotInList, listed(&self.one_of)));
            }
            if let Some(pattern) = &self.pattern
                && !pattern.matches(text)
            {
                return Err(Refusal::new(
                    Reason::PatternMismatch,
                    crate::job::clip(pattern.source(), 60),
                ));
            }
            if self.email && !is_email(text) {
                return Err(Reason::InvalidEmail.into());
            }
        }
        let below = self
            .min
            .as_ref()
            .and_then(|min| min.order_of(value))
            .is_some_and(Ordering::is_lt);
        let above = self
            .max
            .as_ref()
            .and_then(|max| max.order_of(value))
            .is_some_and(Ordering::is_gt);
        if below || above {
            return Err(Refusal::new(Reason::OutOfRange, self.range_text()));
        }
        Ok(())
    }

    /// `1 to 10`, `at least 1`, `at most 10`.
    fn range_text(&self) -> String {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => format!("{min} to {max}"),
            (Some(min), None) => format!("at least {min}"),
            (None, Some(max)) => format!("at most {max}"),
            (None, None) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::test_support::date;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn max_length_counts_characters() {
        let checks = Checks {
            max_length: Some(3),
            ..Checks::default()
        };
        assert_eq!(checks.apply(&text("abc")), Ok(()));
        assert_eq!(checks.apply(&text("ção")), Ok(()));
        assert_eq!(checks.apply(&text("")), Ok(()));
        assert_eq!(
            checks.apply(&text("abcd")),
            Err(Refusal::new(
                Reason::TooLong,
                "4 characters, the limit is 3"
            ))
        );
        assert_eq!(checks.apply(&Value::Null), Ok(()));
    }

    #[test]
    fn one_of_is_exact() {
        let checks = Checks {
            one_of: vec!["BR".into(), "PT".into()],
            ..Checks::default()
        };
        assert_eq!(checks.apply(&text("BR")), Ok(()));
        for t in ["br", "B R", "BRA", ""] {
            assert_eq!(
                checks.apply(&text(t)),
                Err(Refusal::new(Reason::NotInList, "BR or PT")),
                "{t}"
            );
        }
    }

    #[test]
    fn patterns_match_the_whole_text() {
        let sku = Pattern::new("[A-Z]{3}-\\d{4}").unwrap();
        assert!(sku.matches("ABC-1234"));
        assert!(!sku.matches("xABC-1234"));
        assert!(!sku.matches("ABC-12345"));
        assert!(!sku.matches("abc-1234"));
        let either = Pattern::new("a|b").unwrap();
        assert!(either.matches("a") && either.matches("b") && !either.matches("ab"));
        let folded = Pattern::new("(?i)ção").unwrap();
        assert!(folded.matches("ÇÃO"));
        let checks = Checks {
            pattern: Some(sku),
            ..Checks::default()
        };
        assert_eq!(checks.apply(&text("ABC-1234")), Ok(()));
        assert_eq!(
            checks.apply(&text("ABC-12")),
            Err(Refusal::new(Reason::PatternMismatch, "[A-Z]{3}-\\d{4}"))
        );
        assert_eq!(
            Pattern::new("[a-").unwrap_err(),
            "pattern `[a-` is not a regular expression: unclosed character class"
        );
        assert!(Pattern::new("a)|(b").is_err());
        assert!(Pattern::new("(?<x>a").is_err());
        assert!(Pattern::new("a{1000000}").is_err(), "beyond the size limit");
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "first.last+tag@mail.example.com.br",
            "josé@exemplo.com.br",
            "x@[1.2.3.4]",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@",
            "a@.co",
            "a@b.",
            "a@b..co",
            "a@@b.co",
            "a@b@c.co",
            "a b@c.co",
            "a@b.co ",
            "a@b\u{a0}.co",
            "a@b.co\n",
        ] {
            assert!(!is_email(bad), "{bad:?}");
        }
        let checks = Checks {
            email: true,
            ..Checks::default()
        };
        assert_eq!(checks.apply(&text("a@b")), Err(Reason::InvalidEmail.into()));
    }

    #[test]
    fn min_and_max_per_type() {
        let range = |min, max| Checks {
            min,
            max,
            ..Checks::default()
        };
        let ints = range(Some(Limit::Integer(1)), Some(Limit::Integer(10)));
        assert_eq!(ints.apply(&Value::Integer(1)), Ok(()));
        assert_eq!(ints.apply(&Value::Integer(10)), Ok(()));
        assert_eq!(
            ints.apply(&Value::Integer(0)),
            Err(Refusal::new(Reason::OutOfRange, "1 to 10"))
        );
        assert_eq!(
            ints.apply(&Value::Integer(11)),
            Err(Refusal::new(Reason::OutOfRange, "1 to 10"))
        );
        let floats = range(Float::new(0.0).map(Limit::Float), None);
        assert_eq!(
            floats.apply(&Value::Float(Float::new(0.5).unwrap())),
            Ok(())
        );
        assert_eq!(
            floats.apply(&Value::Float(Float::new(-0.5).unwrap())),
            Err(Refusal::new(Reason::OutOfRange, "at least 0"))
        );
        let money = range(None, Some(Limit::Decimal(Decimal::new(10000, 2))));
        assert_eq!(money.apply(&Value::Decimal(Decimal::new(10000, 2))), Ok(()));
        assert_eq!(
            money.apply(&Value::Decimal(Decimal::new(10001, 2))),
            Err(Refusal::new(Reason::OutOfRange, "at most 100.00"))
        );
        assert_eq!(
            decimal_order(Decimal::new(1, 0), Decimal::new(100, 2)),
            Some(Ordering::Equal)
        );
        let dates = range(Some(Limit::Date(date(2020, 1, 1))), None);
        assert_eq!(dates.apply(&Value::Date(date(2020, 1, 1))), Ok(()));
        assert_eq!(
            dates.apply(&Value::Date(date(2019, 12, 31))),
            Err(Refusal::new(Reason::OutOfRange, "at least 2020-01-01"))
        );
        // NULL and values of other types pass.
        assert_eq!(ints.apply(&Value::Null), Ok(()));
        assert_eq!(ints.apply(&text("0")), Ok(()));
    }

    #[test]
    fn checks_run_in_order() {
        let checks = Checks {
            max_length: Some(5),
            one_of: vec!["a@b.c".into(), "toolong@b.c".into(), "abc".into()],
            pattern: Some(Pattern::new("[a-z@.]+").unwrap()),
            email: true,
            ..Checks::default()
        };
        assert!(!checks.is_empty());
        assert!(Checks::default().is_empty());
        assert_eq!(checks.apply(&text("a@b.c")), Ok(()));
        let reason = |t: &str| checks.apply(&text(t)).map_err(|r| r.reason);
        assert_eq!(reason("toolong@b.c"), Err(Reason::TooLong));
        assert_eq!(reason("x@b.c"), Err(Reason::NotInList));
        assert_eq!(reason("abc"), Err(Reason::InvalidEmail));
    }
}
