//! Walk-forward training: the validation eras of the usual split (after `train_until` or
//! `data_type == train`, past the embargo) cut into K consecutive blocks; fold k is a model
//! trained on every era before block k less the embargo (fold 1: exactly the single split's
//! training eras), early-stopped inside its own training eras, and scored on block k only.
//! Every fold's model and card are kept (`fold-1/` … `fold-K/`), and the out-of-fold predictions
//! are stitched into one `predictions.parquet` with a `fold` column, so `evaluate` scores every
//! validation era out of sample — the same eras the single split scores, by K models instead of one.
//!
//! Features fitted on eras (a PCA of the embedding, an encoder fine-tuned on market labels) are
//! point in time for every fold only if they were fitted within fold 1's training eras; anything
//! fitted later is refused, naming why.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{feature_columns, fit, release_freed_memory, training_params, warn_unseen};
use crate::data::targets::KeyedTable;
use crate::data::{guard_output, write_table_atomic};
use crate::era::{days_of_era, eras_of_days, parse_era};
use crate::error::{Error, Result};
use crate::model::{CARD_FILE, MODEL_FILE, Model, ModelCard, Split};
use crate::provenance::{InputFile, Provenance};
use crate::report::{era_text, write_json};
use crate::split::{era_split, target_values};

use super::TrainArgs;

/// The summary file beside the folds.
pub const SUMMARY_FILE: &str = "walk_forward.json";

/// One fold: its model folder and eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fold {
    /// 1 to K.
    pub fold: usize,
    /// The fold's model folder (model.txt, model.json).
    pub model: String,
    /// Its train, early-stopping, embargo and validation eras.
    pub split: Split,
    /// Trees in its model.
    pub trees: i32,
    /// Training rows (targets present).
    pub rows_train: usize,
    /// Validation rows (targets present).
    pub rows_validation: usize,
}

/// What a walk forward wrote (also `walk_forward.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalkForward {
    /// The folds, oldest validation block first.
    pub folds: Vec<Fold>,
    /// The stitched predictions: every row once, `fold` and `split` per row.
    pub predictions: String,
}

impl std::fmt::Display for WalkForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for fold in &self.folds {
            let s = &fold.split;
            writeln!(
                f,
                "fold {}: {} trees, train {} ({} eras, {} early stopping), {} embargo, validation {} → {}",
                fold.fold,
                fold.trees,
                range(&s.train),
                s.train.len(),
                s.early_stopping.len(),
                s.embargo.len(),
                range(&s.validation),
                fold.model
            )?;
        }
        write!(
            f,
            "walk forward: {} folds; out-of-fold predictions → {} (evaluate it without --model: its `split` column \
             marks each fold's validation rows; predict the live week with the last fold's model)",
            self.folds.len(),
            self.predictions
        )
    }
}

fn range(eras: &[i32]) -> String {
    match (eras.first(), eras.last()) {
        (Some(a), Some(b)) => format!("{} → {}", era_text(*a), era_text(*b)),
        _ => "none".into(),
    }
}

