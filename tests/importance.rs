//! `importance`: permutation importance (MDA) on the model's out-of-sample eras only — a planted
//! signal feature clearly positive, a noise feature near zero, prefix groups reported, in-sample
//! rows without effect, and a model with no validation eras refused.

mod common;

use std::path::Path;

use common::signalkit;
use polars::prelude::*;
use signalkit::evaluate::{Importance, ImportanceArgs, importance};

const TICKERS: usize = 60;
const ERAS: usize = 50;
/// Eras with data_type train; the split then embargoes 4 and validates the remaining 26.
const TRAIN_ERAS: usize = 20;

fn friday(k: usize) -> i64 {
    let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 3).unwrap() + chrono::Duration::days(7 * k as i64);
    d.format("%Y%m%d").to_string().parse().unwrap()
}

/// `feature_signal` carries the target; `feature_noise`, `cls_a` and `cls_b` do not. `salt`
/// changes every value of the training eras (features and targets) and nothing else.
fn table(salt: u64) -> DataFrame {
    let (mut tickers, mut dates, mut types, mut target) = (vec![], vec![], vec![], vec![]);
    let mut cols: [Vec<f64>; 4] = Default::default();
    for k in 0..ERAS {
        let s = if k < TRAIN_ERAS { salt } else { 0 };
        for j in 0..TICKERS {
            let i = k * TICKERS + j;
            let t = (common::noise(i, 1 + 10 * s) * 5.0).floor() / 4.0;
            tickers.push(format!("T{j} US"));
            dates.push(friday(k));
            types.push(if k < TRAIN_ERAS { "train" } else { "validation" });
            target.push(t);
            cols[0].push(t + 0.5 * common::noise(i, 2 + 10 * s));
            (1..4).for_each(|c| cols[c].push(common::noise(i, 3 + c as u64 + 10 * s)));
        }
    }
    df!("bloomberg_ticker" => tickers, "friday_date" => dates, "data_type" => types,
        "target_20d_factor_neutral" => target, "feature_signal" => &cols[0], "feature_noise" => &cols[1],
        "cls_a" => &cols[2], "cls_b" => &cols[3])
    .unwrap()
}

fn trained(d: &Path) -> std::path::PathBuf {
    let f = common::write_parquet(d, "f.parquet", table(0));
    let (f, m) = (f.display().to_string(), d.join("model").display().to_string());
    signalkit(["train", "--features", &f, "--out", &m, "--num-iterations", "40"]).no_backtrace().run().ok();
    d.join("model")
}

fn run(d: &Path, features: &Path, out: &str) -> Importance {
    importance(&ImportanceArgs { model: d.join("model"), features: features.into(), out: d.join(out), top: 10 })
        .unwrap()
}

fn row<'a>(imp: &'a Importance, name: &str) -> &'a signalkit::evaluate::FeatureImportance {
    imp.features.iter().chain(&imp.groups).find(|r| r.feature == name).unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn mda_finds_the_planted_signal_on_oos_eras_only_and_reports_groups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let imp = run(d, &d.join("f.parquet"), "imp");
    let (sig, noise) = (row(&imp, "feature_signal"), row(&imp, "feature_noise"));
    let (sm, nm) = (sig.mda.mean.unwrap(), noise.mda.mean.unwrap());
    eprintln!("signal {:?}\nnoise {:?}", sig.mda, noise.mda);
    assert!(sm > 0.1 && sig.mda.sharpe.unwrap() > 1.0, "{:?}", sig.mda);
    assert!(nm.abs() < 0.03 && nm.abs() < sm / 5.0, "{:?}", noise.mda);
    assert_eq!(imp.features[0].feature, "feature_signal", "ranked by OOS MDA");
    let (ss, ns) = (sig.shap_mean_abs.unwrap(), noise.shap_mean_abs.unwrap());
    assert!(ss > 5.0 * ns && ns > 0.0, "mean |SHAP| signal {ss}, noise {ns}");
    let group_shap = row(&imp, "feature_*").shap_mean_abs.unwrap();
    assert!(group_shap <= ss + ns + 1e-12 && group_shap > ss - ns, "group |SHAP| {group_shap}");
    // Groups: `feature_*` (signal and noise) and `cls_*` (noise only).
    let (fg, cg) = (row(&imp, "feature_*"), row(&imp, "cls_*"));
    assert_eq!((fg.columns, cg.columns, imp.groups.len()), (2, 2, 2));
    assert!(fg.mda.mean.unwrap() > 0.1 && cg.mda.mean.unwrap().abs() < 0.03, "{:?} {:?}", fg.mda, cg.mda);
    // Only the validation eras (after 20 train and 4 embargo eras) are scored.
    let valid: Vec<i32> = (TRAIN_ERAS + 4..ERAS).map(|k| friday(k) as i32).collect();
    assert_eq!(imp.eras, valid);
    assert_eq!((sig.mda.eras, sig.eras), (valid.len(), valid.len()));
    let md = std::fs::read_to_string(d.join("imp/importance.md")).unwrap();
    assert!(md.contains("Out-of-sample eras only") && md.contains("| `cls_*` |") && md.contains("seed 42"), "{md}");

    // Every training-era row changed: the same figures, to the last bit.
    let other = common::write_parquet(d, "g.parquet", table(7));
    let again = run(d, &other, "imp2");
    let json = |i: &Importance| serde_json::to_string(&(&i.features, &i.groups)).unwrap();
    assert_ne!(table(0), table(7));
    assert_eq!(json(&imp), json(&again));
}

#[test]
fn a_model_without_validation_eras_is_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = trained(d);
    let card_path = model.join("model.json");
    let mut card: serde_json::Value = serde_json::from_slice(&std::fs::read(&card_path).unwrap()).unwrap();
    card["split"]["validation"] = serde_json::json!([]);
    std::fs::write(&card_path, serde_json::to_vec(&card).unwrap()).unwrap();
    let (m, f, o) =
        (model.display().to_string(), d.join("f.parquet").display().to_string(), d.join("o").display().to_string());
    signalkit(["importance", "--model", &m, "--features", &f, "--out", &o]).no_backtrace().run().refused(&[
        "no validation eras",
        "out of sample",
        "retrain",
    ]);
}
