//! The news folder: per source, monthly parquet partitions in the headline layout `join` reads
//! (`ticker, published_at, headline, source, id, url` plus `symbol, updated_at, first_seen_at`),
//! de-duplicated by (ticker, vendor id); records whose symbols map to no ticker of the universe
//! kept aside in `unmapped.parquet`; and `headlines.parquet`, every source's partitions in one
//! file. Every write is atomic; a record already stored keeps its `published_at`, headline and
//! `first_seen_at` (a revision never moves a headline earlier), only `updated_at` advances.
//!
//! Each page is written at once, atomically, as a new file under `<source>/pending/` (named by
//! time and sequence, so their order is the order they were seen); [`SourceStore::compact`]
//! merges the pending pages into the month files, one rewrite per month per fetch, and deletes
//! them. A fetch compacts what a killed one left before it starts. New and duplicate rows are
//! counted at once against an index of the stored keys.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::data::atomic::write_atomic;
use crate::data::tickers::TickerRule;
use crate::error::{Error, Result};

/// One article as a source gives it, its publication instant already chosen (see each source).
#[derive(Debug, Clone)]
pub struct Item {
    /// The vendor's id (SEC: the accession number).
    pub id: String,
    /// The vendor's symbols for it.
    pub symbols: Vec<String>,
    /// Headline text.
    pub headline: String,
    /// Link to the article or filing.
    pub url: String,
    /// Publication instant, UTC microseconds (the vendor's stamp made at the time).
    pub published_us: i64,
    /// The vendor's last-revision instant, if it gives one.
    pub updated_us: Option<i64>,
}

/// One stored row: an item for one ticker.
#[derive(Debug, Clone)]
pub struct Row {
    /// Numerai ticker (or, for unmapped rows, the vendor symbol).
    pub ticker: String,
    /// The vendor symbol it came from.
    pub symbol: String,
    /// Publication instant, UTC microseconds.
    pub published_us: i64,
    /// Headline text.
    pub headline: String,
    /// Source name (`sec`, `alpaca`, ...).
    pub source: String,
    /// Vendor id.
    pub id: String,
    /// Link.
    pub url: String,
    /// Last revision, if known.
    pub updated_us: Option<i64>,
    /// When signalkit first saw it, UTC microseconds.
    pub first_seen_us: i64,
}

/// What one page added.
#[derive(Debug, Clone, Copy, Default)]
pub struct Added {
    /// New (ticker, id) rows.
    pub new: usize,
    /// Rows already stored (or repeated in the page).
    pub duplicate: usize,
    /// New rows for symbols outside the universe (kept in unmapped.parquet).
    pub unmapped: usize,
    /// Items stamped before the first day asked (a vendor's boundary slop; not stored). Items
    /// stamped after the last day are kept: a late stamp is the honest one for an article the
    /// vendor returned for the asked days.
    pub before_start: usize,
}

/// The store of one source under the output folder.
pub struct SourceStore {
    /// `<out>/<source>`.
    pub dir: PathBuf,
    source: String,
    rule: TickerRule,
    universe: HashSet<String>,
    start: i64,
    now_us: i64,
    /// Target file name (`YYYY-MM.parquet`, `unmapped.parquet`) → its stored and pending keys.
    index: RefCell<HashMap<String, HashSet<(String, String)>>>,
    seq: Cell<u64>,
}

impl SourceStore {
    /// The store for `source` under `out`, mapping the `universe` symbols through `rule`, keeping
    /// items stamped from `start` on.
    pub fn new(out: &Path, source: &str, rule: TickerRule, universe: &[String], start: i64) -> Self {
        SourceStore {
            dir: out.join(source),
            source: source.to_string(),
            rule,
            universe: universe.iter().map(|s| s.trim().to_ascii_uppercase()).collect(),
            start,
            now_us: chrono::Utc::now().timestamp_micros(),
            index: RefCell::new(HashMap::new()),
            seq: Cell::new(0),
        }
    }

