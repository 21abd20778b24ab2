//! Polygon (now Massive) reference news: `GET /v2/reference/news?ticker&published_utc.gte&
//! published_utc.lte&limit&sort=published_utc&order=asc`, paged by `next_url`; the key goes in an
//! `Authorization: Bearer` header, and only to the base URL's host. `next_url` names the vendor's
//! host (`api.polygon.io`, or `api.massive.com` in newer examples): only its path and query are
//! followed, on our base URL, as the official client does (`polygon-io/client-python`,
//! `rest/base.py`: `path = decoded["next_url"].replace(self.BASE, "")`).
//!
//! A 403 is a plan limit (`{"status":"NOT_AUTHORIZED", "message":"Your plan doesn't include this
//! data timeframe. ..."}` for dates outside the plan): those days are recorded as not available.
//!
//! Time: `published_utc`, the publisher's publication time as Polygon stamps it; there is no
//! revision stamp.

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use super::client::{Refusal, endpoint};
use super::fields::{day_bounds, link, listed, stamp, strings, text};
use super::state::{Gap, OVERLAP_DAYS};
use super::{About, Ctx, Item, Keys, Sink, Vendor};
use crate::error::Result;

/// Polygon's host (Massive serves the same API).
pub const DEFAULT_BASE: &str = "https://api.polygon.io";
/// The API key.
pub const KEY_ENV: &str = "POLYGON_API_KEY";
/// Articles per page (the maximum).
pub const PAGE: usize = 1000;

/// Polygon (Massive) reference news: its names, host, keys and free-plan rate (requests a minute).
pub const ABOUT: About = About {
    name: "polygon",
    aliases: &["massive"],
    base: DEFAULT_BASE,
    keys: &[KEY_ENV],
    rate: 5.0,
    refusal,
    overlap_days: OVERLAP_DAYS,
};

/// Polygon (Massive) reference news.
#[derive(Debug, Default)]
pub struct Polygon;

impl Vendor for Polygon {
    fn about(&self) -> &'static About {
        &ABOUT
    }

    fn key_headers(&self, keys: &Keys) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![("Authorization", format!("Bearer {}", self.key(keys, KEY_ENV)?))])
    }

    /// One ticker's articles published in `[from, to]`, following `next_url`.
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>> {
        let (start, end) = day_bounds(from, to);
        let q = [
            ("ticker", sym.to_string()),
            ("published_utc.gte", start),
            ("published_utc.lte", end),
            ("limit", PAGE.to_string()),
            ("sort", "published_utc".to_string()),
            ("order", "asc".to_string()),
        ];
        let items = |url: &Url, v: &Value| -> Result<Vec<Item>> {
            Ok(listed(url, v, "results")?.iter().filter_map(item).collect())
        };
        let next = |url: &Url, v: &Value| next_url(ctx, url, v);
        ctx.pages(endpoint(&ctx.base, "/v2/reference/news", &q), sink, items, next)?;
        Ok(Vec::new())
    }
}

/// Polygon's 401 is a refused key; its 403 a plan limit (dates or data outside the plan).
fn refusal(status: u16, _body: &str) -> Refusal {
    if status == 403 { Refusal::PlanLimit } else { Refusal::BadKey }
}

/// The answer's `next_url`, if any, as a request to our base URL.
fn next_url(ctx: &Ctx, url: &Url, v: &Value) -> Result<Option<Url>> {
    let Some(next) = v.get("next_url").and_then(Value::as_str).filter(|s| !s.is_empty()) else { return Ok(None) };
    ctx.follow(url, next).map(Some)
}

/// One article; `None` without an id, a title or `published_utc`.
fn item(a: &Value) -> Option<Item> {
    Some(Item {
        id: a.get("id")?.as_str()?.to_string(),
        symbols: strings(a, "tickers"),
        headline: text(a, "title")?,
        url: link(a, "article_url"),
        published_us: stamp(a, "published_utc")?,
        updated_us: None,
    })
}
