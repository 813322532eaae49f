//! Postgres `COPY ... (FORMAT text)` encoding of what the rules
//! accept (PostgreSQL documentation, COPY, "Text Format"): `\N` for NULL,
//! backslash escapes for the characters that would split a field or a row,
//! one tab-separated line per row. `crate::export::split_copy_line` reads
//! the same format back; the escapes of both are `crate::copy_format`'s.

use std::fmt::Write as _;

use chrono::Datelike;

use super::{ValidRow, Value};
use crate::copy_format;

impl Value {
    /// Appends the value in `COPY ... (FORMAT text)` form: `\N` for NULL,
    /// `t`/`f`, ISO dates, plain decimals and integers, floats as the
    /// shortest text that reads back exactly, timestamps as `YYYY-MM-DD
    /// HH:MM:SS[.ffffff]` with `+HH:MM` when zoned (docs/spec/datasets.md,
    /// "Column types"), and text with backslash, tab, newline and carriage
    /// return escaped so they cannot split fields or rows.
    pub fn write_copy_text(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str(copy_format::NULL),
            Value::Text(s) => {
                for c in s.chars() {
                    match copy_format::escape(c) {
                        Some(letter) => {
                            out.push('\\');
                            out.push(letter);
                        }
                        None => out.push(c),
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
            Value::Integer(n) => {
                let _ = write!(out, "{n}");
            }
            // The shortest text that reads back as the same double.
            Value::Float(x) => {
                let _ = write!(out, "{x}");
            }
            // `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]`, years 0001..=9999.
            Value::Timestamp(t) => {
                let _ = write!(out, "{t}");
            }
        }
    }
}

impl ValidRow {
    /// Appends the row as one `COPY ... (FORMAT text)` line: the values, then
    /// the validity flags, tab-separated, in [`Dataset::stored_columns`](crate::dataset::Dataset::stored_columns) order.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::test_support::date;
    use crate::cells::{Decimal, Timestamp};

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
        assert_eq!(copy(Value::Integer(-42)), "-42");
        assert_eq!(copy(Value::Integer(i64::MIN)), "-9223372036854775808");
        let float = |x: f64| copy(Value::Float(crate::cells::Float::new(x).unwrap()));
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(-2.5e-7), "-2.5e-7");
        assert_eq!(float(1e300), "1e300");
        assert_eq!(float(-0.0), "-0");
        let zone = |hours: i32| chrono::FixedOffset::east_opt(hours * 3600).unwrap();
        let at = date(2026, 1, 2).and_hms_micro_opt(3, 4, 5, 0).unwrap();
        let zoned = |local: chrono::NaiveDateTime, hours| {
            Timestamp::Zoned(local.and_local_timezone(zone(hours)).unwrap())
        };
        assert_eq!(
            copy(Value::Timestamp(zoned(at, 0))),
            "2026-01-02 03:04:05+00:00"
        );
        assert_eq!(
            copy(Value::Timestamp(zoned(at, -3))),
            "2026-01-02 03:04:05-03:00"
        );
        let micro = date(1, 1, 1).and_hms_micro_opt(0, 0, 0, 120).unwrap();
        assert_eq!(
            copy(Value::Timestamp(zoned(micro, 5))),
            "0001-01-01 00:00:00.000120+05:00"
        );
        assert_eq!(
            copy(Value::Timestamp(Timestamp::Local(at))),
            "2026-01-02 03:04:05"
        );
    }
}
