//! The scores Numerai pays Signals on, per out-of-sample era (numerai-tools' formulas in
//! [`crate::metrics`]): neutral correlation to the era's neutralizers, alpha with its sample
//! weights, and contribution to a meta-model column, plain and neutral.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use polars::prelude::PlHashMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{EvaluateArgs, OutOfSample, Scored, no_match, pick};
use crate::data::by_era::{ByEra, EraRows};
use crate::data::targets::{KeyedTable, resolve_target};
use crate::era::era_of_days;
use crate::error::{Error, Result};
use crate::metrics::{self, Summary};

/// One out-of-sample era's payout scores (None: the input it needs was not given; NaN: too few rows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutEra {
    /// The era (YYYYMMDD).
    pub era: i32,
    /// numerai-tools `neutral_correlation` to the neutralizers.
    pub neutral_corr: Option<f64>,
    /// numerai-tools `alpha` with the sample weights, on the rows the neutralizer file covers.
    pub alpha: Option<f64>,
    /// numerai-tools `correlation_contribution` to the meta model.
    pub mmc: Option<f64>,
    /// numerai-tools `neutral_contribution` to the meta model, neutralised.
    pub neutral_mmc: Option<f64>,
}

/// The payout scores over the out-of-sample eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutScores {
    /// The neutralizer file, its numeric columns, and the sample-weights file.
    pub neutralizers: Option<String>,
    /// Neutralizer columns used.
    pub neutralizer_columns: Vec<String>,
    /// The sample-weights file.
    pub sample_weights: Option<String>,
    /// The meta-model column of the targets file.
    pub meta_model: Option<String>,
    /// Out-of-sample prediction rows the neutralizer file has no row for (left out of alpha).
    pub rows_without_neutralizers: usize,
    /// Statistics of each score over the eras where it is defined.
    pub neutral_corr: Option<Summary>,
    /// Alpha's statistics.
    pub alpha: Option<Summary>,
    /// Meta-model contribution's statistics.
    pub mmc: Option<Summary>,
    /// Neutral meta-model contribution's statistics.
    pub neutral_mmc: Option<Summary>,
    /// Per era.
    pub per_era: Vec<PayoutEra>,
    /// Eras whose rows all have sample weight 0: their alpha is absent.
    #[serde(default)]
    pub zero_weight_eras: Vec<i32>,
    /// The same scores on the cleaned submission, as Numerai pays (when a universe is known).
    #[serde(default)]
    pub as_paid: Option<AsPaid>,
}

/// Payout scores "as Numerai pays": on the cleaned submission (numerai-tools
/// `clean_submission(rank_and_fill=True)`): each era's predictions joined to the era's universe,
/// tie-kept ranked, universe tickers without a prediction filled with 0.5.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AsPaid {
    /// Where each era's universe came from: `--universe FILE`, or the neutralizer file's rows.
    pub universe: String,
    /// Universe rows (summed over eras) without a prediction: filled with 0.5.
    pub universe_rows_filled: usize,
    /// Prediction rows (summed over eras) whose ticker is outside the era's universe: dropped.
    pub predictions_outside_universe: usize,
    /// Neutral corr's statistics.
    pub neutral_corr: Option<Summary>,
    /// Alpha's statistics.
    pub alpha: Option<Summary>,
    /// Meta-model contribution's statistics.
    pub mmc: Option<Summary>,
    /// Neutral meta-model contribution's statistics.
    pub neutral_mmc: Option<Summary>,
    /// Per era (eras whose universe is known).
    pub per_era: Vec<PayoutEra>,
}

/// The payout inputs: the neutralizer, sample-weight and universe files, read era by era (see
/// [`ByEra`]), and the targets' rows of each era.
struct Inputs<'a> {
    neutralizers: Option<ByEra>,
    weights: Option<ByEra>,
    universe: Option<ByEra>,
    targets: &'a KeyedTable,
    target_rows: HashMap<i32, Vec<usize>>,
    target: Vec<f64>,
    meta: Option<Vec<f64>>,
}

/// One era's payout inputs aligned to the rows scored (NaN where a file has no row).
struct Aligned {
    neutralizers: Option<Vec<Vec<f64>>>,
    covered: Vec<bool>,
    weights: Option<Vec<f64>>,
    meta: Option<Vec<f64>>,
}

