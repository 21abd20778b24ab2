//! A signal file (a submission, or last week's `predict` output): its tickers and values, read
//! the one way both the churn gate and `predict --smooth-with` need.

use std::path::Path;

use polars::prelude::*;

use super::{find_column, read_table, str_values};
use crate::error::{Error, Result};

/// The ticker columns a Signals submission may use (exactly one of them).
pub const SIGNAL_TICKER_COLUMNS: [&str; 5] =
    ["numerai_ticker", "bloomberg_ticker", "composite_figi", "ticker", "sedol"];
/// The value column of a Signals submission.
pub const SIGNAL_COLUMN: &str = "signal";

/// A signal file's rows as written: the ticker column used, and per row the ticker (trimmed and
/// upper-cased; None when blank) and the value (NaN when missing or not finite).
#[derive(Debug, Clone)]
pub struct SignalRows {
    /// The ticker column read.
    pub column: String,
    /// Per row: the ticker.
    pub tickers: Vec<Option<String>>,
    /// Per row: the signal.
    pub values: Vec<f64>,
}

impl SignalRows {
    /// The rows with both a ticker and a finite value, in file order.
    pub fn usable(self) -> (Vec<String>, Vec<f64>) {
        self.tickers.into_iter().zip(self.values).filter_map(|(t, v)| Some((t?, v)).filter(|_| v.is_finite())).unzip()
    }

    /// Refuses a ticker on two rows (whatever their values): a later row would silently replace
    /// an earlier one. The same check as every keyed table's (ticker, date).
    pub fn check_unique(&self, path: &Path) -> Result<()> {
        let present: Vec<(usize, &str)> =
            self.tickers.iter().enumerate().filter_map(|(i, t)| Some((i, t.as_deref()?))).collect();
        match super::targets::first_repeat(present.iter().map(|p| p.1)) {
            Some((a, b, n)) => {
                let what = format!("{} '{}'", self.column, present[a].1);
                Err(super::targets::duplicate_error(path, (present[a].0, present[b].0, n), &what, "ticker"))
            }
            None => Ok(()),
        }
    }
}

/// Every row of a signal file. The ticker column is `prefer` when the file has it, else the
/// first of [`SIGNAL_TICKER_COLUMNS`] present.
pub fn read_signal_rows(path: &Path, prefer: Option<&str>) -> Result<SignalRows> {
    let df = read_table(path, true)?;
    let candidates: Vec<&str> = prefer.into_iter().chain(SIGNAL_TICKER_COLUMNS).collect();
    let col = find_column(&df, &candidates).ok_or_else(|| {
        Error::input(path, format!("no ticker column (one of {}): is this a signal file?", candidates.join(", ")))
    })?;
    let signal = df
        .column(SIGNAL_COLUMN)
        .map_err(|_| Error::at(path, None, SIGNAL_COLUMN, "missing: pass a signal file (ticker, signal)"))?
        .cast(&DataType::Float64)
        .map_err(|e| Error::at(path, None, SIGNAL_COLUMN, format!("not numeric: {e}")))?;
    let values = signal.f64().map_err(|e| Error::table(path, e))?;
    let tickers = str_values(path, &df, &col)?
        .iter()
        .map(|t| t.map(str::trim).filter(|t| !t.is_empty()).map(str::to_ascii_uppercase))
        .collect();
    let values = values.iter().map(|v| v.filter(|v| v.is_finite()).unwrap_or(f64::NAN)).collect();
    Ok(SignalRows { column: col, tickers, values })
}

/// A signal file's rows that have both a ticker and a finite value: tickers trimmed and
/// upper-cased, in file order (see [`read_signal_rows`]). A ticker on two rows is refused.
pub fn read_signal_file(path: &Path, prefer: Option<&str>) -> Result<(Vec<String>, Vec<f64>)> {
    let rows = read_signal_rows(path, prefer)?;
    rows.check_unique(path)?;
    Ok(rows.usable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_file_with_a_ticker_twice_is_refused_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("past.csv");
        std::fs::write(&path, "numerai_ticker,signal\nAAA,0.1\nBBB,0.2\naaa ,0.9\n").unwrap();
        let e = read_signal_file(&path, None).unwrap_err().to_string();
        for part in ["past.csv", "duplicate", "'AAA'"] {
            assert!(e.contains(part), "names {part:?}: {e}");
        }
        std::fs::write(&path, "numerai_ticker,signal\nAAA,0.1\nBBB,0.2\n,0.9\n").unwrap();
        assert_eq!(read_signal_file(&path, None).unwrap().0, ["AAA", "BBB"], "blank tickers are not repeats");
    }
}
