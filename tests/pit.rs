//! The point-in-time rule: no headline at or after the cutoff, none older than the window.

mod common;

use common::*;
use proptest::prelude::*;
use signalkit::data::headlines::HeadlineOptions;
use signalkit::data::tickers::TickerRule;
use signalkit::data::time::US_PER_DAY;
use signalkit::pit::{HeadlineIndex, JoinArgs, Window, join_files};

/// One ticker per edge case; the row is Friday 2024-03-01 (cutoff 00:00 UTC by default).
const TARGETS: &str = "bloomberg_ticker,friday_date,data_type,target_20d_factor_neutral
AT US,20240301,train,0.5
MICRO US,20240301,train,0.25
DAYFRI US,20240301,train,0.75
DAYTHU US,20240301,train,1
EDGE US,20240301,train,0
PAST US,20240301,train,0.5
LATE US,20240301,validation,
";

const HEADLINES: &str = "ticker,published_at,headline
AT,2024-03-01T00:00:00Z,exactly at the cutoff
MICRO,2024-02-29T23:59:59.999999Z,one microsecond before
MICRO,2024-02-20T10:00:00Z,older micro story
DAYFRI,2024-03-01,dated the Friday itself
DAYTHU,2024-02-29,dated the day before
EDGE,2024-01-31T00:00:00Z,exactly at the far edge
PAST,2024-01-30T23:59:59.999999Z,one microsecond too old
LATE,2024-03-01T20:59:59Z,before the US close
LATE,2024-03-01T21:00:00Z,at the US close
";

fn run(dir: &std::path::Path, cutoff_hours: f64) -> polars::prelude::DataFrame {
    let out = dir.join(format!("rows-{cutoff_hours}.parquet"));
    let args = JoinArgs {
        targets: write(dir, "targets.csv", TARGETS),
        headlines: write(dir, "headlines.csv", HEADLINES),
        out: out.clone(),
        window: Window { days: 30, cutoff_hours },
        tickers: TickerRule::default(),
        ticker_map: None,
        headline_options: HeadlineOptions::default(),
    };
    let s = join_files(&args).unwrap();
    assert_eq!(s.rows, 7);
    read_parquet(&out)
}

#[test]
fn edges_at_midnight_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let df = run(dir.path(), 0.0);
    let got = strs(&df, "headline");
    let want = [
        None,                            // at the cutoff: never visible
        Some("one microsecond before"),  // 1 µs before: visible, and the latest
        None,                            // day-only on the Friday: only for later Fridays
        Some("dated the day before"),    // day-only Thursday: visible
        Some("exactly at the far edge"), // cutoff − 30 days exactly: inside the window
        None,                            // 1 µs older than the window
        None,                            // Friday afternoon: after a midnight cutoff
    ];
    assert_eq!(got, want.iter().map(|s| s.map(str::to_string)).collect::<Vec<_>>());
    let n7: Vec<Option<u32>> = df.column("n_headlines_7d").unwrap().u32().unwrap().iter().collect();
    let n30: Vec<Option<u32>> = df.column("n_headlines_30d").unwrap().u32().unwrap().iter().collect();
    assert_eq!(n7, [0, 1, 0, 1, 0, 0, 0].map(Some));
    assert_eq!(n30, [0, 2, 0, 1, 1, 0, 0].map(Some));
    let age: Vec<Option<f64>> = df.column("headline_age_days").unwrap().f64().unwrap().iter().collect();
    assert!((age[1].unwrap() - 1e-6 / 86_400.0).abs() < 1e-12, "{:?}", age[1]);
    assert!((age[4].unwrap() - 30.0).abs() < 1e-12);
    assert_eq!(age[0], None);
    // The rows' own columns come through as given, in order.
    let tickers = strs(&df, "bloomberg_ticker");
    assert_eq!(tickers[0].as_deref(), Some("AT US"));
    assert_eq!(tickers[6].as_deref(), Some("LATE US"));
    assert_eq!(df.column("target_20d_factor_neutral").unwrap().null_count(), 1);
}

#[test]
fn edges_at_us_close_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let df = run(dir.path(), 21.0);
    let got = strs(&df, "headline");
    assert_eq!(got[0].as_deref(), Some("exactly at the cutoff")); // Friday 00:00 < Friday 21:00
    assert_eq!(got[2], None, "a day-only Friday date may be after 21:00: not visible");
    assert_eq!(got[3].as_deref(), Some("dated the day before"));
    assert_eq!(got[6].as_deref(), Some("before the US close"), "21:00:00 itself is at the cutoff");
    assert_eq!(got[4], None, "the far edge moved with the cutoff");
}

const DAY: i64 = US_PER_DAY;

