//! Alpaca news (Benzinga, since 2015): `GET /v1beta1/news` with the key and secret headers,
//! `symbols`, `start`, `end`, `limit` ≤ 50, `sort=asc`, paged by `next_page_token`.
//!
//! Time: `created_at`, when the article was first published; `updated_at` (a revision) is kept as
//! `updated_at` and never moves the headline earlier or later.

use chrono::NaiveDate;
use serde_json::Value;

use super::client::endpoint;
use super::{Ctx, Item, day_start_us};
use crate::error::{Error, Result};

/// Alpaca's market-data host.
pub const DEFAULT_BASE: &str = "https://data.alpaca.markets";
/// The key id (as Alpaca's own SDKs name it).
pub const KEY_ENV: &str = "APCA_API_KEY_ID";
/// The secret key.
pub const SECRET_ENV: &str = "APCA_API_SECRET_KEY";
/// Articles per page (Alpaca's maximum).
pub const PAGE: usize = 50;

/// Fetches one symbol's articles created in `[from, to]`, page by page.
pub fn fetch_ticker(
    ctx: &Ctx,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<()>,
) -> Result<()> {
    let (start, end) = (rfc3339(day_start_us(from)), rfc3339(day_start_us(to + chrono::Duration::days(1)) - 1_000_000));
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![
            ("symbols", sym.to_string()),
            ("start", start.clone()),
            ("end", end.clone()),
            ("limit", PAGE.to_string()),
            ("sort", "asc".to_string()),
            ("include_content", "false".to_string()),
        ];
        if let Some(t) = &token {
            q.push(("page_token", t.clone()));
        }
        let url = endpoint(&ctx.base, "/v1beta1/news", &q);
        let v = ctx.http.get_json(&url, true)?;
        let news = v
            .get("news")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Api(format!("GET {url}: no `news` array in the answer")))?;
        sink(news.iter().filter_map(item).collect())?;
        token = v.get("next_page_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(());
        }
    }
}

/// One article; `None` when it lacks an id, a headline or `created_at`.
fn item(a: &Value) -> Option<Item> {
    let id = match a.get("id")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let stamp = |k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_micros())
    };
    Some(Item {
        id,
        symbols: a
            .get("symbols")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        headline: a.get("headline").and_then(Value::as_str).filter(|h| !h.trim().is_empty())?.to_string(),
        url: a.get("url").and_then(Value::as_str).unwrap_or("").to_string(),
        published_us: stamp("created_at")?,
        updated_us: stamp("updated_at"),
    })
}

/// RFC 3339 with a `Z`, to the second.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}
