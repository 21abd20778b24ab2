//! `news fetch`'s settings and `[news]` in `signalkit run` (one definition): which sources,
//! symbols and days, the store folder, proxies, keys and rates; and the run's news stage, which
//! fetches every source into the store and names every day left uncovered.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::Args;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{FetchArgs, FetchSummary, Keys, Source, fetch, read_tickers};
use crate::data::tickers::TickerRule;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;
use crate::settings::{Int, PerMinute};

/// `signalkit news fetch`'s settings and `[news]` in `run`.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct NewsConfig {
    /// Sources, comma-separated: sec (free, no key), alpaca, finnhub, polygon (massive), tiingo.
    #[arg(long = "source", value_name = "SOURCE", value_delimiter = ',', required = true)]
    pub sources: Vec<Source>,
    /// Vendor symbols: AAPL,MSFT, or a file (one per line, or CSV/parquet with a ticker column,
    /// such as the map `signalkit tickers map` writes).
    #[arg(long)]
    pub tickers: String,
    /// First day (UTC), YYYY-MM-DD.
    #[arg(long, required = true)]
    #[serde(serialize_with = "ymd_out", deserialize_with = "ymd_in", skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last day (UTC), YYYY-MM-DD, inclusive [default: today].
    #[arg(long)]
    #[serde(serialize_with = "ymd_out", deserialize_with = "ymd_in", skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// Store folder, kept between runs (fetch state, monthly partitions, headlines.parquet).
    #[arg(long = "out", value_name = "DIR")]
    pub store: PathBuf,
    /// Credentials file (KEY = value lines, mode 600) [default: ~/.signalkit/credentials];
    /// environment variables win over it.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
    /// Requests a minute, above 0 and at most 60000 [default: each source's free-plan limit].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<PerMinute>,
    /// SEC forms to keep, comma-separated, or "all" [default: 8-K,8-K/A,10-K,10-K/A,10-Q,10-Q/A,6-K,20-F,40-F].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forms: Option<String>,
    /// Another base URL (a proxy or a test server): URL for every source, or SOURCE=URL for one
    /// (repeatable) [env: SIGNALKIT_NEWS_BASE_URL].
    #[arg(long, value_name = "[SOURCE=]URL")]
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub base_url: Vec<String>,
    /// Read a key from another environment variable: NAME=VAR, e.g. POLYGON_API_KEY=CI_POLYGON
    /// (repeatable; NAME is a key a source reads).
    #[arg(long, value_name = "NAME=VAR")]
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub key_env: Vec<String>,
    /// Tries per request (429, 5xx and dropped connections are retried with backoff).
    #[arg(long, default_value_t = NewsConfig::default().max_tries)]
    pub max_tries: Int<1, 100>,
}

impl Default for NewsConfig {
    fn default() -> Self {
        NewsConfig {
            sources: Vec::new(),
            tickers: String::new(),
            from: None,
            to: None,
            store: PathBuf::new(),
            credentials: None,
            rate: None,
            forms: None,
            base_url: Vec::new(),
            key_env: Vec::new(),
            max_tries: Int::new(5),
        }
    }
}

impl NewsConfig {
    /// The fetch of `source` with these settings; `rule` maps symbols to the universe's tickers.
    pub fn fetch_args(&self, source: Source, rule: TickerRule, progress: bool) -> Result<FetchArgs> {
        let from = self.from.ok_or_else(|| {
            Error::Config("news: `from` (--from) is required: the first day to fetch, e.g. 2024-01-01".into())
        })?;
        if self.store.as_os_str().is_empty() {
            return Err(Error::Config("news: `store` (--out) is required: the folder kept between fetches".into()));
        }
        Ok(FetchArgs {
            source,
            tickers: read_tickers(&self.tickers)?,
            from,
            to: self.to.unwrap_or_else(|| chrono::Utc::now().date_naive()),
            out: self.store.clone(),
            rule,
            keys: self.keys(source)?,
            base_url: self.base_url_of(source)?,
            rate_per_minute: self.rate.map(PerMinute::get),
            retry: RetryPolicy { max_attempts: self.max_tries.u32(), ..Default::default() },
            forms: self.forms(),
            progress,
        })
    }

