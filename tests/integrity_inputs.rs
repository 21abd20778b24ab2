//! Bad inputs give one clear error (file, row or line, fix) or a loud warning, never a silent
//! wrong result: duplicate keys, a one-to-two ticker map, dates off Friday, broken CSV.

mod common;

use std::path::Path;

use chrono::NaiveDate;
use common::*;
use polars::prelude::*;
use signalkit::data::targets::Targets;
use signalkit::data::tickers::TickerRule;
use signalkit::evaluate::{EvaluateArgs, evaluate};

fn err_of<T: std::fmt::Debug>(r: signalkit::Result<T>) -> String {
    r.expect_err("should fail").to_string()
}

fn join_cli(dir: &Path, targets: &Path, extra: &[&str]) -> Run {
    let h = write(dir, "h.csv", "ticker,published_at,headline\nAAPL,2024-02-28T10:00:00Z,Apple news\n");
    join_cli_with(dir, targets, &h, extra)
}

fn join_cli_with(dir: &Path, targets: &Path, h: &Path, extra: &[&str]) -> Run {
    let out = dir.join("rows.parquet");
    let mut args = vec!["join", "--targets", targets.to_str().unwrap(), "--headlines", h.to_str().unwrap()];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    signalkit(&args).run()
}

/// Finding 1: a (ticker, date) twice is refused, naming the file, both rows, the key and the fix.
#[test]
fn duplicate_ticker_date_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Data rows 1 and 3 (lines 2 and 4) share the key; the case of the ticker does not matter.
    let csv = write(
        d,
        "dup.csv",
        "bloomberg_ticker,friday_date,target_20d\nAAPL US,20240301,0.5\nMSFT US,20240301,0.25\naapl us,20240301,1.0\n",
    );
    let e = err_of(Targets::read(&csv));
    assert!(e.contains("dup.csv") && e.contains("duplicate key"), "{e}");
    assert!(e.contains("rows 1 and 3") && e.contains("lines 2 and 4"), "{e}");
    assert!(e.contains("'AAPL US'") && e.contains("2024-03-01") && e.contains("de-duplicate"), "{e}");

    // Parquet with a date column: data rows, no lines.
    let dates = DateChunked::from_naive_date(
        "date".into(),
        [1, 8, 8].map(|day| NaiveDate::from_ymd_opt(2024, 3, day).unwrap()),
    );
    let df = DataFrame::new_infer_height(vec![
        Column::new("numerai_ticker".into(), ["A US", "A US", "A US"]),
        dates.into_column(),
    ])
    .unwrap();
    let e = err_of(Targets::read(&write_parquet(d, "dup.parquet", df)));
    assert!(e.contains("dup.parquet") && e.contains("rows 2 and 3") && e.contains("2024-03-08"), "{e}");
    assert!(!e.contains("lines"), "a parquet file has no lines: {e}");

    // The same key on different dates or tickers is fine.
    let ok = write(d, "ok.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\nAAPL US,20240308\nMSFT US,20240301\n");
    assert_eq!(Targets::read(&ok).unwrap().len(), 3);

    // join (the binary) refuses, with the message once and no polars noise.
    let run = join_cli(d, &csv, &[]);
    let (ok, err) = (run.success(), run.stderr);
    assert!(!ok && err.contains("dup.csv") && err.contains("rows 1 and 3"), "{err}");
    assert_eq!(err.matches("duplicate key").count(), 1, "{err}");
}

/// Finding 1, performance: the check is one hash pass (a million rows well under a second's work).
#[test]
fn duplicate_check_scales_to_a_million_rows() {
    let n = 1_000_000usize;
    let tickers: Vec<String> = (0..n).map(|i| format!("T{} US", i % 5000)).collect();
    let dates: Vec<i64> = (0..n)
        .map(|i| {
            let d = NaiveDate::from_ymd_opt(2020, 1, 3).unwrap() + chrono::Duration::weeks((i / 5000) as i64);
            d.format("%Y%m%d").to_string().parse().unwrap()
        })
        .collect();
    let df = DataFrame::new_infer_height(vec![
        Column::new("bloomberg_ticker".into(), tickers),
        Column::new("friday_date".into(), dates),
    ])
    .unwrap();
    let t0 = std::time::Instant::now();
    let t = Targets::from_frame(Path::new("big.parquet"), df.clone()).unwrap();
    assert_eq!(t.len(), n);
    let took = t0.elapsed();
    assert!(took.as_secs_f64() < 20.0, "reading 1M keyed rows took {took:?}");
    // A duplicate at the very end is still found.
    let last = df.slice((n - 1) as i64, 1);
    let df = df.vstack(&last).unwrap();
    let e = err_of(Targets::from_frame(Path::new("big.parquet"), df));
    assert!(e.contains(&format!("rows {n} and {}", n + 1)), "{e}");
}

