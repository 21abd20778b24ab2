//! The feature table: latest-headline outputs and window aggregates, nulls kept, inputs checked.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use polars::prelude::*;
use signalkit::data::headlines::HeadlineOptions;
use signalkit::data::tickers::TickerRule;
use signalkit::encode::hub::ModelSource;
use signalkit::encode::store::Store;
use signalkit::features::Restated;
use signalkit::features::{FeatureArgs, HALF_LIFE_DAYS, Pca, PcaOption, build_features, pca_path};
use signalkit::pit::{JoinArgs, Window, join_files};
use signalkit::provenance::Provenance;
use signalkit::{EncodeArgs, encode_files};

const TARGETS: &str = "bloomberg_ticker,friday_date,data_type,target_20d_factor_neutral
AAA US,20240301,train,0.5
BBB US,20240301,train,0.25
";
const HEADLINES: &str = "ticker,published_at,headline
AAA,2024-02-29T00:00:00Z,Acme wins a record contract
AAA,2024-02-20T00:00:00Z,Acme warns of weaker demand
AAA,2024-01-01T00:00:00Z,Acme story far too old
AAA,2024-03-02T00:00:00Z,Acme news after the Friday
";

struct Setup {
    _dir: tempfile::TempDir,
    args: FeatureArgs,
}

fn setup(encode: bool) -> Setup {
    setup_with(HEADLINES, encode)
}

fn setup_with(headline_csv: &str, encode: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = fixtures("tiny-finbert");
    let (targets, headlines) = (write(d, "t.csv", TARGETS), write(d, "h.csv", headline_csv));
    let rows = d.join("rows.parquet");
    join_files(&JoinArgs {
        targets,
        headlines: headlines.clone(),
        out: rows.clone(),
        window: Window::default(),
        tickers: TickerRule::default(),
        ticker_map: None,
        headline_options: HeadlineOptions::default(),
    })
    .unwrap();
    let store = d.join("store");
    if encode {
        encode_files(&EncodeArgs {
            source: ModelSource::new(fixture.to_str().unwrap()),
            headlines: headlines.clone(),
            headline_options: HeadlineOptions::default(),
            store: store.clone(),
            device: "cpu".into(),
            batch_size: 8,
            max_len: 64,
            precision: signalkit::encode::model::Precision::F32,
            shard_size: 100,
            progress: false,
            shard: None,
        })
        .unwrap();
    } else {
        std::fs::create_dir_all(&store).unwrap();
    }
    let args = FeatureArgs {
        rows,
        restated: Default::default(),
        store,
        encoder: Default::default(),
        out: d.join("features.parquet"),
        pca: None,
        ask_store: None,
    };
    Setup { _dir: dir, args }
}

fn f32s(df: &DataFrame, col: &str) -> Vec<Option<f32>> {
    df.column(col).unwrap().f32().unwrap().iter().collect()
}

