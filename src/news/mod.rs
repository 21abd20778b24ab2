//! `signalkit news fetch`: headlines from the news APIs Signals participants use (SEC EDGAR,
//! Alpaca, Finnhub, Polygon/Massive, Tiingo), stamped point-in-time, stored incrementally as
//! monthly parquet partitions in the headline layout `join` reads.
//!
//! Per source, `published_at` is the earliest instant the vendor stamped at the time the text
//! appeared (README "News connectors" says which field and why); revisions never move it
//! earlier, and `first_seen_at` keeps when signalkit first saw the record.

pub mod alpaca;
pub mod client;
pub mod finnhub;
pub mod keys;
pub mod polygon;
pub mod sec;
pub mod state;
pub mod store;
pub mod tiingo;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;

pub use client::{NewsHttp, TokenBucket};
pub use keys::Keys;
use state::FetchState;
pub use store::{Added, Item, Row, SourceStore};

use crate::data::tickers::TickerRule;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;

/// Environment variable overriding every source's base URL (tests, proxies).
pub const BASE_URL_ENV: &str = "SIGNALKIT_NEWS_BASE_URL";

/// A news source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// SEC EDGAR filings (no key; a declared User-Agent).
    Sec,
    /// Alpaca news (Benzinga).
    Alpaca,
    /// Finnhub company news.
    Finnhub,
    /// Polygon (Massive) reference news.
    Polygon,
    /// Tiingo news.
    Tiingo,
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "sec" | "edgar" | "sec-edgar" => Source::Sec,
            "alpaca" => Source::Alpaca,
            "finnhub" => Source::Finnhub,
            "polygon" | "massive" => Source::Polygon,
            "tiingo" => Source::Tiingo,
            _ => return Err(format!("unknown news source '{s}': use sec, alpaca, finnhub, polygon or tiingo")),
        })
    }
}

impl Source {
    /// The name used for its folder and the `source` column.
    pub fn name(self) -> &'static str {
        match self {
            Source::Sec => "sec",
            Source::Alpaca => "alpaca",
            Source::Finnhub => "finnhub",
            Source::Polygon => "polygon",
            Source::Tiingo => "tiingo",
        }
    }

    /// Requests a minute the source allows on its free or basic plan (our default).
    pub fn default_rate(self) -> f64 {
        match self {
            Source::Sec => 480.0,
            Source::Alpaca => 180.0,
            Source::Finnhub => 55.0,
            Source::Polygon => 5.0,
            Source::Tiingo => 0.8,
        }
    }

    /// The key names (environment variables / credentials-file keys) the source reads.
    pub fn key_names(self) -> &'static [&'static str] {
        match self {
            Source::Sec => &[sec::USER_AGENT_ENV],
            Source::Alpaca => &[alpaca::KEY_ENV, alpaca::SECRET_ENV],
            Source::Finnhub => &[finnhub::KEY_ENV],
            Source::Polygon => &[polygon::KEY_ENV],
            Source::Tiingo => &[tiingo::KEY_ENV],
        }
    }
}

/// What `news fetch` does.
#[derive(Debug, Clone)]
pub struct FetchArgs {
    /// The source.
    pub source: Source,
    /// Vendor symbols to fetch (the universe).
    pub tickers: Vec<String>,
    /// First day (UTC), inclusive.
    pub from: NaiveDate,
    /// Last day (UTC), inclusive.
    pub to: NaiveDate,
    /// Output folder (one folder per source inside, and headlines.parquet).
    pub out: PathBuf,
    /// Symbol → Numerai ticker, as the join maps them.
    pub rule: TickerRule,
    /// Keys for the source.
    pub keys: Keys,
    /// Base URL instead of the vendor's (tests, proxies); else [`BASE_URL_ENV`], else the vendor's.
    pub base_url: Option<String>,
    /// Requests a minute; `None` = the source's default.
    pub rate_per_minute: Option<f64>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// SEC forms to keep (`None` = [`sec::DEFAULT_FORMS`]; empty = every form).
    pub forms: Option<Vec<String>>,
    /// Draw a progress bar (on a terminal only).
    pub progress: bool,
}

/// What a fetch did.
#[derive(Debug, Clone, Default)]
pub struct FetchSummary {
    /// Source name.
    pub source: String,
    /// Tickers asked for.
    pub tickers: usize,
    /// Tickers skipped because the state says they are covered.
    pub skipped: usize,
    /// Tickers the source does not know (e.g. no CIK on SEC's list).
    pub unknown: Vec<String>,
    /// Rows added, duplicates seen, unmapped rows kept aside, items stamped before --from.
    pub added: Added,
    /// Requests sent and retries among them.
    pub requests: u64,
    /// Retries after 429, 5xx or a dropped connection.
    pub retries: u64,
    /// The combined file `join` reads, and its rows.
    pub combined: PathBuf,
    /// Rows in the combined file.
    pub combined_rows: usize,
}

