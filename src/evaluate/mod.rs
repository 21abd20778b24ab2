//! Out-of-sample evaluation the way Numerai scores (per-era numerai_corr and its statistics,
//! feature exposure, feature-neutral corr), and feature importance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::{DataType, PlHashMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::by_era::ByEra;
use crate::data::targets::{DEFAULT_TARGET, KeyedTable, resolve_target};
use crate::era::{era_of_days, eras_of_days};
use crate::error::{Error, Result};
use crate::metrics::{self, EraScore, Summary};
use crate::model::{Model, Split, default_features, importance as model_importance};
pub use mda::Mda;
mod churn;
pub mod compare;
mod cutoff;
pub mod mda;
mod payout;

use crate::report::{bar_plot, corr_churn_plot, cumulative_plot, era_text, markdown_table, per_era_plot, write_json};
pub use churn::{ChurnSummary, SmoothedScores};
use churn::{churn_markdown, churn_summary, smoothed_scores};
pub use cutoff::CutoffScores;
pub use payout::{PayoutEra, PayoutScores};

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
    /// Smoothing weights to compare (see [`crate::smooth`]): each adds corr and churn of the
    /// predictions blended era by era with that weight.
    pub smooth: Vec<f64>,
    /// Signals v2.1 neutralizer file (keyed by ticker and date): adds neutral corr per era.
    pub neutralizers: Option<PathBuf>,
    /// Signals v2.1 sample-weights file: with the neutralizers, adds alpha per era.
    pub sample_weights: Option<PathBuf>,
    /// A meta-model column of the targets file: adds (neutral) contribution per era.
    pub meta_model: Option<String>,
    /// Each era's universe (ticker, date) for the "as Numerai pays" scores [default: the
    /// neutralizer file's rows of the era].
    pub universe: Option<PathBuf>,
    /// The language model's training-data cutoff (YYYY-MM-DD) [default: the one recorded by
    /// `ask --knowledge-cutoff` in the model card's, predictions' or features' provenance].
    pub knowledge_cutoff: Option<String>,
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
            smooth: Vec::new(),
            benchmark: None,
            neutralizers: None,
            sample_weights: None,
            meta_model: None,
            universe: None,
            knowledge_cutoff: None,
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
    /// True when in-sample eras are scored too (no model card and no `split` column): every
    /// figure is then labelled "all eras, in-sample included", never OOS.
    #[serde(default)]
    pub in_sample_included: bool,
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
    /// The churn the model's weekly signals would have had over the OOS eras.
    #[serde(default)]
    pub churn: Option<ChurnSummary>,
    /// Corr and churn of the predictions smoothed with each weight asked for.
    #[serde(default)]
    pub smoothing: Vec<SmoothedScores>,
    /// Neutral corr, alpha and meta-model contribution, when their inputs were given.
    #[serde(default)]
    pub payout: Option<PayoutScores>,
    /// The encoder whose outputs the model was trained on (from the model card's provenance).
    #[serde(default)]
    pub encoder: Option<crate::provenance::ModelKey>,
    /// The questions (`signalkit ask`) whose answers the model was trained on.
    #[serde(default)]
    pub ask: Vec<crate::provenance::ModelKey>,
    /// OOS corr before and after the language model's knowledge cutoff, when one is known.
    #[serde(default)]
    pub knowledge_cutoff: Option<CutoffScores>,
}

/// Rows keyed by (ticker, era).
fn keys(t: &KeyedTable) -> impl Iterator<Item = (&str, i32)> {
    t.ticker_ids.iter().zip(&t.fridays).map(|(id, d)| (t.universe[*id as usize].as_str(), era_of_days(*d)))
}

/// Aligns another table's rows to `base`: for each base row, the index of the same (ticker, era).
/// Keys are unique on both sides: [`KeyedTable`] refuses a file with a (ticker, date) twice, so no
/// target row silently replaces another and no prediction counts twice. Only `base` (the
/// predictions) is indexed: `other` may be a feature table of every era.
fn align(base: &KeyedTable, other: &KeyedTable) -> Vec<Option<usize>> {
    let at: PlHashMap<(&str, i32), usize> = keys(base).enumerate().map(|(i, k)| (k, i)).collect();
    let mut aligned = vec![None; base.len()];
    for (j, k) in keys(other).enumerate() {
        if let Some(&i) = at.get(&k) {
            aligned[i] = Some(j);
        }
    }
    aligned
}

/// Up to five of a table's tickers, for messages.
fn some_tickers(t: &KeyedTable) -> String {
    let shown: Vec<&str> = t.universe.iter().take(5).map(String::as_str).collect();
    format!("{} ({} in all)", shown.join(", "), t.universe.len())
}

