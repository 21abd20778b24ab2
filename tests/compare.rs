//! `signalkit compare`: the paired per-era statistics against scipy, the bootstrap against its
//! theory, the refusals (fewer than two runs, no shared era, an in-sample report, different
//! targets, not a report), and the command end to end.

mod common;

use std::path::{Path, PathBuf};

use common::signalkit;
use serde_json::{Value, json};
use signalkit::evaluate::compare::{Bootstrap, bootstrap, pair_difference, percentile_interval, with_block_interval};

/// Toy per-era corr of three variants over eight eras. The reference numbers below were made by
/// (numpy 2.4.6, scipy 1.17.1):
///
/// ```text
/// import numpy as np; from scipy import stats
/// a = np.array([0.010, 0.020, -0.010, 0.030, 0.000, 0.020, 0.015, -0.005])
/// b = np.array([0.020, 0.010, 0.010, 0.050, -0.010, 0.040, 0.015, 0.010])
/// c = np.array([0.012, 0.018, -0.012, 0.033, 0.002, 0.021, 0.012, -0.004])
/// d = b - a; r = stats.ttest_rel(b, a)
/// d.mean(), d.std(ddof=1), d.std(ddof=1) / np.sqrt(8), r.statistic, r.pvalue, (d > 0).sum(), (d == 0).sum()
/// # b-a: 0.008125 0.013076014028 0.004623069095 1.757490496689 0.122249341941 5 1
/// # c-a: 0.000250 0.002251983253 0.000796196315 0.313992912811 0.762677064629 5 0
/// # c-b: -0.007875 0.012620136970 0.004461892216 -1.764946264865 0.120925742076 2 0
/// x.mean(), x.std(), x.mean() / x.std()
/// # a: 0.010000 0.012990381057 0.769800358920
/// # b: 0.018125 0.017666617531 1.025946249632
/// # c: 0.010250 0.013534677684 0.757313933851
/// np.percentile([3, 1, 4, 1, 5, 9, 2, 6], [2.5, 97.5])   # [1.0, 8.475]
/// ```
const A: [f64; 8] = [0.010, 0.020, -0.010, 0.030, 0.000, 0.020, 0.015, -0.005];
const B: [f64; 8] = [0.020, 0.010, 0.010, 0.050, -0.010, 0.040, 0.015, 0.010];
const C: [f64; 8] = [0.012, 0.018, -0.012, 0.033, 0.002, 0.021, 0.012, -0.004];

fn eras(n: usize, first: i32) -> Vec<i32> {
    let start = chrono::NaiveDate::parse_from_str(&first.to_string(), "%Y%m%d").unwrap();
    (0..n)
        .map(|k| (start + chrono::Duration::days(7 * k as i64)).format("%Y%m%d").to_string().parse().unwrap())
        .collect()
}

/// A report.json as `evaluate` writes it (only the fields compare reads differ between calls).
fn report(dir: &Path, name: &str, corr: &[f64], first_era: i32, target: &str, in_sample: bool) -> PathBuf {
    let folder = dir.join(name).join("evaluate");
    std::fs::create_dir_all(&folder).unwrap();
    let per_era: Vec<Value> =
        eras(corr.len(), first_era).iter().zip(corr).map(|(e, c)| json!({"era": e, "corr": c, "n": 500})).collect();
    let summary =
        json!({"mean": 0.0, "std": 0.0, "sharpe": 0.0, "max_drawdown": 0.0, "share_positive": 0.0, "eras": corr.len()});
    let r = json!({
        "predictions": "p.parquet", "targets": "t.parquet", "target": target, "scored": "validation eras",
        "in_sample_included": in_sample, "split": null, "per_era": per_era, "summary": summary,
        "in_sample": null, "feature_exposure": null, "most_exposed_feature": null, "feature_neutral": null,
        "benchmark": null, "unmatched_predictions": 0, "constant_eras": 0,
    });
    let p = folder.join("report.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    p
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * want.abs().max(1e-3), "{what}: got {got}, want {want}");
}

