//! How Signals pays, against numerai-tools 0.7.2: every score in src/metrics.rs's Signals section
//! on the fixtures scripts/fixtures/make_metrics_fixtures.py writes to data/fixtures/metrics/ (ties, NaNs,
//! partial universes, missing neutralizer rows), within 1e-9 (relative below 1). An expected null means
//! numerai-tools raised or gave NaN, and signalkit must give NaN. Run with `--nocapture` to see
//! the largest difference per function.

mod common;

use common::fixtures;
use serde_json::Value;
use signalkit::metrics;

const TOLERANCE: f64 = 1e-9;

fn fixture(name: &str) -> Value {
    let path = fixtures("metrics").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn cases(name: &str) -> Vec<Value> {
    fixture(name)["cases"].as_array().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn columns(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

/// The largest difference seen for one function; `check` asserts each value and tracks it.
#[derive(Default)]
struct Parity {
    max_diff: f64,
    values: usize,
    nan: usize,
}

impl Parity {
    fn check(&mut self, what: &str, got: f64, want: &Value) {
        match want.as_f64() {
            None => {
                assert!(got.is_nan(), "{what}: numerai-tools gives no value, signalkit {got}");
                self.nan += 1;
            }
            Some(w) => {
                // 1e-9, relative for values below 1 (alpha and weights are ~1e-3), down to 1e-15 at 0.
                let diff = (got - w).abs();
                let allowed = TOLERANCE * w.abs().clamp(1e-6, 1.0);
                assert!(diff <= allowed, "{what}: signalkit {got} vs numerai-tools {w} (diff {diff:e})");
                self.max_diff = self.max_diff.max(diff);
                self.values += 1;
            }
        }
    }

    fn report(&self, function: &str) {
        println!(
            "{function}: max |diff| {:e} over {} values, {} NaN as expected",
            self.max_diff, self.values, self.nan
        );
        assert!(self.values > 0, "{function}: the fixtures must have values to compare");
    }
}

#[test]
fn clean_submission_matches() {
    let mut parity = Parity::default();
    for case in cases("clean_submission.json") {
        let universe = strings(&case["universe"]);
        let got = metrics::clean_submission(&universe, &strings(&case["ids"]), &floats(&case["signal"]));
        assert_eq!(got.len(), universe.len());
        let expected = case["expected"].as_array().unwrap();
        for (id, want) in strings(&case["expected_ids"]).iter().zip(expected) {
            let row = universe.iter().position(|u| u == id).unwrap();
            parity.check(&format!("clean_submission {} {id}", case["name"]), got[row], want);
        }
    }
    parity.report("clean_submission");
}

#[test]
fn churn_matches() {
    let (mut plain, mut top_bottom) = (Parity::default(), Parity::default());
    for case in cases("churn.json") {
        let (ids1, s1) = (strings(&case["ids1"]), floats(&case["s1"]));
        let (ids2, s2) = (strings(&case["ids2"]), floats(&case["s2"]));
        let name = &case["name"];
        plain.check(&format!("churn {name}"), metrics::churn(&ids1, &s1, &ids2, &s2, None), &case["expected"]);
        for tb in case["top_bottom"].as_array().unwrap() {
            let n = tb["top_bottom"].as_u64().unwrap() as usize;
            let got = metrics::churn(&ids1, &s1, &ids2, &s2, Some(n));
            top_bottom.check(&format!("churn {name} top_bottom {n}"), got, &tb["expected"]);
        }
    }
    plain.report("churn");
    top_bottom.report("churn top_bottom");
}

#[test]
fn turnover_matches() {
    let mut parity = Parity::default();
    for case in cases("turnover.json") {
        let got = metrics::turnover(
            &strings(&case["ids1"]),
            &floats(&case["s1"]),
            &strings(&case["ids2"]),
            &floats(&case["s2"]),
        );
        parity.check(&format!("turnover {}", case["name"]), got, &case["expected"]);
    }
    parity.report("turnover");
}

#[test]
fn neutral_churn_matches() {
    let mut parity = Parity::default();
    for case in cases("neutral_churn.json") {
        let got = metrics::neutral_churn(
            &strings(&case["ids1"]),
            &floats(&case["s1"]),
            &columns(&case["neutralizers1"]),
            &strings(&case["ids2"]),
            &floats(&case["s2"]),
            &columns(&case["neutralizers2"]),
        );
        parity.check(&format!("neutral_churn {}", case["name"]), got, &case["expected"]);
    }
    parity.report("neutral_churn");
}

#[test]
fn neutral_churn_penalty_matches() {
    let mut parity = Parity::default();
    for case in cases("neutral_churn_penalty.json") {
        let [x, threshold, scaling] =
            ["neutral_churn", "threshold", "scaling_factor"].map(|k| case[k].as_f64().unwrap());
        let got = metrics::neutral_churn_penalty(x, threshold, scaling);
        parity.check(&format!("neutral_churn_penalty({x}, {threshold}, {scaling})"), got, &case["expected"]);
    }
    assert_eq!(
        metrics::neutral_churn_penalty(0.05, metrics::NEUTRAL_CHURN_THRESHOLD, metrics::NEUTRAL_CHURN_SCALING),
        1.0
    );
    parity.report("neutral_churn_penalty");
}

/// One era of scores.json, as parallel slices.
struct Era {
    name: String,
    prediction: Vec<f64>,
    meta_model: Vec<f64>,
    target: Vec<f64>,
    sample_weight: Vec<f64>,
    neutralizers: Vec<Vec<f64>>,
    expected: Value,
}

fn eras() -> Vec<Era> {
    cases("scores.json")
        .into_iter()
        .map(|c| Era {
            name: c["name"].as_str().unwrap().to_string(),
            prediction: floats(&c["prediction"]),
            meta_model: floats(&c["meta_model"]),
            target: floats(&c["target"]),
            sample_weight: floats(&c["sample_weight"]),
            neutralizers: columns(&c["neutralizers"]),
            expected: c["expected"].clone(),
        })
        .collect()
}

#[test]
fn fixtures_have_ties_nans_and_missing_neutralizer_rows() {
    let eras = eras();
    let has_nan = |v: &[f64]| v.iter().any(|x| x.is_nan());
    assert!(eras.iter().any(|e| has_nan(&e.prediction) && has_nan(&e.target) && has_nan(&e.meta_model)));
    assert!(eras.iter().any(|e| e.neutralizers.iter().all(|c| has_nan(c))), "whole neutralizer rows missing");
    let ties = |v: &[f64]| {
        let mut present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        present.sort_by(f64::total_cmp);
        present.windows(2).any(|w| w[0] == w[1])
    };
    assert!(eras.iter().all(|e| ties(&e.prediction)), "every era's predictions have ties");
    assert!(eras.iter().any(|e| e.expected["alpha"].is_null()) && eras.iter().any(|e| !e.expected["alpha"].is_null()));
}

/// Runs `score` on every era and checks it against `expected[key]`.
fn check_scores(key: &str, score: impl Fn(&Era) -> f64) {
    let mut parity = Parity::default();
    for era in eras() {
        parity.check(&format!("{key} {}", era.name), score(&era), &era.expected[key]);
    }
    parity.report(key);
}

#[test]
fn numerai_corr_matches() {
    check_scores("numerai_corr", |e| metrics::numerai_corr(&e.prediction, &e.target));
}

#[test]
fn neutral_correlation_matches() {
    check_scores("neutral_correlation", |e| metrics::neutral_correlation(&e.prediction, &e.neutralizers, &e.target));
}

#[test]
fn alpha_matches() {
    check_scores("alpha", |e| metrics::alpha(&e.prediction, &e.neutralizers, &e.sample_weight, &e.target));
}

#[test]
fn correlation_contribution_matches() {
    check_scores("correlation_contribution", |e| {
        metrics::correlation_contribution(&e.prediction, &e.meta_model, &e.target)
    });
}

#[test]
fn neutral_contribution_matches() {
    check_scores("neutral_contribution", |e| {
        metrics::neutral_contribution(&e.prediction, &e.meta_model, &e.neutralizers, &e.target)
    });
}

#[test]
fn generate_neutralized_weights_matches() {
    for (key, centred) in [("neutralized_weights", false), ("neutralized_weights_centered", true)] {
        let mut parity = Parity::default();
        for era in eras() {
            let got =
                metrics::generate_neutralized_weights(&era.prediction, &era.neutralizers, &era.sample_weight, centred);
            match era.expected[key].as_array() {
                None => assert!(got.iter().all(|w| w.is_nan()), "{key} {}: numerai-tools raises", era.name),
                Some(want) => {
                    for (row, (g, w)) in got.iter().zip(want).enumerate() {
                        parity.check(&format!("{key} {} row {row}", era.name), *g, w);
                    }
                }
            }
        }
        parity.report(key);
    }
}

/// One era of gate.json, owned; `era()` lends it as a SubmissionEra.
struct GateEra {
    ids: Vec<String>,
    signal: Vec<f64>,
    universe: Vec<String>,
    sample_weights: Vec<f64>,
    neutralizers: Vec<Vec<f64>>,
}

impl GateEra {
    fn era(&self) -> metrics::SubmissionEra<'_> {
        metrics::SubmissionEra {
            ids: &self.ids,
            signal: &self.signal,
            universe: &self.universe,
            sample_weights: &self.sample_weights,
            neutralizers: &self.neutralizers,
        }
    }
}

#[test]
fn churn_gate_matches() {
    let f = fixture("gate.json");
    let eras: Vec<GateEra> = f["eras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| GateEra {
            ids: strings(&e["ids"]),
            signal: floats(&e["signal"]),
            universe: strings(&e["universe"]),
            sample_weights: floats(&e["sample_weights"]),
            neutralizers: columns(&e["neutralizers"]),
        })
        .collect();
    let (mut churn, mut turnover, mut neutral) = (Parity::default(), Parity::default(), Parity::default());
    for case in f["cases"].as_array().unwrap() {
        let name = &case["name"];
        let current = eras[case["current"].as_u64().unwrap() as usize].era();
        let previous: Vec<metrics::SubmissionEra> =
            case["previous"].as_array().unwrap().iter().map(|k| eras[k.as_u64().unwrap() as usize].era()).collect();
        let (c, t) = metrics::max_churn_and_turnover(&current, &previous).unwrap_or((f64::NAN, f64::NAN));
        churn.check(&format!("max churn {name}"), c, &case["max_churn"]);
        turnover.check(&format!("max turnover {name}"), t, &case["max_turnover"]);
        let m = metrics::mean_neutral_churn(&current, &previous).unwrap_or(f64::NAN);
        neutral.check(&format!("mean neutral churn {name}"), m, &case["mean_neutral_churn"]);
    }
    churn.report("max_churn_and_turnover (churn)");
    turnover.report("max_churn_and_turnover (turnover)");
    neutral.report("mean_neutral_churn");
}
