//! `signalkit news fetch` against loopback mocks of each source, written from the vendors'
//! documented request and response shapes (DESIGN §10): several pages, a 429 with Retry-After,
//! a 503, a revised article, a duplicate across pages and a symbol outside the universe. The
//! output must be complete, ordered, de-duplicated and stamped with the right field; a repeated
//! or resumed fetch adds nothing twice; `join` reads the result.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::mock;
use common::*;
use serde_json::{Value, json};
use signalkit::data::tickers::TickerRule;
use signalkit::http::RetryPolicy;
use signalkit::news::{FetchArgs, FetchSummary, Keys, Source, fetch};

// ---------------------------------------------------------------------------------------------
// Loopback mock (tests/common/mock.rs, seen as path, query pairs and headers)
// ---------------------------------------------------------------------------------------------

/// One request: path without the query, the query pairs, headers (lower-case names).
#[derive(Debug, Clone)]
struct Req {
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
}

impl From<&mock::Req> for Req {
    fn from(r: &mock::Req) -> Self {
        let u = reqwest::Url::parse(&format!("http://x{}", r.path)).expect("a request target");
        let query = u.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Req { path: u.path().to_string(), query, headers: r.headers.clone() }
    }
}

/// An answer: status, extra headers, JSON body.
type Reply = (u16, Vec<(String, String)>, String);

/// A running mock: its URL and what it was asked.
struct Mock(mock::Mock);

impl Mock {
    fn requests(&self) -> Vec<Req> {
        self.0.requests().iter().map(Req::from).collect()
    }
}

impl std::ops::Deref for Mock {
    type Target = mock::Mock;
    fn deref(&self) -> &mock::Mock {
        &self.0
    }
}

/// Serves `handler` on 127.0.0.1; the first request to a path containing `fault_path` gets a
/// 429 with `Retry-After: 1`, the second a 503.
fn serve(fault_path: &'static str, handler: impl Fn(&Req, &str) -> Reply + Send + Sync + 'static) -> Mock {
    let faults = AtomicUsize::new(0);
    Mock(mock::serve(move |raw, _, base| {
        let req = Req::from(raw);
        let (status, mut headers, body) = if req.path.contains(fault_path) && faults.load(Ordering::SeqCst) < 2 {
            match faults.fetch_add(1, Ordering::SeqCst) {
                0 => (429, vec![("Retry-After".into(), "1".into())], r#"{"message":"slow down"}"#.into()),
                _ => (503, vec![], "unavailable".into()),
            }
        } else {
            handler(&req, base)
        };
        headers.push(("Content-Type".into(), "application/json".into()));
        mock::Reply::Full(status, headers, body.into_bytes())
    }))
}

fn ok(v: Value) -> Reply {
    (200, vec![], v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn args(source: Source, mock: &Mock, out: &Path, keys: &[(&str, &str)], tickers: &[&str], to: &str) -> FetchArgs {
    FetchArgs {
        source,
        tickers: tickers.iter().map(|s| s.to_string()).collect(),
        from: day("2024-01-01"),
        to: day(to),
        out: out.to_path_buf(),
        rule: TickerRule::default(),
        keys: Keys::from_pairs(keys),
        base_url: Some(mock.url.clone()),
        rate_per_minute: Some(6000.0),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        },
        forms: None,
        progress: false,
    }
}

fn us(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
}

/// The combined file as (ticker, published_at µs, id) rows, in file order.
fn rows_of(path: &Path) -> Vec<(String, i64, String)> {
    let df = read_parquet(path);
    let t = strs(&df, "ticker");
    let id = strs(&df, "id");
    let p = df.column("published_at").unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
    let p: Vec<i64> = p.i64().unwrap().into_no_null_iter().collect();
    (0..df.height()).map(|i| (t[i].clone().unwrap(), p[i], id[i].clone().unwrap())).collect()
}

fn column(path: &Path, name: &str) -> Vec<Option<String>> {
    strs(&read_parquet(path), name)
}

/// The checks every source shares: the retries happened and waited, the output is sorted, has
/// no duplicate (ticker, id), and a repeat and a resume (state lost) add nothing.
fn common_checks(first: &FetchSummary, elapsed: Duration, out: &Path, mut again: impl FnMut() -> FetchSummary) {
    assert!(first.retries >= 2, "the 429 and the 503 are retried: {first}");
    assert!(elapsed >= Duration::from_millis(950), "Retry-After: 1 is honoured (took {elapsed:?})");
    let rows = rows_of(&out.join("headlines.parquet"));
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| (a.1, &a.0, &a.2).cmp(&(b.1, &b.0, &b.2)));
    assert_eq!(rows, sorted, "ordered by published_at, ticker, id");
    let mut keys: Vec<_> = rows.iter().map(|r| (r.0.clone(), r.2.clone())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), rows.len(), "no (ticker, id) twice");
    let repeat = again();
    assert_eq!(repeat.added.new, 0, "a repeated fetch adds nothing: {repeat}");
    assert_eq!(
        repeat.skipped + repeat.unknown.len(),
        repeat.tickers,
        "the state says every ticker is covered (a ticker the source does not know is asked again): {repeat}"
    );
    let src = out.join(&first.source);
    std::fs::remove_file(src.join("state.json")).unwrap();
    let resumed = again();
    assert_eq!(resumed.added.new, 0, "a fetch killed before its state was saved adds nothing twice: {resumed}");
    assert!(resumed.added.duplicate > 0, "it saw the stored rows again: {resumed}");
    assert_eq!(rows_of(&out.join("headlines.parquet")), rows, "the output is unchanged");
}

// ---------------------------------------------------------------------------------------------
// SEC EDGAR
// ---------------------------------------------------------------------------------------------

fn sec_page(rows: &[(&str, &str, &str, &str, &str)]) -> Value {
    // (accessionNumber, filingDate, acceptanceDateTime, form, items)
    let col = |k: usize| rows.iter().map(|r| [r.0, r.1, r.2, r.3, r.4][k]).collect::<Vec<_>>();
    json!({
        "accessionNumber": col(0), "filingDate": col(1), "acceptanceDateTime": col(2), "form": col(3), "items": col(4),
        "primaryDocument": rows.iter().map(|r| format!("{}.htm", r.0)).collect::<Vec<_>>(),
        "primaryDocDescription": col(3),
    })
}

fn sec_mock() -> Mock {
    serve("/submissions/", |req, _base| match req.path.as_str() {
        "/files/company_tickers.json" => ok(json!({
            "0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."},
            "1": {"cik_str": 789019, "ticker": "MSFT", "title": "MICROSOFT CORP"},
            "2": {"cik_str": 1067983, "ticker": "BRK-B", "title": "BERKSHIRE HATHAWAY INC"},
        })),
        "/submissions/CIK0000320193.json" => ok(json!({
            "cik": "320193", "name": "Apple Inc.", "tickers": ["AAPL", "AAPLW"],
            "filings": {
                "recent": sec_page(&[
                    ("0000320193-24-000010", "2024-02-01", "2024-02-01T16:30:15.000Z", "8-K", "2.02,9.01"),
                    ("0000320193-24-000011", "2024-02-01", "2024-02-01T18:00:00.000Z", "4", ""),
                    ("0000320193-24-000012", "2024-02-02", "2024-02-02T06:01:36.000Z", "10-Q", ""),
                ]),
                "files": [
                    {"name": "CIK0000320193-submissions-001.json", "filingCount": 3, "filingFrom": "2023-06-01", "filingTo": "2024-02-01"},
                    {"name": "CIK0000320193-submissions-002.json", "filingCount": 9, "filingFrom": "2001-01-01", "filingTo": "2005-12-31"},
                ]
            }
        })),
        "/submissions/CIK0000320193-submissions-001.json" => ok(sec_page(&[
            ("0000320193-24-000010", "2024-02-01", "2024-02-01T16:30:15.000Z", "8-K", "2.02,9.01"),
            ("0000320193-24-000003", "2024-01-15", "2024-01-15T17:05:00.000Z", "8-K", "5.02"),
            ("0000320193-23-000090", "2023-12-10", "2023-12-10T10:00:00.000Z", "8-K", "8.01"),
        ])),
        "/submissions/CIK0000789019.json" => ok(json!({
            "cik": "789019", "name": "MICROSOFT CORP", "tickers": ["MSFT"],
            "filings": {"recent": sec_page(&[
                ("0000789019-24-000001", "2024-01-30", "2024-01-30T16:05:00.000Z", "8-K", "2.02"),
            ]), "files": []}
        })),
        _ => (404, vec![], r#"{"error":"not found"}"#.into()),
    })
}

#[test]
fn sec_edgar_filings_are_stamped_at_acceptance_read_as_new_york_time() {
    let mock = sec_mock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let ua = [("SEC_USER_AGENT", "Jane Doe jane@example.com")];
    let a = args(Source::Sec, &mock, &out, &ua, &["AAPL", "MSFT", "NOPE"], "2024-02-14");
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let elapsed = t0.elapsed();
    assert_eq!(s.unknown, vec!["NOPE".to_string()], "a ticker without a CIK is reported: {s}");
    let rows = rows_of(&out.join("headlines.parquet"));
    let want = vec![
        ("AAPL US".to_string(), us("2024-01-15T22:05:00Z"), "0000320193-24-000003".to_string()),
        ("MSFT US".to_string(), us("2024-01-30T21:05:00Z"), "0000789019-24-000001".to_string()),
        ("AAPL US".to_string(), us("2024-02-01T21:30:15Z"), "0000320193-24-000010".to_string()),
        ("AAPL US".to_string(), us("2024-02-02T11:01:36Z"), "0000320193-24-000012".to_string()),
    ];
    assert_eq!(rows, want, "complete, ordered, one row per filing, acceptance time read as New York time");
    let heads = column(&out.join("headlines.parquet"), "headline");
    assert_eq!(
        heads[2].as_deref(),
        Some("Apple Inc.: 8-K — Results of Operations and Financial Condition; Financial Statements and Exhibits")
    );
    let urls = column(&out.join("headlines.parquet"), "url");
    assert_eq!(
        urls[0].as_deref(),
        Some("https://www.sec.gov/Archives/edgar/data/320193/000032019324000003/0000320193-24-000003.htm")
    );
    assert!(out.join("sec/2024-01.parquet").exists() && out.join("sec/2024-02.parquet").exists(), "monthly partitions");
    assert_eq!(s.added.unmapped, 3, "AAPLW (outside the universe) kept aside for each Apple filing: {s}");
    assert_eq!(
        column(&out.join("sec/unmapped.parquet"), "symbol").iter().flatten().filter(|t| *t == "AAPLW").count(),
        3
    );
    let reqs = mock.requests();
    assert!(reqs.iter().all(|r| r.headers.get("user-agent").map(String::as_str) == Some("Jane Doe jane@example.com")));
    assert!(
        !reqs.iter().any(|r| r.path.contains("submissions-002")),
        "an older page outside the dates is not asked for"
    );
    common_checks(&s, elapsed, &out, || fetch(&a).unwrap());
}