#[test]
fn the_paired_difference_matches_scipy() {
    let cases = [
        (&A, &B, [0.008125, 0.013076014028, 0.004623069095, 1.757490496689, 0.122249341941], 5.0, 1),
        (&A, &C, [0.000250, 0.002251983253, 0.000796196315, 0.313992912811, 0.762677064629], 5.0, 0),
        (&B, &C, [-0.007875, 0.012620136970, 0.004461892216, -1.764946264865, 0.120925742076], 2.0, 0),
    ];
    for (x, y, want, better, ties) in cases {
        let d = pair_difference("x", "y", x, y, 3);
        close(d.mean, want[0], "mean");
        close(d.std.unwrap(), want[1], "std");
        close(d.standard_error.unwrap(), want[2], "standard error");
        close(d.t.unwrap(), want[3], "t");
        assert!((d.p_value.unwrap() - want[4]).abs() < 1e-9, "p {} vs {}", d.p_value.unwrap(), want[4]);
        assert!((d.p_adjusted.unwrap() - (3.0 * want[4]).min(1.0)).abs() < 1e-9);
        assert_eq!((d.share_b_better, d.ties), (better / 8.0, ties));
        assert!(!d.distinguishable, "none of these is distinguishable after adjusting for 3 pairs");
    }
    // One era: no spread, so no standard error, t or p — absent, never 0.
    let one = pair_difference("x", "y", &[0.01], &[0.02], 1);
    assert!(one.std.is_none() && one.t.is_none() && one.p_value.is_none() && !one.distinguishable);
    // Identical runs: a zero standard error gives no t.
    let same = pair_difference("x", "y", &A, &A, 1);
    assert_eq!((same.standard_error, same.t, same.ties), (Some(0.0), None, 8));
    // A large, steady difference is distinguishable.
    let shifted: Vec<f64> = A.iter().zip(&C).map(|(a, c)| a + 0.02 + (c - a)).collect();
    assert!(pair_difference("x", "y", &A, &shifted, 1).distinguishable);
    let [lo, hi] = percentile_interval(vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]).unwrap();
    close(lo, 1.0, "2.5th percentile");
    close(hi, 8.475, "97.5th percentile");
    assert_eq!(percentile_interval(Vec::new()), None);
}

/// Overlapping targets: 12 independent 4-era blocks, each era a copy of its block's value. The
/// paired t counts 48 independent eras (t 2.67, p 0.01); there are 12 (t 1.29 over the blocks).
/// The block bootstrap keeps each block together, its interval holds 0, and the pair is not called
/// distinguishable; eras drawn one at a time (blocks of 1) would have called it.
#[test]
fn overlapping_eras_are_not_called_distinguishable_by_the_t_alone() {
    let blocks = [0.9, -0.4, 1.2, 0.3, -0.8, 1.1, 0.2, -0.5, 1.0, 0.6, -0.9, 0.7];
    let d: Vec<f64> = blocks.iter().flat_map(|v| [v * 0.01; 4]).collect();
    let zero = vec![0.0; d.len()];
    let p = pair_difference("a", "b", &zero, &d, 1);
    close(p.t.unwrap(), 2.673048212026682, "t over 48 eras");
    assert!(p.distinguishable && p.p_adjusted.unwrap() < 0.05, "the t-test alone calls it");
    let boot = |block_eras| Bootstrap { resamples: 4000, block_eras, seed: 0 };
    let blocked = with_block_interval(p.clone(), &zero, &d, &boot(4), 1);
    let [lo, hi] = blocked.mean_interval.unwrap();
    assert!(lo < 0.0 && hi > 0.0, "block interval [{lo}, {hi}] holds 0");
    assert!(!blocked.distinguishable);
    let single = with_block_interval(p, &zero, &d, &boot(1), 1);
    assert!(single.distinguishable, "eras resampled one by one: {:?}", single.mean_interval);
}

