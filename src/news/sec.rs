//! SEC EDGAR filings as headlines: `data.sec.gov/submissions/CIK##########.json` (`filings.recent`
//! and the older pages it lists in `filings.files`), ticker → CIK from SEC's
//! `company_tickers.json`. No key, but SEC requires a User-Agent naming the user and an e-mail
//! address, and at most 10 requests a second; a 403 is SEC's throttle (waited out, then retried).
//!
//! Time: `acceptanceDateTime`, the instant EDGAR accepted the filing (it is disseminated then).
//! The submissions JSON writes it with a `Z`, but for some filers that clock is New York time with
//! the `Z` appended; reading the clock as New York time is never earlier than the truth (at worst
//! 4–5 hours late for filers whose value really is UTC), so that is how it is read. A filing with
//! no acceptance time gets the end of its `filingDate` in New York.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::client::{Refusal, endpoint};
use super::fields::strings;
use super::state::{Gap, OVERLAP_DAYS};
use super::{About, Ctx, Item, Keys, Sink, Vendor};
use crate::data::time::{Zone, days_from_date};
use crate::error::{Error, Result};

/// data.sec.gov, where the submissions live.
pub const DEFAULT_BASE: &str = "https://data.sec.gov";
/// SEC's ticker ↔ CIK file.
pub const TICKERS_URL: &str = "https://www.sec.gov/files/company_tickers.json";
/// The User-Agent SEC asks for: a name and an e-mail address.
pub const USER_AGENT_ENV: &str = "SEC_USER_AGENT";
/// Forms kept by default: current reports, periodic reports and foreign issuers' equivalents.
pub const DEFAULT_FORMS: &[&str] = &["8-K", "8-K/A", "10-K", "10-K/A", "10-Q", "10-Q/A", "6-K", "20-F", "40-F"];

/// SEC EDGAR: its names, host, keys and free-plan rate (requests a minute).
pub const ABOUT: About = About {
    name: "sec",
    aliases: &["edgar", "sec-edgar"],
    base: DEFAULT_BASE,
    keys: &[USER_AGENT_ENV],
    rate: 480.0,
    refusal,
    overlap_days: OVERLAP_DAYS,
};

/// SEC EDGAR filings; `prepare` reads SEC's ticker → CIK list once per fetch.
#[derive(Debug, Default)]
pub struct Sec {
    ciks: HashMap<String, u64>,
}

impl Vendor for Sec {
    fn about(&self) -> &'static About {
        &ABOUT
    }

    fn user_agent(&self, keys: &Keys) -> Result<String> {
        user_agent(keys)
    }

    fn key_headers(&self, _keys: &Keys) -> Result<Vec<(&'static str, String)>> {
        Ok(Vec::new())
    }

    fn prepare(&mut self, ctx: &Ctx) -> Result<()> {
        self.ciks = cik_map(ctx)?;
        Ok(())
    }

    /// The company's filings, when SEC's list gives the symbol a CIK.
    fn fetch_ticker(
        &self,
        ctx: &Ctx,
        sym: &str,
        from: NaiveDate,
        to: NaiveDate,
        sink: &mut Sink<'_>,
    ) -> Result<Vec<Gap>> {
        let Some(cik) = cik_of(&self.ciks, sym) else {
            return Ok(vec![Gap::unknown(from, to, "SEC's company_tickers.json gives it no CIK")]);
        };
        fetch_company(ctx, cik, sym, from, to, sink)?;
        Ok(Vec::new())
    }
}

/// SEC's 403 is a throttle: after more than 10 requests a second (or from a tool that does not
/// declare itself) SEC answers 403 and blocks the address for about ten minutes (SEC, "Accessing
/// EDGAR Data": "Current max request rate: 10 requests/second"). It is waited out and retried.
fn refusal(_status: u16, _body: &str) -> Refusal {
    Refusal::Throttle
}

