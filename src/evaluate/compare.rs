//! `signalkit compare`: several `evaluate` reports on the eras they all score — each run's mean
//! corr and sharpe with a bootstrap interval, each pair's per-era difference with its standard
//! error, t and p, and a warning that grows with the number of variants tried.
//!
//! Eras overlap (a 20-day target spans 4 weekly eras), so neighbouring eras' scores are not
//! independent: the intervals resample blocks of eras (a circular block bootstrap), and the
//! plain paired t-test, which assumes independent eras, is labelled as such.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{Error, Result};
use crate::metrics::{self, EraScore};
use crate::report::{era_text, lines_plot, markdown_table, write_json};

/// The level of every interval and test.
pub const LEVEL: f64 = 0.95;

/// What `compare` needs.
#[derive(Debug, Clone)]
pub struct CompareArgs {
    /// Run folders, evaluate folders or report.json files, each optionally `NAME=PATH`.
    pub inputs: Vec<String>,
    /// Output folder: compare.json, compare.md, plots/cumulative_difference.png.
    pub out: PathBuf,
    /// Bootstrap settings.
    pub bootstrap: Bootstrap,
}

/// How the intervals are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Resamples drawn.
    pub resamples: usize,
    /// Consecutive eras per block (1: eras drawn one by one, as if independent).
    pub block_eras: usize,
    /// Seed of the resampling (ChaCha8): the same seed gives the same intervals.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 10_000, block_eras: 4, seed: 0 }
    }
}

/// One run's scores on the shared eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunScores {
    /// The run's name (its folder, or the NAME of `NAME=PATH`).
    pub name: String,
    /// The report read.
    pub report: String,
    /// Eras the report scores that not every other report does (left out here).
    pub eras_left_out: usize,
    /// Mean per-era numerai_corr.
    pub mean: f64,
    /// Its bootstrap interval (absent when there is one era).
    pub mean_interval: Option<[f64; 2]>,
    /// Standard deviation of the per-era corr (ddof 0, as Numerai's sharpe).
    pub std: f64,
    /// mean / std (absent when std is 0).
    pub sharpe: Option<f64>,
    /// Its bootstrap interval (absent when the sharpe is).
    pub sharpe_interval: Option<[f64; 2]>,
    /// Share of eras with a positive corr.
    pub share_positive: f64,
    /// Largest fall of the cumulative corr from its peak.
    pub max_drawdown: f64,
}

/// The per-era difference `b − a` of two runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairDifference {
    /// The first run (subtracted).
    pub a: String,
    /// The second run.
    pub b: String,
    /// Eras compared.
    pub eras: usize,
    /// Mean of `b − a` per era.
    pub mean: f64,
    /// Standard deviation of the differences (ddof 1; absent under two eras).
    pub std: Option<f64>,
    /// std / √eras (absent under two eras).
    pub standard_error: Option<f64>,
    /// mean / standard error (absent when that is absent or 0).
    pub t: Option<f64>,
    /// Two-sided p-value of `t` under Student's t with eras − 1 degrees of freedom (a paired
    /// t-test; it treats eras as independent, which overlapping targets are not).
    pub p_value: Option<f64>,
    /// `p_value` times the number of pairs, at most 1 (Bonferroni): the p-value to read when
    /// several pairs are compared.
    pub p_adjusted: Option<f64>,
    /// Share of eras where `b` scores above `a`.
    pub share_b_better: f64,
    /// Eras where the two score exactly the same.
    pub ties: usize,
    /// Block-bootstrap interval of the mean difference (blocks of consecutive eras, so the
    /// overlap of neighbouring eras' targets is kept), at the level 1 − (1 − LEVEL) / pairs;
    /// absent under two eras.
    #[serde(default)]
    pub mean_interval: Option<[f64; 2]>,
    /// Whether the difference is distinguishable from noise: `p_adjusted` below 1 − LEVEL and,
    /// when computed, `mean_interval` clear of 0.
    pub distinguishable: bool,
}

/// One shared era: each run's corr, in run order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EraRow {
    /// The era (YYYYMMDD).
    pub era: i32,
    /// numerai_corr of each run.
    pub corr: Vec<f64>,
}

