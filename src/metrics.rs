//! Numerai scoring as pure functions, with numerai-tools' exact formulas: scores must equal
//! numerai-tools' to 1e-9 on the same rows (tests/metrics.rs checks this against its output).
//!
//! Missing values are NaN. Every function works on one era's values; [`per_era`] groups rows
//! into eras and [`summarize`] turns per-era scores into the statistics Numerai reports.

use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// numpy `lstsq`'s cut-off for small singular values, as numerai-tools passes it.
const LSTSQ_RCOND: f64 = 1e-6;

/// Tie-kept percentile rank: `(rank(method="average") - 0.5) / count`; NaN stays NaN.
pub fn rank(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let count = order.len() as f64;
    let mut out = vec![f64::NAN; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // 1-based ranks start+1 ..= end share their average.
        let average = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = (average - 0.5) / count;
        }
        start = end;
    }
    out
}

/// The standard normal quantile Φ⁻¹ of each value (NaN stays NaN).
pub fn gaussian(values: &[f64]) -> Vec<f64> {
    let normal = Normal::standard();
    values.iter().map(|&v| if v.is_nan() { v } else { normal.inverse_cdf(v) }).collect()
}

/// Signed power: `sign(x) · |x|^p`.
pub fn power(values: &[f64], p: f64) -> Vec<f64> {
    values.iter().map(|&v| v.signum() * v.abs().powf(p)).collect()
}

/// Subtracts the mean of the non-NaN values.
pub fn center(values: &[f64]) -> Vec<f64> {
    let m = nan_mean(values);
    values.iter().map(|v| v - m).collect()
}