#[test]
fn latest_outputs_and_window_aggregates() {
    let s = setup(true);
    let summary = build_features(&s.args).unwrap();
    assert_eq!((summary.rows, summary.with_headline, summary.features), (2, 1, 3 + 6 + 32));
    let df = read_parquet(&s.args.out);

    // The store's own numbers for the two visible headlines.
    let (store, _) = Store::find(&s.args.store, None).unwrap();
    let table = store.read_all().unwrap();
    let sent = |text: &str| {
        let texts = strs(&table, "text");
        let i = texts.iter().position(|t| t.as_deref() == Some(text)).unwrap();
        table.column("sentiment").unwrap().f32().unwrap().get(i).unwrap()
    };
    let (good, bad) = (sent("Acme wins a record contract"), sent("Acme warns of weaker demand"));
    assert!((good - bad).abs() > 1e-3, "the two headlines should differ: {good} {bad}");

    // Row 1 sees the 02-29 (age 1 day) and 02-20 (age 10 days) headlines; never the later one.
    assert_eq!(f32s(&df, "sentiment")[0], Some(good));
    assert_eq!(f32s(&df, "sentiment_mean_7d")[0], Some(good));
    assert!((f32s(&df, "sentiment_mean_30d")[0].unwrap() - (good + bad) / 2.0).abs() < 1e-6);
    assert_eq!(f32s(&df, "sentiment_min_window")[0], Some(good.min(bad)));
    assert_eq!(f32s(&df, "sentiment_max_window")[0], Some(good.max(bad)));
    let (w1, w10) = (0.5f64.powf(1.0 / HALF_LIFE_DAYS), 0.5f64.powf(10.0 / HALF_LIFE_DAYS));
    let decayed = (w1 * good as f64 + w10 * bad as f64) / (w1 + w10);
    assert!((f32s(&df, "sentiment_decayed")[0].unwrap() as f64 - decayed).abs() < 1e-6);
    let p: f32 = ["p_positive", "p_negative", "p_neutral"].iter().map(|c| f32s(&df, c)[0].unwrap()).sum();
    assert!((p - 1.0).abs() < 1e-5);
    assert!(f32s(&df, "cls_031")[0].is_some());

    // Row 2 has no headline: every feature is null, never zero.
    for c in ["p_positive", "sentiment", "sentiment_mean_30d", "sentiment_decayed", "cls_000"] {
        assert_eq!(f32s(&df, c)[1], None, "{c}");
    }
    // The rows' own columns come through.
    assert_eq!(strs(&df, "bloomberg_ticker"), vec![Some("AAA US".into()), Some("BBB US".into())]);
}

#[test]
fn join_options_come_from_the_rows_and_restating_others_is_refused() {
    let mut s = setup(true);
    // Given nothing, features redoes the join from the options recorded in rows.parquet.
    build_features(&s.args).unwrap();
    let prov = Provenance::read(&s.args.out).unwrap().expect("features record their provenance");
    let join = prov.join.expect("the join's record is copied forward");
    assert_eq!((join.window_days, join.cutoff_hours), (30, 0.0));
    assert!(prov.encoder.expect("the encoder is recorded").fingerprint.len() >= 12);
    // Restating an option the join used is fine; a different one is refused, naming both sides.
    s.args.restated.window_days = Some(30);
    build_features(&s.args).unwrap();
    std::fs::remove_file(&s.args.out).unwrap();
    s.args.restated.window_days = Some(5);
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("rows.parquet") && e.contains("joined with --window-days 30 but features was given 5"), "{e}");
    s.args.restated = Restated { cutoff_hours: Some(72.0), ..Default::default() };
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("--cutoff-hours 0 but features was given 72"), "{e}");
    assert!(!s.args.out.exists());
}

#[test]
fn headlines_changed_since_the_join_are_refused() {
    let s = setup(true);
    let join = Provenance::read(&s.args.rows).unwrap().unwrap().join.unwrap();
    let path = std::path::PathBuf::from(&join.headlines.path);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("AAA,2024-02-29T12:00:00Z,Acme adds a late story\n");
    std::fs::write(&path, text).unwrap();
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("changed since it was used") && e.contains(&join.headlines.xxh3), "{e}");
}

#[test]
fn rows_without_provenance_are_rejoined_from_restated_options() {
    let mut s = setup(true);
    // Strip the metadata: a rows file from another tool.
    let df = read_parquet(&s.args.rows);
    let bare = write_parquet(s._dir.path(), "bare.parquet", df);
    s.args.rows = bare;
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("does not record how it was joined") && e.contains("--headlines"), "{e}");
    s.args.restated.headlines = Some(s._dir.path().join("h.csv"));
    build_features(&s.args).unwrap();
    // The old guard still holds: other options give other headlines and are refused.
    s.args.restated.cutoff_hours = Some(72.0);
    std::fs::remove_file(&s.args.out).unwrap();
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("but these inputs give 'Acme news after the Friday'"), "{e}");
}

#[test]
fn the_output_never_replaces_an_input() {
    let mut s = setup(true);
    s.args.out = s.args.rows.clone();
    let before = std::fs::read(&s.args.rows).unwrap();
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("would replace the input"), "{e}");
    assert_eq!(std::fs::read(&s.args.rows).unwrap(), before);
}

