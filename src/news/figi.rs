//! `signalkit tickers map`: vendor symbols → the universe's keys (`numerai_ticker` or legacy
//! `bloomberg_ticker`, and `composite_figi`) through OpenFIGI's mapping API, written as a ticker
//! map that `news fetch --ticker-map`, `join --ticker-map` and `ask --names` read.
//!
//! OpenFIGI (`POST /v3/mapping`, openfigi.com/api/documentation): the body is a JSON array of
//! jobs (`{"idType":"TICKER","idValue":"IBM","exchCode":"US"}`); the answer is an array of the
//! same length, in the same order, each `{"data":[{figi, compositeFIGI, ticker, exchCode, name,
//! securityType, ...}]}`, `{"warning":"No identifier found."}` or `{"error":"..."}`. Without a key
//! at most 25 requests a minute of at most 10 jobs; with `X-OPENFIGI-APIKEY` 25 requests per
//! 6 seconds of at most 100 jobs. A 429 is waited out (its `Retry-After`, else backoff).
//!
//! Every answer (data or "No identifier found.") is cached in `<out stem>.openfigi.json` beside
//! the output after each request, so a rerun (or a killed run) asks only for symbols not yet
//! answered; an `error` answer is not cached and is asked again. Every symbol that does not end
//! in a universe key is listed in the summary and in `<out stem>.unmapped.csv`, with why.
//!
//! Symbols are sent in OpenFIGI's spelling of US share classes (`BRK.B`, `BRK-B` → `BRK/B`);
//! the map keeps the vendor's spelling. A symbol matches the universe by its composite FIGI when
//! the universe has `composite_figi`, else by `ticker exchCode` (`BRK/B US`) against the
//! universe's ticker column.

use reqwest::Url;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Keys;
use super::client::{NewsHttp, Speaker, endpoint, key_refused};
use crate::data::atomic::{write_atomic, write_bytes_atomic};
use crate::data::{find_column, missing_column, read_table, str_values};
use crate::error::{Error, Result};
use crate::http::RetryPolicy;

/// OpenFIGI's API host.
pub const DEFAULT_BASE: &str = "https://api.openfigi.com";
/// The key variable (optional: it raises the limits).
pub const KEY_ENV: &str = "OPENFIGI_API_KEY";
/// The header the key goes in.
pub const KEY_HEADER: &str = "X-OPENFIGI-APIKEY";
/// OpenFIGI's answer for a symbol it does not know.
pub const NO_IDENTIFIER: &str = "No identifier found.";
/// Keyless limits: requests a minute, jobs a request.
pub const KEYLESS: (f64, usize) = (25.0, 10);
/// Limits with a key: requests a minute (25 per 6 seconds), jobs a request.
pub const KEYED: (f64, usize) = (250.0, 100);

/// What `tickers map` does.
#[derive(Debug, Clone)]
pub struct MapArgs {
    /// Numerai's universe (parquet/CSV with numerai_ticker and/or composite_figi, or bloomberg_ticker).
    pub universe: PathBuf,
    /// The map CSV to write.
    pub out: PathBuf,
    /// Vendor symbols; `None` = the universe's tickers on `exch_code` (their symbol part).
    pub tickers: Option<Vec<String>>,
    /// OpenFIGI exchange code the symbols trade under (`US`: the composite of US exchanges).
    pub exch_code: String,
    /// Keys (`OPENFIGI_API_KEY` optional; `SEC_USER_AGENT` with `sec`).
    pub keys: Keys,
    /// Base URL for OpenFIGI and SEC (a proxy or test server) instead of theirs.
    pub base_url: Option<String>,
    /// Requests a minute; `None` = OpenFIGI's documented limit for the key (or none).
    pub rate_per_minute: Option<f64>,
    /// Retries of 429, 5xx and dropped connections.
    pub retry: RetryPolicy,
    /// Add CIKs and names from SEC's company_tickers.json (US symbols).
    pub sec: bool,
}

