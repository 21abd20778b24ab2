//! Train, predict, evaluate and `run` end to end on the shipped sample: the honest join scores
//! out of sample, a leaky join scores far higher (the test data can catch leakage), outputs are
//! complete, training is deterministic, and bad inputs get clear errors.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, fixtures, read_parquet, signalkit};
use serde_json::Value;
use signalkit::config::Config;
use signalkit::run::run;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn sample_config(out: &Path, store: &Path, cutoff_hours: f64) -> Config {
    let mut cfg = Config::sample();
    cfg.out = out.to_path_buf();
    cfg.data.targets = repo("data/sample/targets.csv");
    cfg.data.headlines = repo("data/sample/headlines.csv");
    cfg.encode.model = fixtures("tiny-finbert").display().to_string();
    cfg.encode.store = store.to_path_buf();
    cfg.join.cutoff_hours = signalkit::settings::Hours::new(cutoff_hours);
    cfg
}

/// `signalkit ARGS` to the end, without a backtrace and with an empty upload history.
fn cli(args: &[&str]) -> Run {
    signalkit(args).no_backtrace().history(std::env::temp_dir().join("signalkit-test-history-empty")).run()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn is_png(p: &Path) -> bool {
    std::fs::read(p).map(|b| b.len() > 1000 && b.starts_with(b"\x89PNG")).unwrap_or(false)
}

#[test]
fn run_on_the_sample_scores_out_of_sample_and_catches_a_leaky_join() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let honest = run(&sample_config(&dir.path().join("honest"), &store, 0.0)).unwrap();
    let leaky = run(&sample_config(&dir.path().join("leaky"), &store, 96.0)).unwrap();
    let (h, l) = (honest.report.summary.mean, leaky.report.summary.mean);
    eprintln!("OOS mean corr: honest {h:.4}, leaky (cutoff +96 h) {l:.4}");
    assert!(h > 0.0, "honest join should score out of sample: {h}");
    assert!(l > h + 0.1, "the leaky join must score clearly higher: honest {h}, leaky {l}");

    // Every stage's output is in the run folder.
    let out = dir.path().join("honest");
    for f in [
        "config.toml",
        "rows.parquet",
        "features.parquet",
        "model/model.txt",
        "model/model.json",
        "model/predictions.parquet",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    for p in
        ["evaluate/plots/cumulative_corr.png", "evaluate/plots/per_era_corr.png", "importance/plots/importance.png"]
    {
        assert!(is_png(&out.join(p)), "{p} is not a PNG");
    }
    let report = json(&out.join("evaluate/report.json"));
    let per_era = report["per_era"].as_array().unwrap();
    let split = &report["split"];
    let validation: Vec<i64> = split["validation"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(per_era.len(), validation.len(), "every validation era is scored, and only those");
    for e in per_era {
        assert!(validation.contains(&e["era"].as_i64().unwrap()));
        assert!(e["n"].as_u64().unwrap() > 100 && e["corr"].is_f64());
    }
    for k in ["mean", "std", "sharpe", "max_drawdown", "share_positive", "eras"] {
        assert!(report["summary"][k].is_number(), "summary.{k}");
    }
    assert_eq!(split["embargo"].as_array().unwrap().len(), 4);
    let md = std::fs::read_to_string(out.join("evaluate/report.md")).unwrap();
    assert!(md.contains("| embargo | 4 eras") && md.contains("numerai_corr (OOS)"), "{md}");
    let imp = std::fs::read_to_string(out.join("importance/importance.md")).unwrap();
    assert!(imp.contains("| 1 |"), "{imp}");

    // The saved config runs again as is.
    let again = Config::read(&out.join("config.toml")).unwrap();
    assert_eq!(again.join.cutoff_hours.get(), 0.0);
    assert_eq!(again.encode.store, store);
}

/// `[finetune]` in a run: the encoder is fine-tuned on market labels of the training eras only,
/// then encodes, and the report names the model that encoded.
#[test]
fn run_with_finetune_encodes_with_the_model_tuned_on_training_eras() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned");
    let mut cfg = sample_config(&out, &dir.path().join("store"), 0.0);
    cfg.finetune = toml::from_str::<Config>("[finetune]\nepochs = 1\nbatch_size = 32\n").unwrap().finetune;
    assert_eq!(cfg.finetune.as_ref().unwrap().label_bins.to_string(), "3", "defaults fill the table");
    let r = run(&cfg).unwrap();
    let card = json(&out.join("finetuned/card.json"));
    assert_eq!(card["recipe"], "market");
    assert_eq!(card["data"]["validation_labels_read"], 0);
    assert!(card["data"]["labelled"].as_u64().unwrap() > 50, "{card}");
    let last_train = card["data"]["eras"]["train"].as_array().unwrap().last().unwrap().as_i64().unwrap();
    let split = r.report.split.as_ref().unwrap();
    assert_eq!(split.train.last().copied().map(i64::from), Some(last_train), "finetune and train split alike");
    assert!(split.validation.iter().all(|v| i64::from(*v) > last_train));
    let encoder = r.report.encoder.as_ref().expect("the report names the encoder");
    assert!(encoder.id.ends_with("finetuned"), "{encoder:?}");
    let md = std::fs::read_to_string(out.join("evaluate/report.md")).unwrap();
    assert!(md.contains("Encoder: `") && md.contains("finetuned"), "{md}");
    assert!(r.stages.iter().any(|s| s.contains("finetune:")), "{:?}", r.stages);

    // Settings that cannot train are refused by name, when the TOML is read (before any work).
    let e = toml::from_str::<Config>("[finetune]\nlr = nan\n").expect_err("NaN refused").to_string();
    assert!(e.contains("lr = nan") && e.contains("above 0 and at most 1"), "{e}");
}

/// `[ask]` in a run: the tiny Qwen2 answers every sample headline into RUN/ask-store, the model
/// trains on the answers and its card and report name the question; the weekly path (`features
/// --like`) needs the ask store and then predicts; bad settings are refused by name.
#[test]
fn run_with_ask_trains_on_prompt_answers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("asked");
    let q = dir.path().join("q.toml");
    std::fs::write(
        &q,
        "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? Answer YES, NO or UNKNOWN.\\n{headline}\"\n",
    )
    .unwrap();
    let mut cfg = sample_config(&out, &dir.path().join("store"), 0.0);
    let model = fixtures("tiny-qwen2").display().to_string();
    let text = format!("[ask]\nmodel = {model:?}\nquestions = {:?}\nbatch_size = 8\n", q.display().to_string());
    cfg.ask = toml::from_str::<Config>(&text).unwrap().ask;
    let r = run(&cfg).unwrap();
    assert!(r.stages.iter().any(|s| s.contains("ask with") && s.contains("tiny-qwen2")), "{:?}", r.stages);
    let features = read_parquet(&out.join("features.parquet"));
    let card = json(&out.join("model/model.json"));
    let used: Vec<&str> = card["features"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for c in ["ask_good_p_yes", "ask_good_p_no", "ask_good_p_unknown", "ask_good_score", "ask_good_score_mean_7d"] {
        let col = features.column(c).unwrap();
        assert!(col.null_count() < col.len() / 2, "{c} is mostly null");
        assert!(used.contains(&c), "the model trains on {c}: {used:?}");
    }
    let asked = card["provenance"]["ask"][0]["id"].as_str().unwrap();
    assert!(asked.contains("tiny-qwen2#ask-good"), "the card names the ask model: {asked}");
    let md = std::fs::read_to_string(out.join("evaluate/report.md")).unwrap();
    assert!(md.contains(&format!("Asked: `{asked}`")), "the report names the ask model: {md}");

    // The weekly path: features --like the model need its ask store, then predict accepts them.
    let like = signalkit::features::like_model(&out.join("model")).unwrap();
    let week = dir.path().join("week.parquet");
    let args = signalkit::FeatureArgs {
        rows: out.join("rows.parquet"),
        restated: Default::default(),
        store: cfg.encode.store.clone(),
        encoder: Default::default(),
        out: week.clone(),
        pca: None,
        ask_store: None,
    };
    let e = like.clone().under(args.clone()).unwrap_err().to_string();
    assert!(e.contains("--ask-store") && e.contains("#ask-good"), "{e}");
    let args = like.under(signalkit::FeatureArgs { ask_store: Some(out.join("ask-store")), ..args }).unwrap();
    signalkit::build_features(&args).unwrap();
    let s = |p: &Path| p.display().to_string();
    cli(&[
        "predict",
        "--model",
        &s(&out.join("model")),
        "--features",
        &s(&week),
        "--out",
        &s(&dir.path().join("signal.csv")),
    ])
    .ok();

    // Settings that cannot run are refused by name (a zero batch already when the TOML is read).
    let zero = format!("[ask]\nmodel = {model:?}\nquestions = \"q.toml\"\nbatch_size = 0\n");
    let e = toml::from_str::<Config>(&zero).expect_err("a zero batch is refused").to_string();
    assert!(e.contains("batch_size = 0") && e.contains("from 1 to 4096"), "{e}");
    for (set, want) in
        [("knowledge_cutoff = \"June\"", "[ask] knowledge_cutoff"), ("model = \"\"", "[ask] model is required")]
    {
        let mut bad = cfg.clone();
        let text = format!("[ask]\nmodel = {model:?}\nquestions = {:?}\n{set}\n", q.display().to_string());
        let text = if set.starts_with("model") { text.replacen(&format!("model = {model:?}\n"), "", 1) } else { text };
        bad.ask = toml::from_str::<Config>(&text).unwrap().ask;
        let e = run(&bad).unwrap_err().to_string();
        assert!(e.contains(want), "{set}: {e}");
    }
}

#[test]
fn train_is_deterministic_and_predict_writes_a_valid_signal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |p: &str| d.join(p).display().to_string();
    cli(&[
        "join",
        "--targets",
        &repo("data/sample/targets.csv").display().to_string(),
        "--headlines",
        &repo("data/sample/headlines.csv").display().to_string(),
        "--out",
        &s("rows.parquet"),
    ])
    .ok();
    let model = fixtures("tiny-finbert").display().to_string();
    let heads = repo("data/sample/headlines.csv").display().to_string();
    cli(&["encode", "--model", &model, "--headlines", &heads, "--store", &s("store")]).ok();
    cli(&[
        "features",
        "--rows",
        &s("rows.parquet"),
        "--headlines",
        &heads,
        "--store",
        &s("store"),
        "--out",
        &s("f.parquet"),
    ])
    .ok();
    for m in ["m1", "m2"] {
        cli(&["train", "--features", &s("f.parquet"), "--out", &s(m), "--num-iterations", "300"]).ok();
    }
    let m1 = std::fs::read_to_string(d.join("m1/model.txt")).unwrap();
    assert_eq!(m1, std::fs::read_to_string(d.join("m2/model.txt")).unwrap(), "same data, same model");
    let card = json(&d.join("m1/model.json"));
    assert_eq!(card["trees"], 300);
    assert_eq!(card["target"], "target_20d_factor_neutral");
    assert!(card["inputs"][0]["xxh3"].as_str().unwrap().len() == 16);

    // The live-week signal: one row per ticker, strictly inside (0, 1), and it passes submit's checks.
    cli(&["predict", "--model", &s("m1"), "--features", &s("f.parquet"), "--out", &s("signal.csv")]).ok();
    let text = std::fs::read_to_string(d.join("signal.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "bloomberg_ticker,signal");
    let values: Vec<f64> = lines.map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert!(values.len() > 200);
    assert!(values.iter().all(|v| *v > 0.0 && *v < 1.0));
    let ran = cli(&["submit", &s("signal.csv"), "--model-name", "my_model", "--dry-run"]);
    let (ok, log) = (ran.success(), ran.text());
    assert!(ok, "submit --dry-run should accept predict's output: {log}");

    // Churn control: blended with a reversed "last week", the live signal moves toward it, stays a
    // valid signal, and nonsense weights are refused naming the flag.
    let reversed: Vec<String> = std::fs::read_to_string(d.join("signal.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (t, v) = l.rsplit_once(',').unwrap();
            format!("{t},{}", 1.0 - v.parse::<f64>().unwrap())
        })
        .collect();
    std::fs::write(d.join("last.csv"), format!("bloomberg_ticker,signal\n{}\n", reversed.join("\n"))).unwrap();
    let smooth = |a: &str, out: &str| {
        let f = s("f.parquet");
        let (m, last, out) = (s("m1"), s("last.csv"), s(out));
        cli(&["predict", "--model", &m, "--features", &f, "--out", &out, "--smooth", a, "--smooth-with", &last])
    };
    smooth("0.5", "smoothed.csv").ok();
    let read = |p: &str| -> Vec<f64> {
        let text = std::fs::read_to_string(d.join(p)).unwrap();
        text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect()
    };
    let (now, blended) = (read("signal.csv"), read("smoothed.csv"));
    assert!(blended.len() == now.len() && blended.iter().all(|v| *v > 0.0 && *v < 1.0));
    let last: Vec<f64> = now.iter().map(|v| 1.0 - v).collect();
    let distance = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f64>();
    assert!(distance(&blended, &last) < distance(&now, &last), "the blend must move toward last week");
    assert!(distance(&blended, &now) > 0.0);
    let prov: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("smoothed.csv.provenance.json")).unwrap()).unwrap();
    assert_eq!(prov["smoothing"]["weight"], 0.5, "the blend is recorded: {prov}");
    assert!(prov["smoothing"]["previous"]["path"].as_str().unwrap().ends_with("last.csv"), "{prov}");
    let plain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("signal.csv.provenance.json")).unwrap()).unwrap();
    assert!(plain.get("smoothing").is_none(), "{plain}");
    for bad in ["NaN", "1", "-0.1"] {
        let ran = smooth(bad, "bad.csv");
        let (ok, log) = (ran.success(), ran.text());
        assert!(!ok && log.contains("--smooth"), "{bad}: {log}");
    }

    // Every era, with a date column, scores the same as train's own predictions.
    cli(&["predict", "--model", &s("m1"), "--features", &s("f.parquet"), "--out", &s("all.parquet"), "--all-eras"])
        .ok();
    let all = read_parquet(&d.join("all.parquet"));
    assert_eq!(all.get_column_names(), ["bloomberg_ticker", "date", "signal"]);
    cli(&[
        "evaluate",
        "--predictions",
        &s("all.parquet"),
        "--targets",
        &repo("data/sample/targets.csv").display().to_string(),
        "--model",
        &s("m1"),
        "--out",
        &s("eval"),
    ])
    .ok();
    cli(&[
        "evaluate",
        "--predictions",
        &s("m1/predictions.parquet"),
        "--targets",
        &s("f.parquet"),
        "--model",
        &s("m1"),
        "--out",
        &s("eval2"),
    ])
    .ok();
    let (a, b) = (json(&d.join("eval/report.json")), json(&d.join("eval2/report.json")));
    let (a, b) = (a["summary"]["mean"].as_f64().unwrap(), b["summary"]["mean"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-9, "ranked signal and raw prediction score alike: {a} vs {b}");

    // A feature table missing one of the model's columns is refused by name.
    let mut f = read_parquet(&d.join("f.parquet"));
    let _ = f.drop_in_place("p_neutral").unwrap();
    let broken = common::write_parquet(d, "broken.parquet", f);
    let ran = cli(&["predict", "--model", &s("m1"), "--features", &broken.display().to_string(), "--out", &s("x.csv")]);
    let (ok, log) = (ran.success(), ran.text());
    assert!(!ok && log.contains("p_neutral") && log.contains("broken.parquet"), "{log}");
    assert!(!d.join("x.csv").exists());
}

#[test]
fn a_table_without_data_type_needs_train_until() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = polars::prelude::df!(
        "bloomberg_ticker" => ["A US", "B US"],
        "friday_date" => [20200103i64, 20200110],
        "target" => [0.5f64, 0.25],
        "p_positive" => [0.1f32, 0.2],
    )
    .unwrap();
    let p = common::write_parquet(dir.path(), "f.parquet", df.clone());
    let out = dir.path().join("m").display().to_string();
    let ran = cli(&["train", "--features", &p.display().to_string(), "--out", &out, "--target", "target"]);
    let (ok, log) = (ran.success(), ran.text());
    assert!(!ok && log.contains("--train-until") && log.contains("f.parquet"), "{log}");
    let _ = df.drop_in_place("target");
    let p = common::write_parquet(dir.path(), "g.parquet", df);
    let ran = cli(&["train", "--features", &p.display().to_string(), "--out", &out]);
    let (ok, log) = (ran.success(), ran.text());
    assert!(!ok && log.contains("target_20d_factor_neutral"), "{log}");
}
