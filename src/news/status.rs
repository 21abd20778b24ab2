//! `signalkit news status DIR`: per source and ticker, the days asked, the rows stored, and the
//! gaps with why — so "asked, nothing there" (covered, no rows) reads differently from "not
//! available to this key" or "unknown to the source" (a gap, asked again by the next fetch).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::state::{FetchState, GapKind};
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
            let kind = match g.kind {
                GapKind::NotAvailable => "not available to this key",
                GapKind::Unknown => "unknown to the source",
            };
            let _ = writeln!(out, "    gap {}..{} {kind}: {} (asked again by the next fetch)", g.from, g.to, g.why);
        }
    }
    Ok(())
}
