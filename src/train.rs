//! LightGBM on the feature table: era split with an embargo, training, prediction, importance,
//! and the saved model (LightGBM text format plus a JSON model card beside it).

use std::path::{Path, PathBuf};
use std::time::Instant;

use lightgbm3::{Booster, Dataset};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::data::targets::KeyedTable;
use crate::data::{guard_output, write_bytes_atomic, write_parquet_with, write_table_atomic};
use crate::era::{date_from_days, days_of_era, eras_of_days};
use crate::error::{Error, Result};
use crate::model::lgbm;
use crate::provenance::{Provenance, SmoothingRecord, mismatch_error};
use crate::settings::Int;
use crate::split::{era_split, target_values};

// Kept here so `crate::train::…` paths from before the model and era modules still resolve.
pub use crate::data::targets::DEFAULT_TARGET;
pub use crate::era::era_of_days;
pub use crate::model::{
    CARD_FILE, FeatureMatrix, MODEL_FILE, Model, ModelCard, Split, default_features, feature_matrix, importance,
    model_paths, row_major, take_matrices,
};
pub use crate::provenance::InputFile;

pub use crate::split::MAX_EMBARGO_ERAS;
/// Eras between training and validation: 0 to [`MAX_EMBARGO_ERAS`] (flag and TOML alike).
pub type Embargo = Int<0, { MAX_EMBARGO_ERAS as u64 }>;
/// Rounds without improvement before early stopping ends training.
pub type StoppingRounds = Int<1, 1_000_000>;
/// LightGBM's tree count.
pub type Trees = Int<1, 1_000_000>;
/// Walk-forward folds (see [`walk_forward`]).
pub type Folds = Int<2, 20>;

pub mod walk_forward;
/// Training settings; every field defaults to Numerai's example model (the LightGBM parameters
/// of [`default_params`], a 4-era embargo, the 20-day factor-neutral target, every feature column).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Target column (legacy and v2 names are aliases).
    pub target: String,
    /// Eras left out between the last training era and the first validation era.
    pub embargo_eras: Embargo,
    /// Train on eras up to this Friday (YYYY-MM-DD or YYYYMMDD) instead of `data_type == train`.
    pub train_until: Option<String>,
    /// Feature columns; empty = every `p_*`, `sentiment*`, `cls_*`, `pc_*`, `feature_*`,
    /// `n_headlines_*`, `ask_*` and `headline_age_days` column.
    pub features: Vec<String>,
    /// Stop when l2 on the last training eras (see `early_stopping_eras`) has not improved for
    /// this many rounds; the validation eras stay untouched.
    pub early_stopping_rounds: Option<StoppingRounds>,
    /// Training eras, at the end of training, that early stopping watches (an embargo of
    /// `embargo_eras` weeks before them is dropped) [default: a fifth of the training eras, ≥ 4].
    pub early_stopping_eras: Option<Int<1, 5200>>,
    /// LightGBM parameters, merged over the defaults (any LightGBM parameter name).
    pub params: Map<String, Value>,
    /// Walk forward: cut the validation eras into this many blocks, each validated by a model
    /// trained on every era before it less the embargo (see [`walk_forward`]); none: one split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk_forward: Option<Folds>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            target: DEFAULT_TARGET.into(),
            embargo_eras: Embargo::new(4),
            train_until: None,
            features: Vec::new(),
            early_stopping_rounds: None,
            early_stopping_eras: None,
            params: Map::new(),
            walk_forward: None,
        }
    }
}

/// Numerai's example model (2000 trees, learning rate 0.01, depth 5, 31 leaves, a tenth of the
/// features per tree), made deterministic (fixed seed, col-wise histograms) with the machine's
/// thread count fixed.
pub fn default_params() -> Map<String, Value> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let v = json!({
        "objective": "regression",
        "num_iterations": 2000,
        "learning_rate": 0.01,
        "max_depth": 5,
        "num_leaves": 31,
        "feature_fraction": 0.1,
        "seed": 0,
        "deterministic": true,
        "force_col_wise": true,
        "num_threads": threads,
        "verbose": -1,
    });
    v.as_object().cloned().unwrap_or_default()
}