/// The refusal when no row of `other` matches a prediction row by (ticker, era): how many
/// tickers the two share, and examples of each side's tickers (or dates, when tickers match).
fn no_match(preds: &KeyedTable, other: &KeyedTable, what: &str) -> Error {
    let theirs: std::collections::HashSet<&str> = other.universe.iter().map(String::as_str).collect();
    let shared = preds.universe.iter().filter(|t| theirs.contains(t.as_str())).count();
    let message = if shared == 0 {
        format!(
            "0 tickers matched between {what} and the predictions {}: predictions' {} e.g. {}; this file's {} e.g. {} — \
             use the same kind of ticker on both sides (e.g. bloomberg_ticker in both)",
            preds.path.display(),
            preds.ticker_column,
            some_tickers(preds),
            other.ticker_column,
            some_tickers(other)
        )
    } else {
        let dates = |t: &KeyedTable| {
            let mut d: Vec<i32> = t.fridays.clone();
            d.sort_unstable();
            d.dedup();
            let shown: Vec<String> = d.iter().take(3).map(|&x| crate::era::date_from_days(x).to_string()).collect();
            format!("{} ({} in all)", shown.join(", "), d.len())
        };
        format!(
            "{shared} tickers matched between {what} and the predictions {} but no (ticker, date) did: predictions' {} e.g. {}; \
             this file's {} e.g. {} — give both the same Fridays",
            preds.path.display(),
            preds.date_column,
            dates(preds),
            other.date_column,
            dates(other)
        )
    };
    Error::input(&other.path, format!("no row matches a prediction by (ticker, date): {message}"))
}

/// Predictions joined to their targets: one row per prediction row.
struct Scored {
    /// Per row: the prediction.
    p: Vec<f64>,
    /// Per row: the matching target (NaN when missing).
    t: Vec<f64>,
    /// Per row: the era (YYYYMMDD).
    eras: Vec<i32>,
    /// Per row: the matching row of the targets table.
    matched: Vec<Option<usize>>,
}

/// Which prediction rows are out of sample, and a sentence saying why.
struct OutOfSample {
    /// Why these rows count as out of sample.
    scored: String,
    /// Indices of the out-of-sample rows.
    rows: Vec<usize>,
    /// Their eras.
    eras: Vec<i32>,
}

/// What the feature table adds to a report: exposure and feature-neutral corr.
#[derive(Default)]
struct FeatureScores {
    exposure: Option<f64>,
    most_exposed: Option<String>,
    neutral: Option<Summary>,
}

fn pick(v: &[f64], rows: &[usize]) -> Vec<f64> {
    rows.iter().map(|&i| v[i]).collect()
}

/// Scores predictions per era against the targets, writes report.json, report.md and plots.
pub fn evaluate(args: &EvaluateArgs) -> Result<EvalReport> {
    let _out = crate::data::lock::lock_folder(&args.out, "evaluate", "--out")?;
    let preds = KeyedTable::read(&args.predictions)?;
    let p = prediction_values(&args.predictions, &preds)?;
    let targets = KeyedTable::read_columns(&args.targets, |frame| {
        let named = [args.benchmark.clone(), args.meta_model.clone()].into_iter().flatten();
        resolve_target(frame, &args.target).into_iter().chain(named).collect()
    })?;
    let target_col = resolve_target(&targets.frame, &args.target)
        .ok_or_else(|| Error::input(&args.targets, format!("no target column '{}' (or its alias)", args.target)))?;
    let s = join_targets(&preds, &targets, &target_col, p)?;
    if s.matched.iter().all(Option::is_none) {
        return Err(no_match(&preds, &targets, "the targets"));
    }
    let model = args.model.as_deref().map(Model::load).transpose()?;
    let split = model.as_ref().map(|m| m.card.split.clone());
    let (oos, in_sample_included) = out_of_sample(&args.predictions, &preds, split.as_ref(), &s.eras)?;
    let per_era = metrics::per_era(&pick(&s.p, &oos.rows), &pick(&s.t, &oos.rows), &oos.eras);
    if per_era.is_empty() {
        return Err(Error::input(
            &args.targets,
            format!("no out-of-sample era has both predictions and '{target_col}' values"),
        ));
    }
    let summary = metrics::summarize(&per_era.iter().map(|e| e.corr).collect::<Vec<_>>());
    let constant_eras = count_constant_eras(&s, &oos);
    let in_sample = split.as_ref().and_then(|sp| in_sample_summary(&s, sp));
    let features = match &args.features {
        Some(fp) => feature_scores(fp, (fp == &args.targets).then_some(&targets), model.as_ref(), &preds, &s, &oos)?,
        None => FeatureScores::default(),
    };
    let benchmark = match &args.benchmark {
        Some(col) => benchmark_summary(&targets, col, &s, &oos)?,
        None => None,
    };
    let tickers: Vec<String> = preds.ticker_ids.iter().map(|&i| preds.universe[i as usize].clone()).collect();
    let churn = churn_summary(&tickers, &s.p, &oos);
    let smoothing = match args.smooth.is_empty() {
        true => Vec::new(),
        false => smoothed_scores(args, &tickers, &has_news(args, &preds)?, &s, &oos)?,
    };
    let payout = payout::payout_scores(args, &preds, &targets, &s, &oos)?;
    let knowledge_cutoff = match cutoff::find_cutoff(args, model.as_ref())? {
        Some((date, source)) => Some(cutoff::cutoff_scores(&date, &source, &per_era, split.as_ref())?),
        None => None,
    };
    let report = EvalReport {
        predictions: args.predictions.display().to_string(),
        targets: args.targets.display().to_string(),
        target: target_col,
        scored: oos.scored,
        in_sample_included,
        split,
        per_era,
        summary,
        in_sample,
        feature_exposure: features.exposure,
        most_exposed_feature: features.most_exposed,
        feature_neutral: features.neutral,
        benchmark,
        unmatched_predictions: s.matched.iter().filter(|m| m.is_none()).count(),
        constant_eras,
        churn,
        smoothing,
        payout,
        encoder: model.as_ref().and_then(|m| m.card.provenance.as_ref()?.encoder.clone()),
        ask: model.as_ref().and_then(|m| Some(m.card.provenance.as_ref()?.ask.clone())).unwrap_or_default(),
        knowledge_cutoff,
    };
    write_eval_outputs(&args.out, &report)?;
    Ok(report)
}

