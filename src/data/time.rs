//! Instants and dates: parsing every form headline feeds use, always to UTC microseconds.
//!
//! The point-in-time rule lives on these numbers: a day-only date D means "some time on D in the
//! feed's zone", so it is stored as the last microsecond of D in that zone (UTC when no zone is
//! named), the latest moment it could have been published; it is visible only to cutoffs after
//! D has ended there.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

/// Microseconds in one day.
pub const US_PER_DAY: i64 = 86_400_000_000;
/// Microseconds in one hour.
pub const US_PER_HOUR: i64 = 3_600_000_000;

/// A time zone named by the user for naive timestamps: an IANA name or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// An IANA zone such as `America/New_York` (daylight saving handled).
    Named(chrono_tz::Tz),
    /// A fixed offset such as `+05:30` or `UTC`.
    Fixed(FixedOffset),
}

impl std::str::FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset")));
        }
        if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(tz));
        }
        if let Ok(off) = t.parse::<FixedOffset>() {
            return Ok(Zone::Fixed(off));
        }
        Err(format!(
            "unknown time zone '{s}': use an IANA name (America/New_York, Europe/London), UTC, or an offset like +05:30"
        ))
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Fixed(off) => write!(f, "{off}"),
        }
    }
}

impl Zone {
    /// UTC microseconds of a wall-clock time in this zone. An ambiguous time (clocks going back)
    /// takes the later instant, the one that can never leak; a time that does not exist is an error.
    pub fn to_utc_us(&self, naive: NaiveDateTime) -> Result<i64, String> {
        let pick = |earliest: Option<i64>, latest: Option<i64>| {
            latest
                .or(earliest)
                .ok_or_else(|| format!("{naive} does not exist in this time zone (a daylight-saving gap)"))
        };
        match self {
            Zone::Named(tz) => {
                let r = tz.from_local_datetime(&naive);
                pick(r.earliest().map(|d| d.timestamp_micros()), r.latest().map(|d| d.timestamp_micros()))
            }
            Zone::Fixed(off) => {
                let r = off.from_local_datetime(&naive);
                pick(r.earliest().map(|d| d.timestamp_micros()), r.latest().map(|d| d.timestamp_micros()))
            }
        }
    }
}

impl Zone {
    /// The last UTC microsecond of calendar day `days` (since 1970-01-01) in this zone: one
    /// microsecond before the next local midnight, or before the first local instant of the next
    /// day when a daylight-saving gap swallows midnight.
    pub fn end_of_day_us(&self, days: i32) -> i64 {
        let next = date_from_days(days + 1).and_hms_opt(0, 0, 0).expect("midnight");
        (0..=24 * 60)
            .find_map(|m| self.to_utc_us(next + chrono::Duration::minutes(m)).ok())
            .expect("a local day has an instant within 24 hours of midnight")
            - 1
    }
}

/// A parsed publication stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// An exact instant, UTC microseconds since the epoch.
    Instant(i64),
    /// A day-only date, days since 1970-01-01.
    Day(i32),
}

impl Stamp {
    /// The latest UTC microsecond this stamp may stand for: a day-only date is the last
    /// microsecond of that day in the feed's `zone` (UTC when none is named).
    pub fn latest_us(self, zone: Option<&Zone>) -> i64 {
        match (self, zone) {
            (Stamp::Instant(us), _) => us,
            (Stamp::Day(d), None) => (d as i64 + 1) * US_PER_DAY - 1,
            (Stamp::Day(d), Some(z)) => z.end_of_day_us(d),
        }
    }
}

pub use crate::era::{date_from_days, days_from_date, parse_date_str, parse_yyyymmdd};

/// Epoch integer to microseconds, the unit chosen by magnitude: below 1e11 seconds, below 1e14
/// milliseconds, below 1e17 microseconds, else nanoseconds.
pub fn epoch_to_us(v: i64) -> i64 {
    let a = v.unsigned_abs();
    if a < 100_000_000_000 {
        v * 1_000_000
    } else if a < 100_000_000_000_000 {
        v * 1_000
    } else if a < 100_000_000_000_000_000 {
        v
    } else {
        v / 1_000
    }
}

/// Explains the accepted forms; appended to every timestamp error.
pub const FORMS: &str = "accepted: RFC 3339 with a zone (2024-03-01T14:30:00Z, 2024-03-01 09:30:00-05:00), \
a day-only date (2024-03-01, 20240301), or epoch seconds/milliseconds; naive timestamps need --timezone";

