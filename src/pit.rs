//! The point-in-time join: each row sees only headlines published strictly before its cutoff and
//! no older than the look-back window (the rule is stated in the README, "The rule").
//!
//! Headlines are sorted once by (ticker, instant); each row then finds its visible range with two
//! binary searches. Visibility is `cutoff - window <= published < cutoff`, never `<=` the cutoff.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;
use rayon::prelude::*;

use crate::data::headlines::{HeadlineOptions, Headlines};
use crate::data::targets::Targets;
use crate::data::tickers::TickerRule;
use crate::data::time::US_PER_DAY;
use crate::data::{guard_output, read_table, str_values, write_parquet_with};
use crate::error::{Error, Result};
use crate::provenance::{JoinRecord, Provenance};

/// The columns the join adds to each row.
pub const OUTPUT_COLUMNS: [&str; 5] =
    ["headline", "headline_published_at", "headline_age_days", "n_headlines_7d", "n_headlines_30d"];

pub use crate::data::window::{MAX_CUTOFF_HOURS, MAX_WINDOW_DAYS, Window};

/// What one row sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Visible {
    /// Input index of the latest visible headline (ties on the instant: the later in the file).
    pub latest: Option<u32>,
    /// Publication instant of `latest`.
    pub latest_us: Option<i64>,
    /// Visible headlines in the last 7 days (capped at the window).
    pub n_7d: u32,
    /// Visible headlines in the last 30 days (capped at the window).
    pub n_30d: u32,
    /// Position range of the visible headlines in the index's sorted order.
    pub range: (usize, usize),
}

/// Headlines sorted by (ticker, instant, input order), duplicates removed.
#[derive(Debug, Clone)]
pub struct HeadlineIndex {
    starts: Vec<usize>,
    times: Vec<i64>,
    source: Vec<u32>,
    /// Identical headlines (same ticker, instant and text) dropped.
    pub duplicates: usize,
}

impl HeadlineIndex {
    /// Builds the index. `ticker_ids[i]` is `None` for headlines outside the universe (dropped);
    /// `same_text(a, b)` tells whether headlines `a` and `b` have the same text.
    pub fn build(
        n_tickers: usize,
        ticker_ids: &[Option<u32>],
        times: &[i64],
        same_text: impl Fn(u32, u32) -> bool + Sync,
    ) -> Self {
        // Counting sort by ticker, then each ticker's headlines by (instant, input order) in parallel.
        let mut starts = vec![0usize; n_tickers + 1];
        for t in ticker_ids.iter().flatten() {
            starts[*t as usize + 1] += 1;
        }
        for i in 0..n_tickers {
            starts[i + 1] += starts[i];
        }
        let mut next = starts.clone();
        let mut slots = vec![(0i64, 0u32); starts[n_tickers]];
        for (i, (t, &us)) in ticker_ids.iter().zip(times).enumerate() {
            if let Some(t) = t {
                slots[next[*t as usize]] = (us, i as u32);
                next[*t as usize] += 1;
            }
        }
        let mut buckets = Vec::with_capacity(n_tickers);
        let mut rest = slots.as_mut_slice();
        for w in starts.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            buckets.push(head);
            rest = tail;
        }
        // Drop exact duplicates: equal instants are adjacent; compare texts within each run.
        let kept: Vec<Vec<(i64, u32)>> = buckets
            .into_par_iter()
            .map(|b| {
                b.sort_unstable();
                let mut kept: Vec<(i64, u32)> = Vec::with_capacity(b.len());
                let mut run = 0;
                for &k in b.iter() {
                    if kept.len() > run && kept[run].0 != k.0 {
                        run = kept.len();
                    }
                    if !kept[run..].iter().any(|e| same_text(e.1, k.1)) {
                        kept.push(k);
                    }
                }
                kept
            })
            .collect();
        let total = starts[n_tickers];
        let mut starts = Vec::with_capacity(n_tickers + 1);
        let (mut times, mut source) = (Vec::with_capacity(total), Vec::with_capacity(total));
        starts.push(0);
        for b in kept {
            times.extend(b.iter().map(|k| k.0));
            source.extend(b.iter().map(|k| k.1));
            starts.push(times.len());
        }
        HeadlineIndex { starts, duplicates: total - times.len(), times, source }
    }

    /// Number of headlines indexed (after dropping duplicates and unknown tickers).
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The visible headlines of a [`Visible::range`]: (input index, published UTC µs), oldest first.
    pub fn members(&self, range: (usize, usize)) -> impl Iterator<Item = (u32, i64)> + '_ {
        (range.0..range.1).map(|p| (self.source[p], self.times[p]))
    }

    /// What a row of `ticker` with `cutoff` (UTC µs) sees within `window_us`.
    pub fn lookup(&self, ticker: u32, cutoff: i64, window_us: i64) -> Visible {
        let (s, e) = (self.starts[ticker as usize], self.starts[ticker as usize + 1]);
        let times = &self.times[s..e];
        let first_at = |from: i64| times.partition_point(|&t| t < from);
        let hi = first_at(cutoff);
        let lo = first_at(cutoff.saturating_sub(window_us));
        let count = |days: i64| (hi - first_at(cutoff.saturating_sub((days * US_PER_DAY).min(window_us)))) as u32;
        let latest = (hi > lo).then(|| s + hi - 1);
        Visible {
            latest: latest.map(|p| self.source[p]),
            latest_us: latest.map(|p| self.times[p]),
            n_7d: count(7),
            n_30d: count(30),
            range: (s + lo, s + hi),
        }
    }
}