/// Per prediction row: whether the feature table gives it a headline (its `headline` column);
/// every row without `--features` or without that column.
fn has_news(args: &EvaluateArgs, preds: &KeyedTable) -> Result<Vec<bool>> {
    let Some(fp) = &args.features else { return Ok(vec![true; preds.len()]) };
    let ft = KeyedTable::read_columns(fp, |_| vec!["headline".to_string()])?;
    let Ok(headline) = ft.frame.column("headline") else { return Ok(vec![true; preds.len()]) };
    let present: Vec<bool> = headline.is_not_null().iter().map(|v| v.unwrap_or(false)).collect();
    Ok(align(preds, &ft).into_iter().map(|at| at.is_some_and(|j| present[j])).collect())
}

/// The `prediction` (or `signal`) column of a predictions table.
fn prediction_values(path: &Path, preds: &KeyedTable) -> Result<Vec<f64>> {
    let value_col = ["prediction", "signal"].into_iter().find(|c| preds.frame.column(c).is_ok()).ok_or_else(|| {
        Error::input(path, "no 'prediction' or 'signal' column: pass predictions from signalkit train or predict")
    })?;
    preds.f64_column(value_col)
}

/// Each prediction row with its target (NaN where the targets table has no such row) and era.
fn join_targets(preds: &KeyedTable, targets: &KeyedTable, target_col: &str, p: Vec<f64>) -> Result<Scored> {
    let t_all = targets.f64_column(target_col)?;
    let matched = align(preds, targets);
    let t = matched.iter().map(|m| m.map(|i| t_all[i]).unwrap_or(f64::NAN)).collect();
    Ok(Scored { p, t, eras: eras_of_days(&preds.fridays), matched })
}

/// The eras scored as out of sample: the model card's validation eras, else the rows the
/// predictions' own `split` column marks `validation`, else every era — then flagged as including
/// in-sample eras (the second value), so no figure is called OOS.
fn out_of_sample(path: &Path, preds: &KeyedTable, split: Option<&Split>, eras: &[i32]) -> Result<(OutOfSample, bool)> {
    let marked = split_column(path, preds)?;
    let (scored, rows, in_sample): (String, Vec<usize>, bool) = match (split, marked) {
        (Some(s), _) => (
            format!(
                "validation eras of the model card ({} eras; {} train and {} embargo eras excluded)",
                s.validation.len(),
                s.train.len(),
                s.embargo.len()
            ),
            (0..eras.len()).filter(|&i| s.validation.binary_search(&eras[i]).is_ok()).collect(),
            false,
        ),
        (None, Some(marks)) => (
            "rows the predictions' `split` column marks validation (train, embargo and unused rows excluded)".into(),
            (0..eras.len()).filter(|&i| marks[i]).collect(),
            false,
        ),
        (None, None) => (
            format!(
                "{IN_SAMPLE_SCOPE}: no model card (--model) and no `split` column, so in-sample eras cannot be told apart"
            ),
            (0..eras.len()).collect(),
            true,
        ),
    };
    if rows.is_empty() {
        return Err(Error::input(
            path,
            "no predictions fall in the validation eras: predict the validation rows first",
        ));
    }
    let eras = rows.iter().map(|&i| eras[i]).collect();
    Ok((OutOfSample { scored, rows, eras }, in_sample))
}

/// How figures over every era, in-sample ones included, are labelled.
pub const IN_SAMPLE_SCOPE: &str = "all eras (in-sample included)";

