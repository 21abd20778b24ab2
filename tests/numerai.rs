//! The Numerai client against a mock server on 127.0.0.1, submission validation, the CLI's
//! `submit`/`download`/`datasets`, and scripts/ops/weekly.sh end to end.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mock::*;
use common::*;
use polars::prelude::*;
use serde_json::{Value, json};
use signalkit::Error;
use signalkit::numerai::{
    Client, ClientOptions, Confirmed, Credentials, RetryPolicy, check_submission, validate_submission,
};

const PUBLIC: &str = "PUBLICID42";
const SECRET: &str = "S3CRETxyz987secretKEY";
const MODEL_ID: &str = "1b7d7a5e-0000-4000-8000-000000000011";

/// What a [`numerai_on`] server has recorded, and the faults it is told to show.
#[derive(Default)]
struct Server {
    /// The submissions created: `{id, filename, insertedAt}`.
    submissions: Mutex<Vec<Value>>,
    /// How the next `createSignalsSubmission` calls go wrong, first first.
    create_faults: Mutex<std::collections::VecDeque<Fault>>,
    /// `submissions(modelId:)` answers with a GraphQL error.
    list_fails: std::sync::atomic::AtomicBool,
    /// The bytes of the last presigned PUT, and of each created submission by id.
    uploaded: Mutex<Uploaded>,
}

/// The bytes of the last presigned PUT, and of each created submission by id.
type Uploaded = (Vec<u8>, HashMap<String, Vec<u8>>);

/// A way for `createSignalsSubmission` to go wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Records the submission, then answers 503 (the server acted; the client cannot tell).
    RecordThen503,
    /// Answers 503 without recording anything.
    Only503,
    /// Records the submission, then answers 200 after this long.
    RecordThenSlow(Duration),
    /// Waits this long, then records the submission (and answers 200).
    SlowThenRecord(Duration),
}

impl Server {
    fn count(&self) -> usize {
        self.submissions.lock().unwrap().len()
    }
    fn fail_next_create(&self, f: Fault) {
        self.create_faults.lock().unwrap().push_back(f);
    }
    fn record(&self, filename: &str) -> String {
        let mut subs = self.submissions.lock().unwrap();
        let id = format!("sub-{}", 123 + subs.len());
        subs.push(json!({"id": id, "filename": filename, "insertedAt": chrono::Utc::now().to_rfc3339()}));
        let mut up = self.uploaded.lock().unwrap();
        let bytes = up.0.clone();
        up.1.insert(id.clone(), bytes);
        id
    }
}

/// A Numerai stand-in: models, datasets, the three upload steps. `live` is served as
/// signals/v2.1/live.parquet.
fn numerai(live: Vec<u8>) -> impl Fn(&Req, usize, &str) -> Reply + Send + Sync + 'static {
    numerai_on(live, Arc::default())
}

