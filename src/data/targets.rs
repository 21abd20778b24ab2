//! Tables keyed by (ticker, Friday): Numerai targets (the legacy `historical_targets` layout and
//! Signals v2.x parquet), and every table signalkit writes with the same keys (joins, features,
//! predictions). [`KeyedTable`] reads and checks any of them; target names and checks live here too.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use super::{Format, find_column, format_of, missing_column, read_schema, read_table, rows_text, str_values};
use crate::era::{WEEKDAYS, date_from_days, days_from_date, parse_date_str, parse_yyyymmdd, weekday};
use crate::error::{Error, Result};

/// Ticker columns, in order of preference (Signals v2.1 also keys rows by `composite_figi`,
/// used when the file has no ticker column).
pub const TICKER_COLUMNS: [&str; 3] = ["numerai_ticker", "bloomberg_ticker", "composite_figi"];
/// Date columns, in order of preference.
pub const DATE_COLUMNS: [&str; 2] = ["friday_date", "date"];
/// The default target (Signals v2 calls it `target_factor_neutral_20`).
pub const DEFAULT_TARGET: &str = "target_20d_factor_neutral";
/// Pairs of names for one target (legacy name, Signals v2 name).
/// Any other target (e.g. v2.1's `target_chili_60`) is selected by its own name.
pub const TARGET_ALIASES: [(&str, &str); 7] = [
    ("target_20d_factor_neutral", "target_factor_neutral_20"),
    ("target_20d_raw_return", "target_raw_return_20"),
    ("target_20d_factor_feat_neutral", "target_factor_feat_neutral_20"),
    ("target_60d_factor_neutral", "target_factor_neutral_60"),
    ("target_60d_raw_return", "target_raw_return_60"),
    ("target_60d_factor_feat_neutral", "target_factor_feat_neutral_60"),
    ("target_20d", "target"),
];

/// A table keyed by (ticker, Friday), rows as given, plus the parsed keys of each row: Numerai
/// targets, and the joins, feature tables and predictions made from them.
#[derive(Debug, Clone)]
pub struct KeyedTable {
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

/// The name the keyed-table reader had when it only read targets; kept for existing callers.
pub type Targets = KeyedTable;

impl KeyedTable {
    /// Reads and validates a keyed table: a targets file (CSV or parquet, legacy or v2 layout).
    pub fn read(path: &Path) -> Result<Self> {
        let frame = read_table(path, false)?;
        Self::from_frame(path, frame)
    }

    /// Reads the key columns and the columns `wanted` picks from the file's columns (given as a
    /// frame with no rows; names it lacks are left out, for the caller to name). A parquet
    /// file's other columns are never read: a feature table handed over as targets can be
    /// gigabytes of columns evaluate does not use.
    pub fn read_columns(path: &Path, wanted: impl FnOnce(&DataFrame) -> Vec<String>) -> Result<Self> {
        let parquet = format_of(path)? == Format::Parquet && path.exists();
        let whole = read_schema(path)?;
        let (Some(ticker), Some(date)) = (find_column(&whole, &TICKER_COLUMNS), find_column(&whole, &DATE_COLUMNS))
        else {
            return Self::from_frame(path, whole);
        };
        let mut columns = vec![ticker, date];
        for name in wanted(&whole) {
            if whole.column(&name).is_ok() && !columns.contains(&name) {
                columns.push(name);
            }
        }
        let frame = match parquet {
            true => ParquetReader::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?)
                .with_columns(Some(columns))
                .finish(),
            false => whole.select(columns),
        };
        Self::from_frame(path, frame.map_err(|e| Error::table(path, e))?)
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
        if let Some(w) = check_weekdays(path, &fridays, &date_column)? {
            warn_once(path, &w);
        }
        check_unique(path, &ticker_ids, &universe, &fridays, &ticker_column, &date_column)?;
        for name in frame.get_column_names() {
            if name.starts_with("target") {
                check_target(path, &frame, name)?;
            }
        }
        Ok(KeyedTable { path: path.to_path_buf(), frame, ticker_column, date_column, ticker_ids, universe, fridays })
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