/// Per row, whether the predictions' `split` column (train's predictions.parquet) says
/// `validation`; `None` when there is no such column.
fn split_column(path: &Path, preds: &KeyedTable) -> Result<Option<Vec<bool>>> {
    let Ok(c) = preds.frame.column("split") else { return Ok(None) };
    let c = c.cast(&DataType::String).map_err(|e| Error::table(path, e))?;
    let ca = c.str().map_err(|e| Error::table(path, e))?;
    Ok(Some(ca.iter().map(|v| v.is_some_and(|s| s.trim().eq_ignore_ascii_case("validation"))).collect()))
}

/// Out-of-sample eras whose predictions are all equal.
fn count_constant_eras(s: &Scored, oos: &OutOfSample) -> usize {
    metrics::era_groups(&oos.eras)
        .iter()
        .filter(|(_, rows)| {
            let rows: Vec<usize> = rows.iter().map(|&r| oos.rows[r]).collect();
            metrics::is_constant(&pick(&s.p, &rows), &pick(&s.t, &rows))
        })
        .count()
}

/// numerai_corr statistics over the training eras (in sample); None when none can be scored.
fn in_sample_summary(s: &Scored, split: &Split) -> Option<Summary> {
    let rows: Vec<usize> = (0..s.eras.len()).filter(|&i| split.train.binary_search(&s.eras[i]).is_ok()).collect();
    let e: Vec<i32> = rows.iter().map(|&i| s.eras[i]).collect();
    let per = metrics::per_era(&pick(&s.p, &rows), &pick(&s.t, &rows), &e);
    metrics::summarize_defined(&per.iter().map(|x| x.corr).collect::<Vec<_>>())
}

/// A neutraliser column with its missing values (rows without a headline) set to the era's mean
/// of the present ones, so those rows are kept.
fn impute_era_mean(c: &[f64]) -> Vec<f64> {
    let m = c.iter().filter(|v| !v.is_nan()).sum::<f64>() / c.iter().filter(|v| !v.is_nan()).count().max(1) as f64;
    c.iter().map(|v| if v.is_nan() { m } else { *v }).collect()
}

/// One era's feature exposure (most exposed feature, |corr|) and feature-neutral corr; the
/// neutralisers are the compact features (not the `cls_*` embedding), imputed with the era mean.
fn era_feature_scores(names: &[String], p: &[f64], t: &[f64], features: &[Vec<f64>]) -> (Option<(usize, f64)>, f64) {
    let exposure = metrics::max_feature_correlation(p, metrics::from_columns(p.len(), features).view());
    let neutralizers: Vec<Vec<f64>> =
        names.iter().zip(features).filter(|(n, _)| !n.starts_with("cls_")).map(|(_, c)| impute_era_mean(c)).collect();
    (exposure, metrics::feature_neutral_corr(p, metrics::from_columns(p.len(), &neutralizers).view(), t))
}

/// Feature exposure and feature-neutral corr over the out-of-sample eras, from the feature table
/// (the model's features, or the default feature columns without a model). The table is read era
/// by era ([`ByEra`]: only its keys and these columns, one era's rows at a time), so memory
/// follows one era, not the table. `targets`: the same file's keys, when it was also the targets.
fn feature_scores(
    fp: &Path,
    targets: Option<&KeyedTable>,
    model: Option<&Model>,
    preds: &KeyedTable,
    s: &Scored,
    oos: &OutOfSample,
) -> Result<FeatureScores> {
    let columns = crate::data::read_schema(fp)?;
    let names: Vec<String> = match model {
        Some(m) => m.card.features.clone(),
        None => default_features(&columns),
    };
    // Exposure is a correlation with numbers: text (categorical) features are left out.
    let names: Vec<String> =
        names.into_iter().filter(|n| !columns.column(n).is_ok_and(crate::categorical::is_text)).collect();
    // Handed the feature table as targets too (as `run` does), its keys are read once.
    let ft = match targets {
        Some(t) => ByEra::with_keys(t, &names)?,
        None => ByEra::open_columns(fp, Some(&names))?,
    };
    let (p_oos, t_oos) = (pick(&s.p, &oos.rows), pick(&s.t, &oos.rows));
    let tickers: Vec<&str> = oos.rows.iter().map(|&i| preds.universe[preds.ticker_ids[i] as usize].as_str()).collect();
    let groups = metrics::era_groups(&oos.eras);
    let mut per: Vec<(Option<(usize, f64)>, f64)> = Vec::with_capacity(groups.len());
    // As the payout scores: a few eras read on this thread, then scored in parallel.
    for chunk in groups.chunks(rayon::current_num_threads().max(1)) {
        let read: Vec<Vec<Vec<f64>>> = chunk
            .iter()
            .map(|(era, rows)| era_columns(&ft, *era, &rows.iter().map(|&r| tickers[r]).collect::<Vec<_>>()))
            .collect::<Result<_>>()?;
        per.par_extend(
            chunk
                .par_iter()
                .zip(&read)
                .map(|((_, rows), fe)| era_feature_scores(&names, &pick(&p_oos, rows), &pick(&t_oos, rows), fe)),
        );
    }
    let mut out = FeatureScores::default();
    let exposures: Vec<f64> = per.iter().filter_map(|(e, _)| e.map(|e| e.1)).collect();
    if !exposures.is_empty() {
        out.exposure = Some(exposures.iter().sum::<f64>() / exposures.len() as f64);
        out.most_exposed = most_often_max(per.iter().map(|(e, _)| *e)).map(|j| names[j].clone());
    }
    out.neutral = metrics::summarize_defined(&per.iter().map(|(_, f)| *f).collect::<Vec<_>>());
    Ok(out)
}