/// Parses one publication stamp from text. Naive date-times need `zone`.
pub fn parse_stamp(s: &str, zone: Option<&Zone>) -> Result<Stamp, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty timestamp; {FORMS}"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) || (t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit())) {
        if t.len() == 8
            && let Some(d) = parse_date_str(t)
        {
            return Ok(Stamp::Day(days_from_date(d)));
        }
        let v: i64 = t.parse().map_err(|_| format!("'{t}' is not a valid epoch number; {FORMS}"))?;
        return Ok(Stamp::Instant(epoch_to_us(v)));
    }
    if t.len() == 10
        && let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
    {
        return Ok(Stamp::Day(days_from_date(d)));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(Stamp::Instant(dt.timestamp_micros()));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, f) {
            return Ok(Stamp::Instant(dt.timestamp_micros()));
        }
    }
    if let Some(rest) = t.strip_suffix(" UTC").or_else(|| t.strip_suffix(" GMT"))
        && let Some(n) = parse_naive(rest)
    {
        return Ok(Stamp::Instant(n.and_utc().timestamp_micros()));
    }
    if let Some(n) = parse_naive(t) {
        return match zone {
            Some(z) => z.to_utc_us(n).map(Stamp::Instant),
            None => Err(format!(
                "'{t}' has no time zone; name the zone the feed uses with --timezone (e.g. --timezone America/New_York or --timezone UTC)"
            )),
        };
    }
    Err(format!("cannot parse '{t}' as a time; {FORMS}"))
}

fn parse_naive(t: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
}

/// Formats UTC microseconds as RFC 3339 (for messages).
pub fn fmt_us(us: i64) -> String {
    DateTime::from_timestamp_micros(us).map(|d| d.to_rfc3339()).unwrap_or_else(|| format!("{us}µs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn forms() {
        assert_eq!(parse_stamp("2024-03-01T14:30:00Z", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        assert_eq!(parse_stamp("2024-03-01 09:30:00-05:00", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        assert_eq!(parse_stamp("2024-03-01T09:30:00.5-0500", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00.5Z"))));
        assert_eq!(parse_stamp("2024-03-01 14:30:00 UTC", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        assert_eq!(parse_stamp("1709303400", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        assert_eq!(parse_stamp("1709303400000", None), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        let d = days_from_date(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
        assert_eq!(parse_stamp("2024-03-01", None), Ok(Stamp::Day(d)));
        assert_eq!(parse_stamp("20240301", None), Ok(Stamp::Day(d)));
        assert_eq!(Stamp::Day(d).latest_us(None), us("2024-03-01T23:59:59.999999Z"));
    }

    #[test]
    fn naive_needs_zone() {
        let e = parse_stamp("2024-03-01 09:30:00", None).unwrap_err();
        assert!(e.contains("--timezone"), "{e}");
        let ny: Zone = "America/New_York".parse().unwrap();
        assert_eq!(parse_stamp("2024-03-01 09:30:00", Some(&ny)), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        // Clocks go back at 02:00 on 2024-11-03: 01:30 happens twice; the later one is taken.
        assert_eq!(parse_stamp("2024-11-03 01:30:00", Some(&ny)), Ok(Stamp::Instant(us("2024-11-03T06:30:00Z"))));
        // 02:30 on 2024-03-10 never happened in New York.
        assert!(parse_stamp("2024-03-10 02:30:00", Some(&ny)).unwrap_err().contains("does not exist"));
        let off: Zone = "+05:30".parse().unwrap();
        assert_eq!(parse_stamp("2024-03-01 20:00:00", Some(&off)), Ok(Stamp::Instant(us("2024-03-01T14:30:00Z"))));
        assert!("Mars/Olympus".parse::<Zone>().is_err());
    }

    #[test]
    fn day_only_ends_in_the_feeds_zone() {
        let d = |y, m, dd| days_from_date(NaiveDate::from_ymd_opt(y, m, dd).unwrap());
        let ny: Zone = "America/New_York".parse().unwrap();
        // Thursday 2024-02-29 in New York ends at Friday 05:00 UTC (EST), not Thursday 24:00 UTC.
        assert_eq!(Stamp::Day(d(2024, 2, 29)).latest_us(Some(&ny)), us("2024-03-01T04:59:59.999999Z"));
        // Summer time: EDT, four hours.
        assert_eq!(Stamp::Day(d(2024, 7, 4)).latest_us(Some(&ny)), us("2024-07-05T03:59:59.999999Z"));
        // East of UTC a day ends earlier in UTC.
        let tokyo: Zone = "Asia/Tokyo".parse().unwrap();
        assert_eq!(Stamp::Day(d(2024, 3, 1)).latest_us(Some(&tokyo)), us("2024-03-01T14:59:59.999999Z"));
        // Santiago skipped midnight 2024-09-08 00:00 → 01:00: the 7th ends at the jump.
        let scl: Zone = "America/Santiago".parse().unwrap();
        assert_eq!(Stamp::Day(d(2024, 9, 7)).latest_us(Some(&scl)), us("2024-09-08T03:59:59.999999Z"));
        let utc: Zone = "UTC".parse().unwrap();
        assert_eq!(Stamp::Day(d(2024, 3, 1)).latest_us(Some(&utc)), Stamp::Day(d(2024, 3, 1)).latest_us(None));
    }

    #[test]
    fn garbage_is_explained() {
        let e = parse_stamp("yesterday", None).unwrap_err();
        assert!(e.contains("cannot parse 'yesterday'") && e.contains("RFC 3339"), "{e}");
    }
}