impl Split {
    /// Moves the last `eras` training eras (default: a fifth, at least 4) to early stopping, and
    /// the training eras within `embargo` weeks before them to the embargo: early stopping never
    /// looks at the validation eras, which stay out of sample.
    pub fn with_early_stopping(mut self, path: &Path, eras: Option<u32>, embargo: u32) -> Result<Split> {
        let n_train = self.train.len();
        let n = eras.map_or((n_train / 5).max(4), |n| n as usize);
        let first_stop = n_train.checked_sub(n).filter(|_| n > 0).map(|i| days_of_era(self.train[i]));
        let fit: Vec<i32> = match first_stop {
            Some(day) => {
                self.train.iter().copied().filter(|&e| days_of_era(e) + 7 * (embargo as i32 + 1) <= day).collect()
            }
            None => Vec::new(),
        };
        if fit.is_empty() {
            return Err(Error::input(
                path,
                format!(
                    "early stopping needs {n} training eras to watch plus a {embargo}-week embargo before them, and eras left to fit on, but there are {n_train} training eras: set train.early_stopping_eras lower or drop early stopping"
                ),
            ));
        }
        let stop = self.train.split_off(n_train - n);
        self.embargo.extend(self.train.iter().copied().filter(|e| !fit.contains(e)));
        self.embargo.sort_unstable();
        self.train = fit;
        self.early_stopping = stop;
        Ok(self)
    }
}

/// Hands memory freed by LightGBM's many small C++ allocations back to the OS (glibc keeps it in
/// its arenas otherwise, and the next stage would stack on top of it).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only returns unused heap pages to the kernel.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Trains a booster on a feature matrix with exactly these LightGBM parameters. The matrices
/// are dropped once LightGBM has binned them, before boosting starts.
pub fn train_booster(
    x: FeatureMatrix,
    y: &[f32],
    valid: Option<(FeatureMatrix, Vec<f32>)>,
    params: &Map<String, Value>,
) -> Result<Booster> {
    train_booster_with(x, y, valid, params, "")
}

/// [`train_booster`] with LightGBM dataset parameters (`categorical_feature=…`, see
/// [`crate::categorical::dataset_params`]), which LightGBM reads only when binning the data.
pub fn train_booster_with(
    x: FeatureMatrix,
    y: &[f32],
    valid: Option<(FeatureMatrix, Vec<f32>)>,
    params: &Map<String, Value>,
    dataset_params: &str,
) -> Result<Booster> {
    let k = x.ncols() as i32;
    let train = Dataset::from_slice_with_params(row_major(&x), y, k, true, dataset_params, None).map_err(lgbm)?;
    drop(x);
    let valid = match valid {
        Some((vx, vy)) if !vy.is_empty() => {
            Some(Dataset::from_slice_with_reference(row_major(&vx), &vy, k, true, Some(&train)).map_err(lgbm)?)
        }
        _ => None,
    };
    Booster::train_with_valid(train, valid, &Value::Object(params.clone())).map_err(lgbm)
}

/// What `train` needs: the feature table, settings and the output folder.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    /// The feature table (output of `signalkit features`).
    pub features: PathBuf,
    /// Settings.
    pub config: TrainConfig,
    /// Folder for model.txt, model.json and predictions.parquet.
    pub out: PathBuf,
}

/// What `train` did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The model card saved.
    pub card: ModelCard,
    /// Where the model was saved.
    pub model: PathBuf,
    /// Every row's prediction (ticker, Friday as YYYYMMDD, split role, prediction).
    pub predictions: PathBuf,
}

impl std::fmt::Display for TrainSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.card;
        write!(
            f,
            "{} trees, {} features, {} rows in {} train eras, {} embargo, {} validation eras ({:.1}s)",
            k.trees,
            k.features.len(),
            k.rows_train,
            k.split.train.len(),
            k.split.embargo.len(),
            k.split.validation.len(),
            k.train_seconds
        )
    }
}

