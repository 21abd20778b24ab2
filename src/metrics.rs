//! Numerai scoring as pure functions, with numerai-tools' exact formulas: scores must equal
//! numerai-tools' to 1e-9 on the same rows (tests/metrics.rs and, for how Signals pays,
//! tests/metrics_parity.rs check this against its output).
//!
//! Missing values are NaN. Every function works on one era's values; [`per_era`] groups rows
//! into eras and [`summarize`] turns per-era scores into the statistics Numerai reports. The
//! Signals payout section (churn, turnover, neutral scores, alpha, contributions, cleaning, the
//! churn gate) follows numerai-tools 0.7.2's `signals.py` and `scoring.py`.

use std::collections::{HashMap, HashSet};

use nalgebra::DMatrix;
use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder};
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
/// `neutralizers` has one row per value of `v`, without NaN (see [`Projection`]). A constant `v`
/// comes back all NaN (numerai-tools sets zero-std columns to NaN before the fit).
pub fn neutralize(v: &[f64], neutralizers: ArrayView2<f64>, proportion: f64) -> Vec<f64> {
    if v.len() > 1 && !varies(v) {
        return vec![f64::NAN; v.len()];
    }
    Projection::new(neutralizers).residual(v, proportion)
}

/// Above this ratio of the smallest to the largest eigenvalue of `AᵀA` (cond(A) < 10⁴), every
/// singular value of `A` is far above numpy's cut (10⁻⁶ of the largest), so `lstsq` is the plain
/// least-squares fit and the normal equations (refined) give it to rounding.
const NORMAL_EQUATIONS_MIN_RATIO: f64 = 1e-8;

/// Refinement steps of the normal-equations fit: each multiplies the error by about
/// cond(AᵀA)·n·ε (≤ 10⁻⁴ under [`NORMAL_EQUATIONS_MIN_RATIO`]).
const REFINEMENT_STEPS: usize = 2;

/// The orthogonal projection on the columns of `A = [N, 1]` that numpy's
/// `lstsq(A, v, rcond=1e-6)` fits, factored once for any number of `v` over the same rows.
/// A well-conditioned `A` (the common case: 150 neutralizers over thousands of tickers) uses the
/// normal equations `AᵀA x = Aᵀv`, solved through the eigendecomposition of the k×k matrix `AᵀA`
/// and refined on the residual (O(n·k²) in one matrix product); otherwise (near rank
/// deficiency, fewer rows than columns) the SVD of `A` with numpy's cut, as `lstsq` does.
pub struct Projection {
    /// `[N, 1]`, n × k.
    a: Array2<f64>,
    fit: Fit,
}

enum Fit {
    /// AᵀA = V·diag(λ)·Vᵀ: V (k × k) and 1/λ.
    Normal(Array2<f64>, ndarray::Array1<f64>),
    /// The left singular vectors numpy keeps, n × r.
    Svd(Array2<f64>),
}

impl Projection {
    /// Factors `[N, 1]` for `neutralizers` (rows × columns, no NaN).
    pub fn new(neutralizers: ArrayView2<f64>) -> Self {
        let (n, k) = (neutralizers.nrows(), neutralizers.ncols() + 1);
        let mut a = Array2::<f64>::ones((n, k).f());
        a.slice_mut(ndarray::s![.., ..k - 1]).assign(&neutralizers);
        Self::of(a)
    }

    /// Factors `[N, 1]` for the neutralizer columns' values on `rows` (no NaN there).
    pub fn of_columns(columns: &[Vec<f64>], rows: &[usize]) -> Self {
        let mut values = Vec::with_capacity(rows.len() * (columns.len() + 1));
        for c in columns {
            values.extend(rows.iter().map(|&r| c[r]));
        }
        values.extend(std::iter::repeat_n(1.0, rows.len()));
        Self::of(Array2::from_shape_vec((rows.len(), columns.len() + 1).f(), values).expect("rows × columns values"))
    }

    fn of(a: Array2<f64>) -> Self {
        let fit = Self::normal(&a).unwrap_or_else(|| Fit::Svd(Self::kept_singular_vectors(&a)));
        Projection { a, fit }
    }