/// Brute force: every headline checked against the rule.
fn oracle(ts: &[(u32, i64)], ticker: u32, cutoff: i64, window: i64) -> (Option<u32>, u32, u32) {
    let vis: Vec<usize> =
        (0..ts.len()).filter(|&i| ts[i].0 == ticker && ts[i].1 < cutoff && ts[i].1 >= cutoff - window).collect();
    let latest = vis.iter().copied().max_by_key(|&i| (ts[i].1, i)).map(|i| i as u32);
    let count = |d: i64| vis.iter().filter(|&&i| ts[i].1 >= cutoff - (d * DAY).min(window)).count() as u32;
    (latest, count(7), count(30))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn visible_headlines_obey_the_rule(
        // Instants cluster on whole days ±1 µs around the cutoff so edges are hit often.
        heads in prop::collection::vec((0u32..3, -70i64..10, -1i64..=1, 0i64..3), 0..60),
        ticker in 0u32..3,
        window_days in 1i64..45,
        cutoff_shift in -2i64..=2,
    ) {
        let cutoff = 19_783 * DAY + cutoff_shift;
        let ts: Vec<(u32, i64)> = heads.iter().map(|&(t, d, e, h)| (t, cutoff + d * DAY + e + h * 3_600_000_000 * (d % 2))).collect();
        let ids: Vec<Option<u32>> = ts.iter().map(|t| Some(t.0)).collect();
        let times: Vec<i64> = ts.iter().map(|t| t.1).collect();
        let index = HeadlineIndex::build(3, &ids, &times, |_, _| false);
        let window = window_days * DAY;
        let v = index.lookup(ticker, cutoff, window);
        let (latest, n7, n30) = oracle(&ts, ticker, cutoff, window);
        prop_assert_eq!(v.latest, latest);
        prop_assert_eq!((v.n_7d, v.n_30d), (n7, n30));
        if let Some(i) = v.latest {
            let t = times[i as usize];
            prop_assert!(t < cutoff && t >= cutoff - window);
            prop_assert_eq!(v.latest_us, Some(t));
        }
    }
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let heads = "ticker,published_at,headline
AAA,2024-02-28T10:00:00Z,Same story
AAA,2024-02-28T10:00:00Z,Same story
AAA,2024-02-28T05:00:00-05:00,Same story
AAA,2024-02-28T10:00:00Z,Another story at the same minute
AAA,2024-02-27T10:00:00Z,Same story
ZZZ,2024-02-27T10:00:00Z,Not in the universe
AAA,2023-01-01T10:00:00Z,Far too old
";
    let args = JoinArgs {
        targets: write(dir.path(), "t.csv", "bloomberg_ticker,friday_date\nAAA US,20240301\n"),
        headlines: write(dir.path(), "h.csv", heads),
        out: dir.path().join("o.parquet"),
        window: Window::default(),
        tickers: TickerRule::default(),
        ticker_map: None,
        headline_options: HeadlineOptions::default(),
    };
    let s = join_files(&args).unwrap();
    assert_eq!((s.headlines, s.duplicates, s.unknown_ticker, s.outside_windows), (7, 2, 1, 1));
    let df = read_parquet(&args.out);
    assert_eq!(df.column("n_headlines_7d").unwrap().u32().unwrap().get(0), Some(3));
    assert!(s.to_string().contains("2 duplicates dropped"), "{s}");
}

/// A day-only date means "some time on D in the feed's zone": for a New York feed, Thursday's
/// news may be from Thursday evening New York time, already Friday in UTC, so a Friday row at
/// cutoff 00:00 UTC must not see it — exactly as the same story with its time stamp is hidden.
#[test]
fn day_only_dates_end_in_the_feeds_zone() {
    let dir = tempfile::tempdir().unwrap();
    let targets = "bloomberg_ticker,friday_date,data_type,target_20d_factor_neutral\nNYD US,20240301,train,0.5\nNYT US,20240301,train,0.5\nNYD US,20240308,train,0.5\n";
    let headlines = "ticker,published_at,headline\nNYD,2024-02-29,dated Thursday in New York\nNYT,2024-02-29 20:00:00,stamped Thursday 20:00 New York\n";
    let join = |zone: Option<&str>, name: &str| {
        let out = dir.path().join(name);
        let args = JoinArgs {
            targets: write(dir.path(), "targets.csv", targets),
            headlines: write(dir.path(), "headlines.csv", headlines),
            out: out.clone(),
            window: Window { days: 30, cutoff_hours: 0.0 },
            tickers: TickerRule::default(),
            ticker_map: None,
            headline_options: HeadlineOptions { zone: zone.map(|z| z.parse().unwrap()), ..Default::default() },
        };
        join_files(&args).unwrap();
        strs(&read_parquet(&out), "headline")
    };
    let ny = join(Some("America/New_York"), "ny.parquet");
    assert_eq!(ny[0], None, "Thursday-dated New York news reached Friday's 00:00 UTC row");
    assert_eq!(ny[1], None, "the time-stamped twin is hidden too");
    assert_eq!(ny[2].as_deref(), Some("dated Thursday in New York"), "visible a week later");
    // A cutoff at Friday 05:00 UTC is after Thursday ends in New York (EST, UTC−5).
    let late = |hours: f64, name: &str| {
        let out = dir.path().join(name);
        let args = JoinArgs {
            targets: write(dir.path(), "targets.csv", targets),
            headlines: write(dir.path(), "headlines.csv", headlines),
            out: out.clone(),
            window: Window { days: 30, cutoff_hours: hours },
            tickers: TickerRule::default(),
            ticker_map: None,
            headline_options: HeadlineOptions { zone: Some("America/New_York".parse().unwrap()), ..Default::default() },
        };
        join_files(&args).unwrap();
        strs(&read_parquet(&out), "headline")[0].clone()
    };
    assert_eq!(late(4.99, "a.parquet"), None);
    assert_eq!(late(5.0, "b.parquet").as_deref(), Some("dated Thursday in New York"));
}
