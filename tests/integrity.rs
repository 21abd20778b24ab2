//! Integrity across stages: outputs carry their provenance and a model refuses features made any
//! other way; outputs never replace inputs; options that make no sense are refused at the edge;
//! early stopping never looks at the eras reported as out of sample.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use signalkit::provenance::Provenance;

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

/// `signalkit ARGS` to the end, without a backtrace (messages are compared).
fn cli(args: &[&str]) -> Run {
    signalkit(args).no_backtrace().run()
}

/// The sample joined (with `join_extra`), encoded with the tiny fixture at `max_len`, and made
/// into features: the feature table's path.
fn features(d: &Path, name: &str, join_extra: &[&str], max_len: &str) -> PathBuf {
    let s = |p: &str| d.join(p).display().to_string();
    let rows = s(&format!("{name}-rows.parquet"));
    let targets = repo("data/sample/targets.csv");
    let mut join = vec!["join", "--targets", &targets];
    let heads = repo("data/sample/headlines.csv");
    join.extend(["--headlines", &heads, "--out", &rows]);
    join.extend(join_extra);
    cli(&join).ok();
    let model = fixtures("tiny-finbert").display().to_string();
    cli(&["encode", "--model", &model, "--headlines", &heads, "--store", &s("store"), "--max-len", max_len]).ok();
    let fp = s(&format!("{name}.parquet"));
    let store = s("store");
    let mut f = vec!["features", "--rows", &rows, "--store", &store, "--out", &fp];
    f.extend(["--max-len", max_len]);
    cli(&f).ok();
    PathBuf::from(fp)
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn a_model_refuses_features_made_another_way() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &str| d.join(p).display().to_string();
    let trained = features(d, "train", &[], "64");
    cli(&["train", "--features", &trained.display().to_string(), "--out", &s("m"), "--num-iterations", "30"]).ok();
    // The card says how the features were made.
    let card = json(&d.join("m/model.json"));
    let prov = &card["provenance"];
    assert_eq!(prov["join"]["window_days"], 30);
    assert_eq!(prov["encoder"]["max_len"], 64);
    assert!(prov["encoder"]["fingerprint"].as_str().unwrap().len() >= 16, "{prov}");

    // Same features: accepted, and the signal names the model and the encoder.
    cli(&["predict", "--model", &s("m"), "--features", &trained.display().to_string(), "--out", &s("sig.parquet")])
        .ok();
    let sig = Provenance::read(&d.join("sig.parquet")).unwrap().expect("the signal records its provenance");
    assert!(sig.model.is_some() && sig.encoder.is_some());
    cli(&["predict", "--model", &s("m"), "--features", &trained.display().to_string(), "--out", &s("sig.csv")]).ok();
    assert!(d.join("sig.csv.provenance.json").exists());

    // Same width, another max_len: refused before anything is written.
    let short = features(d, "short", &[], "32");
    cli(&["predict", "--model", &s("m"), "--features", &short.display().to_string(), "--out", &s("x.csv")]).refused(&[
        "short.parquet",
        "max_len 64 vs 32",
        "--max-len",
    ]);
    // Another window: refused, naming both.
    let week = features(d, "week", &["--window-days", "7"], "64");
    cli(&["predict", "--model", &s("m"), "--features", &week.display().to_string(), "--out", &s("x.csv")])
        .refused(&["window 30 days vs 7 days", "--window-days"]);
    assert!(!d.join("x.csv").exists());
}

#[test]
fn outputs_never_replace_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let targets = write(d, "t.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n");
    let news = write(d, "news.csv", "ticker,published_at,headline\nAAPL,2024-02-28T10:00:00Z,Apple story\n");
    let before = std::fs::read(&news).unwrap();
    let (t, n) = (targets.display().to_string(), news.display().to_string());
    cli(&["join", "--targets", &t, "--headlines", &n, "--out", &n]).refused(&["news.csv", "would replace the input"]);
    assert_eq!(std::fs::read(&news).unwrap(), before, "the news must be untouched");
    // Through a link to the input: the same file.
    std::os::unix::fs::symlink(&news, d.join("link.parquet")).unwrap();
    cli(&["join", "--targets", &t, "--headlines", &n, "--out", &s(d, "link.parquet")]).refused(&["symbolic link"]);
    assert_eq!(std::fs::read(&news).unwrap(), before);
    // A FIFO is not a file to replace.
    assert!(Command::new("mkfifo").arg(d.join("fifo.parquet")).status().unwrap().success());
    cli(&["join", "--targets", &t, "--headlines", &n, "--out", &s(d, "fifo.parquet")]).refused(&["FIFO"]);
    // A folder neither.
    std::fs::create_dir(d.join("dir.parquet")).unwrap();
    cli(&["join", "--targets", &t, "--headlines", &n, "--out", &s(d, "dir.parquet")]).refused(&["folder"]);
    cli(&["join", "--targets", &t, "--headlines", &n, "--out", &s(d, "rows.parquet")]).ok();
}

fn s(d: &Path, p: &str) -> String {
    d.join(p).display().to_string()
}