    /// The eigendecomposition of AᵀA when A is well conditioned (see [`NORMAL_EQUATIONS_MIN_RATIO`]).
    fn normal(a: &Array2<f64>) -> Option<Fit> {
        let (n, k) = a.dim();
        if n < k {
            return None;
        }
        let g = a.t().dot(a);
        let eig = nalgebra::SymmetricEigen::new(DMatrix::from_fn(k, k, |r, c| g[[r, c]]));
        let (lo, hi) = eig.eigenvalues.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &l| (lo.min(l), hi.max(l)));
        if !(hi > 0.0 && lo > NORMAL_EQUATIONS_MIN_RATIO * hi) {
            return None;
        }
        let v = Array2::from_shape_fn((k, k), |(r, c)| eig.eigenvectors[(r, c)]);
        Some(Fit::Normal(v, eig.eigenvalues.iter().map(|l| 1.0 / l).collect()))
    }

    /// numpy's `lstsq` through the SVD of A: the left singular vectors whose singular value is
    /// above rcond × the largest (nalgebra's SVD).
    fn kept_singular_vectors(a: &Array2<f64>) -> Array2<f64> {
        let (n, k) = a.dim();
        let svd = DMatrix::from_fn(n, k, |r, c| a[[r, c]]).svd(true, false);
        let (u, s) = (svd.u.expect("u computed"), &svd.singular_values);
        let cut = LSTSQ_RCOND * s.max();
        let kept: Vec<usize> = (0..s.len()).filter(|&j| s[j] > cut).collect();
        Array2::from_shape_fn((n, kept.len()).f(), |(r, j)| u[(r, kept[j])])
    }

    /// The fitted values `A · lstsq(A, v)`.
    pub fn fitted(&self, v: &[f64]) -> Vec<f64> {
        match &self.fit {
            // The projection of v on the kept left singular vectors.
            Fit::Svd(u) => times(u, &transposed_times(u, v)),
            Fit::Normal(eigenvectors, inverse) => {
                // x = (AᵀA)⁻¹ Aᵀ r = V (Vᵀ Aᵀ r / λ).
                let solve = |r: &[f64]| {
                    let y = eigenvectors.t().dot(&ndarray::Array1::from(transposed_times(&self.a, r))) * inverse;
                    eigenvectors.dot(&y)
                };
                let mut x = solve(v);
                for _ in 0..REFINEMENT_STEPS {
                    let fitted = times(&self.a, x.as_slice().expect("contiguous"));
                    let r: Vec<f64> = v.iter().zip(&fitted).map(|(a, b)| a - b).collect();
                    x += &solve(&r);
                }
                times(&self.a, x.as_slice().expect("contiguous"))
            }
        }
    }

    /// `v − proportion · fitted(v)`.
    pub fn residual(&self, v: &[f64], proportion: f64) -> Vec<f64> {
        v.iter().zip(self.fitted(v)).map(|(x, f)| x - proportion * f).collect()
    }
}

/// The columns of a column-major matrix, each contiguous.
fn columns_of(m: &Array2<f64>) -> impl Iterator<Item = &[f64]> {
    let data = m.as_slice_memory_order().expect("a column-major matrix");
    (0..m.ncols()).map(move |j| &data[j * m.nrows()..(j + 1) * m.nrows()])
}

/// `Mᵀ r` for a column-major M: one dot product per column.
fn transposed_times(m: &Array2<f64>, r: &[f64]) -> Vec<f64> {
    columns_of(m).map(|c| c.iter().zip(r).map(|(a, b)| a * b).sum()).collect()
}

/// `M x` for a column-major M: the columns summed with weights x.
fn times(m: &Array2<f64>, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; m.nrows()];
    for (c, &w) in columns_of(m).zip(x) {
        y.iter_mut().zip(c).for_each(|(y, c)| *y += w * c);
    }
    y
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
    /// mean / std; NaN (absent: `null` in JSON, "n/a" in text) under two eras or with no spread.
    #[serde(deserialize_with = "nan_if_null")]
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
            "mean {:.4}, std {:.4}, sharpe {}, max drawdown {:.4}, {:.0}% eras positive, {} eras",
            self.mean,
            self.std,
            self.sharpe_text(2),
            self.max_drawdown,
            100.0 * self.share_positive,
            self.eras
        )
    }
}

/// Reads a JSON `null` (how serde_json writes NaN) back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Summary {
    /// The sharpe with `digits` decimals, or "n/a" where it is absent (under two eras, no spread).
    pub fn sharpe_text(&self, digits: usize) -> String {
        if self.sharpe.is_finite() { format!("{:.digits$}", self.sharpe) } else { "n/a".into() }
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
        sharpe: if n > 1 && std > 0.0 { mean / std } else { f64::NAN },
        max_drawdown: drawdown,
        share_positive: scores.iter().filter(|s| **s > 0.0).count() as f64 / n.max(1) as f64,
        eras: n,
    }
}

/// [`summarize`] over the defined (non-NaN) scores; None when there are none: a statistic over
/// zero values is absent, never 0.
pub fn summarize_defined(scores: &[f64]) -> Option<Summary> {
    let defined: Vec<f64> = scores.iter().copied().filter(|s| !s.is_nan()).collect();
    (!defined.is_empty()).then(|| summarize(&defined))
}

// --- How Signals pays (numerai-tools 0.7.2 `signals.py` and `scoring.py`) -------------------
//
// numerai-tools takes pandas objects indexed by ticker; these functions take slices:
// * keyed functions ([`churn`], [`turnover`], [`neutral_churn`]) take each side's tickers and a
//   parallel slice of values; a NaN value is present in the series (it counts in its length)
//   but unusable, as in pandas. Tickers are unique within a side.
// * per-row functions take one era's inputs as parallel slices over the same rows, in any order;
//   NaN marks a row absent from that input, and a neutralizer row is absent when all its columns
//   are NaN (a row with only some NaN is present with a NaN in it).
// Like numerai-tools, every function first keeps the rows all its inputs have and refuses when
// an input would lose more than [`MAX_FILTERED_INDEX_RATIO`] of its rows. Where numerai-tools
// raises, these return NaN. Rows stay in input order (numerai-tools sorts by ticker), which only
// changes floating-point summation order.

