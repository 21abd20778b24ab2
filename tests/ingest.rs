//! Every input layout and format reads; every bad input gets an error naming file, row, column.

mod common;

use chrono::NaiveDate;
use common::*;
use polars::prelude::*;
use signalkit::data::headlines::{HeadlineOptions, Headlines};
use signalkit::data::targets::Targets;
use signalkit::data::tickers::TickerRule;
use signalkit::data::time::{Zone, days_from_date};
use signalkit::pit::{JoinArgs, Window, join_files};

fn day(y: i32, m: u32, d: u32) -> i32 {
    days_from_date(NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

fn us(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
}

fn err_of<T: std::fmt::Debug>(r: signalkit::Result<T>) -> String {
    r.expect_err("should fail").to_string()
}

#[test]
fn legacy_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "historical_targets.csv",
        "bloomberg_ticker,friday_date,data_type,target_20d,target_20d_factor_neutral\nAAPL US,20240301,train,0.5,0.75\nMSFT US,20240308,live,,\n",
    );
    let t = Targets::read(&csv).unwrap();
    assert_eq!((t.ticker_column.as_str(), t.date_column.as_str()), ("bloomberg_ticker", "friday_date"));
    // Tickers match whatever their case.
    let mixed = write(dir.path(), "mixed.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\naapl us,20240308\n");
    assert_eq!(Targets::read(&mixed).unwrap().ticker_ids, vec![0, 0]);
    assert_eq!(t.fridays, vec![day(2024, 3, 1), day(2024, 3, 8)]);
    assert_eq!(t.universe, vec!["AAPL US", "MSFT US"]);
    assert_eq!(t.target_column("target_factor_neutral_20").as_deref(), Some("target_20d_factor_neutral"));

    let df = df!["bloomberg_ticker" => ["AAPL US"], "friday_date" => [20240301i64], "target_20d_factor_neutral" => [Some(0.25)]]
        .unwrap();
    let pq = write_parquet(dir.path(), "legacy.parquet", df);
    let t = Targets::read(&pq).unwrap();
    assert_eq!(t.fridays, vec![day(2024, 3, 1)]);
}

#[test]
fn signals_v2_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let dates = DateChunked::from_naive_date(
        "date".into(),
        [NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(), NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()],
    );
    let df = DataFrame::new_infer_height(vec![
        Column::new("numerai_ticker".into(), ["AAPL US", "7203 JP"]),
        Column::new("composite_figi".into(), ["BBG000B9XRY4", "BBG000BCJWH0"]),
        dates.into_column(),
        Column::new("feature_a".into(), [1.0f64, 2.0]),
        Column::new("target_factor_neutral_20".into(), [Some(0.5f64), None]),
    ])
    .unwrap();
    let t = Targets::read(&write_parquet(dir.path(), "train.parquet", df)).unwrap();
    assert_eq!((t.ticker_column.as_str(), t.date_column.as_str()), ("numerai_ticker", "date"));
    assert_eq!(t.fridays, vec![day(2024, 3, 1), day(2024, 3, 8)]);
    assert_eq!(t.target_column("target_20d_factor_neutral").as_deref(), Some("target_factor_neutral_20"));

    // The date as text works too.
    let df = df!["numerai_ticker" => ["AAPL US"], "date" => ["2024-03-01"]].unwrap();
    let t = Targets::read(&write_parquet(dir.path(), "live.parquet", df)).unwrap();
    assert_eq!(t.fridays, vec![day(2024, 3, 1)]);
}

