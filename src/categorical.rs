//! Text feature columns (Numerai v2.1's `feature_country`, `feature_exchange_code`) as LightGBM
//! categorical features.
//!
//! At training, a text column's levels are the distinct values of the rows the model is fitted
//! on (a walk-forward fold's own training rows), sorted by their bytes; a level's code is its
//! position, and the levels go into the model card (`categorical` in model.json), so `predict`
//! codes live values the same way. A null, and a level the training rows never held, is coded
//! as missing (NaN): inside LightGBM every categorical split sends a missing value, like a
//! category outside its set, to the "other" side. Unseen levels are counted, never mapped to a
//! trained level; `train` records them per column in the card, `predict` reports them on
//! stderr and in its summary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most levels a text feature may have in its training rows (LightGBM would also put all
/// but the most common `max_bin` levels together).
pub const MAX_LEVELS: usize = 1_000;

/// One text feature, as trained.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    /// The levels of the training rows, sorted; a level's code is its position. Nulls and any
    /// other level are coded as missing (NaN).
    pub levels: Vec<String>,
    /// Rows of the training table, outside the training rows, whose level is not among
    /// `levels` (coded as missing when predicted).
    pub unseen_rows: usize,
}

/// The text features of a model, by column name.
pub type Categorical = BTreeMap<String, Levels>;

/// Rows with a level unseen in training, per text feature (only features with some).
pub type Unseen = BTreeMap<String, usize>;

/// Whether a column is text, trained as a LightGBM category.
pub fn is_text(col: &Column) -> bool {
    col.dtype() == &DataType::String
}

/// The levels of every text column among `features`, from the rows `fit_rows` only, with the
/// table's other rows holding a level not among them counted; refuses more than
/// [`MAX_LEVELS`] levels. Columns the table lacks are left to the matrix builder to name.
pub fn fit_levels(path: &Path, frame: &DataFrame, features: &[String], fit_rows: &[usize]) -> Result<Categorical> {
    let mut fitted = vec![false; frame.height()];
    fit_rows.iter().for_each(|&i| fitted[i] = true);
    let mut out = Categorical::new();
    for name in features {
        let Ok(col) = frame.column(name) else { continue };
        if !is_text(col) {
            continue;
        }
        let values = col.str().map_err(|e| Error::table(path, e))?;
        let seen: BTreeSet<&str> = values.iter().zip(&fitted).filter_map(|(v, &f)| v.filter(|_| f)).collect();
        if seen.len() > MAX_LEVELS {
            return Err(too_many_levels(path, name, seen.len()));
        }
        let unseen_rows = values.iter().filter(|v| v.is_some_and(|s| !seen.contains(s))).count();
        out.insert(name.clone(), Levels { levels: seen.into_iter().map(String::from).collect(), unseen_rows });
    }
    Ok(out)
}

fn too_many_levels(path: &Path, name: &str, n: usize) -> Error {
    Error::at(
        path,
        None,
        name,
        format!(
            "{n} distinct text values in the training rows: a text feature trains as a LightGBM category of at most \
             {MAX_LEVELS} levels; group the rare levels into one (e.g. \"other\"), encode the column as numbers, or \
             leave it out of train.features"
        ),
    )
}

/// A text column's codes under `levels` (null and unseen levels: NaN) and the count of rows
/// holding a level not among them.
pub fn encode(path: &Path, col: &Column, levels: &[String]) -> Result<(Vec<f32>, usize)> {
    let code: HashMap<&str, f32> = levels.iter().enumerate().map(|(i, l)| (l.as_str(), i as f32)).collect();
    let mut unseen = 0;
    let values = col.str().map_err(|e| Error::table(path, e))?;
    let codes = values
        .iter()
        .map(|v| match v {
            None => f32::NAN,
            Some(s) => code.get(s).copied().unwrap_or_else(|| {
                unseen += 1;
                f32::NAN
            }),
        })
        .collect();
    Ok((codes, unseen))
}

