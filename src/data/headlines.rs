//! Headlines: ticker, publication instant (UTC) and text, from CSV, Parquet or JSON Lines.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use super::time::{Stamp, Zone, days_from_date, epoch_to_us, parse_stamp, parse_yyyymmdd};
use super::{find_column, missing_column, read_table, str_values};
use crate::error::{Error, Result};

/// Default time columns, in order of preference.
pub const TIME_COLUMNS: [&str; 2] = ["published_at", "published_date"];

/// How to read a headlines file.
#[derive(Debug, Clone)]
pub struct HeadlineOptions {
    /// Ticker column (default `ticker`).
    pub ticker_column: String,
    /// Time column (default: `published_at`, else `published_date`).
    pub time_column: Option<String>,
    /// Text column (default `headline`).
    pub text_column: String,
    /// The feed's zone: naive timestamps are read in it (without it they are an error), and a
    /// day-only date ends at midnight in it.
    pub zone: Option<Zone>,
}

impl Default for HeadlineOptions {
    fn default() -> Self {
        HeadlineOptions {
            ticker_column: "ticker".into(),
            time_column: None,
            text_column: "headline".into(),
            zone: None,
        }
    }
}

/// Headlines as read: one entry per input row, in file order.
#[derive(Debug, Clone)]
pub struct Headlines {
    /// The file read.
    pub path: PathBuf,
    /// Ticker as given in the file.
    pub tickers: StringChunked,
    /// Latest instant the headline may have been published, UTC microseconds (a day-only date is
    /// its last microsecond in the feed's `--timezone`, UTC when none is named).
    pub published_us: Vec<i64>,
    /// Headline text as given.
    pub text: StringChunked,
}

impl Headlines {
    /// Reads and validates a headlines file.
    pub fn read(path: &Path, opts: &HeadlineOptions) -> Result<Self> {
        let df = read_table(path, true)?;
        Self::from_frame(path, &df, opts)
    }

    /// Validates a frame already in memory; `path` names it in errors.
    pub fn from_frame(path: &Path, df: &DataFrame, opts: &HeadlineOptions) -> Result<Self> {
        let ticker_col = find_column(df, &[opts.ticker_column.as_str()]).ok_or_else(|| {
            missing_column(path, df, &[&opts.ticker_column], "name the ticker column with --ticker-col")
        })?;
        let text_col = find_column(df, &[opts.text_column.as_str()])
            .ok_or_else(|| missing_column(path, df, &[&opts.text_column], "name the text column with --text-col"))?;
        let time_col = match &opts.time_column {
            Some(c) => find_column(df, &[c.as_str()]),
            None => find_column(df, &TIME_COLUMNS),
        }
        .ok_or_else(|| {
            let wanted: Vec<&str> = opts.time_column.as_deref().map(|c| vec![c]).unwrap_or(TIME_COLUMNS.to_vec());
            missing_column(path, df, &wanted, "name the publication-time column with --time-col")
        })?;

        let tickers = str_values(path, df, &ticker_col)?;
        if let Some(i) = first_blank(&tickers) {
            return Err(Error::at(path, Some(i + 1), &ticker_col, "missing ticker; remove the row or fill it in"));
        }
        let text = str_values(path, df, &text_col)?;
        if let Some(i) = first_blank(&text) {
            return Err(Error::at(path, Some(i + 1), &text_col, "empty headline text; remove the row or fill it in"));
        }
        let published_us = read_times(path, df, &time_col, opts.zone.as_ref())?;
        Ok(Headlines { path: path.to_path_buf(), tickers, published_us, text })
    }

    /// Number of headlines read.
    pub fn len(&self) -> usize {
        self.published_us.len()
    }

    /// True when no headline was read.
    pub fn is_empty(&self) -> bool {
        self.published_us.is_empty()
    }
}

/// Index of the first null or all-blank value (checked in parallel; `ca` is one chunk).
fn first_blank(ca: &StringChunked) -> Option<usize> {
    let arr = ca.downcast_iter().next()?;
    (0..arr.len()).into_par_iter().position_first(|i| arr.get(i).is_none_or(|t| t.trim().is_empty()))
}

/// A stamp from an integer: 8-digit `YYYYMMDD` is a day, anything else epoch time.
fn stamp_from_int(v: i64) -> Stamp {
    match parse_yyyymmdd(v) {
        Some(d) => Stamp::Day(days_from_date(d)),
        None => Stamp::Instant(epoch_to_us(v)),
    }
}

fn read_times(path: &Path, df: &DataFrame, col: &str, zone: Option<&Zone>) -> Result<Vec<i64>> {
    let c = df.column(col).map_err(|e| Error::table(path, e))?;
    if c.null_count() > 0 {
        let i = c.is_null().iter().position(|n| n == Some(true)).unwrap_or(0);
        return Err(Error::at(path, Some(i + 1), col, "missing publication time; remove the row or fill it in"));
    }
    let fail = |e: PolarsError| Error::table(path, e);
    // Every value is present from here on.
    let ints = || -> Result<Int64Chunked> { Ok(c.cast(&DataType::Int64).map_err(fail)?.i64().map_err(fail)?.clone()) };
    match c.dtype().clone() {
        DataType::Date => {
            let days = c.cast(&DataType::Int32).map_err(fail)?;
            Ok(days.i32().map_err(fail)?.into_no_null_iter().map(|d| Stamp::Day(d).latest_us(zone)).collect())
        }
        DataType::Datetime(unit, tz) => {
            let to_us = |v: i64| match unit {
                TimeUnit::Nanoseconds => v.div_euclid(1000),
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v * 1000,
            };
            let raw = ints()?;
            match (tz, zone) {
                (Some(_), _) => Ok(raw.into_no_null_iter().map(to_us).collect()),
                (None, Some(z)) => raw
                    .into_no_null_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let naive = chrono::DateTime::from_timestamp_micros(to_us(v)).expect("in range").naive_utc();
                        z.to_utc_us(naive).map_err(|m| Error::at(path, Some(i + 1), col, m))
                    })
                    .collect(),
                (None, None) => Err(Error::at(
                    path,
                    None,
                    col,
                    "timestamps have no time zone; name the zone the feed uses with --timezone (e.g. --timezone UTC)",
                )),
            }
        }
        dt if dt.is_integer() => Ok(ints()?.into_no_null_iter().map(|v| stamp_from_int(v).latest_us(zone)).collect()),
        dt if dt.is_float() => Err(Error::at(
            path,
            None,
            col,
            "times must be text or integers, not floating point; write epoch seconds as integers",
        )),
        _ => {
            let ca = str_values(path, df, col)?;
            let vals: Vec<&str> = ca.iter().map(Option::unwrap_or_default).collect();
            const BAD: i64 = i64::MIN;
            let parsed: Vec<i64> =
                vals.par_iter().map(|s| parse_stamp(s, zone).map(|t| t.latest_us(zone)).unwrap_or(BAD)).collect();
            match parsed.iter().position(|v| *v == BAD) {
                Some(i) => {
                    Err(Error::at(path, Some(i + 1), col, parse_stamp(vals[i], zone).expect_err("failed before")))
                }
                None => Ok(parsed),
            }
        }
    }
}
