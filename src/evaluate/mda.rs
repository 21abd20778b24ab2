//! Per-era permutation importance (MDA) on out-of-sample eras: shuffle a feature (or a group of
//! features together) within each era, re-predict, and measure the drop in numerai_corr.

use lightgbm3::Booster;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::metrics;
use crate::model::{FeatureMatrix, lgbm, row_major};

/// The seed of every shuffle (each feature or group starts from it), so a rerun is identical.
pub const MDA_SEED: u64 = 42;

/// Prefixes that make a feature group (as features.rs names its columns).
const GROUP_PREFIXES: [&str; 7] = ["cls_", "ask_", "sentiment", "p_", "pc_", "n_headlines_", "feature_"];

/// The drop in per-era numerai_corr when a feature or group is shuffled within each era.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mda {
    /// Mean drop (positive: the model relies on it out of sample). None: no era scored.
    pub mean: Option<f64>,
    /// Standard deviation (ddof 0) of the per-era drop. None: no era scored.
    pub std: Option<f64>,
    /// mean / std. None: no era scored, or the drop is the same in every era.
    pub sharpe: Option<f64>,
    /// Eras in which both the model and the shuffled model could be scored.
    pub eras: usize,
}

impl Mda {
    /// Not computed (a feature outside `importance --top` by gain).
    pub fn absent() -> Self {
        Mda { mean: None, std: None, sharpe: None, eras: 0 }
    }
}

/// Feature groups by prefix (`cls_*`, `ask_*`, `sentiment*`, …): name and column indices; only
/// groups of two or more columns (a group of one is its feature).
pub fn feature_groups(features: &[String]) -> Vec<(String, Vec<usize>)> {
    GROUP_PREFIXES
        .iter()
        .map(|p| {
            let cols = (0..features.len()).filter(|&j| prefix_of(&features[j]) == Some(*p)).collect::<Vec<_>>();
            (format!("{p}*"), cols)
        })
        .filter(|(_, cols)| cols.len() >= 2)
        .collect()
}

fn prefix_of(name: &str) -> Option<&'static str> {
    // The longest matching prefix, so `pc_1` is not counted as `p_`… (no overlap today, kept safe).
    GROUP_PREFIXES.iter().copied().filter(|p| name.starts_with(p)).max_by_key(|p| p.len())
}

/// Per-era numerai_corr of `pred` with `t` (NaN: era could not be scored).
fn per_era(pred: &[f64], t: &[f64], eras: &[(i32, Vec<usize>)]) -> Vec<f64> {
    eras.iter()
        .map(|(_, rows)| {
            let p: Vec<f64> = rows.iter().map(|&r| pred[r]).collect();
            let y: Vec<f64> = rows.iter().map(|&r| t[r]).collect();
            metrics::numerai_corr(&p, &y)
        })
        .collect()
}

fn predict(booster: &Booster, x: &FeatureMatrix) -> Result<Vec<f64>> {
    booster.predict_with_params(row_major(x), x.ncols() as i32, true, "num_threads=0").map_err(lgbm)
}

/// Shuffles columns `cols` of `x` within each era, the same permutation for every column of a
/// group (so the group moves together and keeps its own joint structure).
fn shuffle_within_eras(x: &mut FeatureMatrix, orig: &FeatureMatrix, cols: &[usize], eras: &[(i32, Vec<usize>)]) {
    let mut rng = ChaCha8Rng::seed_from_u64(MDA_SEED);
    for (_, rows) in eras {
        let mut perm = rows.clone();
        perm.shuffle(&mut rng);
        for (&to, &from) in rows.iter().zip(&perm) {
            cols.iter().for_each(|&c| x[[to, c]] = orig[[from, c]]);
        }
    }
}

fn restore(x: &mut FeatureMatrix, orig: &FeatureMatrix, cols: &[usize]) {
    cols.iter().for_each(|&c| x.column_mut(c).assign(&orig.column(c)));
}

fn summarize(drops: &[f64]) -> Mda {
    match metrics::summarize_defined(drops) {
        None => Mda { mean: None, std: None, sharpe: None, eras: 0 },
        Some(s) => Mda {
            mean: Some(s.mean),
            std: Some(s.std),
            sharpe: (s.std > 0.0 && s.sharpe.is_finite()).then_some(s.sharpe),
            eras: s.eras,
        },
    }
}

