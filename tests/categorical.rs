//! Text feature columns train as LightGBM categorical features through the real CLI: a planted
//! country effect is learnt (the model beats the same table without the column), the levels
//! travel in the model card, live levels unseen in training are predicted as missing and
//! counted, walk-forward folds take their levels from their own training eras, and bad inputs
//! are refused naming the column and the fix.

mod common;

use std::path::Path;

use chrono::{Duration, NaiveDate};
use common::{noise, read_parquet, signalkit, write_parquet};
use polars::prelude::*;
use serde_json::Value;

/// Countries and their planted effect on the target (not monotone in the sorted order, so an
/// integer coding of the levels would need many splits to find it).
const COUNTRIES: [(&str, f64); 12] = [
    ("AU", 0.9),
    ("BR", -0.8),
    ("CA", 0.1),
    ("CH", -0.3),
    ("DE", 0.7),
    ("FR", -1.0),
    ("GB", 0.4),
    ("HK", -0.5),
    ("IN", 1.0),
    ("JP", -0.2),
    ("KR", 0.6),
    ("US", -0.7),
];
const TICKERS: usize = 200;
const ERAS: usize = 60;
/// Eras 0..40 train (`--train-until` the 40th Friday); the rest, past the embargo, validate.
const TRAIN_ERAS: usize = 40;
/// A level first seen in this era (a validation era), on every 10th ticker.
const NEW_LEVEL_ERA: usize = 46;

fn friday(era: usize) -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 3).unwrap() + Duration::weeks(era as i64)
}

fn yyyymmdd(era: usize) -> i64 {
    friday(era).format("%Y%m%d").to_string().parse().unwrap()
}

fn country_of(ticker: usize, era: usize) -> &'static str {
    if era >= NEW_LEVEL_ERA && ticker.is_multiple_of(10) { "NEW" } else { COUNTRIES[ticker % COUNTRIES.len()].0 }
}

fn effect(country: &str) -> f64 {
    COUNTRIES.iter().find(|(c, _)| *c == country).map_or(0.0, |(_, e)| *e)
}

/// The feature table: a country (text), a weak numeric signal and a noise column; every 50th
/// row's country is null.
fn table(eras: std::ops::Range<usize>) -> DataFrame {
    let (mut tick, mut date, mut country, mut a, mut b, mut target) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for era in eras {
        for t in 0..TICKERS {
            let i = era * TICKERS + t;
            let c = country_of(t, era);
            let fa = noise(i, 1);
            tick.push(format!("T{t:03}"));
            date.push(yyyymmdd(era));
            country.push((i % 50 != 7).then_some(c));
            a.push(fa as f32);
            b.push(noise(i, 2) as f32);
            target.push(0.5 + 0.2 * effect(c) + 0.1 * fa + 0.3 * (noise(i, 3) - 0.5));
        }
    }
    let n = tick.len();
    DataFrame::new(
        n,
        vec![
            Column::new("numerai_ticker".into(), tick),
            Column::new("friday_date".into(), date),
            Column::new("feature_country".into(), country),
            Column::new("feature_a".into(), a),
            Column::new("feature_b".into(), b),
            Column::new("target".into(), target),
        ],
    )
    .unwrap()
}

