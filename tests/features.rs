//! The feature table: latest-headline outputs and window aggregates, nulls kept, inputs checked.

mod common;

use std::path::Path;

use common::*;
use polars::prelude::*;
use signalkit::data::headlines::HeadlineOptions;
use signalkit::data::tickers::TickerRule;
use signalkit::encode::hub::ModelSource;
use signalkit::encode::store::Store;
use signalkit::features::{FeatureArgs, HALF_LIFE_DAYS, build_features};
use signalkit::pit::{JoinArgs, Window, join_files};
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
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/tiny-finbert");
    let (targets, headlines) = (write(d, "t.csv", TARGETS), write(d, "h.csv", HEADLINES));
    let rows = d.join("rows.parquet");
    join_files(&JoinArgs {
        targets,
        headlines: headlines.clone(),
        out: rows.clone(),
        window: Window::default(),
        tickers: TickerRule::default(),
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
            shard_size: 100,
            progress: false,
        })
        .unwrap();
    } else {
        std::fs::create_dir_all(&store).unwrap();
    }
    let args = FeatureArgs {
        rows,
        headlines,
        headline_options: HeadlineOptions::default(),
        tickers: TickerRule::default(),
        window: Window::default(),
        store,
        model: None,
        out: d.join("features.parquet"),
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
    assert_eq!(f32s(&df, "sentiment_min_30d")[0], Some(good.min(bad)));
    assert_eq!(f32s(&df, "sentiment_max_30d")[0], Some(good.max(bad)));
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
fn other_join_options_are_refused() {
    let mut s = setup(true);
    s.args.window = Window { days: 5, cutoff_hours: 0.0 };
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("rows.parquet: row 1, column 'headline'") && e.contains("--window-days"), "{e}");
    s.args.window = Window { days: 30, cutoff_hours: 72.0 };
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("'Acme wins a record contract' (1/2 headlines in 7/30 days) but these inputs give 'Acme news after the Friday'"), "{e}");
    assert!(!s.args.out.exists());
}

#[test]
fn headlines_missing_from_the_store_are_refused() {
    let s = setup(false);
    let e = build_features(&s.args).unwrap_err().to_string();
    assert!(e.contains("the store is empty: run signalkit encode first"), "{e}");
}