impl fmt::Display for FetchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.added;
        writeln!(f, "news {}: {} ticker(s), {} already covered", self.source, self.tickers, self.skipped)?;
        writeln!(
            f,
            "  rows: {} new, {} duplicate(s) ignored, {} for symbols outside the universe (kept in {}/unmapped.parquet), {} stamped before --from (not kept)",
            a.new, a.duplicate, a.unmapped, self.source, a.before_start
        )?;
        if !self.unknown.is_empty() {
            writeln!(f, "  unknown to the source (nothing fetched): {}", self.unknown.join(", "))?;
        }
        writeln!(f, "  requests: {} ({} retried)", self.requests, self.retries)?;
        write!(f, "  headlines for join: {} ({} rows)", self.combined.display(), self.combined_rows)
    }
}

/// A connector's view of one fetch: the client, the base URL and the keys.
pub struct Ctx<'a> {
    /// The rate-limited client.
    pub http: &'a NewsHttp,
    /// Base URL (the vendor's or the override).
    pub base: Url,
    /// True when the base URL was overridden (every host is then the override).
    pub overridden: bool,
    /// The fetch's arguments.
    pub args: &'a FetchArgs,
}

/// The base URL: the argument, else [`BASE_URL_ENV`], else `default`; and whether it was overridden.
fn base_url(args: &FetchArgs, default: &str) -> Result<(Url, bool)> {
    let given = args.base_url.clone().or_else(|| std::env::var(BASE_URL_ENV).ok().filter(|v| !v.trim().is_empty()));
    let text = given.clone().unwrap_or_else(|| default.to_string());
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("base URL '{text}' is not a URL ({e}); give e.g. {default}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!("base URL '{text}' must start with https:// (or http://)")));
    }
    Ok((url, given.is_some()))
}

/// UTC microseconds of midnight starting `d`.
pub fn day_start_us(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros()
}