/// Trains one model per fold, writes `fold-k/`, the stitched `predictions.parquet` and
/// `walk_forward.json` into `args.out`.
pub fn walk_forward(args: &TrainArgs) -> Result<WalkForward> {
    let _out = crate::data::lock::lock_folder(&args.out, "train", "--out")?;
    let cfg = &args.config;
    let k = cfg.walk_forward.map_or(1, |k| k.usize());
    super::check_tree_count(&cfg.params)?;
    let t = KeyedTable::read(&args.features)?;
    let (target, y) = target_values(&t, &cfg.target)?;
    let eras = eras_of_days(&t.fridays);
    let labelled: Vec<bool> = y.iter().map(|v| !v.is_nan()).collect();
    let embargo = cfg.embargo_eras.u32();
    let base = era_split(&t, &eras, &labelled, cfg.train_until.as_deref(), embargo)?;
    let splits = plan_folds(&args.features, &base, k, embargo)?;
    let provenance = Provenance::read(&args.features)?;
    check_point_in_time(&args.features, provenance.as_ref(), &base)?;
    guard_outputs(args, k)?;
    let features = feature_columns(args, &t.frame)?;
    let params = training_params(cfg);
    let mut folds = Vec::with_capacity(k);
    let mut predictions = Vec::with_capacity(k);
    for (i, split) in splits.into_iter().enumerate() {
        let split = match cfg.early_stopping_rounds {
            Some(_) => split.with_early_stopping(&args.features, cfg.early_stopping_eras.map(|n| n.u32()), embargo)?,
            None => split,
        };
        let rows = |roles: &[i32]| -> Vec<usize> {
            (0..eras.len()).filter(|&r| labelled[r] && roles.binary_search(&eras[r]).is_ok()).collect()
        };
        let (train_rows, valid_rows) = (rows(&split.train), rows(&split.validation));
        let stop_rows = cfg.early_stopping_rounds.is_some().then(|| rows(&split.early_stopping));
        // Each fold's text-feature levels come from its own training rows: levels first seen in
        // its validation block (or later) never shape its training, as with a live retrain.
        let (booster, train_seconds, categorical) =
            fit(args, t.frame.clone(), &features, &y, &train_rows, stop_rows.as_deref(), &params)?;
        let card = ModelCard {
            signalkit: env!("CARGO_PKG_VERSION").into(),
            features: features.clone(),
            target: target.clone(),
            params: params.clone(),
            split: split.clone(),
            trees: booster.num_iterations(),
            rows_train: train_rows.len(),
            rows_validation: valid_rows.len(),
            inputs: vec![InputFile::of(&args.features)?],
            provenance: provenance.clone(),
            categorical,
            train_seconds,
        };
        let dir = fold_dir(&args.out, i + 1);
        warn_unseen(&dir, &card.categorical);
        Model { booster, card }.save(&dir)?;
        release_freed_memory();
        // Predictions come from the saved model, exactly as `predict` will see it.
        let model = Model::load(&dir)?;
        predictions.push(model.predict_frame(&args.features, &t.frame)?);
        folds.push(Fold {
            fold: i + 1,
            model: dir.display().to_string(),
            split,
            trees: model.card.trees,
            rows_train: train_rows.len(),
            rows_validation: valid_rows.len(),
        });
    }
    let path = write_out_of_fold(args, &t, &eras, &folds, &predictions)?;
    let summary = WalkForward { folds, predictions: path.display().to_string() };
    write_json(&args.out.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// `DIR/fold-k`.
pub fn fold_dir(out: &Path, k: usize) -> PathBuf {
    out.join(format!("fold-{k}"))
}

/// Refuses outputs that would replace the feature table.
fn guard_outputs(args: &TrainArgs, k: usize) -> Result<()> {
    let mut outputs = vec![args.out.join("predictions.parquet"), args.out.join(SUMMARY_FILE)];
    for i in 1..=k {
        outputs.extend([fold_dir(&args.out, i).join(MODEL_FILE), fold_dir(&args.out, i).join(CARD_FILE)]);
    }
    outputs.iter().try_for_each(|o| guard_output(o, &[&args.features]))
}

/// The folds of a split: its validation eras cut into `k` consecutive blocks (the first
/// `len % k` one era longer); fold 1 keeps the split's training and embargo eras, fold i > 1
/// trains on every labelled era at least `embargo` weeks before its block (the split's training
/// eras, its embargo eras and earlier blocks), the eras in between embargoed.
pub fn plan_folds(path: &Path, base: &Split, k: usize, embargo: u32) -> Result<Vec<Split>> {
    let v = &base.validation;
    if v.len() < k {
        return Err(Error::input(
            path,
            format!(
                "walk forward in {k} folds needs at least {k} validation eras, but there are {} after the training eras \
                 and the {embargo}-era embargo: set train.walk_forward (--walk-forward) lower, or train_until earlier",
                v.len()
            ),
        ));
    }
    let later: Vec<i32> = base.embargo.iter().chain(v).copied().collect();
    let (size, extra) = (v.len() / k, v.len() % k);
    let mut start = 0;
    let mut folds = Vec::with_capacity(k);
    for i in 0..k {
        let block = &v[start..start + size + usize::from(i < extra)];
        start += block.len();
        if i == 0 {
            folds.push(Split { validation: block.to_vec(), early_stopping: Vec::new(), ..base.clone() });
            continue;
        }
        let first = days_of_era(block[0]);
        let gap_ok = |e: &&i32| days_of_era(**e) + 7 * (embargo as i32 + 1) <= first;
        let mut train = base.train.clone();
        train.extend(later.iter().filter(gap_ok));
        let last = train.last().copied().unwrap_or(i32::MIN);
        let embargoed = later.iter().copied().filter(|&e| e > last && e < block[0]).collect();
        folds.push(Split { train, embargo: embargoed, validation: block.to_vec(), early_stopping: Vec::new() });
    }
    Ok(folds)
}

/// Refuses a feature table with features fitted on eras after fold 1's training eras (the
/// single split's): a PCA of the embedding, or an encoder fine-tuned on market labels.
fn check_point_in_time(path: &Path, provenance: Option<&Provenance>, base: &Split) -> Result<()> {
    let Some(p) = provenance else { return Ok(()) };
    let last_train = base.train.last().copied().unwrap_or(i32::MIN);
    if let Some(pca) = &p.pca {
        let fitted = parse_era(&pca.last_fit_friday).unwrap_or(i32::MAX);
        if fitted > last_train {
            return Err(Error::input(
                path,
                format!(
                    "walk forward refused: this table's PCA of the embedding ({}) was fitted on eras up to {}, after the \
                     first fold's training eras end ({}), so the early folds would be scored on eras that shaped their \
                     own features; rebuild the features with the PCA fitted within those eras (features --pca K \
                     --pca-fit-until {}) or without --pca",
                    pca.file.path,
                    pca.last_fit_friday,
                    era_text(last_train),
                    era_text(last_train)
                ),
            ));
        }
    }
    if let Some(enc) = &p.encoder {
        check_finetuned_encoder(path, &enc.id, last_train)?;
    }
    Ok(())
}

/// Refuses an encoder fine-tuned on market labels of eras after `last_train` (read from the
/// fine-tuned folder's card.json; an encoder without one is taken as it is).
fn check_finetuned_encoder(path: &Path, encoder: &str, last_train: i32) -> Result<()> {
    let card_path = Path::new(encoder).join("card.json");
    let Ok(text) = std::fs::read_to_string(&card_path) else { return Ok(()) };
    let card: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if card["recipe"] != "market" {
        return Ok(());
    }
    let eras: Vec<i64> = card["data"]["eras"]["train"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
        .unwrap_or_default();
    let fitted = eras.iter().max().copied();
    if fitted.is_some_and(|e| e <= i64::from(last_train)) {
        return Ok(());
    }
    let seen = fitted
        .map_or_else(|| "eras its card does not list".to_string(), |e| format!("eras up to {}", era_text(e as i32)));
    Err(Error::input(
        path,
        format!(
            "walk forward refused: its encoder {encoder} was fine-tuned on market labels of {seen} ({}), after the \
             first fold's training eras end ({}), so the early folds would be scored on eras whose targets shaped \
             the encoder; fine-tune with --train-until {} (the first fold's training eras), or use the frozen encoder",
            card_path.display(),
            era_text(last_train),
            era_text(last_train)
        ),
    ))
}

/// Each row's fold: the fold whose block holds its era; rows before the first block belong to
/// fold 1 (in sample), rows after the last block to fold K.
fn row_fold(era: i32, folds: &[Fold]) -> usize {
    folds.iter().position(|f| f.split.validation.last().is_some_and(|&last| era <= last)).unwrap_or(folds.len() - 1)
}

/// Writes `predictions.parquet`: ticker, era, split (the row's role in its fold), fold, and the
/// prediction of that fold's model.
fn write_out_of_fold(
    args: &TrainArgs,
    t: &KeyedTable,
    eras: &[i32],
    folds: &[Fold],
    predictions: &[Vec<f64>],
) -> Result<PathBuf> {
    let at: Vec<usize> = eras.iter().map(|&e| row_fold(e, folds)).collect();
    let tickers = t.frame.column(&t.ticker_column).map_err(|e| Error::table(&t.path, e))?.clone();
    let split: Vec<&str> = eras.iter().zip(&at).map(|(&e, &f)| folds[f].split.role(e)).collect();
    let fold: Vec<i32> = at.iter().map(|&f| f as i32 + 1).collect();
    let prediction: Vec<f64> = at.iter().enumerate().map(|(r, &f)| predictions[f][r]).collect();
    let mut df = DataFrame::new(
        t.len(),
        vec![
            tickers,
            Column::new(t.date_column.as_str().into(), eras),
            Column::new("split".into(), split),
            Column::new("fold".into(), fold),
            Column::new("prediction".into(), prediction),
        ],
    )
    .map_err(|e| Error::table(&t.path, e))?;
    let path = args.out.join("predictions.parquet");
    write_table_atomic(&mut df, &path)?;
    Ok(path)
}