/// One era's inputs, read: the predicted rows, and the cleaned submission over the universe.
struct EraInput {
    era: i32,
    p: Vec<f64>,
    t: Vec<f64>,
    a: Aligned,
    paid: Option<Cleaned>,
}

/// The cleaned submission of one era over its universe, with the inputs on those rows.
struct Cleaned {
    p: Vec<f64>,
    t: Vec<f64>,
    a: Aligned,
    filled: usize,
    outside: usize,
}

impl EraInput {
    /// Scores the era under both conventions (pure computation: no reading).
    fn score(&self) -> EraResult {
        EraResult {
            predicted: era_scores(self.era, &self.p, &self.t, &self.a),
            paid: self.paid.as_ref().map(|c| era_scores(self.era, &c.p, &c.t, &c.a)),
            uncovered: self.a.covered.iter().filter(|c| !**c).count(),
            zero_weight: all_zero_weight(&self.a),
            filled: self.paid.as_ref().map_or(0, |c| c.filled),
            outside: self.paid.as_ref().map_or(0, |c| c.outside),
        }
    }
}

/// One era's scores under both conventions, and its row counts.
struct EraResult {
    predicted: PayoutEra,
    paid: Option<PayoutEra>,
    uncovered: usize,
    zero_weight: bool,
    filled: usize,
    outside: usize,
}

/// Payout scores when `--neutralizers` or `--meta-model` was given, else None.
pub(super) fn payout_scores(
    args: &EvaluateArgs,
    preds: &KeyedTable,
    targets: &KeyedTable,
    s: &Scored,
    oos: &OutOfSample,
) -> Result<Option<PayoutScores>> {
    if args.neutralizers.is_none() && args.meta_model.is_none() {
        for (path, flag) in [(&args.sample_weights, "--sample-weights"), (&args.universe, "--universe")] {
            if let Some(p) = path {
                return Err(Error::input(p, format!("{flag} needs --neutralizers (alpha is neutral to them)")));
            }
        }
        return Ok(None);
    }
    let inputs = Inputs::open(args, targets)?;
    let (p, t) = (pick(&s.p, &oos.rows), pick(&s.t, &oos.rows));
    let tickers: Vec<&str> = oos.rows.iter().map(|&i| preds.universe[preds.ticker_ids[i] as usize].as_str()).collect();
    let meta =
        inputs.meta.as_ref().map(|m| oos.rows.iter().map(|&i| s.matched[i].map_or(f64::NAN, |j| m[j])).collect());
    let groups = metrics::era_groups(&oos.eras);
    // Eras are read a few at a time on this thread, then scored in parallel: reading inside a
    // parallel loop would let rayon start every era's read while one waits (memory of all eras).
    let mut results = Vec::with_capacity(groups.len());
    for chunk in groups.chunks(rayon::current_num_threads().max(1)) {
        let read: Vec<EraInput> = chunk
            .iter()
            .map(|(era, rows)| {
                let era_tickers: Vec<&str> = rows.iter().map(|&r| tickers[r]).collect();
                let era_meta = meta.as_ref().map(|m: &Vec<f64>| pick(m, rows));
                inputs.era_input(*era, &era_tickers, pick(&p, rows), pick(&t, rows), era_meta)
            })
            .collect::<Result<_>>()?;
        results.extend(read.par_iter().map(EraInput::score).collect::<Vec<_>>());
    }
    if let Some(n) = &inputs.neutralizers
        && results.iter().map(|r| r.uncovered).sum::<usize>() == oos.rows.len()
    {
        return Err(no_match(preds, &n.keys, "--neutralizers"));
    }
    Ok(Some(scores(args, &inputs, results)))
}

