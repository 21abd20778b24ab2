//! `train --walk-forward K`: no fold's model trains on its validation eras or the embargo before
//! them (read from the model cards), the out-of-fold predictions cover every validation era once,
//! `evaluate` and `compare` read them, and features fitted after fold 1's training eras are refused.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use common::{fixtures, read_parquet, signalkit};
use polars::prelude::*;
use serde_json::Value;
use signalkit::provenance::{InputFile, ModelKey, PcaRecord, Provenance};

const TICKERS: usize = 40;
const ERAS: usize = 60;
/// Eras with data_type train; the split then embargoes 4 and validates the remaining 36.
const TRAIN_ERAS: usize = 20;

fn friday(k: usize) -> i32 {
    let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 3).unwrap() + chrono::Duration::days(7 * k as i64);
    d.format("%Y%m%d").to_string().parse().unwrap()
}

/// 40 tickers × 60 eras (20 train, 40 validation) plus a live era without targets;
/// `feature_signal` carries the target, `feature_noise` does not.
fn table() -> DataFrame {
    let (mut tickers, mut dates, mut types, mut target, mut signal, mut noise) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for k in 0..=ERAS {
        for j in 0..TICKERS {
            let i = k * TICKERS + j;
            let t = (common::noise(i, 1) * 5.0).floor() / 4.0;
            tickers.push(format!("T{j} US"));
            dates.push(friday(k) as i64);
            types.push(if k < TRAIN_ERAS {
                "train"
            } else if k < ERAS {
                "validation"
            } else {
                "live"
            });
            target.push((k < ERAS).then_some(t));
            signal.push(t + 0.8 * common::noise(i, 2));
            noise.push(common::noise(i, 3));
        }
    }
    df!("bloomberg_ticker" => tickers, "friday_date" => dates, "data_type" => types,
        "target_20d_factor_neutral" => target, "feature_signal" => signal, "feature_noise" => noise)
    .unwrap()
}