/// numerai-tools' `DEFAULT_MAX_FILTERED_INDEX_RATIO`: the largest share of an input's rows that
/// aligning it with the others may drop.
pub const MAX_FILTERED_INDEX_RATIO: f64 = 0.2;

/// `neutral_churn_penalty`'s default threshold: neutral churn up to this keeps the full payout.
pub const NEUTRAL_CHURN_THRESHOLD: f64 = 0.1;

/// `neutral_churn_penalty`'s default scaling factor.
pub const NEUTRAL_CHURN_SCALING: f64 = 10.0;

/// Whether any value differs from the first (pandas `std() > 0` for values without NaN).
fn varies(values: &[f64]) -> bool {
    values.iter().any(|v| *v != values[0])
}

/// numerai-tools' overlap check: `kept / len >= 1 − MAX_FILTERED_INDEX_RATIO` (false for len 0).
fn keeps_enough(kept: usize, len: usize) -> bool {
    len > 0 && kept as f64 / len as f64 >= 1.0 - MAX_FILTERED_INDEX_RATIO
}

/// One per-row input as an alignment sees it: the rows it can use and its length.
struct Rows {
    usable: Vec<bool>,
    len: usize,
}

impl Rows {
    fn of(usable: Vec<bool>) -> Rows {
        let len = usable.iter().filter(|u| **u).count();
        Rows { usable, len }
    }
}

/// A series: usable and present where not NaN.
fn series_rows(values: &[f64]) -> Rows {
    Rows::of(values.iter().map(|v| !v.is_nan()).collect())
}

/// A neutralizer frame over `n` rows: usable where no column is NaN, present where some is not.
fn frame_rows(columns: &[Vec<f64>], n: usize) -> Rows {
    let usable = (0..n).map(|r| columns.iter().all(|c| !c[r].is_nan())).collect();
    let present = (0..n).filter(|&r| columns.is_empty() || columns.iter().any(|c| !c[r].is_nan())).count();
    Rows { usable, len: present }
}

/// numerai-tools `filter_sort_index_many` on per-row inputs: the rows every input can use, or
/// None when an input would lose more than [`MAX_FILTERED_INDEX_RATIO`] of its rows.
fn common_rows(inputs: &[Rows]) -> Option<Vec<usize>> {
    let n = inputs[0].usable.len();
    let rows: Vec<usize> = (0..n).filter(|&r| inputs.iter().all(|i| i.usable[r])).collect();
    inputs.iter().all(|i| keeps_enough(rows.len(), i.len)).then_some(rows)
}

fn pick(values: &[f64], rows: &[usize]) -> Vec<f64> {
    rows.iter().map(|&r| values[r]).collect()
}

fn pick_columns(columns: &[Vec<f64>], rows: &[usize]) -> Vec<Vec<f64>> {
    columns.iter().map(|c| pick(c, rows)).collect()
}

/// numerai-tools `filter_sort_index` on two keyed series: the value pairs of the tickers with a
/// non-NaN value on both sides, sorted by ticker; None when either side would lose more than
/// [`MAX_FILTERED_INDEX_RATIO`] of its rows (NaN values count in its length).
pub fn filter_sort_index<S: AsRef<str>>(
    ids1: &[S],
    s1: &[f64],
    ids2: &[S],
    s2: &[f64],
) -> Option<(Vec<f64>, Vec<f64>)> {
    let other: HashMap<&str, f64> =
        ids2.iter().zip(s2).filter(|(_, v)| !v.is_nan()).map(|(id, v)| (id.as_ref(), *v)).collect();
    let mut pairs: Vec<(&str, f64, f64)> = ids1
        .iter()
        .zip(s1)
        .filter(|(_, v)| !v.is_nan())
        .filter_map(|(id, v)| other.get(id.as_ref()).map(|w| (id.as_ref(), *v, *w)))
        .collect();
    if !keeps_enough(pairs.len(), s1.len()) || !keeps_enough(pairs.len(), s2.len()) {
        return None;
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    Some((pairs.iter().map(|p| p.1).collect(), pairs.iter().map(|p| p.2).collect()))
}

/// numerai-tools `signals.churn`: 1 − Spearman of two keyed series on their common tickers; with
/// `top_bottom` = Some(n > 0), 1 − the mean share of one side's top n and bottom n tickers that are
/// also the other's. NaN where numerai-tools raises (too little overlap, a constant side).
pub fn churn<S: AsRef<str>>(ids1: &[S], s1: &[f64], ids2: &[S], s2: &[f64], top_bottom: Option<usize>) -> f64 {
    if let Some(n) = top_bottom.filter(|&n| n > 0) {
        return top_bottom_churn(ids1, s1, ids2, s2, n);
    }
    match filter_sort_index(ids1, s1, ids2, s2) {
        Some((a, b)) if varies(&a) && varies(&b) => 1.0 - pearson(&rank(&a), &rank(&b)),
        _ => f64::NAN,
    }
}

/// Churn of the top and bottom `n` (numerai-tools' `top_bottom` branch, on all rows as given).
fn top_bottom_churn<S: AsRef<str>>(ids1: &[S], s1: &[f64], ids2: &[S], s2: &[f64], n: usize) -> f64 {
    let (top1, bottom1) = top_bottom_ids(ids1, s1, n);
    let (top2, bottom2) = top_bottom_ids(ids2, s2, n);
    let share = |a: &HashSet<&str>, b: &HashSet<&str>| a.intersection(b).count() as f64 / n as f64;
    1.0 - (share(&top1, &top2) + share(&bottom1, &bottom2)) / 2.0
}

/// Tickers of the `n` largest and `n` smallest values: numpy's stable argsort, NaN sorted last
/// (so counted among the largest), ties in input order.
fn top_bottom_ids<'a, S: AsRef<str>>(ids: &'a [S], values: &[f64], n: usize) -> (HashSet<&'a str>, HashSet<&'a str>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (values[a], values[b]);
        x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
    });
    let k = n.min(order.len());
    let set = |rows: &[usize]| rows.iter().map(|&r| ids[r].as_ref()).collect::<HashSet<&str>>();
    (set(&order[order.len() - k..]), set(&order[..k]))
}

