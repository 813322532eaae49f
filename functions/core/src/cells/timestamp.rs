//! Dates with a time of day (docs/spec/datasets.md, "Column types",
//! `timestamp`): ISO 8601 text (`T` or a space, optional seconds and
//! fraction, optional `Z` or offset), `DD/MM/YYYY HH:MM[:SS]`, or a date-time
//! cell's serial (rounded to the millisecond); a value without an offset is in
//! the dataset's `timezone`. Postgres `timestamptz` keeps the instant,
//! `timestamp` the wall-clock time in the dataset's zone.

use std::cmp::Ordering;
use std::fmt;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    Timelike, Utc,
};

use super::date::{date_from_fields, serial_date_and_ms};
use super::{Cell, Reason};

/// How a `timestamp` column reads and stores its values
/// (docs/spec/datasets.md, "Column types"): the dataset's `timezone` for
/// values without an offset, and whether its `pg_type` is `timestamptz`
/// (the default) or `timestamp` (without time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampRule {
    /// The dataset's `timezone`: UTC unless declared.
    pub zone: FixedOffset,
    /// `timestamptz`: the value keeps its offset. `timestamp`: the value is
    /// the wall-clock time in `zone` (an offset in the file is converted).
    pub with_time_zone: bool,
}

impl Default for TimestampRule {
    fn default() -> Self {
        TimestampRule {
            zone: utc(),
            with_time_zone: true,
        }
    }
}

impl TimestampRule {
    /// Whether a `pg_type` names `timestamptz` (`Some(true)`) or `timestamp`
    /// without time zone (`Some(false)`), with an optional precision
    /// (`timestamptz(3)`); `None` for any other type.
    pub fn of_pg_type(name: &str) -> Option<bool> {
        let base = match name.split_once('(') {
            Some((base, rest)) => {
                let digits = rest.strip_suffix(')')?;
                matches!(digits.trim(), "0" | "1" | "2" | "3" | "4" | "5" | "6").then_some(())?;
                base.trim_end()
            }
            None => name,
        };
        match base {
            "timestamptz" | "timestamp with time zone" => Some(true),
            "timestamp" | "timestamp without time zone" => Some(false),
            _ => None,
        }
    }
}

fn utc() -> FixedOffset {
    Utc.fix()
}

/// A `timestamp` column's value (docs/spec/datasets.md, "Column types"), to
/// the microsecond, years 0001 to 9999 on its wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// For `timestamptz`: an instant with the offset it was read with (equal
    /// when the instants are).
    Zoned(DateTime<FixedOffset>),
    /// For `timestamp` without time zone: the wall-clock time in the
    /// dataset's zone.
    Local(NaiveDateTime),
}