/// Counts from one join, printed as its one-line summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinSummary {
    /// Rows written.
    pub rows: usize,
    /// Rows with at least one visible headline.
    pub rows_with_headline: usize,
    /// Headlines read.
    pub headlines: usize,
    /// Identical headlines dropped.
    pub duplicates: usize,
    /// Headlines whose ticker is not among the rows' tickers.
    pub unknown_ticker: usize,
    /// Headlines of known tickers that no row's window contains.
    pub outside_windows: usize,
    /// Wall-clock seconds spent reading, joining and writing (filled by [`join_files`]).
    pub seconds: Timings,
}

/// Wall-clock seconds per phase of a join.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading and validating both inputs.
    pub read: f64,
    /// The join itself.
    pub join: f64,
    /// Writing the output.
    pub write: f64,
}

impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "read {:.2}s, join {:.2}s, write {:.2}s", self.read, self.join, self.write)
    }
}

impl JoinSummary {
    /// Share of rows with a headline, 0..1.
    pub fn share_with_headline(&self) -> f64 {
        if self.rows == 0 { 0.0 } else { self.rows_with_headline as f64 / self.rows as f64 }
    }
}

impl fmt::Display for JoinSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows, {:.1}% with a headline; {} headlines read, {} duplicates dropped, {} unused ({} of tickers not in the rows, {} outside every row's window)",
            self.rows,
            100.0 * self.share_with_headline(),
            self.headlines,
            self.duplicates,
            self.unknown_ticker + self.outside_windows,
            self.unknown_ticker,
            self.outside_windows
        )
    }
}

/// Which headlines each row may see: the index and, per row, its view and cutoff.
pub struct Visibility {
    /// Headlines of the rows' tickers, sorted, duplicates dropped.
    pub index: HeadlineIndex,
    /// Per headline: its ticker's id in the rows' universe, if any.
    pub ticker_ids: Vec<Option<u32>>,
    /// Per row: what it sees, and its cutoff (UTC µs).
    pub rows: Vec<(Visible, i64)>,
}

/// Applies the point-in-time rule to every row (the join and the feature stage share this).
pub fn visibility(targets: &Targets, headlines: &Headlines, rule: &TickerRule, window: Window) -> Visibility {
    let universe: std::collections::HashMap<&str, u32> =
        targets.universe.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let mut cache: PlHashMap<&str, Option<u32>> = PlHashMap::new();
    let ticker_ids: Vec<Option<u32>> = headlines
        .tickers
        .iter()
        .map(|t| {
            let t = t.unwrap_or("");
            *cache.entry(t).or_insert_with(|| rule.resolve(t, &universe))
        })
        .collect();
    let text = &headlines.text;
    let same = |a: u32, b: u32| text.get(a as usize).map(str::trim) == text.get(b as usize).map(str::trim);
    let index = HeadlineIndex::build(targets.universe.len(), &ticker_ids, &headlines.published_us, same);
    let window_us = window.len_us();
    let rows = targets
        .ticker_ids
        .par_iter()
        .zip(targets.fridays.par_iter())
        .map(|(&t, &f)| {
            let cutoff = window.cutoff_us(f);
            (index.lookup(t, cutoff, window_us), cutoff)
        })
        .collect();
    Visibility { index, ticker_ids, rows }
}