/// numerai-tools `signals.turnover`: ½ Σ |s1 − s2| over the common tickers of two keyed weight
/// series; NaN when either side would lose more than [`MAX_FILTERED_INDEX_RATIO`] of its rows.
pub fn turnover<S: AsRef<str>>(ids1: &[S], s1: &[f64], ids2: &[S], s2: &[f64]) -> f64 {
    filter_sort_index(ids1, s1, ids2, s2)
        .map_or(f64::NAN, |(a, b)| a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0)
}

/// numerai-tools `signals.neutral_churn`: each era's signal tie-kept ranked, Φ⁻¹ and neutralised
/// to that era's neutralizers (columns parallel to its tickers), then [`churn`] of the two.
pub fn neutral_churn<S: AsRef<str>>(
    ids1: &[S],
    s1: &[f64],
    neutralizers1: &[Vec<f64>],
    ids2: &[S],
    s2: &[f64],
    neutralizers2: &[Vec<f64>],
) -> f64 {
    match (neutral_signal(ids1, s1, neutralizers1), neutral_signal(ids2, s2, neutralizers2)) {
        (Some((i1, v1)), Some((i2, v2))) => churn(&i1, &v1, &i2, &v2, None),
        _ => f64::NAN,
    }
}

/// numerai-tools `signals._neutralize_signal`: the tickers kept and their neutral values.
fn neutral_signal<'a, S: AsRef<str>>(
    ids: &'a [S],
    s: &[f64],
    neutralizers: &[Vec<f64>],
) -> Option<(Vec<&'a str>, Vec<f64>)> {
    let rows = common_rows(&[series_rows(s), frame_rows(neutralizers, s.len())])?;
    let neutral = neutral_gaussian(&pick(s, &rows), &pick_columns(neutralizers, &rows));
    Some((rows.iter().map(|&r| ids[r].as_ref()).collect(), neutral))
}

/// Tie-kept rank → Φ⁻¹ → [`neutralize`] (proportion 1).
fn neutral_gaussian(values: &[f64], neutralizers: &[Vec<f64>]) -> Vec<f64> {
    neutral_with(&Projection::of_columns(neutralizers, &(0..values.len()).collect::<Vec<_>>()), values)
}

/// Tie-kept rank → Φ⁻¹ → the residual of `projection` (all NaN when Φ⁻¹ is constant, as
/// [`neutralize`]).
fn neutral_with(projection: &Projection, values: &[f64]) -> Vec<f64> {
    let g = gaussian(&rank(values));
    if g.len() > 1 && !varies(&g) {
        return vec![f64::NAN; g.len()];
    }
    projection.residual(&g, 1.0)
}

/// numerai-tools `signals.neutral_churn_penalty`: the share of a positive payout kept,
/// `min(1, 2 / (1 + exp(scaling · (x − threshold))))`; NaN for arguments numerai-tools refuses
/// (x or threshold outside [0, 2], scaling not positive and finite).
pub fn neutral_churn_penalty(neutral_churn: f64, threshold: f64, scaling_factor: f64) -> f64 {
    let valid = (0.0..=2.0).contains(&neutral_churn)
        && (0.0..=2.0).contains(&threshold)
        && scaling_factor.is_finite()
        && scaling_factor > 0.0;
    if !valid {
        return f64::NAN;
    }
    if neutral_churn <= threshold {
        return 1.0;
    }
    let decay = (-scaling_factor * (neutral_churn - threshold)).exp();
    2.0 * decay / (1.0 + decay)
}