    /// The Numerai ticker of a vendor symbol in the universe, `None` outside it or the map.
    pub fn ticker_of(&self, symbol: &str) -> Option<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if !self.universe.contains(&s) {
            return None;
        }
        match &self.rule {
            TickerRule::Map(m) => m.get(&s).cloned(),
            rule => rule.candidates(&s).into_iter().flatten().next(),
        }
    }

    /// Stores one page: one pending file, counted against the stored keys.
    pub fn add(&self, items: &[Item]) -> Result<Added> {
        let mut added = Added::default();
        let (mut mapped, mut aside) = (Vec::new(), Vec::new());
        for it in items {
            if it.published_us < self.start {
                added.before_start += 1;
                continue;
            }
            let symbols: Vec<&String> = if it.symbols.is_empty() { vec![&it.id] } else { it.symbols.iter().collect() };
            for sym in symbols {
                let sym = sym.trim().to_ascii_uppercase();
                let (row, target) = match self.ticker_of(&sym) {
                    Some(t) => (self.row(it, t, sym), None),
                    None => (self.row(it, sym.clone(), sym), Some(UNMAPPED.to_string())),
                };
                let target = target.unwrap_or_else(|| format!("{}.parquet", month_of(row.published_us)));
                let new = self.index_of(&target)?.insert((row.ticker.clone(), row.id.clone()));
                match (new, target == UNMAPPED) {
                    (true, true) => added.unmapped += 1,
                    (true, false) => added.new += 1,
                    (false, _) => added.duplicate += 1,
                }
                if target == UNMAPPED { aside.push(row) } else { mapped.push(row) }
            }
        }
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let stem = format!("{:020}-{n:08}", chrono::Utc::now().timestamp_micros());
        for (rows, kind) in [(mapped, "m"), (aside, "u")] {
            if !rows.is_empty() {
                write_rows(&self.dir.join(PENDING).join(format!("{stem}-{kind}.parquet")), &rows)?;
            }
        }
        Ok(added)
    }

    /// The keys stored in (or pending for) `target`, loaded on first use.
    fn index_of(&self, target: &str) -> Result<std::cell::RefMut<'_, HashSet<(String, String)>>> {
        if !self.index.borrow().contains_key(target) {
            let path = self.dir.join(target);
            let keys = if path.exists() {
                read_rows(&path)?.into_iter().map(|r| (r.ticker, r.id)).collect()
            } else {
                HashSet::new()
            };
            self.index.borrow_mut().insert(target.to_string(), keys);
        }
        Ok(std::cell::RefMut::map(self.index.borrow_mut(), |m| m.get_mut(target).expect("just inserted")))
    }

    /// Merges every pending page into its month file (or unmapped.parquet), oldest first, then
    /// deletes the pages; returns how many were merged.
    pub fn compact(&self) -> Result<usize> {
        let dir = self.dir.join(PENDING);
        if !dir.exists() {
            return Ok(0);
        }
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "parquet")
                    && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        parts.sort();
        let mut by_target: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for p in &parts {
            let unmapped = p.to_string_lossy().ends_with("-u.parquet");
            for r in read_rows(p)? {
                let target =
                    if unmapped { UNMAPPED.to_string() } else { format!("{}.parquet", month_of(r.published_us)) };
                by_target.entry(target).or_default().push(r);
            }
        }
        for (target, rows) in by_target {
            merge_into(&self.dir.join(target), rows)?;
        }
        for p in &parts {
            std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        }
        Ok(parts.len())
    }

    fn row(&self, it: &Item, ticker: String, symbol: String) -> Row {
        Row {
            ticker,
            symbol,
            published_us: it.published_us,
            headline: it.headline.trim().to_string(),
            source: self.source.clone(),
            id: it.id.clone(),
            url: it.url.clone(),
            updated_us: it.updated_us,
            first_seen_us: self.now_us,
        }
    }
}

/// The folder of pending pages inside a source folder.
pub const PENDING: &str = "pending";
/// The file of rows for symbols outside the universe.
pub const UNMAPPED: &str = "unmapped.parquet";

/// `YYYY-MM` of an instant (UTC).
pub fn month_of(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.format("%Y-%m").to_string())
        .unwrap_or_else(|| "invalid".into())
}

