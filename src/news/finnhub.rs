//! Finnhub company news: `GET /api/v1/company-news?symbol&from&to` with the key in the
//! `X-Finnhub-Token` header (kept out of URLs); no cursor, so the range is asked a week at a
//! time (a week of 100 or more articles is asked again day by day, in case the answer is capped).
//! Free plans: about a year of history, 60 calls a minute.
//!
//! Time: `datetime` (Unix seconds), the article's publication time; Finnhub has no revision stamp.

use chrono::NaiveDate;
use serde_json::Value;

use super::client::endpoint;
use super::{Ctx, Item};
use crate::error::{Error, Result};

/// Finnhub's host.
pub const DEFAULT_BASE: &str = "https://finnhub.io";
/// The API key.
pub const KEY_ENV: &str = "FINNHUB_API_KEY";
/// Days asked per request.
pub const WINDOW_DAYS: i64 = 7;
/// Articles in a week's answer from which the week is asked again day by day.
pub const DENSE: usize = 100;

/// Fetches one symbol's news in `[from, to]`, one week-long window at a time.
pub fn fetch_ticker(
    ctx: &Ctx,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut dyn FnMut(Vec<Item>) -> Result<()>,
) -> Result<()> {
    let mut day = from;
    while day <= to {
        let last = (day + chrono::Duration::days(WINDOW_DAYS - 1)).min(to);
        let q = [("symbol", sym.to_string()), ("from", day.to_string()), ("to", last.to_string())];
        let n = ask(ctx, &q, sym, sink)?;
        if n >= DENSE && last > day {
            // A busy week: ask day by day too, in case the answer was capped (repeats de-duplicate).
            let mut d = day;
            while d <= last {
                ask(ctx, &[("symbol", sym.to_string()), ("from", d.to_string()), ("to", d.to_string())], sym, sink)?;
                d += chrono::Duration::days(1);
            }
        }
        day = last + chrono::Duration::days(1);
    }
    Ok(())
}

/// One request; stores its articles and returns how many came.
fn ask(ctx: &Ctx, q: &[(&str, String)], sym: &str, sink: &mut dyn FnMut(Vec<Item>) -> Result<()>) -> Result<usize> {
    let url = endpoint(&ctx.base, "/api/v1/company-news", q);
    let v = ctx.http.get_json(&url, true)?;
    let arr = v.as_array().ok_or_else(|| Error::Api(format!("GET {url}: expected an array of articles")))?;
    sink(arr.iter().filter_map(|a| item(a, sym)).collect())?;
    Ok(arr.len())
}

/// One article; `None` without an id, a headline or a time.
fn item(a: &Value, sym: &str) -> Option<Item> {
    let id = match a.get("id")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let secs = a.get("datetime")?.as_i64().filter(|s| *s > 0)?;
    let mut symbols: Vec<String> = a
        .get("related")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if symbols.is_empty() {
        symbols.push(sym.to_string());
    }
    Some(Item {
        id,
        symbols,
        headline: a.get("headline").and_then(Value::as_str).filter(|h| !h.trim().is_empty())?.to_string(),
        url: a.get("url").and_then(Value::as_str).unwrap_or("").to_string(),
        published_us: secs * 1_000_000,
        updated_us: None,
    })
}