/// numerai-tools `submissions.clean_submission(rank_and_fill=True)`: the submission joined to the
/// universe (tickers outside it dropped, the first row of a repeated ticker kept), tie-kept
/// ranked, missing or NaN filled with 0.5. Values are parallel to `universe` (numerai-tools sorts
/// them by ticker); universe tickers must be unique.
pub fn clean_submission<U: AsRef<str>, S: AsRef<str>>(universe: &[U], ids: &[S], signal: &[f64]) -> Vec<f64> {
    let mut first: HashMap<&str, f64> = HashMap::new();
    for (id, v) in ids.iter().zip(signal) {
        first.entry(id.as_ref()).or_insert(*v);
    }
    let joined: Vec<f64> = universe.iter().map(|u| first.get(u.as_ref()).copied().unwrap_or(f64::NAN)).collect();
    rank(&joined).into_iter().map(|r| if r.is_nan() { 0.5 } else { r }).collect()
}

/// numerai-tools `scoring.neutral_correlation` for one era: centre the targets, keep the rows all
/// inputs have, tie-kept rank → Φ⁻¹ → neutralise the predictions, Pearson with the targets (no
/// 1.5 power).
pub fn neutral_correlation(predictions: &[f64], neutralizers: &[Vec<f64>], targets: &[f64]) -> f64 {
    let t = center(targets);
    let inputs = [series_rows(&t), series_rows(predictions), frame_rows(neutralizers, predictions.len())];
    let Some(rows) = common_rows(&inputs) else { return f64::NAN };
    pearson(&pick(&t, &rows), &neutral_with(&Projection::of_columns(neutralizers, &rows), &pick(predictions, &rows)))
}

/// numerai-tools `scoring.generate_neutralized_weights` for one era: s = tie-kept rank → Φ⁻¹ →
/// ^1.5 of the predictions, w = (s − N·Nᵀ(sw∘s))∘sw on the rows with a prediction, a neutralizer
/// row and a sample weight (NaN elsewhere); `center_and_normalize` makes it (w − mean) / Σ|w − mean|.
/// All NaN where numerai-tools raises (a neutralizer row with some NaN, too little overlap).
pub fn generate_neutralized_weights(
    predictions: &[f64],
    neutralizers: &[Vec<f64>],
    sample_weights: &[f64],
    center_and_normalize: bool,
) -> Vec<f64> {
    let mut out = vec![f64::NAN; predictions.len()];
    if let Some((rows, w)) = weighted_rows(predictions, neutralizers, sample_weights, center_and_normalize) {
        for (&r, v) in rows.iter().zip(w) {
            out[r] = v;
        }
    }
    out
}

/// [`generate_neutralized_weights`] as the rows it keeps and their weights; None where it raises.
fn weighted_rows(
    predictions: &[f64],
    neutralizers: &[Vec<f64>],
    sample_weights: &[f64],
    center_and_normalize: bool,
) -> Option<(Vec<usize>, Vec<f64>)> {
    let frame = frame_rows(neutralizers, predictions.len());
    if frame.usable.iter().filter(|u| **u).count() != frame.len {
        return None;
    }
    let s = power(&gaussian(&rank(predictions)), 1.5);
    let rows = common_rows(&[series_rows(&s), frame, series_rows(sample_weights)])?;
    let w = neutral_weights(&pick(&s, &rows), &pick_columns(neutralizers, &rows), &pick(sample_weights, &rows));
    Some((rows, if center_and_normalize { weight_normalize(&center(&w)) } else { w }))
}

/// `(s − N·Nᵀ(sw∘s))∘sw` on aligned rows.
fn neutral_weights(s: &[f64], neutralizers: &[Vec<f64>], sample_weights: &[f64]) -> Vec<f64> {
    let weighted: Vec<f64> = sample_weights.iter().zip(s).map(|(w, x)| w * x).collect();
    let exposures: Vec<f64> = neutralizers.iter().map(|c| c.iter().zip(&weighted).map(|(a, b)| a * b).sum()).collect();
    let fitted = |r: usize| neutralizers.iter().zip(&exposures).map(|(c, e)| c[r] * e).sum::<f64>();
    (0..s.len()).map(|r| (s[r] - fitted(r)) * sample_weights[r]).collect()
}

/// Scales values so their absolute values sum to 1 (numerai-tools `weight_normalize`).
fn weight_normalize(values: &[f64]) -> Vec<f64> {
    let total: f64 = values.iter().map(|v| v.abs()).sum();
    values.iter().map(|v| v / total).collect()
}

/// numerai-tools `scoring.alpha` for one era: [`generate_neutralized_weights`] of the predictions
/// on the rows with a target, dotted with the centred targets, divided by the number of those
/// rows. NaN also when such a row has no neutralizer row or sample weight (numerai-tools cannot
/// align the dot product and raises).
pub fn alpha(predictions: &[f64], neutralizers: &[Vec<f64>], sample_weights: &[f64], targets: &[f64]) -> f64 {
    let t = center(targets);
    let Some(rows) = common_rows(&[series_rows(predictions), series_rows(&t)]) else { return f64::NAN };
    let mut scored = vec![f64::NAN; predictions.len()];
    for &r in &rows {
        scored[r] = predictions[r];
    }
    let w = generate_neutralized_weights(&scored, neutralizers, sample_weights, false);
    rows.iter().map(|&r| w[r] * t[r]).sum::<f64>() / rows.len() as f64
}

