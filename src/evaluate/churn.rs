//! The churn a model's weekly signals would have had out of sample, raw and smoothed.

use super::{EvalReport, EvaluateArgs, OutOfSample, Scored, fmt4, pick};
use crate::error::Result;
use crate::metrics::{self, EraScore, Summary};
use crate::report::markdown_table;
use serde::{Deserialize, Serialize};

/// Churn between weekly signals, as Numerai's stake rule reads it. A statistic over no era whose
/// churn is defined is absent (`None`), never 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnSummary {
    /// Per OOS era after the first: (era, churn against the era before; None where numerai-tools
    /// cannot compute it: too few common tickers with a prediction, or a constant week).
    pub per_era: Vec<(i32, Option<f64>)>,
    /// Mean of the defined `per_era` values.
    pub mean: Option<f64>,
    /// Largest churn against any of the five eras before (Numerai's rule), over all eras.
    pub max_over_last_5: Option<f64>,
    /// Eras whose churn against one of the five before reached the limit (0.15), among the eras
    /// where one is defined.
    pub eras_over_limit: Option<usize>,
    /// Eras after the first against none of whose five predecessors churn is defined.
    #[serde(default)]
    pub eras_undefined: usize,
}

/// One smoothing weight's out-of-sample scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmoothedScores {
    /// The share of last week's rank kept.
    pub weight: f64,
    /// numerai_corr statistics of the smoothed predictions (None: no era could be scored).
    pub summary: Option<Summary>,
    /// Their churn.
    pub churn: Option<ChurnSummary>,
    /// numerai_corr per era of the smoothed predictions (`signalkit compare RUN@smooth=A` reads it).
    #[serde(default)]
    pub per_era: Vec<EraScore>,
}

/// One week's signal as it would be submitted: its tickers and values, rows without a
/// prediction dropped (a submission holds no NaN; numerai-tools drops them before matching).
type Week = (i32, Vec<String>, Vec<f64>);

fn weeks_of(tickers: &[String], p: &[f64], oos: &OutOfSample) -> Vec<Week> {
    metrics::era_groups(&oos.eras)
        .into_iter()
        .map(|(era, rows)| {
            let rows: Vec<usize> = rows.iter().map(|&r| oos.rows[r]).filter(|&i| !p[i].is_nan()).collect();
            (era, rows.iter().map(|&i| tickers[i].clone()).collect(), pick(p, &rows))
        })
        .collect()
}

/// Churn of the out-of-sample eras' signals: each against the era before, and the max against the
/// five before (metrics::churn, 1 − Spearman on the common tickers with a prediction); None with
/// under two eras.
pub(super) fn churn_summary(tickers: &[String], p: &[f64], oos: &OutOfSample) -> Option<ChurnSummary> {
    let weeks = weeks_of(tickers, p, oos);
    let churn_of = |a: usize, b: usize| {
        Some(metrics::churn(&weeks[a].1, &weeks[a].2, &weeks[b].1, &weeks[b].2, None)).filter(|c| !c.is_nan())
    };
    let per_era: Vec<(i32, Option<f64>)> = (1..weeks.len()).map(|k| (weeks[k].0, churn_of(k, k - 1))).collect();
    if per_era.is_empty() {
        return None;
    }
    let gate: Vec<Option<f64>> =
        (1..weeks.len()).map(|k| (k.saturating_sub(5)..k).filter_map(|j| churn_of(k, j)).reduce(f64::max)).collect();
    let defined: Vec<f64> = per_era.iter().filter_map(|c| c.1).collect();
    let gated: Vec<f64> = gate.iter().flatten().copied().collect();
    Some(ChurnSummary {
        mean: (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64),
        max_over_last_5: gated.iter().copied().reduce(f64::max),
        eras_over_limit: (!gated.is_empty()).then(|| gated.iter().filter(|c| **c >= metrics::CHURN_LIMIT).count()),
        eras_undefined: gate.len() - gated.len(),
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
            let summary = metrics::summarize_defined(&per_era.iter().map(|e| e.corr).collect::<Vec<_>>());
            let churn = churn_summary(&oos_tickers, &blended, &own);
            Ok(SmoothedScores { weight: a, summary, churn, per_era })
        })
        .collect()
}

/// A statistic for report.md: four decimals, or "n/a" when absent.
pub(super) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), fmt4)
}

/// The smoothing table's last column: what its count compares against.
fn over_limit_header() -> String {
    format!("eras ≥ {} (vs any of the five before)", metrics::CHURN_LIMIT)
}

/// The churn section of report.md: the raw model's churn and each smoothing weight's corr and churn.
pub(super) fn churn_markdown(r: &EvalReport) -> String {
    let Some(c) = &r.churn else { return String::new() };
    let over = c.eras_over_limit.map_or_else(|| "n/a (no era's churn is defined)".into(), |n| n.to_string());
    let mut md = format!(
        "\n## Churn\n\nChurn (1 − Spearman with the era before, on the tickers with a prediction in both), mean {}; \
         max against any of the five eras before {}; eras at or above Numerai's limit {} (a stake is set to zero there): {over}.\n\n",
        fmt_opt(c.mean),
        fmt_opt(c.max_over_last_5),
        metrics::CHURN_LIMIT
    );
    if c.eras_undefined > 0 {
        md += &format!(
            "{} eras have no churn: too few tickers with a prediction in common with the five eras before \
             (numerai-tools needs {:.0}% of each week's tickers), or a constant week.\n\n",
            c.eras_undefined,
            100.0 * (1.0 - metrics::MAX_FILTERED_INDEX_RATIO)
        );
    }
    md += "![corr and churn](plots/corr_and_churn.png)\n\n";
    if r.smoothing.is_empty() {
        return md;
    }
    let row = |a: String, s: Option<&Summary>, c: Option<&ChurnSummary>| {
        let (mean, over) = c.map_or((None, None), |c| (c.mean, c.eras_over_limit));
        vec![
            a,
            fmt_opt(s.map(|s| s.mean)),
            s.map_or_else(|| "n/a".into(), |s| format!("{:.2}", s.sharpe)),
            fmt_opt(mean),
            over.map_or_else(|| "n/a".into(), |n| n.to_string()),
        ]
    };
    let mut rows = vec![row("raw".into(), Some(&r.summary), Some(c))];
    rows.extend(r.smoothing.iter().map(|s| row(format!("{}", s.weight), s.summary.as_ref(), s.churn.as_ref())));
    let last = over_limit_header();
    let header: [&str; 5] = ["smoothing A", "corr mean", "sharpe", "churn mean (vs the era before)", &last];
    md += &markdown_table(&header, &rows);
    md
}
