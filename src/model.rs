//! A trained model: the LightGBM booster, its JSON card (features, target, era split, inputs),
//! loading and saving them as a pair, and the feature matrix the booster reads.

use std::path::{Path, PathBuf};

use lightgbm3::{Booster, ImportanceType};
use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::categorical::{Categorical, Unseen, check_kind, encode};
use crate::data::write_bytes_atomic;
use crate::error::{Error, Result};
use crate::provenance::{InputFile, Provenance};

/// The model file inside a model folder.
pub const MODEL_FILE: &str = "model.txt";
/// The model card inside a model folder.
pub const CARD_FILE: &str = "model.json";
/// Rows predicted per LightGBM call, so prediction never holds a second full matrix.
const PREDICT_CHUNK: usize = 65_536;

/// Which eras train, which are embargoed, which validate (Fridays as YYYYMMDD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training eras.
    pub train: Vec<i32>,
    /// Eras dropped between training and validation (and before the early-stopping eras).
    pub embargo: Vec<i32>,
    /// Out-of-sample eras.
    pub validation: Vec<i32>,
    /// The last training eras, watched by early stopping (in sample; never validation eras).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early_stopping: Vec<i32>,
}

impl Split {
    /// "train", "early_stopping", "embargo", "validation" or "unused" for an era.
    pub fn role(&self, era: i32) -> &'static str {
        if self.train.binary_search(&era).is_ok() {
            "train"
        } else if self.early_stopping.binary_search(&era).is_ok() {
            "early_stopping"
        } else if self.embargo.binary_search(&era).is_ok() {
            "embargo"
        } else if self.validation.binary_search(&era).is_ok() {
            "validation"
        } else {
            "unused"
        }
    }
}

/// The default feature columns of a feature table, in table order.
pub fn default_features(frame: &DataFrame) -> Vec<String> {
    frame
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| {
            n.starts_with("p_")
                || n.starts_with("sentiment")
                || n.starts_with("cls_")
                || n.starts_with("pc_")
                || n.starts_with("feature_")
                || n.starts_with("n_headlines_")
                || n.starts_with("ask_")
                || n == "headline_age_days"
        })
        .collect()
}