/// A deterministic noise series (no rand dependency in the test's arithmetic).
fn series(n: usize, smooth: usize) -> Vec<f64> {
    let raw: Vec<f64> = (0..n + smooth).map(|i| common::noise(i, 7) - 0.5).collect();
    (0..n).map(|i| raw[i..=i + smooth].iter().sum::<f64>() / (smooth + 1) as f64 + 0.01).collect()
}

#[test]
fn the_bootstrap_interval_matches_theory_and_widens_for_overlapping_eras() {
    // Eras drawn one by one: the mean's interval is about mean ± 1.96 σ / √n (σ with ddof 0, as
    // the bootstrap's own variance of the mean).
    let x = series(400, 0);
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
    let iid = Bootstrap { resamples: 20_000, block_eras: 1, seed: 0 };
    let means: Vec<f64> = bootstrap(&x, &iid).iter().map(|r| r.iter().sum::<f64>() / n).collect();
    let [lo, hi] = percentile_interval(means).unwrap();
    let half = 1.959964 * sd / n.sqrt();
    assert!(((hi - lo) / 2.0 - half).abs() < 0.05 * half, "half-width {} vs theory {half}", (hi - lo) / 2.0);
    assert!(((hi + lo) / 2.0 - m).abs() < 0.1 * half, "centre {} vs mean {m}", (hi + lo) / 2.0);
    // Overlapping eras (each a moving sum of 4 draws): blocks of 4 give a wider, more honest
    // interval than drawing eras one by one.
    let y = series(400, 3);
    let width = |block_eras: usize| {
        let b = Bootstrap { resamples: 5_000, block_eras, seed: 1 };
        let means: Vec<f64> = bootstrap(&y, &b).iter().map(|r| r.iter().sum::<f64>() / n).collect();
        let [lo, hi] = percentile_interval(means).unwrap();
        hi - lo
    };
    let (w1, w4) = (width(1), width(4));
    assert!(w4 > 1.4 * w1, "blocks of 4 should widen the interval: {w4} vs {w1}");
    // The same seed draws the same resamples; another seed others.
    let b = Bootstrap { resamples: 50, block_eras: 4, seed: 3 };
    assert_eq!(bootstrap(&y, &b), bootstrap(&y, &b));
    assert_ne!(bootstrap(&y, &b), bootstrap(&y, &Bootstrap { seed: 4, ..b }));
    assert!(bootstrap(&y, &b).iter().all(|r| r.len() == y.len()));
}

