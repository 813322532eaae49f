//! Dates (docs/spec/user_purchase.md, "Cell rules", `data_ultima_compra`):
//! ISO `YYYY-MM-DD` or Brazilian `DD/MM/YYYY` text, or a date cell's serial
//! in Excel's 1900 date system (fictitious 1900-02-29 included), within the
//! years 0001 to 9999 that Postgres and spreadsheets share.

use chrono::{Days, NaiveDate};

use super::{Cell, Reason};

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
    serial_date_and_ms(serial).map(|(date, _)| date)
}

/// A 1900-system serial as its date and the milliseconds since that day's
/// midnight, the serial first rounded to the nearest millisecond (see
/// [`date_from_serial`]): the one reading of a serial, for date cells here and
/// date-time cells in `timestamp` columns (docs/spec/datasets.md, "Column
/// types").
pub(super) fn serial_date_and_ms(serial: f64) -> Option<(NaiveDate, u32)> {
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
    let ms_of_day = (ms - days as f64 * MS_PER_DAY) as u32;
    let day_zero = match days {
        60 => return None,
        ..60 => NaiveDate::from_ymd_opt(1899, 12, 31)?,
        _ => NaiveDate::from_ymd_opt(1899, 12, 30)?,
    };
    Some((day_zero.checked_add_days(Days::new(days))?, ms_of_day))
}

fn date_from_text(s: &str) -> Option<NaiveDate> {
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    if !rest.is_empty() && !is_time_part(rest) {
        return None;
    }
    date_from_fields(date)
}

/// The date of a ten-character `YYYY-MM-DD` or `DD/MM/YYYY` text (two-digit
/// day and month, four-digit year, 0001..=9999), if it is one: the date part
/// of date cells here and of `timestamp` cells (docs/spec/datasets.md,
/// "Column types").
pub(super) fn date_from_fields(date: &str) -> Option<NaiveDate> {
    let b = date.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let (year, month, day) = match iso_date_fields(date) {
        Some((year, month, day)) => (year.as_bytes(), month.as_bytes(), day.as_bytes()),
        None if b[2] == b'/' && b[5] == b'/' => (&b[6..], &b[3..5], &b[..2]),
        None => return None,
    };
    let year = i32::try_from(ascii_number(year)?).ok()?;
    if year < 1 {
        // Postgres has no year 0; chrono would print one.
        return None;
    }
    NaiveDate::from_ymd_opt(year, ascii_number(month)?, ascii_number(day)?)
}

/// The year, month and day of a `YYYY-MM-DD` text, as written: `s` is ten
/// bytes with `-` at 4 and 7. What stands between the dashes is not checked
/// (each caller reads the numbers its own way). The one place that says what
/// an ISO date looks like: text cells here, and the dates Postgres hands the
/// CSV and xlsx exports.
pub fn iso_date_fields(s: &str) -> Option<(&str, &str, &str)> {
    let b = s.as_bytes();
    // `-` is ASCII, so 4, 5, 7 and 8 are character boundaries.
    (b.len() == 10 && b[4] == b'-' && b[7] == b'-').then(|| (&s[..4], &s[5..7], &s[8..]))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::test_support::date;

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
    fn iso_date_fields_split_ten_bytes_at_their_dashes() {
        assert_eq!(iso_date_fields("2013-05-22"), Some(("2013", "05", "22")));
        // The shape only: the numbers are the caller's to read.
        assert_eq!(iso_date_fields("2013-13-99"), Some(("2013", "13", "99")));
        assert_eq!(iso_date_fields("abcd-ef-gh"), Some(("abcd", "ef", "gh")));
        assert_eq!(iso_date_fields("+123-05-22"), Some(("+123", "05", "22")));
        assert_eq!(iso_date_fields("ú12-05-22"), Some(("ú12", "05", "22")));
        for s in [
            "",
            "2013-05-2",
            "2013-05-222",
            "2013-05-22 10:30",
            "2013/05/22",
            "22/05/2013",
            "2013-0522-",
            "20130-5-22",
            "２０１３-05-22",
        ] {
            assert_eq!(iso_date_fields(s), None, "{s}");
        }
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
    fn serials_split_into_a_date_and_milliseconds() {
        assert_eq!(serial_date_and_ms(41416.0), Some((date(2013, 5, 22), 0)));
        assert_eq!(
            serial_date_and_ms(41416.5),
            Some((date(2013, 5, 22), 43_200_000))
        );
        // 0.1234 ms past midnight rounds to the millisecond.
        assert_eq!(
            serial_date_and_ms(41416.0 + 1.234 / 86_400_000.0),
            Some((date(2013, 5, 22), 1))
        );
        assert_eq!(
            serial_date_and_ms(42571.9999999998),
            Some((date(2016, 7, 21), 0))
        );
        assert_eq!(serial_date_and_ms(60.5), None);
        assert_eq!(serial_date_and_ms(0.5), None);
        assert_eq!(date_from_fields("22/05/2013"), Some(date(2013, 5, 22)));
        assert_eq!(date_from_fields("2013-05-22"), Some(date(2013, 5, 22)));
        assert_eq!(date_from_fields("2013-05-2"), None);
        assert_eq!(date_from_fields("ú013-05-22"), None);
    }

    #[test]
    fn only_date_cells_and_text_are_dates() {
        for cell in [Cell::Number(41416.0), Cell::Bool(true), Cell::Empty] {
            assert_eq!(parse_date(&cell), Err(Reason::InvalidDate), "{cell:?}");
        }
    }
}