/// A column as f32 values, null → NaN; text and other non-numeric columns are refused (a cast
/// would turn them into an all-null feature; text features go through [`crate::categorical`]).
pub(crate) fn f32_values(path: &Path, col: &Column) -> Result<Vec<f32>> {
    let dt = col.dtype();
    if !(dt.is_primitive_numeric() || dt.is_bool() || dt.is_null()) {
        return Err(Error::at(
            path,
            None,
            col.name(),
            format!(
                "this column holds {dt}, not numbers: leave it out of train.features (or convert it to numbers first)"
            ),
        ));
    }
    let cast = col.cast(&DataType::Float32).map_err(|e| Error::table(path, e))?;
    Ok(cast.f32().map_err(|e| Error::table(path, e))?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

/// The feature matrix every stage shares: one row per table row, one column per feature, f32,
/// row-major (standard layout: LightGBM reads it as one slice), NaN for a missing value.
pub type FeatureMatrix = Array2<f32>;

/// Every row of the feature columns as one [`FeatureMatrix`] (null → NaN, text features coded
/// by `categorical`), and the rows per text feature holding a level unseen in training.
pub fn feature_matrix(
    path: &Path,
    frame: &DataFrame,
    features: &[String],
    categorical: &Categorical,
) -> Result<(FeatureMatrix, Unseen)> {
    let (mut matrices, unseen) = take_matrices(
        path,
        &mut frame.select(features.iter().map(|f| f.as_str())).map_err(|_| {
            Error::input(path, "feature column missing: the model was trained with it; rebuild the features")
        })?,
        features,
        categorical,
        &[&(0..frame.height()).collect::<Vec<_>>()],
    )?;
    Ok((matrices.pop().unwrap_or_else(|| Array2::zeros((0, features.len()))), unseen))
}

/// A feature column as f32: numbers as they are, text as its level codes (see
/// [`crate::categorical`]); with the count of rows holding a level unseen in training.
fn feature_values(path: &Path, col: &Column, categorical: &Categorical) -> Result<(Vec<f32>, usize)> {
    check_kind(path, col, categorical)?;
    match categorical.get(col.name().as_str()) {
        Some(levels) if crate::categorical::is_text(col) => encode(path, col, &levels.levels),
        Some(_) => Ok((vec![f32::NAN; col.len()], 0)),
        None => Ok((f32_values(path, col)?, 0)),
    }
}

/// Moves the feature columns out of `frame` into one [`FeatureMatrix`] per row set (row-major:
/// the layout LightGBM bins fastest), dropping each column once copied (peak memory: the table
/// plus one column, not two tables). Text features are coded by `categorical`; the second value
/// counts, per text feature, the table's rows holding a level unseen in training.
pub fn take_matrices(
    path: &Path,
    frame: &mut DataFrame,
    features: &[String],
    categorical: &Categorical,
    sets: &[&[usize]],
) -> Result<(Vec<FeatureMatrix>, Unseen)> {
    let k = features.len();
    let mut out: Vec<FeatureMatrix> = sets.iter().map(|rows| Array2::zeros((rows.len(), k))).collect();
    let mut unseen = Unseen::new();
    for (j, name) in features.iter().enumerate() {
        let col = frame.drop_in_place(name).map_err(|_| {
            Error::at(path, None, name, "feature column missing: list only columns of this table in train.features")
        })?;
        let (values, n_unseen) = feature_values(path, &col, categorical)?;
        if n_unseen > 0 {
            unseen.insert(name.clone(), n_unseen);
        }
        drop(col);
        for (x, rows) in out.iter_mut().zip(sets) {
            for (cell, &i) in x.column_mut(j).iter_mut().zip(rows.iter()) {
                *cell = values[i];
            }
        }
    }
    Ok((out, unseen))
}

/// The matrix as one row-major slice, as LightGBM reads it (every matrix here is built in
/// standard layout).
pub fn row_major(x: &FeatureMatrix) -> &[f32] {
    x.as_slice().expect("feature matrices are built in standard (row-major) layout")
}

/// Where a model lives: `DIR/model.txt` and `DIR/model.json` (pass either the folder or the file).
pub fn model_paths(model: &Path) -> (PathBuf, PathBuf) {
    let dir = if model.is_dir() { model.to_path_buf() } else { model.parent().unwrap_or(Path::new(".")).to_path_buf() };
    let file = if model.is_dir() { dir.join(MODEL_FILE) } else { model.to_path_buf() };
    (file.clone(), file.with_extension("json"))
}

/// The JSON sidecar saved with every model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    /// signalkit version that trained it.
    pub signalkit: String,
    /// Feature columns, in the model's order.
    pub features: Vec<String>,
    /// Target column trained on, as named in the table.
    pub target: String,
    /// LightGBM parameters used.
    pub params: Map<String, Value>,
    /// Train / embargo / validation eras.
    pub split: Split,
    /// Trees in the saved model.
    pub trees: i32,
    /// Training and validation rows.
    pub rows_train: usize,
    /// Validation rows (targets present).
    pub rows_validation: usize,
    /// Input files and their hashes.
    pub inputs: Vec<InputFile>,
    /// How the feature table was made (join, encoder, PCA): live features must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Text features, trained as LightGBM categories: each one's levels (a level's code is its
    /// position; nulls and unseen levels are missing), see [`crate::categorical`].
    #[serde(default, skip_serializing_if = "Categorical::is_empty")]
    pub categorical: Categorical,
    /// Seconds spent in LightGBM training.
    pub train_seconds: f64,
}

/// A trained model and its card.
pub struct Model {
    /// The LightGBM booster (not `Send`: keep it on one thread).
    pub booster: Booster,
    /// What it was trained on.
    pub card: ModelCard,
}

pub(crate) fn lgbm(e: lightgbm3::Error) -> Error {
    Error::Lightgbm(e.to_string())
}

impl Model {
    /// Loads `model.txt` and its `model.json` card.
    pub fn load(model: &Path) -> Result<Model> {
        let (file, card_path) = model_paths(model);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let booster = Booster::from_string(&text).map_err(|e| {
            Error::input(&file, format!("not a LightGBM model ({e}): pass the model.txt written by train"))
        })?;
        let card_text = std::fs::read_to_string(&card_path).map_err(|e| Error::io(&card_path, e))?;
        let card: ModelCard =
            serde_json::from_str(&card_text).map_err(|e| Error::input(&card_path, format!("bad model card: {e}")))?;
        if let Some(f) = card.categorical.keys().find(|f| !card.features.contains(f)) {
            return Err(Error::input(
                &card_path,
                format!("bad model card: `categorical` has levels for {f}, which is not among its features"),
            ));
        }
        if booster.num_features() as usize != card.features.len() {
            return Err(Error::input(
                &card_path,
                format!(
                    "the card lists {} features but the model has {}: the two files do not belong together",
                    card.features.len(),
                    booster.num_features()
                ),
            ));
        }
        Ok(Model { booster, card })
    }

    /// Saves `DIR/model.txt` and `DIR/model.json`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = self.booster.save_string().map_err(lgbm)?;
        write_bytes_atomic(&dir.join(MODEL_FILE), text.as_bytes())?;
        let card = serde_json::to_vec_pretty(&self.card).map_err(|e| Error::Config(e.to_string()))?;
        write_bytes_atomic(&dir.join(CARD_FILE), &card)
    }

    /// Fails naming the model's feature columns that `frame` lacks.
    pub fn check_columns(&self, path: &Path, frame: &DataFrame) -> Result<()> {
        let missing: Vec<&String> = self.card.features.iter().filter(|f| frame.column(f).is_err()).take(5).collect();
        if !missing.is_empty() {
            return Err(Error::input(
                path,
                format!(
                    "missing {} of the model's feature columns (e.g. {missing:?}): build the features with the same \
                     encoder model and options as for training",
                    self.card.features.iter().filter(|f| frame.column(f).is_err()).count()
                ),
            ));
        }
        Ok(())
    }

    /// Raw predictions for every row of `frame`, in chunks; the feature columns must all be there.
    pub fn predict_frame(&self, path: &Path, frame: &DataFrame) -> Result<Vec<f64>> {
        Ok(self.predict_counted(path, frame)?.0)
    }

    /// Raw predictions for every row of `frame`, and the rows per text feature holding a level
    /// unseen in training (predicted as missing).
    pub fn predict_counted(&self, path: &Path, frame: &DataFrame) -> Result<(Vec<f64>, Unseen)> {
        self.check_columns(path, frame)?;
        let n = frame.height();
        let k = self.card.features.len() as i32;
        let mut out = Vec::with_capacity(n);
        let mut unseen = Unseen::new();
        let mut start = 0;
        while start < n {
            // A zero-copy slice: each chunk converts only its own rows.
            let chunk = frame.slice(start as i64, PREDICT_CHUNK);
            let (x, u) = feature_matrix(path, &chunk, &self.card.features, &self.card.categorical)?;
            u.into_iter().for_each(|(f, c)| *unseen.entry(f).or_default() += c);
            out.extend(self.booster.predict_with_params(row_major(&x), k, true, "num_threads=0").map_err(lgbm)?);
            start += chunk.height();
        }
        Ok((out, unseen))
    }
}

/// Gain and split importance per feature, in the model's feature order.
pub fn importance(model: &Model) -> Result<(Vec<f64>, Vec<f64>)> {
    let gain = model.booster.feature_importance(ImportanceType::Gain).map_err(lgbm)?;
    let split = model.booster.feature_importance(ImportanceType::Split).map_err(lgbm)?;
    Ok((gain, split))
}
