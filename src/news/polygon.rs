//! Polygon (now Massive) reference news: `GET /v2/reference/news?ticker&published_utc.gte&
//! published_utc.lte&limit&sort=published_utc&order=asc`, paged by `next_url`; the key goes in an
//! `Authorization: Bearer` header, and only to the base URL's host.
//!
//! Time: `published_utc`, the publisher's publication time as Polygon stamps it; there is no
//! revision stamp.

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use super::alpaca::rfc3339;
use super::client::endpoint;
use super::{Ctx, Item, day_start_us};
use crate::error::{Error, Result};

/// Polygon's host (Massive serves the same API).
pub const DEFAULT_BASE: &str = "https://api.polygon.io";
/// The API key.
pub const KEY_ENV: &str = "POLYGON_API_KEY";
/// Articles per page (the maximum).
pub const PAGE: usize = 1000;

/// Fetches one ticker's articles published in `[from, to]`, following `next_url`.
pub fn fetch_ticker(
    ctx: &Ctx,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<()>,
) -> Result<()> {
    let q = [
        ("ticker", sym.to_string()),
        ("published_utc.gte", rfc3339(day_start_us(from))),
        ("published_utc.lte", rfc3339(day_start_us(to + chrono::Duration::days(1)) - 1_000_000)),
        ("limit", PAGE.to_string()),
        ("sort", "published_utc".to_string()),
        ("order", "asc".to_string()),
    ];
    let mut url = endpoint(&ctx.base, "/v2/reference/news", &q);
    loop {
        let same_host =
            url.host_str() == ctx.base.host_str() && url.port_or_known_default() == ctx.base.port_or_known_default();
        let v = ctx.http.get_json(&url, same_host)?;
        let results = v
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Api(format!("GET {url}: no `results` array in the answer")))?;
        sink(results.iter().filter_map(item).collect())?;
        let Some(next) = v.get("next_url").and_then(Value::as_str).filter(|s| !s.is_empty()) else { return Ok(()) };
        url = Url::parse(next).map_err(|e| Error::Api(format!("GET {url}: next_url '{next}' is not a URL ({e})")))?;
    }
}

/// One article; `None` without an id, a title or `published_utc`.
fn item(a: &Value) -> Option<Item> {
    let published =
        a.get("published_utc").and_then(Value::as_str).and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())?;
    Some(Item {
        id: a.get("id")?.as_str()?.to_string(),
        symbols: a
            .get("tickers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        headline: a.get("title").and_then(Value::as_str).filter(|h| !h.trim().is_empty())?.to_string(),
        url: a.get("article_url").and_then(Value::as_str).unwrap_or("").to_string(),
        published_us: published.timestamp_micros(),
        updated_us: None,
    })
}