/// One row's identity columns for outputs: ticker column, era, data role.
fn id_frame(t: &KeyedTable, predictions: &[f64], split: &Split) -> Result<DataFrame> {
    let eras: Vec<i32> = eras_of_days(&t.fridays);
    let tickers = t.frame.column(&t.ticker_column).map_err(|e| Error::table(&t.path, e))?.clone();
    DataFrame::new(
        t.len(),
        vec![
            tickers,
            Column::new(t.date_column.as_str().into(), &eras),
            Column::new("split".into(), eras.iter().map(|&e| split.role(e)).collect::<Vec<_>>()),
            Column::new("prediction".into(), predictions),
        ],
    )
    .map_err(|e| Error::table(&t.path, e))
}

/// Trains on the training eras, validates after the embargo, saves the model and every row's
/// prediction (`predictions.parquet`: ticker, era, split, prediction).
pub fn train(args: &TrainArgs) -> Result<TrainSummary> {
    let _out = crate::data::lock::lock_folder(&args.out, "train", "--out")?;
    let cfg = &args.config;
    check_tree_count(&cfg.params)?;
    let t = KeyedTable::read(&args.features)?;
    let (target, y) = target_values(&t, &cfg.target)?;
    let eras = eras_of_days(&t.fridays);
    let labelled: Vec<bool> = y.iter().map(|v| !v.is_nan()).collect();
    let split = plan_split(args, &t, &eras, &labelled)?;
    for name in [MODEL_FILE, CARD_FILE, "predictions.parquet"] {
        guard_output(&args.out.join(name), &[&args.features])?;
    }
    let provenance = Provenance::read(&args.features)?;
    let features = feature_columns(args, &t.frame)?;
    let pick = |roles: &[i32]| -> Vec<usize> {
        (0..eras.len()).filter(|&i| labelled[i] && roles.binary_search(&eras[i]).is_ok()).collect()
    };
    let (train_rows, valid_rows) = (pick(&split.train), pick(&split.validation));
    let stop_rows = cfg.early_stopping_rounds.is_some().then(|| pick(&split.early_stopping));
    let params = training_params(cfg);
    let (booster, train_seconds, categorical) =
        fit(args, t.frame, &features, &y, &train_rows, stop_rows.as_deref(), &params)?;
    let card = ModelCard {
        signalkit: env!("CARGO_PKG_VERSION").into(),
        features,
        target,
        params,
        split: split.clone(),
        trees: booster.num_iterations(),
        rows_train: train_rows.len(),
        rows_validation: valid_rows.len(),
        inputs: vec![InputFile::of(&args.features)?],
        provenance,
        categorical,
        train_seconds,
    };
    warn_unseen(&args.features, &card.categorical);
    Model { booster, card }.save(&args.out)?;
    // Free LightGBM's training state (binned data, histograms) before the table is read again:
    // predictions come from the saved model, exactly as `predict` will see it.
    release_freed_memory();
    let model = Model::load(&args.out)?;
    let pred_path = write_predictions(args, &model, &split)?;
    Ok(TrainSummary { card: model.card, model: args.out.join(MODEL_FILE), predictions: pred_path })
}

/// LightGBM's names for the tree count (its aliases of `num_iterations`).
const TREE_COUNT_KEYS: [&str; 11] = [
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
];

/// Refuses a `[train.params]` tree count that is not a whole number from 1 to 1,000,000, by key,
/// before the table is read (LightGBM would say it without the key, or train nothing).
pub fn check_tree_count(params: &Map<String, Value>) -> Result<()> {
    for key in TREE_COUNT_KEYS {
        let Some(v) = params.get(key) else { continue };
        if v.as_i64().is_none_or(|n| Trees::checked(n.into()).is_err()) {
            return Err(Error::Config(format!(
                "[train.params] {key} = {v}: give a whole number of trees from 1 to 1000000 (--num-iterations on the command line)"
            )));
        }
    }
    Ok(())
}