#[test]
fn headlines_missing_from_the_store_are_refused() {
    let s = setup(false);
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("the store is empty: run signalkit encode first"), "{e}");
}

/// Sample rows joined and encoded with the tiny fixture: (dir, rows, store).
fn sample_encoded() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = dir.path().join("rows.parquet");
    join_files(&JoinArgs {
        targets: root.join("data/sample/targets.csv"),
        out: rows.clone(),
        window: Window::default(),
        tickers: TickerRule::default(),
        ticker_map: None,
        headlines: root.join("data/sample/headlines.csv"),
        headline_options: HeadlineOptions::default(),
    })
    .unwrap();
    let store = dir.path().join("store");
    encode_files(&EncodeArgs {
        source: ModelSource::new(fixtures("tiny-finbert").to_str().unwrap()),
        headlines: root.join("data/sample/headlines.csv"),
        headline_options: HeadlineOptions::default(),
        store: store.clone(),
        device: "cpu".into(),
        batch_size: 32,
        max_len: 64,
        precision: signalkit::encode::model::Precision::F32,
        shard_size: 4096,
        progress: false,
        shard: None,
    })
    .unwrap();
    (dir, rows, store)
}

#[test]
fn pca_is_fitted_on_training_eras_and_reapplied_unchanged() {
    let (dir, rows, store) = sample_encoded();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args = |out: &str, pca: Option<PcaOption>| FeatureArgs {
        rows: rows.clone(),
        restated: Default::default(),
        store: store.clone(),
        encoder: Default::default(),
        out: dir.path().join(out),
        pca,
        ask_store: None,
    };
    let s = build_features(&args("fit.parquet", Some(PcaOption::Fit { k: 4, until: None }))).unwrap();
    let fit = read_parquet(&dir.path().join("fit.parquet"));
    let names: Vec<String> = fit.get_column_names().iter().map(|c| c.to_string()).collect();
    assert!(names.iter().all(|c| !c.starts_with("cls_")), "{names:?}");
    assert_eq!(names.iter().filter(|c| c.starts_with("pc_")).count(), 4);
    assert_eq!(s.features, 4 + 4 + 5);

    let pca = Pca::read(&pca_path(&dir.path().join("fit.parquet"))).unwrap();
    // Fitted on the training eras only: the sample's last training Friday, not a validation one.
    let targets = std::fs::read_to_string(root.join("data/sample/targets.csv")).unwrap();
    let last_train =
        targets.lines().filter(|l| l.contains(",train,")).map(|l| l.split(',').nth(1).unwrap()).max().unwrap();
    assert_eq!(pca.last_fit_friday.replace('-', ""), last_train);
    // Orthonormal components, explained variance non-increasing.
    for (a, u) in pca.components.iter().enumerate() {
        for (b, v) in pca.components.iter().enumerate() {
            let dot: f64 = u.iter().zip(v).map(|(x, y)| x * y).sum();
            assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-9);
        }
    }
    assert!(pca.explained.windows(2).all(|w| w[0] >= w[1]) && pca.explained[0] > 0.0);
    // The scores' variance on the fit set follows the same order.
    let var = |c: &str| {
        let v: Vec<f64> = fit.column(c).unwrap().f32().unwrap().into_no_null_iter().map(|x| x as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64
    };
    assert!(var("pc_000") > var("pc_003"));

    // Re-applying the saved projection (the live week) gives the same numbers, and never refits.
    build_features(&args("apply.parquet", Some(PcaOption::Apply(pca_path(&dir.path().join("fit.parquet")))))).unwrap();
    let applied = read_parquet(&dir.path().join("apply.parquet"));
    for j in 0..4 {
        let c = format!("pc_{j:03}");
        assert!(fit.column(&c).unwrap().equals_missing(applied.column(&c).unwrap()), "{c}");
    }
    assert!(!pca_path(&dir.path().join("apply.parquet")).exists());

    // A projection from another model is refused.
    let mut other = pca.clone();
    other.model = "someone/else".into();
    let p = dir.path().join("other.pca.json");
    std::fs::write(&p, serde_json::to_string(&other).unwrap()).unwrap();
    let e = build_features(&args("x.parquet", Some(PcaOption::Apply(p)))).unwrap_err().to_string();
    assert!(e.contains("someone/else") && e.contains("other.pca.json"), "{e}");
}