/// numerai-tools `orthogonalize`: `v − u (v·u)/(u·u)`.
fn orthogonalize(v: &[f64], u: &[f64]) -> Vec<f64> {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let k = dot(v, u) / dot(u, u);
    v.iter().zip(u).map(|(x, y)| x - y * k).collect()
}

/// numerai-tools `contribution_scores`: targets all within [0, 1] scaled by 4, centred, dotted
/// with the orthogonalised predictions, over the row count.
fn contribution_score(neutral: &[f64], targets: &[f64]) -> f64 {
    let scale = if targets.iter().all(|t| (0.0..=1.0).contains(t)) { 4.0 } else { 1.0 };
    let t = center(&targets.iter().map(|t| t * scale).collect::<Vec<_>>());
    t.iter().zip(neutral).map(|(a, b)| a * b).sum::<f64>() / t.len() as f64
}

/// numerai-tools `scoring.correlation_contribution` for one era against a meta-model column:
/// tie-kept rank → Φ⁻¹ the predictions and the meta model on the rows all three have,
/// orthogonalise the predictions to the meta model, dot with the centred targets (×4 when within
/// [0, 1]) over the row count. NaN for a constant meta model.
pub fn correlation_contribution(predictions: &[f64], meta_model: &[f64], targets: &[f64]) -> f64 {
    let Some(both) = common_rows(&[series_rows(meta_model), series_rows(predictions)]) else { return f64::NAN };
    let mut in_both = vec![false; predictions.len()];
    both.iter().for_each(|&r| in_both[r] = true);
    let Some(rows) = common_rows(&[series_rows(targets), Rows::of(in_both)]) else { return f64::NAN };
    let p = gaussian(&rank(&pick(predictions, &rows)));
    let m = gaussian(&rank(&pick(meta_model, &rows)));
    contribution_score(&orthogonalize(&p, &m), &pick(targets, &rows))
}

/// numerai-tools `scoring.neutral_contribution` for one era: [`correlation_contribution`] with the
/// predictions and the meta model each neutralised to the neutralizers after Φ⁻¹, on the rows
/// all four inputs have.
pub fn neutral_contribution(
    predictions: &[f64],
    meta_model: &[f64],
    neutralizers: &[Vec<f64>],
    targets: &[f64],
) -> f64 {
    let frame = frame_rows(neutralizers, predictions.len());
    let inputs = [series_rows(targets), series_rows(predictions), series_rows(meta_model), frame];
    let Some(rows) = common_rows(&inputs) else { return f64::NAN };
    let projection = Projection::of_columns(neutralizers, &rows);
    let (p, m) =
        (neutral_with(&projection, &pick(predictions, &rows)), neutral_with(&projection, &pick(meta_model, &rows)));
    contribution_score(&orthogonalize(&p, &m), &pick(targets, &rows))
}

/// One era's submission as numerai-tools' churn gate takes it: the submission keyed by ticker,
/// and the era's universe (the sample weights' tickers) with its sample weights and neutralizer
/// columns parallel to it (all NaN on a row the neutralizer frame lacks).
#[derive(Debug, Clone, Copy)]
pub struct SubmissionEra<'a> {
    /// Submitted tickers.
    pub ids: &'a [String],
    /// Submitted signal, parallel to `ids`.
    pub signal: &'a [f64],
    /// The era's universe: the sample weights' tickers (unique).
    pub universe: &'a [String],
    /// Sample weights, parallel to `universe`.
    pub sample_weights: &'a [f64],
    /// Neutralizer columns, parallel to `universe`.
    pub neutralizers: &'a [Vec<f64>],
}

/// Churn at or above this zeroes a stake (numerai-tools `calculate_max_churn_and_turnover`).
pub const CHURN_LIMIT: f64 = 0.15;
/// Turnover at or above this zeroes a stake.
pub const TURNOVER_LIMIT: f64 = 0.25;

/// numerai-tools' fewest submitted universe tickers (`SIGNALS_MIN_TICKERS`).
pub const SIGNALS_MIN_TICKERS: usize = 100;

/// numerai-tools `signals._clean_signal_submission`: `validate_submission_signals` (no repeated
/// universe ticker, at least [`SIGNALS_MIN_TICKERS`] of them, no NaN, values within [0, 1] up to
/// numpy's `isclose`, not constant), then [`clean_submission`] on the universe; None if refused.
pub fn validate_and_clean(era: &SubmissionEra) -> Option<Vec<f64>> {
    let universe: HashSet<&str> = era.universe.iter().map(|u| u.as_str()).collect();
    let live: Vec<usize> = (0..era.ids.len()).filter(|&i| universe.contains(era.ids[i].as_str())).collect();
    let distinct: HashSet<&str> = live.iter().map(|&i| era.ids[i].as_str()).collect();
    let values = pick(era.signal, &live);
    let valid = distinct.len() == live.len() && live.len() >= SIGNALS_MIN_TICKERS && valid_values(&values);
    valid.then(|| clean_submission(era.universe, &live.iter().map(|&i| &era.ids[i]).collect::<Vec<_>>(), &values))
}

