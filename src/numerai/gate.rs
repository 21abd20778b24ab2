//! The churn gate before an upload: Numerai sets a stake to zero when a submission's churn
//! (1 − Spearman against a recent submission, max over the last five) reaches 0.15, or its
//! turnover (½ Σ|Δ neutralized weights|) reaches 0.25. The gate computes both the way
//! numerai-tools does ([`crate::metrics`]) and refuses above the limits.

use std::fmt;
use std::path::Path;

use crate::data::by_era::ByEra;
use crate::era::era_of_days;
use crate::error::{Error, Result};
use crate::metrics::{self, SubmissionEra};

pub use crate::metrics::{CHURN_LIMIT, TURNOVER_LIMIT};
/// How many recent submissions the limits look back over.
pub const GATE_WINDOW: usize = 5;

/// One submission's signal: tickers and values in (0, 1), and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Where it came from, for messages (a file, or a server submission id).
    pub label: String,
    /// Tickers.
    pub tickers: Vec<String>,
    /// Values, parallel to `tickers`.
    pub values: Vec<f64>,
}

/// The era data turnover needs (Signals v2.1's neutralizer and sample-weight files; Numerai
/// publishes none for the live week, so the latest available era stands in for it).
#[derive(Debug, Clone, Default)]
pub struct EraData {
    /// The era's universe, unique tickers.
    pub universe: Vec<String>,
    /// Sample weights, parallel to `universe`.
    pub sample_weights: Vec<f64>,
    /// Neutralizer columns, parallel to `universe`.
    pub neutralizers: Vec<Vec<f64>>,
}

impl EraData {
    /// The latest date of a Signals v2.1 neutralizer file (its rows are the universe; every other
    /// numeric column is a neutralizer) with the sample weights of that date (one numeric column).
    /// Only the keys of each file are read whole; the latest date's columns come from its row
    /// groups (see [`ByEra`]), so a 4 GB neutralizer file costs one era of memory.
    pub fn read(neutralizers: &Path, sample_weights: &Path) -> Result<EraData> {
        let n = ByEra::open(neutralizers)?;
        let latest = *n.keys.fridays.iter().max().ok_or_else(|| Error::input(neutralizers, "no rows"))?;
        if n.names.is_empty() {
            return Err(Error::input(neutralizers, "no numeric neutralizer column besides the ticker and date"));
        }
        let e = n.era(era_of_days(latest))?;
        let universe: Vec<String> =
            e.rows.iter().map(|&i| n.keys.universe[n.keys.ticker_ids[i] as usize].clone()).collect();
        let w = ByEra::open(sample_weights)?;
        if w.names.len() != 1 {
            return Err(Error::input(
                sample_weights,
                "a sample-weights file has exactly one numeric column besides the ticker and date",
            ));
        }
        let we = w.era(era_of_days(latest))?;
        let by_ticker: std::collections::HashMap<&str, f64> = we
            .rows
            .iter()
            .zip(&we.columns[0])
            .map(|(&i, &v)| (w.keys.universe[w.keys.ticker_ids[i] as usize].as_str(), v))
            .collect();
        let neutralizers = e.columns;
        let sample_weights = universe.iter().map(|t| by_ticker.get(t.as_str()).copied().unwrap_or(f64::NAN)).collect();
        Ok(EraData { universe, sample_weights, neutralizers })
    }
}

/// What the gate found.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    /// Previous submissions in the window (up to [`GATE_WINDOW`]).
    pub previous: usize,
    /// Churn against each previous submission compared (label, churn), newest first.
    pub churns: Vec<(String, f64)>,
    /// Max churn over the window (1.0 when previous submissions exist but none could be
    /// compared, as numerai-tools); None when there is no previous submission.
    pub churn: Option<f64>,
    /// Max turnover over the window, when era data was given.
    pub turnover: Option<f64>,
    /// Mean neutral churn over the window, when era data was given.
    pub neutral_churn: Option<f64>,
}

impl GateReport {
    /// The reasons the upload would zero the stake (empty: it passes).
    pub fn breaches(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = self.churn.filter(|c| *c >= CHURN_LIMIT) {
            out.push(format!("churn {c:.4} ≥ limit {CHURN_LIMIT}"));
        }
        if let Some(t) = self.turnover.filter(|t| *t >= TURNOVER_LIMIT) {
            out.push(format!("turnover {t:.4} ≥ limit {TURNOVER_LIMIT}"));
        }
        out
    }
}