/// The value columns of `f`'s rows of `era`, aligned to `tickers` (NaN where the era has no row).
fn era_columns(f: &ByEra, era: i32, tickers: &[&str]) -> Result<Vec<Vec<f64>>> {
    let e = f.era(era)?;
    let ticker = |g: usize| f.keys.universe[f.keys.ticker_ids[g] as usize].as_str();
    let at: PlHashMap<&str, usize> = e.rows.iter().enumerate().map(|(k, &g)| (ticker(g), k)).collect();
    let pos: Vec<Option<usize>> = tickers.iter().map(|t| at.get(t).copied()).collect();
    Ok(e.columns.iter().map(|c| pos.iter().map(|k| k.map_or(f64::NAN, |k| c[k])).collect()).collect())
}

/// The feature index most often the most exposed (ties: the lowest index).
fn most_often_max(per_era: impl Iterator<Item = Option<(usize, f64)>>) -> Option<usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for (j, _) in per_era.flatten() {
        *counts.entry(j).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(j, c)| (*c, usize::MAX - j)).map(|(j, _)| j)
}

/// Per-era Spearman correlation with a benchmark column of the targets table, summarised (None
/// when no era has one).
fn benchmark_summary(targets: &KeyedTable, col: &str, s: &Scored, oos: &OutOfSample) -> Result<Option<Summary>> {
    let b_all = targets.f64_column(col)?;
    let b: Vec<f64> = oos.rows.iter().map(|&i| s.matched[i].map(|j| b_all[j]).unwrap_or(f64::NAN)).collect();
    let p_oos = pick(&s.p, &oos.rows);
    let per: Vec<f64> = metrics::era_groups(&oos.eras)
        .iter()
        .map(|(_, rows)| metrics::benchmark_corr(&pick(&p_oos, rows), &pick(&b, rows)))
        .collect();
    Ok(metrics::summarize_defined(&per))
}

fn fmt4(v: f64) -> String {
    format!("{v:.4}")
}

impl EvalReport {
    /// What the figures cover: "OOS", or every era with in-sample ones.
    pub fn scope(&self) -> &'static str {
        if self.in_sample_included { IN_SAMPLE_SCOPE } else { "OOS" }
    }

    /// The warning to show when in-sample eras are scored.
    pub fn in_sample_warning(&self) -> Option<String> {
        self.in_sample_included.then(|| {
            "these figures include in-sample eras (the model saw their targets), so they overstate what the model \
             would earn: pass --model MODEL_DIR, or predictions with train's `split` column"
                .to_string()
        })
    }
}