fn ask(dir: &Path, headlines: &Path, store: &Path) {
    let q = "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? Answer YES, NO or UNKNOWN.\\n{headline}\"\n";
    ask_with(dir, headlines, store, q, None);
}

/// `signalkit ask` with the tiny Qwen2 fixture, the questions `toml` and optional `--names`.
fn ask_with(dir: &Path, headlines: &Path, store: &Path, toml: &str, names: Option<PathBuf>) {
    let q = write(dir, "q.toml", toml);
    let model = fixtures("tiny-qwen2");
    signalkit::ask::ask_files(&signalkit::ask::AskArgs {
        source: ModelSource::new(model.to_str().unwrap()),
        questions: q,
        headlines: headlines.to_path_buf(),
        headline_options: HeadlineOptions::default(),
        store: store.to_path_buf(),
        device: "cpu".into(),
        shard_size: 100,
        batch_size: 4,
        options: signalkit::ask::AskOptions {
            anonymise: false,
            knowledge_cutoff: Some("2024-06-30".into()),
            ..Default::default()
        },
        shard: None,
        prefix_cache: true,
        gguf: None,
        names,
    })
    .unwrap();
}

#[test]
fn ticker_questions_are_read_per_ticker_and_headline() {
    let both = "ticker,published_at,headline\nAAA,2024-02-29T00:00:00Z,Shares rise after results\nBBB,2024-02-29T00:00:00Z,Shares rise after results\n";
    let s = setup_with(both, true);
    let d = s.args.rows.parent().unwrap().to_path_buf();
    let store = d.join("ask");
    let toml = "[[ask.question]]\nname = \"tick\"\nprompt = \"Good for {company} ({ticker})? YES, NO or UNKNOWN.\\n{headline}\"\n";
    ask_with(&d, &d.join("h.csv"), &store, toml, None);
    let args = FeatureArgs { ask_store: Some(store.clone()), ..s.args.clone() };
    build_features(&args).unwrap();
    let score = f32s(&read_parquet(&args.out), "ask_tick_score");
    let answers = signalkit::ask::read_answers(&store).unwrap();
    let want = |t: &str| signalkit::ask::Answers::score(&answers[0].get(t, "Shares rise after results").unwrap());
    assert_eq!((score[0], score[1]), (Some(want("AAA")), Some(want("BBB"))), "each row reads its own ticker's answer");
    assert_ne!(score[0], score[1], "the ticker reaches the prompt, so the same headline is answered twice");
    // The same store asked again with AAA named "Acme": the names file is part of the question's
    // identity, so the store now holds the question twice → refused.
    let names = write(&d, "names.csv", "ticker,name\nAAA,Acme Corp\n");
    ask_with(&d, &d.join("h.csv"), &store, toml, Some(names));
    let e = build_features(&args).unwrap_err().to_string();
    assert!(e.contains("question 'tick'") && e.contains("--names"), "{e}");
}

#[test]
fn ask_store_adds_the_latest_headlines_answers() {
    let s = setup(true);
    let d = s.args.rows.parent().unwrap().to_path_buf();
    let store = d.join("ask");
    ask(&d, &d.join("h.csv"), &store);
    let args = FeatureArgs { ask_store: Some(store), ..s.args.clone() };
    build_features(&args).unwrap();
    let df = read_parquet(&args.out);
    let col = |c: &str| f32s(&df, c);
    let (y, n, u, score) =
        (col("ask_good_p_yes"), col("ask_good_p_no"), col("ask_good_p_unknown"), col("ask_good_score"));
    let (y0, n0, u0) = (y[0].unwrap(), n[0].unwrap(), u[0].unwrap());
    assert!((y0 + n0 + u0 - 1.0).abs() < 1e-5 && (score[0].unwrap() - (y0 - n0)).abs() < 1e-6);
    assert_eq!((y[1], score[1]), (None, None), "BBB has no headline");
    let p = Provenance::read(&args.out).unwrap().unwrap();
    assert_eq!(p.ask.len(), 1);
    assert!(p.ask[0].id.ends_with("#ask-good"), "{:?}", p.ask);
    assert_eq!(p.knowledge_cutoff.as_deref(), Some("2024-06-30"), "ask --knowledge-cutoff reaches the provenance");
}