fn cli(args: &[&str]) -> common::Run {
    signalkit(args).no_backtrace().history(std::env::temp_dir().join("signalkit-test-history-empty")).run()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn train(features: &Path, out: &Path, extra: &[&str]) -> common::Run {
    let until = friday(TRAIN_ERAS - 1).to_string();
    let mut args = vec!["train", "--features", features.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend(["--target", "target", "--train-until", &until, "--num-iterations", "150"]);
    args.extend(extra);
    cli(&args)
}

/// Mean per-era Pearson correlation of the validation rows' predictions with the target.
fn validation_corr(model: &Path, t: &DataFrame) -> f64 {
    let p = read_parquet(&model.join("predictions.parquet"));
    let pred: Vec<f64> = p.column("prediction").unwrap().f64().unwrap().into_no_null_iter().collect();
    let split: Vec<String> = common::strs(&p, "split").into_iter().map(Option::unwrap).collect();
    let y: Vec<f64> = t.column("target").unwrap().f64().unwrap().into_no_null_iter().collect();
    let mut corrs = vec![];
    for era in 0..ERAS {
        let rows: Vec<usize> = (era * TICKERS..(era + 1) * TICKERS).filter(|&i| split[i] == "validation").collect();
        if rows.is_empty() {
            continue;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = rows.iter().map(|&i| (pred[i], y[i])).unzip();
        corrs.push(pearson(&x, &y));
    }
    assert!(corrs.len() >= 10, "validation eras: {}", corrs.len());
    corrs.iter().sum::<f64>() / corrs.len() as f64
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn levels(card: &Value) -> Vec<String> {
    card["categorical"]["feature_country"]["levels"]
        .as_array()
        .unwrap_or_else(|| panic!("no levels in the card: {card}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn sorted_countries() -> Vec<String> {
    COUNTRIES.iter().map(|(c, _)| c.to_string()).collect()
}

#[test]
fn a_text_feature_trains_as_a_category_and_predict_maps_unseen_levels_to_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = table(0..ERAS);
    let with = write_parquet(d, "with.parquet", t.clone());
    let mut dropped = t.clone();
    let _ = dropped.drop_in_place("feature_country").unwrap();
    let without = write_parquet(d, "without.parquet", dropped);
    let ran = train(&with, &d.join("cat"), &[]).ok();
    train(&without, &d.join("plain"), &[]).ok();

    // The planted country effect is learnt out of sample.
    let (cat, plain) = (validation_corr(&d.join("cat"), &t), validation_corr(&d.join("plain"), &t));
    eprintln!("validation mean corr: with feature_country {cat:.4}, without {plain:.4}");
    assert!(cat > plain + 0.2, "the category carries signal: with {cat:.4}, without {plain:.4}");

    // The card: levels of the training rows only, sorted; the later level counted, not learnt.
    let card = json(&d.join("cat/model.json"));
    assert_eq!(levels(&card), sorted_countries());
    let new_rows = (NEW_LEVEL_ERA..ERAS)
        .flat_map(|e| (0..TICKERS).step_by(10).map(move |t| e * TICKERS + t))
        .filter(|i| i % 50 != 7)
        .count();
    assert_eq!(card["categorical"]["feature_country"]["unseen_rows"], new_rows as u64, "{card}");
    assert!(
        ran.stderr.contains("feature_country") && ran.stderr.contains(&format!("{new_rows} rows")),
        "{}",
        ran.stderr
    );
    assert!(card["categorical"].get("feature_a").is_none());

    // LightGBM really split on categories (bitsets), not on the codes as numbers.
    let text = std::fs::read_to_string(d.join("cat/model.txt")).unwrap();
    assert!(text.contains("cat_boundaries=") && text.contains("cat_threshold="), "no categorical split in model.txt");
    let infos = text.lines().find_map(|l| l.strip_prefix("feature_infos=")).unwrap();
    let country = infos.split(' ').next().unwrap();
    assert!(!country.starts_with('[') && country.split(':').count() >= 10, "feature_country's info: {country}");

    // The card round trip: loaded as written, serialised back the same.
    let model = signalkit::model::Model::load(&d.join("cat")).unwrap();
    assert_eq!(model.card.categorical["feature_country"].levels, sorted_countries());
    let again: Value = serde_json::to_value(&model.card).unwrap();
    assert_eq!(again, card);

    // Importance shuffles the coded column: the country ranks first out of sample.
    let imp = d.join("imp");
    cli(&["importance", "--model", &s(&d.join("cat")), "--features", &s(&with), "--out", &s(&imp)]).ok();
    let rows = json(&imp.join("importance.json"));
    assert_eq!(rows[0]["feature"], "feature_country", "{rows}");
    assert!(rows[0]["mda"]["mean"].as_f64().unwrap() > 0.1, "{rows}");

    // The live week: an unseen level and a null go the same way (missing), a known level does not.
    let mut live = table(ERAS..ERAS + 1);
    let mut countries: Vec<Option<String>> = common::strs(&live, "feature_country");
    let mut fa: Vec<f32> = live.column("feature_a").unwrap().f32().unwrap().into_no_null_iter().collect();
    let mut fb: Vec<f32> = live.column("feature_b").unwrap().f32().unwrap().into_no_null_iter().collect();
    for (r, c) in [(1, Some("ZZ")), (2, None), (3, Some("IN")), (4, Some("FR"))] {
        countries[r] = c.map(String::from);
        (fa[r], fb[r]) = (0.5, 0.5);
    }
    countries[5] = Some("ZZ".into());
    countries[0] = Some("US".into());
    // Every 10th ticker holds NEW (seen only after training), T001 and T005 ZZ (never seen).
    let unseen = countries.iter().flatten().filter(|c| !sorted_countries().contains(c)).count();
    assert_eq!(unseen, TICKERS / 10 - 1 + 2);
    live.replace("feature_country", Column::new("feature_country".into(), countries)).unwrap();
    live.replace("feature_a", Column::new("feature_a".into(), fa)).unwrap();
    live.replace("feature_b", Column::new("feature_b".into(), fb)).unwrap();
    let live_path = write_parquet(d, "live.parquet", live);
    let signal = d.join("signal.csv");
    let ran = cli(&["predict", "--model", &s(&d.join("cat")), "--features", &s(&live_path), "--out", &s(&signal)]).ok();
    let counted = format!("feature_country: {unseen} rows");
    assert!(ran.stdout.contains("levels unseen in training") && ran.stdout.contains(&counted), "{}", ran.stdout);
    assert!(ran.stderr.contains("warning") && ran.stderr.contains(&counted), "{}", ran.stderr);
    let text = std::fs::read_to_string(&signal).unwrap();
    let value = |ticker: &str| -> f64 {
        text.lines().find(|l| l.starts_with(ticker)).unwrap().rsplit(',').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("T001"), value("T002"), "an unseen level is predicted as missing");
    assert!(value("T003") > value("T004") + 0.05, "IN (+1.0) above FR (-1.0): {} vs {}", value("T003"), value("T004"));
}

#[test]
fn walk_forward_folds_take_levels_from_their_own_training_eras() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let features = write_parquet(d, "f.parquet", table(0..ERAS));
    let out = d.join("wf");
    train(&features, &out, &["--walk-forward", "2"]).ok();
    let (fold1, fold2) = (json(&out.join("fold-1/model.json")), json(&out.join("fold-2/model.json")));
    let last_train = |c: &Value| c["split"]["train"].as_array().unwrap().last().unwrap().as_i64().unwrap();
    assert!(last_train(&fold1) < yyyymmdd(NEW_LEVEL_ERA), "fold 1 ends before the new level");
    assert!(last_train(&fold2) >= yyyymmdd(NEW_LEVEL_ERA), "fold 2 trains on eras with it: {}", last_train(&fold2));
    assert_eq!(levels(&fold1), sorted_countries(), "a level of the validation eras must not shape fold 1");
    let mut with_new = sorted_countries();
    with_new.push("NEW".into());
    with_new.sort();
    assert_eq!(levels(&fold2), with_new);
}

#[test]
fn bad_text_features_are_refused_naming_the_column_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut t = table(0..ERAS);
    let ids: Vec<String> = (0..t.height()).map(|i| format!("row{i}")).collect();
    t.with_column(Column::new("feature_id".into(), ids)).unwrap();
    let p = write_parquet(d, "ids.parquet", t.clone());
    train(&p, &d.join("m"), &[]).refused(&["ids.parquet", "feature_id", "8000 distinct", "at most 1000 levels"]);

    // A live table whose country column holds numbers, for a model trained on it as text.
    let _ = t.drop_in_place("feature_id").unwrap();
    let p = write_parquet(d, "f.parquet", t.clone());
    train(&p, &d.join("m"), &[]).ok();
    let codes: Vec<f32> = (0..t.height()).map(|i| (i % 12) as f32).collect();
    t.replace("feature_country", Column::new("feature_country".into(), codes)).unwrap();
    let numbers = write_parquet(d, "numbers.parquet", t);
    let out = d.join("x.csv");
    cli(&["predict", "--model", &s(&d.join("m")), "--features", &s(&numbers), "--out", &s(&out)]).refused(&[
        "numbers.parquet",
        "feature_country",
        "trained on it as text",
    ]);
    assert!(!out.exists());
}

/// Python lightgbm (4.7.0) with the country as a pandas category, trained on the same rows with
/// the same parameters, predicts every row of the fixture (ZZ, a level only in validation eras,
/// and nulls among them) as signalkit's `train` does (scripts/fixtures/make_categorical_reference.py).
#[test]
fn categorical_predictions_match_python_lightgbm_with_a_pandas_category() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = common::fixtures("lightgbm-categorical");
    let reference = json(&fixture.join("reference.json"));
    let mut toml = String::from("[train]\ntarget = \"target\"\n\n[train.params]\n");
    for (k, v) in reference["params"].as_object().unwrap() {
        toml.push_str(&format!("{k} = {v}\n"));
    }
    let config = common::write(d, "config.toml", &toml);
    let (table, out) = (fixture.join("table.parquet"), d.join("m"));
    cli(&["train", "--features", &s(&table), "--out", &s(&out), "--config", &s(&config)]).ok();
    let card = json(&out.join("model.json"));
    assert_eq!(card["categorical"]["feature_country"]["levels"], reference["levels"]);
    assert_eq!(card["features"], reference["features"]);
    let p = read_parquet(&out.join("predictions.parquet"));
    let got: Vec<f64> = p.column("prediction").unwrap().f64().unwrap().into_no_null_iter().collect();
    let want: Vec<f64> = reference["prediction"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    eprintln!("largest difference from Python lightgbm over {} rows: {worst:e}", got.len());
    assert!(worst <= 1e-9, "largest difference from Python lightgbm: {worst:e}");
}
