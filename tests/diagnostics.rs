//! `signalkit diagnostics` and `signalkit submissions` against a Numerai stand-in on 127.0.0.1,
//! answering in numerapi's documented shapes (upload auth → presigned PUT → createDiagnostics →
//! diagnostics polled; submissions; v2RoundModelPerformances).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::mock::*;
use common::{signalkit, write};
use serde_json::{Value, json};
use signalkit::numerai::ApiArgs;
use signalkit::numerai::diagnostics::{DiagnosticsArgs, diagnostics};

const PUBLIC: &str = "PUBLICID42";
const SECRET: &str = "S3CRETxyz987secretKEY";
const MODEL_ID: &str = "model-uuid-11";

/// How the stand-in behaves.
#[derive(Clone, Copy)]
struct Plan {
    /// Status of the presigned PUT.
    put_status: u16,
    /// Polls answered "pending" before the answer.
    pending: usize,
    /// The final status word.
    final_status: &'static str,
}

const GOOD: Plan = Plan { put_status: 200, pending: 2, final_status: "done" };

fn per_era() -> Value {
    json!([
        {"era": "2013-01-04", "validationCorrV4": 0.021, "validationFncV4": 0.01, "validationMmc": "0.003", "validationAlpha": 0.0004, "validationChurn": 0.12},
        {"era": "2013-01-11", "validationCorrV4": -0.005, "validationFncV4": -0.002, "validationMmc": null, "validationAlpha": 0.0001, "validationChurn": 0.09},
        {"era": "2013-01-18", "validationCorrV4": 0.013, "validationFncV4": 0.004, "validationMmc": 0.001, "validationAlpha": -0.0002, "validationChurn": 0.1}
    ])
}

fn stand_in(plan: Plan, polls: Arc<AtomicUsize>) -> impl Fn(&Req, usize, &str) -> Reply + Send + Sync + 'static {
    move |req, _, base| {
        if req.method == "PUT" {
            return Reply::Text(plan.put_status, String::new());
        }
        if req.auth() != Some(format!("Token {PUBLIC}${SECRET}").as_str()) {
            return Reply::Text(401, r#"{"error":"not authenticated"}"#.into());
        }
        let q = req.query();
        let data = if q.contains("account") {
            json!({"account": {"models": [{"id": MODEL_ID, "name": "newsbot", "tournament": 11}]}})
        } else if q.contains("diagnosticsUploadAuth") {
            json!({"diagnosticsUploadAuth": {"filename": "stored/diag-upload.csv", "url": format!("{base}/presigned/diag?sig=1")}})
        } else if q.contains("createDiagnostics") {
            json!({"createDiagnostics": {"id": "diag-77"}})
        } else if q.contains("diagnostics(") {
            let n = polls.fetch_add(1, Ordering::SeqCst);
            if n < plan.pending {
                json!({"diagnostics": [{"status": "pending", "perEraDiagnostics": null}]})
            } else {
                json!({"diagnostics": [{"status": plan.final_status, "message": "2 eras rejected: too few tickers",
                    "validationCorrV4Mean": 0.0097, "validationCorrV4Sharpe": 0.71, "validationAlphaMean": 0.0001,
                    "perEraDiagnostics": per_era()}]})
            }
        } else if q.contains("v2RoundModelPerformances") {
            json!({"v2RoundModelPerformances": [
                {"roundNumber": 901, "roundResolved": false, "roundTarget": "target_chili_60", "submissionScores": [
                    {"displayName": "corr", "day": 3, "value": 0.01}, {"displayName": "corr", "day": 5, "value": 0.02}]},
                {"roundNumber": 900, "roundResolved": true, "roundTarget": "target_chili_60", "submissionScores": [
                    {"displayName": "alpha", "day": 20, "value": "0.0031"}]}
            ]})
        } else if q.contains("submissions(") {
            json!({"submissions": [
                {"id": "s1", "filename": "week1.csv", "insertedAt": "2026-11-20T10:00:00Z"},
                {"id": "s2", "filename": "week2.csv", "insertedAt": "2026-11-27T10:00:00Z"}
            ]})
        } else {
            return Reply::Text(400, r#"{"errors":[{"message":"unknown query"}]}"#.into());
        };
        ok(json!({ "data": data }))
    }
}

fn predictions(d: &Path, first: &str) -> PathBuf {
    let mut text = "bloomberg_ticker,friday_date,prediction\n".to_string();
    for (k, day) in [first, "20130111", "20130118"].iter().enumerate() {
        for i in 0..5 {
            text += &format!("T{i} US,{day},{}\n", (i * 7 + k) as f64 * 1.5 - 3.0);
        }
    }
    write(d, "preds.csv", &text)
}

fn args(url: &str, preds: Option<PathBuf>, out: &Path) -> DiagnosticsArgs {
    let creds =
        write(out.parent().unwrap(), "creds", &format!("public_id = \"{PUBLIC}\"\nsecret_key = \"{SECRET}\"\n"));
    std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    DiagnosticsArgs {
        api: ApiArgs { api_url: Some(url.to_string()), credentials: Some(creds) },
        predictions: preds,
        id: None,
        model_name: "NewsBot".into(),
        out: out.to_path_buf(),
        poll: Duration::from_millis(10),
        wait: Duration::from_secs(20),
    }
}

#[test]
fn diagnostics_round_trip_uploads_a_ranked_dated_file_and_writes_the_per_era_report() {
    let dir = tempfile::tempdir().unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let mock = serve(stand_in(GOOD, polls.clone()));
    let out = dir.path().join("diag");
    let a = args(&mock.url, Some(predictions(dir.path(), "20130104")), &out);
    let r = diagnostics(&a, false).unwrap();
    assert_eq!((r.id.as_str(), r.status.as_str(), r.per_era.len()), ("diag-77", "done", 3));
    assert_eq!(polls.load(Ordering::SeqCst), 3, "two pending answers, then done");
    assert_eq!(r.per_era[0].scores["validationMmc"], 0.003, "numeric strings are read");
    assert!(!r.per_era[1].scores.contains_key("validationMmc"), "a null score stays absent");
    assert_eq!(r.summary["validationCorrV4Sharpe"], 0.71);

    let reqs = mock.requests();
    let put = reqs.iter().find(|q| q.method == "PUT").expect("the file is PUT");
    assert!(put.path.starts_with("/presigned/diag") && put.auth().is_none(), "the key never goes to the bucket");
    let body = String::from_utf8(put.body.clone()).unwrap();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("bloomberg_ticker,date,signal"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r[1].len() == 10 && r[1].starts_with("2013-01-")), "ISO dates: {rows:?}");
    assert!(rows.iter().all(|r| (0.0..1.0).contains(&r[2].parse::<f64>().unwrap())), "ranks in (0, 1)");
    let create = reqs.iter().find(|q| q.query().contains("createDiagnostics")).unwrap();
    assert_eq!(create.vars()["filename"], "stored/diag-upload.csv", "the stored name is registered");
    assert_eq!(create.vars()["tournament"], 11);
    assert_eq!(create.vars()["modelId"], MODEL_ID);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| 2013-01-11 | -0.0050 |") && md.contains("validationChurn"), "{md}");
    assert!(md.contains("2 eras rejected"), "Numerai's message is shown");
    let json: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["per_era"].as_array().unwrap().len(), 3);
}

