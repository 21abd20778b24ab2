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

/// A signal file's rows that have both a ticker and a finite value: tickers trimmed and
/// upper-cased, in file order. The ticker column is `prefer` when the file has it, else the
/// first of [`SIGNAL_TICKER_COLUMNS`] present.
pub fn read_signal_file(path: &Path, prefer: Option<&str>) -> Result<(Vec<String>, Vec<f64>)> {
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
    let (mut ids, mut out) = (Vec::new(), Vec::new());
    for (t, v) in str_values(path, &df, &col)?.iter().zip(values.iter()) {
        if let (Some(t), Some(v)) = (t.map(str::trim).filter(|t| !t.is_empty()), v.filter(|v| v.is_finite())) {
            ids.push(t.to_ascii_uppercase());
            out.push(v);
        }
    }
    Ok((ids, out))
}