/// Joins headlines to rows: returns the rows as given plus the [`OUTPUT_COLUMNS`], in row order.
pub fn join(
    targets: &Targets,
    headlines: &Headlines,
    rule: &TickerRule,
    window: Window,
) -> Result<(DataFrame, JoinSummary)> {
    for c in OUTPUT_COLUMNS {
        if targets.frame.get_column_names().iter().any(|n| n.as_str() == c) {
            return Err(Error::at(
                &targets.path,
                None,
                c,
                "the targets file already has this column, which the join writes; rename or drop it",
            ));
        }
    }
    let Visibility { index, ticker_ids: ids, rows: seen } = visibility(targets, headlines, rule, window);
    let text = &headlines.text;

    // Headlines inside no row's window: mark the covered positions with a difference array.
    let mut cover = vec![0i64; index.len() + 1];
    for (v, _) in &seen {
        cover[v.range.0] += 1;
        cover[v.range.1] -= 1;
    }
    let mut depth = 0;
    let outside_windows = cover[..index.len()]
        .iter()
        .filter(|d| {
            depth += **d;
            depth == 0
        })
        .count();

    let mut out = targets.frame.clone();
    let chosen: IdxCa = seen.iter().map(|(v, _)| v.latest.map(|i| i as IdxSize)).collect();
    let texts = text.take(&chosen).map_err(|e| Error::table(&headlines.path, e))?;
    let published: Int64Chunked = seen.iter().map(|(v, _)| v.latest_us).collect();
    let age: Float64Chunked =
        seen.iter().map(|(v, c)| v.latest_us.map(|p| (c - p) as f64 / US_PER_DAY as f64)).collect();
    let n7: UInt32Chunked = seen.iter().map(|(v, _)| Some(v.n_7d)).collect();
    let n30: UInt32Chunked = seen.iter().map(|(v, _)| Some(v.n_30d)).collect();
    let cols = [
        texts.with_name(OUTPUT_COLUMNS[0].into()).into_column(),
        published
            .with_name(OUTPUT_COLUMNS[1].into())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
        age.with_name(OUTPUT_COLUMNS[2].into()).into_column(),
        n7.with_name(OUTPUT_COLUMNS[3].into()).into_column(),
        n30.with_name(OUTPUT_COLUMNS[4].into()).into_column(),
    ];
    for c in cols {
        out.with_column(c).map_err(|e| Error::table(&targets.path, e))?;
    }
    let summary = JoinSummary {
        rows: seen.len(),
        rows_with_headline: seen.iter().filter(|(v, _)| v.latest.is_some()).count(),
        headlines: headlines.len(),
        duplicates: index.duplicates,
        unknown_ticker: ids.iter().filter(|t| t.is_none()).count(),
        outside_windows,
        seconds: Timings::default(),
    };
    Ok((out, summary))
}

/// Everything `signalkit join` needs.
#[derive(Debug, Clone)]
pub struct JoinArgs {
    /// Numerai rows (targets or live universe).
    pub targets: PathBuf,
    /// Headlines file.
    pub headlines: PathBuf,
    /// Output parquet.
    pub out: PathBuf,
    /// Cutoff and window.
    pub window: Window,
    /// How headline tickers map to row tickers.
    pub tickers: TickerRule,
    /// The ticker-map file `tickers` was read from, if any (recorded in the provenance).
    pub ticker_map: Option<PathBuf>,
    /// How to read the headlines.
    pub headline_options: HeadlineOptions,
}

impl JoinArgs {
    /// The provenance the join's output will carry (hashes the input files).
    pub fn provenance(&self) -> Result<Provenance> {
        let join = JoinRecord::new(
            &self.targets,
            &self.headlines,
            self.window,
            &self.headline_options,
            self.ticker_map.as_deref(),
            &self.tickers,
        )?;
        Ok(Provenance { join: Some(join), ..Provenance::new() })
    }
}