#[test]
fn ask_store_missing_the_latest_headline_is_refused() {
    let s = setup(true);
    let d = s.args.rows.parent().unwrap().to_path_buf();
    let store = d.join("ask");
    ask(
        &d,
        &write(&d, "other.csv", "ticker,published_at,headline\nAAA,2024-01-01T00:00:00Z,Acme story far too old\n"),
        &store,
    );
    let e = build_features(&FeatureArgs { ask_store: Some(store), ..s.args.clone() }).unwrap_err().to_string();
    assert!(e.contains("2 visible headlines were not asked question 'good'"), "{e}");
    assert!(e.contains("Acme wins a record contract"), "the latest headline is the example: {e}");
}

#[test]
fn ask_score_window_aggregates_are_point_in_time() {
    // The Friday 2024-03-01 cutoff: a headline exactly at it is not visible, nor one 60 days old.
    let csv = format!("{HEADLINES}AAA,2024-03-01T00:00:00Z,Acme at the very cutoff\n");
    let s = setup_with(&csv, true);
    let d = s.args.rows.parent().unwrap().to_path_buf();
    let store = d.join("ask");
    ask(&d, &d.join("h.csv"), &store);
    let args = FeatureArgs { ask_store: Some(store.clone()), ..s.args.clone() };
    let summary = build_features(&args).unwrap();
    assert_eq!(summary.features, 3 + 6 + 32 + 4 + 5, "4 answer columns and 5 window aggregates");
    let answers = signalkit::ask::read_answers(&store).unwrap();
    let score = |t: &str| signalkit::ask::Answers::score(&answers[0].by_text[t]);
    let (good, bad) = (score("Acme wins a record contract"), score("Acme warns of weaker demand"));
    let (old, at_cutoff) = (score("Acme story far too old"), score("Acme at the very cutoff"));
    for (a, b) in [(good, bad), (good, old), (bad, old), (good, at_cutoff)] {
        assert!((a - b).abs() > 1e-5, "the fixture's scores must differ for this test to bite: {a} {b}");
    }
    let df = read_parquet(&args.out);
    let col = |c: &str| f32s(&df, &format!("ask_good_score{c}"));
    let close = |got: Option<f32>, want: f64| assert!((got.unwrap() as f64 - want).abs() < 1e-6, "{got:?} {want}");
    assert_eq!(col("")[0], Some(good), "the latest is 02-29, not the headline at the cutoff");
    close(col("_mean_7d")[0], good as f64);
    close(col("_mean_30d")[0], (good as f64 + bad as f64) / 2.0);
    let (w1, w10) = (0.5f64.powf(1.0 / HALF_LIFE_DAYS), 0.5f64.powf(10.0 / HALF_LIFE_DAYS));
    close(col("_decayed")[0], (w1 * good as f64 + w10 * bad as f64) / (w1 + w10));
    close(col("_min_window")[0], good.min(bad) as f64);
    close(col("_max_window")[0], good.max(bad) as f64);
    for c in ["", "_mean_7d", "_mean_30d", "_decayed", "_min_window", "_max_window"] {
        assert_eq!(col(c)[1], None, "BBB sees no headline: {c}");
    }
    let p = Provenance::read(&args.out).unwrap().unwrap();
    assert!(p.ask.len() == 1 && p.ask[0].id.ends_with("#ask-good"), "the provenance names the question: {:?}", p.ask);
    assert_eq!(p.ask[0], answers[0].key);
}