/// The report's payout section from each era's results.
fn scores(args: &EvaluateArgs, inputs: &Inputs, results: Vec<EraResult>) -> PayoutScores {
    let paid: Vec<PayoutEra> = results.iter().filter_map(|r| r.paid.clone()).collect();
    let as_paid = (!paid.is_empty()).then(|| AsPaid {
        universe: match &inputs.universe {
            Some(u) => u.path().display().to_string(),
            None => "the neutralizer file's rows of each era".into(),
        },
        universe_rows_filled: results.iter().map(|r| r.filled).sum(),
        predictions_outside_universe: results.iter().map(|r| r.outside).sum(),
        neutral_corr: stat(&paid, |e| e.neutral_corr),
        alpha: stat(&paid, |e| e.alpha),
        mmc: stat(&paid, |e| e.mmc),
        neutral_mmc: stat(&paid, |e| e.neutral_mmc),
        per_era: paid,
    });
    let per_era: Vec<PayoutEra> = results.iter().map(|r| r.predicted.clone()).collect();
    PayoutScores {
        neutralizers: args.neutralizers.as_ref().map(|p| p.display().to_string()),
        neutralizer_columns: inputs.neutralizers.as_ref().map(|n| n.names.clone()).unwrap_or_default(),
        sample_weights: args.sample_weights.as_ref().map(|p| p.display().to_string()),
        meta_model: args.meta_model.clone(),
        rows_without_neutralizers: results.iter().map(|r| r.uncovered).sum(),
        neutral_corr: stat(&per_era, |e| e.neutral_corr),
        alpha: stat(&per_era, |e| e.alpha),
        mmc: stat(&per_era, |e| e.mmc),
        neutral_mmc: stat(&per_era, |e| e.neutral_mmc),
        zero_weight_eras: results.iter().filter(|r| r.zero_weight).map(|r| r.predicted.era).collect(),
        per_era,
        as_paid,
    }
}

/// The score table's payout rows: each score on the predicted rows and, when a universe is known,
/// as Numerai pays, each labelled.
pub(super) fn payout_rows(p: &PayoutScores, scope: &str, row: fn(&str, &Summary) -> Vec<String>) -> Vec<Vec<String>> {
    let sets = |n: &Option<Summary>, a: &Option<Summary>, m: &Option<Summary>, nm: &Option<Summary>| {
        [("neutral corr", *n), ("alpha", *a), ("MMC", *m), ("neutral MMC", *nm)]
    };
    let mut rows = Vec::new();
    let label = if p.as_paid.is_some() { ", predicted rows" } else { "" };
    for (name, s) in sets(&p.neutral_corr, &p.alpha, &p.mmc, &p.neutral_mmc) {
        rows.extend(s.map(|s| row(&format!("{name}{label} ({scope})"), &s)));
    }
    if let Some(a) = &p.as_paid {
        for (name, s) in sets(&a.neutral_corr, &a.alpha, &a.mmc, &a.neutral_mmc) {
            rows.extend(s.map(|s| row(&format!("{name}, as Numerai pays ({scope})"), &s)));
        }
    }
    rows
}

/// A score's statistics over the eras where it is defined.
fn stat(per_era: &[PayoutEra], f: fn(&PayoutEra) -> Option<f64>) -> Option<Summary> {
    metrics::summarize_defined(&per_era.iter().filter_map(f).collect::<Vec<_>>())
}

/// The report.md lines for the payout section: the cleaned-submission convention, and eras whose
/// alpha is absent because every sample weight is 0.
pub(super) fn payout_markdown(p: &PayoutScores) -> String {
    let mut md = String::new();
    if let Some(a) = &p.as_paid {
        md += &format!(
            "\n\"As Numerai pays\" rows score the cleaned submission: each era's predictions joined to the universe ({}), \
             tie-kept ranked, {} universe rows without a prediction filled with 0.5, {} prediction rows outside the \
             universe dropped (numerai-tools `clean_submission(rank_and_fill=True)`). \"Predicted rows\" rows score \
             the predictions as given.\n",
            a.universe, a.universe_rows_filled, a.predictions_outside_universe
        );
    }
    if !p.zero_weight_eras.is_empty() {
        let eras: Vec<String> = p.zero_weight_eras.iter().map(|&e| crate::report::era_text(e)).collect();
        md += &format!(
            "\nAlpha is absent in {} eras where every sample weight is 0 ({}): nothing is weighted there.\n",
            eras.len(),
            eras.join(", ")
        );
    }
    md
}