/// Fetches the source's news for every ticker into `args.out`, then writes `headlines.parquet`.
pub fn fetch(args: &FetchArgs) -> Result<FetchSummary> {
    if args.from > args.to {
        return Err(Error::Config(format!(
            "--from {} is after --to {}: give the earlier day first",
            args.from, args.to
        )));
    }
    if args.tickers.is_empty() {
        return Err(Error::Config(
            "no tickers to fetch: give --tickers AAPL,MSFT or a file with a ticker column".into(),
        ));
    }
    let source = args.source;
    let (base, overridden) = base_url(args, default_base(source))?;
    let http = connector_client(args, &base)?;
    let ctx = Ctx { http: &http, base, overridden, args };
    let store = SourceStore::new(&args.out, source.name(), args.rule.clone(), &args.tickers, day_start_us(args.from));
    std::fs::create_dir_all(&store.dir).map_err(|e| Error::io(&store.dir, e))?;
    let _lock = lock(&store.dir)?;
    // Pages a killed fetch stored but did not merge yet.
    store.compact()?;
    let mut state = FetchState::load(&store.dir)?;
    let mut summary = FetchSummary { source: source.name().into(), tickers: args.tickers.len(), ..Default::default() };
    let bar = progress_bar(args, source);
    let resolver = Resolver::new(&ctx)?;
    for sym in &args.tickers {
        let sym = sym.trim().to_ascii_uppercase();
        bar.set_message(sym.clone());
        let Some((from, to)) = state.plan(&sym, args.from, args.to) else {
            summary.skipped += 1;
            bar.inc(1);
            continue;
        };
        let mut sink = |items: Vec<Item>| -> Result<()> {
            let a = store.add(&items)?;
            add_counts(&mut summary.added, a);
            Ok(())
        };
        if fetch_one(&ctx, &resolver, &sym, from, to, &mut sink)? {
            state.done(&sym, from, to)?;
        } else {
            // Not marked covered: a later run asks again (the source may list it by then).
            summary.unknown.push(sym.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    summary.requests = http.requests.get();
    summary.retries = http.retries.get();
    store.compact()?;
    let (combined, n) = store::write_combined(&args.out)?;
    summary.combined = combined;
    summary.combined_rows = n;
    Ok(summary)
}

/// One fetch per source folder at a time: the folder's lock ([`crate::data::lock::lock_folder`]),
/// held until dropped.
fn lock(dir: &Path) -> Result<crate::data::lock::Lock> {
    crate::data::lock::lock_folder(dir, "news fetch", "--out")
}

fn add_counts(total: &mut Added, a: Added) {
    total.new += a.new;
    total.duplicate += a.duplicate;
    total.unmapped += a.unmapped;
    total.before_start += a.before_start;
}

/// What a source needs before the per-ticker loop (SEC: the ticker → CIK list).
enum Resolver {
    None,
    Sec(std::collections::HashMap<String, u64>),
}

impl Resolver {
    fn new(ctx: &Ctx) -> Result<Self> {
        Ok(match ctx.args.source {
            Source::Sec => Resolver::Sec(sec::cik_map(ctx)?),
            _ => Resolver::None,
        })
    }
}

/// Fetches one ticker's `[from, to]`; false when the source does not know it.
fn fetch_one(
    ctx: &Ctx,
    resolver: &Resolver,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<()>,
) -> Result<bool> {
    match (ctx.args.source, resolver) {
        (Source::Sec, Resolver::Sec(ciks)) => match sec::cik_of(ciks, sym) {
            Some(cik) => sec::fetch_ticker(ctx, cik, sym, from, to, sink).map(|_| true),
            None => Ok(false),
        },
        (Source::Alpaca, _) => alpaca::fetch_ticker(ctx, sym, from, to, sink).map(|_| true),
        (Source::Finnhub, _) => finnhub::fetch_ticker(ctx, sym, from, to, sink).map(|_| true),
        (Source::Polygon, _) => polygon::fetch_ticker(ctx, sym, from, to, sink).map(|_| true),
        (Source::Tiingo, _) => tiingo::fetch_ticker(ctx, sym, from, to, sink).map(|_| true),
        (Source::Sec, Resolver::None) => unreachable!("SEC always has its resolver"),
    }
}

fn default_base(source: Source) -> &'static str {
    match source {
        Source::Sec => sec::DEFAULT_BASE,
        Source::Alpaca => alpaca::DEFAULT_BASE,
        Source::Finnhub => finnhub::DEFAULT_BASE,
        Source::Polygon => polygon::DEFAULT_BASE,
        Source::Tiingo => tiingo::DEFAULT_BASE,
    }
}

/// The client with the source's key headers and User-Agent.
fn connector_client(args: &FetchArgs, base: &Url) -> Result<NewsHttp> {
    let what = format!("news source {}", args.source.name());
    let agent = concat!("signalkit/", env!("CARGO_PKG_VERSION")).to_string();
    let (agent, headers): (String, Vec<(&str, String, bool)>) = match args.source {
        Source::Sec => (sec::user_agent(&args.keys)?, vec![]),
        Source::Alpaca => (
            agent,
            vec![
                ("Apca-Api-Key-Id", args.keys.require(alpaca::KEY_ENV, &what)?, true),
                ("Apca-Api-Secret-Key", args.keys.require(alpaca::SECRET_ENV, &what)?, true),
            ],
        ),
        Source::Finnhub => (agent, vec![("X-Finnhub-Token", args.keys.require(finnhub::KEY_ENV, &what)?, true)]),
        Source::Polygon => {
            (agent, vec![("Authorization", format!("Bearer {}", args.keys.require(polygon::KEY_ENV, &what)?), true)])
        }
        Source::Tiingo => {
            (agent, vec![("Authorization", format!("Token {}", args.keys.require(tiingo::KEY_ENV, &what)?), true)])
        }
    };
    let rate = args.rate_per_minute.unwrap_or(args.source.default_rate());
    NewsHttp::new(base, &agent, &headers, rate, args.retry)
}

fn progress_bar(args: &FetchArgs, source: Source) -> ProgressBar {
    if !args.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(args.tickers.len() as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} tickers {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(source.name());
    bar
}

/// Reads tickers: a comma-separated list, or a file (one per line, or a table with a `ticker`
/// or `symbol` column).
pub fn read_tickers(spec: &str) -> Result<Vec<String>> {
    let path = Path::new(spec);
    let mut out: Vec<String> = if path.is_file() {
        read_ticker_file(path)?
    } else {
        spec.split(',').map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty()).collect()
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.clone()));
    Ok(out)
}

fn read_ticker_file(path: &Path) -> Result<Vec<String>> {
    let is_table = matches!(
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("csv" | "parquet" | "pq" | "jsonl" | "ndjson")
    );
    if !is_table {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        return Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_ascii_uppercase())
            .filter(|l| !l.is_empty())
            .collect());
    }
    let df = crate::data::read_table(path, true)?;
    let col = crate::data::find_column(&df, &["ticker", "symbol"]).ok_or_else(|| {
        crate::data::missing_column(
            path,
            &df,
            &["ticker", "symbol"],
            "give a file with a ticker column (vendor symbols such as AAPL)",
        )
    })?;
    let vals = crate::data::str_values(path, &df, &col)?;
    Ok(vals.iter().flatten().map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty()).collect())
}