/// The declared User-Agent, checked for an e-mail address as SEC's fair-access rules ask.
pub fn user_agent(keys: &Keys) -> Result<String> {
    let ua = keys.require(USER_AGENT_ENV, "SEC EDGAR (a User-Agent naming you, e.g. \"Jane Doe jane@example.com\")")?;
    if !ua.contains('@') || ua.split_whitespace().count() < 2 {
        return Err(Error::Config(format!(
            "{USER_AGENT_ENV} must name you and give an e-mail address, e.g. \"Jane Doe jane@example.com\" (SEC refuses anonymous clients)"
        )));
    }
    Ok(ua)
}

/// Ticker (upper case, SEC's spelling: `BRK-B`) → CIK.
pub fn cik_map(ctx: &Ctx) -> Result<HashMap<String, u64>> {
    let url = if ctx.overridden {
        endpoint(&ctx.base, "/files/company_tickers.json", &[])
    } else {
        reqwest::Url::parse(TICKERS_URL).expect("a valid URL")
    };
    let v = ctx.http.get_json(&url, false)?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::News(format!("GET {url}: expected an object of {{cik_str, ticker, title}}")))?;
    Ok(obj
        .values()
        .filter_map(|e| Some((e.get("ticker")?.as_str()?.to_ascii_uppercase(), e.get("cik_str")?.as_u64()?)))
        .collect())
}

/// The CIK of a symbol, trying SEC's class spelling (`BRK.B`, `BRK/B` → `BRK-B`).
pub fn cik_of(ciks: &HashMap<String, u64>, sym: &str) -> Option<u64> {
    let s = sym.trim().to_ascii_uppercase();
    ciks.get(&s).or_else(|| ciks.get(&s.replace(['.', '/'], "-"))).copied()
}

/// Fetches one company's filings accepted in `[from, to]`: the recent page, then each older page
/// whose dates overlap.
pub fn fetch_company(
    ctx: &Ctx,
    cik: u64,
    sym: &str,
    from: NaiveDate,
    to: NaiveDate,
    sink: &mut Sink<'_>,
) -> Result<()> {
    let url = endpoint(&ctx.base, &format!("/submissions/CIK{cik:010}.json"), &[]);
    let v = ctx.http.get_json(&url, false)?;
    let name = v.get("name").and_then(Value::as_str).unwrap_or(sym).to_string();
    let mut symbols: Vec<String> = strings(&v, "tickers").iter().map(|t| t.to_ascii_uppercase()).collect();
    if !symbols.iter().any(|s| s == sym) {
        symbols.insert(0, sym.to_string());
    }
    let company = Company { cik, name, symbols };
    let recent = v
        .pointer("/filings/recent")
        .ok_or_else(|| Error::News(format!("GET {url}: no filings.recent in the answer")))?;
    sink(company.items(ctx, recent, from, to))?;
    for f in v.pointer("/filings/files").and_then(Value::as_array).into_iter().flatten() {
        let day =
            |k: &str| f.get(k).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        let overlaps = match (day("filingFrom"), day("filingTo")) {
            (Some(a), Some(b)) => a <= to && b >= from,
            _ => true,
        };
        let Some(file) = f.get("name").and_then(Value::as_str).filter(|_| overlaps) else { continue };
        let page = ctx.http.get_json(&endpoint(&ctx.base, &format!("/submissions/{file}"), &[]), false)?;
        sink(company.items(ctx, &page, from, to))?;
    }
    Ok(())
}

struct Company {
    cik: u64,
    name: String,
    symbols: Vec<String>,
}

