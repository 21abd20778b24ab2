//! Out-of-sample evaluation the way Numerai scores (per-era numerai_corr and its statistics,
//! feature exposure, feature-neutral corr), and feature importance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::targets::{DEFAULT_TARGET, Targets, resolve_target};
use crate::era::{era_of_days, eras_of_days};
use crate::error::{Error, Result};
use crate::metrics::{self, EraScore, Summary};
use crate::model::{Model, Split, default_features, importance as model_importance};
use crate::report::{bar_plot, cumulative_plot, era_text, markdown_table, per_era_plot, write_json};

/// What `evaluate` needs.
#[derive(Debug, Clone)]
pub struct EvaluateArgs {
    /// Predictions: a ticker column, a date column and `prediction` or `signal`.
    pub predictions: PathBuf,
    /// Numerai targets (or the feature table, which carries them).
    pub targets: PathBuf,
    /// Target column (aliases resolved).
    pub target: String,
    /// The model folder: its card says which eras were train, embargo and validation.
    pub model: Option<PathBuf>,
    /// The feature table, for feature exposure and feature-neutral corr.
    pub features: Option<PathBuf>,
    /// A column of the targets file to report correlation with (e.g. a benchmark model).
    pub benchmark: Option<String>,
    /// Output folder: report.json, report.md, plots/.
    pub out: PathBuf,
}

impl EvaluateArgs {
    /// Defaults for everything but the inputs and output.
    pub fn new(predictions: PathBuf, targets: PathBuf, out: PathBuf) -> Self {
        EvaluateArgs {
            predictions,
            targets,
            target: DEFAULT_TARGET.into(),
            model: None,
            features: None,
            benchmark: None,
            out,
        }
    }
}

/// The evaluation written to report.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Predictions file.
    pub predictions: String,
    /// Targets file and the column scored.
    pub targets: String,
    /// Target column.
    pub target: String,
    /// Which eras count as out of sample and why.
    pub scored: String,
    /// The model's split, when a model card was given.
    pub split: Option<Split>,
    /// Out-of-sample per-era scores.
    pub per_era: Vec<EraScore>,
    /// Statistics of `per_era`.
    pub summary: Summary,
    /// The same statistics on the training eras (in sample: for spotting overfit only).
    pub in_sample: Option<Summary>,
    /// Mean over OOS eras of the largest |corr| of the predictions with any feature.
    pub feature_exposure: Option<f64>,
    /// The feature most often the most exposed.
    pub most_exposed_feature: Option<String>,
    /// Feature-neutral corr (neutralised to the non-embedding features) per OOS era, summarised.
    pub feature_neutral: Option<Summary>,
    /// Per-era Spearman correlation with the benchmark column, summarised.
    pub benchmark: Option<Summary>,
    /// Rows of predictions without a matching target row.
    pub unmatched_predictions: usize,
    /// OOS eras where every prediction was equal (e.g. no ticker had news): scored 0.
    pub constant_eras: usize,
}

/// Rows keyed by (TICKER, era).
fn keys(t: &Targets) -> Vec<(u32, i32)> {
    t.ticker_ids.iter().zip(&t.fridays).map(|(id, d)| (*id, era_of_days(*d))).collect()
}