#[test]
fn headlines_csv_parquet_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HeadlineOptions::default();
    let csv =
        write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-03-01T14:30:00Z,\"Apple, Inc. beats\"\n");
    let h = Headlines::read(&csv, &opts).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T14:30:00Z")]);
    assert_eq!(h.text.get(0), Some("Apple, Inc. beats"));

    let jsonl = write(
        dir.path(),
        "h.jsonl",
        "{\"ticker\":\"AAPL\",\"published_at\":1709303400,\"headline\":\"seconds\"}\n{\"ticker\":\"AAPL\",\"published_at\":1709303400000,\"headline\":\"millis\"}\n",
    );
    let h = Headlines::read(&jsonl, &opts).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T14:30:00Z"); 2]);

    // Parquet: zoned timestamps, day-only dates, custom column names.
    let ts = Int64Chunked::from_vec("when".into(), vec![us("2024-03-01T14:30:00Z") * 1000])
        .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    let df = DataFrame::new_infer_height(vec![
        Column::new("symbol".into(), ["AAPL"]),
        ts.into_column(),
        Column::new("title".into(), ["zoned"]),
    ])
    .unwrap();
    let custom = HeadlineOptions {
        ticker_column: "symbol".into(),
        time_column: Some("when".into()),
        text_column: "title".into(),
        zone: None,
    };
    let h = Headlines::read(&write_parquet(dir.path(), "zoned.parquet", df), &custom).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T14:30:00Z")]);

    let dates = DateChunked::from_naive_date("published_date".into(), [NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()]);
    let df = DataFrame::new_infer_height(vec![
        Column::new("ticker".into(), ["AAPL"]),
        dates.into_column(),
        Column::new("headline".into(), ["day only"]),
    ])
    .unwrap();
    let h = Headlines::read(&write_parquet(dir.path(), "days.parquet", df), &opts).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T23:59:59.999999Z")]);
}

#[test]
fn naive_timestamps_need_a_zone() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "naive.csv",
        "ticker,published_at,headline\nAAPL,2024-03-01T09:30:00-05:00,ok\nAAPL,2024-03-01 09:30:00,naive\n",
    );
    let e = err_of(Headlines::read(&csv, &HeadlineOptions::default()));
    assert!(e.contains("naive.csv") && e.contains("row 2, column 'published_at'") && e.contains("--timezone"), "{e}");
    let ny: Zone = "America/New_York".parse().unwrap();
    let h = Headlines::read(&csv, &HeadlineOptions { zone: Some(ny), ..Default::default() }).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T14:30:00Z"); 2]);

    // A parquet timestamp column without a zone is naive too.
    let ts = Int64Chunked::from_vec("published_at".into(), vec![us("2024-03-01T09:30:00Z")])
        .into_datetime(TimeUnit::Microseconds, None);
    let df = DataFrame::new_infer_height(vec![
        Column::new("ticker".into(), ["AAPL"]),
        ts.into_column(),
        Column::new("headline".into(), ["naive"]),
    ])
    .unwrap();
    let pq = write_parquet(dir.path(), "naive.parquet", df);
    let e = err_of(Headlines::read(&pq, &HeadlineOptions::default()));
    assert!(e.contains("naive.parquet") && e.contains("no time zone") && e.contains("--timezone"), "{e}");
    let h = Headlines::read(&pq, &HeadlineOptions { zone: Some(ny), ..Default::default() }).unwrap();
    assert_eq!(h.published_us, vec![us("2024-03-01T14:30:00Z")]);
}

#[test]
fn ticker_map_file() {
    let dir = tempfile::tempdir().unwrap();
    let map = write(
        dir.path(),
        "signals_ticker_map_w_bbg.csv",
        "ticker,bloomberg_ticker,yahoo\nBRK-B,BRK/B US,BRK-B\n7203.T,7203 JP,7203.T\n",
    );
    let args = JoinArgs {
        targets: write(dir.path(), "t.csv", "bloomberg_ticker,friday_date\nBRK/B US,20240301\n7203 JP,20240301\n"),
        headlines: write(
            dir.path(),
            "h.csv",
            "ticker,published_at,headline\nBRK-B,2024-02-28T10:00:00Z,Berkshire\n7203.T,2024-02-28T10:00:00Z,Toyota\n",
        ),
        out: dir.path().join("o.parquet"),
        window: Window::default(),
        tickers: TickerRule::from_map_file(&map).unwrap(),
        ticker_map: Some(map.clone()),
        headline_options: HeadlineOptions::default(),
    };
    let s = join_files(&args).unwrap();
    assert_eq!((s.rows_with_headline, s.unknown_ticker), (2, 0));
    assert_eq!(strs(&read_parquet(&args.out), "headline"), vec![Some("Berkshire".into()), Some("Toyota".into())]);
}

