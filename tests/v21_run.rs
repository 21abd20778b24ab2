//! `signalkit run` with `[numerai] dataset = "signals/v2.1"` through the real binary: Numerai's
//! files downloaded from a Numerai stand-in on 127.0.0.1 (dataset URL, then GET), stacked,
//! joined to headlines, trained, scored as Numerai pays, the live week predicted into a signal
//! file, and the printed `submit --dry-run` command run as printed. The files are a tiny
//! v2.1-shaped set made by the bench generator:
//! `python scripts/bench/bench_scale.py v21 data/fixtures/v21-tiny 30 120 5 600 60`.

mod common;

use std::path::{Path, PathBuf};

use common::mock::*;
use common::*;
use serde_json::{Value, json};

fn v21() -> PathBuf {
    fixtures("v21-tiny")
}

/// Numerai's dataset API for the fixture's files: `dataset(filename:)` answers a URL on this
/// server for `signals/v2.1/NAME`, a GET of it the file's bytes.
fn numerai_datasets() -> impl Fn(&Req, usize, &str) -> Reply + Send + Sync + 'static {
    |req, _, base| {
        if let Some(name) = req.path.strip_prefix("/files/").filter(|_| req.method == "GET") {
            return match std::fs::read(v21().join(name)) {
                Ok(bytes) => Reply::Full(200, vec![], bytes),
                Err(_) => Reply::Text(404, "no such object".into()),
            };
        }
        if req.query().contains("dataset(") {
            let f = req.vars()["filename"].as_str().unwrap_or("").to_string();
            let url = f
                .strip_prefix("signals/v2.1/")
                .filter(|n| v21().join(n).is_file())
                .map(|n| format!("{base}/files/{n}"));
            return ok(json!({"data": {"dataset": url}}));
        }
        Reply::Text(400, "unexpected request".into())
    }
}

/// A run config over the numerai folder `numerai`, into `dir/run`.
fn config(dir: &Path, numerai: &Path, download: bool) -> PathBuf {
    // Numerai's 23 features: 21 numbers and two strings (LightGBM categorical features).
    let mut numeric: Vec<String> = (0..21).map(|j| format!("\"feature_{j:02}\"")).collect();
    numeric.extend(["\"feature_country\"".to_string(), "\"feature_exchange_code\"".to_string()]);
    let news = ["p_positive", "p_negative", "p_neutral", "sentiment", "sentiment_mean_30d", "n_headlines_30d"];
    let news: Vec<String> = news.iter().map(|n| format!("\"{n}\"")).collect();
    let text = format!(
        r#"out = "{out}"
[numerai]
dataset = "signals/v2.1"
dir = "{numerai}"
download = {download}
model_name = "mymodel"
[data]
headlines = "{headlines}"
[encode]
model = "{model}"
store = "{store}"
[train]
features = [{features}]
[train.params]
num_iterations = 30
"#,
        out = dir.join("run").display(),
        numerai = numerai.display(),
        headlines = v21().join("headlines.parquet").display(),
        model = fixtures("tiny-finbert").display(),
        store = dir.join("store").display(),
        features = [numeric, news].concat().join(", "),
    );
    write(dir, "run.toml", &text)
}