    /// Column `name` as f64 (null → NaN); the error names the file and the column.
    pub fn f64_column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self
            .frame
            .column(name)
            .map_err(|_| Error::at(&self.path, None, name, "no such column"))?
            .cast(&DataType::Float64)
            .map_err(|e| Error::at(&self.path, None, name, format!("not numeric: {e}")))?;
        Ok(c.f64().map_err(|e| Error::table(&self.path, e))?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    /// Every numeric column other than the keys and targets, as (name, f64 values): a Signals v2.1
    /// neutralizer or sample-weights file's values.
    pub fn numeric_columns(&self) -> Result<Vec<(String, Vec<f64>)>> {
        let keys = [self.ticker_column.as_str(), self.date_column.as_str()];
        let names: Vec<String> = self
            .frame
            .columns()
            .iter()
            .filter(|c| c.dtype().is_primitive_numeric())
            .map(|c| c.name().to_string())
            .filter(|n| !keys.contains(&n.as_str()) && !n.starts_with("target"))
            .collect();
        names.into_iter().map(|n| self.f64_column(&n).map(|v| (n, v))).collect()
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
            parse_each(ca.iter(), |&v| parse_yyyymmdd(v), missing, bad)
        }
        _ => parse_each(str_values(path, df, col)?.iter(), |v| parse_date_str(v), missing, bad),
    }
}

/// Each value parsed to days since 1970 by `parse`; a null or an unreadable value is the error
/// `missing(row)` or `bad(row, value)` makes.
fn parse_each<T: ToString>(
    values: impl Iterator<Item = Option<T>>,
    parse: impl Fn(&T) -> Option<NaiveDate>,
    missing: impl Fn(usize) -> Error,
    bad: impl Fn(usize, String) -> Error,
) -> Result<Vec<i32>> {
    values
        .enumerate()
        .map(|(i, v)| {
            let v = v.ok_or_else(|| missing(i))?;
            parse(&v).map(days_from_date).ok_or_else(|| bad(i, v.to_string()))
        })
        .collect()
}

/// Numerai dates are Fridays, or (Signals v2.1, market-close dates) the Thursday before a Friday
/// holiday. A Saturday or Sunday is refused: no market closes then, so the column is shifted
/// (a time zone, an off-by-one) or is not the era date. Other weekdays are allowed but returned
/// as a warning with the count and the first such row.
pub fn check_weekdays(path: &Path, days: &[i32], col: &str) -> Result<Option<String>> {
    let mut counts = [0usize; 7];
    let mut first: Option<usize> = None;
    for (i, &d) in days.iter().enumerate() {
        let w = weekday(d);
        if w >= 5 {
            return Err(Error::at(
                path,
                Some(i + 1),
                col,
                format!(
                    "{} is a {}; Numerai dates are market days (a Friday, or the Thursday before a Friday holiday), so this column is shifted (time zone? off by one?) or is not the era date — fix the date column",
                    date_from_days(d),
                    WEEKDAYS[w]
                ),
            ));
        }
        if w != 4 {
            counts[w] += 1;
            first.get_or_insert(i);
        }
    }
    let Some(i) = first else { return Ok(None) };
    let n: usize = counts.iter().sum();
    let breakdown: Vec<String> = (0..4)
        .filter(|&w| counts[w] > 0)
        .map(|w| format!("{} {}{}", counts[w], WEEKDAYS[w], if counts[w] == 1 { "" } else { "s" }))
        .collect();
    Ok(Some(format!(
        "{}: {n} row{} of {} ha{} a date that is not a Friday ({}; e.g. {}: {}, a {}); Numerai's Signals v2 dates are Fridays or the Thursday before a Friday holiday — check the date column '{col}' (the rows are kept as given)",
        path.display(),
        if n == 1 { "" } else { "s" },
        days.len(),
        if n == 1 { "s" } else { "ve" },
        breakdown.join(", "),
        rows_text(path, &[i + 1]),
        date_from_days(days[i]),
        WEEKDAYS[weekday(days[i])],
    )))
}

/// Prints `warning: {message}` on stderr, once per file in this process.
fn warn_once(path: &Path, message: &str) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|p| p == path) {
        warned.push(path.to_path_buf());
        eprintln!("warning: {message}");
    }
}

