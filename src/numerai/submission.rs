//! Submission validation: every Signals rule (one ticker column, a numeric signal strictly in
//! (0, 1), no duplicates, enough of the live universe, an optional live `date`), checked before
//! anything is uploaded.
//!
//! [`check_submission`] collects all problems of a file (it stops at none of them), and
//! [`validate_submission`] turns a non-empty list into one error that names every problem with
//! its column and rows.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::data::time::parse_date_str;
use crate::data::{find_column, read_table, str_values};
use crate::error::{Error, Result};

/// Ticker columns Numerai accepts in a Signals submission (exactly one must be present), and the
/// signal column.
pub use crate::data::signal::{SIGNAL_COLUMN, SIGNAL_TICKER_COLUMNS as SUBMISSION_TICKER_COLUMNS};
/// The optional date column.
pub const DATE_COLUMN: &str = "date";
/// Fewest live-universe tickers a submission must cover.
pub const MIN_UNIVERSE_TICKERS: usize = 100;

/// How many example rows or tickers a problem lists.
const EXAMPLES: usize = 10;

/// One broken rule: the column and rows concerned (1-based data rows) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Column concerned, if one.
    pub column: Option<String>,
    /// Example rows (1-based, header not counted); at most a few.
    pub rows: Vec<usize>,
    /// How many rows have this problem in all (may exceed `rows.len()`).
    pub row_count: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    fn file(message: impl Into<String>) -> Self {
        Problem { column: None, rows: Vec::new(), row_count: 0, message: message.into() }
    }

    fn column(column: &str, message: impl Into<String>) -> Self {
        Problem { column: Some(column.to_string()), rows: Vec::new(), row_count: 0, message: message.into() }
    }

    fn rows(column: &str, rows: &[usize], message: impl Into<String>) -> Self {
        Problem {
            column: Some(column.to_string()),
            rows: rows.iter().take(EXAMPLES).map(|r| r + 1).collect(),
            row_count: rows.len(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.column {
            write!(f, "column '{c}'")?;
            if !self.rows.is_empty() {
                write!(f, ", ")?;
            }
        }
        if !self.rows.is_empty() {
            let list: Vec<String> = self.rows.iter().map(|r| r.to_string()).collect();
            let word = if self.row_count == 1 { "row" } else { "rows" };
            write!(f, "{word} {}", list.join(", "))?;
            if self.row_count > self.rows.len() {
                write!(f, ", … ({} rows in all)", self.row_count)?;
            }
        }
        if self.column.is_some() || !self.rows.is_empty() {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// What the validation found: a summary of the file and the list of problems (empty = valid).
#[derive(Debug, Clone)]
pub struct SubmissionCheck {
    /// The submission file.
    pub file: PathBuf,
    /// Data rows.
    pub rows: usize,
    /// The ticker column used, when exactly one was found.
    pub ticker_column: Option<String>,
    /// Distinct non-empty tickers.
    pub tickers: usize,
    /// Distinct tickers found in the live universe (when one was given).
    pub in_universe: Option<usize>,
    /// Tickers in the live universe (when one was given).
    pub universe_size: Option<usize>,
    /// The submission's date, when it has a `date` column with one value.
    pub date: Option<NaiveDate>,
    /// Smallest and largest valid signal.
    pub signal_range: Option<(f64, f64)>,
    /// Broken rules; empty when the file may be uploaded.
    pub problems: Vec<Problem>,
    /// Things worth knowing that do not block the upload (e.g. no universe given).
    pub warnings: Vec<String>,
}

impl SubmissionCheck {
    /// True when no rule is broken.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok(self)` when valid, else one [`Error::Input`] that lists every problem.
    pub fn into_result(self) -> Result<Self> {
        if self.problems.is_empty() {
            return Ok(self);
        }
        let n = self.problems.len();
        let mut msg = format!(
            "not a valid Signals submission: {n} problem{}; fix {} and run again:",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        );
        for (i, p) in self.problems.iter().enumerate() {
            msg.push_str(&format!("\n  {}. {p}", i + 1));
        }
        Err(Error::input(&self.file, msg))
    }
}

impl fmt::Display for SubmissionCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} rows, {} tickers", self.file.display(), self.rows, self.tickers)?;
        if let Some(c) = &self.ticker_column {
            write!(f, " ({c})")?;
        }
        if let (Some(k), Some(u)) = (self.in_universe, self.universe_size) {
            write!(f, ", {k} of {u} live-universe tickers")?;
        }
        if let Some((lo, hi)) = self.signal_range {
            write!(f, ", signal in [{lo:.6}, {hi:.6}]")?;
        }
        if let Some(d) = self.date {
            write!(f, ", date {d}")?;
        }
        Ok(())
    }
}

/// Checks `file` (CSV or parquet) against every submission rule, and against the live universe
/// file when given. Fails only when a file cannot be read; broken rules are listed in the result.
pub fn check_submission(file: &Path, universe: Option<&Path>) -> Result<SubmissionCheck> {
    let df = read_table(file, true)?;
    let mut check = SubmissionCheck {
        file: file.to_path_buf(),
        rows: df.height(),
        ticker_column: None,
        tickers: 0,
        in_universe: None,
        universe_size: None,
        date: None,
        signal_range: None,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    if df.height() == 0 {
        check.problems.push(Problem::file("the file has no data rows"));
    }

    // Ticker column: exactly one.
    let present: Vec<&str> =
        SUBMISSION_TICKER_COLUMNS.iter().copied().filter(|c| names.iter().any(|n| n == c)).collect();
    match present.len() {
        0 => {
            let near: Vec<&String> =
                names.iter().filter(|n| SUBMISSION_TICKER_COLUMNS.iter().any(|c| n.eq_ignore_ascii_case(c))).collect();
            let hint = match near.first() {
                Some(n) => format!("; rename '{n}' to '{}'", n.to_ascii_lowercase()),
                None => String::new(),
            };
            check.problems.push(Problem::file(format!(
                "no ticker column: name one column {} (columns found: {}){hint}",
                SUBMISSION_TICKER_COLUMNS.join(", "),
                names.join(", ")
            )));
        }
        1 => check.ticker_column = Some(present[0].to_string()),
        _ => check.problems.push(Problem::file(format!(
            "{} ticker columns ({}): keep exactly one",
            present.len(),
            present.join(", ")
        ))),
    }
    let tickers = match check.ticker_column.clone() {
        Some(col) => Some(ticker_rules(file, &df, &col, &mut check)?),
        None => None,
    };

    // Signal: present, numeric, no NaN or null, strictly inside (0, 1), not constant.
    if names.iter().any(|n| n == SIGNAL_COLUMN) {
        signal_rules(file, &df, &mut check)?;
    } else {
        let near = names.iter().find(|n| n.eq_ignore_ascii_case(SIGNAL_COLUMN));
        let hint = near.map_or(String::new(), |n| format!("; rename '{n}' to 'signal'"));
        check
            .problems
            .push(Problem::file(format!("no '{SIGNAL_COLUMN}' column (columns found: {}){hint}", names.join(", "))));
    }

    // Optional date column.
    if names.iter().any(|n| n == DATE_COLUMN) {
        date_rules(file, &df, &mut check)?;
    }

    // The live universe.
    match (universe, check.ticker_column.clone(), &tickers) {
        (Some(u), Some(col), Some(tickers)) => universe_rules(u, &col, tickers, &mut check)?,
        (None, _, _) => check.warnings.push(
            "no live universe given (--universe live.parquet): unknown tickers and the live date were not checked"
                .to_string(),
        ),
        _ => {}
    }
    Ok(check)
}

/// [`check_submission`], failing with the full list of problems unless the file is valid.
pub fn validate_submission(file: &Path, universe: Option<&Path>) -> Result<SubmissionCheck> {
    check_submission(file, universe)?.into_result()
}

/// Upper-cased, trimmed ticker per row (`None` when empty); records empty and duplicate tickers.
impl SubmissionCheck {
    /// Records a problem over `rows` of `column`, if there are any.
    fn flag(&mut self, column: &str, rows: &[usize], message: impl Into<String>) {
        if !rows.is_empty() {
            self.problems.push(Problem::rows(column, rows, message));
        }
    }

    /// As [`SubmissionCheck::flag`], listing no rows: the message quotes examples itself.
    fn flag_counted(&mut self, column: &str, rows: &[usize], message: impl FnOnce() -> String) {
        if !rows.is_empty() {
            let mut p = Problem::rows(column, rows, message());
            p.rows.clear();
            self.problems.push(p);
        }
    }
}

fn ticker_rules(file: &Path, df: &DataFrame, col: &str, check: &mut SubmissionCheck) -> Result<Vec<Option<String>>> {
    let values = str_values(file, df, col)?;
    let tickers: Vec<Option<String>> =
        values.iter().map(|v| v.map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty())).collect();
    let empty: Vec<usize> = tickers.iter().enumerate().filter(|(_, t)| t.is_none()).map(|(i, _)| i).collect();
    check.flag(col, &empty, "empty ticker; every row needs one (drop these rows)");
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut dups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut dup_index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tickers.iter().enumerate() {
        let Some(t) = t.as_deref() else { continue };
        match first.get(t) {
            None => {
                first.insert(t, i);
            }
            Some(&f) => {
                let k = *dup_index.entry(t).or_insert_with(|| {
                    dups.push((t, vec![f]));
                    dups.len() - 1
                });
                dups[k].1.push(i);
            }
        }
    }
    check.tickers = first.len();
    let mut rows: Vec<usize> = dups.iter().flat_map(|(_, rows)| rows.iter().copied()).collect();
    rows.sort_unstable();
    check.flag_counted(col, &rows, || {
        let examples: Vec<String> = dups
            .iter()
            .take(5)
            .map(|(t, rows)| {
                let r: Vec<String> = rows.iter().map(|r| (r + 1).to_string()).collect();
                format!("'{t}' (rows {})", r.join(", "))
            })
            .collect();
        format!(
            "{} ticker{} appear{} more than once: {}; keep one row per ticker",
            dups.len(),
            if dups.len() == 1 { "" } else { "s" },
            if dups.len() == 1 { "s" } else { "" },
            examples.join(", ")
        )
    });
    if check.rows > 0 && check.tickers < MIN_UNIVERSE_TICKERS {
        check.problems.push(Problem::column(
            col,
            format!(
                "only {} distinct tickers; Numerai needs at least {MIN_UNIVERSE_TICKERS} tickers of the live universe",
                check.tickers
            ),
        ));
    }
    Ok(tickers)
}

fn signal_rules(file: &Path, df: &DataFrame, check: &mut SubmissionCheck) -> Result<()> {
    let col = df.column(SIGNAL_COLUMN).map_err(|e| Error::table(file, e))?.as_materialized_series();
    let dtype = col.dtype().clone();
    let values: Vec<Result<Option<f64>, String>> = if dtype == DataType::String {
        let ca = col.str().map_err(|e| Error::table(file, e))?;
        ca.iter()
            .map(|v| match v.map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => s.parse::<f64>().map(Some).map_err(|_| s.to_string()),
            })
            .collect()
    } else if dtype.is_primitive_numeric() {
        let cast = col.cast(&DataType::Float64).map_err(|e| Error::table(file, e))?;
        cast.f64().map_err(|e| Error::table(file, e))?.iter().map(Ok).collect()
    } else {
        check.problems.push(Problem::column(
            SIGNAL_COLUMN,
            format!("must hold numbers strictly between 0 and 1, found values of type {dtype}"),
        ));
        return Ok(());
    };
    let (mut missing, mut nan, mut text, mut outside) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut text_examples, mut outside_examples) = (Vec::new(), Vec::new());
    let mut good: Vec<f64> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Ok(None) => missing.push(i),
            Ok(Some(x)) if x.is_nan() => nan.push(i),
            Ok(Some(x)) if !(*x > 0.0 && *x < 1.0) => {
                if outside_examples.len() < 5 {
                    outside_examples.push(format!("{x} at row {}", i + 1));
                }
                outside.push(i);
            }
            Ok(Some(x)) => good.push(*x),
            Err(s) => {
                if text_examples.len() < 5 {
                    text_examples.push(format!("'{s}' at row {}", i + 1));
                }
                text.push(i);
            }
        }
    }
    check.flag(SIGNAL_COLUMN, &missing, "missing (null) signal; every ticker needs a value strictly between 0 and 1");
    check.flag(SIGNAL_COLUMN, &nan, "NaN signal; fill or drop these rows (a ranked signal has no NaN)");
    check.flag_counted(SIGNAL_COLUMN, &text, || {
        format!("not a number ({}); the signal must be numeric", text_examples.join(", "))
    });
    check.flag_counted(SIGNAL_COLUMN, &outside, || {
        format!(
            "{} value{} not strictly between 0 and 1 ({}); rank the signal, e.g. (rank − 0.5) / n",
            outside.len(),
            if outside.len() == 1 { " is" } else { "s are" },
            outside_examples.join(", ")
        )
    });
    if let (Some(lo), Some(hi)) = (good.iter().copied().reduce(f64::min), good.iter().copied().reduce(f64::max)) {
        check.signal_range = Some((lo, hi));
        let all_good = good.len() == values.len();
        if lo == hi && all_good {
            check.problems.push(Problem::column(
                SIGNAL_COLUMN,
                format!("the signal is constant ({lo} on every row); a submission must rank the tickers"),
            ));
        }
    }
    Ok(())
}