/// numerai-tools `validate_values`: no NaN, min ≥ 0 or ≈ 0, max ≤ 1 or ≈ 1, std (ddof 1) not ≈ 0.
fn valid_values(values: &[f64]) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 + 1e-5 * b.abs();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    !values.iter().any(|v| v.is_nan())
        && (min >= 0.0 || close(min, 0.0))
        && (max <= 1.0 || close(max, 1.0))
        && !close(0.0, std)
}

/// The universe tickers and centred, normalised neutralized weights of a cleaned submission.
fn gate_weights<'a>(era: &SubmissionEra<'a>, cleaned: &[f64]) -> Option<(Vec<&'a str>, Vec<f64>)> {
    let (rows, w) = weighted_rows(cleaned, era.neutralizers, era.sample_weights, true)?;
    Some((rows.iter().map(|&r| era.universe[r].as_str()).collect(), w))
}

/// numerai-tools `signals.calculate_max_churn_and_turnover`: the largest |churn| of the current
/// cleaned submission against each previous one and the largest |turnover| of their centred,
/// normalised neutralized weights, skipping a previous one that overlaps too little; 1.0 when none
/// is left. None where numerai-tools raises (a refused submission, neutralizers or weights that
/// miss too many rows, a cleaned submission constant on the common tickers).
pub fn max_churn_and_turnover(current: &SubmissionEra, previous: &[SubmissionEra]) -> Option<(f64, f64)> {
    let cur = validate_and_clean(current)?;
    let (cur_ids, cur_w) = gate_weights(current, &cur)?;
    let (mut churns, mut turnovers) = (Vec::new(), Vec::new());
    for prev in previous {
        let p = validate_and_clean(prev)?;
        let (prev_ids, prev_w) = gate_weights(prev, &p)?;
        let Some((a, b)) = filter_sort_index(current.universe, &cur, prev.universe, &p) else { continue };
        if !varies(&a) || !varies(&b) {
            return None;
        }
        let t = turnover(&cur_ids, &cur_w, &prev_ids, &prev_w);
        if t.is_nan() {
            continue;
        }
        churns.push((1.0 - pearson(&rank(&a), &rank(&b))).abs());
        turnovers.push(t.abs());
    }
    let max_or_one = |v: &[f64]| v.iter().copied().reduce(f64::max).unwrap_or(1.0);
    Some((max_or_one(&churns), max_or_one(&turnovers)))
}

