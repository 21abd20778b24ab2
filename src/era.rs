//! Calendar days and Numerai eras: the one place dates turn into day counts and YYYYMMDD eras.
//!
//! A day is an `i32` count since 1970-01-01 (how tables keep dates); an era is its Friday written
//! as the integer YYYYMMDD (how Numerai names eras and how models, splits and reports store them).

use chrono::{Datelike, NaiveDate};

/// Names of the weekdays, indexed by [`weekday`] (0 = Monday).
pub const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
}

/// Days since 1970-01-01 of a calendar date.
pub fn days_from_date(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

/// The calendar date of a day number.
pub fn date_from_days(days: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(days as i64)
}

/// Day of the week of a day count since 1970-01-01 (a Thursday): 0 = Monday … 6 = Sunday.
pub fn weekday(days: i32) -> usize {
    (days + 3).rem_euclid(7) as usize
}

/// Parses an 8-digit `YYYYMMDD` integer (Numerai's `friday_date`).
pub fn parse_yyyymmdd(v: i64) -> Option<NaiveDate> {
    if !(10000101..=99991231).contains(&v) {
        return None;
    }
    NaiveDate::from_ymd_opt((v / 10_000) as i32, ((v / 100) % 100) as u32, (v % 100) as u32)
}

/// Parses a calendar date written `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date_str(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return parse_yyyymmdd(s.parse().ok()?);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A date as the integer YYYYMMDD.
pub fn yyyymmdd(d: NaiveDate) -> i32 {
    d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32
}

/// The era (YYYYMMDD) of a Friday given as days since 1970-01-01.
pub fn era_of_days(days: i32) -> i32 {
    yyyymmdd(date_from_days(days))
}

/// The eras of a column of Fridays (days since 1970-01-01), row by row.
pub fn eras_of_days(days: &[i32]) -> Vec<i32> {
    days.iter().map(|&d| era_of_days(d)).collect()
}

/// Days since 1970-01-01 of an era (YYYYMMDD); 0 for a number that is not a date.
pub fn days_of_era(era: i32) -> i32 {
    parse_yyyymmdd(era as i64).map(days_from_date).unwrap_or(0)
}

/// An era from text written `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_era(s: &str) -> Option<i32> {
    parse_date_str(s).or_else(|| s.parse::<i64>().ok().and_then(parse_yyyymmdd)).map(yyyymmdd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_round_trip() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let days = days_from_date(d);
        assert_eq!(date_from_days(days), d);
        assert_eq!(era_of_days(days), 20240301);
        assert_eq!(days_of_era(20240301), days);
        assert_eq!(days_of_era(20241301), 0);
        assert_eq!(parse_era("2024-03-01"), Some(20240301));
        assert_eq!(parse_era("20240301"), Some(20240301));
        assert_eq!(parse_era("March"), None);
        assert_eq!(WEEKDAYS[weekday(days)], "Friday");
    }
}