fn eval_files(d: &Path, preds: &str, targets: &str) -> EvaluateArgs {
    let mut a = EvaluateArgs::new(write(d, "preds.csv", preds), write(d, "targets.csv", targets), d.join("eval"));
    a.target = "target_20d".into();
    a
}

/// Finding 2: evaluate refuses duplicate keys in the predictions and in the targets.
#[test]
fn evaluate_refuses_duplicate_keys_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let preds = "bloomberg_ticker,friday_date,prediction\nA US,20240301,0.1\nB US,20240301,0.5\nC US,20240301,0.9\n";
    let targets = "bloomberg_ticker,friday_date,target_20d\nA US,20240301,0\nB US,20240301,0.5\nC US,20240301,1\n";
    // Clean inputs score.
    let r = evaluate(&eval_files(d, preds, targets)).unwrap();
    assert_eq!(r.per_era.len(), 1);
    assert_eq!(r.per_era[0].n, 3);

    // A second target row for C (which used to win silently and flip the sign).
    let dup_t = format!("{targets}C US,20240301,0\n");
    let e = err_of(evaluate(&eval_files(d, preds, &dup_t)));
    assert!(e.contains("targets.csv") && e.contains("rows 3 and 4") && e.contains("lines 4 and 5"), "{e}");
    assert!(e.contains("'C US'") && e.contains("de-duplicate"), "{e}");

    // A prediction row twice (which used to count twice).
    let dup_p = format!("{preds}A US,20240301,0.1\n");
    let e = err_of(evaluate(&eval_files(d, &dup_p, targets)));
    assert!(e.contains("preds.csv") && e.contains("rows 1 and 4") && e.contains("'A US'"), "{e}");
    assert!(e.contains("de-duplicate"), "{e}");
}

/// Finding 3: one headline ticker mapped to two row tickers is refused; many-to-one is fine.
#[test]
fn ticker_map_one_to_two_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = write(d, "map.csv", "ticker,bloomberg_ticker\nBRK-B,BRK/B US\n7203.T,7203 JP\nbrk-b,BRKB US\n");
    let e = err_of(TickerRule::from_map_file(&bad));
    assert!(e.contains("map.csv") && e.contains("'BRK-B'"), "{e}");
    assert!(e.contains("'BRK/B US'") && e.contains("'BRKB US'"), "{e}");
    assert!(e.contains("rows 1 and 3") && e.contains("lines 2 and 4") && e.contains("remove the wrong row"), "{e}");

    // Several headline tickers naming one row ticker, and a repeated identical row, are fine.
    let ok = write(d, "ok.csv", "ticker,bloomberg_ticker\nBRK-B,BRK/B US\nBRK.B,BRK/B US\nBRK-B,BRK/B US\n");
    let TickerRule::Map(m) = TickerRule::from_map_file(&ok).unwrap() else { panic!("a map") };
    assert_eq!(m.len(), 2);

    // Through the binary.
    let t = write(d, "t.csv", "bloomberg_ticker,friday_date\nBRK/B US,20240301\n");
    let run = join_cli(d, &t, &["--ticker-map", bad.to_str().unwrap()]);
    let (ok, err) = (run.success(), run.stderr);
    assert!(!ok && err.contains("map.csv") && err.contains("maps to two tickers"), "{err}");
}