/// LightGBM's dataset parameter naming the categorical columns by position in `features`
/// (empty when there are none).
pub fn dataset_params(features: &[String], categorical: &Categorical) -> String {
    let at: Vec<String> =
        features.iter().enumerate().filter(|(_, f)| categorical.contains_key(*f)).map(|(j, _)| j.to_string()).collect();
    if at.is_empty() { String::new() } else { format!("categorical_feature={}", at.join(",")) }
}

/// Refuses a column whose kind (text or numbers) differs from the model's.
pub fn check_kind(path: &Path, col: &Column, categorical: &Categorical) -> Result<()> {
    let trained_text = categorical.contains_key(col.name().as_str());
    match (is_text(col), trained_text) {
        (true, false) => Err(Error::at(
            path,
            None,
            col.name(),
            "this column holds text, but the model was trained on it as numbers (model.json has no levels for it): \
             build the features as for training, or retrain on this table",
        )),
        (false, true) if !col.dtype().is_null() => Err(Error::at(
            path,
            None,
            col.name(),
            format!(
                "this column holds {}, but the model was trained on it as text categories (levels in model.json \
                 `categorical`): pass the text column as at training",
                col.dtype()
            ),
        )),
        _ => Ok(()),
    }
}

/// "feature_country: 3 rows" lines, for warnings and summaries.
pub fn unseen_text(unseen: &Unseen) -> String {
    unseen.iter().map(|(f, n)| format!("{f}: {n} rows")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(values: &[Option<&str>]) -> DataFrame {
        let x: Vec<f64> = (0..values.len()).map(|i| i as f64).collect();
        DataFrame::new(values.len(), vec![Column::new("feature_c".into(), values), Column::new("feature_x".into(), x)])
            .unwrap()
    }

    #[test]
    fn levels_come_from_the_fit_rows_only_sorted_and_later_levels_are_counted() {
        let f = frame(&[Some("US"), Some("JP"), None, Some("US"), Some("BR"), Some("ZZ"), Some("BR")]);
        let feats = vec!["feature_x".to_string(), "feature_c".to_string()];
        let cat = fit_levels(Path::new("t.parquet"), &f, &feats, &[0, 1, 2, 3]).unwrap();
        assert_eq!(cat.keys().collect::<Vec<_>>(), ["feature_c"]);
        assert_eq!(cat["feature_c"].levels, ["JP", "US"]);
        assert_eq!(cat["feature_c"].unseen_rows, 3);
        assert_eq!(dataset_params(&feats, &cat), "categorical_feature=1");
        let (codes, unseen) = encode(Path::new("t"), f.column("feature_c").unwrap(), &cat["feature_c"].levels).unwrap();
        assert_eq!(unseen, 3);
        assert_eq!(&codes[..2], &[1.0, 0.0]);
        assert!(codes[2].is_nan() && codes[4].is_nan() && codes[5].is_nan());
        assert_eq!(codes[3], 1.0);
    }

    #[test]
    fn too_many_levels_are_refused_naming_the_column_and_the_fix() {
        let names: Vec<String> = (0..=MAX_LEVELS).map(|i| format!("L{i}")).collect();
        let values: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        let f = frame(&values);
        let rows: Vec<usize> = (0..values.len()).collect();
        let e = fit_levels(Path::new("t.parquet"), &f, &["feature_c".into()], &rows).unwrap_err().to_string();
        assert!(e.contains("feature_c") && e.contains("1001 distinct") && e.contains("group the rare levels"), "{e}");
        let ok = fit_levels(Path::new("t.parquet"), &f, &["feature_c".into()], &rows[..MAX_LEVELS]).unwrap();
        assert_eq!(ok["feature_c"].levels.len(), MAX_LEVELS);
    }

    #[test]
    fn a_column_of_the_other_kind_is_refused() {
        let f = frame(&[Some("US")]);
        let cat: Categorical = [("feature_x".to_string(), Levels::default())].into();
        let e = check_kind(Path::new("live.parquet"), f.column("feature_x").unwrap(), &cat).unwrap_err().to_string();
        assert!(e.contains("trained on it as text"), "{e}");
        let e = check_kind(Path::new("live.parquet"), f.column("feature_c").unwrap(), &cat).unwrap_err().to_string();
        assert!(e.contains("trained on it as numbers"), "{e}");
    }
}