#[test]
fn a_refused_put_stops_before_create_and_a_failed_run_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let preds = predictions(dir.path(), "20130104");
    let mock = serve(stand_in(Plan { put_status: 403, ..GOOD }, Arc::default()));
    let e = diagnostics(&args(&mock.url, Some(preds.clone()), &dir.path().join("a")), false).unwrap_err().to_string();
    assert!(e.contains("HTTP 403") && e.contains("diagnostics-upload.csv"), "{e}");
    assert!(!mock.requests().iter().any(|q| q.query().contains("createDiagnostics")), "no create after a failed PUT");

    let mock = serve(stand_in(Plan { final_status: "failed", ..GOOD }, Arc::default()));
    let e = diagnostics(&args(&mock.url, Some(preds), &dir.path().join("b")), false).unwrap_err().to_string();
    assert!(e.contains("diag-77 failed") && e.contains("too few tickers"), "{e}");
}

#[test]
fn a_slow_run_stops_with_the_id_and_is_fetched_later_without_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let mock = serve(stand_in(Plan { pending: 1000, ..GOOD }, Arc::default()));
    let mut a = args(&mock.url, Some(predictions(dir.path(), "20130104")), &dir.path().join("slow"));
    a.wait = Duration::from_millis(50);
    let e = diagnostics(&a, false).unwrap_err().to_string();
    assert!(e.contains("still 'pending'") && e.contains("--id diag-77"), "{e}");

    let mock = serve(stand_in(GOOD, Arc::default()));
    let mut a = args(&mock.url, None, &dir.path().join("later"));
    a.id = Some("diag-77".into());
    assert_eq!(diagnostics(&a, false).unwrap().per_era.len(), 3);
    let reqs = mock.requests();
    assert!(reqs.iter().all(|q| q.method != "PUT" && !q.query().contains("Auth(")), "nothing uploaded");
    assert_eq!(
        reqs.iter().filter(|q| q.query().contains("diagnostics(")).map(|q| q.vars()["id"].clone()).next_back(),
        Some(json!("diag-77"))
    );
}

#[test]
fn predictions_before_the_validation_window_are_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = "bloomberg_ticker,friday_date,prediction\n".to_string();
    for i in 0..5 {
        text += &format!("T{i} US,20121228,{i}\n");
    }
    let preds = write(dir.path(), "old.csv", &text);
    let e = signalkit::numerai::diagnostics::prepare_upload(&preds, dir.path()).unwrap_err().to_string();
    assert!(e.contains("old.csv") && e.contains("2013-01-04") && e.contains("--all-eras"), "{e}");
}

#[test]
fn submissions_lists_recent_uploads_and_each_rounds_latest_scores() {
    let mock = serve(stand_in(GOOD, Arc::default()));
    let out = signalkit(["submissions", "--model-name", "newsbot", "--api-url", &mock.url])
        .env("NUMERAI_PUBLIC_ID", PUBLIC)
        .env("NUMERAI_SECRET_KEY", SECRET)
        .run();
    let text = out.text();
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(SECRET));
    let week2 = text.find("week2.csv").unwrap();
    assert!(week2 < text.find("week1.csv").unwrap(), "newest first: {text}");
    assert!(text.contains("round 901 open: corr 0.0200 (day 5)"), "latest day's value: {text}");
    assert!(text.contains("round 900 resolved: alpha 0.0031"), "{text}");
}