fn nan_mean(values: &[f64]) -> f64 {
    let (sum, n) = values.iter().filter(|v| !v.is_nan()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Pearson correlation over the pairs where both are present; NaN when fewer than two pairs or
/// either side is constant (pandas `Series.corr`).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> =
        a.iter().zip(b).filter(|(x, y)| !x.is_nan() && !y.is_nan()).map(|(x, y)| (*x, *y)).collect();
    if pairs.len() < 2 {
        return f64::NAN;
    }
    let n = pairs.len() as f64;
    let (ma, mb) = pairs.iter().fold((0.0, 0.0), |(sa, sb), (x, y)| (sa + x, sb + y));
    let (ma, mb) = (ma / n, mb / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// numerai_corr for one era: centre the targets (over all present targets), keep rows where both
/// are present, rank → Φ⁻¹ → ^1.5 the predictions, ^1.5 the targets, then Pearson.
pub fn numerai_corr(predictions: &[f64], targets: &[f64]) -> f64 {
    let centred = center(targets);
    let keep: Vec<usize> =
        (0..predictions.len()).filter(|&i| !predictions[i].is_nan() && !centred[i].is_nan()).collect();
    let p: Vec<f64> = keep.iter().map(|&i| predictions[i]).collect();
    let t: Vec<f64> = keep.iter().map(|&i| centred[i]).collect();
    pearson(&power(&t, 1.5), &power(&gaussian(&rank(&p)), 1.5))
}

/// One row per observation, one column per neutraliser (or feature), in f64 for numerai-tools
/// parity; built from columns with [`from_columns`].
pub type Neutralizers = Array2<f64>;

/// The matrix whose columns are `columns`, each `rows` long.
pub fn from_columns(rows: usize, columns: &[Vec<f64>]) -> Neutralizers {
    Array2::from_shape_fn((rows, columns.len()), |(r, c)| columns[c][r])
}

/// Least-squares residual `v − proportion · [N, 1] · lstsq([N, 1], v)`, with numpy's rcond = 1e-6.
/// `neutralizers` has one row per value of `v`, without NaN; the SVD is nalgebra's.
pub fn neutralize(v: &[f64], neutralizers: ArrayView2<f64>, proportion: f64) -> Vec<f64> {
    let n = v.len();
    let k = neutralizers.ncols() + 1;
    let a = DMatrix::from_fn(n, k, |r, c| if c < k - 1 { neutralizers[[r, c]] } else { 1.0 });
    let svd = a.svd(true, true);
    let (u, s) = (svd.u.expect("u computed"), &svd.singular_values);
    let cut = LSTSQ_RCOND * s.max();
    // The fitted values A·x are the projection of v on the kept left singular vectors.
    let mut fitted = vec![0.0; n];
    for j in 0..s.len() {
        if s[j] <= cut {
            continue;
        }
        let col = u.column(j);
        let dot: f64 = (0..n).map(|r| col[r] * v[r]).sum();
        for (r, f) in fitted.iter_mut().enumerate() {
            *f += col[r] * dot;
        }
    }
    v.iter().zip(&fitted).map(|(x, f)| x - proportion * f).collect()
}

/// Feature-neutral correlation for one era: rank → Φ⁻¹ the predictions, neutralise them to the
/// features, scale to unit std (ddof 0), then numerai_corr. Rows with a NaN prediction or
/// feature are left out.
pub fn feature_neutral_corr(predictions: &[f64], features: ArrayView2<f64>, targets: &[f64]) -> f64 {
    let keep: Vec<usize> = (0..predictions.len())
        .filter(|&i| !predictions[i].is_nan() && features.row(i).iter().all(|f| !f.is_nan()))
        .collect();
    if keep.len() < 2 {
        return f64::NAN;
    }
    let pick = |x: &[f64]| keep.iter().map(|&i| x[i]).collect::<Vec<f64>>();
    let g = gaussian(&rank(&pick(predictions)));
    let neutral = neutralize(&g, features.select(Axis(0), &keep).view(), 1.0);
    let sd = std_dev(&neutral);
    let scaled: Vec<f64> = neutral.iter().map(|x| x / sd).collect();
    numerai_corr(&scaled, &pick(targets))
}

/// Feature exposure for one era: the largest |Pearson| of the predictions with any feature,
/// and that feature's index (numerai-tools `max_feature_correlation`).
pub fn max_feature_correlation(predictions: &[f64], features: ArrayView2<f64>) -> Option<(usize, f64)> {
    features
        .columns()
        .into_iter()
        .enumerate()
        .map(|(j, f)| (j, pearson(&f.to_vec(), predictions).abs()))
        .filter(|(_, c)| !c.is_nan())
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Correlation with a benchmark (e.g. another model's predictions) for one era: Pearson of the
/// two tie-kept ranks over rows where both are present (Spearman).
pub fn benchmark_corr(predictions: &[f64], benchmark: &[f64]) -> f64 {
    let keep: Vec<usize> =
        (0..predictions.len()).filter(|&i| !predictions[i].is_nan() && !benchmark[i].is_nan()).collect();
    let p: Vec<f64> = keep.iter().map(|&i| predictions[i]).collect();
    let b: Vec<f64> = keep.iter().map(|&i| benchmark[i]).collect();
    pearson(&rank(&p), &rank(&b))
}

/// Population standard deviation (ddof 0) of the non-NaN values.
pub fn std_dev(values: &[f64]) -> f64 {
    let m = nan_mean(values);
    let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    (present.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / present.len() as f64).sqrt()
}

/// Row indices of each era, eras in ascending order, rows in input order.
pub fn era_groups(eras: &[i32]) -> Vec<(i32, Vec<usize>)> {
    let mut groups: std::collections::BTreeMap<i32, Vec<usize>> = Default::default();
    for (i, e) in eras.iter().enumerate() {
        groups.entry(*e).or_default().push(i);
    }
    groups.into_iter().collect()
}

/// One era's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EraScore {
    /// The era (Friday as YYYYMMDD).
    pub era: i32,
    /// numerai_corr of the era.
    pub corr: f64,
    /// Rows scored (prediction and target both present).
    pub n: usize,
}

/// Whether every prediction with a target is the same value (such an era carries no ranking).
pub fn is_constant(predictions: &[f64], targets: &[f64]) -> bool {
    let mut present = predictions.iter().zip(targets).filter(|(p, t)| !p.is_nan() && !t.is_nan()).map(|(p, _)| *p);
    match present.next() {
        Some(first) => present.all(|p| p == first),
        None => false,
    }
}

/// numerai_corr per era; an era whose predictions are all equal scores 0 (it ranks nothing;
/// numerai-tools would give NaN), eras where nothing can be scored are left out.
pub fn per_era(predictions: &[f64], targets: &[f64], eras: &[i32]) -> Vec<EraScore> {
    era_groups(eras)
        .into_iter()
        .filter_map(|(era, rows)| {
            let p: Vec<f64> = rows.iter().map(|&i| predictions[i]).collect();
            let t: Vec<f64> = rows.iter().map(|&i| targets[i]).collect();
            let n = p.iter().zip(&t).filter(|(a, b)| !a.is_nan() && !b.is_nan()).count();
            let corr = if n >= 2 && is_constant(&p, &t) { 0.0 } else { numerai_corr(&p, &t) };
            (!corr.is_nan()).then_some(EraScore { era, corr, n })
        })
        .collect()
}

/// The statistics Numerai reports over per-era scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean per-era score.
    pub mean: f64,
    /// Standard deviation (ddof 0).
    pub std: f64,
    /// mean / std.
    pub sharpe: f64,
    /// Largest fall of the cumulative score from its running peak (≥ 0).
    pub max_drawdown: f64,
    /// Share of eras with a positive score.
    pub share_positive: f64,
    /// Number of eras.
    pub eras: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mean {:.4}, std {:.4}, sharpe {:.2}, max drawdown {:.4}, {:.0}% eras positive, {} eras",
            self.mean,
            self.std,
            self.sharpe,
            self.max_drawdown,
            100.0 * self.share_positive,
            self.eras
        )
    }
}

/// Mean, std (ddof 0), sharpe, max drawdown `max(cummax(cumsum) − cumsum)`, share positive.
pub fn summarize(scores: &[f64]) -> Summary {
    let n = scores.len();
    let mean = nan_mean(scores);
    let std = std_dev(scores);
    let (mut cum, mut peak, mut drawdown) = (0.0f64, f64::NEG_INFINITY, 0.0f64);
    for s in scores {
        cum += s;
        peak = peak.max(cum);
        drawdown = drawdown.max(peak - cum);
    }
    Summary {
        mean,
        std,
        sharpe: mean / std,
        max_drawdown: drawdown,
        share_positive: scores.iter().filter(|s| **s > 0.0).count() as f64 / n.max(1) as f64,
        eras: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_keeps_ties_and_nan() {
        let r = rank(&[3.0, 1.0, f64::NAN, 3.0]);
        assert_eq!(r[1], 0.5 / 3.0);
        assert_eq!(r[0], (2.5 - 0.5) / 3.0);
        assert_eq!(r[0], r[3]);
        assert!(r[2].is_nan());
    }

    #[test]
    fn perfect_and_inverse_predictions() {
        let t = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5];
        let p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.3];
        assert!(numerai_corr(&p, &t) > 0.95);
        let q: Vec<f64> = p.iter().map(|x| -x).collect();
        assert!(numerai_corr(&q, &t) < -0.95);
    }

    #[test]
    fn drawdown_is_peak_to_trough() {
        let s = summarize(&[0.1, -0.05, -0.1, 0.2]);
        assert!((s.max_drawdown - 0.15).abs() < 1e-12);
        assert_eq!(s.eras, 4);
        assert_eq!(s.share_positive, 0.5);
    }

    #[test]
    fn neutralizing_removes_the_feature() {
        let f: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
        let v: Vec<f64> = f.iter().enumerate().map(|(i, x)| 2.0 * x + (i as f64 * 1.3).cos()).collect();
        let n = neutralize(&v, from_columns(v.len(), std::slice::from_ref(&f)).view(), 1.0);
        assert!(pearson(&n, &f).abs() < 1e-10);
    }
}