/// What `compare` wrote to compare.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The target every report scored.
    pub target: String,
    /// Each run on the shared eras.
    pub runs: Vec<RunScores>,
    /// Every pair (a before b in the order given).
    pub pairs: Vec<PairDifference>,
    /// Variants compared and what that means for the best of them.
    pub warning: String,
    /// How the intervals were drawn.
    pub bootstrap: Bootstrap,
    /// Interval level.
    pub level: f64,
    /// The shared eras, with each run's corr.
    pub per_era: Vec<EraRow>,
}

/// What compare reads of an evaluate report.json (its other fields may come and go).
#[derive(Deserialize)]
struct Report {
    target: String,
    #[serde(default)]
    in_sample_included: bool,
    per_era: Vec<EraScore>,
    #[serde(default)]
    smoothing: Vec<SmoothedIn>,
}

/// What compare reads of one `evaluate --smooth` weight.
#[derive(Deserialize)]
struct SmoothedIn {
    weight: f64,
    #[serde(default)]
    per_era: Vec<EraScore>,
}

/// One input: its name, report path and report.
struct Input {
    name: String,
    path: PathBuf,
    report: Report,
}

/// Compares the reports on their shared eras; writes compare.json, compare.md and
/// plots/cumulative_difference.png into `args.out`.
pub fn compare(args: &CompareArgs) -> Result<Comparison> {
    if args.inputs.len() < 2 {
        return Err(Error::Config(format!(
            "compare needs at least two runs or reports, got {}: pass two or more run folders or report.json files",
            args.inputs.len()
        )));
    }
    let _out = crate::data::lock::lock_folder(&args.out, "compare", "--out")?;
    let inputs: Vec<Input> = args.inputs.iter().map(|s| read_input(s)).collect::<Result<_>>()?;
    let inputs = unique_names(inputs);
    same_target(&inputs)?;
    let eras = shared_eras(&inputs)?;
    let per_era: Vec<EraRow> =
        eras.iter().map(|&era| EraRow { era, corr: inputs.iter().map(|i| corr_at(i, era)).collect() }).collect();
    let series: Vec<Vec<f64>> = (0..inputs.len()).map(|k| per_era.iter().map(|e| e.corr[k]).collect()).collect();
    let runs = inputs.iter().zip(&series).map(|(i, s)| run_scores(i, s, eras.len(), &args.bootstrap)).collect();
    let n_pairs = inputs.len() * (inputs.len() - 1) / 2;
    let mut pairs = Vec::with_capacity(n_pairs);
    for a in 0..inputs.len() {
        for b in a + 1..inputs.len() {
            let p = pair_difference(&inputs[a].name, &inputs[b].name, &series[a], &series[b], n_pairs);
            pairs.push(with_block_interval(p, &series[a], &series[b], &args.bootstrap, n_pairs));
        }
    }
    let c = Comparison {
        target: inputs[0].report.target.clone(),
        runs,
        pairs,
        warning: variants_warning(inputs.len(), n_pairs),
        bootstrap: args.bootstrap,
        level: LEVEL,
        per_era,
    };
    write_outputs(&args.out, &c)?;
    Ok(c)
}

/// `NAME=PATH` or `PATH`, each optionally ending `@smooth=A`: reads the report of a run folder,
/// an evaluate folder or a report file (with `@smooth=A`, the per-era corr of its `evaluate
/// --smooth` weight A in place of the raw one).
fn read_input(arg: &str) -> Result<Input> {
    let (label, path) = match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') && !name.contains('@') => {
            (Some(name.to_string()), path)
        }
        _ => (None, arg),
    };
    let (path, smooth) = match path.rsplit_once("@smooth=") {
        Some((p, a)) => (p, Some(a)),
        None => (path, None),
    };
    let path = report_path(Path::new(path))?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            &path,
            format!("not a report.json written by signalkit evaluate ({e}): pass evaluate's report.json"),
        )
    })?;
    if report.in_sample_included {
        return Err(Error::input(
            &path,
            "this report scores every era, in-sample ones included (evaluate had neither --model nor a `split` \
             column), so its figures overstate what the model would earn and comparing them says nothing: \
             re-run evaluate with --model MODEL_DIR (or on train's predictions.parquet) and compare that report",
        ));
    }
    let mut report = report;
    if let Some(a) = smooth {
        report.per_era = smoothed_per_era(&path, &report, a)?;
    }
    let name = label.unwrap_or_else(|| run_name(&path) + &smooth.map(|a| format!("@smooth={a}")).unwrap_or_default());
    Ok(Input { name, path, report })
}