fn summary_row(name: &str, s: &Summary) -> Vec<String> {
    vec![
        name.into(),
        fmt4(s.mean),
        fmt4(s.std),
        s.sharpe_text(3),
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

/// The score table's rows: OOS corr, then each score the report has, then in-sample corr.
fn score_rows(r: &EvalReport) -> Vec<Vec<String>> {
    let scope = r.scope();
    let mut rows = vec![summary_row(&format!("numerai_corr ({scope})"), &r.summary)];
    if let Some(c) = &r.knowledge_cutoff {
        rows.extend(cutoff::cutoff_rows(c, summary_row));
    }
    if let Some(s) = &r.feature_neutral {
        rows.push(summary_row(&format!("feature-neutral corr ({scope})"), s));
    }
    if let Some(s) = &r.benchmark {
        rows.push(summary_row(&format!("corr with benchmark ({scope})"), s));
    }
    if let Some(p) = &r.payout {
        rows.extend(payout::payout_rows(p, scope, summary_row));
    }
    if let Some(s) = &r.in_sample {
        rows.push(summary_row("numerai_corr (train, in sample)", s));
    }
    rows
}

fn write_eval_outputs(out: &Path, r: &EvalReport) -> Result<()> {
    write_json(&out.join("report.json"), r)?;
    let eras: Vec<i32> = r.per_era.iter().map(|e| e.era).collect();
    let scores: Vec<f64> = r.per_era.iter().map(|e| e.corr).collect();
    let scope = r.scope();
    cumulative_plot(
        &out.join("plots/cumulative_corr.png"),
        &format!("Cumulative numerai_corr ({scope})"),
        &eras,
        &scores,
    )?;
    per_era_plot(&out.join("plots/per_era_corr.png"), &format!("numerai_corr per era ({scope})"), &eras, &scores)?;
    if let Some(c) = &r.churn {
        let churn: Vec<(i32, f64)> = c.per_era.iter().map(|(e, v)| (*e, v.unwrap_or(f64::NAN))).collect();
        corr_churn_plot(&out.join("plots/corr_and_churn.png"), &eras, &scores, &churn, metrics::CHURN_LIMIT)?;
    }

    let title =
        if r.in_sample_included { "Evaluation over all eras (in-sample included)" } else { "Out-of-sample evaluation" };
    let mut md = format!(
        "# {title}\n\nPredictions `{}`, target `{}` from `{}`.\n\nScored: {}.\n\n",
        r.predictions, r.target, r.targets, r.scored
    );
    if let Some(w) = r.in_sample_warning() {
        md += &format!("> **Warning:** {w}\n\n");
    }
    if let Some(e) = &r.encoder {
        md += &format!(
            "Encoder: `{}` (fingerprint {}, {}, max_len {}).\n\n",
            e.id,
            &e.fingerprint[..12.min(e.fingerprint.len())],
            e.dtype,
            e.max_len
        );
    }
    for q in &r.ask {
        md += &format!("Asked: `{}` (fingerprint {}).\n\n", q.id, &q.fingerprint[..12.min(q.fingerprint.len())]);
    }
    if let Some(s) = &r.split {
        md += &format!(
            "| split | eras |\n|---|---|\n| train | {} |\n| embargo | {} |\n| validation | {} |\n\n",
            eras_line(&s.train),
            eras_line(&s.embargo),
            eras_line(&s.validation)
        );
    }
    let rows = score_rows(r);
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
    if let Some(c) = &r.knowledge_cutoff {
        md += &cutoff::cutoff_markdown(c);
    }
    md += &r.payout.as_ref().map(payout::payout_markdown).unwrap_or_default();
    md += &churn_markdown(r);
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
    /// Features shown in the table and plot, and given MDA (the top by gain; every group too).
    pub top: usize,
}

/// One feature's (or group's) importance, on out-of-sample eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureImportance {
    /// Feature column, or group (`cls_*`).
    pub feature: String,
    /// Columns in it (1 for a feature).
    pub columns: usize,
    /// Total gain of its splits.
    pub gain: f64,
    /// Share of the total gain.
    pub gain_share: f64,
    /// Number of splits on it.
    pub splits: f64,
    /// OOS permutation importance: the per-era drop in numerai_corr when shuffled within eras.
    pub mda: Mda,
    /// Mean |SHAP| over the OOS rows (a group: |sum of its columns' contributions|); None: no rows.
    pub shap_mean_abs: Option<f64>,
    /// Mean OOS per-era numerai_corr of the feature with the target (None: a group, or no era
    /// could be scored).
    pub corr_mean: Option<f64>,
    /// corr_mean / std of the per-era corr (None: as corr_mean).
    pub corr_sharpe: Option<f64>,
    /// OOS eras in which its corr could be scored.
    pub eras: usize,
}

impl std::fmt::Display for FeatureImportance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, gain) = (&self.feature, 100.0 * self.gain_share);
        let (mda, sharpe) = (opt(self.mda.mean, 4), opt(self.mda.sharpe, 2));
        write!(f, "{name:<24} OOS MDA {mda} (sharpe {sharpe})  gain {gain:>6.2}%  corr mean {}", opt(self.corr_mean, 4))
    }
}

/// A signed figure, or "n/a" when absent.
fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:+.digits$}"))
}

/// Importance of every feature and group, on the model's out-of-sample eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Importance {
    /// Features, by OOS MDA (largest first).
    pub features: Vec<FeatureImportance>,
    /// Prefix groups of two or more columns, by OOS MDA.
    pub groups: Vec<FeatureImportance>,
    /// The out-of-sample eras used (the model card's validation eras present in the table).
    pub eras: Vec<i32>,
    /// Seed of the within-era shuffles.
    pub seed: u64,
}

/// The rows of the table in the model card's validation eras; refuses when there are none.
fn oos_rows(args: &ImportanceArgs, model: &Model, eras: &[i32]) -> Result<Vec<usize>> {
    let v = &model.card.split.validation;
    if v.is_empty() {
        return Err(Error::input(
            &args.model,
            "the model card lists no validation eras, so importance cannot be measured out of sample: retrain \
             with a validation period (train.train_until before the last eras)",
        ));
    }
    let rows: Vec<usize> = (0..eras.len()).filter(|&i| v.binary_search(&eras[i]).is_ok()).collect();
    if rows.is_empty() {
        return Err(Error::input(
            &args.features,
            "no rows fall in the model card's validation eras: pass --features the table the model was trained on",
        ));
    }
    Ok(rows)
}