impl fmt::Display for GateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(churn) = self.churn else {
            return write!(f, "churn gate: no previous submission to compare with (first week): passes");
        };
        match self.churns.len() {
            0 => write!(
                f,
                "churn gate: none of the {} previous submissions shares enough tickers with this one to compare; \
                 Numerai counts that as churn {churn:.4} (limit {CHURN_LIMIT})",
                self.previous
            )?,
            n => write!(f, "churn gate: churn {churn:.4} (limit {CHURN_LIMIT}, max over the last {n} submissions)")?,
        }
        match self.turnover {
            Some(t) => write!(f, ", turnover {t:.4} (limit {TURNOVER_LIMIT})")?,
            None => write!(f, ", turnover not computed (needs --neutralizers and --sample-weights)")?,
        }
        if let Some(n) = self.neutral_churn {
            write!(f, ", neutral churn {n:.4} (penalty factor {:.3})", neutral_penalty(n))?;
        }
        for (label, c) in &self.churns {
            write!(f, "\n  vs {label}: churn {c:.4}")?;
        }
        Ok(())
    }
}

/// numerai-tools' neutral churn penalty with its default threshold and scale.
fn neutral_penalty(n: f64) -> f64 {
    metrics::neutral_churn_penalty(n, metrics::NEUTRAL_CHURN_THRESHOLD, metrics::NEUTRAL_CHURN_SCALING)
}

/// The signal on `universe`: numerai-tools' cleaning (tie-kept rank, missing filled with 0.5).
fn cleaned(s: &Signal, universe: &[String]) -> Vec<f64> {
    metrics::clean_submission(universe, &s.tickers, &s.values)
}

/// Churn of `current` against `prev`: on the cleaned universe when one is given, else on the
/// common tickers; NaN when they cannot be compared (too little overlap, a constant side).
fn churn_between(current: &Signal, prev: &Signal, universe: Option<&[String]>) -> f64 {
    match universe {
        Some(u) => metrics::churn(u, &cleaned(current, u), u, &cleaned(prev, u), None),
        None => metrics::churn(&current.tickers, &current.values, &prev.tickers, &prev.values, None),
    }
}

/// The gate of `current` against the newest [`GATE_WINDOW`] of `previous` (newest first), on
/// this week's `universe` when given; turnover and neutral churn too when `era` is given.
pub fn churn_gate(
    current: &Signal,
    previous: &[Signal],
    universe: Option<&[String]>,
    era: Option<&EraData>,
) -> GateReport {
    let window = &previous[..previous.len().min(GATE_WINDOW)];
    let churns: Vec<(String, f64)> = window
        .iter()
        .map(|p| (p.label.clone(), churn_between(current, p, universe)))
        .filter(|(_, c)| !c.is_nan())
        .collect();
    let churn = (!window.is_empty()).then(|| churns.iter().map(|c| c.1.abs()).reduce(f64::max).unwrap_or(1.0));
    let (turnover, neutral_churn) = match era {
        Some(e) if !window.is_empty() => era_scores(current, window, e),
        _ => (None, None),
    };
    GateReport { previous: window.len(), churns, churn, turnover, neutral_churn }
}

/// Turnover and neutral churn through numerai-tools' own gate functions, every submission read
/// on the one era's neutralizers and weights.
fn era_scores(current: &Signal, window: &[Signal], e: &EraData) -> (Option<f64>, Option<f64>) {
    let previous: Vec<SubmissionEra> = window.iter().map(|s| on_era(s, e)).collect();
    let turnover = metrics::max_churn_and_turnover(&on_era(current, e), &previous).map(|(_, t)| t);
    (turnover, metrics::mean_neutral_churn(&on_era(current, e), &previous))
}