/// The per-era corr of smoothing weight `a` in `report`, or an error naming the weights it has.
fn smoothed_per_era(path: &Path, report: &Report, a: &str) -> Result<Vec<EraScore>> {
    let weight: f64 = a.parse().map_err(|_| {
        Error::input(
            path,
            format!("@smooth={a}: not a number; write e.g. RUN@smooth=0.7 (a weight from evaluate --smooth)"),
        )
    })?;
    let have: Vec<String> = report.smoothing.iter().map(|s| s.weight.to_string()).collect();
    match report.smoothing.iter().find(|s| (s.weight - weight).abs() < 1e-12) {
        Some(s) if !s.per_era.is_empty() => Ok(s.per_era.clone()),
        _ => Err(Error::input(
            path,
            format!(
                "@smooth={a}: this report has no per-era scores for smoothing weight {weight} (it has: {}); \
                 run `signalkit evaluate … --smooth {weight}` into this folder first",
                if have.is_empty() { "none".to_string() } else { have.join(", ") }
            ),
        )),
    }
}

/// The report inside a run folder (evaluate/report.json), an evaluate folder (report.json), or
/// the file itself.
fn report_path(p: &Path) -> Result<PathBuf> {
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    for inside in ["evaluate/report.json", "report.json"] {
        if p.join(inside).is_file() {
            return Ok(p.join(inside));
        }
    }
    Err(Error::input(
        p,
        "no evaluate report here: pass a run folder (holding evaluate/report.json), an evaluate --out folder, \
         or a report.json",
    ))
}

/// A run's name from its report's path: `runs/frozen/evaluate/report.json` → `frozen`.
fn run_name(report: &Path) -> String {
    let folder = report.parent().unwrap_or(Path::new(""));
    let folder = match folder.file_name() {
        Some(n) if n == "evaluate" => folder.parent().unwrap_or(folder),
        _ => folder,
    };
    folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| report.display().to_string())
}

/// Names made unique: a name two inputs share becomes each one's report path.
fn unique_names(mut inputs: Vec<Input>) -> Vec<Input> {
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    for i in &mut inputs {
        if names.iter().filter(|n| **n == i.name).count() > 1 {
            i.name = i.path.display().to_string();
        }
    }
    inputs
}

/// Refuses reports scored against different targets (their corr are not comparable).
fn same_target(inputs: &[Input]) -> Result<()> {
    let first = &inputs[0];
    match inputs.iter().find(|i| i.report.target != first.report.target) {
        Some(other) => Err(Error::input(
            &other.path,
            format!(
                "scored against target '{}' but {} ({}) against '{}': corr on different targets cannot be compared; \
                 evaluate both with the same --target",
                other.report.target,
                first.name,
                first.path.display(),
                first.report.target
            ),
        )),
        None => Ok(()),
    }
}

/// The eras every report scores, ascending; refuses when there are none, naming each run's eras.
fn shared_eras(inputs: &[Input]) -> Result<Vec<i32>> {
    let mut shared: Vec<i32> = inputs[0].report.per_era.iter().map(|e| e.era).collect();
    for i in &inputs[1..] {
        shared.retain(|era| i.report.per_era.iter().any(|e| e.era == *era));
    }
    shared.sort_unstable();
    shared.dedup();
    if shared.is_empty() {
        let ranges: Vec<String> =
            inputs.iter().map(|i| format!("{} ({}): {}", i.name, i.path.display(), era_range(&i.report))).collect();
        return Err(Error::Config(format!(
            "no era is scored by every report, so there is nothing to compare: {}; compare runs validated on the \
             same period (the same train_until and embargo, or walk-forward runs over the same eras)",
            ranges.join("; ")
        )));
    }
    Ok(shared)
}

