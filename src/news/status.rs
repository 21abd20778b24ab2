//! `signalkit news status DIR`: per source and ticker, the days asked, the rows stored, and the
//! gaps with why — so "asked, nothing there" (covered, no rows) reads differently from "not
//! available to this key" or "unknown to the source" (a gap, asked again by the next fetch).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::NaiveDate;

use super::state::{FetchState, Gap, GapKind};
use super::store::{month_files, read_rows};
use crate::error::{Error, Result};

/// The report for every source folder under `dir` that holds a `state.json`.
pub fn status(dir: &Path) -> Result<String> {
    let mut sources: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("state.json").is_file())
        .collect();
    sources.sort();
    if sources.is_empty() {
        return Err(Error::input(
            dir,
            "holds no fetch state (no <source>/state.json): give the --out folder of `signalkit news fetch`",
        ));
    }
    let mut out = String::new();
    for src in sources {
        report_source(&src, &mut out)?;
    }
    Ok(out)
}

/// One source's lines.
fn report_source(src: &Path, out: &mut String) -> Result<()> {
    let state = FetchState::load(src)?;
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for p in month_files(src)? {
        for r in read_rows(&p)? {
            *rows.entry(r.symbol).or_default() += 1;
        }
    }
    let name = src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let gaps: usize = state.gaps.values().map(Vec::len).sum();
    let _ = writeln!(out, "{name}: {} ticker(s), {gaps} gap(s)", state.tickers.len());
    for (sym, c) in &state.tickers {
        let n = rows.get(sym).copied().unwrap_or(0);
        let mine = state.gaps.get(sym).map(Vec::as_slice).unwrap_or_default();
        let note = if n == 0 && mine.is_empty() { " (asked, nothing there)" } else { "" };
        let plural = if n == 1 { "" } else { "s" };
        let _ = writeln!(out, "{sym} {}..{} {n} row{plural}{note}", c.from, c.to);
        for g in mine {
            let _ = writeln!(out, "    {} (asked again by the next fetch)", gap_text(g));
        }
    }
    Ok(())
}

/// A gap as `gap FROM..TO KIND: WHY`.
fn gap_text(g: &Gap) -> String {
    let kind = match g.kind {
        GapKind::NotAvailable => "not available to this key",
        GapKind::Unknown => "unknown to the source",
    };
    format!("gap {}..{} {kind}: {}", g.from, g.to, g.why)
}

/// Every day of `from..=to` that the source folder `src` does not cover for `tickers`, one line
/// each range: `SOURCE SYMBOL gap FROM..TO KIND: WHY`, or `... not asked` for days outside the
/// state's covered range.
pub fn gap_lines(src: &Path, tickers: &[String], from: NaiveDate, to: NaiveDate) -> Result<Vec<String>> {
    let state = FetchState::load(src)?;
    let name = src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut out = Vec::new();
    for sym in tickers {
        let sym = sym.trim().to_ascii_uppercase();
        match state.tickers.get(&sym) {
            None => out.push(format!("{name} {sym} gap {from}..{to} not asked yet")),
            Some(c) => {
                if c.from > from {
                    out.push(format!("{name} {sym} gap {from}..{} not asked yet", c.from.pred_opt().unwrap_or(c.from)));
                }
                if c.to < to {
                    out.push(format!("{name} {sym} gap {}..{to} not asked yet", c.to.succ_opt().unwrap_or(c.to)));
                }
            }
        }
        let mine = state.gaps.get(&sym).map(Vec::as_slice).unwrap_or_default();
        out.extend(
            mine.iter().filter(|g| g.to >= from && g.from <= to).map(|g| format!("{name} {sym} {}", gap_text(g))),
        );
    }
    Ok(out)
}