/// One era's scores from its predictions `p`, targets `t` and inputs `a`, all on the same rows.
fn era_scores(era: i32, p: &[f64], t: &[f64], a: &Aligned) -> PayoutEra {
    let n = a.neutralizers.as_ref();
    let alpha = match (&a.weights, n) {
        (Some(_), Some(_)) if all_zero_weight(a) => None,
        (Some(w), Some(cols)) => {
            let u: Vec<usize> = (0..p.len()).filter(|&k| a.covered[k]).collect();
            let cols: Vec<Vec<f64>> = cols.iter().map(|c| pick(c, &u)).collect();
            Some(metrics::alpha(&pick(p, &u), &cols, &pick(w, &u), &pick(t, &u)))
        }
        _ => None,
    };
    PayoutEra {
        era,
        neutral_corr: n.map(|n| metrics::neutral_correlation(p, n, t)),
        alpha,
        mmc: a.meta.as_ref().map(|m| metrics::correlation_contribution(p, m, t)),
        neutral_mmc: a.meta.as_ref().zip(n).map(|(m, n)| metrics::neutral_contribution(p, m, n, t)),
    }
}

/// Whether every covered row that has a sample weight has weight 0: alpha weighs nothing there
/// and is absent.
fn all_zero_weight(a: &Aligned) -> bool {
    let Some(w) = &a.weights else { return false };
    let mut present = (0..w.len()).filter(|&k| a.covered[k] && !w[k].is_nan()).peekable();
    present.peek().is_some() && present.all(|k| w[k] == 0.0)
}

impl<'a> Inputs<'a> {
    /// Opens the neutralizer, sample-weight and universe files (keys only) and indexes the targets by era.
    fn open(args: &EvaluateArgs, targets: &'a KeyedTable) -> Result<Self> {
        let open = |p: &Option<PathBuf>, single: bool| -> Result<Option<ByEra>> {
            let Some(path) = p else { return Ok(None) };
            let f = ByEra::open(path)?;
            if f.names.is_empty() || (single && f.names.len() != 1) {
                let want = if single { "exactly one numeric column" } else { "numeric neutralizer columns" };
                return Err(Error::input(path, format!("needs {want} besides the ticker and date columns")));
            }
            Ok(Some(f))
        };
        let universe = match &args.universe {
            Some(path) => Some(ByEra::open(path)?),
            None => None,
        };
        let mut target_rows: HashMap<i32, Vec<usize>> = HashMap::new();
        for (i, &d) in targets.fridays.iter().enumerate() {
            target_rows.entry(era_of_days(d)).or_default().push(i);
        }
        let target_col = resolve_target(&targets.frame, &args.target).unwrap_or_else(|| args.target.clone());
        Ok(Inputs {
            neutralizers: open(&args.neutralizers, false)?,
            weights: open(&args.sample_weights, true)?,
            universe,
            targets,
            target_rows,
            target: targets.f64_column(&target_col)?,
            meta: args.meta_model.as_ref().map(|c| targets.f64_column(c)).transpose()?,
        })
    }

    /// The neutralizer and sample-weight files' rows of one era, each read once.
    fn read_era(&self, era: i32) -> Result<(Option<EraData>, Option<EraData>)> {
        let n = self.neutralizers.as_ref().map(|f| EraData::read(f, era, false)).transpose()?;
        Ok((n, self.weights.as_ref().map(|f| EraData::read(f, era, true)).transpose()?))
    }

    /// Reads one era's inputs for the predicted rows and, with a universe, for the cleaned submission.
    fn era_input(
        &self,
        era: i32,
        tickers: &[&str],
        p: Vec<f64>,
        t: Vec<f64>,
        meta: Option<Vec<f64>>,
    ) -> Result<EraInput> {
        let (n, w) = self.read_era(era)?;
        let a = aligned(n.as_ref(), w.as_ref(), tickers, meta);
        let universe = match (&self.universe, &n) {
            (Some(u), _) => era_tickers(u, &u.era(era)?.rows),
            (None, Some(n)) => n.tickers.clone(),
            (None, None) => Vec::new(),
        };
        let paid = match universe.is_empty() {
            true => None,
            false => {
                let u: Vec<&str> = universe.iter().map(String::as_str).collect();
                let (in_universe, predicted): (HashSet<&str>, HashSet<&str>) =
                    (u.iter().copied().collect(), tickers.iter().copied().collect());
                let (t_u, meta_u) = self.targets_of(era, &u);
                Some(Cleaned {
                    p: metrics::clean_submission(&u, tickers, &p),
                    t: t_u,
                    a: aligned(n.as_ref(), w.as_ref(), &u, meta_u),
                    filled: u.iter().filter(|t| !predicted.contains(*t)).count(),
                    outside: tickers.iter().filter(|t| !in_universe.contains(*t)).count(),
                })
            }
        };
        Ok(EraInput { era, p, t, a, paid })
    }