fn era_range(r: &Report) -> String {
    let eras: Vec<i32> = r.per_era.iter().map(|e| e.era).collect();
    match (eras.iter().min(), eras.iter().max()) {
        (Some(a), Some(b)) => format!("{} eras, {} → {}", eras.len(), era_text(*a), era_text(*b)),
        _ => "no eras".into(),
    }
}

fn corr_at(input: &Input, era: i32) -> f64 {
    input.report.per_era.iter().find(|e| e.era == era).map_or(f64::NAN, |e| e.corr)
}

/// A run's statistics on the shared eras and their bootstrap intervals.
fn run_scores(input: &Input, corr: &[f64], shared: usize, b: &Bootstrap) -> RunScores {
    let s = metrics::summarize(corr);
    let sharpe = (s.std > 0.0).then_some(s.mean / s.std);
    let resampled = bootstrap(corr, b);
    let interval = |stat: fn(&[f64]) -> Option<f64>| -> Option<[f64; 2]> {
        let values: Vec<f64> = resampled.iter().filter_map(|r| stat(r)).collect();
        percentile_interval(values)
    };
    RunScores {
        name: input.name.clone(),
        report: input.path.display().to_string(),
        eras_left_out: input.report.per_era.len().saturating_sub(shared),
        mean: s.mean,
        mean_interval: if corr.len() > 1 { interval(mean) } else { None },
        std: s.std,
        sharpe,
        sharpe_interval: sharpe.and_then(|_| interval(sharpe_of)),
        share_positive: s.share_positive,
        max_drawdown: s.max_drawdown,
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// mean / std (ddof 0); absent when std is 0.
fn sharpe_of(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
    (sd > 0.0).then(|| m / sd)
}

/// Circular block bootstrap: each resample strings together blocks of `block_eras` consecutive
/// eras (wrapping past the last era to the first) from uniformly drawn starts, cut to the series'
/// length. The same seed draws the same eras for every run, so the runs' intervals are paired.
pub fn bootstrap(series: &[f64], b: &Bootstrap) -> Vec<Vec<f64>> {
    let n = series.len();
    if n == 0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(b.seed);
    let block = b.block_eras.clamp(1, n);
    (0..b.resamples)
        .map(|_| {
            let mut r = Vec::with_capacity(n + block);
            while r.len() < n {
                let start = rng.random_range(0..n);
                r.extend((0..block).map(|k| series[(start + k) % n]));
            }
            r.truncate(n);
            r
        })
        .collect()
}

/// The central LEVEL interval of `values` by numpy's default (linear) percentiles; absent when
/// there are no values.
pub fn percentile_interval(values: Vec<f64>) -> Option<[f64; 2]> {
    interval_at(values, LEVEL)
}

/// The central `level` interval of `values` (numpy's linear percentiles); absent when empty.
fn interval_at(mut values: Vec<f64>, level: f64) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some([percentile(&values, tail), percentile(&values, 1.0 - tail)])
}

/// numpy.percentile(sorted, 100 q) with linear interpolation.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The paired per-era difference `b − a`: mean, std (ddof 1), standard error, t, the two-sided
/// Student-t p-value, and that p-value Bonferroni-adjusted for `n_pairs` comparisons.
pub fn pair_difference(a_name: &str, b_name: &str, a: &[f64], b: &[f64], n_pairs: usize) -> PairDifference {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = d.len();
    let m = mean(&d).unwrap_or(f64::NAN);
    let std = (n > 1).then(|| (d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64).sqrt());
    let se = std.map(|s| s / (n as f64).sqrt());
    let t = se.filter(|s| *s > 0.0).map(|s| m / s);
    let p_value = t.and_then(|t| {
        let dist = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?;
        Some((2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0))
    });
    let p_adjusted = p_value.map(|p| (p * n_pairs as f64).min(1.0));
    PairDifference {
        a: a_name.into(),
        b: b_name.into(),
        eras: n,
        mean: m,
        std,
        standard_error: se,
        t,
        p_value,
        p_adjusted,
        share_b_better: d.iter().filter(|x| **x > 0.0).count() as f64 / n.max(1) as f64,
        ties: d.iter().filter(|x| **x == 0.0).count(),
        mean_interval: None,
        distinguishable: p_adjusted.is_some_and(|p| p < 1.0 - LEVEL),
    }
}

/// Adds the block-bootstrap interval of the pair's mean difference at the Bonferroni level
/// 1 − (1 − LEVEL) / `n_pairs`. The t-test treats eras as independent; a 20-day target overlaps
/// the next three weekly eras, so a pair is called distinguishable only when this interval,
/// which resamples consecutive eras together, also leaves out 0.
pub fn with_block_interval(
    mut p: PairDifference,
    a: &[f64],
    b: &[f64],
    boot: &Bootstrap,
    n_pairs: usize,
) -> PairDifference {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    if d.len() > 1 {
        let means = bootstrap(&d, boot).iter().filter_map(|r| mean(r)).collect();
        p.mean_interval = interval_at(means, 1.0 - (1.0 - LEVEL) / n_pairs.max(1) as f64);
        p.distinguishable &= p.mean_interval.is_some_and(|[lo, hi]| lo > 0.0 || hi < 0.0);
    }
    p
}

/// The warning every comparison carries: how many variants, and what that does to the best one.
fn variants_warning(variants: usize, pairs: usize) -> String {
    format!(
        "{variants} variants compared ({pairs} pair{}): the more variants are tried on the same eras, the more the \
         best of them owes to luck and the less its lead means. At a {:.0}% level about {:.2} of {pairs} pairs \
         would look different by chance alone, so each pair's p-value is multiplied by {pairs} (Bonferroni) \
         before it is called distinguishable from noise; count every variant you tried, not only those shown.",
        if pairs == 1 { "" } else { "s" },
        100.0 * (1.0 - LEVEL),
        (1.0 - LEVEL) * pairs as f64
    )
}

fn f4(v: f64) -> String {
    format!("{v:.4}")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}"))
}

