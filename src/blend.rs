//! `signalkit blend`: several models' predictions of the same rows made one — the weighted mean of
//! each model's per-era rank, the usual way Numerai users ensemble — written as a predictions
//! file that `evaluate`, `compare` and `predict`'s readers take like any run's. The inputs must
//! predict the same rows with the same `split`: a row in one model's training eras is never
//! scored as the blend's out-of-sample row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use polars::prelude::*;
use serde::Serialize;

use crate::data::targets::KeyedTable;
use crate::data::{file_hash, guard_output_folder, write_parquet_atomic};
use crate::error::{Error, Result};
use crate::settings::Positive;
use crate::train::rank_by_era;

/// One input: a predictions file (or a run or model folder holding one) and its weight.
#[derive(Debug, Clone)]
pub struct BlendInput {
    /// As given.
    pub path: PathBuf,
    /// Its weight (shares are the weights over their sum).
    pub weight: Positive,
}

impl FromStr for BlendInput {
    type Err = String;

    /// `PATH` (weight 1) or `PATH@W`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.rsplit_once('@') {
            Some((path, w)) if w.trim().parse::<f64>().is_ok() || w.trim().eq_ignore_ascii_case("nan") => {
                let weight = w.trim().parse::<Positive>().map_err(|e| format!("{s}: the weight after @: {e}"))?;
                Ok(BlendInput { path: path.into(), weight })
            }
            _ => Ok(BlendInput { path: s.into(), weight: Positive::new(1.0) }),
        }
    }
}

/// What `blend` reads and writes.
#[derive(Debug, Clone)]
pub struct BlendArgs {
    /// Two or more inputs.
    pub inputs: Vec<BlendInput>,
    /// Output folder: predictions.parquet and blend.json.
    pub out: PathBuf,
}

/// One blended file as blend.json records it.
#[derive(Debug, Clone, Serialize)]
pub struct Blended {
    /// The predictions file read.
    pub path: String,
    /// xxh3-64 of its content.
    pub xxh3: String,
    /// Its weight as given.
    pub weight: f64,
    /// Its share of the blend.
    pub share: f64,
}

/// What a blend wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BlendSummary {
    /// The inputs.
    pub inputs: Vec<Blended>,
    /// Rows written.
    pub rows: usize,
    /// Rows the `split` column marks validation (None without a split column).
    pub validation_rows: Option<usize>,
    /// The predictions file written.
    pub predictions: PathBuf,
}

impl std::fmt::Display for BlendSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shares: Vec<String> = self.inputs.iter().map(|b| format!("{} × {:.3}", b.path, b.share)).collect();
        write!(f, "{} rows", self.rows)?;
        if let Some(v) = self.validation_rows {
            write!(f, " ({v} marked validation)")?;
        }
        write!(f, " from {}", shares.join(" + "))
    }
}

/// The predictions file of `path`: the file itself, or a run folder's `model/predictions.parquet`,
/// or a model folder's `predictions.parquet`.
pub fn predictions_path(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let found =
        [path.join("model/predictions.parquet"), path.join("predictions.parquet")].into_iter().find(|p| p.is_file());
    found.ok_or_else(|| {
        Error::input(path, "a folder without model/predictions.parquet or predictions.parquet: name a run folder, a train --out folder or a predictions file")
    })
}

/// Blends the inputs' per-era ranks with their weights into `out/predictions.parquet`.
pub fn blend(args: &BlendArgs) -> Result<BlendSummary> {
    if args.inputs.len() < 2 {
        return Err(Error::Config("blend needs two or more predictions files (or run folders) to blend".into()));
    }
    let paths: Vec<PathBuf> = args.inputs.iter().map(|i| predictions_path(&i.path)).collect::<Result<_>>()?;
    let guarded: Vec<(&Path, &str)> = paths.iter().map(|p| (p.as_path(), "input")).collect();
    guard_output_folder(&args.out, "--out", &guarded)?;
    let tables: Vec<KeyedTable> = paths.iter().map(|p| KeyedTable::read(p)).collect::<Result<_>>()?;
    let total: f64 = args.inputs.iter().map(|i| i.weight.get()).sum();
    let first = &tables[0];
    let mut mixed = vec![0.0; first.len()];
    let mut folds = first.frame.column("fold").ok().cloned();
    for (t, input) in tables.iter().zip(&args.inputs) {
        let order = align_rows(first, t)?;
        check_same(first, t, &order, "split")?;
        if folds.is_some() && check_same(first, t, &order, "fold").is_err() {
            folds = None; // folds differ: the split is what scoring needs, and it is the same
        }
        let values = prediction_values(t)?;
        let aligned: Vec<f64> = order.iter().map(|&j| values[j]).collect();
        let share = input.weight.get() / total;
        for (m, r) in mixed.iter_mut().zip(rank_by_era(&aligned, &first.fridays)) {
            *m += share * r;
        }
    }
    write_blend(args, &paths, first, mixed, folds, total)
}