/// What a map run did.
#[derive(Debug, Clone, Default)]
pub struct MapSummary {
    /// Vendor symbols considered.
    pub symbols: usize,
    /// Answered from the cache (not asked again).
    pub cached: usize,
    /// Requests sent (retries included) and the retries among them.
    pub requests: u64,
    /// Retries after 429, 5xx or a dropped connection.
    pub retries: u64,
    /// Symbols mapped to a universe key.
    pub mapped: usize,
    /// (symbol, why) for every symbol not mapped.
    pub unmapped: Vec<(String, String)>,
    /// Universe keys no symbol maps to.
    pub universe_left: usize,
    /// Files written.
    pub out: PathBuf,
    /// The unmapped list.
    pub unmapped_file: PathBuf,
    /// The answer cache.
    pub cache_file: PathBuf,
}

impl std::fmt::Display for MapSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tickers map: {} symbol(s), {} answered from the cache, {} request(s) ({} retried)",
            self.symbols, self.cached, self.requests, self.retries
        )?;
        writeln!(f, "  mapped: {} → {}", self.mapped, self.out.display())?;
        writeln!(f, "  unmapped: {} → {}", self.unmapped.len(), self.unmapped_file.display())?;
        for (s, why) in &self.unmapped {
            writeln!(f, "    {s}: {why}")?;
        }
        writeln!(f, "  universe keys no symbol maps to: {}", self.universe_left)?;
        write!(f, "  OpenFIGI answers cached in {}", self.cache_file.display())
    }
}

/// The universe's keys.
struct Universe {
    /// The ticker column's name (numerai_ticker or bloomberg_ticker), if any.
    ticker_col: Option<String>,
    /// Distinct tickers (upper case).
    tickers: HashSet<String>,
    /// composite FIGI → ticker (or the FIGI itself when the universe has no ticker column).
    by_figi: HashMap<String, String>,
    /// ticker → composite FIGI.
    figi_of: HashMap<String, String>,
}

fn read_universe(path: &Path) -> Result<Universe> {
    let df = read_table(path, true)?;
    let ticker_col = find_column(&df, &["numerai_ticker", "bloomberg_ticker"]);
    let figi_col = find_column(&df, &["composite_figi"]);
    if ticker_col.is_none() && figi_col.is_none() {
        return Err(missing_column(
            path,
            &df,
            &["numerai_ticker", "composite_figi", "bloomberg_ticker"],
            "give Numerai's universe (e.g. signals/v2.1/live.parquet) with numerai_ticker and/or composite_figi",
        ));
    }
    let n = df.height();
    let tick = ticker_col.as_deref().map(|c| str_values(path, &df, c)).transpose()?;
    let figi = figi_col.as_deref().map(|c| str_values(path, &df, c)).transpose()?;
    let mut u = Universe { ticker_col, tickers: HashSet::new(), by_figi: HashMap::new(), figi_of: HashMap::new() };
    let clean = |v: Option<&str>| v.map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty());
    for i in 0..n {
        let t = tick.as_ref().and_then(|c| clean(c.get(i)));
        let f = figi.as_ref().and_then(|c| clean(c.get(i)));
        if let Some(t) = &t {
            u.tickers.insert(t.clone());
        }
        if let Some(f) = f {
            let key = t.clone().unwrap_or_else(|| f.clone());
            u.by_figi.entry(f.clone()).or_insert(key);
            if let Some(t) = t {
                u.figi_of.entry(t).or_insert(f);
            }
        }
    }
    if u.tickers.is_empty() && u.by_figi.is_empty() {
        return Err(Error::input(
            path,
            "the universe has no tickers (every key cell is empty): give the live universe file",
        ));
    }
    Ok(u)
}

/// OpenFIGI's spelling of a US share class: `BRK.B` and `BRK-B` → `BRK/B`.
pub fn figi_symbol(sym: &str) -> String {
    sym.trim().to_ascii_uppercase().replace(['.', '-'], "/")
}

/// The cache key of a job.
fn cache_key(sym: &str, exch: &str) -> String {
    format!("{}|{exch}", figi_symbol(sym))
}