#[test]
fn sec_needs_a_user_agent_with_an_email() {
    let mock = sec_mock();
    let dir = tempfile::tempdir().unwrap();
    let a = args(Source::Sec, &mock, dir.path(), &[("SEC_USER_AGENT", "signalkit")], &["AAPL"], "2024-02-14");
    let e = fetch(&a).unwrap_err().to_string();
    assert!(e.contains("SEC_USER_AGENT") && e.contains("e-mail"), "{e}");
    let a = args(Source::Sec, &mock, dir.path(), &[], &["AAPL"], "2024-02-14");
    let e = fetch(&a).unwrap_err().to_string();
    assert!(e.contains("export SEC_USER_AGENT"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Alpaca
// ---------------------------------------------------------------------------------------------

const ALPACA_KEY: &str = "AKTESTKEYID0001";
const ALPACA_SECRET: &str = "alpacaSECRETvalue42";

fn alpaca_article(id: i64, created: &str, updated: &str, symbols: &[&str], headline: &str) -> Value {
    json!({"id": id, "headline": headline, "author": "Benzinga Newsdesk", "created_at": created, "updated_at": updated,
           "summary": "", "url": format!("https://www.benzinga.com/news/{id}"), "symbols": symbols, "source": "benzinga"})
}

/// `revised`: the second version of article 3 (headline and updated_at changed).
fn alpaca_mock(revised: bool) -> Mock {
    alpaca_mock_with(revised, Arc::new(std::sync::atomic::AtomicBool::new(false)))
}

/// As [`alpaca_mock`]; while `hang` is set, the third AAPL page never comes (for a kill test).
fn alpaca_mock_with(revised: bool, hang: Arc<std::sync::atomic::AtomicBool>) -> Mock {
    serve("/v1beta1/news", move |req, _| {
        if req.query.get("page_token").map(String::as_str) == Some("p3") && hang.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_secs(30));
        }
        if req.headers.get("apca-api-key-id").map(String::as_str) != Some(ALPACA_KEY)
            || req.headers.get("apca-api-secret-key").map(String::as_str) != Some(ALPACA_SECRET)
        {
            return (401, vec![], r#"{"message":"forbidden"}"#.into());
        }
        let a1 = alpaca_article(1, "2024-01-10T14:00:00Z", "2024-01-10T14:00:00Z", &["AAPL"], "Apple opens a store");
        let a2 = alpaca_article(
            2,
            "2024-01-20T15:00:00Z",
            "2024-01-20T15:00:00Z",
            &["AAPL", "ZZZZ"],
            "Apple and ZZZZ sign a deal",
        );
        let a3 = if revised {
            alpaca_article(
                3,
                "2024-02-05T10:00:00Z",
                "2024-02-20T09:00:00Z",
                &["AAPL"],
                "Apple beats estimates (corrected)",
            )
        } else {
            alpaca_article(3, "2024-02-05T10:00:00Z", "2024-02-06T09:00:00Z", &["AAPL"], "Apple beats estimates")
        };
        let a4 = alpaca_article(
            4,
            "2024-02-10T12:00:00Z",
            "2024-02-10T12:00:00Z",
            &["AAPL", "MSFT"],
            "Apple and Microsoft in talks",
        );
        let page = |news: Vec<Value>, next: Option<&str>| ok(json!({"news": news, "next_page_token": next}));
        let sym = req.query.get("symbols").cloned().unwrap_or_default();
        match (sym.as_str(), req.query.get("page_token").map(String::as_str)) {
            ("AAPL", None) => page(vec![a1, a2.clone()], Some("p2")),
            ("AAPL", Some("p2")) => page(vec![a2, a3], Some("p3")),
            ("AAPL", Some("p3")) => page(vec![a4], None),
            ("MSFT", None) => page(vec![a4], None),
            _ => page(vec![], None),
        }
    })
}

#[test]
fn alpaca_articles_are_stamped_at_created_at_and_revisions_never_move_them() {
    let mock = alpaca_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let keys = [("APCA_API_KEY_ID", ALPACA_KEY), ("APCA_API_SECRET_KEY", ALPACA_SECRET)];
    let a = args(Source::Alpaca, &mock, &out, &keys, &["AAPL", "MSFT"], "2024-02-14");
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let elapsed = t0.elapsed();
    let want: Vec<(String, i64, String)> = [
        ("AAPL US", "2024-01-10T14:00:00Z", "1"),
        ("AAPL US", "2024-01-20T15:00:00Z", "2"),
        ("AAPL US", "2024-02-05T10:00:00Z", "3"),
        ("AAPL US", "2024-02-10T12:00:00Z", "4"),
        ("MSFT US", "2024-02-10T12:00:00Z", "4"),
    ]
    .iter()
    .map(|(t, p, i)| (t.to_string(), us(p), i.to_string()))
    .collect();
    assert_eq!(rows_of(&out.join("headlines.parquet")), want, "created_at, not updated_at; ordered; deduplicated");
    assert_eq!(s.added.unmapped, 1, "ZZZZ is outside the universe: {s}");
    let reqs: Vec<Req> = mock.requests().into_iter().filter(|r| r.path == "/v1beta1/news").collect();
    let first = reqs.iter().find(|r| r.query.contains_key("symbols")).unwrap();
    assert_eq!(first.query["limit"], "50");
    assert_eq!(first.query["sort"], "asc");
    assert_eq!(first.query["start"], "2024-01-01T00:00:00Z");
    assert_eq!(first.query["end"], "2024-03-15T23:59:59Z", "end reaches 30 days past --to, for revisions");
    common_checks(&s, elapsed, &out, || fetch(&a).unwrap());

    // A week later the article was revised: its time, text and first sighting stay; updated_at moves.
    let before = read_parquet(&out.join("alpaca/2024-02.parquet"));
    let mock2 = alpaca_mock(true);
    let a2 = args(Source::Alpaca, &mock2, &out, &keys, &["AAPL", "MSFT"], "2024-02-21");
    let s2 = fetch(&a2).unwrap();
    assert_eq!(s2.added.new, 0, "{s2}");
    let after = read_parquet(&out.join("alpaca/2024-02.parquet"));
    let find = |df: &polars::prelude::DataFrame, col: &str| -> String {
        let ids = strs(df, "id");
        let i = ids.iter().position(|x| x.as_deref() == Some("3")).unwrap();
        df.column(col).unwrap().get(i).unwrap().to_string()
    };
    assert_eq!(find(&after, "published_at"), find(&before, "published_at"));
    assert_eq!(find(&after, "headline"), find(&before, "headline"));
    assert_eq!(find(&after, "first_seen_at"), find(&before, "first_seen_at"));
    assert!(find(&after, "updated_at").contains("2024-02-20"), "updated_at advances: {}", find(&after, "updated_at"));
    let asked = mock2.requests().into_iter().find(|r| r.query.contains_key("start")).unwrap();
    assert_eq!(
        asked.query["start"], "2024-02-12T00:00:00Z",
        "a weekly rerun asks only from the covered end less the overlap"
    );
}

#[test]
fn cli_fetch_then_join_reads_the_output_and_no_key_is_printed() {
    let mock = alpaca_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let tickers = write(dir.path(), "universe.txt", "AAPL\nMSFT\n");
    let run = |args: &[&str]| {
        let o = signalkit(args)
            .env("APCA_API_KEY_ID", ALPACA_KEY)
            .env("APCA_API_SECRET_KEY", ALPACA_SECRET)
            .env("HOME", dir.path())
            .env_remove("SIGNALKIT_NEWS_BASE_URL")
            .run();
        let text = o.text();
        assert!(!text.contains(ALPACA_SECRET) && !text.contains(ALPACA_KEY), "a key leaked:\n{text}");
        assert!(o.status.success(), "{args:?} failed:\n{text}");
        text
    };
    let out_s = out.to_str().unwrap();
    let text = run(&[
        "news",
        "fetch",
        "--source",
        "alpaca",
        "--tickers",
        tickers.to_str().unwrap(),
        "--from",
        "2024-01-01",
        "--to",
        "2024-02-14",
        "--out",
        out_s,
        "--base-url",
        &mock.url,
        "--rate",
        "6000",
        "--quiet",
    ]);
    assert!(text.contains("5 new"), "{text}");
    // Fridays after the headlines: 2024-01-12 sees article 1, 2024-02-16 sees 1-4 for AAPL.
    let targets = write(
        dir.path(),
        "targets.csv",
        "bloomberg_ticker,friday_date,target\nAAPL US,20240112,0.5\nAAPL US,20240216,0.25\nMSFT US,20240216,0.75\nMSFT US,20240112,0.5\n",
    );
    let rows = dir.path().join("rows.parquet");
    let headlines = out.join("headlines.parquet");
    run(&[
        "join",
        "--targets",
        targets.to_str().unwrap(),
        "--headlines",
        headlines.to_str().unwrap(),
        "--out",
        rows.to_str().unwrap(),
    ]);
    let df = read_parquet(&rows);
    let t = strs(&df, "bloomberg_ticker");
    let h = strs(&df, "headline");
    let n7 = df.column("n_headlines_30d").unwrap().cast(&polars::prelude::DataType::Int64).unwrap();
    let n7: Vec<Option<i64>> = n7.i64().unwrap().iter().collect();
    let by: HashMap<(String, String), (Option<String>, Option<i64>)> = (0..df.height())
        .map(|i| {
            let f = df.column("friday_date").unwrap().get(i).unwrap().to_string();
            ((t[i].clone().unwrap(), f), (h[i].clone(), n7[i]))
        })
        .collect();
    assert_eq!(by[&("AAPL US".into(), "20240112".into())], (Some("Apple opens a store".into()), Some(1)));
    assert_eq!(by[&("AAPL US".into(), "20240216".into())], (Some("Apple and Microsoft in talks".into()), Some(3)));
    assert_eq!(by[&("MSFT US".into(), "20240216".into())].0.as_deref(), Some("Apple and Microsoft in talks"));
    assert_eq!(by[&("MSFT US".into(), "20240112".into())].0, None);
}

#[test]
fn a_fetch_killed_mid_ticker_resumes_without_duplicates() {
    let hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mock = alpaca_mock_with(false, hang.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let cli = |out: &Path| {
        signalkit([
            "news",
            "fetch",
            "--source",
            "alpaca",
            "--tickers",
            "AAPL,MSFT",
            "--from",
            "2024-01-01",
            "--to",
            "2024-02-14",
        ])
        .arg("--out")
        .arg(out)
        .args(["--base-url", &mock.url, "--rate", "6000", "--quiet", "--max-tries", "1"])
        .env("APCA_API_KEY_ID", ALPACA_KEY)
        .env("APCA_API_SECRET_KEY", ALPACA_SECRET)
        .env("HOME", dir.path())
    };
    // The mock answers 429, then 503, first: two runs of one try each take them.
    let _ = cli(&out).run();
    let _ = cli(&out).run();
    std::fs::remove_dir_all(&out).unwrap();
    let mut child = cli(&out).command().spawn().unwrap();
    let t0 = Instant::now();
    while !mock.requests().iter().any(|r| r.query.get("page_token").map(String::as_str) == Some("p3")) {
        assert!(t0.elapsed() < Duration::from_secs(20), "the fetch never reached page 3");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let pending: Vec<_> =
        std::fs::read_dir(out.join("alpaca/pending")).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let stored: usize = pending.iter().map(|p| rows_of(p).len()).sum();
    assert_eq!(stored, 6, "pages 1 and 2 were stored (as pending pages) before the kill: {pending:?}");
    assert!(!out.join("alpaca/state.json").exists(), "AAPL was not finished");
    hang.store(false, Ordering::SeqCst);
    let o = cli(&out).run();
    let text = o.stdout.clone();
    assert!(o.status.success(), "{text}{}", o.stderr);
    // Pages 1-2 again (6 rows, ZZZZ included) and MSFT (2) are duplicates; only page 3 is new.
    assert!(text.contains("2 new, 8 duplicate"), "{text}");
    let ids: Vec<(String, String)> = rows_of(&out.join("headlines.parquet")).into_iter().map(|r| (r.0, r.2)).collect();
    let want: Vec<(String, String)> =
        [("AAPL US", "1"), ("AAPL US", "2"), ("AAPL US", "3"), ("AAPL US", "4"), ("MSFT US", "4")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(ids, want);
    let leftovers: Vec<_> = std::fs::read_dir(out.join("alpaca"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
    let left = std::fs::read_dir(out.join("alpaca/pending")).unwrap().count();
    assert_eq!(left, 0, "the pending pages were merged into the month files");
}

#[test]
fn a_refused_key_and_a_missing_key_say_what_to_do() {
    let mock = alpaca_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let keys = [("APCA_API_KEY_ID", ALPACA_KEY), ("APCA_API_SECRET_KEY", "wrongSECRET999")];
    let e = fetch(&args(Source::Alpaca, &mock, dir.path(), &keys, &["AAPL"], "2024-02-14")).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("key") && !e.contains("wrongSECRET999"), "{e}");
    assert!(e.starts_with("news API: ") && !e.contains("Numerai"), "the vendor's refusal is not Numerai's: {e}");
    let e =
        fetch(&args(Source::Alpaca, &mock, dir.path(), &[("APCA_API_KEY_ID", ALPACA_KEY)], &["AAPL"], "2024-02-14"))
            .unwrap_err()
            .to_string();
    assert!(e.contains("APCA_API_SECRET_KEY") && e.contains("credentials"), "{e}");
}

#[test]
fn credentials_file_must_be_private_and_env_wins() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "credentials", "FINNHUB_API_KEY = \"fromfile123\"\n");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Keys::discover(Some(&f), &["FINNHUB_API_KEY"]).unwrap_err().to_string();
    assert!(e.contains("chmod 600") && !e.contains("fromfile123"), "{e}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let k = Keys::discover(Some(&f), &["FINNHUB_API_KEY"]).unwrap();
    assert_eq!(k.require("FINNHUB_API_KEY", "test").unwrap(), "fromfile123");
    assert!(!format!("{k:?}").contains("fromfile123"));
}

// ---------------------------------------------------------------------------------------------
// Finnhub, Polygon, Tiingo
// ---------------------------------------------------------------------------------------------

#[test]
fn finnhub_pages_by_week_and_stamps_datetime() {
    // (id, unix seconds, related)
    let arts: Vec<(i64, i64, &str)> = vec![
        (101, us("2024-01-03T13:00:00Z") / 1_000_000, "AAPL"),
        (102, us("2024-01-07T23:30:00Z") / 1_000_000, "AAPL,ZZZZ"), // last day of the first window
        (103, us("2024-01-20T08:00:00Z") / 1_000_000, "AAPL"),
    ];
    let mock = serve("/api/v1/company-news", move |req, _| {
        if req.headers.get("x-finnhub-token").map(String::as_str) != Some("fhKEY123") {
            return (401, vec![], "{}".into());
        }
        let (from, to) = (day(&req.query["from"]), day(&req.query["to"]));
        // The mock also answers the day before `from`: the boundary article comes twice.
        let lo = us(&format!("{}T00:00:00Z", from - chrono::Duration::days(1))) / 1_000_000;
        let hi = us(&format!("{}T00:00:00Z", to + chrono::Duration::days(1))) / 1_000_000;
        let v: Vec<Value> = arts
            .iter()
            .filter(|a| a.1 >= lo && a.1 < hi && req.query["symbol"] == "AAPL")
            .map(|(id, t, rel)| json!({"category": "company", "datetime": t, "headline": format!("story {id}"), "id": id,
                "image": "", "related": rel, "source": "Reuters", "summary": "", "url": format!("https://example.com/{id}")}))
            .collect();
        ok(Value::Array(v))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let a = args(Source::Finnhub, &mock, &out, &[("FINNHUB_API_KEY", "fhKEY123")], &["AAPL"], "2024-01-31");
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let elapsed = t0.elapsed();
    let ids: Vec<String> = rows_of(&out.join("headlines.parquet")).into_iter().map(|r| r.2).collect();
    assert_eq!(ids, ["101", "102", "103"]);
    assert_eq!(rows_of(&out.join("headlines.parquet"))[1].1, us("2024-01-07T23:30:00Z"));
    assert!(s.added.duplicate >= 1 && s.added.unmapped >= 1, "{s}");
    let windows: Vec<(String, String)> = mock
        .requests()
        .into_iter()
        .filter(|r| r.query.contains_key("from"))
        .map(|r| (r.query["from"].clone(), r.query["to"].clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(windows.first().unwrap(), &("2024-01-01".to_string(), "2024-01-07".to_string()));
    assert_eq!(windows.len(), 5, "five week-long windows cover January: {windows:?}");
    common_checks(&s, elapsed, &out, || fetch(&a).unwrap());
}

#[test]
fn finnhub_asks_a_busy_week_again_day_by_day() {
    // 120 articles in the first week; the mock caps every answer at 100, so only the day-by-day
    // requests find them all.
    let mock = serve("/none", |req, _| {
        let (from, to) = (day(&req.query["from"]), day(&req.query["to"]));
        let all: Vec<Value> = (0..120i64)
            .map(|i| {
                let t = us("2024-01-01T00:30:00Z") / 1_000_000 + i * 4800;
                json!({"category": "company", "datetime": t, "headline": format!("busy {i}"), "id": 900 + i, "related": "AAPL",
                       "source": "x", "summary": "", "url": ""})
            })
            .filter(|a| {
                let d = chrono::DateTime::from_timestamp(a["datetime"].as_i64().unwrap(), 0).unwrap().date_naive();
                d >= from && d <= to
            })
            .take(100)
            .collect();
        ok(Value::Array(all))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let s =
        fetch(&args(Source::Finnhub, &mock, &out, &[("FINNHUB_API_KEY", "k1234")], &["AAPL"], "2024-01-14")).unwrap();
    assert_eq!(s.added.new, 120, "every article of the busy week is found: {s}");
    assert_eq!(rows_of(&out.join("headlines.parquet")).len(), 120);
}

fn polygon_article(id: &str, t: &str, tickers: &[&str]) -> Value {
    json!({"id": id, "publisher": {"name": "MarketWatch"}, "title": format!("title {id}"), "author": "x",
           "published_utc": t, "article_url": format!("https://example.com/{id}"), "tickers": tickers, "description": ""})
}

#[test]
fn polygon_follows_next_url_on_our_base_and_stamps_published_utc() {
    // Polygon's documented example answer names its own host in next_url:
    //   "next_url": "https://api.polygon.io:443/v2/reference/news?cursor=eyJsaW1pdCI6MSwic29ydCI6..."
    // (polygon.io docs, /v2/reference/news); newer Massive examples name https://api.massive.com.
    // Behind --base-url, the pages must still come from the base URL, with the key.
    let mock = serve("/v2/reference/news", |req, _base| {
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer pgKEY456") {
            return (401, vec![], "{}".into());
        }
        let art = polygon_article;
        match req.query.get("cursor").map(String::as_str) {
            None => ok(
                json!({"results": [art("p1", "2024-01-05T10:00:00Z", &["AAPL"]), art("p2", "2024-01-09T11:00:00Z", &["AAPL", "ZZZZ"])],
                       "status": "OK", "next_url": "https://api.polygon.io:443/v2/reference/news?cursor=c2"}),
            ),
            Some("c2") => ok(
                json!({"results": [art("p2", "2024-01-09T11:00:00Z", &["AAPL", "ZZZZ"]), art("p3", "2024-02-01T09:00:00Z", &["AAPL"])],
                       "status": "OK", "next_url": "https://api.massive.com/v2/reference/news?cursor=c3"}),
            ),
            Some("c3") => ok(json!({"results": [art("p4", "2024-02-03T09:00:00Z", &["AAPL"])], "status": "OK"})),
            _ => ok(json!({"results": []})),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let a = args(Source::Polygon, &mock, &out, &[("POLYGON_API_KEY", "pgKEY456")], &["AAPL"], "2024-02-14");
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let elapsed = t0.elapsed();
    let rows = rows_of(&out.join("headlines.parquet"));
    assert_eq!(rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(), ["p1", "p2", "p3", "p4"], "every page: {s}");
    assert_eq!(rows[2].1, us("2024-02-01T09:00:00Z"));
    assert_eq!(s.added.unmapped, 1, "{s}");
    let cursors: Vec<Option<String>> = mock.requests().iter().map(|r| r.query.get("cursor").cloned()).collect();
    assert!(cursors.contains(&Some("c3".into())), "page 3 came through the base URL: {cursors:?}");
    assert!(mock.requests().iter().all(|r| !r.query.contains_key("apiKey")), "the key stays out of URLs");
    common_checks(&s, elapsed, &out, || fetch(&a).unwrap());
}

#[test]
fn a_cursor_url_keeps_the_base_urls_path_prefix() {
    // A proxy that serves the vendor under a path (`--base-url http://proxy/polygon`): the
    // vendor's next_url names its own host and path; page 2 must go to the proxy's prefix too.
    let mock = serve("/none", |req, _| {
        if !req.path.starts_with("/px/v2/reference/news") {
            return (404, vec![], r#"{"status":"NOT_FOUND"}"#.into());
        }
        match req.query.get("cursor").map(String::as_str) {
            None => ok(json!({"results": [polygon_article("q1", "2024-01-05T10:00:00Z", &["AAPL"])], "status": "OK",
                              "next_url": "https://api.polygon.io:443/v2/reference/news?cursor=k2"})),
            _ => ok(json!({"results": [polygon_article("q2", "2024-01-06T10:00:00Z", &["AAPL"])], "status": "OK"})),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(Source::Polygon, &mock, dir.path(), &[("POLYGON_API_KEY", "pgKEY456")], &["AAPL"], "2024-02-14");
    a.base_url = Some(format!("{}/px/", mock.url));
    let s = fetch(&a).unwrap();
    assert_eq!(s.added.new, 2, "{s}");
    let reqs = mock.requests();
    assert!(
        reqs.iter().all(|r| r.path == "/px/v2/reference/news"),
        "{:?}",
        reqs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        reqs.iter().all(|r| r.headers.get("authorization").is_some_and(|v| v == "Bearer pgKEY456")),
        "the key goes with every page"
    );
}

/// Polygon's documented 403 for dates outside a plan (polygon-io/issues#313, quoting the API):
/// `{"status":"NOT_AUTHORIZED","request_id":"...","message":"Your plan doesn't include this data
/// timeframe. Please upgrade your plan at https://polygon.io/pricing"}`.
const POLYGON_PLAN_403: &str = r#"{"status":"NOT_AUTHORIZED","request_id":"dd68e9ff6c00458b806e1947d8bbe2ff","message":"Your plan doesn't include this data timeframe. Please upgrade your plan at https://polygon.io/pricing"}"#;

#[test]
fn polygon_plan_limit_skips_that_ticker_records_why_and_the_rest_are_fetched() {
    let mock = serve("/none", |req, _| {
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer pgKEY456") {
            // Polygon's answer to an unknown key.
            return (401, vec![], r#"{"status":"ERROR","request_id":"x","error":"Unknown API Key"}"#.into());
        }
        match req.query["ticker"].as_str() {
            "OLD" => (403, vec![], POLYGON_PLAN_403.into()),
            "QUIET" => ok(json!({"results": [], "status": "OK"})),
            t => ok(
                json!({"results": [polygon_article(&format!("{t}1"), "2024-01-05T10:00:00Z", &[t])], "status": "OK"}),
            ),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let a = args(
        Source::Polygon,
        &mock,
        &out,
        &[("POLYGON_API_KEY", "pgKEY456")],
        &["OLD", "AAPL", "QUIET", "MSFT"],
        "2024-02-14",
    );
    let s = fetch(&a).unwrap();
    assert_eq!(s.added.new, 2, "the tickers after the refused one are fetched: {s}");
    assert_eq!(s.gaps.len(), 1, "{s}");
    assert!(s.to_string().contains("not available to this key: OLD 2024-01-01..2024-02-14"), "{s}");
    assert!(s.to_string().contains("Your plan doesn't include this data timeframe"), "{s}");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(out.join("polygon/state.json")).unwrap()).unwrap();
    assert_eq!(state["gaps"]["OLD"][0]["kind"], "not_available", "{state}");
    assert_eq!(state["gaps"]["OLD"][0]["from"], "2024-01-01");
    assert!(state["gaps"].get("AAPL").is_none());
    // A rerun asks the gap again, and only the gap.
    let before = mock.requests().len();
    let again = fetch(&a).unwrap();
    let asked: Vec<String> = mock.requests()[before..].iter().map(|r| r.query["ticker"].clone()).collect();
    assert_eq!(asked, ["OLD"], "{again}");
    // `news status` tells the refused days from the days asked with nothing there.
    let o = signalkit(["news", "status"]).arg(&out).run();
    let text = o.text();
    assert!(o.status.success(), "{text}");
    let line = |t: &str| text.lines().find(|l| l.split_whitespace().next() == Some(t)).unwrap_or("").to_string();
    assert!(line("AAPL").contains("2024-01-01..2024-02-14") && line("AAPL").contains("1 row"), "{text}");
    assert!(line("QUIET").contains("asked, nothing there"), "{text}");
    assert!(line("OLD").contains("0 rows"), "{text}");
    assert!(
        text.contains("gap 2024-01-01..2024-02-14 not available to this key") && text.contains("Your plan doesn't"),
        "{text}"
    );
    // A refused key stops the fetch and names its variable.
    let bad = args(
        Source::Polygon,
        &mock,
        &dir.path().join("bad"),
        &[("POLYGON_API_KEY", "wrongKEY")],
        &["AAPL"],
        "2024-02-14",
    );
    let e = fetch(&bad).unwrap_err().to_string();
    assert!(e.contains("401") && e.contains("POLYGON_API_KEY") && e.contains("Unknown API Key"), "{e}");
    assert!(!e.contains("wrongKEY"), "{e}");
}

/// A proxy serving Polygon under `/px` and Alpaca under `/alp` (one loopback host), over the
/// sample universe's days: Polygon's ROS news in three pages whose `next_url`s name the vendors'
/// hosts (as Polygon's documented example does), OLD refused with Polygon's documented plan-limit
/// 403; Alpaca's SOL news in two pages (`next_page_token`).
fn run_proxy() -> Mock {
    serve("/none", |req, _| {
        let art = polygon_article;
        if let Some(rest) = req.path.strip_prefix("/px") {
            if rest != "/v2/reference/news"
                || req.headers.get("authorization").map(String::as_str) != Some("Bearer pgKEY456")
            {
                return (401, vec![], r#"{"status":"ERROR","request_id":"x","error":"Unknown API Key"}"#.into());
            }
            return match (req.query.get("ticker").map(String::as_str), req.query.get("cursor").map(String::as_str)) {
                (Some("OLD"), _) => (403, vec![], POLYGON_PLAN_403.into()),
                (Some("ROS"), None) => {
                    ok(json!({"results": [art("r1", "2019-01-08T10:00:00Z", &["ROS"])], "status": "OK",
                    "next_url": "https://api.polygon.io:443/v2/reference/news?cursor=r2"}))
                }
                (_, Some("r2")) => ok(json!({"results": [art("r2", "2019-01-15T10:00:00Z", &["ROS"])], "status": "OK",
                    "next_url": "https://api.massive.com/v2/reference/news?cursor=r3"})),
                (_, Some("r3")) => {
                    ok(json!({"results": [art("r3", "2019-02-05T10:00:00Z", &["ROS"])], "status": "OK"}))
                }
                _ => ok(json!({"results": [], "status": "OK"})),
            };
        }
        if req.path != "/alp/v1beta1/news" || req.headers.get("apca-api-key-id").map(String::as_str) != Some(ALPACA_KEY)
        {
            return (401, vec![], r#"{"message":"forbidden"}"#.into());
        }
        let a = |id, t: &str, h: &str| alpaca_article(id, t, t, &["SOL"], h);
        let page = |news: Vec<Value>, next: Option<&str>| ok(json!({"news": news, "next_page_token": next}));
        match (req.query.get("symbols").map(String::as_str), req.query.get("page_token").map(String::as_str)) {
            (Some("SOL"), None) => page(vec![a(71, "2019-01-09T14:00:00Z", "Solent wins a contract")], Some("s2")),
            (_, Some("s2")) => page(vec![a(72, "2019-01-22T14:00:00Z", "Solent raises guidance")], None),
            _ => page(vec![], None),
        }
    })
}

/// A run config over the bundled sample with `[news]` from the proxy (a small model: the test is
/// about the news stage).
fn news_run_config(dir: &Path, proxy: &Mock, extra_data: &str) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        r#"out = "run"
[data]
targets = "{targets}"
{extra_data}
[encode]
model = "{model}"
store = "store"
[train.params]
num_iterations = 20
[news]
sources = ["polygon", "alpaca"]
tickers = "tickers.txt"
from = 2019-01-01
to = "2019-03-31"
store = "news"
base_url = ["polygon={url}/px/", "alpaca={url}/alp"]
rate = 6000
key_env = "POLYGON_API_KEY=CI_POLYGON"
"#,
        targets = repo.join("data/sample/targets.csv").display(),
        model = repo.join("data/fixtures/tiny-finbert").display(),
        url = proxy.url,
    );
    write(dir, "tickers.txt", "ROS\nSOL\nOLD\n");
    write(dir, "run.toml", &text)
}

#[test]
fn run_with_news_fetches_every_page_behind_a_proxy_joins_them_and_names_the_gap() {
    let proxy = run_proxy();
    let dir = tempfile::tempdir().unwrap();
    let config = news_run_config(dir.path(), &proxy, "");
    let o = signalkit(["run", "--config"])
        .arg(&config)
        .env("HOME", dir.path())
        .env_remove("POLYGON_API_KEY")
        .env("CI_POLYGON", "pgKEY456")
        .env("APCA_API_KEY_ID", ALPACA_KEY)
        .env("APCA_API_SECRET_KEY", ALPACA_SECRET)
        .env_remove("SIGNALKIT_NEWS_BASE_URL")
        .run();
    let text = o.text();
    assert!(o.status.success(), "{text}");
    assert!(!text.contains("pgKEY456") && !text.contains(ALPACA_SECRET), "a key leaked:\n{text}");
    // Every page of both sources, through the proxy's prefixes, with the keys.
    let reqs = proxy.requests();
    let cursors: Vec<&str> = reqs.iter().filter_map(|r| r.query.get("cursor").map(String::as_str)).collect();
    assert_eq!(cursors, ["r2", "r3"], "Polygon's pages 2 and 3 came through the proxy");
    assert!(reqs.iter().any(|r| r.query.get("page_token").is_some_and(|t| t == "s2")), "Alpaca's page 2");
    assert!(reqs.iter().all(|r| r.path == "/px/v2/reference/news" || r.path == "/alp/v1beta1/news"), "{reqs:?}");
    let news = dir.path().join("news/headlines.parquet");
    let mut ids: Vec<String> = rows_of(&news).into_iter().map(|r| r.2).collect();
    ids.sort();
    assert_eq!(ids, ["71", "72", "r1", "r2", "r3"], "{text}");
    // The stage line, and the plan limit named at the end of the stage (not silent).
    let stage =
        text.lines().find(|l| l.starts_with("[0/6] news (")).unwrap_or_else(|| panic!("no stage line:\n{text}"));
    assert!(stage.contains("polygon 3 new") && stage.contains("alpaca 2 new") && stage.contains("1 gap(s)"), "{stage}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("polygon OLD gap 2019-01-01..2019-03-31 not available to this key")
                && l.contains("Your plan doesn't include this data timeframe")),
        "{text}"
    );
    // The join read the fetched headlines: ROS US on 2019-01-25 sees Polygon's page 2, SOL US on 2019-02-01 Alpaca's page 2.
    let df = read_parquet(&dir.path().join("run/rows.parquet"));
    let (t, h, f) = (strs(&df, "bloomberg_ticker"), strs(&df, "headline"), df.column("friday_date").unwrap().clone());
    let row = |tick: &str, day: &str| {
        (0..df.height()).find(|&i| t[i].as_deref() == Some(tick) && f.get(i).unwrap().to_string() == day).unwrap()
    };
    assert_eq!(h[row("ROS US", "20190125")].as_deref(), Some("title r2"));
    assert_eq!(h[row("SOL US", "20190201")].as_deref(), Some("Solent raises guidance"));
    // The run folder's config runs again: its headlines are the store's.
    let saved = signalkit::config::Config::read(&dir.path().join("run/config.toml")).unwrap();
    assert_eq!(saved.data.headlines, std::path::absolute(&news).unwrap());
}

#[test]
fn a_run_config_with_both_data_headlines_and_news_is_refused_naming_both() {
    let proxy = run_proxy();
    let dir = tempfile::tempdir().unwrap();
    let config = news_run_config(dir.path(), &proxy, "headlines = \"mine.csv\"");
    let e = signalkit::config::Config::read(&config).unwrap_err().to_string();
    assert!(e.contains("[data] headlines") && e.contains("mine.csv") && e.contains("[news]"), "{e}");
    assert!(e.contains("remove [data] headlines") && e.contains(&config.display().to_string()), "{e}");
    // Without [data] headlines, the join reads the store's file.
    let config = news_run_config(dir.path(), &proxy, "");
    let cfg = signalkit::config::Config::read(&config).unwrap();
    assert_eq!(cfg.data.headlines, dir.path().join("news/headlines.parquet"));
    let news = cfg.news.as_ref().unwrap();
    assert_eq!(news.tickers, dir.path().join("tickers.txt").display().to_string(), "the file beside the config");
    assert!(proxy.requests().is_empty(), "reading a config asks nobody");
}

#[test]
fn tiingo_pages_by_offset_and_stamps_crawl_date() {
    // 2300 articles six hours apart from 2024-01-01 (three pages of 1000), each crawled an hour
    // later; article 7 claims a publication time after its crawl, 8 lists ZZZZ too.
    let arts: Vec<Value> = (0..2300)
        .map(|i| {
            let p = us("2024-01-01T12:00:00Z") + i * 3_600_000_000 * 6;
            let crawl = if i == 7 { p - 3_600_000_000 } else { p + 3_600_000_000 };
            let f = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap().to_rfc3339();
            let tickers = if i == 8 { json!(["aapl", "zzzz"]) } else { json!(["aapl"]) };
            json!({"id": 5000 + i, "title": format!("tiingo {i}"), "url": format!("https://example.com/t{i}"), "description": "",
                   "publishedDate": f(p), "crawlDate": f(crawl), "source": "example.com", "tags": [], "tickers": tickers})
        })
        .collect();
    let mock = serve("/tiingo/news", move |req, _| {
        if req.headers.get("authorization").map(String::as_str) != Some("Token tiKEY789") {
            return (401, vec![], "{}".into());
        }
        let (off, lim): (usize, usize) = (req.query["offset"].parse().unwrap(), req.query["limit"].parse().unwrap());
        // Overlapping pages: each page repeats the previous page's last article.
        let start = off.saturating_sub(1);
        ok(Value::Array(arts.iter().skip(start).take(lim.min(2300 - start.min(2300))).cloned().collect()))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let a = args(Source::Tiingo, &mock, &out, &[("TIINGO_API_KEY", "tiKEY789")], &["AAPL"], "2025-12-31");
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let elapsed = t0.elapsed();
    let rows = rows_of(&out.join("headlines.parquet"));
    assert_eq!(rows.len(), 2300, "{s}");
    let seven = rows.iter().find(|r| r.2 == "5007").unwrap();
    assert_eq!(
        seven.1,
        us("2024-01-01T12:00:00Z") + 7 * 3_600_000_000 * 6 - 3_600_000_000,
        "crawlDate, even when earlier"
    );
    let six = rows.iter().find(|r| r.2 == "5006").unwrap();
    assert_eq!(
        six.1,
        us("2024-01-01T12:00:00Z") + 6 * 3_600_000_000 * 6 + 3_600_000_000,
        "crawlDate, not publishedDate"
    );
    assert!(s.added.duplicate >= 1 && s.added.unmapped == 1, "{s}");
    common_checks(&s, elapsed, &out, || fetch(&a).unwrap());
}

#[test]
fn sec_403_is_a_throttle_waited_out_and_the_fetch_goes_on() {
    // SEC answers a rate excess with 403 and a page titled "Request Rate Threshold Exceeded"
    // ("Current max request rate: 10 requests/second", SEC "Accessing EDGAR Data"), and blocks
    // for about ten minutes; here the block lifts after two refusals.
    let refused = Arc::new(AtomicUsize::new(0));
    let seen = refused.clone();
    let inner = sec_mock();
    let target = inner.url.clone();
    let mock = serve("/none", move |req, _| {
        if req.path.starts_with("/submissions/") && seen.fetch_add(1, Ordering::SeqCst) < 2 {
            return (403, vec![], "<html><h1>Request Rate Threshold Exceeded</h1></html>".into());
        }
        let r = reqwest::blocking::get(format!("{target}{}", req.path)).unwrap();
        (r.status().as_u16(), vec![], r.text().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let mut a =
        args(Source::Sec, &mock, &out, &[("SEC_USER_AGENT", "Jane Doe jane@example.com")], &["MSFT"], "2024-02-14");
    a.retry.max_delay = Duration::from_millis(300);
    a.retry.max_attempts = 6; // sec_mock's own 429 and 503 come through too
    let s = fetch(&a).unwrap();
    assert_eq!(s.added.new, 1, "{s}");
    assert!(s.retries >= 2, "the 403s were retried: {s}");
    // A block that does not lift: the fetch stops, saying why and what to do.
    refused.store(0, Ordering::SeqCst);
    a.retry.max_attempts = 2;
    a.out = dir.path().join("other");
    let e = fetch(&a).unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("ten minutes") && e.contains("SEC_USER_AGENT"), "{e}");
}

#[test]
fn tiingo_back_filled_story_in_covered_days_is_fetched_on_a_rerun() {
    let f = |s: &str| json!(s);
    let art = |id: i64, published: &str, crawled: &str| {
        json!({"id": id, "title": format!("tiingo {id}"), "url": format!("https://example.com/{id}"), "description": "",
               "publishedDate": f(published), "crawlDate": f(crawled), "source": "example.com", "tags": [], "tickers": ["aapl"]})
    };
    let arts = Arc::new(std::sync::Mutex::new(vec![
        art(1, "2024-01-10T12:00:00Z", "2024-01-10T13:00:00Z"),
        art(2, "2024-03-20T12:00:00Z", "2024-03-20T13:00:00Z"),
    ]));
    let shared = arts.clone();
    // Tiingo filters startDate/endDate on publishedDate (tiingo.com/documentation/news).
    let mock = serve("/none", move |req, _| {
        let (a, b) = (day(&req.query["startDate"]), day(&req.query["endDate"]));
        let v: Vec<Value> = shared
            .lock()
            .unwrap()
            .iter()
            .filter(|x| {
                let p = day(&x["publishedDate"].as_str().unwrap()[..10]);
                p >= a && p <= b
            })
            .cloned()
            .collect();
        ok(Value::Array(v))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let a = args(Source::Tiingo, &mock, &out, &[("TIINGO_API_KEY", "tiKEY789")], &["AAPL"], "2024-03-31");
    assert_eq!(fetch(&a).unwrap().added.new, 2);
    assert!(mock.requests().iter().all(|r| r.query["limit"] == "1000"), "pages of 1000, the documented maximum");
    // Tiingo crawls a story on 2024-04-05 that claims 2024-03-10, inside the covered days.
    arts.lock().unwrap().push(art(3, "2024-03-10T09:00:00Z", "2024-04-05T08:00:00Z"));
    let a2 = args(Source::Tiingo, &mock, &out, &[("TIINGO_API_KEY", "tiKEY789")], &["AAPL"], "2024-04-07");
    let s = fetch(&a2).unwrap();
    assert_eq!(s.added.new, 1, "the back-filled story is found: {s}");
    assert!(s.added.duplicate >= 1, "the re-asked days de-duplicate: {s}");
    let rows = rows_of(&out.join("headlines.parquet"));
    let three = rows.iter().find(|r| r.2 == "3").unwrap();
    assert_eq!(three.1, us("2024-04-05T08:00:00Z"), "stamped at its crawl, never earlier");
    assert_eq!(rows.len(), 3);
}

#[test]
fn finnhub_empty_windows_beyond_the_plan_and_unknown_symbols_are_not_covered() {
    // Finnhub's free plan: "1 year of historical news"; company news "only available for North
    // American companies". Both come back as an empty array, not an error.
    let today = chrono::Utc::now().date_naive();
    let first = today - chrono::Duration::days(340);
    let mock = serve("/none", move |req, _| {
        let (from, to) = (day(&req.query["from"]), day(&req.query["to"]));
        if req.query["symbol"] != "AAPL" || to < first {
            return ok(json!([]));
        }
        let t = from.max(first).and_hms_opt(15, 0, 0).unwrap().and_utc().timestamp();
        ok(json!([{"category": "company", "datetime": t, "headline": format!("story {t}"), "id": t, "image": "",
                   "related": "AAPL", "source": "Reuters", "summary": "", "url": ""}]))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let mut a =
        args(Source::Finnhub, &mock, &out, &[("FINNHUB_API_KEY", "fhKEY123")], &["AAPL", "VOD.L"], "2024-01-01");
    a.from = today - chrono::Duration::days(420);
    a.to = today - chrono::Duration::days(300);
    let s = fetch(&a).unwrap();
    assert!(s.added.new > 0, "{s}");
    assert_eq!(s.unknown, ["VOD.L"], "{s}");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(out.join("finnhub/state.json")).unwrap()).unwrap();
    let g = &state["gaps"]["AAPL"][0];
    assert_eq!(g["kind"], "not_available", "{state}");
    assert_eq!(g["from"], a.from.to_string());
    let end = day(g["to"].as_str().unwrap());
    assert!(end < today - chrono::Duration::days(365) && end < first, "only the empty days older than a year: {state}");
    assert_eq!(state["gaps"]["VOD.L"][0]["kind"], "unknown", "{state}");
    let again = fetch(&a).unwrap();
    assert_eq!(again.skipped, 0, "both are asked again: {again}");
}

#[test]
fn alpaca_story_revised_after_to_is_not_missed() {
    // Alpaca's start/end and sort follow updated_at ("Sort articles by updated date", Alpaca's
    // OpenAPI for /v1beta1/news); the mock filters the same way.
    let mock = serve("/none", |req, _| {
        let a = alpaca_article(7, "2024-02-14T20:00:00Z", "2024-02-16T09:00:00Z", &["AAPL"], "Apple late story");
        let (start, end) = (us(&req.query["start"]), us(&req.query["end"]));
        let u = us("2024-02-16T09:00:00Z");
        let news = if u >= start && u <= end { vec![a] } else { vec![] };
        ok(json!({"news": news, "next_page_token": null}))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let keys = [("APCA_API_KEY_ID", ALPACA_KEY), ("APCA_API_SECRET_KEY", ALPACA_SECRET)];
    let s = fetch(&args(Source::Alpaca, &mock, &out, &keys, &["AAPL"], "2024-02-14")).unwrap();
    assert_eq!(s.added.new, 1, "{s}");
    assert_eq!(rows_of(&out.join("headlines.parquet"))[0].1, us("2024-02-14T20:00:00Z"), "stamped at created_at");
}

#[test]
fn retry_after_as_a_date_rate_limit_reset_and_gzip_answers() {
    use std::io::Write;
    let n = Arc::new(AtomicUsize::new(0));
    let mock = Mock(mock::serve(move |raw, _, _| {
        let k = n.fetch_add(1, Ordering::SeqCst);
        let later = |s: i64| chrono::Utc::now() + chrono::Duration::seconds(s);
        match k {
            // RFC 9110's IMF-fixdate, e.g. "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT".
            0 => mock::Reply::Full(
                429,
                vec![("Retry-After".into(), later(3).format("%a, %d %b %Y %H:%M:%S GMT").to_string())],
                b"{}".to_vec(),
            ),
            // Alpaca's market-data docs: X-RateLimit-Reset is the Unix time the quota resets (as we
            // read them; no example answer is copied here).
            1 => mock::Reply::Full(
                429,
                vec![("X-RateLimit-Reset".into(), later(3).timestamp().to_string())],
                b"{}".to_vec(),
            ),
            _ => {
                assert_eq!(raw.headers.get("accept-encoding").map(String::as_str), Some("gzip"), "SEC asks for gzip");
                let body = json!({"news": [alpaca_article(9, "2024-01-10T14:00:00Z", "2024-01-10T14:00:00Z", &["AAPL"], "gz")],
                                  "next_page_token": null});
                let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(body.to_string().as_bytes()).unwrap();
                let headers = vec![
                    ("Content-Encoding".into(), "gzip".into()),
                    ("Content-Type".into(), "application/json".into()),
                ];
                mock::Reply::Full(200, headers, z.finish().unwrap())
            }
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let keys = [("APCA_API_KEY_ID", ALPACA_KEY), ("APCA_API_SECRET_KEY", ALPACA_SECRET)];
    let t0 = Instant::now();
    let s = fetch(&args(Source::Alpaca, &mock, dir.path(), &keys, &["AAPL"], "2024-02-14")).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(3500), "both waits were honoured: {:?}", t0.elapsed());
    assert_eq!(s.added.new, 1, "the gzip answer was read: {s}");
}

/// Throughput on loopback: 200 tickers × 5 pages × 50 articles (50,000 rows over two months).
/// `cargo test --release --test news -- --ignored --nocapture throughput`
#[test]
#[ignore]
fn throughput() {
    let mock = serve("/none", |req, _| {
        let sym = req.query.get("symbols").cloned().unwrap_or_default();
        let page: usize = req.query.get("page_token").map_or(0, |t| t.parse().unwrap());
        let news: Vec<Value> = (0..50)
            .map(|k| {
                let i = page * 50 + k;
                let t = us("2024-01-01T00:00:00Z") + (i as i64) * 4_000_000_000 + sym.len() as i64;
                let ts = chrono::DateTime::from_timestamp_micros(t).unwrap().to_rfc3339();
                alpaca_article(
                    (sym[1..].parse::<i64>().unwrap()) * 1000 + i as i64,
                    &ts,
                    &ts,
                    &[&sym],
                    &format!("{sym} story {i}"),
                )
            })
            .collect();
        let next = (page < 4).then(|| (page + 1).to_string());
        ok(json!({"news": news, "next_page_token": next}))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("news");
    let tickers: Vec<String> = (0..200).map(|i| format!("T{i:03}")).collect();
    let refs: Vec<&str> = tickers.iter().map(String::as_str).collect();
    let mut a = args(
        Source::Alpaca,
        &mock,
        &out,
        &[("APCA_API_KEY_ID", "k1234"), ("APCA_API_SECRET_KEY", "s1234")],
        &refs,
        "2024-03-31",
    );
    a.rate_per_minute = Some(1e9);
    let t0 = Instant::now();
    let s = fetch(&a).unwrap();
    let first = t0.elapsed();
    let t1 = Instant::now();
    let again = fetch(&a).unwrap();
    println!(
        "first fetch: {first:?} ({} requests, {} rows); repeat: {:?}\n{s}\n{again}",
        s.requests,
        s.combined_rows,
        t1.elapsed()
    );
    assert_eq!(s.combined_rows, 50_000);
}

// ---------------------------------------------------------------------------------------------
// `tickers map`: OpenFIGI's mapping API (and SEC's company_tickers.json) on a loopback mock
// ---------------------------------------------------------------------------------------------

/// One instrument as OpenFIGI's API documentation (openfigi.com/api/documentation, "Response
/// Format") lists its fields: figi, securityType, marketSector, ticker, name, exchCode,
/// shareClassFIGI, compositeFIGI, securityType2, securityDescription. The documented example
/// record is IBM's: `{"figi":"BBG000BLNNH6","securityType":"Common Stock","marketSector":"Equity",
/// "ticker":"IBM","name":"INTL BUSINESS MACHINES CORP","exchCode":"US","shareClassFIGI":
/// "BBG001S5S399","compositeFIGI":"BBG000BLNNH6","securityType2":"Common Stock",
/// "securityDescription":"IBM"}`; the other records follow its shape (FIGIs of the S## symbols
/// are made up).
fn figi_record(ticker: &str, name: &str, composite: &str) -> Value {
    json!({
        "figi": composite, "securityType": "Common Stock", "marketSector": "Equity", "ticker": ticker,
        "name": name, "exchCode": "US", "shareClassFIGI": "BBG001S5S399", "compositeFIGI": composite,
        "securityType2": "Common Stock", "securityDescription": ticker,
    })
}

/// What the mock OpenFIGI knows, by (idValue, exchCode US).
fn figi_known(id: &str) -> Option<Value> {
    let r = match id {
        "IBM" => figi_record("IBM", "INTL BUSINESS MACHINES CORP", "BBG000BLNNH6"),
        "AAPL" => figi_record("AAPL", "APPLE INC", "BBG000B9XRY4"),
        "MSFT" => figi_record("MSFT", "MICROSOFT CORP", "BBG000BPH459"),
        "BRK/B" => figi_record("BRK/B", "BERKSHIRE HATHAWAY INC-CL B", "BBG000DWG505"),
        // Known to OpenFIGI, but its composite FIGI is not in the universe.
        "OLD" => figi_record("OLD", "OLD CO", "BBG000OLD000"),
        s if s.starts_with('S') && s.len() == 3 => {
            figi_record(s, &format!("{s} INC"), &format!("BBGTEST000{}", &s[1..]))
        }
        _ => return None,
    };
    Some(r)
}

/// A mock OpenFIGI: POST /v3/mapping answers each job in order with `{"data":[...]}` or the
/// documented `{"warning":"No identifier found."}`; the first request of all is a 429 with
/// `Retry-After: 1` when `throttle_first`. SEC's company_tickers.json is served too, in the form
/// SEC publishes it (`{"0":{"cik_str":320193,"ticker":"AAPL","title":"Apple Inc."},...}`).
fn figi_mock(throttle_first: bool) -> mock::Mock {
    mock::serve(move |req, i, _| {
        if req.path == "/files/company_tickers.json" {
            if !req.headers.get("user-agent").is_some_and(|u| u.contains('@')) {
                return mock::Reply::Text(403, "undeclared tool".into());
            }
            return mock::ok(json!({
                "0": {"cik_str": 320193, "ticker": "AAPL", "title": "Apple Inc."},
                "1": {"cik_str": 1067983, "ticker": "BRK-B", "title": "BERKSHIRE HATHAWAY INC"},
            }));
        }
        if req.method != "POST" || req.path != "/v3/mapping" {
            return mock::Reply::Text(404, "not found".into());
        }
        if throttle_first && i == 0 {
            return mock::Reply::Full(429, vec![("Retry-After".into(), "1".into())], b"Too Many Requests".to_vec());
        }
        let jobs = req.json();
        let Some(jobs) = jobs.as_array() else {
            return mock::Reply::Text(400, r#"{"error":"Request body must be a JSON array."}"#.into());
        };
        let limit = if req.headers.contains_key("x-openfigi-apikey") { 100 } else { 10 };
        if jobs.len() > limit {
            return mock::Reply::Text(413, format!("Too many mapping jobs in the request (max {limit})"));
        }
        let answers: Vec<Value> = jobs
            .iter()
            .map(|j| {
                assert_eq!(j["idType"], "TICKER");
                assert_eq!(j["exchCode"], "US");
                match figi_known(j["idValue"].as_str().unwrap_or("")) {
                    Some(r) => json!({"data": [r]}),
                    None => json!({"warning": "No identifier found."}),
                }
            })
            .collect();
        mock::ok(Value::Array(answers))
    })
}

/// Numerai's live universe as v2.1 keys it: numerai_ticker and composite_figi.
fn figi_universe(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("numerai_ticker,composite_figi\nAAPL US,BBG000B9XRY4\nMSFT US,BBG000BPH459\n");
    text.push_str("IBM US,BBG000BLNNH6\nBRK/B US,BBG000DWG505\nVOD LN,BBG000BDH5H7\n");
    for i in 1..=9 {
        text.push_str(&format!("S0{i} US,BBGTEST0000{i}\n"));
    }
    write(dir, "live.csv", &text)
}

fn map_cli(mock: &mock::Mock, universe: &Path, out: &Path, tickers: &str, home: &Path) -> Cli {
    signalkit(["tickers", "map", "--tickers", tickers, "--rate", "6000", "--base-url", &mock.url])
        .arg("--universe")
        .arg(universe)
        .arg("--out")
        .arg(out)
        .env("HOME", home)
        .env_remove("OPENFIGI_API_KEY")
        .env_remove("SEC_USER_AGENT")
}

fn mapping_jobs(mock: &mock::Mock) -> Vec<Vec<String>> {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/v3/mapping")
        .map(|r| r.json().as_array().unwrap().iter().map(|j| j["idValue"].as_str().unwrap().to_string()).collect())
        .collect()
}

#[test]
fn tickers_map_batches_keyless_retries_a_429_lists_the_unmapped_and_reuses_its_cache() {
    let mock = figi_mock(true);
    let dir = tempfile::tempdir().unwrap();
    let universe = figi_universe(dir.path());
    let out = dir.path().join("map.csv");
    let tickers = "AAPL,MSFT,IBM,BRK.B,S01,S02,S03,S04,S05,S06,S07,S08,ZZZZ,OLD";
    let o = map_cli(&mock, &universe, &out, tickers, dir.path()).run();
    let text = o.text();
    assert!(o.status.success(), "{text}");
    // The 429 was retried; 14 symbols keyless are two requests of at most 10 jobs.
    let jobs = mapping_jobs(&mock);
    assert_eq!(jobs.len(), 3, "a 429, then two batches: {jobs:?}");
    assert_eq!(jobs[1].len(), 10);
    assert_eq!(jobs[2].len(), 4);
    assert!(jobs[1].contains(&"BRK/B".to_string()), "share classes go in OpenFIGI's spelling: {jobs:?}");
    assert!(text.contains("1 retried"), "{text}");
    let map = std::fs::read_to_string(&out).unwrap();
    let mut lines = map.lines();
    assert_eq!(lines.next(), Some("ticker,numerai_ticker,composite_figi,exch_code,name,cik"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 12, "{map}");
    assert!(rows.contains(&"BRK.B,BRK/B US,BBG000DWG505,US,BERKSHIRE HATHAWAY INC-CL B,"), "{map}");
    assert!(rows.contains(&"IBM,IBM US,BBG000BLNNH6,US,INTL BUSINESS MACHINES CORP,"), "{map}");
    // Every symbol not mapped is listed, with why, in the summary and beside the map.
    let unmapped = std::fs::read_to_string(dir.path().join("map.unmapped.csv")).unwrap();
    assert!(unmapped.starts_with("ticker,exch_code,why\n"), "{unmapped}");
    assert!(unmapped.contains("ZZZZ,US,OpenFIGI: No identifier found."), "{unmapped}");
    assert!(
        unmapped.contains("OLD,US,\"OpenFIGI gives OLD US (composite FIGI BBG000OLD000), not in the universe\""),
        "{unmapped}"
    );
    assert!(text.contains("unmapped: 2") && text.contains("ZZZZ: OpenFIGI: No identifier found."), "{text}");
    assert!(text.contains("universe keys no symbol maps to: 2"), "S09 and VOD LN: {text}");

    // A rerun with one new symbol asks OpenFIGI for that symbol only.
    let before = mapping_jobs(&mock).len();
    let o = map_cli(&mock, &universe, &out, &format!("{tickers},S09"), dir.path()).run();
    assert!(o.status.success(), "{}", o.text());
    let jobs = mapping_jobs(&mock);
    assert_eq!(jobs[before..].to_vec(), vec![vec!["S09".to_string()]], "only the new symbol is asked");
    assert!(o.text().contains("14 answered from the cache"), "{}", o.text());
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 14);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[test]
fn tickers_map_with_a_key_sends_it_in_the_header_in_batches_of_100_and_never_prints_it() {
    let mock = figi_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let universe = figi_universe(dir.path());
    let out = dir.path().join("map.csv");
    let key = "figi-test-key-0123";
    let o = map_cli(&mock, &universe, &out, "AAPL,MSFT,IBM,BRK.B,S01,S02,S03,S04,S05,S06,S07,S08", dir.path())
        .env("OPENFIGI_API_KEY", key)
        .run();
    assert!(o.status.success(), "{}", o.text());
    assert!(!o.text().contains(key), "the key leaked");
    let reqs: Vec<mock::Req> = mock.requests().into_iter().filter(|r| r.path == "/v3/mapping").collect();
    assert_eq!(reqs.len(), 1, "12 jobs fit one keyed request");
    assert_eq!(reqs[0].headers.get("x-openfigi-apikey").map(String::as_str), Some(key));
    assert!(!std::fs::read_to_string(dir.path().join("map.openfigi.json")).unwrap().contains(key));
}

#[test]
fn tickers_map_output_feeds_news_fetch_join_and_ask_names() {
    let figi = figi_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let universe = figi_universe(dir.path());
    let map = dir.path().join("map.csv");
    let o = map_cli(&figi, &universe, &map, "AAPL,MSFT,BRK.B", dir.path())
        .arg("--sec")
        .env("SEC_USER_AGENT", "Jane Doe jane@example.com")
        .run();
    assert!(o.status.success(), "{}", o.text());
    let text = std::fs::read_to_string(&map).unwrap();
    // --sec adds SEC's CIK and title (SEC spells the class BRK-B).
    assert!(text.contains("AAPL,AAPL US,BBG000B9XRY4,US,Apple Inc.,320193"), "{text}");
    assert!(text.contains("BRK.B,BRK/B US,BBG000DWG505,US,BERKSHIRE HATHAWAY INC,1067983"), "{text}");
    // The map is what --ticker-map reads: BRK.B reaches "BRK/B US", which the suffix rule misses.
    let uni: HashMap<&str, u32> = [("AAPL US", 0), ("BRK/B US", 1)].into_iter().collect();
    let rule = TickerRule::from_map_file(&map).unwrap();
    assert_eq!(rule.resolve("brk.b", &uni), Some(1));
    assert_eq!(TickerRule::default().resolve("BRK.B", &uni), None);
    let names = signalkit::ask::names::Names::read(&map).unwrap();
    assert_eq!(names.get("aapl"), Some("Apple Inc."));
    assert_eq!(names.get("MSFT"), Some("MICROSOFT CORP"));

    let alpaca = alpaca_mock(false);
    let news = dir.path().join("news");
    let run = |args: &[&str]| {
        let o = signalkit(args)
            .env("APCA_API_KEY_ID", ALPACA_KEY)
            .env("APCA_API_SECRET_KEY", ALPACA_SECRET)
            .env("HOME", dir.path())
            .env_remove("SIGNALKIT_NEWS_BASE_URL")
            .run();
        assert!(o.status.success(), "{args:?} failed:\n{}", o.text());
        o.text()
    };
    let (news_s, map_s) = (news.to_str().unwrap(), map.to_str().unwrap());
    let text = run(&[
        "news",
        "fetch",
        "--source",
        "alpaca",
        "--tickers",
        "AAPL,MSFT",
        "--from",
        "2024-01-01",
        "--to",
        "2024-02-14",
        "--out",
        news_s,
        "--ticker-map",
        map_s,
        "--base-url",
        &alpaca.url,
        "--rate",
        "6000",
        "--quiet",
    ]);
    assert!(text.contains("5 new"), "{text}");
    let targets = write(
        dir.path(),
        "targets.csv",
        "numerai_ticker,friday_date,target\nAAPL US,20240112,0.5\nMSFT US,20240216,0.75\n",
    );
    let rows = dir.path().join("rows.parquet");
    let headlines = news.join("headlines.parquet");
    run(&[
        "join",
        "--targets",
        targets.to_str().unwrap(),
        "--headlines",
        headlines.to_str().unwrap(),
        "--ticker-map",
        map_s,
        "--out",
        rows.to_str().unwrap(),
    ]);
    let df = read_parquet(&rows);
    let h = strs(&df, "headline");
    let t = strs(&df, "numerai_ticker");
    let by: HashMap<String, Option<String>> = t.into_iter().map(Option::unwrap).zip(h).collect();
    assert_eq!(by["AAPL US"].as_deref(), Some("Apple opens a store"));
    assert_eq!(by["MSFT US"].as_deref(), Some("Apple and Microsoft in talks"));
}

#[test]
fn tickers_map_refuses_a_universe_without_keys_naming_the_file_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "universe.csv", "symbol,date\nAAPL,2024-01-05\n");
    let o = signalkit(["tickers", "map", "--base-url", "http://127.0.0.1:9", "--tickers", "AAPL"])
        .arg("--universe")
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("map.csv"))
        .run();
    assert!(!o.status.success());
    let text = o.text();
    assert!(
        text.contains("universe.csv") && text.contains("numerai_ticker") && text.contains("symbol, date"),
        "{text}"
    );
}

#[test]
fn tickers_map_of_a_universe_keyed_by_composite_figi_alone_maps_to_the_figi() {
    let mock = figi_mock(false);
    let dir = tempfile::tempdir().unwrap();
    let universe = write(dir.path(), "figis.csv", "composite_figi\nBBG000B9XRY4\nBBG000BLNNH6\n");
    let out = dir.path().join("figi-map.csv");
    let o = map_cli(&mock, &universe, &out, "AAPL,IBM,MSFT", dir.path()).run();
    assert!(o.status.success(), "{}", o.text());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text,
        "ticker,composite_figi,exch_code,name,cik\nAAPL,BBG000B9XRY4,US,APPLE INC,\nIBM,BBG000BLNNH6,US,INTL BUSINESS MACHINES CORP,\n"
    );
    assert!(o.text().contains("MSFT: OpenFIGI gives MSFT US (composite FIGI BBG000BPH459), not in the universe"));
    let uni: HashMap<&str, u32> = [("BBG000B9XRY4", 7)].into_iter().collect();
    assert_eq!(TickerRule::from_map_file(&out).unwrap().resolve("aapl", &uni), Some(7));
}

#[test]
fn tickers_map_sec_404_is_not_retried_and_its_403_throttle_is_waited_out() {
    use signalkit::news::figi::{MapArgs, map_tickers};
    // SEC's company_tickers.json behind a proxy: first a 404 (a wrong proxy path: asking again
    // cannot help), then SEC's throttle page ("Request Rate Threshold Exceeded", SEC "Accessing
    // EDGAR Data") twice, without Retry-After, before the file.
    let refusals = Arc::new(AtomicUsize::new(0));
    let (missing, seen) = (Arc::new(std::sync::atomic::AtomicBool::new(true)), refusals.clone());
    let gone = missing.clone();
    let figi = figi_mock(false);
    let target = figi.url.clone();
    let sec = mock::serve(move |req, _, _| {
        if req.path == "/files/company_tickers.json" {
            if gone.load(Ordering::SeqCst) {
                return mock::Reply::Text(404, "<html>Not Found</html>".into());
            }
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                return mock::Reply::Text(403, "<html><h1>Request Rate Threshold Exceeded</h1></html>".into());
            }
        }
        let client = reqwest::blocking::Client::new();
        let r = client
            .request(reqwest::Method::from_bytes(req.method.as_bytes()).unwrap(), format!("{target}{}", req.path))
            .header("User-Agent", req.headers.get("user-agent").cloned().unwrap_or_default())
            .header("Content-Type", "application/json")
            .body(req.body.clone())
            .send()
            .unwrap();
        mock::Reply::Text(r.status().as_u16(), r.text().unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let args = MapArgs {
        universe: figi_universe(dir.path()),
        out: dir.path().join("map.csv"),
        tickers: Some(vec!["AAPL".into()]),
        exch_code: "US".into(),
        keys: Keys::from_pairs(&[("SEC_USER_AGENT", "Jane Doe jane@example.com")]),
        base_url: Some(sec.url.clone()),
        rate_per_minute: Some(6000.0),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        },
        sec: true,
    };
    let asked = |m: &mock::Mock| m.requests().iter().filter(|r| r.path == "/files/company_tickers.json").count();
    let e = map_tickers(&args).unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("company_tickers.json"), "{e}");
    assert_eq!(asked(&sec), 1, "a 404 is not asked again: {e}");
    missing.store(false, Ordering::SeqCst);
    let t0 = Instant::now();
    let s = map_tickers(&args).unwrap();
    assert_eq!(asked(&sec), 4, "two throttled answers, then the file: {s}");
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "each throttle waited the longest wait allowed: {:?}",
        t0.elapsed()
    );
    let map = std::fs::read_to_string(dir.path().join("map.csv")).unwrap();
    assert!(map.contains("AAPL,AAPL US,BBG000B9XRY4,US,Apple Inc.,320193"), "{map}");
}

/// A reverse proxy serving `inner` under `/gw` (as `--base-url http://proxy/gw` would reach a
/// vendor): strips the prefix, forwards method, headers and body, and answers 404 outside it.
fn prefix_proxy(inner: String) -> mock::Mock {
    mock::serve(move |req, _, _| {
        let Some(rest) = req.path.strip_prefix("/gw/") else {
            return mock::Reply::Text(404, "outside the proxy's prefix".into());
        };
        let client = reqwest::blocking::Client::new();
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut r = client.request(method, format!("{inner}/{rest}"));
        for (k, v) in &req.headers {
            if !matches!(k.as_str(), "host" | "content-length" | "connection" | "accept-encoding") {
                r = r.header(k, v);
            }
        }
        let resp = r.body(req.body.clone()).send().unwrap();
        let status = resp.status().as_u16();
        let keep: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| *k == "retry-after" || *k == "content-type")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        mock::Reply::Full(status, keep, resp.bytes().unwrap().to_vec())
    })
}

/// A source, its mock, its keys and the last day to fetch.
type Case<'a> = (Source, &'a Mock, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_source_fetches_every_page_behind_a_proxy_under_a_path() {
    // Polygon's cursor URLs behind a path: a_cursor_url_keeps_the_base_urls_path_prefix and the
    // run test. Here the other four, each with more than one page, direct and behind `/gw`.
    let finnhub = serve("/none", |req, _| {
        let from = day(&req.query["from"]);
        let v: Vec<Value> = [(201, "2024-01-03T13:00:00Z"), (202, "2024-01-20T08:00:00Z")]
            .iter()
            .filter(|(_, t)| (from..from + chrono::Duration::days(7)).contains(&day(&t[..10])))
            .map(|(id, t)| json!({"category": "company", "datetime": us(t) / 1_000_000, "headline": format!("story {id}"),
                "id": id, "image": "", "related": "AAPL", "source": "Reuters", "summary": "", "url": format!("https://example.com/{id}")}))
            .collect();
        ok(Value::Array(v))
    });
    let tiingo = serve("/none", |req, _| {
        let (off, lim): (usize, usize) = (req.query["offset"].parse().unwrap(), req.query["limit"].parse().unwrap());
        let f = |i: usize| {
            chrono::DateTime::from_timestamp_micros(us("2024-01-01T12:00:00Z") + i as i64 * 1_800_000_000)
                .unwrap()
                .to_rfc3339()
        };
        let arts: Vec<Value> = (off..(off + lim).min(1500))
            .map(|i| json!({"id": 9000 + i, "title": format!("t{i}"), "url": format!("https://example.com/t{i}"),
                "description": "", "publishedDate": f(i), "crawlDate": f(i), "source": "example.com", "tags": [], "tickers": ["aapl"]}))
            .collect();
        ok(Value::Array(arts))
    });
    let (sec, alpaca) = (sec_mock(), alpaca_mock(false));
    let cases: [Case; 4] = [
        (Source::Sec, &sec, &[("SEC_USER_AGENT", "Jane Doe jane@example.com")], "2024-02-14"),
        (
            Source::Alpaca,
            &alpaca,
            &[("APCA_API_KEY_ID", ALPACA_KEY), ("APCA_API_SECRET_KEY", ALPACA_SECRET)],
            "2024-02-14",
        ),
        (Source::Finnhub, &finnhub, &[("FINNHUB_API_KEY", "fhKEY123")], "2024-01-31"),
        (Source::Tiingo, &tiingo, &[("TIINGO_API_KEY", "tiKEY789")], "2024-02-14"),
    ];
    for (source, inner, keys, to) in cases {
        let dir = tempfile::tempdir().unwrap();
        let direct = args(source, inner, &dir.path().join("direct"), keys, &["AAPL"], to);
        fetch(&direct).unwrap();
        let want = rows_of(&dir.path().join("direct/headlines.parquet"));
        let pages = inner.requests().len();
        let proxy = prefix_proxy(inner.url.clone());
        let mut behind = direct.clone();
        behind.out = dir.path().join("behind");
        behind.base_url = Some(format!("{}/gw/", proxy.url));
        let s = fetch(&behind).unwrap();
        let got = rows_of(&dir.path().join("behind/headlines.parquet"));
        assert!(
            want.len() >= 2 && pages >= 2,
            "{}: the direct fetch reads several pages ({pages} requests)",
            source.name()
        );
        assert_eq!(got, want, "{}: every page behind the proxy: {s}", source.name());
        let outside: Vec<String> =
            proxy.requests().iter().filter(|r| !r.path.starts_with("/gw/")).map(|r| r.path.clone()).collect();
        assert!(outside.is_empty(), "{}: requests left the proxy's path: {outside:?}", source.name());
    }
}
