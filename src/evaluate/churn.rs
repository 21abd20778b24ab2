//! The churn a model's weekly signals would have had out of sample, raw and smoothed.

use super::{EvalReport, EvaluateArgs, OutOfSample, Scored, fmt4, pick};
use crate::error::Result;
use crate::metrics::{self, Summary};
use crate::report::markdown_table;
use serde::{Deserialize, Serialize};

/// Churn between weekly signals, as Numerai's stake rule reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnSummary {
    /// Per OOS era after the first: (era, churn against the era before).
    pub per_era: Vec<(i32, f64)>,
    /// Mean of `per_era`.
    pub mean: f64,
    /// Largest churn against any of the five eras before (Numerai's rule), over all eras.
    pub max_over_last_5: f64,
    /// Eras whose churn against one of the five before reached the limit (0.15).
    pub eras_over_limit: usize,
}

/// One smoothing weight's out-of-sample scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmoothedScores {
    /// The share of last week's rank kept.
    pub weight: f64,
    /// numerai_corr statistics of the smoothed predictions.
    pub summary: Summary,
    /// Their churn.
    pub churn: Option<ChurnSummary>,
}

/// Churn of the out-of-sample eras' signals: each against the era before, and the max against the
/// five before (metrics::churn, 1 − Spearman on the common tickers); None with under two eras.
pub(super) fn churn_summary(tickers: &[String], p: &[f64], oos: &OutOfSample) -> Option<ChurnSummary> {
    let weeks: Vec<(i32, Vec<String>, Vec<f64>)> = metrics::era_groups(&oos.eras)
        .into_iter()
        .map(|(era, rows)| {
            let rows: Vec<usize> = rows.iter().map(|&r| oos.rows[r]).collect();
            (era, rows.iter().map(|&i| tickers[i].clone()).collect(), pick(p, &rows))
        })
        .collect();
    let churn_of = |a: usize, b: usize| metrics::churn(&weeks[a].1, &weeks[a].2, &weeks[b].1, &weeks[b].2, None);
    let per_era: Vec<(i32, f64)> = (1..weeks.len()).map(|k| (weeks[k].0, churn_of(k, k - 1))).collect();
    if per_era.is_empty() {
        return None;
    }
    let gate: Vec<f64> =
        (1..weeks.len()).map(|k| (k.saturating_sub(5)..k).map(|j| churn_of(k, j)).fold(f64::NAN, f64::max)).collect();
    let present: Vec<f64> = per_era.iter().map(|c| c.1).filter(|c| !c.is_nan()).collect();
    Some(ChurnSummary {
        mean: present.iter().sum::<f64>() / present.len().max(1) as f64,
        max_over_last_5: gate.iter().copied().fold(f64::NAN, f64::max),
        eras_over_limit: gate.iter().filter(|c| **c >= metrics::CHURN_LIMIT).count(),
        per_era,
    })
}

/// For each weight asked for: the out-of-sample predictions blended era by era in time order,
/// starting at the first out-of-sample era (in-sample predictions never leak in), scored and
/// churned like the raw ones. `news` says which prediction rows had a headline (as `predict
/// --smooth` reads the feature table: rows without one decay toward the middle).
pub(super) fn smoothed_scores(
    args: &EvaluateArgs,
    tickers: &[String],
    news: &[bool],
    s: &Scored,
    oos: &OutOfSample,
) -> Result<Vec<SmoothedScores>> {
    let (p, t) = (pick(&s.p, &oos.rows), pick(&s.t, &oos.rows));
    let oos_tickers: Vec<String> = oos.rows.iter().map(|&i| tickers[i].clone()).collect();
    let own = OutOfSample { scored: String::new(), rows: (0..p.len()).collect(), eras: oos.eras.clone() };
    let news: Vec<bool> = oos.rows.iter().map(|&i| news[i]).collect();
    args.smooth
        .iter()
        .map(|&a| {
            crate::smooth::check_weight(a)?;
            let blended = crate::smooth::smooth_eras(&oos.eras, &oos_tickers, &p, &news, a);
            let per_era = metrics::per_era(&blended, &t, &oos.eras);
            let summary = metrics::summarize(&per_era.iter().map(|e| e.corr).collect::<Vec<_>>());
            Ok(SmoothedScores { weight: a, summary, churn: churn_summary(&oos_tickers, &blended, &own) })
        })
        .collect()
}

/// The churn section of report.md: the raw model's churn and each smoothing weight's corr and churn.
pub(super) fn churn_markdown(r: &EvalReport) -> String {
    let Some(c) = &r.churn else { return String::new() };
    let mut md = format!(
        "\n## Churn\n\nChurn (1 − Spearman with the era before), mean {:.4}; max against any of the five eras before \
         {:.4}; {} eras at or above Numerai's limit {} (a stake is set to zero there).\n\n",
        c.mean,
        c.max_over_last_5,
        c.eras_over_limit,
        metrics::CHURN_LIMIT
    ) + "![corr and churn](plots/corr_and_churn.png)\n\n";
    if r.smoothing.is_empty() {
        return md;
    }
    let row = |a: String, s: &Summary, c: Option<&ChurnSummary>| {
        let (mean, over) = c.map_or((f64::NAN, 0), |c| (c.mean, c.eras_over_limit));
        vec![a, fmt4(s.mean), format!("{:.2}", s.sharpe), fmt4(mean), over.to_string()]
    };
    let mut rows = vec![row("raw".into(), &r.summary, Some(c))];
    rows.extend(r.smoothing.iter().map(|s| row(format!("{}", s.weight), &s.summary, s.churn.as_ref())));
    md += &markdown_table(&["smoothing A", "corr mean", "sharpe", "churn mean", "eras over limit"], &rows);
    md
}