/// Maps the symbols, writes the map, the unmapped list and the cache.
pub fn map_tickers(args: &MapArgs) -> Result<MapSummary> {
    let universe = read_universe(&args.universe)?;
    let exch = args.exch_code.trim().to_ascii_uppercase();
    if exch.is_empty() {
        return Err(Error::Config("--exch-code is empty: give an OpenFIGI exchange code such as US".into()));
    }
    let symbols: Vec<String> = match &args.tickers {
        Some(t) => t.clone(),
        None => universe_symbols(&universe, &exch, &args.universe)?,
    };
    if symbols.is_empty() {
        return Err(Error::Config(format!(
            "no symbols to map: the universe {} has no ticker ending in \" {exch}\"; give --tickers or another --exch-code",
            args.universe.display()
        )));
    }
    let (stem, dir) = stem_dir(&args.out)?;
    let cache_file = dir.join(format!("{stem}.openfigi.json"));
    let unmapped_file = dir.join(format!("{stem}.unmapped.csv"));
    let mut cache = read_cache(&cache_file)?;
    let mut summary =
        MapSummary { symbols: symbols.len(), out: args.out.clone(), unmapped_file, cache_file, ..Default::default() };

    // Ask OpenFIGI for every symbol not answered yet, in batches.
    let mut todo: Vec<String> = Vec::new();
    let mut asked: HashSet<String> = HashSet::new();
    for s in &symbols {
        let k = cache_key(s, &exch);
        if cache.contains_key(&k) {
            summary.cached += 1;
        } else if asked.insert(k) {
            todo.push(s.clone());
        }
    }
    let mut errors: HashMap<String, String> = HashMap::new();
    if !todo.is_empty() {
        let key = args.keys.get(KEY_ENV);
        let (rate, batch) = if key.is_some() { KEYED } else { KEYLESS };
        let client = Figi::new(args, key, args.rate_per_minute.unwrap_or(rate))?;
        for chunk in todo.chunks(batch) {
            let jobs: Vec<Value> = chunk
                .iter()
                .map(|s| json!({"idType": "TICKER", "idValue": figi_symbol(s), "exchCode": exch}))
                .collect();
            let answers = client.map(&jobs)?;
            for (s, a) in chunk.iter().zip(answers) {
                if let Some(e) = a.get("error").and_then(Value::as_str) {
                    errors
                        .insert(cache_key(s, &exch), format!("OpenFIGI error: {e} (not cached; asked again next run)"));
                } else {
                    cache.insert(cache_key(s, &exch), a);
                }
            }
            write_cache(&summary.cache_file, &cache)?;
        }
        summary.requests = client.http.requests.get();
        summary.retries = client.http.retries.get();
    }

    let sec = if args.sec { Some(sec_companies(args)?) } else { None };
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut hit: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    for s in &symbols {
        let sym = s.trim().to_ascii_uppercase();
        if !seen.insert(sym.clone()) {
            continue;
        }
        let k = cache_key(&sym, &exch);
        let answer = match (cache.get(&k), errors.get(&k)) {
            (_, Some(e)) => Err(e.clone()),
            (Some(a), _) => choose(a, &universe),
            (None, None) => Err("no answer from OpenFIGI".into()),
        };
        match answer {
            Ok(m) => {
                hit.insert(m.key.clone());
                let (cik, title) = sec
                    .as_ref()
                    .and_then(|c| c.get(&sym).or_else(|| c.get(&sym.replace(['.', '/'], "-"))))
                    .map(|(c, t)| (c.to_string(), t.clone()))
                    .unwrap_or_default();
                let name = if title.is_empty() { m.name } else { title };
                rows.push([sym, m.key, m.figi, m.exch, name, cik]);
            }
            Err(why) => summary.unmapped.push((sym, why)),
        }
    }
    summary.mapped = rows.len();
    summary.universe_left = universe.tickers.len().max(universe.by_figi.len()).saturating_sub(hit.len());
    // The universe's key column (what `--ticker-map` maps to), then composite_figi when that is
    // another column.
    let figi_only = universe.ticker_col.is_none();
    let header = match &universe.ticker_col {
        Some(col) => format!("ticker,{col},composite_figi,exch_code,name,cik"),
        None => "ticker,composite_figi,exch_code,name,cik".to_string(),
    };
    let cells = |r: &[String; 6]| {
        if figi_only { vec![r[0].clone(), r[1].clone(), r[3].clone(), r[4].clone(), r[5].clone()] } else { r.to_vec() }
    };
    write_csv(&args.out, &header, rows.iter().map(cells))?;
    write_csv(
        &summary.unmapped_file,
        "ticker,exch_code,why",
        summary.unmapped.iter().map(|(s, w)| vec![s.clone(), exch.clone(), w.clone()]),
    )?;
    Ok(summary)
}

