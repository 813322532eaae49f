//! Fixtures shared by the cell rules' tests.

use chrono::NaiveDate;

pub(super) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