fn cli(args: &[&str]) -> common::Run {
    signalkit(args).no_backtrace().run()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn compare_end_to_end_writes_json_markdown_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // b scores two extra eras before the others: they are left out, and said to be.
    let mut b_long = vec![0.5, 0.5];
    b_long.extend(B);
    report(d, "frozen", &A, 20130104, "target_20d_factor_neutral", false);
    report(d, "tuned", &b_long, 20121221, "target_20d_factor_neutral", false);
    let c_report = report(d, "c-folder", &C, 20130104, "target_20d_factor_neutral", false);
    let out = d.join("cmp");
    let smoothed = format!("smoothed={}", s(&c_report));
    let ran = cli(&["compare", &s(&d.join("frozen")), &s(&d.join("tuned/evaluate")), &smoothed, "--out", &s(&out)]);
    assert!(ran.success(), "{}", ran.text());
    assert!(ran.stderr.contains("3 variants compared (3 pairs)"), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("tuned − frozen: mean +0.0081") && ran.stdout.contains("inside the noise"),
        "{}",
        ran.stdout
    );

    let c: Value = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let names: Vec<&str> = c["runs"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["frozen", "tuned", "smoothed"]);
    assert_eq!(c["per_era"].as_array().unwrap().len(), 8);
    assert_eq!(c["runs"][1]["eras_left_out"], 2);
    close(c["runs"][1]["mean"].as_f64().unwrap(), 0.018125, "tuned mean on the shared eras");
    close(c["runs"][1]["sharpe"].as_f64().unwrap(), 1.025946249632, "tuned sharpe");
    close(c["runs"][2]["std"].as_f64().unwrap(), 0.013534677684, "smoothed std");
    let pair = &c["pairs"][0];
    assert_eq!((pair["a"].as_str(), pair["b"].as_str()), (Some("frozen"), Some("tuned")));
    close(pair["t"].as_f64().unwrap(), 1.757490496689, "t");
    close(pair["p_adjusted"].as_f64().unwrap(), 3.0 * 0.122249341941, "Bonferroni p");
    assert_eq!(c["bootstrap"], json!({"resamples": 10000, "block_eras": 4, "seed": 0}));
    for r in c["runs"].as_array().unwrap() {
        let (m, i) = (r["mean"].as_f64().unwrap(), r["mean_interval"].as_array().unwrap());
        assert!(i[0].as_f64().unwrap() <= m && m <= i[1].as_f64().unwrap(), "{r}");
        assert!(r["sharpe_interval"].is_array(), "{r}");
    }
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    for want in [
        "**Warning:** 3 variants compared",
        "seed 0",
        "blocks of 4",
        "| `tuned` − `frozen` | +0.0081",
        "2013-01-04 → 2013-02-22",
    ] {
        assert!(md.contains(want), "compare.md lacks {want:?}:\n{md}");
    }
    let png = std::fs::read(out.join("plots/cumulative_difference.png")).unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"));

    // The same inputs and seed give the same intervals; the seed asked for is recorded.
    let again = d.join("cmp2");
    cli(&["compare", &s(&d.join("frozen")), &s(&d.join("tuned/evaluate")), &smoothed, "--out", &s(&again)]).ok();
    let c2: Value = serde_json::from_slice(&std::fs::read(again.join("compare.json")).unwrap()).unwrap();
    assert_eq!(c["runs"], c2["runs"]);
    let other = d.join("cmp3");
    cli(&["compare", &s(&d.join("frozen")), &s(&d.join("tuned")), "--out", &s(&other), "--seed", "9"]).ok();
    let c3: Value = serde_json::from_slice(&std::fs::read(other.join("compare.json")).unwrap()).unwrap();
    assert_eq!(c3["bootstrap"]["seed"], 9);
    assert!(c3["warning"].as_str().unwrap().starts_with("2 variants compared (1 pair)"));
}

#[test]
fn compare_refuses_what_it_cannot_compare() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = report(d, "a", &A, 20130104, "target_20d_factor_neutral", false);
    let late = report(d, "late", &B, 20140103, "target_20d_factor_neutral", false);
    let ins = report(d, "insample", &B, 20130104, "target_20d_factor_neutral", true);
    let raw = report(d, "raw", &B, 20130104, "target_20d_raw_return", false);
    let junk = common::write(d, "junk.json", r#"{"per_era": []}"#);
    let out = s(&d.join("out"));
    let refused = |args: &[&str], wants: &[&str]| {
        let mut all = vec!["compare"];
        all.extend(args);
        all.extend(["--out", &out]);
        let ran = cli(&all);
        let log = ran.text();
        assert!(!ran.success(), "{args:?} was accepted: {log}");
        for w in wants {
            assert!(log.contains(w), "{args:?}: the error lacks {w:?}: {log}");
        }
    };
    refused(&[&s(&a)], &["at least two", "got 1"]);
    refused(
        &[&s(&a), &s(&late)],
        &[
            "no era is scored by every report",
            "a (",
            "8 eras, 2013-01-04 → 2013-02-22",
            "late (",
            "2014-01-03 → 2014-02-21",
        ],
    );
    refused(&[&s(&a), &s(&ins)], &["insample/evaluate/report.json", "in-sample", "--model"]);
    refused(&[&s(&a), &s(&raw)], &["raw/evaluate/report.json", "target_20d_raw_return", "--target"]);
    refused(&[&s(&a), &s(&junk)], &["junk.json", "not a report.json written by signalkit evaluate"]);
    refused(&[&s(&a), &s(&d.join("nowhere"))], &["nowhere", "no evaluate report here"]);
    let ran = cli(&["compare", &s(&a), &s(&late), "--out", &out, "--resamples", "0"]);
    assert!(!ran.success() && ran.text().contains("--resamples"), "{}", ran.text());
}