impl Timestamp {
    /// Order of two values of one column (both zoned, or both local).
    pub fn compare(&self, other: &Timestamp) -> Option<Ordering> {
        match (self, other) {
            (Timestamp::Zoned(a), Timestamp::Zoned(b)) => Some(a.cmp(b)),
            (Timestamp::Local(a), Timestamp::Local(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// `COPY ... (FORMAT text)` form, which Postgres reads back exactly:
/// `YYYY-MM-DD HH:MM:SS`, `.ffffff` when there are microseconds, then for a
/// zoned value its offset `+HH:MM` (`+HH:MM:SS` if it has seconds).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (local, offset) = match self {
            Timestamp::Zoned(dt) => (dt.naive_local(), Some(dt.offset().local_minus_utc())),
            Timestamp::Local(n) => (*n, None),
        };
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            local.year(),
            local.month(),
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        )?;
        let micros = local.nanosecond() / 1_000;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        if let Some(seconds) = offset {
            let sign = if seconds < 0 { '-' } else { '+' };
            let s = seconds.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", s / 3600, s / 60 % 60)?;
            if s % 60 != 0 {
                write!(f, ":{:02}", s % 60)?;
            }
        }
        Ok(())
    }
}

/// A dataset's `timezone` (docs/spec/datasets.md, "Column types",
/// `timestamp`): `UTC` (or `Z`), or a fixed offset `+HH:MM` / `-HH:MM` (also
/// `-03` and `-0300`). A named zone (`America/Sao_Paulo`) is refused with a
/// message saying to use a fixed offset: its daylight-saving rules would need
/// the tz database.
pub fn parse_zone(text: &str) -> Result<FixedOffset, String> {
    let t = text.trim();
    if let Some(offset) = zone(t) {
        return Ok(offset);
    }
    let shown = crate::job::clip(t, 40);
    if t.contains('/') || t.chars().any(|c| c.is_ascii_alphabetic()) {
        Err(format!(
            "timezone `{shown}` is a named zone: use UTC or a fixed offset such as -03:00 \
             (named zones and their daylight-saving rules are not supported)"
        ))
    } else {
        Err(format!(
            "timezone `{shown}` is not UTC or a fixed offset such as -03:00"
        ))
    }
}

/// A `timestamp` cell (docs/spec/datasets.md, "Column types"); anything else
/// is `invalid_timestamp`.
///
/// Text (trimmed) is a date, `YYYY-MM-DD` or `DD/MM/YYYY` as in the date
/// rule, then optionally `T`, `t` or a space and a time `H:MM` or `HH:MM`,
/// optionally `:SS`, optionally a fraction (`.` or `,` and digits, rounded
/// to the microsecond), then optionally a zone (after an optional space): `Z`,
/// `UTC`, `+HH`, `+HHMM`, `+HH:MM` or `+HH:MM:SS` (or `-`), at most 15:59. A
/// date alone is midnight. A date-time cell's serial (see
/// [`Cell::DateSerial`]) is rounded to the millisecond. A bare number is not
/// a timestamp. Without a zone the value is in `rule.zone`; a `timestamp`
/// column without time zone stores the wall-clock time in `rule.zone`. The
/// wall-clock year must be within 0001..=9999.
pub fn parse_timestamp(cell: &Cell<'_>, rule: TimestampRule) -> Result<Timestamp, Reason> {
    let read = match *cell {
        Cell::DateSerial(serial) => serial_date_and_ms(serial).and_then(|(date, ms)| {
            let midnight = date.and_time(NaiveTime::MIN);
            let local = midnight.checked_add_signed(TimeDelta::milliseconds(i64::from(ms)))?;
            Some((local, None))
        }),
        Cell::Text(s) | Cell::Error(s) => timestamp_fields(s.trim()),
        _ => None,
    };
    let (local, offset) = read.ok_or(Reason::InvalidTimestamp)?;
    let zoned = local
        .and_local_timezone(offset.unwrap_or(rule.zone))
        .single()
        .ok_or(Reason::InvalidTimestamp)?;
    let value = if rule.with_time_zone {
        Timestamp::Zoned(zoned)
    } else {
        Timestamp::Local(zoned.with_timezone(&rule.zone).naive_local())
    };
    let wall_year = match value {
        Timestamp::Zoned(dt) => dt.naive_local().year(),
        Timestamp::Local(n) => n.year(),
    };
    if (1..=9999).contains(&wall_year) {
        Ok(value)
    } else {
        Err(Reason::InvalidTimestamp)
    }
}

/// The wall-clock time and the offset (if any) of a timestamp's text, in
/// the grammar of [`parse_timestamp`], the fraction rounded to the
/// microsecond. The one reading of timestamp text: cells here, and the
/// values Postgres prints for the exports (`2026-01-02 03:04:05+00`,
/// `2026-01-02 03:04:05.5-03:00`, `2026-01-02 03:04:05`).
pub fn timestamp_fields(s: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let date: NaiveDate = date_from_fields(s.get(..10)?)?;
    let rest = s.get(10..)?;
    if rest.is_empty() {
        return Some((date.and_time(NaiveTime::MIN), None));
    }
    let rest = rest.strip_prefix([' ', 'T', 't'])?;
    let (hms, micros, rest) = time_of_day(rest)?;
    let local = date
        .and_time(hms)
        .checked_add_signed(TimeDelta::microseconds(micros))?;
    if rest.is_empty() {
        return Some((local, None));
    }
    let zone_text = rest.strip_prefix(' ').unwrap_or(rest);
    Some((local, Some(zone(zone_text)?)))
}

/// `H:MM` or `HH:MM`, optionally `:SS` and then a fraction: the time, the
/// fraction in microseconds (rounded half up on its text, so it may be a
/// whole second), and what follows.
fn time_of_day(s: &str) -> Option<(NaiveTime, i64, &str)> {
    let (hour, s) = digits(s, 1, 2)?;
    let (minute, s) = digits(s.strip_prefix(':')?, 2, 2)?;
    let Some(s) = s.strip_prefix(':') else {
        return Some((NaiveTime::from_hms_opt(hour, minute, 0)?, 0, s));
    };
    let (second, s) = digits(s, 2, 2)?;
    let (micros, s) = match s.strip_prefix(['.', ',']) {
        Some(rest) => {
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return None;
            }
            let (fraction, rest) = rest.split_at(len);
            (fraction_micros(fraction), rest)
        }
        None => (0, s),
    };
    Some((NaiveTime::from_hms_opt(hour, minute, second)?, micros, s))
}