/// The symbol part of the universe's tickers on `exch` (`BRK/B US` → `BRK.B`).
fn universe_symbols(u: &Universe, exch: &str, path: &Path) -> Result<Vec<String>> {
    if u.ticker_col.is_none() {
        return Err(Error::input(
            path,
            "the universe has composite_figi but no numerai_ticker column to take symbols from: give --tickers (the vendor symbols to map)",
        ));
    }
    let suffix = format!(" {exch}");
    let mut out: Vec<String> =
        u.tickers.iter().filter_map(|t| t.strip_suffix(&suffix)).map(|s| s.trim().replace('/', ".")).collect();
    out.sort();
    Ok(out)
}

/// The universe key a symbol's OpenFIGI answer leads to.
#[derive(Debug)]
struct Match {
    key: String,
    figi: String,
    exch: String,
    name: String,
}

fn choose(answer: &Value, u: &Universe) -> std::result::Result<Match, String> {
    if let Some(w) = answer.get("warning").and_then(Value::as_str) {
        return Err(format!("OpenFIGI: {w}"));
    }
    let data = answer.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    if data.is_empty() {
        return Err(format!("OpenFIGI answered no instrument: {answer}"));
    }
    let text = |d: &Value, k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").trim().to_string();
    for d in &data {
        let figi = text(d, "compositeFIGI").to_ascii_uppercase();
        let key = u.by_figi.get(&figi).cloned().or_else(|| {
            let t = format!("{} {}", text(d, "ticker"), text(d, "exchCode")).to_ascii_uppercase();
            u.tickers.contains(&t).then_some(t)
        });
        if let Some(key) = key {
            let figi = if figi.is_empty() { u.figi_of.get(&key).cloned().unwrap_or_default() } else { figi };
            return Ok(Match { key, figi, exch: text(d, "exchCode"), name: text(d, "name") });
        }
    }
    let found: Vec<String> = data
        .iter()
        .map(|d| format!("{} {} (composite FIGI {})", text(d, "ticker"), text(d, "exchCode"), text(d, "compositeFIGI")))
        .collect();
    Err(format!("OpenFIGI gives {}, not in the universe", found.join("; ")))
}

/// The output's stem and folder.
fn stem_dir(out: &Path) -> Result<(String, PathBuf)> {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Config(format!("--out {}: name a file, e.g. map.csv", out.display())))?;
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok((stem, dir))
}

fn read_cache(path: &Path) -> Result<BTreeMap<String, Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        Error::input(path, format!("the OpenFIGI cache is not valid JSON ({e}): delete it to ask OpenFIGI again"))
    })?;
    let answers = v.get("answers").and_then(Value::as_object).ok_or_else(|| {
        Error::input(path, "the OpenFIGI cache has no \"answers\" object: delete it to ask OpenFIGI again")
    })?;
    Ok(answers.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn write_cache(path: &Path, cache: &BTreeMap<String, Value>) -> Result<()> {
    let v = json!({"source": "OpenFIGI POST /v3/mapping (idType TICKER)", "answers": cache});
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::Config(format!("cannot encode the cache: {e}")))?;
    write_bytes_atomic(path, &bytes)
}

/// Writes a CSV atomically (fields quoted when needed).
fn write_csv(path: &Path, header: &str, rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let mut text = String::from(header);
    text.push('\n');
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    write_atomic(path, |tmp, f| std::io::Write::write_all(f, text.as_bytes()).map_err(|e| Error::io(tmp, e)))
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n', '\r']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.to_string() }
}

fn base_of(args: &MapArgs, default: &str) -> Result<Url> {
    let b = args.base_url.as_deref().unwrap_or(default);
    Url::parse(b)
        .map_err(|e| Error::Config(format!("--base-url {b}: not a URL ({e}); give e.g. http://127.0.0.1:8080")))
}

/// OpenFIGI's mapping endpoint through [`NewsHttp`] (its token bucket, retries and scrubbing).
struct Figi {
    http: NewsHttp,
    url: Url,
}

/// OpenFIGI to [`NewsHttp`]: a refused key names [`KEY_ENV`]; the cache keeps what was answered.
const OPENFIGI: Speaker = Speaker {
    name: "OpenFIGI",
    keys: &[KEY_ENV],
    refusal: key_refused,
    resume: "(answers so far are cached), or set OPENFIGI_API_KEY for higher limits",
};

