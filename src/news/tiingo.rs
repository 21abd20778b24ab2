//! Tiingo news: `GET /tiingo/news?tickers&startDate&endDate&limit&offset&sortBy=publishedDate`
//! with the key in an `Authorization: Token` header; paged by `offset` until a short page.
//!
//! Time: `crawlDate`, when Tiingo added the story to its database, stamped by Tiingo itself at
//! the time. `publishedDate` is the publisher's claim, which Tiingo passes on without control
//! over its accuracy (date-only, wrong-zone or backdated stamps happen), so it is never used: a
//! story is known through Tiingo from its crawl on. Back-filled history is therefore stamped
//! late (never early). Stories without a `crawlDate` are skipped.

use chrono::NaiveDate;
use serde_json::Value;

use super::client::endpoint;
use super::{Ctx, Item};
use crate::error::{Error, Result};

/// Tiingo's host.
pub const DEFAULT_BASE: &str = "https://api.tiingo.com";
/// The API key.
pub const KEY_ENV: &str = "TIINGO_API_KEY";
/// Articles per page.
pub const PAGE: usize = 100;

/// Fetches one ticker's articles published in `[from, to]`, `PAGE` at a time.
pub fn fetch_ticker(
    ctx: &Ctx,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<()>,
) -> Result<()> {
    for offset in (0..).step_by(PAGE) {
        let q = [
            ("tickers", sym.to_ascii_lowercase()),
            ("startDate", from.to_string()),
            ("endDate", to.to_string()),
            ("limit", PAGE.to_string()),
            ("offset", offset.to_string()),
            ("sortBy", "publishedDate".to_string()),
        ];
        let url = endpoint(&ctx.base, "/tiingo/news", &q);
        let v = ctx.http.get_json(&url, true)?;
        let arr = v.as_array().ok_or_else(|| Error::Api(format!("GET {url}: expected an array of articles")))?;
        sink(arr.iter().filter_map(item).collect())?;
        if arr.len() < PAGE {
            break;
        }
    }
    Ok(())
}

/// One article; `None` without an id, a title or a time.
fn item(a: &Value) -> Option<Item> {
    let stamp = |k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_micros())
    };
    let published = stamp("crawlDate")?;
    let id = match a.get("id")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(Item {
        id,
        symbols: a
            .get("tickers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_ascii_uppercase))
            .collect(),
        headline: a.get("title").and_then(Value::as_str).filter(|h| !h.trim().is_empty())?.to_string(),
        url: a.get("url").and_then(Value::as_str).unwrap_or("").to_string(),
        published_us: published,
        updated_us: None,
    })
}