/// Finding 4: a Thursday (Friday holiday) or other weekday is kept with one loud warning; a
/// weekend date is refused.
#[test]
fn non_friday_dates_warn_and_weekends_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2024-03-28 is the Thursday before Good Friday; 2024-03-06 a Wednesday.
    let t = write(
        d,
        "thu.csv",
        "bloomberg_ticker,friday_date\nAAPL US,20240301\nAAPL US,20240328\nMSFT US,20240328\nAAPL US,20240306\n",
    );
    assert_eq!(Targets::read(&t).unwrap().len(), 4, "kept, not refused");
    let run = join_cli(d, &t, &[]);
    let (ok, err) = (run.success(), run.stderr);
    assert!(ok, "{err}");
    assert_eq!(err.matches("warning:").count(), 1, "once per file: {err}");
    assert!(err.contains("thu.csv") && err.contains("3 rows of 4 have a date that is not a Friday"), "{err}");
    assert!(err.contains("2 Thursdays") && err.contains("1 Wednesday"), "{err}");
    assert!(err.contains("row 2") && err.contains("line 3") && err.contains("2024-03-28, a Thursday"), "{err}");
    assert!(err.contains("check the date column 'friday_date'"), "{err}");

    // All Fridays: silent.
    let f = write(d, "fri.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n");
    let run = join_cli(d, &f, &[]);
    let (ok, err) = (run.success(), run.stderr);
    assert!(ok && !err.contains("warning"), "{err}");

    // A Saturday: refused with the row and the fix.
    let sat = write(d, "sat.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\nAAPL US,20240309\n");
    let e = err_of(Targets::read(&sat));
    assert!(e.contains("sat.csv: row 2, column 'friday_date'") && e.contains("2024-03-09 is a Saturday"), "{e}");
    assert!(e.contains("fix the date column"), "{e}");
}

/// Finding 5: a broken CSV names the line and the fix once, never polars' Python options.
#[test]
fn broken_csv_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let python = ["truncate_ragged_lines", "infer_schema_length", "ignore_errors", "schema_overrides"];
    let clean = |e: &str| python.iter().all(|p| !e.contains(p));

    // A row with a field too many (an unquoted comma).
    let ragged = write(
        d,
        "ragged.csv",
        "bloomberg_ticker,friday_date,target_20d\nAAPL US,20240301,0.5\nBRK,B US,20240301,0.5\n",
    );
    let e = err_of(Targets::read(&ragged));
    assert!(e.contains("ragged.csv") && e.contains("line 3 has 4 fields, the header (line 1) has 3"), "{e}");
    assert!(e.contains("make every row have 3 fields") && clean(&e), "{e}");
    // A row with a field too few (polars would fill it with null silently).
    let short =
        write(d, "short.csv", "bloomberg_ticker,friday_date,target_20d\nAAPL US,20240301,0.5\nMSFT US,20240301\n");
    let e = err_of(Targets::read(&short));
    assert!(e.contains("short.csv") && e.contains("line 3 has 2 fields"), "{e}");

    // A quote that never closes.
    let quote = write(
        d,
        "quote.csv",
        "ticker,published_at,headline\nAAPL,2024-02-28,fine\nAAPL,2024-02-29,\"Apple says hi\nMSFT,2024-02-29,more\n",
    );
    let t = write(d, "t.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n");
    let run = join_cli_with(d, &t, &quote, &[]);
    let (ok, err) = (run.success(), run.stderr);
    assert!(!ok && err.contains("quote.csv") && err.contains("line 3"), "{err}");
    assert!(err.contains("never closes") && err.contains("balance the quote") && clean(&err), "{err}");
    // One message, not polars' text twice.
    assert_eq!(err.matches("quote.csv").count(), 1, "{err}");

    // A quote that closes lines later makes a record of the wrong width: both lines named.
    let late = write(
        d,
        "late.csv",
        "ticker,published_at,headline\nAAPL,\"oops,open\nMSFT,2024-02-29,close\"\nX,2024-02-29,y\n",
    );
    let e = err_of(signalkit::data::read_table(&late, true));
    assert!(e.contains("late.csv") && e.contains("line 2 runs on to line 3") && e.contains("balance the quote"), "{e}");

    // A blank line (polars would read a row of nulls): refused with its line.
    let blank = write(d, "blank.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n\nMSFT US,20240301\n");
    let e = err_of(Targets::read(&blank));
    assert!(e.contains("blank.csv: line 3 is blank") && e.contains("remove blank lines"), "{e}");

    // Quoted commas, doubled quotes, newlines in quotes and CRLF line ends are fine.
    let fine = write(
        d,
        "fine.csv",
        "ticker,published_at,headline\r\nAAPL,2024-02-28,\"Apple, Inc. says \"\"hi\"\"\"\r\nMSFT,2024-02-29,\"two\nlines\"\r\n",
    );
    let df = signalkit::data::read_table(&fine, true).unwrap();
    assert_eq!(df.height(), 2, "{df:?}");
}