/// A signal read on one era's universe, weights and neutralizers.
fn on_era<'a>(s: &'a Signal, e: &'a EraData) -> SubmissionEra<'a> {
    SubmissionEra {
        ids: &s.tickers,
        signal: &s.values,
        universe: &e.universe,
        sample_weights: &e.sample_weights,
        neutralizers: &e.neutralizers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn era_data_is_the_latest_date_of_a_parquet_neutralizer_file_with_its_weights() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let (n, w) = (dir.path().join("n.parquet"), dir.path().join("w.parquet"));
        // Two dates, one row group each; the latest has 3 tickers, the weights file lacks one.
        let mut nf = df!(
            "numerai_ticker" => ["A US", "B US", "A US", "B US", "C US"],
            "date" => ["2024-01-05", "2024-01-05", "2024-01-12", "2024-01-12", "2024-01-12"],
            "f1" => [1.0f32, 2.0, 3.0, 4.0, 5.0],
            "f2" => [0.1f32, 0.2, 0.3, 0.4, 0.5],
        )
        .unwrap();
        let mut wf = df!(
            "numerai_ticker" => ["A US", "A US", "C US"],
            "date" => ["2024-01-05", "2024-01-12", "2024-01-12"],
            "weight" => [9.0, 0.25, 0.75],
        )
        .unwrap();
        let write = |p: &Path, f: &mut DataFrame| {
            ParquetWriter::new(std::fs::File::create(p).unwrap()).with_row_group_size(Some(2)).finish(f).unwrap()
        };
        write(&n, &mut nf);
        write(&w, &mut wf);
        let e = EraData::read(&n, &w).unwrap();
        assert_eq!(e.universe, ["A US", "B US", "C US"]);
        assert_eq!(e.neutralizers, vec![vec![3.0, 4.0, 5.0], vec![0.30000001192092896, 0.4000000059604645, 0.5]]);
        assert_eq!(e.sample_weights[0], 0.25);
        assert!(e.sample_weights[1].is_nan());
        assert_eq!(e.sample_weights[2], 0.75);
    }

    fn signal(label: &str, n: usize, f: impl Fn(usize) -> f64) -> Signal {
        let tickers = (0..n).map(|i| format!("T{i:04} US")).collect();
        Signal { label: label.into(), tickers, values: (0..n).map(|i| (f(i) + 0.5) / n as f64).collect() }
    }

    #[test]
    fn a_shuffled_week_is_refused_and_a_steady_one_passes() {
        let n = 400;
        let now = signal("now", n, |i| i as f64);
        let same = signal("same", n, |i| i as f64);
        let shuffled = signal("shuffled", n, |i| ((i * 7919) % n) as f64);
        let steady = churn_gate(&now, std::slice::from_ref(&same), None, None);
        assert!(steady.churn.unwrap() < 1e-12 && steady.breaches().is_empty(), "{steady}");
        let bad = churn_gate(&now, &[shuffled, same], None, None);
        assert!(bad.churn.unwrap() > 0.5, "{bad}");
        assert!(bad.breaches()[0].contains("churn") && bad.to_string().contains("vs shuffled"), "{bad}");
    }

    #[test]
    fn no_history_passes_and_incomparable_history_counts_as_full_churn() {
        let now = signal("now", 200, |i| i as f64);
        let first = churn_gate(&now, &[], None, None);
        assert_eq!(first.churn, None);
        assert!(first.breaches().is_empty() && first.to_string().contains("first week"));
        let mut other = signal("other", 200, |i| i as f64);
        other.tickers.iter_mut().for_each(|t| t.insert(0, 'X'));
        let r = churn_gate(&now, &[other], None, None);
        assert_eq!(r.churn, Some(1.0), "{r}");
    }

    #[test]
    fn only_the_last_five_count() {
        let n = 300;
        let now = signal("now", n, |i| i as f64);
        let mut previous: Vec<Signal> = (0..5).map(|k| signal(&format!("w{k}"), n, |i| i as f64)).collect();
        previous.push(signal("old", n, |i| (n - i) as f64));
        let r = churn_gate(&now, &previous, None, None);
        assert_eq!(r.churns.len(), 5);
        assert!(r.breaches().is_empty(), "{r}");
    }

    #[test]
    fn turnover_needs_era_data_and_catches_a_shuffled_week() {
        let n = 300;
        let now = signal("now", n, |i| i as f64);
        let shuffled = signal("shuffled", n, |i| ((i * 7919) % n) as f64);
        let era = EraData {
            universe: now.tickers.clone(),
            sample_weights: vec![1.0; n],
            neutralizers: vec![(0..n).map(|i| (i as f64 * 0.37).sin()).collect()],
        };
        let same = churn_gate(&now, std::slice::from_ref(&now), Some(&era.universe), Some(&era));
        assert!(same.turnover.unwrap() < 1e-9 && same.breaches().is_empty(), "{same}");
        let r = churn_gate(&now, &[shuffled], Some(&era.universe), Some(&era));
        let b = r.breaches();
        assert!(b.len() == 2 && b[1].contains("turnover"), "{r}");
        assert!(r.neutral_churn.unwrap() > 0.5 && r.to_string().contains("neutral churn"), "{r}");
    }
}