/// The era split of the settings: by `train_until` or `data_type`, then the early-stopping eras.
fn plan_split(args: &TrainArgs, t: &KeyedTable, eras: &[i32], labelled: &[bool]) -> Result<Split> {
    let cfg = &args.config;
    let embargo = cfg.embargo_eras.u32();
    let split = era_split(t, eras, labelled, cfg.train_until.as_deref(), embargo)?;
    match cfg.early_stopping_rounds {
        Some(_) => split.with_early_stopping(&args.features, cfg.early_stopping_eras.map(|n| n.u32()), embargo),
        None => Ok(split),
    }
}

/// The configured feature columns, or the table's default ones; refuses a table with none.
fn feature_columns(args: &TrainArgs, frame: &DataFrame) -> Result<Vec<String>> {
    let cfg = &args.config;
    let features = if cfg.features.is_empty() { default_features(frame) } else { cfg.features.clone() };
    if features.is_empty() {
        return Err(Error::input(
            &args.features,
            "no feature columns (p_*, sentiment*, cls_*, feature_*, n_headlines_*): is this the output of signalkit features?",
        ));
    }
    Ok(features)
}

/// The default parameters with the configured ones (and early stopping) merged over them.
fn training_params(cfg: &TrainConfig) -> Map<String, Value> {
    let mut params = default_params();
    params.extend(cfg.params.clone());
    if let Some(r) = cfg.early_stopping_rounds {
        params.insert("early_stopping_rounds".into(), json!(r.get()));
    }
    params
}

/// Warns of table rows whose text-feature level the training rows never held (they are
/// predicted as missing; the card's `categorical` counts them per column).
fn warn_unseen(path: &Path, categorical: &crate::categorical::Categorical) {
    for (name, l) in categorical.iter().filter(|(_, l)| l.unseen_rows > 0) {
        eprintln!(
            "warning: {}: {name}: {} rows outside the training rows hold a level the training rows never held; \
             they are predicted as missing (model.json `categorical`)",
            path.display(),
            l.unseen_rows
        );
    }
}

/// Moves the feature columns out of `frame` into the training (and early-stopping) matrices and
/// trains; returns the booster, the seconds LightGBM took and the text features' levels (from
/// the training rows only). The table's columns move one at a time, so table + matrices never
/// hold two copies.
fn fit(
    args: &TrainArgs,
    mut frame: DataFrame,
    features: &[String],
    y: &[f32],
    train_rows: &[usize],
    stop_rows: Option<&[usize]>,
    params: &Map<String, Value>,
) -> Result<(Booster, f64, crate::categorical::Categorical)> {
    let sets: Vec<&[usize]> = match stop_rows {
        Some(stop) => vec![train_rows, stop],
        None => vec![train_rows],
    };
    let categorical = crate::categorical::fit_levels(&args.features, &frame, features, train_rows)?;
    let dataset_params = crate::categorical::dataset_params(features, &categorical);
    let mut matrices = take_matrices(&args.features, &mut frame, features, &categorical, &sets)?.0.into_iter();
    drop(frame);
    let x = matrices.next().expect("one matrix per row set");
    let valid = matrices.next().map(|vx| (vx, stop_rows.unwrap_or_default().iter().map(|&i| y[i]).collect()));
    let ty: Vec<f32> = train_rows.iter().map(|&i| y[i]).collect();
    // Timed like Python's lgb.train: LightGBM's Dataset construction plus boosting.
    let started = Instant::now();
    let spinner = training_spinner(params, train_rows.len(), features.len());
    let booster = train_booster_with(x, &ty, valid, params, &dataset_params);
    spinner.finish_and_clear();
    Ok((booster?, started.elapsed().as_secs_f64(), categorical))
}

/// LightGBM boosts inside one C call: a ticking spinner shows it is alive (terminals only).
fn training_spinner(params: &Map<String, Value>, rows: usize, features: usize) -> indicatif::ProgressBar {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!(
        "training {} trees on {rows} rows x {features} features",
        params.get("num_iterations").map_or("?".to_string(), |v| v.to_string()),
    ));
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}  {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    spinner
}