/// The first key seen twice, as (its first row, the repeat's row), 0-based, and how many rows
/// repeat an earlier key. One pass with a hash map.
pub(crate) fn first_repeat<K: std::hash::Hash + Eq>(
    keys: impl ExactSizeIterator<Item = K>,
) -> Option<(usize, usize, usize)> {
    let mut seen: PlHashMap<K, u32> = PlHashMap::with_capacity(keys.len());
    let (mut first, mut repeats) = (None, 0usize);
    for (i, k) in keys.enumerate() {
        match seen.get(&k) {
            Some(&j) => {
                repeats += 1;
                first.get_or_insert((j as usize, i));
            }
            None => {
                seen.insert(k, i as u32);
            }
        }
    }
    first.map(|(a, b)| (a, b, repeats))
}

/// The refusal of a key that appears twice: rows `a` and `b` (0-based) both have `what`.
pub(crate) fn duplicate_error(path: &Path, (a, b, repeats): (usize, usize, usize), what: &str, key: &str) -> Error {
    Error::input(
        path,
        format!(
            "duplicate key: {} both have {what} ({repeats} repeated row{} in all); each {key} must appear once — de-duplicate the file, keeping one row per {key}",
            rows_text(path, &[a + 1, b + 1]),
            if repeats == 1 { "" } else { "s" },
        ),
    )
}

/// Refuses a (ticker, date) that appears twice: joins would pick one row silently and scores
/// would count it twice.
fn check_unique(
    path: &Path,
    ids: &[u32],
    universe: &[String],
    days: &[i32],
    ticker_col: &str,
    date_col: &str,
) -> Result<()> {
    let key = |i: usize| ((ids[i] as u64) << 32) | (days[i] as u32 as u64);
    let Some(found) = first_repeat((0..ids.len()).map(key)) else { return Ok(()) };
    let a = found.0;
    let what = format!("{ticker_col} '{}' and {date_col} {}", universe[ids[a] as usize], date_from_days(days[a]));
    Err(duplicate_error(path, found, &what, "(ticker, date)"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(y: i32, m: u32, d: u32) -> i32 {
        days_from_date(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn weekdays() {
        assert_eq!(WEEKDAYS[weekday(0)], "Thursday"); // 1970-01-01
        assert_eq!(WEEKDAYS[weekday(day(2024, 3, 1))], "Friday");
        assert_eq!(WEEKDAYS[weekday(day(1969, 12, 28))], "Sunday");
        let p = Path::new("t.parquet");
        assert_eq!(check_weekdays(p, &[day(2024, 3, 1), day(2024, 3, 8)], "date").unwrap(), None);
        let w = check_weekdays(p, &[day(2024, 3, 1), day(2024, 3, 28)], "date").unwrap().unwrap();
        assert!(w.contains("1 row of 2 has a date that is not a Friday (1 Thursday; e.g. row 2"), "{w}");
        let e = check_weekdays(p, &[day(2024, 3, 3)], "date").unwrap_err().to_string();
        assert!(e.contains("t.parquet: row 1, column 'date': 2024-03-03 is a Sunday"), "{e}");
    }

    #[test]
    fn duplicates_keyed_by_ticker_and_day() {
        let p = Path::new("t.parquet");
        let uni = vec!["A US".to_string(), "B US".to_string()];
        assert!(check_unique(p, &[0, 1, 0], &uni, &[5, 5, 12], "t", "d").is_ok());
        // Negative days (before 1970) must not collide with other keys.
        assert!(check_unique(p, &[0, 1], &uni, &[-1, -1], "t", "d").is_ok());
        let e = check_unique(p, &[0, 1, 0, 0], &uni, &[5, 5, 5, 5], "t", "d").unwrap_err().to_string();
        assert!(e.contains("rows 1 and 3") && e.contains("'A US'") && e.contains("2 repeated rows in all"), "{e}");
    }

    #[test]
    fn signals_v2_1_keys_and_targets() {
        let frame = df!(
            "composite_figi" => ["BBG000B9XRY4", "BBG000BPH459"],
            "date" => [20240301i64, 20240301],
            "target_factor_neutral_60" => [0.25f64, 0.75],
            "target_chili_60" => [0.5f64, 0.5],
        )
        .unwrap();
        let t = KeyedTable::from_frame(Path::new("v21.parquet"), frame).unwrap();
        assert_eq!(t.ticker_column, "composite_figi");
        assert_eq!(t.target_column("target_60d_factor_neutral").as_deref(), Some("target_factor_neutral_60"));
        assert_eq!(t.target_column("target_chili_60").as_deref(), Some("target_chili_60"));
        assert_eq!(t.target_column("target_20d_factor_neutral"), None);
    }
}