/// Per-era numerai_corr of one column with the target, over `groups` (row indices of the table).
fn corr_stats(f: &[f64], t: &[f64], groups: &[(i32, Vec<usize>)]) -> Option<Summary> {
    let per: Vec<f64> = groups
        .iter()
        .map(|(_, rows)| {
            let fe: Vec<f64> = rows.iter().map(|&r| f[r]).collect();
            let te: Vec<f64> = rows.iter().map(|&r| t[r]).collect();
            metrics::numerai_corr(&fe, &te)
        })
        .collect();
    metrics::summarize_defined(&per)
}

/// For each feature, whether it is among the `top` by gain (ties by position).
fn top_by_gain(gain: &[f64], top: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..gain.len()).collect();
    order.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]).then(a.cmp(&b)));
    let mut chosen = vec![false; gain.len()];
    order.into_iter().take(top).for_each(|j| chosen[j] = true);
    chosen
}

/// Sorts by OOS MDA (absent last), then gain, then name.
fn rank(rows: &mut [FeatureImportance]) {
    let key = |r: &FeatureImportance| r.mda.mean.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)).then(b.gain.total_cmp(&a.gain)).then(a.feature.cmp(&b.feature)));
}

/// OOS permutation importance (MDA) per feature and per prefix group, gain and splits, and each
/// feature's OOS per-era correlation with the target; writes importance.json,
/// importance_groups.json, importance.md and plots/importance.png.
pub fn importance(args: &ImportanceArgs) -> Result<Importance> {
    let _out = crate::data::lock::lock_folder(&args.out, "importance", "--out")?;
    let model = Model::load(&args.model)?;
    let (gain, splits) = model_importance(&model)?;
    let ft = KeyedTable::read(&args.features)?;
    model.check_columns(&args.features, &ft.frame)?;
    let target_col = resolve_target(&ft.frame, &model.card.target)
        .ok_or_else(|| Error::input(&args.features, format!("no target column '{}'", model.card.target)))?;
    let t = ft.f64_column(&target_col)?;
    let all_eras: Vec<i32> = eras_of_days(&ft.fridays);
    let rows = oos_rows(args, &model, &all_eras)?;
    let local = metrics::era_groups(&rows.iter().map(|&i| all_eras[i]).collect::<Vec<_>>());
    let groups: Vec<(i32, Vec<usize>)> =
        local.iter().map(|(e, r)| (*e, r.iter().map(|&k| rows[k]).collect())).collect();
    let features = &model.card.features;
    let categorical = &model.card.categorical;
    let x = crate::model::take_matrices(&args.features, &mut ft.frame.clone(), features, categorical, &[&rows])?
        .0
        .remove(0);
    let t_oos: Vec<f64> = rows.iter().map(|&i| t[i]).collect();
    let named_groups = mda::feature_groups(features);
    let group_units = named_groups.iter().map(|(_, c)| c.clone());
    let units: Vec<Vec<usize>> = (0..features.len()).map(|j| vec![j]).chain(group_units).collect();
    // MDA re-predicts every OOS row once per unit: the top `--top` features by gain and every
    // group (a FinBERT [CLS] alone is 768 columns); the rest are left absent.
    let ranked = top_by_gain(&gain, args.top);
    let shuffled: Vec<Vec<usize>> =
        units.iter().enumerate().filter(|(u, _)| *u >= features.len() || ranked[*u]).map(|(_, c)| c.clone()).collect();
    let mut computed = mda::permutation_importance(&model.booster, &x, &t_oos, &local, &shuffled)?.into_iter();
    let mut mdas = (0..units.len())
        .map(|u| {
            if u >= features.len() || ranked[u] {
                computed.next().expect("one MDA per unit")
            } else {
                mda::Mda::absent()
            }
        })
        .collect::<Vec<_>>()
        .into_iter();
    let mut shaps = mda::mean_abs_shap(&model.booster, &x, &units)?.into_iter();
    let total: f64 = gain.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut feature_rows = Vec::with_capacity(features.len());
    for (j, name) in features.iter().enumerate() {
        let s = corr_stats(&ft.f64_column(name)?, &t, &groups);
        feature_rows.push(FeatureImportance {
            feature: name.clone(),
            columns: 1,
            gain: gain[j],
            gain_share: gain[j] / total,
            splits: splits[j],
            mda: mdas.next().expect("one MDA per unit"),
            shap_mean_abs: shaps.next().expect("one SHAP per unit"),
            corr_mean: s.as_ref().map(|s| s.mean),
            corr_sharpe: s.as_ref().map(|s| s.sharpe),
            eras: s.map_or(0, |s| s.eras),
        });
    }
    let mut group_rows: Vec<FeatureImportance> = named_groups
        .iter()
        .zip(mdas.zip(shaps))
        .map(|((name, cols), (m, shap))| {
            let g: f64 = cols.iter().map(|&c| gain[c]).sum();
            FeatureImportance {
                feature: name.clone(),
                columns: cols.len(),
                gain: g,
                gain_share: g / total,
                splits: cols.iter().map(|&c| splits[c]).sum(),
                mda: m,
                shap_mean_abs: shap,
                corr_mean: None,
                corr_sharpe: None,
                eras: 0,
            }
        })
        .collect();
    rank(&mut feature_rows);
    rank(&mut group_rows);
    let imp = Importance {
        features: feature_rows,
        groups: group_rows,
        eras: groups.iter().map(|g| g.0).collect(),
        seed: mda::MDA_SEED,
    };
    write_importance_outputs(args, &model, &target_col, &imp)?;
    Ok(imp)
}