    /// `source`'s keys: the credentials file, its variables, then `key_env`'s variables.
    fn keys(&self, source: Source) -> Result<Keys> {
        let mut keys = Keys::discover(self.credentials.as_deref(), source.key_names())?;
        for entry in &self.key_env {
            let bad = |why: String| Error::Config(format!("news key_env (--key-env) '{entry}': {why}"));
            let (name, var) = entry.split_once('=').ok_or_else(|| bad("write NAME=VAR".into()))?;
            let name = name.trim().to_ascii_uppercase();
            if !Source::ALL.iter().any(|s| s.key_names().contains(&name.as_str())) {
                let all: Vec<&str> = Source::ALL.iter().flat_map(|s| s.key_names().iter().copied()).collect();
                return Err(bad(format!("{name} is no source's key; use one of {}", all.join(", "))));
            }
            if source.key_names().contains(&name.as_str()) {
                let value = std::env::var(var.trim()).ok().filter(|v| !v.trim().is_empty());
                let value =
                    value.ok_or_else(|| bad(format!("{} is not set; export it or drop the entry", var.trim())))?;
                keys.insert(&name, value.trim());
            }
        }
        Ok(keys)
    }

    /// The SEC forms: `None` for the default list, empty for "all".
    fn forms(&self) -> Option<Vec<String>> {
        self.forms.as_ref().map(|f| {
            if f.trim().eq_ignore_ascii_case("all") {
                Vec::new()
            } else {
                f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
        })
    }

    /// The base URL for `source`: its own `SOURCE=URL`, else a bare `URL`, else none.
    fn base_url_of(&self, source: Source) -> Result<Option<String>> {
        let (mut mine, mut all) = (None, None);
        for entry in &self.base_url {
            match entry.split_once('=').filter(|(name, _)| !name.contains([':', '/', '?'])) {
                Some((name, url)) => {
                    let named: Source = name.parse().map_err(|e| {
                        Error::Config(format!("news base_url (--base-url) '{entry}': {e}; write SOURCE=URL or URL"))
                    })?;
                    if named == source {
                        mine = Some(url.trim().to_string());
                    }
                }
                None => all = Some(entry.trim().to_string()),
            }
        }
        Ok(mine.or(all))
    }

    /// The headlines file the fetches write and the join reads.
    pub fn headlines(&self) -> PathBuf {
        self.store.join("headlines.parquet")
    }

    /// Paths in a config file made relative to its folder `base`: the store, the credentials file,
    /// and the tickers when they name a file there.
    pub fn from_folder(&mut self, base: &Path) {
        let fix = |p: &Path| if p.is_relative() && !p.as_os_str().is_empty() { base.join(p) } else { p.to_path_buf() };
        self.credentials = self.credentials.as_deref().map(fix);
        self.store = fix(&self.store);
        let t = base.join(self.tickers.trim());
        if Path::new(self.tickers.trim()).is_relative() && t.is_file() {
            self.tickers = t.display().to_string();
        }
    }

    /// `[data] headlines` with `[news]` present: the store's headlines file. `given` is `[data]
    /// headlines` when the config names it; naming another file is ambiguous and refused.
    pub fn data_headlines(&self, given: Option<&Path>, config: &Path) -> Result<PathBuf> {
        match given {
            Some(g) if !self.reads(g) => Err(Error::input(config, self.ambiguous(g))),
            _ => Ok(self.headlines()),
        }
    }

    /// Whether `headlines` is the store's headlines file.
    fn reads(&self, headlines: &Path) -> bool {
        std::path::absolute(headlines).ok() == std::path::absolute(self.headlines()).ok()
    }

    fn ambiguous(&self, given: &Path) -> String {
        format!(
            "both [data] headlines ({}) and [news] (which fetches into {}) are given, so the join's headlines are ambiguous: \
             remove [data] headlines to join the fetched news, or remove [news] to join {}",
            given.display(),
            self.headlines().display(),
            given.display()
        )
    }

    /// The sources, or an error when there are none.
    pub fn sources(&self) -> Result<&[Source]> {
        if self.sources.is_empty() {
            return Err(Error::Config(
                "news: no sources: give sources = [\"sec\", \"polygon\"] (--source sec,polygon); each of sec, alpaca, finnhub, polygon, tiingo"
                    .into(),
            ));
        }
        Ok(&self.sources)
    }
}

/// What the run's news stage did: each source's fetch, and the gaps its store still has.
#[derive(Debug, Clone)]
pub struct NewsStage {
    /// One summary per source.
    pub fetched: Vec<FetchSummary>,
    /// The headlines file the join reads, and its rows.
    pub headlines: PathBuf,
    /// Rows in it.
    pub rows: usize,
    /// `news status`'s gap lines for the run's sources, tickers and days.
    pub gaps: Vec<String>,
}

impl fmt::Display for NewsStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per: Vec<String> = self
            .fetched
            .iter()
            .map(|s| {
                format!("{} {} new ({} ticker(s), {} covered before)", s.source, s.added.new, s.tickers, s.skipped)
            })
            .collect();
        write!(f, "{} → {} ({} rows)", per.join(", "), self.headlines.display(), self.rows)?;
        match self.gaps.len() {
            0 => write!(f, "; every day covered"),
            n => {
                write!(f, "; {n} gap(s), asked again by the next run (`signalkit news status DIR`):")?;
                self.gaps.iter().try_for_each(|g| write!(f, "\n  {g}"))
            }
        }
    }
}