fn interval_text(i: Option<[f64; 2]>, digits: usize) -> String {
    i.map_or_else(|| "n/a".into(), |[lo, hi]| format!("[{lo:.digits$}, {hi:.digits$}]"))
}

impl PairDifference {
    /// "distinguishable from noise" or "inside the noise".
    pub fn verdict(&self) -> &'static str {
        if self.distinguishable { "distinguishable from noise" } else { "inside the noise" }
    }
}

impl std::fmt::Display for PairDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} − {}: mean {:+.4} per era {} (se {}, t {}, p {}, adjusted p {}), {} better in {:.0}% of {} eras: {}",
            self.b,
            self.a,
            self.mean,
            interval_text(self.mean_interval, 4),
            opt(self.standard_error, 4),
            opt(self.t, 2),
            opt(self.p_value, 3),
            opt(self.p_adjusted, 3),
            self.b,
            100.0 * self.share_b_better,
            self.eras,
            self.verdict()
        )
    }
}

impl std::fmt::Display for RunScores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: mean {:.4} {}, sharpe {} {}, {:.0}% eras positive",
            self.name,
            self.mean,
            interval_text(self.mean_interval, 4),
            opt(self.sharpe, 3),
            interval_text(self.sharpe_interval, 3),
            100.0 * self.share_positive
        )
    }
}

fn run_rows(c: &Comparison) -> Vec<Vec<String>> {
    c.runs
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.name),
                f4(r.mean),
                interval_text(r.mean_interval, 4),
                opt(r.sharpe, 3),
                interval_text(r.sharpe_interval, 3),
                f4(r.std),
                format!("{:.0}%", 100.0 * r.share_positive),
                f4(r.max_drawdown),
                r.eras_left_out.to_string(),
            ]
        })
        .collect()
}