/// Writes the blended predictions (the first input's keys and split) and blend.json.
fn write_blend(
    args: &BlendArgs,
    paths: &[PathBuf],
    first: &KeyedTable,
    mixed: Vec<f64>,
    folds: Option<Column>,
    total: f64,
) -> Result<BlendSummary> {
    let mut cols: Vec<Column> = [&first.ticker_column, &first.date_column, "split"]
        .into_iter()
        .filter_map(|c| first.frame.column(c).ok().cloned())
        .collect();
    cols.extend(folds);
    cols.push(Column::new("prediction".into(), mixed));
    let mut df = DataFrame::new(first.len(), cols).map_err(|e| Error::table(&first.path, e))?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let predictions = args.out.join("predictions.parquet");
    write_parquet_atomic(&mut df, &predictions)?;
    let inputs = paths
        .iter()
        .zip(&args.inputs)
        .map(|(p, i)| {
            let weight = i.weight.get();
            Ok(Blended { path: p.display().to_string(), xxh3: file_hash(p)?, weight, share: weight / total })
        })
        .collect::<Result<Vec<_>>>()?;
    let is_validation = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().eq_ignore_ascii_case("validation"));
    let validation_rows = text_column(first, "split")?.map(|s| s.iter().filter(|v| is_validation(v)).count());
    let summary = BlendSummary { inputs, rows: df.height(), validation_rows, predictions };
    let json = serde_json::to_vec_pretty(&summary).expect("serialisable");
    crate::data::atomic::write_bytes_atomic(&args.out.join("blend.json"), &json)?;
    Ok(summary)
}

/// For each row of `first`, the row of `t` with the same ticker and date; refuses row sets that
/// differ, naming a row one has and the other lacks.
fn align_rows(first: &KeyedTable, t: &KeyedTable) -> Result<Vec<usize>> {
    fn key(k: &KeyedTable, i: usize) -> (&str, i32) {
        (k.universe[k.ticker_ids[i] as usize].as_str(), k.fridays[i])
    }
    let at: HashMap<(&str, i32), usize> = (0..t.len()).map(|j| (key(t, j), j)).collect();
    let order: Vec<Option<usize>> = (0..first.len()).map(|i| at.get(&key(first, i)).copied()).collect();
    let missing = order.iter().position(Option::is_none);
    if missing.is_none() && t.len() == first.len() {
        return Ok(order.into_iter().flatten().collect());
    }
    let theirs: std::collections::HashSet<(&str, i32)> = (0..first.len()).map(|i| key(first, i)).collect();
    let (has, lacks, (ticker, day)) = match missing {
        Some(i) => (&first.path, &t.path, key(first, i)),
        None => {
            let j = (0..t.len()).find(|&j| !theirs.contains(&key(t, j))).expect("longer table has an extra row");
            (&t.path, &first.path, key(t, j))
        }
    };
    Err(Error::input(
        lacks,
        format!(
            "its rows differ from {}'s ({} vs {} rows; e.g. {ticker} on {} is in {} only): blend predictions of the same rows — runs on the same targets, eras and tickers",
            has.display(),
            t.len(),
            first.len(),
            crate::era::date_from_days(day),
            has.display()
        ),
    ))
}

/// Refuses a `column` (split or fold) that one input has and the other lacks, or that differs on
/// a row, naming the row.
fn check_same(first: &KeyedTable, t: &KeyedTable, order: &[usize], column: &str) -> Result<()> {
    let (a, b) = match (text_column(first, column)?, text_column(t, column)?) {
        (None, None) => return Ok(()),
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Error::input(
                &t.path,
                format!(
                    "`{column}` is in one of {} and {} but not the other: blend runs made the same way (both by train, or neither)",
                    first.path.display(),
                    t.path.display()
                ),
            ));
        }
    };
    match (0..a.len()).find(|&i| a[i] != b[order[i]]) {
        None => Ok(()),
        Some(i) => Err(Error::input(
            &t.path,
            format!(
                "`{column}` differs from {}'s on {} {}: {:?} vs {:?}; blend runs with the same split (train_until, embargo, walk_forward), or an in-sample row would be scored as out of sample",
                first.path.display(),
                first.universe[first.ticker_ids[i] as usize],
                crate::era::date_from_days(first.fridays[i]),
                a[i].as_deref().unwrap_or("null"),
                b[order[i]].as_deref().unwrap_or("null"),
            ),
        )),
    }
}

/// A column's values as text (None when the table has no such column).
fn text_column(t: &KeyedTable, column: &str) -> Result<Option<Vec<Option<String>>>> {
    let Ok(c) = t.frame.column(column) else { return Ok(None) };
    let c = c.cast(&DataType::String).map_err(|e| Error::table(&t.path, e))?;
    Ok(Some(c.str().map_err(|e| Error::table(&t.path, e))?.iter().map(|v| v.map(str::to_string)).collect()))
}

/// The `prediction` (or `signal`) column.
fn prediction_values(t: &KeyedTable) -> Result<Vec<f64>> {
    let col = ["prediction", "signal"].into_iter().find(|c| t.frame.column(c).is_ok()).ok_or_else(|| {
        Error::input(&t.path, "no `prediction` or `signal` column: pass train's predictions.parquet or a signal file")
    })?;
    t.f64_column(col)
}