/// Re-reads the feature table and writes every row's prediction to `predictions.parquet`.
fn write_predictions(args: &TrainArgs, model: &Model, split: &Split) -> Result<PathBuf> {
    let t = KeyedTable::read(&args.features)?;
    let predictions = model.predict_frame(&args.features, &t.frame)?;
    let mut ids = id_frame(&t, &predictions, split)?;
    let pred_path = args.out.join("predictions.parquet");
    write_table_atomic(&mut ids, &pred_path)?;
    Ok(pred_path)
}

/// What `predict` needs.
#[derive(Debug, Clone)]
pub struct PredictArgs {
    /// Model folder or model.txt.
    pub model: PathBuf,
    /// Feature table with the model's feature columns.
    pub features: PathBuf,
    /// Output CSV or parquet.
    pub out: PathBuf,
    /// Keep only the latest era (the live week), as a submission wants.
    pub latest_only: bool,
    /// Blend with last week's signal: the share of it kept (see [`crate::smooth`]).
    pub smooth: Option<f64>,
    /// Last week's signal file, blended into the live week (needs `smooth`); without it, every
    /// era written is blended with the era before.
    pub smooth_with: Option<PathBuf>,
}

/// What `predict` wrote.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    /// Rows written.
    pub rows: usize,
    /// Eras written.
    pub eras: usize,
    /// The first and last Friday written (the live week's date when one era is written).
    pub dates: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    /// Rows per text feature (of every row read, not only those written) holding a level the
    /// training rows never held: predicted as missing.
    pub unseen: crate::categorical::Unseen,
}

impl std::fmt::Display for PredictSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows in {} era(s)", self.rows, self.eras)?;
        match self.dates {
            Some((a, b)) if a == b => write!(f, " for the week of {a}"),
            Some((a, b)) => write!(f, " from {a} to {b}"),
            None => Ok(()),
        }?;
        if !self.unseen.is_empty() {
            write!(
                f,
                "; levels unseen in training, predicted as missing: {}",
                crate::categorical::unseen_text(&self.unseen)
            )?;
        }
        Ok(())
    }
}

/// Ranks values within each group into (0, 1): `(rank − 0.5) / n`, ties averaged.
pub fn rank_by_era(values: &[f64], eras: &[i32]) -> Vec<f64> {
    let mut out = vec![f64::NAN; values.len()];
    for (_, rows) in crate::metrics::era_groups(eras) {
        let v: Vec<f64> = rows.iter().map(|&i| values[i]).collect();
        for (r, &i) in crate::metrics::rank(&v).into_iter().zip(&rows) {
            out[i] = r;
        }
    }
    out
}

