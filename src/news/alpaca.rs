//! Alpaca news (Benzinga, since 2015): `GET /v1beta1/news` with the key and secret headers,
//! `symbols`, `start`, `end`, `limit` ≤ 50, `sort=asc`, paged by `next_page_token`.
//!
//! Time: `created_at`, when the article was first published; `updated_at` (a revision) is kept as
//! `updated_at` and never moves the headline earlier or later.
//!
//! Revisions after `--to`: Alpaca's `start`/`end` and `sort` ("Sort articles by updated date",
//! Alpaca's OpenAPI) follow `updated_at`, and so does `next_page_token`; an article created on
//! the last day and revised later falls outside `end = --to`. So `end` is asked
//! [`REVISION_DAYS`] past `--to` (at most now): articles revised within that month are found
//! (stamped at `created_at`, never earlier); the few created after `--to` are kept too, with
//! their honest stamp, and a rerun de-duplicates them. A revision later than that is missed.

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use super::client::{endpoint, key_refused};
use super::fields::{day_bounds, id, link, listed, stamp, strings, text};
use super::state::{Gap, OVERLAP_DAYS};
use super::{About, Ctx, Item, Keys, Sink, Vendor};
use crate::error::Result;

/// Alpaca's market-data host.
pub const DEFAULT_BASE: &str = "https://data.alpaca.markets";
/// The key id (as Alpaca's own SDKs name it).
pub const KEY_ENV: &str = "APCA_API_KEY_ID";
/// The secret key.
pub const SECRET_ENV: &str = "APCA_API_SECRET_KEY";
/// Articles per page (Alpaca's maximum).
pub const PAGE: usize = 50;
/// Days past `--to` that `end` reaches, for articles revised after `--to`.
pub const REVISION_DAYS: i64 = 30;

/// Alpaca news: its names, host, keys and free-plan rate (requests a minute).
pub const ABOUT: About = About {
    name: "alpaca",
    aliases: &[],
    base: DEFAULT_BASE,
    keys: &[KEY_ENV, SECRET_ENV],
    rate: 180.0,
    refusal: key_refused,
    overlap_days: OVERLAP_DAYS,
};

/// Alpaca news.
#[derive(Debug, Default)]
pub struct Alpaca;

impl Vendor for Alpaca {
    fn about(&self) -> &'static About {
        &ABOUT
    }

    fn key_headers(&self, keys: &Keys) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![("Apca-Api-Key-Id", self.key(keys, KEY_ENV)?), ("Apca-Api-Secret-Key", self.key(keys, SECRET_ENV)?)])
    }

    /// One symbol's articles updated in `[from, to + REVISION_DAYS]`, following `next_page_token`.
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>> {
        let today = chrono::Utc::now().date_naive();
        let (start, end) = day_bounds(from, (to + chrono::Duration::days(REVISION_DAYS)).min(today.max(to)));
        let request = |token: Option<&str>| {
            let mut q = vec![
                ("symbols", sym.to_string()),
                ("start", start.clone()),
                ("end", end.clone()),
                ("limit", PAGE.to_string()),
                ("sort", "asc".to_string()),
                ("include_content", "false".to_string()),
            ];
            q.extend(token.map(|t| ("page_token", t.to_string())));
            endpoint(&ctx.base, "/v1beta1/news", &q)
        };
        let items = |url: &Url, v: &Value| -> Result<Vec<Item>> {
            Ok(listed(url, v, "news")?.iter().filter_map(item).collect())
        };
        let next = |_: &Url, v: &Value| -> Result<Option<Url>> {
            Ok(v.get("next_page_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(|t| request(Some(t))))
        };
        ctx.pages(request(None), sink, items, next)?;
        Ok(Vec::new())
    }
}

/// One article; `None` when it lacks an id, a headline or `created_at`.
fn item(a: &Value) -> Option<Item> {
    Some(Item {
        id: id(a)?,
        symbols: strings(a, "symbols"),
        headline: text(a, "headline")?,
        url: link(a, "url"),
        published_us: stamp(a, "created_at")?,
        updated_us: stamp(a, "updated_at"),
    })
}
