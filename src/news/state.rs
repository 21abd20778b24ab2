//! The fetch state per (source, ticker): the days already asked, so a weekly run asks only for
//! what is new, and the gaps among them — days the vendor would not give this key, or a ticker it
//! does not know — with why. Saved atomically after each ticker finishes; a ticker killed midway
//! is fetched again from its last saved range (its pages already stored are de-duplicated).
//!
//! A covered day outside every gap was asked and answered: no row for it means the vendor had
//! nothing then. A day in a gap was not answered; the next fetch asks it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_bytes_atomic;
use crate::error::{Error, Result};

/// Days re-asked before the end of a covered range, for articles a vendor stamps late (a vendor
/// may ask more: [`super::About::overlap_days`]).
pub const OVERLAP_DAYS: i64 = 2;

/// Why days inside a covered range have no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// The vendor refused them to this key (plan history, region, entitlement).
    NotAvailable,
    /// The vendor does not know the ticker, or answered nothing at all for it.
    Unknown,
}

/// Days (both inclusive) asked but not answered, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// First day.
    #[serde(with = "ymd")]
    pub from: NaiveDate,
    /// Last day.
    #[serde(with = "ymd")]
    pub to: NaiveDate,
    /// Not available to this key, or unknown.
    pub kind: GapKind,
    /// The vendor's answer or our reading of it.
    pub why: String,
}

impl Gap {
    /// Days the vendor refused to this key.
    pub fn not_available(from: NaiveDate, to: NaiveDate, why: impl Into<String>) -> Self {
        Gap { from, to, kind: GapKind::NotAvailable, why: why.into() }
    }

    /// Days of a ticker the vendor does not know.
    pub fn unknown(from: NaiveDate, to: NaiveDate, why: impl Into<String>) -> Self {
        Gap { from, to, kind: GapKind::Unknown, why: why.into() }
    }
}

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
    /// Ticker (vendor symbol) → covered (asked) days.
    pub tickers: BTreeMap<String, Covered>,
    /// Ticker → the gaps inside its covered days.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gaps: BTreeMap<String, Vec<Gap>>,
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

    /// The days still to ask for `symbol` to cover `[from, to]` (from the first gap, else from the
    /// covered end less `overlap` days), `None` when already covered.
    pub fn plan(&self, symbol: &str, from: NaiveDate, to: NaiveDate, overlap: i64) -> Option<(NaiveDate, NaiveDate)> {
        let gap =
            self.gaps.get(symbol).into_iter().flatten().filter(|g| g.from <= to && g.to >= from).map(|g| g.from).min();
        let asked = match self.tickers.get(symbol) {
            Some(c) if c.from <= from && c.to >= to => None,
            Some(c) if c.from <= from && c.to >= from => Some(((c.to - chrono::Duration::days(overlap)).max(from), to)),
            _ => Some((from, to)),
        };
        match (gap.map(|g| g.max(from)), asked) {
            (Some(g), Some((a, b))) => Some((g.min(a), b)),
            (Some(g), None) => Some((g, to)),
            (None, asked) => asked,
        }
    }

    /// Records `[from, to]` as asked for `symbol` (joined with what was covered when they touch),
    /// with `gaps` inside it replacing the gaps recorded there before, and saves the file
    /// atomically.
    pub fn done(&mut self, symbol: &str, from: NaiveDate, to: NaiveDate, gaps: Vec<Gap>) -> Result<()> {
        let new = match self.tickers.get(symbol) {
            Some(c) if c.from <= to + chrono::Duration::days(1) && from <= c.to + chrono::Duration::days(1) => {
                Covered { from: c.from.min(from), to: c.to.max(to) }
            }
            _ => Covered { from, to },
        };
        self.tickers.insert(symbol.to_string(), new);
        let mut kept: Vec<Gap> =
            self.gaps.remove(symbol).unwrap_or_default().into_iter().flat_map(|g| outside(g, from, to)).collect();
        kept.extend(gaps);
        kept.sort_by_key(|g| g.from);
        if !kept.is_empty() {
            self.gaps.insert(symbol.to_string(), kept);
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(format!("fetch state: {e}")))?;
        write_bytes_atomic(&self.path, text.as_bytes())
    }
}

/// The parts of `g` outside `[from, to]`.
fn outside(g: Gap, from: NaiveDate, to: NaiveDate) -> Vec<Gap> {
    let day = chrono::Duration::days(1);
    let mut out = Vec::new();
    if g.from < from {
        out.push(Gap { to: g.to.min(from - day), ..g.clone() });
    }
    if g.to > to {
        out.push(Gap { from: g.from.max(to + day), ..g });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn news_state_gaps_are_asked_again_and_cleared_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FetchState::load(dir.path()).unwrap();
        let gap = Gap::not_available(d("2024-01-01"), d("2024-01-31"), "HTTP 403: plan");
        s.done("AAPL", d("2024-01-01"), d("2024-03-31"), vec![gap]).unwrap();
        assert_eq!(s.plan("AAPL", d("2024-01-01"), d("2024-03-31"), 2), Some((d("2024-01-01"), d("2024-03-31"))));
        assert_eq!(s.plan("AAPL", d("2024-02-01"), d("2024-03-31"), 2), None, "no gap in the days asked");
        assert_eq!(s.plan("AAPL", d("2024-02-01"), d("2024-04-30"), 5), Some((d("2024-03-26"), d("2024-04-30"))));
        let back = FetchState::load(dir.path()).unwrap();
        assert_eq!(back.gaps["AAPL"][0].kind, GapKind::NotAvailable, "saved");
        s.done("AAPL", d("2024-01-10"), d("2024-03-31"), vec![]).unwrap();
        assert_eq!(s.gaps["AAPL"].len(), 1);
        assert_eq!((s.gaps["AAPL"][0].from, s.gaps["AAPL"][0].to), (d("2024-01-01"), d("2024-01-09")));
        s.done("AAPL", d("2024-01-01"), d("2024-03-31"), vec![]).unwrap();
        assert!(!s.gaps.contains_key("AAPL"), "answered days close the gap");
    }
}