/// Predicts every row and writes the ticker column and `signal` ranked into (0, 1) per era, plus
/// `date` (YYYY-MM-DD) when more than one era is written.
pub fn predict(args: &PredictArgs) -> Result<PredictSummary> {
    let (model_file, card_file) = model_paths(&args.model);
    guard_output(&args.out, &[&args.features, &model_file, &card_file])?;
    let model = Model::load(&args.model)?;
    let t = KeyedTable::read(&args.features)?;
    model.check_columns(&args.features, &t.frame)?;
    let live = Provenance::read(&args.features)?;
    if let Some(trained) = &model.card.provenance {
        let differences = trained.mismatches(&live.clone().unwrap_or_default());
        if !differences.is_empty() {
            return Err(mismatch_error(&args.features, &args.model, &differences));
        }
    }
    let (raw, unseen) = model.predict_counted(&args.features, &t.frame)?;
    if !unseen.is_empty() {
        eprintln!(
            "warning: {}: levels the model's training rows never held (predicted as missing): {}",
            args.features.display(),
            crate::categorical::unseen_text(&unseen)
        );
    }
    let eras: Vec<i32> = eras_of_days(&t.fridays);
    let latest = eras.iter().copied().max().unwrap_or(0);
    let keep: Vec<usize> = (0..eras.len()).filter(|&i| !args.latest_only || eras[i] == latest).collect();
    let kept_eras: Vec<i32> = keep.iter().map(|&i| eras[i]).collect();
    let kept_raw: Vec<f64> = keep.iter().map(|&i| raw[i]).collect();
    let signal = match args.smooth {
        Some(a) => smoothed(args, &t, &keep, &kept_raw, &kept_eras, a)?,
        None => rank_by_era(&kept_raw, &kept_eras),
    };
    let idx = IdxCa::from_vec("idx".into(), keep.iter().map(|&i| i as IdxSize).collect());
    let tickers = t.frame.column(&t.ticker_column).and_then(|c| c.take(&idx)).map_err(|e| Error::table(&t.path, e))?;
    let n_eras = crate::metrics::era_groups(&kept_eras).len();
    let mut columns = vec![tickers];
    if n_eras > 1 {
        let dates: Vec<String> = keep.iter().map(|&i| date_from_days(t.fridays[i]).to_string()).collect();
        columns.push(Column::new("date".into(), dates));
    }
    columns.push(Column::new("signal".into(), &signal));
    let mut out = DataFrame::new(keep.len(), columns).map_err(|e| Error::table(&args.out, e))?;
    let smoothing = match args.smooth {
        Some(weight) => {
            Some(SmoothingRecord { weight, previous: args.smooth_with.as_deref().map(InputFile::of).transpose()? })
        }
        None => None,
    };
    let provenance =
        Provenance { model: Some(InputFile::of(&model_file)?), smoothing, ..live.unwrap_or_else(Provenance::new) };
    write_signal(&mut out, &args.out, &provenance)?;
    let day = |e: Option<&i32>| e.map(|&e| date_from_days(days_of_era(e)));
    let dates = day(kept_eras.iter().min()).zip(day(kept_eras.iter().max()));
    Ok(PredictSummary { rows: out.height(), eras: n_eras, dates, unseen })
}

/// The kept rows' signal blended with last week's file (the live week) or era by era.
fn smoothed(args: &PredictArgs, t: &KeyedTable, keep: &[usize], raw: &[f64], eras: &[i32], a: f64) -> Result<Vec<f64>> {
    crate::smooth::check_weight(a)?;
    let tickers: Vec<String> = keep.iter().map(|&i| t.universe[t.ticker_ids[i] as usize].clone()).collect();
    let news = has_news(t)?;
    let news: Vec<bool> = keep.iter().map(|&i| news[i]).collect();
    match &args.smooth_with {
        Some(prev) if args.latest_only => {
            guard_output(&args.out, &[prev])?;
            let previous = crate::smooth::read_previous(prev, &t.ticker_column, &tickers)?;
            Ok(crate::smooth::blend_week(&tickers, raw, &news, &previous, a))
        }
        Some(_) => Err(Error::Config(
            "--smooth-with blends the live week: drop --all-eras (or drop --smooth-with to blend era by era)".into(),
        )),
        None if args.latest_only => {
            Err(Error::Config("--smooth needs last week's signal: pass --smooth-with LAST_SIGNAL".into()))
        }
        None => Ok(crate::smooth::smooth_eras(eras, &tickers, raw, &news, a)),
    }
}

/// Whether each row has a headline in its window (the join's `headline` column; every row when
/// the table has none).
fn has_news(t: &KeyedTable) -> Result<Vec<bool>> {
    match t.frame.column("headline") {
        Ok(c) => Ok(c.is_not_null().iter().map(|v| v.unwrap_or(false)).collect()),
        Err(_) => Ok(vec![true; t.len()]),
    }
}

/// Writes a signal with its provenance: in the metadata of a parquet file, beside a CSV as
/// `<file>.provenance.json`.
fn write_signal(df: &mut DataFrame, out: &Path, provenance: &Provenance) -> Result<()> {
    match crate::data::format_of(out)? {
        crate::data::Format::Parquet => write_parquet_with(df, out, Some(provenance.to_metadata())),
        _ => {
            write_table_atomic(df, out)?;
            let json = serde_json::to_vec_pretty(provenance).map_err(|e| Error::Config(e.to_string()))?;
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(".provenance.json");
            write_bytes_atomic(&out.with_file_name(name), &json)
        }
    }
}