/// numerai-tools `signals.calculate_mean_neutral_churn`: the mean [`neutral_churn`] of the current
/// cleaned submission against each previous one (each neutralised to its own era), skipping those
/// it cannot compare; 1.0 when none is left. None where numerai-tools raises.
pub fn mean_neutral_churn(current: &SubmissionEra, previous: &[SubmissionEra]) -> Option<f64> {
    let cur = validate_and_clean(current)?;
    let (cur_ids, cur_n) = neutral_signal(current.universe, &cur, current.neutralizers)?;
    if cur_n.iter().any(|v| v.is_nan()) || !varies(&cur_n) {
        return None;
    }
    let mut churns = Vec::new();
    for prev in previous {
        let p = validate_and_clean(prev)?;
        let (prev_ids, prev_n) = neutral_signal(prev.universe, &p, prev.neutralizers)?;
        let c = churn(&cur_ids, &cur_n, &prev_ids, &prev_n, None);
        if !c.is_nan() {
            churns.push(c);
        }
    }
    Some(if churns.is_empty() { 1.0 } else { churns.iter().sum::<f64>() / churns.len() as f64 })
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
    fn a_sharpe_over_one_era_or_no_spread_is_absent() {
        let one = summarize(&[0.03]);
        assert!(one.sharpe.is_nan() && one.to_string().contains("sharpe n/a"), "{one}");
        let json = serde_json::to_value(one).unwrap();
        assert_eq!(json["sharpe"], serde_json::Value::Null);
        assert!(serde_json::from_value::<Summary>(json).unwrap().sharpe.is_nan());
        assert!(summarize(&[0.02, 0.02]).sharpe.is_nan());
        assert_eq!(summarize(&[0.01, 0.03]).sharpe_text(2), "2.00");
    }

    #[test]
    fn churn_is_zero_for_a_reordered_copy_and_two_for_a_reversed_one() {
        let ids = ["A", "B", "C", "D", "E"];
        let s = [0.1, 0.4, 0.2, 0.9, 0.5];
        let (rev_ids, rev): (Vec<&str>, Vec<f64>) = ids.iter().rev().zip(s.iter().rev()).map(|(i, v)| (*i, *v)).unzip();
        assert!(churn(&ids, &s, &rev_ids, &rev, None).abs() < 1e-12);
        let flipped: Vec<f64> = s.iter().map(|v| 1.0 - v).collect();
        assert!((churn(&ids, &s, &ids, &flipped, None) - 2.0).abs() < 1e-12);
        assert_eq!(churn(&ids, &s, &ids, &flipped, Some(2)), 1.0);
        assert!(churn(&ids, &s, &ids, &[0.5; 5], None).is_nan(), "a constant side has no churn");
        assert!(churn(&ids, &s, &ids[..3], &s[..3], None).is_nan(), "too little overlap");
    }

    #[test]
    fn clean_submission_ranks_over_the_universe_and_fills_the_middle() {
        let cleaned = clean_submission(&["A", "B", "C", "D"], &["C", "A", "X"], &[0.9, 0.2, 0.5]);
        assert_eq!(cleaned, vec![0.25, 0.5, 0.75, 0.5]);
    }

    #[test]
    fn neutral_churn_penalty_keeps_low_churn_and_halves_at_ln3() {
        assert_eq!(neutral_churn_penalty(0.1, NEUTRAL_CHURN_THRESHOLD, NEUTRAL_CHURN_SCALING), 1.0);
        let x = 0.1 + 3f64.ln() / 10.0; // 2 / (1 + 3) = 0.5
        assert!((neutral_churn_penalty(x, NEUTRAL_CHURN_THRESHOLD, NEUTRAL_CHURN_SCALING) - 0.5).abs() < 1e-12);
        assert!(neutral_churn_penalty(-0.1, 0.1, 10.0).is_nan());
    }

    /// Deterministic values in [-0.5, 0.5).
    fn noise(i: usize, salt: u64) -> f64 {
        let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(salt.wrapping_mul(1442695040888963407));
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    /// numpy's `lstsq(rcond=1e-6)` fit through the SVD of `[N, 1]` (the reference).
    fn svd_fit(columns: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
        let (n, k) = (v.len(), columns.len() + 1);
        let a = DMatrix::from_fn(n, k, |r, c| if c + 1 < k { columns[c][r] } else { 1.0 });
        let svd = a.svd(true, false);
        let (u, s) = (svd.u.unwrap(), &svd.singular_values);
        let mut fitted = vec![0.0; n];
        for j in (0..s.len()).filter(|&j| s[j] > LSTSQ_RCOND * s.max()) {
            let dot: f64 = (0..n).map(|r| u[(r, j)] * v[r]).sum();
            fitted.iter_mut().enumerate().for_each(|(r, f)| *f += u[(r, j)] * dot);
        }
        fitted
    }

    fn assert_close(got: &[f64], want: &[f64], what: &str) {
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-11, "{what}: largest difference {worst:e}");
    }

    #[test]
    fn the_normal_equations_fit_150_neutralizers_as_lstsq_and_a_collinear_set_takes_the_svd() {
        let (n, k) = (1200, 150);
        let mut columns: Vec<Vec<f64>> = (0..k).map(|j| (0..n).map(|i| noise(i, j as u64 + 1)).collect()).collect();
        let v: Vec<f64> = (0..n).map(|i| 0.3 * columns[0][i] - columns[7][i] + noise(i, 999)).collect();
        let rows: Vec<usize> = (0..n).collect();
        let fast = Projection::of_columns(&columns, &rows);
        assert!(matches!(fast.fit, Fit::Normal(..)), "150 independent neutralizers take the normal equations");
        assert_close(&fast.fitted(&v), &svd_fit(&columns, &v), "normal equations vs SVD");
        assert_close(
            &Projection::new(from_columns(n, &columns).view()).fitted(&v),
            &fast.fitted(&v),
            "new vs of_columns",
        );
        // A column twice another: lstsq's cut drops it, and the fit is that of the others.
        columns.push(columns[3].iter().map(|x| 2.0 * x).collect());
        let collinear = Projection::of_columns(&columns, &rows);
        assert!(matches!(collinear.fit, Fit::Svd(_)), "a rank-deficient set takes the SVD");
        assert_close(&collinear.fitted(&v), &fast.fitted(&v), "collinear column dropped");
        // Fewer rows than columns: the SVD, fitting v exactly.
        let few: Vec<usize> = (0..100).collect();
        let wide = Projection::of_columns(&columns, &few);
        assert!(matches!(wide.fit, Fit::Svd(_)));
        assert_close(&wide.fitted(&v[..100]), &v[..100], "under-determined fit");
    }

    #[test]
    fn neutralizing_removes_the_feature() {
        let f: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
        let v: Vec<f64> = f.iter().enumerate().map(|(i, x)| 2.0 * x + (i as f64 * 1.3).cos()).collect();
        let n = neutralize(&v, from_columns(v.len(), std::slice::from_ref(&f)).view(), 1.0);
        assert!(pearson(&n, &f).abs() < 1e-10);
    }
}