fn with_provenance(dir: &Path, name: &str, p: &Provenance) -> PathBuf {
    let path = dir.join(name);
    signalkit::data::write_parquet_with(&mut table(), &path, Some(p.to_metadata())).unwrap();
    path
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn cli(args: &[&str]) -> common::Run {
    signalkit(args).no_backtrace().run()
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn eras_of(v: &Value) -> Vec<i32> {
    v.as_array().map(|a| a.iter().map(|e| e.as_i64().unwrap() as i32).collect()).unwrap_or_default()
}

#[test]
fn folds_never_train_on_their_validation_or_embargo_eras_and_cover_every_era_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = common::write_parquet(d, "f.parquet", table());
    let common_args = ["--num-iterations", "30", "--early-stopping", "5"];
    let f_arg = s(&f);
    let mut args = vec!["train", "--features", f_arg.as_str()];
    args.extend(common_args);
    let (wf, single) = (s(&d.join("wf")), s(&d.join("single")));
    let ran = cli(&[&args[..], &["--out", wf.as_str(), "--walk-forward", "4"]].concat()).ok();
    assert!(ran.stdout.contains("fold 4:") && ran.stdout.contains("without --model"), "{}", ran.stdout);
    cli(&[&args[..], &["--out", single.as_str()]].concat()).ok();

    // Validation eras 24..60 (after 20 train eras and the 4-era embargo), in 4 blocks of 9.
    let all: Vec<i32> = (0..ERAS).map(friday).collect();
    for fold in 1..=4 {
        let card = json(&d.join(format!("wf/fold-{fold}/model.json")));
        let split = &card["split"];
        let (train, stop, embargo, valid) = (
            eras_of(&split["train"]),
            eras_of(&split["early_stopping"]),
            eras_of(&split["embargo"]),
            eras_of(&split["validation"]),
        );
        let start = 24 + 9 * (fold - 1);
        assert_eq!(valid, all[start..start + 9], "fold {fold} validates its block");
        assert!(!stop.is_empty(), "fold {fold} stops early inside its training eras");
        let seen: Vec<i32> = train.iter().chain(&stop).copied().collect();
        let embargo_start = all[start - 4];
        assert!(
            seen.iter().all(|e| *e < embargo_start),
            "fold {fold} trained on an era of its embargo or later: {seen:?}"
        );
        assert!(embargo.iter().all(|e| !seen.contains(e) && !valid.contains(e)));
        assert!(all[start - 4..start].iter().all(|e| embargo.contains(e)), "the 4 eras before the block are embargoed");
        let used: BTreeSet<i32> = seen.iter().chain(&embargo).copied().collect();
        assert_eq!(used.into_iter().collect::<Vec<_>>(), all[..start], "every earlier era trains or is embargoed");
        assert_eq!(card["rows_train"].as_u64().unwrap() as usize, TICKERS * train.len());
        if fold == 1 {
            let one = &json(&d.join("single/model.json"))["split"];
            for role in ["train", "early_stopping", "embargo"] {
                assert_eq!(split[role], one[role], "fold 1's {role} eras are the single split's");
            }
            assert_eq!(valid, eras_of(&one["validation"])[..9], "fold 1 validates the first 9 of its eras");
        }
    }

    // The stitched predictions: every row once; validation rows are eras 24..60, each by its fold.
    let p = read_parquet(&d.join("wf/predictions.parquet"));
    assert_eq!(p.height(), (ERAS + 1) * TICKERS);
    let col = |n: &str| p.column(n).unwrap().clone();
    let eras: Vec<i64> =
        col("friday_date").cast(&DataType::Int64).unwrap().i64().unwrap().into_no_null_iter().collect();
    let tickers = common::strs(&p, "bloomberg_ticker");
    let splits = common::strs(&p, "split");
    let folds: Vec<i32> = col("fold").i32().unwrap().into_no_null_iter().collect();
    let keys: HashSet<(Option<String>, i64)> = tickers.iter().cloned().zip(eras.iter().copied()).collect();
    assert_eq!(keys.len(), p.height(), "each (ticker, era) once");
    for r in 0..p.height() {
        let k = all.iter().position(|e| *e as i64 == eras[r]).unwrap_or(ERAS);
        let (role, fold) = (splits[r].as_deref().unwrap(), folds[r]);
        match k {
            k if k < 24 => assert!(fold == 1 && ["train", "early_stopping", "embargo"].contains(&role), "{k}: {role}"),
            k if k < ERAS => assert_eq!((role, fold as usize), ("validation", 1 + (k - 24) / 9), "era {k}"),
            _ => assert_eq!((role, fold), ("unused", 4), "the live era"),
        }
    }
    assert_eq!(json(&d.join("wf/walk_forward.json"))["folds"].as_array().unwrap().len(), 4);

    // evaluate scores exactly the 36 validation eras as out of sample, and compare reads both.
    let ev = |preds: &str, out: &str, model: Option<&str>| {
        let mut a = vec!["evaluate", "--predictions", preds, "--targets", f.to_str().unwrap(), "--out", out];
        a.extend(model.map(|m| ["--model", m]).into_iter().flatten());
        cli(&a).ok();
        json(&Path::new(out).join("report.json"))
    };
    let (wf_preds, single_preds) = (s(&d.join("wf/predictions.parquet")), s(&d.join("single/predictions.parquet")));
    let r = ev(&wf_preds, &s(&d.join("wf-eval")), None);
    assert_eq!(r["in_sample_included"], false);
    let scored: Vec<i32> = r["per_era"].as_array().unwrap().iter().map(|e| e["era"].as_i64().unwrap() as i32).collect();
    assert_eq!(scored, all[24..]);
    ev(&single_preds, &s(&d.join("single-eval")), Some(&single));
    let wf_named = format!("walk-forward={}", s(&d.join("wf-eval")));
    let ran = cli(&["compare", &s(&d.join("single-eval")), &wf_named, "--out", &s(&d.join("cmp"))]).ok();
    assert!(ran.stdout.contains("on 36 shared eras"), "{}", ran.stdout);
}

#[test]
fn walk_forward_refuses_too_many_folds_and_features_fitted_after_fold_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = s(&d.join("out"));
    let train = |f: &Path, extra: &[&str]| {
        let mut a = vec!["train", "--features", f.to_str().unwrap(), "--out", &out, "--num-iterations", "5"];
        a.extend(extra);
        cli(&a)
    };
    let refused = |ran: common::Run, wants: &[&str]| {
        let log = ran.text();
        assert!(!ran.success(), "accepted: {log}");
        for w in wants {
            assert!(log.contains(w), "the error lacks {w:?}: {log}");
        }
    };
    let f = common::write_parquet(d, "f.parquet", table());
    // Eras up to 2020-12-11 (era 49) train: 6 validation eras remain after the embargo.
    refused(
        train(&f, &["--walk-forward", "7", "--train-until", "2020-12-11"]),
        &["f.parquet", "7 folds", "6 after", "--walk-forward"],
    );
    let cfg = common::write(d, "cfg.toml", "[train]\nwalk_forward = 1\n");
    refused(train(&f, &["--config", cfg.to_str().unwrap()]), &["walk_forward = 1", "from 2 to 20"]);

    // A PCA fitted past fold 1's training eras (the last is 2020-05-15) is refused; within, accepted.
    let pca = |last: &str| Provenance {
        signalkit: "test".into(),
        pca: Some(PcaRecord {
            file: InputFile { path: "f.pca.json".into(), xxh3: "0".into() },
            components: 2,
            last_fit_friday: last.into(),
        }),
        ..Default::default()
    };
    let late = with_provenance(d, "late-pca.parquet", &pca("2020-12-25"));
    refused(
        train(&late, &["--walk-forward", "4"]),
        &["late-pca.parquet", "PCA", "2020-12-25", "--pca-fit-until 2020-05-15"],
    );
    let fine = with_provenance(d, "pca.parquet", &pca("2020-05-15"));
    assert!(
        train(&fine, &["--walk-forward", "4"]).success(),
        "a PCA fitted on fold 1's training eras is point in time"
    );

    // An encoder fine-tuned on market labels of later eras is refused (its card.json says which).
    let tuned = d.join("tuned");
    std::fs::create_dir_all(&tuned).unwrap();
    let card = serde_json::json!({"recipe": "market", "data": {"eras": {"train": [20200103, 20201225]}}});
    std::fs::write(tuned.join("card.json"), card.to_string()).unwrap();
    let encoder = ModelKey { id: s(&tuned), fingerprint: "f".into(), max_len: 64, labels: vec![], dtype: "f32".into() };
    let p = Provenance { signalkit: "test".into(), encoder: Some(encoder), ..Default::default() };
    let f2 = with_provenance(d, "tuned.parquet", &p);
    refused(
        train(&f2, &["--walk-forward", "4"]),
        &["tuned.parquet", "fine-tuned", "card.json", "--train-until 2020-05-15"],
    );
    assert!(train(&f2, &[]).success(), "one split trains on the fine-tuned encoder's features as before");
}