fn importance_table(rows: &[&FeatureImportance]) -> String {
    let table: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            vec![
                (k + 1).to_string(),
                format!("`{}`", r.feature),
                opt(r.mda.mean, 4),
                r.mda.std.map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
                opt(r.mda.sharpe, 2),
                r.shap_mean_abs.map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
                format!("{:.1}%", 100.0 * r.gain_share),
                format!("{:.0}", r.splits),
                opt(r.corr_mean, 4),
                opt(r.corr_sharpe, 3),
            ]
        })
        .collect();
    markdown_table(
        &[
            "#",
            "feature",
            "OOS MDA mean",
            "MDA std",
            "MDA sharpe",
            "mean |SHAP|",
            "gain",
            "splits",
            "OOS corr mean",
            "corr sharpe",
        ],
        &table,
    )
}

/// Writes importance.json (every feature), importance_groups.json, and plots/importance.png and
/// importance.md (the top `args.top` by OOS MDA, and every group).
fn write_importance_outputs(args: &ImportanceArgs, model: &Model, target_col: &str, imp: &Importance) -> Result<()> {
    write_json(&args.out.join("importance.json"), &imp.features)?;
    write_json(&args.out.join("importance_groups.json"), &imp.groups)?;
    let top: Vec<&FeatureImportance> = imp.features.iter().take(args.top).collect();
    bar_plot(
        &args.out.join("plots/importance.png"),
        &format!("Top {} features by OOS permutation importance (MDA)", top.len()),
        "mean per-era drop in numerai_corr when shuffled (OOS eras)",
        &top.iter().map(|r| r.feature.clone()).collect::<Vec<_>>(),
        &top.iter().map(|r| r.mda.mean.unwrap_or(f64::NAN)).collect::<Vec<_>>(),
    )?;
    let groups = if imp.groups.is_empty() {
        "No prefix group has two or more columns.\n".to_string()
    } else {
        importance_table(&imp.groups.iter().collect::<Vec<_>>())
    };
    let md = format!(
        "# Feature importance (out of sample)\n\nModel `{}` ({} trees, {} features), target `{}`, table `{}`.\n\n\
         Out-of-sample eras only: the model card's validation eras in the table ({}). MDA: the drop in per-era numerai_corr \
         when a feature (or all columns of a group, together) is shuffled within each era (seed {}); positive means \
         the model relies on it out of sample; sharpe = mean / std of the per-era drop. mean |SHAP|: LightGBM's contributions over the OOS rows (a \
         group's: its columns' summed). Ranked by OOS MDA; gain is \
         LightGBM's (in sample).\n\n## Features\n\n{}\n![importance](plots/importance.png)\n\n## Groups\n\n{}",
        args.model.display(),
        model.card.trees,
        model.card.features.len(),
        target_col,
        args.features.display(),
        eras_line(&imp.eras),
        imp.seed,
        importance_table(&top),
        groups
    );
    crate::data::write_bytes_atomic(&args.out.join("importance.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_is_zero_for_a_steady_signal_and_large_for_a_reshuffled_one() {
        let n = 200;
        let tickers: Vec<String> = (0..3).flat_map(|_| (0..n).map(|i| format!("T{i}"))).collect();
        let mut p: Vec<f64> = (0..3 * n).map(|i| (i % n) as f64).collect();
        for (k, v) in p[2 * n..].iter_mut().enumerate() {
            *v = ((k * 7919) % n) as f64; // week 3 reshuffled
        }
        let eras: Vec<i32> = (0..3 * n).map(|i| 20240105 + 7 * (i / n) as i32).collect();
        let oos = OutOfSample { scored: String::new(), rows: (0..3 * n).collect(), eras };
        let c = churn_summary(&tickers, &p, &oos).unwrap();
        assert!(c.per_era[0].1.unwrap().abs() < 1e-12, "{c:?}");
        assert!(c.per_era[1].1.unwrap() > 0.5 && c.eras_over_limit == Some(1), "{c:?}");
        assert!(c.max_over_last_5.unwrap() > 0.5, "{c:?}");
    }
}
