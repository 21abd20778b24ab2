//! numerai_corr and per-era statistics against numerai-tools (data/fixtures/metrics.json, made
//! by scripts/fixtures/make-reference.sh), and LightGBM predictions against Python lightgbm.

mod common;

use common::fixtures;
use serde_json::Value;
use signalkit::metrics::{self, Summary};
use signalkit::model::FeatureMatrix;
use signalkit::train::train_booster;

fn fixture(name: &str) -> Value {
    let path = fixtures(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-9, "{what}: signalkit {a} vs numerai-tools {b} (diff {:e})", (a - b).abs());
}

#[test]
fn metrics_match_numerai_tools() {
    let f = fixture("metrics.json");
    let eras: Vec<i32> = f["era"].as_array().unwrap().iter().map(|e| e.as_i64().unwrap() as i32).collect();
    let p = floats(&f["prediction"]);
    let t = floats(&f["target"]);
    assert!(p.iter().any(|x| x.is_nan()) && t.iter().any(|x| x.is_nan()), "fixture must contain NaNs");
    let feats: Vec<Vec<f64>> = ["f1", "f2", "f3"].iter().map(|k| floats(&f["features"][k])).collect();
    let want = &f["expected"];

    let per_era = metrics::per_era(&p, &t, &eras);
    let want_corr = floats(&want["per_era_corr"]);
    assert_eq!(per_era.len(), want_corr.len());
    for (got, w) in per_era.iter().zip(&want_corr) {
        close(got.corr, *w, &format!("numerai_corr era {}", got.era));
    }
    let groups = metrics::era_groups(&eras);
    for (k, (era, rows)) in groups.iter().enumerate() {
        // numerai-tools is given the rows with a prediction for FNC and exposure.
        let keep: Vec<usize> = rows.iter().copied().filter(|&i| !p[i].is_nan()).collect();
        let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let fe = metrics::from_columns(keep.len(), &feats.iter().map(|c| pick(c)).collect::<Vec<_>>());
        close(
            metrics::feature_neutral_corr(&pick(&p), fe.view(), &pick(&t)),
            floats(&want["fnc"])[k],
            &format!("FNC era {era}"),
        );
        let (_, exposure) = metrics::max_feature_correlation(&pick(&p), fe.view()).unwrap();
        close(exposure, floats(&want["exposure"])[k], &format!("exposure era {era}"));
    }
    let s: Summary = metrics::summarize(&per_era.iter().map(|e| e.corr).collect::<Vec<_>>());
    let w = &want["summary"];
    close(s.mean, w["mean"].as_f64().unwrap(), "mean");
    close(s.std, w["std"].as_f64().unwrap(), "std");
    close(s.sharpe, w["sharpe"].as_f64().unwrap(), "sharpe");
    close(s.max_drawdown, w["max_drawdown"].as_f64().unwrap(), "max drawdown");
    close(s.share_positive, w["share_positive"].as_f64().unwrap(), "share positive");
    assert_eq!(s.eras as u64, w["eras"].as_u64().unwrap());
}

#[test]
fn lightgbm_predictions_match_python() {
    let f = fixture("lightgbm.json");
    let k = f["n_features"].as_u64().unwrap() as usize;
    let n_train = f["train_rows"].as_u64().unwrap() as usize;
    let x: Vec<f32> = floats(&f["x"]).into_iter().map(|v| v as f32).collect();
    let y: Vec<f32> = floats(&f["y"]).into_iter().map(|v| v as f32).collect();
    // Row-major, as signalkit's trainer builds it.
    let params = f["params"].as_object().unwrap().clone();
    let train_x = FeatureMatrix::from_shape_vec((n_train, k), x[..n_train * k].to_vec()).unwrap();
    let booster = train_booster(train_x, &y[..n_train], None, &params).unwrap();
    let got = booster.predict(&x[n_train * k..], k as i32, true).unwrap();
    let want = floats(&f["prediction"]);
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-9, "largest difference from Python lightgbm: {worst:e}");
    // The model learned something (not a constant).
    assert!(metrics::std_dev(&got) > 1e-3);
}