#[test]
fn nonsense_options_are_refused_at_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = write(d, "t.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n").display().to_string();
    let h = write(d, "h.csv", "ticker,published_at,headline\nAAPL,2024-02-28T10:00:00Z,Apple story\n")
        .display()
        .to_string();
    let out = s(d, "o.parquet");
    let join = |extra: &[&str], wanted: &[&str]| {
        let mut a = vec!["join", "--targets", &t, "--headlines", &h, "--out", &out];
        a.extend(extra);
        cli(&a).refused(wanted);
        assert!(!d.join("o.parquet").exists());
    };
    // Refused as the flags are parsed, by the range each setting declares (src/settings.rs).
    for bad in ["NaN", "inf", "1e20"] {
        join(&["--cutoff-hours", bad], &["--cutoff-hours", "from -168 to 168"]);
    }
    for bad in ["0", "4294967295"] {
        join(&["--window-days", bad], &["--window-days", "from 1 to 3660"]);
    }
    cli(&["train", "--features", &t, "--out", &s(d, "m"), "--embargo", "4294967295"])
        .refused(&["--embargo", "from 0 to 520"]);
    let model = fixtures("tiny-finbert").display().to_string();
    let encode =
        |bad: &str| cli(&["encode", "--model", &model, "--headlines", &h, "--store", &s(d, "store"), "--max-len", bad]);
    for bad in ["0", "100000"] {
        encode(bad).refused(&["--max-len", "from 1 to 8192"]);
    }
    // In range for the flag, but more than this model reads: refused when the model is loaded.
    encode("2").refused(&["--max-len 2", "tokens per headline"]);
}

#[test]
fn early_stopping_watches_the_end_of_training_never_the_validation_eras() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = features(d, "f", &[], "64").display().to_string();
    cli(&["train", "--features", &f, "--out", &s(d, "m"), "--num-iterations", "200", "--early-stopping", "5"]).ok();
    let card = json(&d.join("m/model.json"));
    let eras = |k: &str| -> Vec<i64> {
        card["split"][k].as_array().map(|a| a.iter().map(|v| v.as_i64().unwrap()).collect()).unwrap_or_default()
    };
    let (train, stop, embargo, valid) = (eras("train"), eras("early_stopping"), eras("embargo"), eras("validation"));
    assert!(!stop.is_empty() && !valid.is_empty(), "{card}");
    assert!(train.iter().max() < stop.iter().min(), "early stopping after the fitted eras");
    assert!(stop.iter().max() < valid.iter().min(), "early stopping before every validation era");
    // Embargoes both before the early-stopping eras and before validation.
    assert!(embargo.iter().any(|e| e < stop.iter().min().unwrap()));
    assert!(embargo.iter().any(|e| e > stop.iter().max().unwrap()));
    // The report scores exactly the validation eras.
    cli(&[
        "evaluate",
        "--predictions",
        &s(d, "m/predictions.parquet"),
        "--targets",
        &f,
        "--model",
        &s(d, "m"),
        "--out",
        &s(d, "eval"),
    ])
    .ok();
    let report = json(&d.join("eval/report.json"));
    let scored: Vec<i64> = report["per_era"].as_array().unwrap().iter().map(|e| e["era"].as_i64().unwrap()).collect();
    assert_eq!(scored, valid);
}

#[test]
fn a_text_column_is_never_a_silent_all_null_feature() {
    let dir = tempfile::tempdir().unwrap();
    let df = polars::prelude::df!(
        "bloomberg_ticker" => ["A US", "B US", "A US", "B US", "A US", "B US"],
        "friday_date" => [20200103i64, 20200103, 20200110, 20200110, 20200221, 20200221],
        "data_type" => ["train", "train", "train", "train", "validation", "validation"],
        "target" => [0.5f64, 0.25, 0.75, 1.0, 0.5, 0.25],
        "p_positive" => [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6],
        "feature_sector" => ["tech", "energy", "tech", "energy", "tech", "energy"],
    )
    .unwrap();
    // Text trains as a LightGBM category, its levels in the card (tests/categorical.rs has more).
    let p = write_parquet(dir.path(), "f.parquet", df.clone()).display().to_string();
    cli(&["train", "--features", &p, "--out", &s(dir.path(), "m"), "--target", "target"]).ok();
    let card = json(&dir.path().join("m/model.json"));
    assert_eq!(card["categorical"]["feature_sector"]["levels"], serde_json::json!(["energy", "tech"]), "{card}");
    // Other non-numbers (a date) are refused by name, never cast to an all-null feature.
    let mut df = df;
    use polars::prelude::NamedFrom;
    let days = polars::prelude::Series::new("feature_day".into(), [18000i32, 18001, 18002, 18003, 18004, 18005]);
    df.with_column(polars::prelude::Column::from(days.cast(&polars::prelude::DataType::Date).unwrap())).unwrap();
    let p = write_parquet(dir.path(), "g.parquet", df).display().to_string();
    cli(&["train", "--features", &p, "--out", &s(dir.path(), "m2"), "--target", "target"]).refused(&[
        "g.parquet",
        "feature_day",
        "not numbers",
    ]);
}

#[test]
fn a_broken_table_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = write(d, "t.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n").display().to_string();
    let h = write(
        d,
        "h.jsonl",
        "{\"ticker\": \"AAPL\", \"published_at\": \"2024-02-28T10:00:00Z\", \"headline\": \"x\"}\n{not json\n",
    );
    let log = cli(&["join", "--targets", &t, "--headlines", &h.display().to_string(), "--out", &s(d, "o.parquet")])
        .refused(&["h.jsonl"])
        .text();
    let cause = log.lines().find_map(|l| l.split("h.jsonl: ").nth(1)).expect("the file's error").trim();
    assert!(!cause.is_empty());
    assert_eq!(log.matches(cause).count(), 1, "the cause is printed once, not again under 'Caused by':\n{log}");
}
