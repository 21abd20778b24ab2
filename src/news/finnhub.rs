//! Finnhub company news: `GET /api/v1/company-news?symbol&from&to` with the key in the
//! `X-Finnhub-Token` header (kept out of URLs); no cursor, so the range is asked a week at a
//! time (a week of 100 or more articles is asked again day by day, in case the answer is capped).
//! Free plans: about a year of history, 60 calls a minute; company news covers North American
//! companies only (Finnhub's API page). Neither limit is an error: the answer is just empty. So
//! empty windows are recorded as gaps, not covered, where the plan may be why: a symbol with no
//! article in any window is unknown to Finnhub (or outside North America), and empty windows
//! older than a year before the first article are not available to a free key. A 403 (a premium
//! endpoint or range) is a plan limit too.
//!
//! Time: `datetime` (Unix seconds), the article's publication time; Finnhub has no revision stamp.

use chrono::NaiveDate;
use serde_json::Value;

use super::client::{Refusal, endpoint};
use super::fields::{articles, id, link, text};
use super::state::{Gap, OVERLAP_DAYS};
use super::{About, Ctx, Item, Keys, Sink, Vendor};
use crate::error::Result;

/// Finnhub's host.
pub const DEFAULT_BASE: &str = "https://finnhub.io";
/// The API key.
pub const KEY_ENV: &str = "FINNHUB_API_KEY";
/// Days asked per request.
pub const WINDOW_DAYS: i64 = 7;
/// Articles in a week's answer from which the week is asked again day by day.
pub const DENSE: usize = 100;
/// Days of history a free key sees ("1 year of historical news" on Finnhub's pricing page).
pub const FREE_HISTORY_DAYS: i64 = 365;

/// Finnhub company news: its names, host, keys and free-plan rate (requests a minute).
pub const ABOUT: About = About {
    name: "finnhub",
    aliases: &[],
    base: DEFAULT_BASE,
    keys: &[KEY_ENV],
    rate: 55.0,
    refusal,
    overlap_days: OVERLAP_DAYS,
};

/// Finnhub company news.
#[derive(Debug, Default)]
pub struct Finnhub;

impl Vendor for Finnhub {
    fn about(&self) -> &'static About {
        &ABOUT
    }

    fn key_headers(&self, keys: &Keys) -> Result<Vec<(&'static str, String)>> {
        Ok(vec![("X-Finnhub-Token", self.key(keys, KEY_ENV)?)])
    }

    /// One symbol's news in `[from, to]`, one week-long window at a time; empty windows the plan
    /// may explain are returned as gaps.
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>> {
        let mut empty = Vec::new();
        let mut first_found = None;
        let mut day = from;
        while day <= to {
            let last = (day + chrono::Duration::days(WINDOW_DAYS - 1)).min(to);
            let n = ask(ctx, sym, day, last, sink)?;
            if n >= DENSE && last > day {
                // A busy week: ask day by day too, in case the answer was capped (repeats de-duplicate).
                let mut d = day;
                while d <= last {
                    ask(ctx, sym, d, d, sink)?;
                    d += chrono::Duration::days(1);
                }
            }
            if n == 0 {
                empty.push((day, last));
            } else {
                first_found = first_found.or(Some(day));
            }
            day = last + chrono::Duration::days(1);
        }
        Ok(gaps(sym, from, to, first_found, &empty, chrono::Utc::now().date_naive()))
    }
}

/// Finnhub's 401 is a refused key; its 403 a plan limit (a premium endpoint or range).
fn refusal(status: u16, _body: &str) -> Refusal {
    if status == 403 { Refusal::PlanLimit } else { Refusal::BadKey }
}

/// The gaps of one symbol's fetch: all of `[from, to]` when no window had an article, else the
/// empty windows before the first article that end more than a free plan's year before `today`.
pub fn gaps(
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    first_found: Option<NaiveDate>,
    empty: &[(NaiveDate, NaiveDate)],
    today: NaiveDate,
) -> Vec<Gap> {
    let Some(first) = first_found else {
        return vec![Gap::unknown(
            from,
            to,
            format!(
                "Finnhub answered no article for {sym} in any window: its company news covers North American companies only, so the symbol may be outside it or unknown"
            ),
        )];
    };
    let horizon = today - chrono::Duration::days(FREE_HISTORY_DAYS);
    let old: Vec<&(NaiveDate, NaiveDate)> = empty.iter().filter(|(a, b)| *a < first && *b < horizon).collect();
    let (Some(a), Some(b)) = (old.first(), old.last()) else { return Vec::new() };
    vec![Gap::not_available(
        a.0,
        b.1,
        format!(
            "empty before {sym}'s first article ({first}) and older than a year (a free key's history, before {horizon})"
        ),
    )]
}

/// One request for the days `[from, to]`; stores its articles and returns how many came.
fn ask(ctx: &Ctx, sym: &str, from: NaiveDate, to: NaiveDate, sink: &mut Sink<'_>) -> Result<usize> {
    let q = [("symbol", sym.to_string()), ("from", from.to_string()), ("to", to.to_string())];
    let url = endpoint(&ctx.base, "/api/v1/company-news", &q);
    let v = ctx.http.get_json(&url, true)?;
    let arr = articles(&url, &v)?;
    sink(arr.iter().filter_map(|a| item(a, sym)).collect())?;
    Ok(arr.len())
}

/// One article; `None` without an id, a headline or a time.
fn item(a: &Value, sym: &str) -> Option<Item> {
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
        id: id(a)?,
        symbols,
        headline: text(a, "headline")?,
        url: link(a, "url"),
        published_us: secs * 1_000_000,
        updated_us: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::news::GapKind;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn news_finnhub_gaps_only_where_the_plan_may_explain_the_silence() {
        let today = d("2026-12-06");
        let (from, to) = (d("2025-01-01"), d("2025-12-31"));
        let empty = [
            (d("2025-01-01"), d("2025-01-07")),
            (d("2025-01-08"), d("2025-01-14")),
            (d("2025-12-01"), d("2025-12-07")),
        ];
        let g = gaps("AAPL", from, to, Some(d("2025-01-15")), &empty, today);
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].from, g[0].to, g[0].kind), (d("2025-01-01"), d("2025-01-14"), GapKind::NotAvailable));
        // Within the year, an empty week before the first article is a quiet week, not a gap.
        assert!(gaps("AAPL", from, to, Some(d("2025-01-15")), &empty, d("2025-06-01")).is_empty());
        let none = gaps("VOD.L", from, to, None, &empty, today);
        assert_eq!((none[0].from, none[0].to, none[0].kind), (from, to, GapKind::Unknown));
        assert!(none[0].why.contains("North American"));
    }
}