#[test]
fn bad_targets_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = err_of(Targets::read(&write(d, "nocol.csv", "ticker,friday_date\nAAPL US,20240301\n")));
    assert!(
        e.contains("nocol.csv")
            && e.contains("no column numerai_ticker or bloomberg_ticker")
            && e.contains("columns found: ticker, friday_date"),
        "{e}"
    );
    let e = err_of(Targets::read(&write(
        d,
        "date.csv",
        "bloomberg_ticker,friday_date\nAAPL US,20240301\nAAPL US,20241345\n",
    )));
    assert!(e.contains("date.csv: row 2, column 'friday_date'") && e.contains("'20241345'"), "{e}");
    let e = err_of(Targets::read(&write(
        d,
        "range.csv",
        "bloomberg_ticker,friday_date,target_20d\nAAPL US,20240301,1.5\n",
    )));
    assert!(e.contains("range.csv: row 1, column 'target_20d'") && e.contains("outside [0, 1]"), "{e}");
    let df = df!["bloomberg_ticker" => ["A US", "B US"], "friday_date" => [20240301i64, 20240301], "target_20d_factor_neutral" => [0.5, f64::NAN]].unwrap();
    let e = err_of(Targets::read(&write_parquet(d, "nan.parquet", df)));
    assert!(e.contains("nan.parquet: row 2, column 'target_20d_factor_neutral'") && e.contains("NaN"), "{e}");
    let e = err_of(Targets::read(&write(
        d,
        "text.csv",
        "bloomberg_ticker,friday_date,target_20d\nAAPL US,20240301,high\n",
    )));
    assert!(e.contains("row 1, column 'target_20d'") && e.contains("'high' is not a number"), "{e}");
    let e = err_of(Targets::read(&write(d, "targets.xlsx", "")));
    assert!(e.contains("targets.xlsx") && e.contains("unknown file type"), "{e}");
    let e = err_of(Targets::read(&d.join("missing.csv")));
    assert!(e.contains("missing.csv") && e.contains("not found"), "{e}");
}

#[test]
fn bad_headlines_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = HeadlineOptions::default();
    let e = err_of(Headlines::read(&write(d, "cols.csv", "ticker,published_at,title\nAAPL,2024-03-01,x\n"), &o));
    assert!(e.contains("cols.csv") && e.contains("no column headline") && e.contains("--text-col"), "{e}");
    let e = err_of(Headlines::read(&write(d, "notime.csv", "ticker,when,headline\nAAPL,2024-03-01,x\n"), &o));
    assert!(e.contains("no column published_at or published_date") && e.contains("--time-col"), "{e}");
    let e = err_of(Headlines::read(
        &write(d, "empty.csv", "ticker,published_at,headline\nAAPL,2024-03-01,x\nAAPL,2024-03-01,\"  \"\n"),
        &o,
    ));
    assert!(e.contains("empty.csv: row 2, column 'headline'") && e.contains("empty headline"), "{e}");
    let e = err_of(Headlines::read(
        &write(d, "time.csv", "ticker,published_at,headline\nAAPL,2024-03-01,x\nAAPL,yesterday,y\n"),
        &o,
    ));
    assert!(e.contains("time.csv: row 2, column 'published_at'") && e.contains("cannot parse 'yesterday'"), "{e}");
    let e = err_of(Headlines::read(&write(d, "nott.csv", "ticker,published_at,headline\n,2024-03-01,x\n"), &o));
    assert!(e.contains("row 1, column 'ticker'") && e.contains("missing ticker"), "{e}");
    let p = d.join("latin1.csv");
    std::fs::write(&p, b"ticker,published_at,headline\nAAPL,2024-03-01,fine\nNESN,2024-03-01,Nestl\xe9 profit\n")
        .unwrap();
    let e = err_of(Headlines::read(&p, &o));
    assert!(e.contains("latin1.csv") && e.contains("invalid UTF-8 at line 3") && e.contains("iconv"), "{e}");
}

#[test]
fn join_refuses_to_overwrite_columns() {
    let dir = tempfile::tempdir().unwrap();
    let args = JoinArgs {
        targets: write(dir.path(), "t.csv", "bloomberg_ticker,friday_date,headline\nAAPL US,20240301,x\n"),
        headlines: write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-02-28,y\n"),
        out: dir.path().join("o.parquet"),
        window: Window::default(),
        tickers: TickerRule::default(),
        ticker_map: None,
        headline_options: HeadlineOptions::default(),
    };
    let e = join_files(&args).unwrap_err().to_string();
    assert!(e.contains("t.csv: column 'headline'") && e.contains("already has this column"), "{e}");
    assert!(!args.out.exists(), "nothing is written on failure");
}