#[test]
fn a_v21_run_downloads_numerais_files_and_ends_with_a_signal_the_dry_run_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mock = serve(numerai_datasets());
    let numerai = dir.path().join("numerai");
    let cfg = config(dir.path(), &numerai, true);
    let run = signalkit(["run", "--config"]).arg(&cfg).env("NUMERAI_API_URL", &mock.url).run().ok();
    let text = run.text();

    // The five files the run needs were fetched, byte for byte, and no others.
    let mut asked: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r.query().contains("dataset("))
        .map(|r| r.vars()["filename"].as_str().unwrap_or("").to_string())
        .collect();
    asked.sort();
    let want = [
        "live.parquet",
        "train.parquet",
        "validation.parquet",
        "validation_neutralizer.parquet",
        "validation_sample_weights.parquet",
    ];
    assert_eq!(asked, want.iter().map(|f| format!("signals/v2.1/{f}")).collect::<Vec<_>>());
    for f in want {
        assert_eq!(std::fs::read(numerai.join(f)).unwrap(), std::fs::read(v21().join(f)).unwrap(), "{f}");
    }
    assert!(
        text.contains("2400 train rows (20 eras), 1200 validation rows (10 eras), 120 live rows for 2013-08-02"),
        "{text}"
    );

    // Trained on Numerai's features and the news features, both present in the model card.
    let card: Value = serde_json::from_slice(&std::fs::read(dir.path().join("run/model/model.json")).unwrap()).unwrap();
    let features: Vec<&str> = card["features"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(features.contains(&"feature_00") && features.contains(&"sentiment"), "{features:?}");
    assert!(card["categorical"]["feature_country"]["levels"].as_array().is_some_and(|l| l.len() > 1), "{card}");

    // Scored as Numerai pays: alpha over the validation neutralizers' universe, every era.
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/evaluate/report.json")).unwrap()).unwrap();
    let paid = &report["payout"]["as_paid"];
    assert!(paid["alpha"]["mean"].is_f64(), "{paid}");
    assert!(paid["universe"].as_str().unwrap().contains("neutralizer"), "{paid}");
    assert!(text.contains("as Numerai pays") && text.contains("alpha"), "{text}");

    // The live week's signal: one row per live ticker, strictly inside (0, 1).
    let signal = dir.path().join("run/signal.csv");
    let df = read_csv(&signal);
    assert_eq!(df.height(), 120);
    assert_eq!(df.get_column_names(), ["numerai_ticker", "signal"]);
    let s: Vec<f64> = df.column("signal").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert!(s.iter().all(|v| *v > 0.0 && *v < 1.0), "{s:?}");
    assert!(text.contains(&format!("→ {}", signal.display())), "{text}");

    // The run ends printing the dry-run command; run as printed, it accepts the file.
    let last =
        text.lines().rev().find(|l| l.contains("signalkit submit --dry-run")).unwrap_or_else(|| panic!("{text}"));
    let command = last.split_once("signalkit ").unwrap().1;
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..4], ["submit", "--dry-run", "--model-name", "mymodel"], "{last}");
    let dry = signalkit(words).env_remove("NUMERAI_PUBLIC_ID").env_remove("NUMERAI_SECRET_KEY").run().ok();
    assert!(dry.text().contains("dry run: valid submission"), "{}", dry.text());

    // A second run finds the files and downloads nothing.
    let before = mock.requests().len();
    let again = signalkit(["run", "--config"]).arg(&cfg).env("NUMERAI_API_URL", &mock.url).run().ok();
    assert!(again.text().contains(&format!("found in {}", numerai.display())), "{}", again.text());
    assert_eq!(mock.requests().len(), before);
}

fn read_csv(p: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(p.into()))
        .unwrap()
        .finish()
        .unwrap()
}

#[test]
fn a_v21_run_refuses_missing_or_differently_keyed_files_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let numerai = dir.path().join("numerai");
    std::fs::create_dir_all(&numerai).unwrap();
    std::fs::copy(v21().join("train.parquet"), numerai.join("train.parquet")).unwrap();
    let cfg = config(dir.path(), &numerai, false);
    signalkit(["run", "--config"]).arg(&cfg).run().refused(&[
        "[numerai] dir",
        "missing validation.parquet, live.parquet, validation_neutralizer.parquet, validation_sample_weights.parquet",
        "download = true",
    ]);

    // Every file present, but train keyed the legacy way (bloomberg_ticker, friday_date).
    for f in std::fs::read_dir(v21()).unwrap().flatten() {
        std::fs::copy(f.path(), numerai.join(f.file_name())).unwrap();
    }
    let mut train = read_parquet(&v21().join("train.parquet"));
    train.rename("numerai_ticker", "bloomberg_ticker".into()).unwrap();
    train.rename("date", "friday_date".into()).unwrap();
    write_parquet(&numerai, "train.parquet", train);
    signalkit(["run", "--config"]).arg(&cfg).run().refused(&[
        "train.parquet",
        "lacks numerai_ticker, date",
        "bloomberg_ticker",
        "[numerai] dir",
    ]);

    // Headlines whose tickers never meet numerai_ticker (a suffix that is not Numerai's).
    std::fs::copy(v21().join("train.parquet"), numerai.join("train.parquet")).unwrap();
    let text = std::fs::read_to_string(&cfg).unwrap().replace("[data]\n", "[data]\nticker_suffix = \" LN\"\n");
    let cfg = write(dir.path(), "run.toml", &text);
    signalkit(["run", "--config"]).arg(&cfg).run().refused(&["no Numerai row got a headline", "[data] ticker_suffix"]);

    // A dataset signalkit does not read.
    let text = text.replace("signals/v2.1\"", "signals/v1.0\"");
    let cfg = write(dir.path(), "run.toml", &text);
    signalkit(["run", "--config"]).arg(&cfg).run().refused(&["[numerai] dataset", "signals/v2.1"]);
}