/// Parses a date cell written as a date, a datetime, `YYYY-MM-DD` or `YYYYMMDD`.
fn parse_cell_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    parse_date_str(s).or_else(|| s.get(..10).and_then(parse_date_str))
}

fn date_rules(file: &Path, df: &DataFrame, check: &mut SubmissionCheck) -> Result<()> {
    let values = str_values(file, df, DATE_COLUMN)?;
    let (mut missing, mut bad, mut bad_examples) = (Vec::new(), Vec::new(), Vec::new());
    let mut dates: BTreeSet<NaiveDate> = BTreeSet::new();
    for (i, v) in values.iter().enumerate() {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => missing.push(i),
            Some(s) => match parse_cell_date(s) {
                Some(d) => {
                    dates.insert(d);
                }
                None => {
                    if bad_examples.len() < 5 {
                        bad_examples.push(format!("'{s}' at row {}", i + 1));
                    }
                    bad.push(i);
                }
            },
        }
    }
    check.flag(DATE_COLUMN, &missing, "missing date; give every row the live date, or drop the optional date column");
    check.flag_counted(DATE_COLUMN, &bad, || {
        format!("cannot read {} as a date; use YYYY-MM-DD or YYYYMMDD", bad_examples.join(", "))
    });
    match dates.len() {
        0 => {}
        1 => check.date = dates.first().copied(),
        n => {
            let list: Vec<String> = dates.iter().take(5).map(|d| d.to_string()).collect();
            check.problems.push(Problem::column(
                DATE_COLUMN,
                format!("{n} different dates ({}); a submission is for the live date only", list.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The universe column that holds the same kind of ticker as submission column `col`.
pub(crate) fn universe_candidates(col: &str) -> &'static [&'static str] {
    match col {
        "numerai_ticker" | "bloomberg_ticker" => &["numerai_ticker", "bloomberg_ticker"],
        "composite_figi" => &["composite_figi"],
        "ticker" => &["ticker"],
        _ => &["sedol"],
    }
}

fn universe_rules(universe: &Path, col: &str, tickers: &[Option<String>], check: &mut SubmissionCheck) -> Result<()> {
    let udf = read_table(universe, true)?;
    let Some(ucol) = find_column(&udf, universe_candidates(col)) else {
        check.warnings.push(format!(
            "{}: the universe has no {} column to check '{col}' tickers against; unknown tickers were not checked",
            universe.display(),
            universe_candidates(col).join(" or ")
        ));
        return Ok(());
    };
    let uvalues = str_values(universe, &udf, &ucol)?;
    let live: HashSet<String> =
        uvalues.iter().flatten().map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty()).collect();
    if live.is_empty() {
        return Err(Error::at(universe, None, &ucol, "the live universe has no tickers; download it again"));
    }
    check.universe_size = Some(live.len());
    let mut seen: HashSet<&str> = HashSet::new();
    let (mut known, mut unknown_rows, mut unknown_examples) = (0usize, Vec::new(), Vec::new());
    let mut unknown_distinct = 0usize;
    for (i, t) in tickers.iter().enumerate() {
        let Some(t) = t.as_deref() else { continue };
        if live.contains(t) {
            if seen.insert(t) {
                known += 1;
            }
        } else {
            unknown_rows.push(i);
            if seen.insert(t) {
                unknown_distinct += 1;
                if unknown_examples.len() < EXAMPLES {
                    unknown_examples.push(format!("'{t}' (row {})", i + 1));
                }
            }
        }
    }
    check.in_universe = Some(known);
    check.flag_counted(col, &unknown_rows, || format!(
                "{unknown_distinct} ticker{} not in the live universe {} (e.g. {}); drop {} or check the ticker format (live tickers look like '{}')",
                if unknown_distinct == 1 { " is" } else { "s are" },
                universe.display(),
                unknown_examples.join(", "),
                if unknown_distinct == 1 { "it" } else { "them" },
                live.iter().min().map(String::as_str).unwrap_or("")
            ));
    if known < MIN_UNIVERSE_TICKERS && check.tickers >= MIN_UNIVERSE_TICKERS {
        check.problems.push(Problem::column(
            col,
            format!(
                "only {known} tickers are in the live universe {}; Numerai needs at least {MIN_UNIVERSE_TICKERS}",
                universe.display()
            ),
        ));
    } else if known < MIN_UNIVERSE_TICKERS && known < check.tickers {
        // Fewer than 100 distinct tickers was reported already; say how many of them are live.
        check.warnings.push(format!("{known} of the tickers are in the live universe"));
    }

    // The live date, when both files have one.
    if let (Some(d), Some(udate)) = (check.date, find_column(&udf, &[DATE_COLUMN, "friday_date"])) {
        let uvals = str_values(universe, &udf, &udate)?;
        let live_date = uvals.iter().flatten().filter_map(parse_cell_date).max();
        if let Some(ld) = live_date.filter(|&ld| ld != d) {
            check.problems.push(Problem::column(
                DATE_COLUMN,
                format!(
                    "date {d} is not the live date {ld} of {}; predict on this week's live universe",
                    universe.display()
                ),
            ));
        }
    }
    Ok(())
}