/// `signalkit run` with `[train] walk_forward` and a PCA: the PCA is fitted on the training eras
/// (fold 1's), so the run walks forward, and evaluate scores every fold's block out of sample.
#[test]
fn run_walks_forward_with_a_pca_fitted_on_fold_ones_training_eras() {
    let dir = tempfile::tempdir().unwrap();
    let repo = |p: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
    let mut cfg = signalkit::config::Config::sample();
    cfg.out = dir.path().join("run");
    cfg.data.targets = repo("data/sample/targets.csv");
    cfg.data.headlines = repo("data/sample/headlines.csv");
    cfg.encode.model = s(&fixtures("tiny-finbert"));
    cfg.encode.store = dir.path().join("store");
    cfg.features.pca = Some(signalkit::settings::Int::new(4));
    cfg.train.walk_forward = Some(signalkit::train::Folds::new(3));
    let summary = signalkit::run::run(&cfg).unwrap();
    let w = json(&cfg.out.join("model/walk_forward.json"));
    let blocks: Vec<i32> =
        w["folds"].as_array().unwrap().iter().flat_map(|f| eras_of(&f["split"]["validation"])).collect();
    assert_eq!(w["folds"].as_array().unwrap().len(), 3);
    let r = &summary.report;
    assert!(!r.in_sample_included && r.split.is_none(), "scored by the predictions' split column");
    assert_eq!(r.per_era.iter().map(|e| e.era).collect::<Vec<_>>(), blocks, "every block scored once, in order");
    assert_eq!(summary.card.split.validation, eras_of(&w["folds"][2]["split"]["validation"]), "the last fold's card");
    assert!(cfg.out.join("importance/importance.md").exists() && cfg.out.join("model/fold-3/model.txt").exists());
}