/// The microseconds of a fraction's digits, half up on the seventh digit.
fn fraction_micros(fraction: &str) -> i64 {
    let mut micros: i64 = 0;
    for i in 0..6 {
        let d = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        micros = micros * 10 + d;
    }
    if fraction.as_bytes().get(6).is_some_and(|&b| b >= b'5') {
        micros += 1;
    }
    micros
}

/// `min..=max` ASCII digits at the start of `s`, as a number, and the rest.
fn digits(s: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let len = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if len < min {
        return None;
    }
    let (number, rest) = s.split_at(len);
    Some((number.parse().ok()?, rest))
}

/// `Z`, `UTC`, or `+HH`, `+HHMM`, `+HH:MM`, `+HH:MM:SS` (or `-`), at most
/// 15:59:59 as Postgres takes it; nothing may follow.
fn zone(s: &str) -> Option<FixedOffset> {
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(utc());
    }
    let (sign, s) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (hours, s) = digits(s, 2, 2)?;
    let (minutes, seconds, s) = if let Some(rest) = s.strip_prefix(':') {
        let (minutes, rest) = digits(rest, 2, 2)?;
        match rest.strip_prefix(':') {
            Some(rest) => {
                let (seconds, rest) = digits(rest, 2, 2)?;
                (minutes, seconds, rest)
            }
            None => (minutes, 0, rest),
        }
    } else if s.is_empty() {
        (0, 0, s)
    } else {
        let (minutes, rest) = digits(s, 2, 2)?;
        (minutes, 0, rest)
    };
    if !s.is_empty() || hours > 15 || minutes > 59 || seconds > 59 {
        return None;
    }
    let total = i32::try_from(hours * 3600 + minutes * 60 + seconds).ok()?;
    FixedOffset::east_opt(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::test_support::date;

    fn offset(seconds: i32) -> FixedOffset {
        FixedOffset::east_opt(seconds).unwrap()
    }

    /// The COPY text of a timestamp cell read with `rule`.
    fn copy(text: &str, rule: TimestampRule) -> Result<String, Reason> {
        parse_timestamp(&Cell::Text(text), rule).map(|t| t.to_string())
    }

    fn utc_rule() -> TimestampRule {
        TimestampRule::default()
    }

    fn sao_paulo() -> TimestampRule {
        TimestampRule {
            zone: offset(-3 * 3600),
            with_time_zone: true,
        }
    }

    #[test]
    fn timestamp_text() {
        for (text, want) in [
            ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05+00:00"),
            ("2026-01-02 03:04:05", "2026-01-02 03:04:05+00:00"),
            ("2026-01-02t03:04:05z", "2026-01-02 03:04:05+00:00"),
            ("2026-01-02 03:04", "2026-01-02 03:04:00+00:00"),
            ("2026-01-02 3:04", "2026-01-02 03:04:00+00:00"),
            ("2026-01-02", "2026-01-02 00:00:00+00:00"),
            ("2026-01-02 03:04:05.5", "2026-01-02 03:04:05.500000+00:00"),
            ("2026-01-02 03:04:05,25", "2026-01-02 03:04:05.250000+00:00"),
            (
                "2026-01-02T03:04:05.123456789Z",
                "2026-01-02 03:04:05.123457+00:00",
            ),
            ("2026-01-02 23:59:59.9999995", "2026-01-03 00:00:00+00:00"),
            ("2026-01-02 03:04:05-03:00", "2026-01-02 03:04:05-03:00"),
            ("2026-01-02 03:04:05 -03:00", "2026-01-02 03:04:05-03:00"),
            ("2026-01-02 03:04:05+0530", "2026-01-02 03:04:05+05:30"),
            ("2026-01-02 03:04:05+00", "2026-01-02 03:04:05+00:00"),
            ("2026-01-02 03:04:05-03", "2026-01-02 03:04:05-03:00"),
            ("2026-01-02 03:04:05 UTC", "2026-01-02 03:04:05+00:00"),
            (
                "2026-01-02 03:04:05+05:53:28",
                "2026-01-02 03:04:05+05:53:28",
            ),
            ("2026-01-02 03:04:05+15:59", "2026-01-02 03:04:05+15:59"),
            (" 02/01/2026 03:04 ", "2026-01-02 03:04:00+00:00"),
            ("02/01/2026 03:04:05", "2026-01-02 03:04:05+00:00"),
            ("02/01/2026", "2026-01-02 00:00:00+00:00"),
            ("0001-01-01 00:00:00", "0001-01-01 00:00:00+00:00"),
            (
                "9999-12-31 23:59:59.999999",
                "9999-12-31 23:59:59.999999+00:00",
            ),
        ] {
            assert_eq!(copy(text, utc_rule()).as_deref(), Ok(want), "{text}");
        }
        for text in [
            "",
            "NULL",
            "2026-01-02T",
            "2026-01-02 T03:04",
            "2026-01-02 03:04.5",
            "2026-01-02x03:04",
            "2026-01-0203:04",
            "2026-01-02 03",
            "2026-01-02 03:4",
            "2026-01-02 003:04",
            "2026-01-02 24:00",
            "2026-01-02 23:60",
            "2026-01-02 23:59:60",
            "2026-01-02 03:04:05.",
            "2026-01-02 03:04:05.x",
            "2026-01-02 03:04:05 foo",
            "2026-01-02 03:04:05+16:00",
            "2026-01-02 03:04:05+3",
            "2026-01-02 03:04:05+03:0",
            "2026-01-02 03:04:05+03:60",
            "2026-01-02 03:04:05Z+01",
            "2026-01-02 03:04:05  Z",
            "2026-02-30 03:04",
            "2026-1-2 03:04",
            "2/1/2026 03:04",
            "02.01.2026 03:04",
            "0000-01-01 00:00",
            "2026-01-02 03:04:05 BC",
            "1767323045",
            "10h30",
        ] {
            assert_eq!(
                copy(text, utc_rule()),
                Err(Reason::InvalidTimestamp),
                "{text}"
            );
        }
        // The wall-clock year stays within 0001..=9999.
        assert_eq!(
            copy("9999-12-31 23:59:59.9999999", utc_rule()),
            Err(Reason::InvalidTimestamp)
        );
    }

    #[test]
    fn values_without_an_offset_are_in_the_dataset_zone() {
        assert_eq!(
            copy("2026-01-02 03:04:05", sao_paulo()).as_deref(),
            Ok("2026-01-02 03:04:05-03:00")
        );
        // An offset in the file wins, and the instant is kept.
        assert_eq!(
            copy("2026-01-02 03:04:05Z", sao_paulo()).as_deref(),
            Ok("2026-01-02 03:04:05+00:00")
        );
        assert_eq!(
            parse_timestamp(&Cell::Text("2026-01-02 00:04:05-03:00"), utc_rule()),
            parse_timestamp(&Cell::Text("2026-01-02 03:04:05Z"), utc_rule()),
            "equal instants are equal values"
        );
        // `timestamp` without time zone: the wall-clock time in the zone.
        let local = TimestampRule {
            with_time_zone: false,
            ..sao_paulo()
        };
        assert_eq!(
            copy("2026-01-02 03:04:05", local).as_deref(),
            Ok("2026-01-02 03:04:05")
        );
        assert_eq!(
            copy("2026-01-02 03:04:05Z", local).as_deref(),
            Ok("2026-01-02 00:04:05")
        );
        assert_eq!(
            copy("2026-01-02 03:04:05.25+01:00", local).as_deref(),
            Ok("2026-01-01 23:04:05.250000")
        );
        // Converted out of the years Postgres and spreadsheets share.
        assert_eq!(
            copy("0001-01-01 01:00:00Z", local),
            Err(Reason::InvalidTimestamp)
        );
    }

    #[test]
    fn date_time_cells_are_rounded_to_the_millisecond() {
        let serial =
            |n: f64, rule| parse_timestamp(&Cell::DateSerial(n), rule).map(|t| t.to_string());
        assert_eq!(
            serial(41416.0, utc_rule()).as_deref(),
            Ok("2013-05-22 00:00:00+00:00")
        );
        assert_eq!(
            serial(41416.75, sao_paulo()).as_deref(),
            Ok("2013-05-22 18:00:00-03:00")
        );
        // 12:00:00.1234 → .123; a binary double just short of midnight → midnight.
        assert_eq!(
            serial(41416.5 + 0.1234 / 86_400.0, utc_rule()).as_deref(),
            Ok("2013-05-22 12:00:00.123000+00:00")
        );
        assert_eq!(
            serial(42571.9999999998, utc_rule()).as_deref(),
            Ok("2016-07-21 00:00:00+00:00")
        );
        for n in [60.0, 60.5, 0.5, -1.0, f64::NAN, 2_958_466.0] {
            assert_eq!(serial(n, utc_rule()), Err(Reason::InvalidTimestamp), "{n}");
        }
        for cell in [Cell::Number(41416.5), Cell::Bool(true), Cell::Empty] {
            assert_eq!(
                parse_timestamp(&cell, utc_rule()),
                Err(Reason::InvalidTimestamp),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn timestamp_fields_read_what_postgres_prints() {
        let at = |h, m, s, micro| date(2026, 1, 2).and_hms_micro_opt(h, m, s, micro).unwrap();
        assert_eq!(
            timestamp_fields("2026-01-02 03:04:05+00"),
            Some((at(3, 4, 5, 0), Some(offset(0))))
        );
        assert_eq!(
            timestamp_fields("2026-01-02 03:04:05.123456-03"),
            Some((at(3, 4, 5, 123_456), Some(offset(-3 * 3600))))
        );
        assert_eq!(
            timestamp_fields("2026-01-02 03:04:05"),
            Some((at(3, 4, 5, 0), None))
        );
        assert_eq!(timestamp_fields("2026-01-02 03:04:05 BC"), None);
        assert_eq!(timestamp_fields("12026-01-02 03:04:05+00"), None);
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("UTC"), Ok(offset(0)));
        assert_eq!(parse_zone("Z"), Ok(offset(0)));
        assert_eq!(parse_zone("-03:00"), Ok(offset(-3 * 3600)));
        assert_eq!(parse_zone("+05:30"), Ok(offset(5 * 3600 + 1800)));
        assert_eq!(parse_zone("-0300"), Ok(offset(-3 * 3600)));
        assert_eq!(
            parse_zone("America/Sao_Paulo"),
            Err(
                "timezone `America/Sao_Paulo` is a named zone: use UTC or a fixed offset such as \
                 -03:00 (named zones and their daylight-saving rules are not supported)"
                    .into()
            )
        );
        assert!(parse_zone("BRT").unwrap_err().contains("named zone"));
        assert_eq!(
            parse_zone("+25:00"),
            Err("timezone `+25:00` is not UTC or a fixed offset such as -03:00".into())
        );
    }

    #[test]
    fn pg_type_names() {
        assert_eq!(TimestampRule::of_pg_type("timestamptz"), Some(true));
        assert_eq!(
            TimestampRule::of_pg_type("timestamp with time zone"),
            Some(true)
        );
        assert_eq!(TimestampRule::of_pg_type("timestamp"), Some(false));
        assert_eq!(TimestampRule::of_pg_type("timestamp(3)"), Some(false));
        assert_eq!(TimestampRule::of_pg_type("timestamptz(6)"), Some(true));
        assert_eq!(TimestampRule::of_pg_type("timestamptz(7)"), None);
        assert_eq!(TimestampRule::of_pg_type("date"), None);
    }
}
