//! The fetch state per (source, ticker): the dates already fetched completely, so a weekly run
//! asks only for what is new. Saved atomically after each ticker finishes; a ticker killed midway
//! is fetched again from its last saved range (its pages already stored are de-duplicated).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_bytes_atomic;
use crate::error::{Error, Result};

/// Days re-asked before the end of a covered range, for articles a vendor stamps late.
pub const OVERLAP_DAYS: i64 = 2;

/// The days one ticker has been fetched for (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    /// First day fetched.
    #[serde(with = "ymd")]
    pub from: NaiveDate,
    /// Last day fetched.
    #[serde(with = "ymd")]
    pub to: NaiveDate,
}

/// Dates as `YYYY-MM-DD` strings in the state file.
mod ymd {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a date as YYYY-MM-DD.
    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.format("%Y-%m-%d").to_string())
    }

    /// Reads a YYYY-MM-DD date.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let t = String::deserialize(d)?;
        NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(serde::de::Error::custom)
    }
}

/// All tickers' state for one source: `<out>/<source>/state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FetchState {
    /// Ticker (vendor symbol) → covered days.
    pub tickers: BTreeMap<String, Covered>,
    #[serde(skip)]
    path: PathBuf,
}

impl FetchState {
    /// Reads the state file in `dir` (empty when there is none).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("state.json");
        let mut s: FetchState = if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            serde_json::from_str(&text).map_err(|e| {
                Error::input(&path, format!("not a fetch state ({e}); delete it to fetch everything again (stored headlines are kept and de-duplicated)"))
            })?
        } else {
            FetchState::default()
        };
        s.path = path;
        Ok(s)
    }

    /// The days still to ask for `symbol` to cover `[from, to]`, `None` when already covered.
    pub fn plan(&self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        match self.tickers.get(symbol) {
            Some(c) if c.from <= from && c.to >= to => None,
            Some(c) if c.from <= from && c.to >= from => {
                Some(((c.to - chrono::Duration::days(OVERLAP_DAYS)).max(from), to))
            }
            _ => Some((from, to)),
        }
    }

    /// Records `[from, to]` as fetched for `symbol` (joined with what was covered when they
    /// touch) and saves the file atomically.
    pub fn done(&mut self, symbol: &str, from: NaiveDate, to: NaiveDate) -> Result<()> {
        let new = match self.tickers.get(symbol) {
            Some(c) if c.from <= to + chrono::Duration::days(1) && from <= c.to + chrono::Duration::days(1) => {
                Covered { from: c.from.min(from), to: c.to.max(to) }
            }
            _ => Covered { from, to },
        };
        self.tickers.insert(symbol.to_string(), new);
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(format!("fetch state: {e}")))?;
        write_bytes_atomic(&self.path, text.as_bytes())
    }
}