impl Figi {
    fn new(args: &MapArgs, key: Option<String>, per_minute: f64) -> Result<Self> {
        let base = base_of(args, DEFAULT_BASE)?;
        let url = endpoint(&base, "/v3/mapping", &[]);
        let headers: Vec<(&str, String, bool)> = key.into_iter().map(|k| (KEY_HEADER, k, true)).collect();
        let agent = concat!("signalkit/", env!("CARGO_PKG_VERSION"));
        Ok(Figi { http: NewsHttp::new(OPENFIGI, &base, agent, &headers, per_minute, args.retry)?, url })
    }

    /// One POST of `jobs`: the answers, one per job, in order.
    fn map(&self, jobs: &[Value]) -> Result<Vec<Value>> {
        match self.http.post_json(&self.url, &Value::Array(jobs.to_vec()), true)? {
            Value::Array(a) if a.len() == jobs.len() => Ok(a),
            v => {
                let said: String = v.to_string().chars().take(200).collect();
                Err(Error::News(format!(
                    "POST {}: expected an array of {} answers (one per job), got: {said}",
                    self.url,
                    jobs.len()
                )))
            }
        }
    }
}

/// SEC's company_tickers.json as ticker (SEC's spelling, `BRK-B`) → (CIK, title), through SEC's
/// [`NewsHttp`]: its 403 is a throttle, waited out; any other refusal (a 404) is not retried.
fn sec_companies(args: &MapArgs) -> Result<HashMap<String, (u64, String)>> {
    let agent = super::sec::user_agent(&args.keys)?;
    let base = base_of(args, super::sec::DEFAULT_BASE)?;
    let url = match &args.base_url {
        Some(_) => endpoint(&base, "/files/company_tickers.json", &[]),
        None => Url::parse(super::sec::TICKERS_URL).expect("a valid URL"),
    };
    let sec = &super::sec::ABOUT;
    let who = Speaker {
        name: sec.name,
        keys: sec.keys,
        refusal: sec.refusal,
        resume: "(SEC's company_tickers.json is needed for --sec: run again later, or leave out --sec)",
    };
    let http = NewsHttp::new(who, &url, &agent, &[], sec.rate, args.retry)?;
    let v = http.get_json(&url, false)?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::News(format!("GET {url}: expected an object of {{cik_str, ticker, title}}")))?;
    Ok(obj
        .values()
        .filter_map(|e| {
            let t = e.get("ticker")?.as_str()?.trim().to_ascii_uppercase();
            Some((t, (e.get("cik_str")?.as_u64()?, e.get("title")?.as_str()?.trim().to_string())))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_classes_take_openfigis_spelling() {
        assert_eq!(figi_symbol("brk.b"), "BRK/B");
        assert_eq!(figi_symbol("BRK-B"), "BRK/B");
        assert_eq!(figi_symbol(" AAPL "), "AAPL");
    }

    #[test]
    fn an_answer_matches_by_figi_then_by_ticker_and_exchange() {
        let u = Universe {
            ticker_col: Some("numerai_ticker".into()),
            tickers: ["AAPL US".to_string(), "BRK/B US".to_string()].into_iter().collect(),
            by_figi: [("BBG000B9XRY4".to_string(), "AAPL US".to_string())].into_iter().collect(),
            figi_of: [("AAPL US".to_string(), "BBG000B9XRY4".to_string())].into_iter().collect(),
        };
        let a = json!({"data": [{"ticker": "AAPL", "exchCode": "US", "compositeFIGI": "BBG000B9XRY4", "name": "APPLE INC"}]});
        assert_eq!(choose(&a, &u).unwrap().key, "AAPL US");
        let b = json!({"data": [{"ticker": "BRK/B", "exchCode": "US", "compositeFIGI": "BBG000DWG505", "name": "BERKSHIRE HATHAWAY INC-CL B"}]});
        assert_eq!(choose(&b, &u).unwrap().key, "BRK/B US");
        let c = json!({"data": [{"ticker": "ZZZ", "exchCode": "US", "compositeFIGI": "BBG0000000Z1"}]});
        assert!(choose(&c, &u).unwrap_err().contains("not in the universe"));
        assert_eq!(choose(&json!({"warning": NO_IDENTIFIER}), &u).unwrap_err(), "OpenFIGI: No identifier found.");
    }
}