/// Two predictions files of the same rows (the second in another order), two eras of three
/// tickers; era 2's second file gives tickers A and B the same value (a tie).
fn blend_inputs(dir: &Path, b_split: &str, b_extra: &str) -> (PathBuf, PathBuf) {
    let a = "bloomberg_ticker,friday_date,split,prediction\n\
             A US,20240105,train,0.1\nB US,20240105,train,0.3\nC US,20240105,train,0.2\n\
             A US,20240112,validation,5\nB US,20240112,validation,6\nC US,20240112,validation,4\n";
    let b = format!(
        "bloomberg_ticker,friday_date,split,prediction\n\
         C US,20240112,validation,9\nB US,20240112,{b_split},1\nA US,20240112,validation,1\n\
         A US,20240105,train,3\nB US,20240105,train,1\nC US,20240105,train,2\n{b_extra}"
    );
    (common::write(dir, "a.csv", a), common::write(dir, "b.csv", &b))
}

#[test]
fn blend_averages_per_era_ranks_by_weight_keeps_the_split_and_refuses_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = blend_inputs(d, "validation", "");
    let out = d.join("blend");
    cli(&["blend", &format!("{}@3", s(&a)), &s(&b), "--out", &s(&out)]).ok();
    let df = common::read_parquet(&out.join("predictions.parquet"));
    let got: Vec<f64> = df.column("prediction").unwrap().f64().unwrap().into_no_null_iter().collect();
    // Ranks (rank − 0.5) / n per era, ties averaged (numerai-tools' tie-kept rank), shares 3/4 and 1/4.
    // Era 1: a ranks A, B, C as 1/6, 5/6, 3/6; b as 5/6, 1/6, 3/6.
    // Era 2: a as 3/6, 5/6, 1/6; b gives A and B a tie (ranks 1.5 → 1/3 each) and C 5/6.
    let want = [
        0.75 / 6.0 + 0.25 * 5.0 / 6.0,
        0.75 * 5.0 / 6.0 + 0.25 / 6.0,
        0.5,
        0.75 * 3.0 / 6.0 + 0.25 / 3.0,
        0.75 * 5.0 / 6.0 + 0.25 / 3.0,
        0.75 / 6.0 + 0.25 * 5.0 / 6.0,
    ];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    let split = common::strs(&df, "split");
    assert_eq!(split.iter().filter(|v| v.as_deref() == Some("validation")).count(), 3, "a's split kept");
    let record = std::fs::read_to_string(out.join("blend.json")).unwrap();
    assert!(record.contains("\"share\": 0.75") && record.contains("xxh3"), "{record}");

    // A row only one file has, a row whose split differs, an output folder holding an input, a zero weight.
    let (_, b) = blend_inputs(d, "validation", "D US,20240112,validation,3\n");
    cli(&["blend", &s(&a), &s(&b), "--out", &s(&d.join("x"))]).refused(&["rows differ", "D US on 2024-01-12"]);
    let (_, b) = blend_inputs(d, "train", "");
    let wanted = ["`split` differs", "B US 2024-01-12", "\"validation\" vs \"train\"", "b.csv"];
    cli(&["blend", &s(&a), &s(&b), "--out", &s(&d.join("x"))]).refused(&wanted);
    cli(&["blend", &s(&a), &s(&a), "--out", &s(d)]).refused(&["--out", "a.csv"]);
    cli(&["blend", &format!("{}@0", s(&a)), &s(&a), "--out", &s(&d.join("x"))]).refused(&["above 0"]);
}
