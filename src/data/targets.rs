//! Numerai rows: the legacy `historical_targets` layout and Signals v2.x parquet.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::time::{days_from_date, parse_date_str, parse_yyyymmdd};
use super::{find_column, missing_column, read_table, str_values};
use crate::error::{Error, Result};

/// Ticker columns, in order of preference.
pub const TICKER_COLUMNS: [&str; 2] = ["numerai_ticker", "bloomberg_ticker"];
/// Date columns, in order of preference.
pub const DATE_COLUMNS: [&str; 2] = ["friday_date", "date"];
/// Pairs of names for one target (legacy name, Signals v2 name).
pub const TARGET_ALIASES: [(&str, &str); 4] = [
    ("target_20d_factor_neutral", "target_factor_neutral_20"),
    ("target_20d_raw_return", "target_raw_return_20"),
    ("target_20d_factor_feat_neutral", "target_factor_feat_neutral_20"),
    ("target_20d", "target"),
];

/// Numerai rows as given, plus the parsed join keys for each row.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The file read.
    pub path: PathBuf,
    /// The rows with their columns exactly as given.
    pub frame: DataFrame,
    /// The ticker column used (`numerai_ticker` or `bloomberg_ticker`).
    pub ticker_column: String,
    /// The date column used (`friday_date` or `date`).
    pub date_column: String,
    /// Per row: index into `universe`.
    pub ticker_ids: Vec<u32>,
    /// Distinct tickers (upper-cased, trimmed), indexed by id.
    pub universe: Vec<String>,
    /// Per row: the era's Friday as days since 1970-01-01.
    pub fridays: Vec<i32>,
}

impl Targets {
    /// Reads and validates a targets file (CSV or parquet, legacy or v2 layout).
    pub fn read(path: &Path) -> Result<Self> {
        let frame = read_table(path, false)?;
        Self::from_frame(path, frame)
    }

    /// Validates a frame already in memory; `path` names it in errors.
    pub fn from_frame(path: &Path, frame: DataFrame) -> Result<Self> {
        let ticker_column = find_column(&frame, &TICKER_COLUMNS).ok_or_else(|| {
            missing_column(path, &frame, &TICKER_COLUMNS, "is this a Numerai targets or universe file?")
        })?;
        let date_column = find_column(&frame, &DATE_COLUMNS).ok_or_else(|| {
            missing_column(path, &frame, &DATE_COLUMNS, "is this a Numerai targets or universe file?")
        })?;
        let (ticker_ids, universe) = ticker_ids(path, &frame, &ticker_column)?;
        let fridays = parse_dates(path, &frame, &date_column)?;
        for name in frame.get_column_names() {
            if name.starts_with("target") {
                check_target(path, &frame, name)?;
            }
        }
        Ok(Targets { path: path.to_path_buf(), frame, ticker_column, date_column, ticker_ids, universe, fridays })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.fridays.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.fridays.is_empty()
    }

    /// The column holding `name`, resolving the legacy/v2 aliases (e.g. `target_20d_factor_neutral`
    /// finds `target_factor_neutral_20`).
    pub fn target_column(&self, name: &str) -> Option<String> {
        resolve_target(&self.frame, name)
    }
}

/// The column of `df` that holds target `name`, under either of its names.
pub fn resolve_target(df: &DataFrame, name: &str) -> Option<String> {
    let mut names = vec![name];
    for (a, b) in TARGET_ALIASES {
        if a == name {
            names.push(b);
        } else if b == name {
            names.push(a);
        }
    }
    find_column(df, &names)
}

fn ticker_ids(path: &Path, df: &DataFrame, col: &str) -> Result<(Vec<u32>, Vec<String>)> {
    let ca = str_values(path, df, col)?;
    let mut ids = Vec::with_capacity(ca.len());
    let mut map: PlHashMap<String, u32> = PlHashMap::new();
    let mut universe = Vec::new();
    for (i, v) in ca.iter().enumerate() {
        let t = v.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::at(path, Some(i + 1), col, "missing ticker; every row needs one (remove the row or fill it in)")
        })?;
        // Tickers match case-insensitively; most files are upper case already, so avoid copying.
        let upper;
        let t = if t.bytes().any(|b| b.is_ascii_lowercase()) {
            upper = t.to_ascii_uppercase();
            upper.as_str()
        } else {
            t
        };
        let id = match map.get(t) {
            Some(&id) => id,
            None => {
                universe.push(t.to_string());
                map.insert(t.to_string(), (universe.len() - 1) as u32);
                (universe.len() - 1) as u32
            }
        };
        ids.push(id);
    }
    Ok((ids, universe))
}