fn f64_column(path: &Path, frame: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let c = frame.column(name).and_then(|c| c.cast(&DataType::Float64)).map_err(|e| Error::table(path, e))?;
    Ok(c.f64().map_err(|e| Error::table(path, e))?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Aligns another table's rows to `base`: for each base row, the index of the same (ticker, era).
/// Keys are unique on both sides: [`Targets`] refuses a file with a (ticker, date) twice, so no
/// target row silently replaces another and no prediction counts twice.
fn align(base: &Targets, other: &Targets) -> Vec<Option<usize>> {
    let mut at: HashMap<(&str, i32), usize> = HashMap::with_capacity(other.len());
    for (i, (id, era)) in keys(other).into_iter().enumerate() {
        at.insert((other.universe[id as usize].as_str(), era), i);
    }
    keys(base).into_iter().map(|(id, era)| at.get(&(base.universe[id as usize].as_str(), era)).copied()).collect()
}

/// Scores predictions per era against the targets, writes report.json, report.md and plots.
pub fn evaluate(args: &EvaluateArgs) -> Result<EvalReport> {
    let preds = Targets::read(&args.predictions)?;
    let value_col = ["prediction", "signal"].into_iter().find(|c| preds.frame.column(c).is_ok()).ok_or_else(|| {
        Error::input(
            &args.predictions,
            "no 'prediction' or 'signal' column: pass predictions from signalkit train or predict",
        )
    })?;
    let p = f64_column(&args.predictions, &preds.frame, value_col)?;
    let targets = Targets::read(&args.targets)?;
    let target_col = resolve_target(&targets.frame, &args.target)
        .ok_or_else(|| Error::input(&args.targets, format!("no target column '{}' (or its alias)", args.target)))?;
    let t_all = f64_column(&args.targets, &targets.frame, &target_col)?;
    let match_t = align(&preds, &targets);
    let unmatched = match_t.iter().filter(|m| m.is_none()).count();
    let t: Vec<f64> = match_t.iter().map(|m| m.map(|i| t_all[i]).unwrap_or(f64::NAN)).collect();
    let eras: Vec<i32> = eras_of_days(&preds.fridays);

    let model = args.model.as_deref().map(Model::load).transpose()?;
    let split = model.as_ref().map(|m| m.card.split.clone());
    let (scored, oos): (String, Vec<usize>) = match &split {
        Some(s) => (
            format!(
                "validation eras of the model card ({} eras; {} train and {} embargo eras excluded)",
                s.validation.len(),
                s.train.len(),
                s.embargo.len()
            ),
            (0..eras.len()).filter(|&i| s.validation.binary_search(&eras[i]).is_ok()).collect(),
        ),
        None => (
            "every era in the predictions (no model card given: cannot tell in-sample eras)".into(),
            (0..eras.len()).collect(),
        ),
    };
    if oos.is_empty() {
        return Err(Error::input(
            &args.predictions,
            "no predictions fall in the validation eras: predict the validation rows first",
        ));
    }
    let sub = |v: &[f64], rows: &[usize]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let oos_eras: Vec<i32> = oos.iter().map(|&i| eras[i]).collect();
    let per_era = metrics::per_era(&sub(&p, &oos), &sub(&t, &oos), &oos_eras);
    if per_era.is_empty() {
        return Err(Error::input(
            &args.targets,
            format!("no out-of-sample era has both predictions and '{target_col}' values"),
        ));
    }
    let scores: Vec<f64> = per_era.iter().map(|e| e.corr).collect();
    let summary = metrics::summarize(&scores);
    let constant_eras = metrics::era_groups(&oos_eras)
        .iter()
        .filter(|(_, rows)| {
            let rows: Vec<usize> = rows.iter().map(|&r| oos[r]).collect();
            metrics::is_constant(&sub(&p, &rows), &sub(&t, &rows))
        })
        .count();
    let in_sample = split.as_ref().map(|s| {
        let rows: Vec<usize> = (0..eras.len()).filter(|&i| s.train.binary_search(&eras[i]).is_ok()).collect();
        let e: Vec<i32> = rows.iter().map(|&i| eras[i]).collect();
        metrics::summarize(
            &metrics::per_era(&sub(&p, &rows), &sub(&t, &rows), &e).iter().map(|x| x.corr).collect::<Vec<_>>(),
        )
    });

    let (mut feature_exposure, mut most_exposed_feature, mut feature_neutral) = (None, None, None);
    if let Some(fp) = &args.features {
        let ft = Targets::read(fp)?;
        let names = match &model {
            Some(m) => m.card.features.clone(),
            None => default_features(&ft.frame),
        };
        let at = align(&preds, &ft);
        let cols: Vec<Vec<f64>> = names
            .iter()
            .map(|n| {
                f64_column(fp, &ft.frame, n)
                    .map(|c| oos.iter().map(|&i| at[i].map(|j| c[j]).unwrap_or(f64::NAN)).collect())
            })
            .collect::<Result<_>>()?;
        let groups = metrics::era_groups(&oos_eras);
        let p_oos = sub(&p, &oos);
        let t_oos = sub(&t, &oos);
        let per: Vec<(Option<(usize, f64)>, f64)> = groups
            .par_iter()
            .map(|(_, rows)| {
                let pe: Vec<f64> = rows.iter().map(|&r| p_oos[r]).collect();
                let te: Vec<f64> = rows.iter().map(|&r| t_oos[r]).collect();
                let fe: Vec<Vec<f64>> = cols.iter().map(|c| rows.iter().map(|&r| c[r]).collect()).collect();
                let refs: Vec<&[f64]> = fe.iter().map(|c| c.as_slice()).collect();
                let exposure = metrics::max_feature_correlation(&pe, &refs);
                // Neutralise to the compact features (not the embedding), rows without a headline
                // take the era's mean so they are kept.
                let neutralizers: Vec<Vec<f64>> = names
                    .iter()
                    .zip(&fe)
                    .filter(|(n, _)| !n.starts_with("cls_"))
                    .map(|(_, c)| {
                        let m = c.iter().filter(|v| !v.is_nan()).sum::<f64>()
                            / c.iter().filter(|v| !v.is_nan()).count().max(1) as f64;
                        c.iter().map(|v| if v.is_nan() { m } else { *v }).collect()
                    })
                    .collect();
                (exposure, metrics::feature_neutral_corr(&pe, &neutralizers, &te))
            })
            .collect();
        let exposures: Vec<f64> = per.iter().filter_map(|(e, _)| e.map(|e| e.1)).collect();
        if !exposures.is_empty() {
            feature_exposure = Some(exposures.iter().sum::<f64>() / exposures.len() as f64);
            let mut counts: HashMap<usize, usize> = HashMap::new();
            for (e, _) in &per {
                if let Some((j, _)) = e {
                    *counts.entry(*j).or_default() += 1;
                }
            }
            most_exposed_feature =
                counts.into_iter().max_by_key(|(j, c)| (*c, usize::MAX - j)).map(|(j, _)| names[j].clone());
        }
        let fnc: Vec<f64> = per.iter().map(|(_, f)| *f).filter(|f| !f.is_nan()).collect();
        if !fnc.is_empty() {
            feature_neutral = Some(metrics::summarize(&fnc));
        }
    }
    let benchmark = match &args.benchmark {
        Some(col) => {
            let b_all = f64_column(&args.targets, &targets.frame, col)
                .map_err(|_| Error::at(&args.targets, None, col, "benchmark column not found"))?;
            let b: Vec<f64> = oos.iter().map(|&i| match_t[i].map(|j| b_all[j]).unwrap_or(f64::NAN)).collect();
            let p_oos = sub(&p, &oos);
            let s: Vec<f64> = metrics::era_groups(&oos_eras)
                .iter()
                .map(|(_, rows)| {
                    let pe: Vec<f64> = rows.iter().map(|&r| p_oos[r]).collect();
                    let be: Vec<f64> = rows.iter().map(|&r| b[r]).collect();
                    metrics::benchmark_corr(&pe, &be)
                })
                .filter(|c| !c.is_nan())
                .collect();
            Some(metrics::summarize(&s))
        }
        None => None,
    };

    let report = EvalReport {
        predictions: args.predictions.display().to_string(),
        targets: args.targets.display().to_string(),
        target: target_col,
        scored,
        split,
        per_era,
        summary,
        in_sample,
        feature_exposure,
        most_exposed_feature,
        feature_neutral,
        benchmark,
        unmatched_predictions: unmatched,
        constant_eras,
    };
    write_eval_outputs(&args.out, &report)?;
    Ok(report)
}

fn fmt4(v: f64) -> String {
    format!("{v:.4}")
}

fn summary_row(name: &str, s: &Summary) -> Vec<String> {
    vec![
        name.into(),
        fmt4(s.mean),
        fmt4(s.std),
        format!("{:.3}", s.sharpe),
        fmt4(s.max_drawdown),
        format!("{:.0}%", 100.0 * s.share_positive),
        s.eras.to_string(),
    ]
}

fn eras_line(eras: &[i32]) -> String {
    match (eras.first(), eras.last()) {
        (Some(a), Some(b)) => format!("{} eras, {} → {}", eras.len(), era_text(*a), era_text(*b)),
        _ => "none".into(),
    }
}

fn write_eval_outputs(out: &Path, r: &EvalReport) -> Result<()> {
    write_json(&out.join("report.json"), r)?;
    let eras: Vec<i32> = r.per_era.iter().map(|e| e.era).collect();
    let scores: Vec<f64> = r.per_era.iter().map(|e| e.corr).collect();
    cumulative_plot(&out.join("plots/cumulative_corr.png"), "Cumulative out-of-sample numerai_corr", &eras, &scores)?;
    per_era_plot(&out.join("plots/per_era_corr.png"), "Out-of-sample numerai_corr per era", &eras, &scores)?;

    let mut md = format!(
        "# Out-of-sample evaluation\n\nPredictions `{}`, target `{}` from `{}`.\n\nScored: {}.\n\n",
        r.predictions, r.target, r.targets, r.scored
    );
    if let Some(s) = &r.split {
        md += &format!(
            "| split | eras |\n|---|---|\n| train | {} |\n| embargo | {} |\n| validation | {} |\n\n",
            eras_line(&s.train),
            eras_line(&s.embargo),
            eras_line(&s.validation)
        );
    }
    let mut rows = vec![summary_row("numerai_corr (OOS)", &r.summary)];
    if let Some(s) = &r.feature_neutral {
        rows.push(summary_row("feature-neutral corr (OOS)", s));
    }
    if let Some(s) = &r.benchmark {
        rows.push(summary_row("corr with benchmark (OOS)", s));
    }
    if let Some(s) = &r.in_sample {
        rows.push(summary_row("numerai_corr (train, in sample)", s));
    }
    md += &markdown_table(&["score", "mean", "std", "sharpe", "max drawdown", "positive eras", "eras"], &rows);
    if let Some(e) = r.feature_exposure {
        md += &format!(
            "\nFeature exposure (mean over eras of the largest |corr| with any feature): {e:.4}; most often largest: `{}`.\n",
            r.most_exposed_feature.as_deref().unwrap_or("-")
        );
    }
    if r.constant_eras > 0 {
        md += &format!(
            "\n{} eras had the same prediction for every row (no ticker had a usable headline): each scores 0.\n",
            r.constant_eras
        );
    }
    if r.unmatched_predictions > 0 {
        md += &format!("\n{} prediction rows had no target row.\n", r.unmatched_predictions);
    }
    md += "\n![cumulative](plots/cumulative_corr.png)\n\n![per era](plots/per_era_corr.png)\n\n## Per era\n\n";
    let era_rows: Vec<Vec<String>> =
        r.per_era.iter().map(|e| vec![era_text(e.era), format!("{:.4}", e.corr), e.n.to_string()]).collect();
    md += &markdown_table(&["era", "numerai_corr", "rows"], &era_rows);
    crate::data::write_bytes_atomic(&out.join("report.md"), md.as_bytes())
}

/// What `importance` needs.
#[derive(Debug, Clone)]
pub struct ImportanceArgs {
    /// Model folder or model.txt.
    pub model: PathBuf,
    /// Feature table with targets.
    pub features: PathBuf,
    /// Output folder: importance.json, importance.md, plots/importance.png.
    pub out: PathBuf,
    /// Features shown in the table and plot.
    pub top: usize,
}

/// One feature's importance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// Feature column.
    pub feature: String,
    /// Total gain of its splits.
    pub gain: f64,
    /// Share of the total gain.
    pub gain_share: f64,
    /// Number of splits on it.
    pub splits: f64,
    /// Mean per-era numerai_corr of the feature with the target.
    pub corr_mean: f64,
    /// corr_mean / std of the per-era corr.
    pub corr_sharpe: f64,
    /// Eras in which it could be scored.
    pub eras: usize,
}

/// Gain and split importance, and each feature's per-era correlation with the target; writes
/// importance.json, importance.md and plots/importance.png.
pub fn importance(args: &ImportanceArgs) -> Result<Vec<FeatureImportance>> {
    let model = Model::load(&args.model)?;
    let (gain, splits) = model_importance(&model)?;
    let ft = Targets::read(&args.features)?;
    let target_col = resolve_target(&ft.frame, &model.card.target)
        .ok_or_else(|| Error::input(&args.features, format!("no target column '{}'", model.card.target)))?;
    let t = f64_column(&args.features, &ft.frame, &target_col)?;
    let eras: Vec<i32> = eras_of_days(&ft.fridays);
    let groups = metrics::era_groups(&eras);
    let total: f64 = gain.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut rows: Vec<FeatureImportance> = model
        .card
        .features
        .par_iter()
        .enumerate()
        .map(|(j, name)| {
            let f = f64_column(&args.features, &ft.frame, name)?;
            let per: Vec<f64> = groups
                .iter()
                .map(|(_, rows)| {
                    let fe: Vec<f64> = rows.iter().map(|&r| f[r]).collect();
                    let te: Vec<f64> = rows.iter().map(|&r| t[r]).collect();
                    metrics::numerai_corr(&fe, &te)
                })
                .filter(|c| !c.is_nan())
                .collect();
            let s = metrics::summarize(&per);
            Ok(FeatureImportance {
                feature: name.clone(),
                gain: gain[j],
                gain_share: gain[j] / total,
                splits: splits[j],
                corr_mean: s.mean,
                corr_sharpe: s.sharpe,
                eras: s.eras,
            })
        })
        .collect::<Result<_>>()?;
    rows.sort_by(|a, b| b.gain.total_cmp(&a.gain).then(a.feature.cmp(&b.feature)));
    write_json(&args.out.join("importance.json"), &rows)?;
    let top: Vec<&FeatureImportance> = rows.iter().take(args.top).collect();
    bar_plot(
        &args.out.join("plots/importance.png"),
        &format!("Top {} features by gain", top.len()),
        "share of total gain",
        &top.iter().map(|r| r.feature.clone()).collect::<Vec<_>>(),
        &top.iter().map(|r| r.gain_share).collect::<Vec<_>>(),
    )?;
    let table: Vec<Vec<String>> = top
        .iter()
        .enumerate()
        .map(|(k, r)| {
            vec![
                (k + 1).to_string(),
                format!("`{}`", r.feature),
                format!("{:.1}%", 100.0 * r.gain_share),
                format!("{:.0}", r.splits),
                format!("{:.4}", r.corr_mean),
                format!("{:.3}", r.corr_sharpe),
            ]
        })
        .collect();
    let md = format!(
        "# Feature importance\n\nModel `{}` ({} trees, {} features), target `{}`; per-era correlation over {} eras of `{}` (all eras with targets, in and out of sample).\n\n{}\n![importance](plots/importance.png)\n",
        args.model.display(),
        model.card.trees,
        model.card.features.len(),
        target_col,
        groups.len(),
        args.features.display(),
        markdown_table(&["#", "feature", "gain", "splits", "corr mean", "corr sharpe"], &table)
    );
    crate::data::write_bytes_atomic(&args.out.join("importance.md"), md.as_bytes())?;
    Ok(rows)
}