/// MDA of each unit (a feature or a group: its column indices) over the rows of `x` (the
/// out-of-sample rows only), `t` their targets, `eras` the rows of each era.
pub fn permutation_importance(
    booster: &Booster,
    x: &FeatureMatrix,
    t: &[f64],
    eras: &[(i32, Vec<usize>)],
    units: &[Vec<usize>],
) -> Result<Vec<Mda>> {
    let base = per_era(&predict(booster, x)?, t, eras);
    let mut work = x.clone();
    units
        .iter()
        .map(|cols| {
            shuffle_within_eras(&mut work, x, cols, eras);
            let shuffled = per_era(&predict(booster, &work)?, t, eras);
            restore(&mut work, x, cols);
            let drops: Vec<f64> = base.iter().zip(&shuffled).map(|(b, s)| b - s).collect();
            Ok(summarize(&drops))
        })
        .collect()
}

/// Rows per SHAP call, so the contributions (rows × (features + 1) f64) stay small.
const SHAP_CHUNK: usize = 16_384;

/// Most rows TreeSHAP is computed on: it costs rows × trees × leaves × depth², tens of seconds
/// on every OOS row of a 2,000-tree model; an even sample of this many rows is read instead.
pub const SHAP_MAX_ROWS: usize = 2_048;

/// Mean |SHAP| (LightGBM's TreeSHAP contributions) of each unit over an even sample of at most
/// [`SHAP_MAX_ROWS`] rows of `x` (every ⌈n / max⌉-th row); a group's contribution in a row is the
/// sum of its columns' (contributions add up). None: no rows.
pub fn mean_abs_shap(booster: &Booster, x: &FeatureMatrix, units: &[Vec<usize>]) -> Result<Vec<Option<f64>>> {
    let k = x.ncols();
    let step = x.nrows().div_ceil(SHAP_MAX_ROWS).max(1);
    let sample = x.slice(ndarray::s![..;step, ..]).to_owned();
    let n = sample.nrows();
    let mut sums = vec![0.0f64; units.len()];
    let mut start = 0;
    while start < n {
        let end = (start + SHAP_CHUNK).min(n);
        let chunk = sample.slice(ndarray::s![start..end, ..]).to_owned();
        let contrib = booster.predict_contrib(row_major(&chunk), k as i32, true).map_err(lgbm)?;
        for row in contrib.chunks_exact(k + 1) {
            for (sum, cols) in sums.iter_mut().zip(units) {
                *sum += cols.iter().map(|&c| row[c]).sum::<f64>().abs();
            }
        }
        start = end;
    }
    Ok(sums.into_iter().map(|s| (n > 0).then(|| s / n as f64)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_need_two_columns_and_take_the_longest_prefix() {
        let f: Vec<String> = ["cls_0", "cls_1", "pc_1", "pc_2", "p_pos", "ask_a", "other"].map(String::from).into();
        let g = feature_groups(&f);
        assert_eq!(g, vec![("cls_*".to_string(), vec![0, 1]), ("pc_*".to_string(), vec![2, 3])]);
    }

    #[test]
    fn a_drop_that_never_varies_has_no_sharpe_and_nothing_scored_is_absent() {
        let m = summarize(&[0.0, 0.0, 0.0]);
        assert_eq!((m.mean, m.sharpe, m.eras), (Some(0.0), None, 3));
        let none = summarize(&[f64::NAN]);
        assert!(none.mean.is_none() && none.std.is_none() && none.eras == 0);
    }

    #[test]
    fn shuffling_keeps_each_era_s_values_in_that_era() {
        let orig = FeatureMatrix::from_shape_fn((6, 2), |(i, j)| (10 * i + j) as f32);
        let mut x = orig.clone();
        let eras = vec![(1, vec![0, 1, 2]), (2, vec![3, 4, 5])];
        shuffle_within_eras(&mut x, &orig, &[0], &eras);
        let mut first: Vec<f32> = (0..3).map(|i| x[[i, 0]]).collect();
        first.sort_by(f32::total_cmp);
        assert_eq!(first, vec![0.0, 10.0, 20.0]);
        assert_eq!(x.column(1), orig.column(1));
        restore(&mut x, &orig, &[0]);
        assert_eq!(x, orig);
    }
}