fn parse_dates(path: &Path, df: &DataFrame, col: &str) -> Result<Vec<i32>> {
    let c = df.column(col).map_err(|e| Error::table(path, e))?;
    let bad = |i: usize, v: String| {
        Error::at(path, Some(i + 1), col, format!("cannot read '{v}' as a date; use YYYYMMDD (20240301) or YYYY-MM-DD"))
    };
    let missing = |i: usize| Error::at(path, Some(i + 1), col, "missing date; every row needs its Friday");
    match c.dtype() {
        DataType::Date => {
            let phys = c.cast(&DataType::Int32).map_err(|e| Error::table(path, e))?;
            phys.i32()
                .map_err(|e| Error::table(path, e))?
                .iter()
                .enumerate()
                .map(|(i, v)| v.ok_or_else(|| missing(i)))
                .collect()
        }
        DataType::Datetime(unit, _) => {
            let per_day: i64 = match unit {
                TimeUnit::Nanoseconds => 86_400_000_000_000,
                TimeUnit::Microseconds => 86_400_000_000,
                TimeUnit::Milliseconds => 86_400_000,
            };
            let phys = c.cast(&DataType::Int64).map_err(|e| Error::table(path, e))?;
            let ca = phys.i64().map_err(|e| Error::table(path, e))?;
            ca.iter()
                .enumerate()
                .map(|(i, v)| v.map(|v| v.div_euclid(per_day) as i32).ok_or_else(|| missing(i)))
                .collect()
        }
        dt if dt.is_integer() => {
            let phys = c.cast(&DataType::Int64).map_err(|e| Error::table(path, e))?;
            let ca = phys.i64().map_err(|e| Error::table(path, e))?;
            ca.iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.ok_or_else(|| missing(i))?;
                    parse_yyyymmdd(v).map(days_from_date).ok_or_else(|| bad(i, v.to_string()))
                })
                .collect()
        }
        _ => {
            let ca = str_values(path, df, col)?;
            ca.iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = v.ok_or_else(|| missing(i))?;
                    parse_date_str(v).map(days_from_date).ok_or_else(|| bad(i, v.to_string()))
                })
                .collect()
        }
    }
}

fn check_target(path: &Path, df: &DataFrame, col: &str) -> Result<()> {
    let c = df.column(col).map_err(|e| Error::table(path, e))?;
    if c.dtype() == &DataType::String {
        let ca = str_values(path, df, col)?;
        for (i, v) in ca.iter().enumerate() {
            if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
                check_value(
                    path,
                    col,
                    i,
                    v.parse::<f64>().map_err(|_| {
                        Error::at(
                            path,
                            Some(i + 1),
                            col,
                            format!("'{v}' is not a number; targets are numbers in [0, 1], empty when unknown"),
                        )
                    })?,
                )?;
            }
        }
        return Ok(());
    }
    if !c.dtype().is_primitive_numeric() {
        return Err(Error::at(path, None, col, format!("targets must be numbers, found {}", c.dtype())));
    }
    let f = c.cast(&DataType::Float64).map_err(|e| Error::table(path, e))?;
    for (i, v) in f.f64().map_err(|e| Error::table(path, e))?.iter().enumerate() {
        if let Some(v) = v {
            check_value(path, col, i, v)?;
        }
    }
    Ok(())
}

fn check_value(path: &Path, col: &str, i: usize, v: f64) -> Result<()> {
    if v.is_nan() {
        return Err(Error::at(
            path,
            Some(i + 1),
            col,
            "NaN target; leave unknown targets empty (null), as Numerai's live rows do",
        ));
    }
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::at(
            path,
            Some(i + 1),
            col,
            format!(
                "target {v} is outside [0, 1]; Numerai targets are binned to 0, 0.25, 0.5, 0.75, 1 — is this the right column?"
            ),
        ));
    }
    Ok(())
}
