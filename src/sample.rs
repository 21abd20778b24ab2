//! A deterministic synthetic universe in Numerai's legacy layout, with news that carries signal.
//!
//! Each ticker has a latent news sentiment per week (an AR(1) process). Headlines published in
//! the week before a Friday lean positive or negative with it, and the ticker's target after that
//! Friday moves with it too: an honest, modest signal. Headlines published in the days after the
//! Friday describe the realised move (the target itself), so a pipeline that lets them through
//! scores far higher than one that does not.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::data::time::{US_PER_DAY, days_from_date, fmt_us};
use crate::data::write_bytes_atomic;
use crate::error::{Error, Result};

/// Size and seed of the synthetic universe.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Number of tickers.
    pub tickers: usize,
    /// Number of weekly eras.
    pub fridays: usize,
    /// The first era's Friday.
    pub first_friday: NaiveDate,
    /// Eras marked `validation` at the end (the very last era is `live`).
    pub validation_eras: usize,
    /// Random seed: the same seed gives byte-identical files.
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            tickers: 250,
            fridays: 150,
            first_friday: NaiveDate::from_ymd_opt(2019, 1, 4).expect("valid date"),
            validation_eras: 45,
            seed: 0,
        }
    }
}

/// What `generate` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSummary {
    /// Target rows.
    pub rows: usize,
    /// Headlines, all kinds.
    pub headlines: usize,
    /// Headlines published after their Friday that describe the realised move.
    pub after_friday: usize,
    /// Paths written.
    pub files: Vec<PathBuf>,
}

impl std::fmt::Display for SampleSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, n, after) = (self.rows, self.headlines, self.after_friday);
        write!(f, "{rows} rows, {n} headlines ({after} published after their Friday)")
    }
}

const POSITIVE: [&str; 12] = [
    "{c} beats quarterly earnings estimates and raises full-year guidance",
    "{c} shares jump after analyst upgrade to buy",
    "{c} wins major multi-year contract, lifting growth outlook",
    "{c} reports record revenue as demand strengthens",
    "{c} announces larger share buyback and dividend increase",
    "{c} secures regulatory approval for flagship product",
    "Analysts raise price targets on {c} after strong results",
    "{c} expands margins as cost cuts pay off",
    "{c} signs strategic partnership to accelerate expansion",
    "{c} upgraded to outperform on improving fundamentals",
    "{c} profit surges past forecasts on robust sales",
    "Investors cheer {c} upbeat outlook for next year",
];
const NEGATIVE: [&str; 12] = [
    "{c} misses revenue forecast and cuts annual outlook",
    "{c} shares fall after analyst downgrade to sell",
    "{c} faces regulatory probe over accounting practices",
    "{c} warns of weaker demand and rising costs",
    "{c} loses key customer contract to rival",
    "{c} suspends dividend as losses widen",
    "Analysts slash price targets on {c} after disappointing quarter",
    "{c} recalls products over safety concerns",
    "{c} hit by lawsuit alleging misleading disclosures",
    "{c} downgraded to underperform on deteriorating margins",
    "{c} posts unexpected quarterly loss",
    "{c} chief executive resigns amid strategy doubts",
];
const NEUTRAL: [&str; 8] = [
    "{c} to present at upcoming industry conference",
    "{c} schedules quarterly results announcement",
    "{c} names new board member",
    "{c} files annual report with regulators",
    "{c} holds annual shareholder meeting",
    "{c} completes previously announced debt refinancing",
    "{c} opens new regional office",
    "{c} confirms date of investor day",
];
const MOVE_UP: [&str; 3] = [
    "{c} shares rally, capping a strong run for the stock",
    "{c} stock surges as investors pile in",
    "{c} extends gains, shares hit multi-month high",
];
const MOVE_DOWN: [&str; 3] = [
    "{c} shares slump, extending recent losses",
    "{c} stock tumbles as selling accelerates",
    "{c} shares sink to multi-month low",
];
const MOVE_FLAT: [&str; 2] = ["{c} shares little changed in quiet trading", "{c} stock flat as market awaits data"];

const HEADS: [&str; 26] = [
    "Ar", "Bel", "Cor", "Dyn", "El", "Fal", "Gen", "Hal", "Ion", "Jet", "Kin", "Lum", "Mer", "Nov", "Or", "Pax",
    "Quin", "Ros", "Sol", "Tal", "Ul", "Ver", "Wex", "Xan", "Yor", "Zen",
];
const TAILS: [&str; 10] = ["ex", "ia", "on", "ar", "is", "ent", "ora", "yx", "ium", "eon"];
const KINDS: [&str; 10] =
    ["Corp", "Inc", "Holdings", "Group", "Systems", "Therapeutics", "Energy", "Bancorp", "Technologies", "Industries"];