/// [`numerai`] recording its submissions in `server`, which lists them to `submissions(modelId:)`.
fn numerai_on(live: Vec<u8>, server: Arc<Server>) -> impl Fn(&Req, usize, &str) -> Reply + Send + Sync + 'static {
    move |req, _, base| {
        if req.method == "GET" && req.path == "/files/live.parquet" {
            return Reply::Full(200, vec![], live.clone());
        }
        if req.method == "PUT" && req.path.starts_with("/upload/") {
            server.uploaded.lock().unwrap().0 = req.body.clone();
            return Reply::Text(200, String::new());
        }
        if let Some(id) = req.path.strip_prefix("/files/sub/").filter(|_| req.method == "GET") {
            return match server.uploaded.lock().unwrap().1.get(id) {
                Some(b) => Reply::Full(200, vec![], b.clone()),
                None => Reply::Text(404, "no such object".into()),
            };
        }
        let q = req.query();
        let private = [
            "createSignalsSubmission",
            "submissionUploadSignalsAuth",
            "account",
            "submissions(",
            "submissionDownloadAuth",
        ]
        .iter()
        .any(|k| q.contains(k));
        if private && req.auth() != Some(format!("Token {PUBLIC}${SECRET}").as_str()) {
            return Reply::Text(401, r#"{"error":"not authenticated"}"#.into());
        }
        if q.contains("account") {
            return ok(json!({"data": {"account": {"models": [
                {"id": "classic-model-id", "name": "mymodel", "tournament": 8},
                {"id": MODEL_ID, "name": "mymodel", "tournament": 11},
                {"id": "other-id", "name": "othermodel", "tournament": 11},
            ]}}}));
        }
        if q.contains("listDatasets") {
            return ok(json!({"data": {"listDatasets": ["signals/v2.1/live.parquet", "signals/v2.1/train.parquet"]}}));
        }
        if q.contains("dataset(") {
            let f = req.vars()["filename"].as_str().unwrap_or("").to_string();
            let url = (f == "signals/v2.1/live.parquet").then(|| format!("{base}/files/live.parquet"));
            return ok(json!({"data": {"dataset": url}}));
        }
        if q.contains("submissionUploadSignalsAuth") {
            return ok(json!({"data": {"submissionUploadSignalsAuth": {
                "filename": "stored-by-numerai.csv", "url": format!("{base}/upload/presigned?sig=abc")}}}));
        }
        if q.contains("createSignalsSubmission") {
            let filename = req.vars()["filename"].as_str().unwrap_or("").to_string();
            let fault = server.create_faults.lock().unwrap().pop_front();
            match fault {
                Some(Fault::Only503) => return Reply::Text(503, "Service Unavailable".into()),
                Some(Fault::SlowThenRecord(d)) => std::thread::sleep(d),
                _ => {}
            }
            let id = server.record(&filename);
            match fault {
                Some(Fault::RecordThen503) => return Reply::Text(503, "Service Unavailable".into()),
                Some(Fault::RecordThenSlow(d)) => std::thread::sleep(d),
                _ => {}
            }
            return ok(json!({"data": {"createSignalsSubmission": {"id": id, "firstEffectiveDate": "2026-11-27"}}}));
        }
        if q.contains("submissionDownloadAuth") {
            let id = req.vars()["id"].as_str().unwrap_or("").to_string();
            return ok(
                json!({"data": {"submissionDownloadAuth": {"filename": "stored-by-numerai.csv", "url": format!("{base}/files/sub/{id}")}}}),
            );
        }
        if q.contains("submissions(") {
            assert_eq!(req.vars()["modelId"], json!(MODEL_ID));
            if server.list_fails.load(Ordering::SeqCst) {
                return ok(json!({"errors": [{"message": "internal error"}], "data": null}));
            }
            return ok(json!({"data": {"submissions": server.submissions.lock().unwrap().clone()}}));
        }
        Reply::Text(400, r#"{"errors":[{"message":"unknown query"}]}"#.into())
    }
}

fn creds() -> Credentials {
    Credentials::new(PUBLIC, SECRET, "test").unwrap()
}

/// A client for `url` that retries quickly.
fn client(url: &str, with_creds: bool, attempts: u32) -> Client {
    client_timeout(url, with_creds, attempts, Duration::from_secs(10))
}

/// [`client`] giving up on a response after `timeout`.
fn client_timeout(url: &str, with_creds: bool, attempts: u32, timeout: Duration) -> Client {
    let options = ClientOptions {
        api_url: Some(url.to_string()),
        retry: RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        timeout,
        progress: false,
        log_retries: false,
    };
    Client::new(with_creds.then(creds), options).unwrap()
}

fn api_message(e: Error) -> String {
    match e {
        Error::Api(m) => m,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// `signalkit ARGS` with the test key in its environment (and no stray Numerai settings), each
/// run with its own upload history unless `env` names one (never the user's); the secret must
/// not show in what it prints.
fn cli(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cli = signalkit(args)
        .env("NUMERAI_PUBLIC_ID", PUBLIC)
        .env("NUMERAI_SECRET_KEY", SECRET)
        .env_remove("NUMERAI_API_URL")
        .no_backtrace()
        .history(tempfile::tempdir().unwrap().keep());
    for (k, v) in env {
        cli = cli.env(k, v);
    }
    let out = cli.run();
    assert_no_secret(&out);
    out
}

fn assert_no_secret(out: &Run) {
    let all = out.text();
    assert!(!all.contains(SECRET), "the secret leaked into the output:\n{all}");
}

// ---------------------------------------------------------------------------------------------
// Submission files
// ---------------------------------------------------------------------------------------------

fn ticker(i: usize) -> String {
    format!("T{i:03} US")
}

/// The live universe: `n` tickers on one date, no targets.
fn universe(dir: &Path, n: usize) -> PathBuf {
    let tickers: Vec<String> = (0..n).map(ticker).collect();
    let figi: Vec<String> = (0..n).map(|i| format!("BBG000{i:06}")).collect();
    let df = df!(
        "numerai_ticker" => tickers,
        "composite_figi" => figi,
        "date" => vec!["2026-11-20"; n],
        "feature_x" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
    )
    .unwrap();
    write_parquet(dir, "live.parquet", df)
}

/// A CSV with header `header` and one line per row.
fn csv(dir: &Path, name: &str, header: &str, rows: &[String]) -> PathBuf {
    write(dir, name, &format!("{header}\n{}\n", rows.join("\n")))
}

/// `n` good rows: ticker i with signal (i + 0.5) / n.
fn good_rows(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{},{}", ticker(i), (i as f64 + 0.5) / n as f64)).collect()
}

fn problems_of(file: &Path, universe: Option<&Path>) -> String {
    match validate_submission(file, universe) {
        Ok(c) => panic!("{} should be refused: {c}", file.display()),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[test]
fn a_good_submission_passes_as_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = universe(d, 150);
    let f = csv(d, "good.csv", "numerai_ticker,signal", &good_rows(120));
    let c = validate_submission(&f, Some(&live)).unwrap();
    assert_eq!((c.rows, c.tickers, c.in_universe, c.universe_size), (120, 120, Some(120), Some(150)));
    assert_eq!(c.ticker_column.as_deref(), Some("numerai_ticker"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // Parquet, composite_figi tickers, the optional date column equal to the live date.
    let df = df!(
        "composite_figi" => (0..110).map(|i| format!("BBG000{i:06}")).collect::<Vec<_>>(),
        "signal" => (0..110).map(|i| (i as f64 + 0.5) / 110.0).collect::<Vec<_>>(),
        "date" => vec!["2026-11-20"; 110],
    )
    .unwrap();
    let p = write_parquet(d, "good.parquet", df);
    let c = validate_submission(&p, Some(&live)).unwrap();
    assert_eq!((c.in_universe, c.date.map(|d| d.to_string())), (Some(110), Some("2026-11-20".into())));

    // Without a universe the file still passes, with a warning.
    let c = validate_submission(&f, None).unwrap();
    assert_eq!(c.in_universe, None);
    assert!(c.warnings[0].contains("no live universe"), "{:?}", c.warnings);
}

#[test]
fn each_bad_file_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = universe(d, 150);
    let h = "numerai_ticker,signal";
    let with = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let mut rows = good_rows(120);
        edit(&mut rows);
        csv(d, name, h, &rows)
    };
    let expect = |file: PathBuf, expected: &[&str]| {
        let msg = problems_of(&file, Some(&live));
        assert!(msg.starts_with(&file.display().to_string()), "{msg}");
        for e in expected {
            assert!(msg.contains(e), "{}: expected '{e}' in:\n{msg}", file.display());
        }
    };
    expect(with("nan.csv", &|r| r[4] = format!("{},NaN", ticker(4))), &["row 5", "NaN signal"]);
    expect(with("null.csv", &|r| r[6] = format!("{},", ticker(6))), &["row 7", "missing (null) signal"]);
    expect(with("zero.csv", &|r| r[2] = format!("{},0", ticker(2))), &["0 at row 3", "strictly between 0 and 1"]);
    expect(with("one.csv", &|r| r[9] = format!("{},1", ticker(9))), &["1 at row 10", "strictly between 0 and 1"]);
    expect(with("text.csv", &|r| r[0] = format!("{},high", ticker(0))), &["'high' at row 1", "must be numeric"]);
    expect(with("dup.csv", &|r| r[7] = format!("{},0.4", ticker(3))), &["'T003 US' (rows 4, 8)", "more than once"]);
    expect(
        csv(d, "few.csv", h, &good_rows(60)),
        &["only 60 distinct tickers", "at least 100 tickers of the live universe"],
    );
    expect(
        with("unknown.csv", &|r| r.extend((0..3).map(|i| format!("ZZZ{i} US,0.5")))),
        &["3 tickers are not in the live universe", "'ZZZ0 US' (row 121)"],
    );
    expect(
        csv(d, "constant.csv", h, &(0..120).map(|i| format!("{},0.5", ticker(i))).collect::<Vec<_>>()),
        &["constant"],
    );
    expect(
        csv(
            d,
            "two.csv",
            "numerai_ticker,composite_figi,signal",
            &(0..120).map(|i| format!("{},BBG{i},0.{}", ticker(i), i + 100)).collect::<Vec<_>>(),
        ),
        &["2 ticker columns (numerai_ticker, composite_figi): keep exactly one"],
    );
    expect(
        csv(d, "nosignal.csv", "numerai_ticker,prediction", &good_rows(120)),
        &["no 'signal' column", "columns found: numerai_ticker, prediction"],
    );
    expect(
        csv(d, "noticker.csv", "symbol,signal", &good_rows(120)),
        &["no ticker column", "numerai_ticker, bloomberg_ticker, composite_figi, ticker, sedol"],
    );

    // Fewer than 100 of the universe, although the file has enough tickers.
    let mut rows = good_rows(90);
    rows.extend((0..20).map(|i| format!("X{i:02} US,0.{}", i + 10)));
    let f = csv(d, "few_live.csv", h, &rows);
    let msg = problems_of(&f, Some(&live));
    assert!(msg.contains("only 90 tickers are in the live universe"), "{msg}");
    assert!(msg.contains("20 tickers are not in the live universe"), "{msg}");
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = universe(d, 150);
    let mut rows = good_rows(120);
    rows[1] = format!("{},nan", ticker(1));
    rows[2] = format!("{},1.0", ticker(2));
    rows[5] = format!("{},0.3", ticker(4));
    rows.push("NOPE US,0.2".into());
    let f = csv(
        d,
        "many.csv",
        "numerai_ticker,signal,date",
        &rows.iter().map(|r| format!("{r},2026-11-13")).collect::<Vec<_>>(),
    );
    let check = check_submission(&f, Some(&live)).unwrap();
    assert_eq!(check.problems.len(), 5, "{:#?}", check.problems);
    let msg = validate_submission(&f, Some(&live)).unwrap_err().to_string();
    for e in [
        "5 problems",
        "1. ",
        "5. ",
        "NaN",
        "1 at row 3",
        "'T004 US' (rows 5, 6)",
        "NOPE US",
        "not the live date 2026-11-20",
    ] {
        assert!(msg.contains(e), "expected '{e}' in:\n{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// Client against the mock server
// ---------------------------------------------------------------------------------------------

#[test]
fn upload_flow_sends_the_key_the_queries_and_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mock = serve(numerai(Vec::new()));
    let file = csv(d, "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let c = client(&mock.url, true, 3);
    let id = c.model_id("MyModel").unwrap();
    assert_eq!(id, MODEL_ID, "the Signals (tournament 11) model, not the classic one of the same name");
    let receipt = c.upload_submission(&file, &id, Some(20261120)).unwrap();
    assert_eq!(receipt.id, "sub-123");
    assert_eq!(receipt.filename, "stored-by-numerai.csv");
    assert_eq!(receipt.first_effective_date.as_deref(), Some("2026-11-27"));

    let reqs = mock.requests();
    assert_eq!(reqs.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["POST", "POST", "PUT", "POST"]);
    let token = format!("Token {PUBLIC}${SECRET}");
    for r in reqs.iter().filter(|r| r.method == "POST") {
        assert_eq!(r.auth(), Some(token.as_str()));
        assert_eq!(r.path, "/");
        assert!(r.headers.get("content-type").is_some_and(|t| t.contains("application/json")));
    }
    assert_eq!(reqs[0].query(), "query { account { models { id name tournament } } }");
    assert_eq!(
        reqs[1].query(),
        "query($filename:String! $tournament:Int! $modelId:String){ submissionUploadSignalsAuth(filename:$filename tournament:$tournament modelId:$modelId){ filename url } }"
    );
    assert_eq!(reqs[1].vars(), json!({"filename": "signal.csv", "tournament": 11, "modelId": MODEL_ID}));
    // The pre-signed PUT carries the file's exact bytes and never the API key.
    assert_eq!(reqs[2].path, "/upload/presigned?sig=abc");
    assert_eq!(reqs[2].body, std::fs::read(&file).unwrap());
    assert_eq!(reqs[2].auth(), None);
    assert!(reqs[3].query().starts_with("mutation($filename:String! $modelId:String $triggerId:String $dataDatestamp:Int){ createSignalsSubmission(filename:$filename modelId:$modelId triggerId:$triggerId source:\"signalkit\" dataDatestamp:$dataDatestamp)"));
    let v = reqs[3].vars();
    assert_eq!(
        (&v["filename"], &v["modelId"], &v["dataDatestamp"]),
        (&json!("stored-by-numerai.csv"), &json!(MODEL_ID), &json!(20261120))
    );
}

/// How many requests sent a query containing `k`.
fn calls(mock: &Mock, k: &str) -> usize {
    mock.requests().iter().filter(|r| r.query().contains(k)).count()
}

const CREATE: &str = "createSignalsSubmission";
const LIST: &str = "submissions(";

#[test]
fn create_answered_503_after_the_server_acted_is_found_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = csv(dir.path(), "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::RecordThen503);
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let receipt = client(&mock.url, true, 5).upload_submission(&file, MODEL_ID, None).unwrap();
    assert_eq!(server.count(), 1, "exactly one submission on the server");
    assert_eq!((receipt.id.as_str(), receipt.confirmed), ("sub-123", Confirmed::FoundAfterFailure));
    assert_eq!(receipt.filename, "stored-by-numerai.csv");
    assert_eq!((calls(&mock, CREATE), calls(&mock, LIST)), (1, 1));

    // Through the CLI: the command succeeds with the id found, in its receipt line.
    let live = universe(dir.path(), 150);
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::RecordThen503);
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let out = cli(
        &[
            "submit",
            file.to_str().unwrap(),
            "--model-name",
            "mymodel",
            "--universe",
            live.to_str().unwrap(),
            "--api-url",
            &mock.url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", out.text());
    assert_eq!(server.count(), 1);
    let line = out.stdout.lines().last().unwrap_or("").to_string();
    let receipt: Value = serde_json::from_str(line.strip_prefix("receipt: ").expect(&line)).unwrap();
    assert_eq!(
        (&receipt["id"], &receipt["confirmed"], &receipt["model_id"]),
        (&json!("sub-123"), &json!("found-after-failure"), &json!(MODEL_ID))
    );
}

#[test]
fn create_answered_after_the_client_timeout_is_found_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = csv(dir.path(), "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::RecordThenSlow(Duration::from_millis(1500)));
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let c = client_timeout(&mock.url, true, 5, Duration::from_millis(400));
    let receipt = c.upload_submission(&file, MODEL_ID, None).unwrap();
    assert_eq!(server.count(), 1, "exactly one submission on the server");
    assert_eq!((receipt.id.as_str(), receipt.confirmed), ("sub-123", Confirmed::FoundAfterFailure));
    assert_eq!((calls(&mock, CREATE), calls(&mock, LIST)), (1, 1));

    // Timed out and not listed (yet): it may still be being created, so it is not sent again.
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::SlowThenRecord(Duration::from_millis(1500)));
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let c = client_timeout(&mock.url, true, 5, Duration::from_millis(400));
    let msg = api_message(c.upload_submission(&file, MODEL_ID, None).unwrap_err());
    assert!(msg.contains("may still be creating it") && msg.contains("signals.numer.ai"), "{msg}");
    assert!(msg.contains("run the same `signalkit submit` again"), "{msg}");
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(server.count(), 1);
    assert_eq!(calls(&mock, CREATE), 1);
}

#[test]
fn create_that_failed_before_acting_is_sent_again_only_after_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = csv(dir.path(), "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::Only503);
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let receipt = client(&mock.url, true, 5).upload_submission(&file, MODEL_ID, None).unwrap();
    assert_eq!(server.count(), 1, "exactly one submission on the server");
    assert_eq!((receipt.id.as_str(), receipt.confirmed), ("sub-123", Confirmed::Created));
    let order: Vec<&str> = mock
        .requests()
        .iter()
        .filter_map(|r| {
            let q = r.query();
            if q.contains(CREATE) {
                Some("create")
            } else if q.contains(LIST) {
                Some("check")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(order, ["create", "check", "create"], "the create is sent again only after the check");

    // The check fails too: stop, say the submission may exist and how to check; no second create.
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::RecordThen503);
    server.list_fails.store(true, Ordering::SeqCst);
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let msg = api_message(client(&mock.url, true, 5).upload_submission(&file, MODEL_ID, None).unwrap_err());
    assert!(msg.contains("MAY EXIST") && msg.contains("signals.numer.ai") && msg.contains("HTTP 503"), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
    assert_eq!((server.count(), calls(&mock, CREATE)), (1, 1));
}

#[test]
fn cli_rerun_after_an_unconfirmed_create_uploads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = universe(d, 150);
    let file = csv(d, "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::RecordThen503);
    server.list_fails.store(true, Ordering::SeqCst);
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let args = [
        "submit",
        file.to_str().unwrap(),
        "--model-name",
        "mymodel",
        "--universe",
        live.to_str().unwrap(),
        "--api-url",
        &mock.url,
    ];
    // The server created it, the client could not tell: the command fails, saying so.
    let out = cli(&args, &[]);
    assert!(!out.status.success());
    assert!(out.text().contains("MAY EXIST"), "{}", out.text());
    assert_eq!(server.count(), 1);
    let puts = || mock.requests().iter().filter(|r| r.method == "PUT").count();
    assert_eq!(puts(), 1);

    // Still cannot ask: a re-run refuses to upload.
    let out = cli(&args, &[]);
    assert!(!out.status.success());
    assert!(out.text().contains("an earlier run already tried to submit"), "{}", out.text());
    assert_eq!((puts(), calls(&mock, CREATE)), (1, 1));

    // Numerai answers again: the re-run finds the submission and uploads nothing.
    server.list_fails.store(false, Ordering::SeqCst);
    let out = cli(&args, &[]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("already submitted") && out.text().contains("sub-123"), "{}", out.text());
    assert!(out.text().contains(r#""confirmed":"already-on-server""#), "{}", out.text());
    assert_eq!((puts(), calls(&mock, CREATE), server.count()), (1, 1, 1));

    // Different bytes are a new submission.
    let other = csv(d, "signal.csv", "numerai_ticker,signal", &good_rows(121));
    let out = cli(&args, &[]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("submission sub-124"), "{}", out.text());
    assert_eq!((puts(), server.count()), (2, 2));
    assert_eq!(std::fs::read(&other).unwrap(), mock.requests().iter().rfind(|r| r.method == "PUT").unwrap().body);
}

#[test]
fn unknown_model_name_lists_the_signals_models() {
    let mock = serve(numerai(Vec::new()));
    let msg = api_message(client(&mock.url, true, 1).model_id("nosuch").unwrap_err());
    assert!(msg.contains("'nosuch' is not one of this account's Signals models (mymodel, othermodel)"), "{msg}");
}

#[test]
fn server_errors_and_429_are_retried() {
    let mock = serve(|_, i, _| match i {
        0 => Reply::Text(500, "oops".into()),
        1 => Reply::Full(429, vec![("Retry-After".into(), "0".into())], b"slow down".to_vec()),
        _ => ok(json!({"data": {"listDatasets": ["signals/v2.1/live.parquet"]}})),
    });
    let list = client(&mock.url, false, 4).list_datasets(Some(1234)).unwrap();
    assert_eq!(list, ["signals/v2.1/live.parquet"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].vars(), json!({"round": 1234, "tournament": 11}));
    assert_eq!(
        reqs[2].query(),
        "query($round:Int $tournament:Int){ listDatasets(round:$round tournament:$tournament) }"
    );
    assert_eq!(reqs[2].auth(), None, "public calls without a key send none");

    // Always 503: gives up after the configured tries.
    let mock = serve(|_, _, _| Reply::Text(503, "down".into()));
    let msg = api_message(client(&mock.url, false, 3).list_datasets(None).unwrap_err());
    assert!(msg.contains("HTTP 503") && msg.contains("gave up after 3 tries"), "{msg}");
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn timeouts_and_refused_connections_are_retried_then_reported() {
    // The first answer comes after the client's timeout: the retry gets the answer.
    let mock = serve(|_, i, _| {
        if i == 0 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        ok(json!({"data": {"listDatasets": ["a.parquet"]}}))
    });
    let options = ClientOptions {
        api_url: Some(mock.url.clone()),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        timeout: Duration::from_millis(300),
        progress: false,
        log_retries: false,
    };
    let started = std::time::Instant::now();
    assert_eq!(Client::new(None, options).unwrap().list_datasets(None).unwrap(), ["a.parquet"]);
    assert_eq!(mock.requests().len(), 2);
    assert!(started.elapsed() < Duration::from_millis(1400), "did not time out: {:?}", started.elapsed());

    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let msg = api_message(client(&format!("http://127.0.0.1:{port}"), false, 2).list_datasets(None).unwrap_err());
    assert!(msg.contains("gave up after 2 tries"), "{msg}");
}

#[test]
fn unauthorized_graphql_errors_and_bad_json_are_clear_errors() {
    // 401: not retried; says which key was refused, never the secret.
    let mock = serve(|req, _, _| Reply::Text(401, format!("bad token {}", req.auth().unwrap_or(""))));
    let c = client(&mock.url, true, 3);
    let msg = api_message(c.models().unwrap_err());
    assert!(msg.contains("HTTP 401 Unauthorized") && msg.contains("(public id PUBLICID42) was refused"), "{msg}");
    assert!(!msg.contains(SECRET));
    assert_eq!(mock.requests().len(), 1);

    // A GraphQL error payload (echoing the header: it must be scrubbed).
    let mock = serve(|req, _, _| {
        let m = format!("Invalid model id; header was {}", req.auth().unwrap_or(""));
        ok(json!({"errors": [{"message": m}], "data": null}))
    });
    let msg =
        api_message(client(&mock.url, true, 3).upload_submission(Path::new("Cargo.toml"), "x", None).unwrap_err());
    assert!(msg.contains("submissionUploadSignalsAuth") && msg.contains("GraphQL error: Invalid model id"), "{msg}");
    assert!(!msg.contains(SECRET), "{msg}");
    assert!(msg.contains("<redacted>"), "{msg}");

    // Malformed JSON.
    let mock = serve(|_, _, _| Reply::Text(200, "<html>gateway</html>".into()));
    let msg = api_message(client(&mock.url, false, 3).list_datasets(None).unwrap_err());
    assert!(msg.contains("malformed JSON") && msg.contains("<html>gateway</html>"), "{msg}");
    assert_eq!(mock.requests().len(), 1);

    // Calls that need a key say so without one.
    let msg = api_message(client(&mock.url, false, 1).models().unwrap_err());
    assert!(msg.contains("needs an API key") && msg.contains("NUMERAI_PUBLIC_ID"), "{msg}");
}

#[test]
fn interrupted_download_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let full = payload.clone();
    let mock = serve(move |req, _, base| {
        if req.method == "GET" {
            return Reply::Truncated(full.clone(), full.len() / 2);
        }
        ok(json!({"data": {"dataset": format!("{base}/files/live.parquet")}}))
    });
    let c = client(&mock.url, true, 2);
    let msg = api_message(c.download_dataset("signals/v2.1/live.parquet", &out, None).unwrap_err());
    assert!(msg.contains("download of live.parquet") && msg.contains("gave up after 2 tries"), "{msg}");
    assert!(!out.join("live.parquet").exists(), "a partial file under the final name");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    let gets: Vec<Req> = mock.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert_eq!(gets.len(), 2);
    assert!(gets.iter().all(|r| r.auth().is_none()), "the key must not go to the download host");

    // Interrupted once, then whole: the retry completes the file.
    let full = payload.clone();
    let mock = serve(move |req, i, base| match (req.method.as_str(), i) {
        ("GET", 1) => Reply::Truncated(full.clone(), 1000),
        ("GET", _) => Reply::Full(200, vec![], full.clone()),
        _ => ok(json!({"data": {"dataset": format!("{base}/files/live.parquet")}})),
    });
    let path = client(&mock.url, false, 3).download_dataset("signals/v2.1/live.parquet", &out, Some(7)).unwrap();
    assert_eq!(path, out.join("live.parquet"));
    assert_eq!(std::fs::read(&path).unwrap(), payload);
    assert_eq!(
        mock.requests()[0].vars(),
        json!({"filename": "signals/v2.1/live.parquet", "round": 7, "tournament": 11})
    );

    // A file Numerai does not have.
    let mock = serve(|_, _, _| ok(json!({"data": {"dataset": null}})));
    let msg = api_message(client(&mock.url, false, 1).download_dataset("nope.parquet", &out, None).unwrap_err());
    assert!(msg.contains("signalkit datasets"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Credentials and secrecy
// ---------------------------------------------------------------------------------------------

#[test]
fn credentials_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "credentials",
        &format!("# Numerai key\npublic_id = \"{PUBLIC}\"\nsecret_key = '{SECRET}'\n"),
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let msg = Credentials::from_file(&f).unwrap_err().to_string();
    assert!(msg.contains(&format!("chmod 600 {}", f.display())) && msg.contains("0644"), "{msg}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = Credentials::from_file(&f).unwrap();
    assert_eq!(c.public_id(), PUBLIC);
    let dbg = format!("{c:?} {:?}", client("http://127.0.0.1:9", true, 1));
    assert!(!dbg.contains(SECRET) && dbg.contains("<redacted>"), "{dbg}");

    // KEY=value lines work too; a broken line is reported without its content.
    let g = write(dir.path(), "env", &format!("NUMERAI_PUBLIC_ID={PUBLIC}\nNUMERAI_SECRET_KEY={SECRET}\n"));
    std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Credentials::from_file(&g).unwrap().public_id(), PUBLIC);
    let b = write(dir.path(), "bad", &format!("public_id = x\n{SECRET}\n"));
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o600)).unwrap();
    let msg = Credentials::from_file(&b).unwrap_err().to_string();
    assert!(msg.contains("line 2") && !msg.contains(SECRET), "{msg}");

    // Through the CLI: a readable file is refused before any request.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mock = serve(numerai(Vec::new()));
    let out = cli(&["datasets", "--api-url", &mock.url, "--credentials", f.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(out.text().contains("chmod 600"), "{}", out.text());
    assert!(mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_datasets_download_and_submit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = universe(d, 150);
    let live_bytes = std::fs::read(&live).unwrap();
    let mock = serve(numerai(live_bytes.clone()));
    let api = ["--api-url", mock.url.as_str()];

    let out = cli(&[&["datasets", "--round", "900"][..], &api].concat(), &[]);
    assert!(out.status.success(), "{}", out.text());
    assert_eq!(out.stdout, "signals/v2.1/live.parquet\nsignals/v2.1/train.parquet\n");

    let dl = d.join("dl");
    let out = cli(&[&["download", "signals/v2.1/live.parquet", "--out", dl.to_str().unwrap()][..], &api].concat(), &[]);
    assert!(out.status.success(), "{}", out.text());
    assert_eq!(std::fs::read(dl.join("live.parquet")).unwrap(), live_bytes);

    // NUMERAI_API_URL works as well as --api-url.
    let out = cli(&["datasets"], &[("NUMERAI_API_URL", mock.url.as_str())]);
    assert!(out.status.success(), "{}", out.text());

    // An invalid file: refused with every problem, before any network call.
    let before = mock.requests().len();
    let mut rows = good_rows(120);
    rows[0] = format!("{},0", ticker(0));
    rows[1] = format!("{},NaN", ticker(1));
    let bad = csv(d, "bad.csv", "numerai_ticker,signal", &rows);
    let out = cli(
        &[
            &["submit", bad.to_str().unwrap(), "--model-name", "mymodel", "--universe", live.to_str().unwrap()][..],
            &api,
        ]
        .concat(),
        &[],
    );
    assert!(!out.status.success());
    let err = out.text();
    assert!(err.contains("2 problems") && err.contains("NaN signal") && err.contains("0 at row 1"), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert_eq!(mock.requests().len(), before, "no request for an invalid file");

    // --dry-run: validates, prints what would be sent (public id, never the secret), no request.
    let good = csv(d, "signal.csv", "numerai_ticker,signal", &good_rows(120));
    let args = [
        &["submit", good.to_str().unwrap(), "--model-name", "mymodel", "--universe", live.to_str().unwrap()][..],
        &api,
    ]
    .concat();
    let out = cli(&[&args[..], &["--dry-run"]].concat(), &[]);
    assert!(out.status.success(), "{}", out.text());
    let said = out.text();
    assert!(
        said.contains("dry run") && said.contains("120 rows") && said.contains("'mymodel'") && said.contains(PUBLIC),
        "{said}"
    );
    assert_eq!(mock.requests().len(), before);

    // The real thing.
    let out = cli(&args, &[]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("submission sub-123"), "{}", out.text());
    let reqs = mock.requests();
    let put = reqs.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.body, std::fs::read(&good).unwrap());
    assert_eq!(reqs.last().unwrap().vars()["modelId"], json!(MODEL_ID));

    // A wrong key: a clear error, and still no secret anywhere (cli() asserts it).
    let out = cli(&args, &[("NUMERAI_SECRET_KEY", "wrong-secret-value")]);
    assert!(!out.status.success());
    assert!(out.text().contains("401") && !out.text().contains("wrong-secret-value"), "{}", out.text());
}

/// The week's rows with the signal of row i taken from row `perm(i)` (a reordering of the ranks).
fn permuted_rows(n: usize, perm: impl Fn(usize) -> usize) -> Vec<String> {
    (0..n).map(|i| format!("{},{}", ticker(i), (perm(i) as f64 + 0.5) / n as f64)).collect()
}

#[test]
fn the_churn_gate_refuses_a_reshuffled_week_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Arc::new(Server::default());
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let history = d.join("history");
    let env = [("NUMERAI_API_URL", mock.url.as_str()), ("SIGNALKIT_HISTORY", history.to_str().unwrap())];
    let n = 300;
    let submit = |name: &str, rows: &[String], extra: &[&str]| {
        let f = csv(d, name, "numerai_ticker,signal", rows);
        cli(&[&["submit", f.to_str().unwrap(), "--model-name", "mymodel"][..], extra].concat(), &env)
    };

    // Week 1: nothing to compare with.
    let out = submit("w1.csv", &good_rows(n), &[]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("first week"), "{}", out.text());
    assert_eq!(server.count(), 1);

    // Week 2, two neighbours swapped: a steady week passes.
    let out = submit("w2.csv", &permuted_rows(n, |i| [1, 0].get(i).copied().unwrap_or(i)), &[]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("max over the last 1 submissions"), "{}", out.text());

    // Week 3, the same ranks reshuffled: refused before any upload, with the numbers and the fix.
    let shuffled = permuted_rows(n, |i| (i * 7919) % n);
    let out = submit("w3.csv", &shuffled, &[]);
    assert!(!out.status.success());
    let said = out.text();
    assert!(
        said.contains("churn gate: churn") && said.contains("≥ limit 0.15") && said.contains("--allow-churn"),
        "{said}"
    );
    assert_eq!(server.count(), 2, "nothing uploaded");

    // --allow-churn uploads it anyway, and says the numbers.
    let out = submit("w3.csv", &shuffled, &["--allow-churn"]);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("max over the last 2 submissions"), "{}", out.text());
    assert_eq!(server.count(), 3);

    // Week 4, week 3 with two neighbours swapped, is still refused: weeks 1 and 2 are among the
    // last five.
    let near_w3 = permuted_rows(n, |i| match i {
        0 => (7919) % n,
        1 => 0,
        _ => (i * 7919) % n,
    });
    let out = submit("w4.csv", &near_w3, &[]);
    assert!(!out.status.success());
    assert!(out.text().contains("max over the last 3 submissions"), "{}", out.text());

    // The history holds every confirmed upload, one line each, with a copy of what was sent.
    let lines = std::fs::read_to_string(history.join("history.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert_eq!(std::fs::read_dir(history.join("signals")).unwrap().count(), lines.lines().count());
}

/// Two `submit` runs of one file for one model at once create one submission: the second waits
/// for the first, finds its journal and asks Numerai before uploading.
#[test]
fn two_submits_at_once_create_one_submission() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::default());
    server.fail_next_create(Fault::SlowThenRecord(Duration::from_millis(1500)));
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let f = csv(dir.path(), "week.csv", "numerai_ticker,signal", &good_rows(300));
    let spawn = || {
        signalkit(["submit", f.to_str().unwrap(), "--model-name", "mymodel"])
            .env("NUMERAI_PUBLIC_ID", PUBLIC)
            .env("NUMERAI_SECRET_KEY", SECRET)
            .env("NUMERAI_API_URL", &mock.url)
            .history(dir.path().join("history"))
            .command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()].map(Run::from);
    let said: Vec<String> = outs.iter().map(Run::text).collect();
    assert!(outs.iter().all(|o| o.status.success()), "{said:?}");
    assert_eq!(server.count(), 1, "one submission: {said:?}");
    assert_eq!(calls(&mock, CREATE), 1, "{said:?}");
    assert!(said.iter().any(|s| s.contains("already-on-server")), "{said:?}");
}

/// The gate reads the model's submissions from Numerai, so a week uploaded from another machine
/// (or a fresh history) still counts; a listing that fails falls back to the local history.
#[test]
fn the_churn_gate_compares_with_the_submissions_numerai_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Arc::new(Server::default());
    let mock = serve(numerai_on(Vec::new(), server.clone()));
    let n = 300;
    let submit = |name: &str, rows: &[String], history: &str| {
        let f = csv(d, name, "numerai_ticker,signal", rows);
        let env = [("NUMERAI_API_URL", mock.url.as_str()), ("SIGNALKIT_HISTORY", history)];
        cli(&["submit", f.to_str().unwrap(), "--model-name", "mymodel"], &env)
    };
    let (laptop, server_box) = (d.join("laptop"), d.join("server"));
    let out = submit("w1.csv", &good_rows(n), laptop.to_str().unwrap());
    assert!(out.status.success(), "{}", out.text());

    // Week 2 from another machine whose history is empty: week 1 is downloaded and compared.
    let shuffled = permuted_rows(n, |i| (i * 7919) % n);
    let out = submit("w2.csv", &shuffled, server_box.to_str().unwrap());
    let said = out.text();
    assert!(!out.status.success() && said.contains("≥ limit 0.15"), "{said}");
    assert!(said.contains("submission sub-123 on Numerai"), "{said}");
    assert_eq!(server.count(), 1, "nothing uploaded");
    let copies: Vec<String> = std::fs::read_dir(server_box.join("signals"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(copies, ["server-sub-123.csv"], "the download is kept for next week");
    let calls_before = calls(&mock, "submissionDownloadAuth");
    let out = submit("w2.csv", &shuffled, server_box.to_str().unwrap());
    assert!(!out.status.success());
    assert_eq!(calls(&mock, "submissionDownloadAuth"), calls_before, "a kept copy is not downloaded again");

    // When Numerai cannot list the submissions, the local history still guards the upload.
    server.list_fails.store(true, Ordering::SeqCst);
    let out = submit("w2.csv", &shuffled, laptop.to_str().unwrap());
    let said = out.text();
    assert!(!out.status.success() && said.contains("local history only") && said.contains("≥ limit 0.15"), "{said}");
}

// ---------------------------------------------------------------------------------------------
// scripts/ops/weekly.sh end to end
// ---------------------------------------------------------------------------------------------

#[test]
fn weekly_script_end_to_end_against_the_mock() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = env!("CARGO_BIN_EXE_signalkit");
    let run = |args: &[&str]| {
        signalkit(args).no_backtrace().run().ok();
    };
    let fixture = fixtures("tiny-finbert");
    let fixture = fixture.to_str().unwrap();

    // History: a small synthetic universe → join → encode → features → train.
    let sample = d.join("sample");
    run(&["sample", "--out", sample.to_str().unwrap(), "--tickers", "120", "--fridays", "60"]);
    let (targets, headlines) = (sample.join("targets.csv"), sample.join("headlines.csv"));
    let store = d.join("store");
    let (rows, feats) = (d.join("rows.parquet"), d.join("features.parquet"));
    let h = headlines.to_str().unwrap();
    run(&["join", "--targets", targets.to_str().unwrap(), "--headlines", h, "--out", rows.to_str().unwrap()]);
    run(&["encode", "--model", fixture, "--headlines", h, "--store", store.to_str().unwrap()]);
    run(&[
        "features",
        "--rows",
        rows.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--headlines",
        h,
        "--out",
        feats.to_str().unwrap(),
    ]);
    let model_dir = d.join("model");
    run(&[
        "train",
        "--features",
        feats.to_str().unwrap(),
        "--out",
        model_dir.to_str().unwrap(),
        "--num-iterations",
        "50",
    ]);

    // This week's live universe: the sample's tickers on the Friday after its last one, no target.
    let t = read_table_any(&targets);
    let tickers: Vec<String> = {
        let mut v: Vec<String> = strs(&t, "bloomberg_ticker").into_iter().flatten().collect();
        v.sort();
        v.dedup();
        v
    };
    let last = t.column("friday_date").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().max().unwrap();
    let last = chrono::NaiveDate::parse_from_str(&last.to_string(), "%Y%m%d").unwrap();
    let live_date = last + chrono::Duration::days(7);
    let n = tickers.len();
    let live = df!(
        "numerai_ticker" => tickers,
        "date" => vec![live_date.format("%Y-%m-%d").to_string(); n],
    )
    .unwrap();
    let live_path = write_parquet(d, "live-src.parquet", live);
    let server = Arc::new(Server::default());
    let mock = serve(numerai_on(std::fs::read(&live_path).unwrap(), server.clone()));

    // The week's headlines: the history's plus a few new ones (only those get encoded).
    let week_news = d.join("news");
    std::fs::create_dir_all(&week_news).unwrap();
    let mut news = std::fs::read_to_string(&headlines).unwrap();
    let first_ticker = tickers_first(&t);
    news.push_str(&format!(
        "{},{}T12:00:00Z,Brand new contract win announced this week\n",
        first_ticker.trim_end_matches(" US"),
        (live_date - chrono::Duration::days(2)).format("%Y-%m-%d")
    ));
    std::fs::write(week_news.join("headlines.csv"), news).unwrap();

    let work = d.join("work");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ops/weekly.sh");
    let weekly = || {
        let out = Command::new("bash")
            .arg(&script)
            .env("SIGNALKIT", bin)
            .env("SIGNALKIT_HISTORY", d.join("history"))
            .env("NUMERAI_API_URL", &mock.url)
            .env("NUMERAI_PUBLIC_ID", PUBLIC)
            .env("NUMERAI_SECRET_KEY", SECRET)
            .env("MODEL_NAME", "mymodel")
            .env("MODEL", model_dir.join("model.txt"))
            .env("HEADLINES_DIR", &week_news)
            .env("STORE", &store)
            .env("ENCODE_MODEL", fixture)
            .env("WORK_ROOT", &work)
            .env("WEEK", "2026-W47")
            .env_remove("RUST_BACKTRACE")
            .output()
            .map(Run::from)
            .unwrap();
        assert_no_secret(&out);
        out
    };
    let out = weekly();
    assert!(out.status.success(), "weekly.sh failed:\n{}", out.text());
    let week = work.join("2026-W47");
    let log = std::fs::read_to_string(week.join("weekly.log")).unwrap();
    assert!(!log.contains(SECRET), "secret in the log");
    assert!(log.contains(", 1 encoded"), "only the new headline is encoded: {log}");
    assert!(week.join("live.parquet").exists() && week.join("signal.csv").exists(), "{log}");

    // The uploaded bytes are the predicted file, and it is valid.
    let reqs = mock.requests();
    let put = reqs.iter().find(|r| r.method == "PUT").expect("an upload");
    assert_eq!(put.body, std::fs::read(week.join("signal.csv")).unwrap());
    let check = validate_submission(&week.join("signal.csv"), Some(&week.join("live.parquet"))).unwrap();
    assert_eq!(check.rows, n);

    // Re-running a finished week uploads nothing again.
    let uploads = reqs.iter().filter(|r| r.method == "PUT").count();
    let out = weekly();
    assert!(out.status.success(), "second run failed:\n{}", out.text());
    assert_eq!(mock.requests().iter().filter(|r| r.method == "PUT").count(), uploads);
    assert!(out.text().contains("already submitted"), "{}", out.text());

    // A failing step fails the script, names the step in the log, and uploads nothing.
    let script_with = |model: &Path, week: &str| {
        Command::new("bash")
            .arg(&script)
            .env("SIGNALKIT", bin)
            .env("SIGNALKIT_HISTORY", d.join("history"))
            .env("NUMERAI_API_URL", &mock.url)
            .env("NUMERAI_PUBLIC_ID", PUBLIC)
            .env("NUMERAI_SECRET_KEY", SECRET)
            .env("MODEL_NAME", "mymodel")
            .env("MODEL", model)
            .env("HEADLINES_DIR", &week_news)
            .env("STORE", &store)
            .env("ENCODE_MODEL", fixture)
            .env("WORK_ROOT", &work)
            .env("WEEK", week)
            .env_remove("RUST_BACKTRACE")
            .output()
            .map(Run::from)
            .unwrap()
    };
    let out = script_with(&d.join("missing/model.txt"), "2026-W48");
    assert!(!out.status.success(), "{}", out.text());
    assert!(out.text().contains("model file"), "{}", out.text());
    let bogus = write(d, "bogus-model.txt", "not a LightGBM model\n");
    let out = script_with(&bogus, "2026-W49");
    assert_no_secret(&out);
    assert!(!out.status.success(), "{}", out.text());
    let log = std::fs::read_to_string(work.join("2026-W49/weekly.log")).unwrap();
    assert!(log.contains("FAILED (exit 1) in step: signalkit features") && log.contains("no model card"), "{log}");
    assert!(!work.join("2026-W49/submitted").exists());
    assert_eq!(mock.requests().iter().filter(|r| r.method == "PUT").count(), uploads);

    // Numerai creates the submission but answers 503, and cannot be asked whether it did: the run
    // fails in the upload step (named in the log) and writes no marker.
    assert_eq!(server.count(), 1);
    server.fail_next_create(Fault::RecordThen503);
    server.list_fails.store(true, Ordering::SeqCst);
    let model = model_dir.join("model.txt");
    let out = script_with(&model, "2026-W50");
    assert_no_secret(&out);
    assert!(!out.status.success(), "{}", out.text());
    let log = std::fs::read_to_string(work.join("2026-W50/weekly.log")).unwrap();
    assert!(log.contains("FAILED (exit 1) in step: upload: signalkit submit"), "{log}");
    assert!(log.contains("MAY EXIST"), "{log}");
    assert!(!work.join("2026-W50/submitted").exists());
    assert_eq!(server.count(), 2);
    let puts = || mock.requests().iter().filter(|r| r.method == "PUT").count();
    let (uploads, creates) = (puts(), calls(&mock, CREATE));
    assert_eq!(uploads, 2);

    // The next run (say Sunday's), with the API answering: it finds the submission, writes the
    // marker from the server's answer, and uploads nothing.
    server.list_fails.store(false, Ordering::SeqCst);
    let out = script_with(&model, "2026-W50");
    assert_no_secret(&out);
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("reached the upload"), "{}", out.text());
    assert_eq!((puts(), calls(&mock, CREATE), server.count()), (uploads, creates, 2));
    let marker = std::fs::read_to_string(work.join("2026-W50/submitted")).unwrap();
    assert!(marker.contains(r#""id":"sub-124""#) && marker.contains("already-on-server"), "{marker}");

    // And a third run sees the marker.
    let out = script_with(&model, "2026-W50");
    assert!(out.status.success(), "{}", out.text());
    assert!(out.text().contains("already submitted this week"), "{}", out.text());
    assert_eq!((puts(), server.count()), (uploads, 2));

    // PIT_OPTS changed since training: the live features are not what the model was trained on,
    // and the week stops at predict, naming both windows, before anything is uploaded.
    let out = Command::new("bash")
        .arg(&script)
        .env("SIGNALKIT", bin)
        .env("SIGNALKIT_HISTORY", d.join("history"))
        .env("NUMERAI_API_URL", &mock.url)
        .env("NUMERAI_PUBLIC_ID", PUBLIC)
        .env("NUMERAI_SECRET_KEY", SECRET)
        .env("MODEL_NAME", "mymodel")
        .env("MODEL", &model)
        .env("HEADLINES_DIR", &week_news)
        .env("STORE", &store)
        .env("ENCODE_MODEL", fixture)
        .env("PIT_OPTS", "--window-days 7")
        .env("WORK_ROOT", &work)
        .env("WEEK", "2026-W51")
        .env_remove("RUST_BACKTRACE")
        .output()
        .map(Run::from)
        .unwrap();
    assert!(!out.status.success(), "{}", out.text());
    let log = std::fs::read_to_string(work.join("2026-W51/weekly.log")).unwrap();
    assert!(log.contains("FAILED (exit 1) in step: signalkit predict"), "{log}");
    assert!(log.contains("window 30 days vs 7 days"), "{log}");
    assert_eq!((puts(), server.count()), (uploads, 2));

    // NEWS_SOURCE: the job fetches the week's news itself (SEC EDGAR, from a loopback mock), with
    // no HEADLINES_DIR, and runs the same steps on what it fetched: one 8-K per company, two days
    // before the live Friday, NEWS_DAYS reaching back to it.
    let symbols: Vec<String> = {
        let mut v: Vec<String> =
            strs(&t, "bloomberg_ticker").into_iter().flatten().map(|s| s.trim_end_matches(" US").to_string()).collect();
        v.sort();
        v.dedup();
        v
    };
    let accepted = format!("{}T10:00:00.000Z", (live_date - chrono::Duration::days(2)).format("%Y-%m-%d"));
    let items = ["1.01", "2.02", "5.02", "8.01", "7.01"];
    let syms = symbols.clone();
    let sec = serve(move |req, _, _| {
        if req.path == "/files/company_tickers.json" {
            let m: serde_json::Map<String, Value> = syms
                .iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), json!({"cik_str": 1000 + i, "ticker": s, "title": s})))
                .collect();
            return ok(Value::Object(m));
        }
        let Some(i) = req
            .path
            .strip_prefix("/submissions/CIK")
            .and_then(|r| r.strip_suffix(".json"))
            .and_then(|c| c.parse::<usize>().ok())
        else {
            return Reply::Text(404, "{}".into());
        };
        let i = i - 1000;
        ok(json!({"name": format!("{} Corp", syms[i]), "tickers": [syms[i]], "filings": {"recent": {
            "accessionNumber": [format!("0000001234-26-{i:06}")], "filingDate": [&accepted[..10]], "acceptanceDateTime": [&accepted],
            "form": ["8-K"], "items": [items[i % items.len()]], "primaryDocument": ["a.htm"], "primaryDocDescription": ["8-K"]}, "files": []}}))
    });
    let news_days = (chrono::Utc::now().date_naive() - live_date).num_days() + 10;
    let news_dir = d.join("fetched-news");
    let news_week = |history: &str, week: &str| {
        Command::new("bash")
            .arg(&script)
            .env("SIGNALKIT", bin)
            .env("SIGNALKIT_HISTORY", d.join(history))
            .env("NUMERAI_API_URL", &mock.url)
            .env("NUMERAI_PUBLIC_ID", PUBLIC)
            .env("NUMERAI_SECRET_KEY", SECRET)
            .env("MODEL_NAME", "mymodel")
            .env("MODEL", &model)
            .env_remove("HEADLINES_DIR")
            .env("NEWS_SOURCE", "sec")
            .env("NEWS_TICKERS", symbols.join(","))
            .env("NEWS_DAYS", news_days.to_string())
            .env("NEWS_OPTS", "--rate 60000")
            .env("NEWS_DIR", &news_dir)
            .env("SIGNALKIT_NEWS_BASE_URL", &sec.url)
            .env("SEC_USER_AGENT", "Jane Doe jane@example.com")
            .env("STORE", &store)
            .env("ENCODE_MODEL", fixture)
            .env("WORK_ROOT", &work)
            .env("WEEK", week)
            .env("DRY_RUN", "1")
            .env_remove("RUST_BACKTRACE")
            .output()
            .map(Run::from)
            .unwrap()
    };
    // With the history of the week uploaded above, this week's different signal trips the churn
    // gate: the week fails at submit, naming the numbers, and nothing is uploaded.
    let out = news_week("history", "2026-W51");
    assert!(!out.status.success(), "the churn gate should stop the week:\n{}", out.text());
    let log = std::fs::read_to_string(work.join("2026-W51/weekly.log")).unwrap();
    assert!(log.contains("churn gate: churn") && log.contains("in step: signalkit submit"), "{log}");
    assert!(log.contains("signalkit news fetch --source sec") && log.contains(&format!("{n} new")), "{log}");
    assert_eq!((puts(), server.count()), (uploads, 2));
    let out = news_week("history-news", "2026-W52");
    assert_no_secret(&out);
    assert!(out.status.success(), "weekly.sh with NEWS_SOURCE failed:\n{}", out.text());
    let log = std::fs::read_to_string(work.join("2026-W52/weekly.log")).unwrap();
    assert!(log.contains("signalkit news fetch --source sec") && log.contains("already covered"), "{log}");
    assert!(log.contains(&format!("sec: {} ticker(s), 0 gap(s)", symbols.len())), "the gaps are logged: {log}");
    assert!(log.contains("100.0% with a headline") && log.contains("DRY_RUN=1"), "{log}");
    assert_eq!((puts(), server.count()), (uploads, 2));
}

fn read_table_any(p: &Path) -> DataFrame {
    signalkit::data::read_table(p, false).unwrap()
}

fn tickers_first(t: &DataFrame) -> String {
    strs(t, "bloomberg_ticker").into_iter().flatten().min().unwrap()
}