    /// The target (and meta-model) values of `tickers` in `era` (NaN where the targets file has no row).
    fn targets_of(&self, era: i32, tickers: &[&str]) -> (Vec<f64>, Option<Vec<f64>>) {
        let rows = self.target_rows.get(&era).map(Vec::as_slice).unwrap_or_default();
        let at: PlHashMap<&str, usize> =
            rows.iter().map(|&i| (self.targets.universe[self.targets.ticker_ids[i] as usize].as_str(), i)).collect();
        let pos: Vec<Option<usize>> = tickers.iter().map(|t| at.get(t).copied()).collect();
        let of = |c: &[f64]| pos.iter().map(|j| j.map_or(f64::NAN, |j| c[j])).collect::<Vec<f64>>();
        (of(&self.target), self.meta.as_deref().map(of))
    }
}

/// The tickers of a keyed file's rows.
fn era_tickers(f: &ByEra, rows: &[usize]) -> Vec<String> {
    rows.iter().map(|&g| f.keys.universe[f.keys.ticker_ids[g] as usize].clone()).collect()
}

/// A keyed file's rows of one era: their tickers and value columns.
struct EraData {
    tickers: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl EraData {
    /// Reads `era` of `f`; sample weights (`weights`) are checked on the way.
    fn read(f: &ByEra, era: i32, weights: bool) -> Result<Self> {
        let e = f.era(era)?;
        if weights {
            check_weights(f, &e)?;
        }
        Ok(EraData { tickers: era_tickers(f, &e.rows), columns: e.columns })
    }

    /// The columns aligned to `tickers` (NaN where this era has no row), and which rows it has.
    fn align(&self, tickers: &[&str]) -> (Vec<Vec<f64>>, Vec<bool>) {
        let at: PlHashMap<&str, usize> = self.tickers.iter().enumerate().map(|(k, t)| (t.as_str(), k)).collect();
        let pos: Vec<Option<usize>> = tickers.iter().map(|t| at.get(t).copied()).collect();
        let cols = self.columns.iter().map(|c| pos.iter().map(|k| k.map_or(f64::NAN, |k| c[k])).collect()).collect();
        (cols, pos.iter().map(Option::is_some).collect())
    }
}

/// One era's neutralizers and sample weights aligned to `tickers`, with their meta-model values.
fn aligned(n: Option<&EraData>, w: Option<&EraData>, tickers: &[&str], meta: Option<Vec<f64>>) -> Aligned {
    let mut a = Aligned { neutralizers: None, covered: vec![true; tickers.len()], weights: None, meta };
    if let Some(n) = n {
        let (cols, covered) = n.align(tickers);
        (a.neutralizers, a.covered) = (Some(cols), covered);
    }
    a.weights = w.and_then(|w| w.align(tickers).0.pop());
    a
}

/// Refuses a sample weight that is missing, NaN, infinite or negative, naming its row.
fn check_weights(f: &ByEra, e: &EraRows) -> Result<()> {
    let w = &e.columns[0];
    match w.iter().position(|v| !v.is_finite() || *v < 0.0) {
        Some(k) => Err(Error::at(
            f.path(),
            Some(e.rows[k] + 1),
            &f.names[0],
            format!(
                "sample weight {} is not usable: weights must be finite and at least 0 (0 leaves a row out); \
                 fix or drop the row",
                if w[k].is_nan() { "missing (or NaN)".to_string() } else { w[k].to_string() }
            ),
        )),
        None => Ok(()),
    }
}