/// Reads both inputs, joins, and writes the rows atomically to `args.out`, with the join's
/// provenance (input hashes and options) in the parquet metadata.
pub fn join_files(args: &JoinArgs) -> Result<JoinSummary> {
    args.window.check()?;
    let inputs: Vec<&Path> =
        [&args.targets, &args.headlines].into_iter().map(PathBuf::as_path).chain(args.ticker_map.as_deref()).collect();
    guard_output(&args.out, &inputs)?;
    let provenance = args.provenance()?;
    let clock = Instant::now();
    let targets = Targets::read(&args.targets)?;
    let headlines = Headlines::read(&args.headlines, &args.headline_options)?;
    let read = clock.elapsed().as_secs_f64();
    let (mut df, mut summary) = join(&targets, &headlines, &args.tickers, args.window)?;
    let joined = clock.elapsed().as_secs_f64();
    write_parquet_with(&mut df, &args.out, Some(provenance.to_metadata()))?;
    summary.seconds = Timings { read, join: joined - read, write: clock.elapsed().as_secs_f64() - joined };
    Ok(summary)
}

/// Reads a join output back (for later stages and tests).
pub fn read_rows(path: &Path) -> Result<DataFrame> {
    crate::data::read_table(path, false)
}

/// Where the headlines a join read are now: `moved` when given (its content must be the join's),
/// else the recorded path (which must still hold the same content).
pub fn located_headlines(rec: &JoinRecord, moved: Option<&Path>) -> Result<PathBuf> {
    let path = moved.map_or_else(|| PathBuf::from(&rec.headlines.path), Path::to_path_buf);
    crate::provenance::verify_unchanged(&path, &rec.headlines, "the headlines file the join read")?;
    Ok(path)
}

/// The join record of a rows file written by `signalkit join` and where its headlines are now
/// (`moved`: their new path); refuses rows without the record.
pub fn recorded_join(rows: &Path, moved: Option<&Path>) -> Result<(JoinRecord, PathBuf)> {
    let rec = Provenance::read(rows)?.and_then(|p| p.join).ok_or_else(|| {
        Error::input(
            rows,
            "this file does not record how it was joined (not written by this signalkit's join): re-run signalkit join",
        )
    })?;
    let path = located_headlines(&rec, moved)?;
    Ok((rec, path))
}

fn quoted(t: Option<&str>) -> String {
    t.map_or_else(|| "no headline".to_string(), |t| format!("'{t}'"))
}

/// Redoes the join's point-in-time rule over its rows and headlines, and proves it redone
/// exactly: each row must name the latest headline and 7/30-day counts these inputs give (rows
/// edited after the join, or joined by other code, are refused).
pub fn redo_join(rows: &Path, join: &JoinRecord, headlines_path: &Path) -> Result<(Targets, Headlines, Visibility)> {
    let window = join.window();
    window.check()?;
    let frame = read_table(rows, false)?;
    let recorded = str_values(rows, &frame, "headline")
        .map_err(|_| Error::input(rows, "no 'headline' column: is this the output of signalkit join?"))?;
    let counts = |name: &str| -> Result<Vec<Option<u32>>> {
        let c = frame.column(name).and_then(|c| c.cast(&DataType::UInt32)).map_err(|e| Error::table(rows, e))?;
        Ok(c.u32().map_err(|e| Error::table(rows, e))?.iter().collect())
    };
    let (n7, n30) = (counts("n_headlines_7d")?, counts("n_headlines_30d")?);
    let targets = Targets::from_frame(rows, frame)?;
    let headlines = Headlines::read(headlines_path, &join.headline_options()?)?;
    let vis = visibility(&targets, &headlines, &join.ticker_rule()?, window);
    for (i, (v, _)) in vis.rows.iter().enumerate() {
        let ours = v.latest.and_then(|h| headlines.text.get(h as usize));
        if ours != recorded.get(i) || (n7[i], n30[i]) != (Some(v.n_7d), Some(v.n_30d)) {
            let n = |c: Option<u32>| c.map_or("?".into(), |n| n.to_string());
            return Err(Error::at(
                rows,
                Some(i + 1),
                "headline",
                format!(
                    "this row was joined with {} ({}/{} headlines in 7/30 days) but these inputs give {} ({}/{}): re-run signalkit join (or pass the same --headlines and join options)",
                    quoted(recorded.get(i)),
                    n(n7[i]),
                    n(n30[i]),
                    quoted(ours),
                    v.n_7d,
                    v.n_30d
                ),
            ));
        }
    }
    Ok((targets, headlines, vis))
}
