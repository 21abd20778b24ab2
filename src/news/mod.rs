//! `signalkit news fetch`: headlines from the news APIs Signals participants use (SEC EDGAR,
//! Alpaca, Finnhub, Polygon/Massive, Tiingo), stamped point-in-time, stored incrementally as
//! monthly parquet partitions in the headline layout `join` reads.
//!
//! Per source, `published_at` is the earliest instant the vendor stamped at the time the text
//! appeared (README "News connectors" says which field and why); revisions never move it
//! earlier, and `first_seen_at` keeps when signalkit first saw the record.

pub mod alpaca;
pub mod client;
pub mod config;
pub mod fields;
pub mod figi;
pub mod finnhub;
pub mod keys;
pub mod polygon;
pub mod sec;
pub mod source;
pub mod state;
pub mod status;
pub mod store;
pub mod tiingo;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;

pub use client::{NewsHttp, Refusal, TokenBucket};
pub use config::{NewsConfig, NewsStage, run_stage};
pub use fields::day_start_us;
pub use keys::Keys;
pub use source::{About, Ctx, Sink, Vendor};
pub use state::{FetchState, Gap, GapKind};
pub use status::status;
pub use store::{Added, Item, Row, SourceStore};

use crate::data::tickers::TickerRule;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;

/// Environment variable overriding every source's base URL (tests, proxies).
pub const BASE_URL_ENV: &str = "SIGNALKIT_NEWS_BASE_URL";

/// Declares [`Source`] from the registry's lines `Variant => module::Type`: one variant per vendor,
/// [`Source::ALL`] in the registry's order, and [`Source::vendor`] making the vendor's connector.
macro_rules! registry {
    ($($variant:ident => $module:ident :: $vendor:ident),+ $(,)?) => {
        /// A news source: one of the vendors the registry lists (`--source` takes its name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Source {
            $(#[doc = concat!("The vendor in [`", stringify!($module), "`].")] $variant,)+
        }

        impl Source {
            /// Every source, in the registry's order.
            pub const ALL: &'static [Source] = &[$(Source::$variant),+];

            /// A fresh connector to the source, for one fetch.
            pub fn vendor(self) -> Box<dyn Vendor> {
                match self {
                    $(Source::$variant => Box::<$module::$vendor>::default(),)+
                }
            }
        }
    };
}

// The registry. Adding a vendor: its file (one type implementing `Vendor`), its `mod` line above
// and one line here.
registry! {
    Sec => sec::Sec,
    Alpaca => alpaca::Alpaca,
    Finnhub => finnhub::Finnhub,
    Polygon => polygon::Polygon,
    Tiingo => tiingo::Tiingo,
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
    /// (ticker, gap) for days the source did not answer (recorded in state.json, asked again).
    pub gaps: Vec<(String, Gap)>,
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
        for (sym, g) in self.gaps.iter().filter(|(_, g)| g.kind == GapKind::NotAvailable) {
            writeln!(f, "  not available to this key: {sym} {}..{}: {}", g.from, g.to, g.why)?;
        }
        writeln!(f, "  requests: {} ({} retried)", self.requests, self.retries)?;
        write!(f, "  headlines for join: {} ({} rows)", self.combined.display(), self.combined_rows)
    }
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
    let mut vendor = args.source.vendor();
    let about = vendor.about();
    let (base, overridden) = source::base_url(args, about.base)?;
    let http = connector_client(args, vendor.as_ref(), &base)?;
    let ctx = Ctx { http: &http, base, overridden, args };
    let store = SourceStore::new(&args.out, about.name, args.rule.clone(), &args.tickers, day_start_us(args.from));
    std::fs::create_dir_all(&store.dir).map_err(|e| Error::io(&store.dir, e))?;
    let _lock = lock(&store.dir)?;
    // Pages a killed fetch stored but did not merge yet.
    store.compact()?;
    let mut state = FetchState::load(&store.dir)?;
    let mut summary = FetchSummary { source: about.name.into(), tickers: args.tickers.len(), ..Default::default() };
    let bar = progress_bar(args, about.name);
    vendor.prepare(&ctx)?;
    for sym in &args.tickers {
        let sym = sym.trim().to_ascii_uppercase();
        bar.set_message(sym.clone());
        let Some((from, to)) = state.plan(&sym, args.from, args.to, about.overlap_days) else {
            summary.skipped += 1;
            bar.inc(1);
            continue;
        };
        let mut sink = |items: Vec<Item>| -> Result<()> {
            let a = store.add(&items)?;
            add_counts(&mut summary.added, a);
            Ok(())
        };
        http.take_denied();
        let gaps = match vendor.fetch_ticker(&ctx, &sym, from, to, &mut sink) {
            Ok(gaps) => gaps,
            // A plan limit fails this ticker's days only; the next ticker is asked.
            Err(e) => match http.take_denied() {
                Some(why) => vec![Gap::not_available(from, to, why)],
                None => return Err(e),
            },
        };
        report_gaps(&bar, about.name, &sym, &gaps, &mut summary);
        state.done(&sym, from, to, gaps)?;
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

/// Says on the terminal which days of `sym` had no answer, and why; counts them in the summary.
fn report_gaps(bar: &ProgressBar, name: &str, sym: &str, gaps: &[Gap], summary: &mut FetchSummary) {
    for g in gaps {
        if g.kind == GapKind::Unknown && !summary.unknown.iter().any(|u| u == sym) {
            summary.unknown.push(sym.to_string());
        }
        if g.kind == GapKind::NotAvailable {
            bar.suspend(|| {
                eprintln!(
                    "news {name}: {sym} {}..{} not available to this key ({}); recorded as not covered, asked again next run (see `signalkit news status`)",
                    g.from, g.to, g.why
                )
            });
        }
        summary.gaps.push((sym.to_string(), g.clone()));
    }
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

/// The client with the vendor's key headers and User-Agent.
fn connector_client(args: &FetchArgs, vendor: &dyn Vendor, base: &Url) -> Result<NewsHttp> {
    let about = vendor.about();
    let who = client::Speaker {
        name: about.name,
        keys: about.keys,
        refusal: about.refusal,
        resume: "(the fetch resumes where it stopped)",
    };
    let agent = vendor.user_agent(&args.keys)?;
    let headers: Vec<(&str, String, bool)> =
        vendor.key_headers(&args.keys)?.into_iter().map(|(name, value)| (name, value, true)).collect();
    let rate = args.rate_per_minute.unwrap_or(vendor.about().rate);
    NewsHttp::new(who, base, &agent, &headers, rate, args.retry)
}

fn progress_bar(args: &FetchArgs, name: &'static str) -> ProgressBar {
    if !args.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(args.tickers.len() as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} tickers {msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(name);
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