/// Merges `rows` into the partition at `path` (new and duplicate counts), written atomically.
fn merge_into(path: &Path, rows: Vec<Row>) -> Result<(usize, usize)> {
    let mut all = if path.exists() { read_rows(path)? } else { Vec::new() };
    let mut seen: HashMap<(String, String), usize> =
        all.iter().enumerate().map(|(i, r)| ((r.ticker.clone(), r.id.clone()), i)).collect();
    let (mut new, mut dup) = (0, 0);
    for r in rows {
        match seen.get(&(r.ticker.clone(), r.id.clone())) {
            Some(&i) => {
                // The stored record keeps its time, text and first sighting; revisions advance only updated_at.
                let old = &mut all[i];
                old.updated_us = match (old.updated_us, r.updated_us) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                dup += 1;
            }
            None => {
                seen.insert((r.ticker.clone(), r.id.clone()), all.len());
                all.push(r);
                new += 1;
            }
        }
    }
    sort_rows(&mut all);
    write_rows(path, &all)?;
    Ok((new, dup))
}

/// Sorts by (published_at, ticker, source, id): the files' order.
pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (a.published_us, &a.ticker, &a.source, &a.id).cmp(&(b.published_us, &b.ticker, &b.source, &b.id))
    });
}

fn utc(name: &str, v: Vec<Option<i64>>) -> Result<Column> {
    let ca = Int64Chunked::from_iter_options(name.into(), v.into_iter());
    Ok(ca.into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)).into_column())
}

/// Writes rows as parquet, atomically.
pub fn write_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let s = |f: fn(&Row) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("ticker".into(), s(|r| &r.ticker)),
            utc("published_at", rows.iter().map(|r| Some(r.published_us)).collect())?,
            Column::new("headline".into(), s(|r| &r.headline)),
            Column::new("source".into(), s(|r| &r.source)),
            Column::new("id".into(), s(|r| &r.id)),
            Column::new("url".into(), s(|r| &r.url)),
            Column::new("symbol".into(), s(|r| &r.symbol)),
            utc("updated_at", rows.iter().map(|r| r.updated_us).collect())?,
            utc("first_seen_at", rows.iter().map(|r| Some(r.first_seen_us)).collect())?,
        ],
    )
    .map_err(|e| Error::table(path, e))?;
    write_atomic(path, |tmp, f| ParquetWriter::new(f).finish(&mut df).map(|_| ()).map_err(|e| Error::table(tmp, e)))
}

/// Reads rows written by [`write_rows`].
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f).finish().map_err(|e| Error::table(path, e))?;
    let fail = |e: PolarsError| Error::table(path, e);
    let strs = |c: &str| -> Result<Vec<String>> {
        Ok(df.column(c).map_err(fail)?.str().map_err(fail)?.iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let ints = |c: &str| -> Result<Vec<Option<i64>>> {
        let col = df.column(c).map_err(fail)?.cast(&DataType::Int64).map_err(fail)?;
        Ok(col.i64().map_err(fail)?.iter().collect())
    };
    let (ticker, headline, source, id, url, symbol) =
        (strs("ticker")?, strs("headline")?, strs("source")?, strs("id")?, strs("url")?, strs("symbol")?);
    let (published, updated, first) = (ints("published_at")?, ints("updated_at")?, ints("first_seen_at")?);
    Ok((0..df.height())
        .map(|i| Row {
            ticker: ticker[i].clone(),
            symbol: symbol[i].clone(),
            published_us: published[i].unwrap_or_default(),
            headline: headline[i].clone(),
            source: source[i].clone(),
            id: id[i].clone(),
            url: url[i].clone(),
            updated_us: updated[i],
            first_seen_us: first[i].unwrap_or_default(),
        })
        .collect())
}

/// Every source's month partitions under `out`, in one sorted file `out/headlines.parquet`;
/// returns its path and row count.
pub fn write_combined(out: &Path) -> Result<(PathBuf, usize)> {
    let mut rows = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        for p in month_files(&d)? {
            rows.extend(read_rows(&p)?);
        }
    }
    sort_rows(&mut rows);
    let path = out.join("headlines.parquet");
    write_rows(&path, &rows)?;
    Ok((path, rows.len()))
}

/// The `YYYY-MM.parquet` partitions in a source folder, sorted.
pub fn month_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            n.len() == "YYYY-MM.parquet".len()
                && n.ends_with(".parquet")
                && n.as_bytes()[4] == b'-'
                && !n.starts_with('.')
        })
        .collect();
    v.sort();
    Ok(v)
}
