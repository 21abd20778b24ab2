//! Tiingo news: `GET /tiingo/news?tickers&startDate&endDate&limit&offset&sortBy=publishedDate`
//! with the key in an `Authorization: Token` header; paged by `offset` until a short page.
//!
//! Time: `crawlDate`, when Tiingo added the story to its database, stamped by Tiingo itself at
//! the time. `publishedDate` is the publisher's claim, which Tiingo passes on without control
//! over its accuracy (date-only, wrong-zone or backdated stamps happen), so it is never used: a
//! story is known through Tiingo from its crawl on. Back-filled history is therefore stamped
//! late (never early). Stories without a `crawlDate` are skipped.
//!
//! Back-fills: `startDate`/`endDate` filter on `publishedDate`, so a story crawled after a fetch
//! whose `publishedDate` lies in days already covered would never be asked again. A rerun
//! therefore re-asks the last [`BACKFILL_DAYS`] of the covered days (Tiingo documents no bound on
//! how late it crawls; a month is our choice), and the store de-duplicates by id.
//!
//! Limits (Tiingo's pricing page, free plan): 50 requests an hour and 1,000 a day; the default
//! rate, 0.69 a minute, stays under both. Pages of 1,000, the documented maximum `limit`.

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use super::client::{endpoint, key_refused};
use super::fields::{articles, id, link, stamp, strings, text};
use super::state::Gap;
use super::{About, Ctx, Item, Keys, Sink, Vendor};
use crate::error::Result;

/// Tiingo's host.
pub const DEFAULT_BASE: &str = "https://api.tiingo.com";
/// The API key.
pub const KEY_ENV: &str = "TIINGO_API_KEY";
/// Articles per page (the documented maximum).
pub const PAGE: usize = 1000;
/// Covered days re-asked by a rerun, for stories Tiingo crawls after their `publishedDate`.
pub const BACKFILL_DAYS: i64 = 30;

/// Tiingo news: its names, host, keys and free-plan rate (requests a minute).
pub const ABOUT: About = About {
    name: "tiingo",
    aliases: &[],
    base: DEFAULT_BASE,
    keys: &[KEY_ENV],
    rate: 0.69,
    refusal: key_refused,
    overlap_days: BACKFILL_DAYS,
};

/// Tiingo news.
#[derive(Debug, Default)]
pub struct Tiingo;

impl Vendor for Tiingo {
    fn about(&self) -> &'static About {
        &ABOUT
    }

    fn key_headers(&self, keys: &Keys) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![("Authorization", format!("Token {}", self.key(keys, KEY_ENV)?))])
    }

    /// One ticker's articles published in `[from, to]`, `PAGE` at a time until a short page.
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>> {
        let request = |offset: usize| {
            let q = [
                ("tickers", sym.to_ascii_lowercase()),
                ("startDate", from.to_string()),
                ("endDate", to.to_string()),
                ("limit", PAGE.to_string()),
                ("offset", offset.to_string()),
                ("sortBy", "publishedDate".to_string()),
            ];
            endpoint(&ctx.base, "/tiingo/news", &q)
        };
        let items =
            |url: &Url, v: &Value| -> Result<Vec<Item>> { Ok(articles(url, v)?.iter().filter_map(item).collect()) };
        let mut offset = 0;
        let next = |url: &Url, v: &Value| -> Result<Option<Url>> {
            offset += PAGE;
            Ok((articles(url, v)?.len() >= PAGE).then(|| request(offset)))
        };
        ctx.pages(request(0), sink, items, next)?;
        Ok(Vec::new())
    }
}

/// One article; `None` without an id, a title or a time.
fn item(a: &Value) -> Option<Item> {
    Some(Item {
        id: id(a)?,
        symbols: strings(a, "tickers").iter().map(|s| s.to_ascii_uppercase()).collect(),
        headline: text(a, "title")?,
        url: link(a, "url"),
        published_us: stamp(a, "crawlDate")?,
        updated_us: None,
    })
}