/// Bins a cross-section like Numerai's targets: 5/20/50/20/5 % into 0, .25, .5, .75, 1.
fn bin_era(raw: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]));
    let mut out = vec![0.0; raw.len()];
    for (rank, &i) in order.iter().enumerate() {
        let q = (rank as f64 + 0.5) / raw.len() as f64;
        out[i] = match q {
            q if q < 0.05 => 0.0,
            q if q < 0.25 => 0.25,
            q if q < 0.75 => 0.5,
            q if q < 0.95 => 0.75,
            _ => 1.0,
        };
    }
    out
}

/// Headline columns being generated.
#[derive(Default)]
struct Feed {
    ticker: Vec<String>,
    time: Vec<String>,
    text: Vec<String>,
}

impl Feed {
    /// Adds a headline stamped to the minute, one in five written with New York's winter offset
    /// (the same instant), as many feeds do.
    fn push(&mut self, rng: &mut ChaCha8Rng, sym: &str, us: i64, text: String) {
        let utc = chrono::DateTime::from_timestamp_micros(us - us.rem_euclid(60_000_000)).expect("in range");
        let stamp = if rng.random_bool(0.2) {
            let ny = chrono::FixedOffset::west_opt(5 * 3600).expect("offset");
            utc.with_timezone(&ny).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        } else {
            utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        self.ticker.push(sym.to_string());
        self.time.push(stamp);
        self.text.push(text);
    }

    /// Sends the last headline again, unchanged.
    fn repeat_last(&mut self) {
        if let (Some(a), Some(b), Some(c)) = (self.ticker.last(), self.time.last(), self.text.last()) {
            let (a, b, c) = (a.clone(), b.clone(), c.clone());
            self.ticker.push(a);
            self.time.push(b);
            self.text.push(c);
        }
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// `n` company names and distinct ticker symbols.
fn universe(rng: &mut ChaCha8Rng, n: usize) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::with_capacity(n);
    let mut symbols: Vec<String> = Vec::with_capacity(n);
    while names.len() < n {
        let stem = format!("{}{}", pick(rng, &HEADS), pick(rng, &TAILS));
        let len = if rng.random_bool(0.5) { 3 } else { 4 };
        let mut sym: String = stem.to_ascii_uppercase().chars().filter(|c| c.is_ascii_alphabetic()).take(len).collect();
        while sym.len() < 3 || symbols.contains(&sym) {
            sym.push((b'A' + rng.random_range(0..26u8)) as char);
            if sym.len() > 5 {
                sym.truncate(2);
            }
        }
        names.push(format!("{stem} {}", pick(rng, &KINDS)));
        symbols.push(sym);
    }
    (names, symbols)
}

/// A few headlines about companies outside the universe (one per 100 in the feed).
fn outside_universe(feed: &mut Feed, first_friday: NaiveDate) {
    for j in 0..(feed.text.len() / 100) {
        let us = days_from_date(first_friday) as i64 * US_PER_DAY + j as i64 * 3_600_000_000;
        feed.ticker.push(format!("ZZ{}", (b'A' + (j % 26) as u8) as char));
        feed.time.push(fmt_us(us));
        feed.text.push(format!("Private company {} raises funding round", j % 26));
    }
}

/// Generates the targets and headlines tables in memory (one pass over the Fridays: each week's
/// latent sentiment drives its news, its targets and the leak-bait stories after it, so the
/// loop stays whole).
/// Also returns how many headlines were published after their Friday.
/// Also returns how many headlines were published after their Friday.
pub fn generate(opts: &SampleOptions) -> (DataFrame, DataFrame, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    let n = opts.tickers;

    let (names, symbols) = universe(&mut rng, n);
    let betas: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();

    let (mut t_ticker, mut t_date, mut t_type, mut t_fn, mut t_raw) = (vec![], vec![], vec![], vec![], vec![]);
    let mut feed = Feed::default();

    let mut after_friday = 0;
    let mut sentiment: Vec<f64> = (0..n).map(|_| normal.sample(&mut rng)).collect();
    let news = Poisson::new(0.9).expect("valid poisson");
    for w in 0..opts.fridays {
        let friday = opts.first_friday + Duration::weeks(w as i64);
        let f_us = days_from_date(friday) as i64 * US_PER_DAY;
        let data_type = if w + 1 == opts.fridays {
            "live"
        } else if w + 1 + opts.validation_eras >= opts.fridays {
            "validation"
        } else {
            "train"
        };
        for s in sentiment.iter_mut() {
            *s = 0.7 * *s + 0.714 * normal.sample(&mut rng);
        }
        let market = normal.sample(&mut rng);
        let raw: Vec<f64> = sentiment.iter().map(|s| 0.3 * s + normal.sample(&mut rng)).collect();
        let with_market: Vec<f64> = raw.iter().zip(&betas).map(|(r, b)| r + b * market).collect();
        let (fnb, rawb) = (bin_era(&raw), bin_era(&with_market));
        for i in 0..n {
            // News in the week before the Friday, leaning with the latent sentiment.
            let k = news.sample(&mut rng) as usize;
            for _ in 0..k {
                let up = 1.0 / (1.0 + (-2.0 * sentiment[i]).exp());
                let u: f64 = rng.random();
                let tpl = if u < 0.25 {
                    pick(&mut rng, &NEUTRAL)
                } else if rng.random_bool(up) {
                    pick(&mut rng, &POSITIVE)
                } else {
                    pick(&mut rng, &NEGATIVE)
                };
                let us = f_us - rng.random_range(1..7 * US_PER_DAY);
                feed.push(&mut rng, &symbols[i], us, tpl.replace("{c}", &names[i]));
                if rng.random_bool(0.02) {
                    feed.repeat_last(); // a feed that sends the same story twice
                }
            }
            // After the Friday: the realised move, which no honest join may show to this row.
            if data_type != "live" && rng.random_bool(0.45) {
                let tpl = match fnb[i] {
                    v if v >= 0.75 => pick(&mut rng, &MOVE_UP),
                    v if v <= 0.25 => pick(&mut rng, &MOVE_DOWN),
                    _ => pick(&mut rng, &MOVE_FLAT),
                };
                let us = f_us + rng.random_range(0..4 * US_PER_DAY);
                feed.push(&mut rng, &symbols[i], us, tpl.replace("{c}", &names[i]));
                after_friday += 1;
            }
            if rng.random_bool(0.05) {
                continue; // not in this era's universe
            }
            t_ticker.push(format!("{} US", symbols[i]));
            t_date.push(friday.format("%Y%m%d").to_string().parse::<i64>().expect("digits"));
            t_type.push(data_type);
            let live = data_type == "live";
            t_fn.push((!live).then_some(fnb[i]));
            t_raw.push((!live).then_some(rawb[i]));
        }
    }
    outside_universe(&mut feed, opts.first_friday);
    let targets = df![
        "bloomberg_ticker" => t_ticker,
        "friday_date" => t_date,
        "data_type" => t_type,
        "target_20d_factor_neutral" => t_fn,
        "target_20d_raw_return" => t_raw,
    ]
    .expect("equal lengths");
    let headlines =
        df!["ticker" => feed.ticker, "published_at" => feed.time, "headline" => feed.text].expect("equal lengths");
    (targets, headlines, after_friday)
}

/// The file in a sample folder that records what `sample` wrote there: each file's xxh3.
pub const MARKER: &str = ".signalkit-sample.json";

/// Writes `targets.csv` and `headlines.csv` into `dir` (under the folder's lock). An existing
/// file there is replaced only when it is this command's own earlier output, unchanged since
/// (its hash is in [`MARKER`]), or already holds exactly the bytes about to be written; any other
/// file is refused before anything is written: `sample` never overwrites a user's data.
pub fn write_sample(dir: &Path, opts: &SampleOptions) -> Result<SampleSummary> {
    if opts.tickers < 10 || opts.fridays < opts.validation_eras + 2 {
        return Err(Error::Config("sample needs at least 10 tickers and more Fridays than validation eras + 2".into()));
    }
    let _lock = crate::data::lock::lock_folder(dir, "sample", "--out")?;
    let (mut targets, mut headlines, after_friday) = generate(opts);
    let files = vec![dir.join("targets.csv"), dir.join("headlines.csv")];
    let bytes = [csv_bytes(&mut targets, &files[0])?, csv_bytes(&mut headlines, &files[1])?];
    let ours = written_before(dir);
    for (path, new) in files.iter().zip(&bytes) {
        check_overwrite(path, new, &ours)?;
    }
    for (path, new) in files.iter().zip(&bytes) {
        write_bytes_atomic(path, new)?;
    }
    let hashes: std::collections::BTreeMap<String, String> =
        files.iter().zip(&bytes).map(|(p, b)| (file_name(p), hash(b))).collect();
    let marker = serde_json::to_vec_pretty(&hashes).expect("serialisable");
    write_bytes_atomic(&dir.join(MARKER), &marker)?;
    Ok(SampleSummary { rows: targets.height(), headlines: headlines.height(), after_friday, files })
}

fn csv_bytes(df: &mut DataFrame, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    CsvWriter::new(&mut out).include_header(true).finish(df).map_err(|e| Error::table(path, e))?;
    Ok(out)
}

fn hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// File name → hash of what an earlier `sample` wrote into `dir` (empty without a marker).
fn written_before(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read(dir.join(MARKER)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Refuses to replace `path` unless it is missing, holds `new` already, or is `sample`'s own
/// unchanged earlier output (`ours`).
fn check_overwrite(path: &Path, new: &[u8], ours: &std::collections::BTreeMap<String, String>) -> Result<()> {
    let old = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if old == new || ours.get(&file_name(path)) == Some(&hash(&old)) {
        return Ok(());
    }
    Err(Error::input(
        path,
        "exists and is not a file `signalkit sample` wrote (or it was edited since): sample never overwrites other \
         files; name a new or empty folder with --out, or move this file away first",
    ))
}
