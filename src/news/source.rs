//! What a news vendor is to the fetch: the [`Vendor`] trait each vendor file implements, the
//! [`Ctx`] a vendor's requests go through (base URL, client, paging), and [`Source`]'s names.
//! The registry that lists the vendors is in `mod.rs`.

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use super::client::Refusal;
use super::state::Gap;
use super::{BASE_URL_ENV, FetchArgs, Item, Keys, NewsHttp, Source};
use crate::error::{Error, Result};

/// Where a vendor hands the items of each page it reads (the fetch stores them at once).
pub type Sink<'a> = dyn FnMut(Vec<Item>) -> Result<()> + 'a;

/// What a vendor is before any request: its names, host, keys and rate.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The `--source` value, the folder name and the `source` column.
    pub name: &'static str,
    /// Other `--source` spellings accepted for it.
    pub aliases: &'static [&'static str],
    /// The vendor's base URL; `--base-url`, else [`BASE_URL_ENV`], replaces it.
    pub base: &'static str,
    /// The key names (environment variables / credentials-file keys) it reads.
    pub keys: &'static [&'static str],
    /// Requests a minute its free or basic plan allows (our default).
    pub rate: f64,
    /// What its 401 or 403 means ([`super::client::key_refused`] for most).
    pub refusal: fn(u16, &str) -> Refusal,
    /// Days re-asked before a covered end ([`super::state::OVERLAP_DAYS`] for most).
    pub overlap_days: i64,
}

/// One news vendor: what it is, how its requests are signed, and how it reads one ticker's news.
/// One file per vendor implements it; the registry in `mod.rs` lists it.
pub trait Vendor {
    /// Its names, host, keys and rate.
    fn about(&self) -> &'static About;

    /// The User-Agent its requests declare.
    fn user_agent(&self, _keys: &Keys) -> Result<String> {
        Ok(concat!("signalkit/", env!("CARGO_PKG_VERSION")).to_string())
    }

    /// The headers carrying its keys (sent only to the base URL's host, never printed).
    fn key_headers(&self, keys: &Keys) -> Result<Vec<(&'static str, String)>>;

    /// Work done once per fetch, before the tickers (SEC: its ticker → CIK list).
    fn prepare(&mut self, _ctx: &Ctx) -> Result<()> {
        Ok(())
    }

    /// Reads one ticker's news in `[from, to]`, page by page, into `sink`; returns the days it
    /// could not answer and why (the whole range when the vendor does not know the ticker).
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>>;

    /// The key `name`, or an error naming this source and where to put the key.
    fn key(&self, keys: &Keys, name: &str) -> Result<String> {
        keys.require(name, &format!("news source {}", self.about().name))
    }
}

/// A vendor's view of one fetch: the client, the base URL and the fetch's arguments.
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

impl Ctx<'_> {
    /// True when `url` is on the base URL's host and port (the only place keys go).
    pub fn is_base_host(&self, url: &Url) -> bool {
        url.host_str() == self.base.host_str() && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// A vendor's cursor URL (absolute, on any host, or relative) as a request to the base URL:
    /// its path and query on the base's scheme, host and port (after the base's own path, when
    /// the cursor names another host), as Polygon's official client does, so paging stays
    /// behind `--base-url` and the key goes with it.
    pub fn follow(&self, asked: &Url, next: &str) -> Result<Url> {
        let parsed = self.base.join(next.trim()).map_err(|e| {
            Error::News(format!("GET {asked}: the next-page URL '{next}' is not a URL ({e}); report it to the vendor"))
        })?;
        if self.is_base_host(&parsed) && parsed.scheme() == self.base.scheme() {
            return Ok(parsed);
        }
        let mut url = self.base.clone();
        let prefix = self.base.path().trim_end_matches('/');
        let path = parsed.path();
        if !path.starts_with(&format!("{prefix}/")) {
            url.set_path(&format!("{prefix}{path}"));
        } else {
            url.set_path(path);
        }
        url.set_query(parsed.query());
        Ok(url)
    }

    /// Reads pages from `first` on: GETs a page, hands its `items` to `sink`, then asks `next`
    /// for the following request, until it gives none.
    pub fn pages(
        &self,
        first: Url,
        sink: &mut Sink<'_>,
        items: impl Fn(&Url, &Value) -> Result<Vec<Item>>,
        mut next: impl FnMut(&Url, &Value) -> Result<Option<Url>>,
    ) -> Result<()> {
        let mut url = first;
        loop {
            let answer = self.http.get_json(&url, self.is_base_host(&url))?;
            sink(items(&url, &answer)?)?;
            match next(&url, &answer)? {
                Some(n) => url = n,
                None => return Ok(()),
            }
        }
    }
}

/// The base URL: the argument, else [`BASE_URL_ENV`], else `default`; and whether it was overridden.
pub fn base_url(args: &FetchArgs, default: &str) -> Result<(Url, bool)> {
    let given = args.base_url.clone().or_else(|| std::env::var(BASE_URL_ENV).ok().filter(|v| !v.trim().is_empty()));
    let text = given.clone().unwrap_or_else(|| default.to_string());
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("base URL '{text}' is not a URL ({e}); give e.g. {default}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!("base URL '{text}' must start with https:// (or http://)")));
    }
    Ok((url, given.is_some()))
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase();
        let named = |a: &About| a.name == wanted || a.aliases.contains(&wanted.as_str());
        Source::ALL.iter().copied().find(|src| named(src.about())).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|src| src.name()).collect();
            let (last, rest) = names.split_last().expect("the registry lists sources");
            format!("unknown news source '{s}': use {} or {last}", rest.join(", "))
        })
    }
}

impl Source {
    /// Its names, host, keys and rate.
    pub fn about(self) -> &'static About {
        self.vendor().about()
    }

    /// The name used for its folder and the `source` column.
    pub fn name(self) -> &'static str {
        self.about().name
    }

    /// Requests a minute the source allows on its free or basic plan (our default).
    pub fn default_rate(self) -> f64 {
        self.about().rate
    }

    /// The key names (environment variables / credentials-file keys) the source reads.
    pub fn key_names(self) -> &'static [&'static str] {
        self.about().keys
    }
}