impl Company {
    /// The filings of one page (parallel arrays) filed within a day of `[from, to]`.
    fn items(&self, ctx: &Ctx, page: &Value, from: NaiveDate, to: NaiveDate) -> Vec<Item> {
        let col = |k: &str| -> Vec<String> {
            page.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect())
                .unwrap_or_default()
        };
        let (acc, filed, accepted, form, items, doc, desc) = (
            col("accessionNumber"),
            col("filingDate"),
            col("acceptanceDateTime"),
            col("form"),
            col("items"),
            col("primaryDocument"),
            col("primaryDocDescription"),
        );
        let get = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
        let forms = ctx.args.forms.clone().unwrap_or_else(|| DEFAULT_FORMS.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        for i in 0..acc.len() {
            let f = get(&form, i);
            if !forms.is_empty() && !forms.iter().any(|k| k.eq_ignore_ascii_case(&f)) {
                continue;
            }
            let Ok(day) = NaiveDate::parse_from_str(&get(&filed, i), "%Y-%m-%d") else { continue };
            if day < from - chrono::Duration::days(1) || day > to + chrono::Duration::days(1) {
                continue;
            }
            let published_us =
                accepted_us(&get(&accepted, i)).unwrap_or_else(|| new_york().end_of_day_us(days_from_date(day)));
            let a = get(&acc, i);
            let url =
                format!("https://www.sec.gov/Archives/edgar/data/{}/{}/{}", self.cik, a.replace('-', ""), get(&doc, i));
            out.push(Item {
                id: a,
                symbols: self.symbols.clone(),
                headline: headline(&self.name, &f, &get(&items, i), &get(&desc, i)),
                url,
                published_us,
                updated_us: None,
            });
        }
        out
    }
}

fn new_york() -> Zone {
    Zone::Named(chrono_tz::America::New_York)
}

/// `acceptanceDateTime`'s clock read as New York time (see the module's note), UTC microseconds.
pub fn accepted_us(s: &str) -> Option<i64> {
    let t = s.trim().trim_end_matches('Z');
    let naive =
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"].iter().find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())?;
    new_york().to_utc_us(naive).ok()
}

/// "Company: 8-K — Results of Operations and Financial Condition; Financial Statements and Exhibits".
pub fn headline(company: &str, form: &str, items: &str, description: &str) -> String {
    let named: Vec<String> = items
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|c| item_name(c).map_or_else(|| format!("Item {c}"), str::to_string))
        .collect();
    let what = if !named.is_empty() {
        named.join("; ")
    } else if !description.trim().is_empty() && !description.trim().eq_ignore_ascii_case(form) {
        description.trim().to_string()
    } else {
        String::new()
    };
    if what.is_empty() { format!("{company}: {form}") } else { format!("{company}: {form} — {what}") }
}

/// The title of an 8-K item.
pub fn item_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "1.01" => "Entry into a Material Definitive Agreement",
        "1.02" => "Termination of a Material Definitive Agreement",
        "1.03" => "Bankruptcy or Receivership",
        "1.04" => "Mine Safety Reporting",
        "1.05" => "Material Cybersecurity Incidents",
        "2.01" => "Completion of Acquisition or Disposition of Assets",
        "2.02" => "Results of Operations and Financial Condition",
        "2.03" => "Creation of a Direct Financial Obligation",
        "2.04" => "Triggering Events That Accelerate or Increase a Direct Financial Obligation",
        "2.05" => "Costs Associated with Exit or Disposal Activities",
        "2.06" => "Material Impairments",
        "3.01" => "Notice of Delisting or Failure to Satisfy a Continued Listing Rule",
        "3.02" => "Unregistered Sales of Equity Securities",
        "3.03" => "Material Modification to Rights of Security Holders",
        "4.01" => "Changes in Registrant's Certifying Accountant",
        "4.02" => "Non-Reliance on Previously Issued Financial Statements",
        "5.01" => "Changes in Control of Registrant",
        "5.02" => "Departure or Appointment of Directors or Officers",
        "5.03" => "Amendments to Articles of Incorporation or Bylaws",
        "5.04" => "Temporary Suspension of Trading Under Employee Benefit Plans",
        "5.05" => "Amendments to the Code of Ethics",
        "5.06" => "Change in Shell Company Status",
        "5.07" => "Submission of Matters to a Vote of Security Holders",
        "5.08" => "Shareholder Director Nominations",
        "7.01" => "Regulation FD Disclosure",
        "8.01" => "Other Events",
        "9.01" => "Financial Statements and Exhibits",
        _ => return None,
    })
}