/// The run's news stage: fetches `cfg`'s sources into its store, then names every gap inside
/// `cfg`'s days for its tickers. `headlines` is what the join will read: the store's file, or the
/// run is refused as ambiguous.
pub fn run_stage(cfg: &NewsConfig, rule: &TickerRule, headlines: &Path) -> Result<NewsStage> {
    if !cfg.reads(headlines) {
        return Err(Error::Config(cfg.ambiguous(headlines)));
    }
    let mut fetched = Vec::new();
    for &source in cfg.sources()? {
        fetched.push(fetch(&cfg.fetch_args(source, rule.clone(), true)?)?);
    }
    let from = cfg.from.unwrap_or(NaiveDate::MIN);
    let to = cfg.to.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let tickers = read_tickers(&cfg.tickers)?;
    let mut gaps = Vec::new();
    for s in &cfg.sources {
        gaps.extend(super::status::gap_lines(&cfg.store.join(s.name()), &tickers, from, to)?);
    }
    let rows = fetched.last().map_or(0, |s| s.combined_rows);
    Ok(NewsStage { fetched, headlines: cfg.headlines(), rows, gaps })
}

fn ymd_out<S: Serializer>(d: &Option<NaiveDate>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
        None => s.serialize_none(),
    }
}

/// A date as a TOML date (`from = 2024-01-01`) or a string (`from = "2024-01-01"`).
fn ymd_in<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<NaiveDate>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum DateLike {
        Text(String),
        Toml(toml::value::Datetime),
    }
    let text = match DateLike::deserialize(d)? {
        DateLike::Text(t) => t,
        DateLike::Toml(t) => t.to_string(),
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("'{text}' is not a day YYYY-MM-DD ({e})")))
}

/// One string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_for_one_source_wins_over_the_one_for_all_and_a_wrong_name_is_named() {
        let cfg: NewsConfig = toml::from_str(
            "sources = [\"polygon\", \"sec\"]\nbase_url = [\"http://proxy/all?x=1\", \"massive=http://proxy/pg\"]\nfrom = 2024-01-01\n",
        )
        .unwrap();
        assert_eq!(cfg.base_url_of(Source::Polygon).unwrap().as_deref(), Some("http://proxy/pg"));
        assert_eq!(cfg.base_url_of(Source::Sec).unwrap().as_deref(), Some("http://proxy/all?x=1"));
        assert_eq!(cfg.from, NaiveDate::from_ymd_opt(2024, 1, 1));
        let one: NewsConfig = toml::from_str("base_url = \"http://proxy\"\nfrom = \"2024-01-02\"\n").unwrap();
        assert_eq!(one.base_url_of(Source::Tiingo).unwrap().as_deref(), Some("http://proxy"));
        let wrong = NewsConfig { base_url: vec!["polygn=http://proxy".into()], ..Default::default() };
        let e = wrong.base_url_of(Source::Polygon).unwrap_err().to_string();
        assert!(e.contains("polygn") && e.contains("SOURCE=URL"), "{e}");
        let odd = NewsConfig { key_env: vec!["POLYGON_KEY=X".into()], ..Default::default() };
        let e = odd.keys(Source::Polygon).unwrap_err().to_string();
        assert!(e.contains("POLYGON_KEY is no source's key") && e.contains("POLYGON_API_KEY"), "{e}");
        let e = toml::from_str::<NewsConfig>("sources = [\"reuters\"]\n").unwrap_err().to_string();
        assert!(e.contains("unknown news source 'reuters'"), "{e}");
    }
}