fn pair_rows(c: &Comparison) -> Vec<Vec<String>> {
    c.pairs
        .iter()
        .map(|p| {
            vec![
                format!("`{}` − `{}`", p.b, p.a),
                format!("{:+.4}", p.mean),
                interval_text(p.mean_interval, 4),
                opt(p.std, 4),
                opt(p.standard_error, 4),
                opt(p.t, 2),
                opt(p.p_value, 3),
                opt(p.p_adjusted, 3),
                format!("{:.0}%", 100.0 * p.share_b_better),
                p.verdict().into(),
            ]
        })
        .collect()
}

/// compare.md: the warning, the runs, the pairs, how to read them, the plot and the eras.
fn markdown(c: &Comparison) -> String {
    let (first, last) = (c.per_era.first().map_or(0, |e| e.era), c.per_era.last().map_or(0, |e| e.era));
    let b = &c.bootstrap;
    let mut md = format!(
        "# Comparison of {} runs\n\nOut-of-sample numerai_corr (target `{}`) on the {} eras every report scores, {} → {}.\n\n> **Warning:** {}\n\n## Runs\n\n",
        c.runs.len(),
        c.target,
        c.per_era.len(),
        era_text(first),
        era_text(last),
        c.warning
    );
    md += &markdown_table(
        &[
            "run",
            "mean",
            "95% interval",
            "sharpe",
            "95% interval",
            "std",
            "positive eras",
            "max drawdown",
            "eras left out",
        ],
        &run_rows(c),
    );
    md += &format!(
        "\nIntervals: {:.0}% percentile intervals of a circular block bootstrap ({} resamples, blocks of {} consecutive eras \
         — a 20-day target spans 4 weekly eras, so neighbouring eras are not independent —, seed {}; every run is \
         resampled on the same eras). \"eras left out\": eras that report scores but not every other one does.\n\n## Pairs (per-era difference)\n\n",
        100.0 * c.level,
        b.resamples,
        b.block_eras,
        b.seed
    );
    md += &markdown_table(
        &["difference", "mean", "interval", "std", "standard error", "t", "p", "adjusted p", "better eras", "verdict"],
        &pair_rows(c),
    );
    md += "\nt and p are a paired t-test across eras (Student's t, eras − 1 degrees of freedom); it treats eras as \
           independent, and overlapping targets make neighbouring eras alike, so read p as optimistic. \
           \"adjusted p\" multiplies p by the number of pairs (Bonferroni). \"interval\" is the mean difference's \
           block-bootstrap interval (the same blocks as above, at the Bonferroni level 1 − 0.05 / pairs). A pair \
           is distinguishable from noise when its adjusted p is below 0.05 and its interval leaves out 0.\n\n![cumulative difference](plots/cumulative_difference.png)\n\n## Per era\n\n";
    let mut header = vec!["era".to_string()];
    header.extend(c.runs.iter().map(|r| format!("`{}`", r.name)));
    let rows: Vec<Vec<String>> = c
        .per_era
        .iter()
        .map(|e| std::iter::once(era_text(e.era)).chain(e.corr.iter().map(|v| f4(*v))).collect())
        .collect();
    md += &markdown_table(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows);
    md
}

/// compare.json, compare.md and the cumulative difference of every run against the first.
fn write_outputs(out: &Path, c: &Comparison) -> Result<()> {
    write_json(&out.join("compare.json"), c)?;
    let eras: Vec<i32> = c.per_era.iter().map(|e| e.era).collect();
    let base = &c.runs[0].name;
    let series: Vec<(String, Vec<f64>)> = (1..c.runs.len())
        .map(|k| {
            let mut cum = 0.0;
            let values = c.per_era.iter().map(|e| {
                cum += e.corr[k] - e.corr[0];
                cum
            });
            (format!("{} − {base}", c.runs[k].name), values.collect())
        })
        .collect();
    lines_plot(
        &out.join("plots/cumulative_difference.png"),
        &format!("Cumulative per-era numerai_corr difference against {base}"),
        &eras,
        &series,
        "cumulative difference",
    )?;
    crate::data::write_bytes_atomic(&out.join("compare.md"), markdown(c).as_bytes())
}
