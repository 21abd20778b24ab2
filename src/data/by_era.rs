//! A keyed file read one era at a time. Signals v2.1's neutralizer file is gigabytes (150 float32
//! columns × 5,000+ tickers × 650 dates), so only its keys (ticker, date) are read whole and
//! checked; an era's value columns are read from the parquet row groups that hold it (a column
//! projection and a row slice), so memory follows one era, not the file. Numerai writes one row
//! group per date. A file not grouped by date, or not parquet (CSV), is read whole, as before.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::io::parquet::metadata::FileMetadataRef;
use polars::prelude::*;

use super::targets::{DATE_COLUMNS, KeyedTable, TICKER_COLUMNS};
use super::{Format, find_column, format_of, missing_column};
use crate::era::era_of_days;
use crate::error::{Error, Result};

/// A keyed file's keys, and its numeric value columns on demand, era by era.
pub struct ByEra {
    /// Every row's ticker and date (checked: present, readable, unique), in file order.
    pub keys: KeyedTable,
    /// The numeric columns besides the keys and targets.
    pub names: Vec<String>,
    /// Per era: the runs of consecutive rows holding it, as (first row, rows).
    runs: HashMap<i32, Vec<(usize, usize)>>,
    source: Source,
}

enum Source {
    /// Parquet read by row slices, with its footer read once.
    Parquet(FileMetadataRef),
    /// The value columns of every row, as f64.
    Memory(Vec<Vec<f64>>),
}

/// One era's rows of a [`ByEra`] file.
pub struct EraRows {
    /// The file's rows (0-based, file order).
    pub rows: Vec<usize>,
    /// The value columns on those rows (null → NaN).
    pub columns: Vec<Vec<f64>>,
}

/// Numeric columns that are neither keys nor targets.
fn value_names(frame: &DataFrame, keys: [&str; 2]) -> Vec<String> {
    frame
        .columns()
        .iter()
        .filter(|c| c.dtype().is_primitive_numeric())
        .map(|c| c.name().to_string())
        .filter(|n| !keys.contains(&n.as_str()) && !n.starts_with("target"))
        .collect()
}

/// The value columns read: `names` (each refused when the file lacks it), else every numeric
/// column besides the keys and targets.
fn chosen(path: &Path, frame: &DataFrame, keys: [&str; 2], names: Option<&[String]>) -> Result<Vec<String>> {
    let Some(names) = names else { return Ok(value_names(frame, keys)) };
    match names.iter().find(|n| frame.column(n).is_err()) {
        Some(n) => Err(Error::at(path, None, n, "no such column")),
        None => Ok(names.to_vec()),
    }
}

fn f64_values(path: &Path, frame: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let c = frame.column(name).map_err(|e| Error::table(path, e))?;
    let c = c.cast(&DataType::Float64).map_err(|e| Error::at(path, None, name, format!("not numeric: {e}")))?;
    Ok(c.f64().map_err(|e| Error::table(path, e))?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Runs of consecutive rows of one era.
fn era_runs(fridays: &[i32]) -> HashMap<i32, Vec<(usize, usize)>> {
    let mut runs: HashMap<i32, Vec<(usize, usize)>> = HashMap::new();
    let mut start = 0;
    for i in 1..=fridays.len() {
        if i == fridays.len() || fridays[i] != fridays[start] {
            runs.entry(era_of_days(fridays[start])).or_default().push((start, i - start));
            start = i;
        }
    }
    runs
}

impl ByEra {
    /// Reads and checks the keys of `path`; a parquet file grouped by date keeps its values on disk.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_columns(path, None)
    }

    /// [`ByEra::open`] with only the value columns `names` (every numeric one when None); a name
    /// the file lacks is refused, naming it.
    pub fn open_columns(path: &Path, names: Option<&[String]>) -> Result<Self> {
        Self::open_with(path, names, None)
    }

    /// [`ByEra::open_columns`] of the file `keys` were read from (with [`KeyedTable::read_columns`]),
    /// whose keys are not read again.
    pub fn with_keys(keys: &KeyedTable, names: &[String]) -> Result<Self> {
        Self::open_with(&keys.path, Some(names), Some(keys))
    }

    fn open_with(path: &Path, names: Option<&[String]>, known: Option<&KeyedTable>) -> Result<Self> {
        if format_of(path)? != Format::Parquet || !path.exists() {
            return Self::whole(path, names);
        }
        let mut reader = ParquetReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
        let meta = reader.get_metadata().map_err(|e| Error::table(path, e))?.clone();
        let empty = reader.with_slice(Some((0, 0))).finish().map_err(|e| Error::table(path, e))?;
        let fix = "is this a Numerai neutralizer or sample-weights file?";
        let ticker =
            find_column(&empty, &TICKER_COLUMNS).ok_or_else(|| missing_column(path, &empty, &TICKER_COLUMNS, fix))?;
        let date =
            find_column(&empty, &DATE_COLUMNS).ok_or_else(|| missing_column(path, &empty, &DATE_COLUMNS, fix))?;
        let names = chosen(path, &empty, [&ticker, &date], names)?;
        let keys = match known {
            Some(k) => k.clone(),
            None => {
                let mut reader = ParquetReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
                reader.set_metadata(meta.clone());
                let frame =
                    reader.with_columns(Some(vec![ticker, date])).finish().map_err(|e| Error::table(path, e))?;
                KeyedTable::from_frame(path, frame)?
            }
        };
        let runs = era_runs(&keys.fridays);
        if runs.values().map(Vec::len).sum::<usize>() > 2 * runs.len() + 16 {
            eprintln!(
                "note: {} is not grouped by date, so it is read whole; sort it by date (as Numerai ships it) to read it \
                 era by era in bounded memory",
                path.display()
            );
            return Self::whole(path, Some(&names));
        }
        Ok(ByEra { keys, names, runs, source: Source::Parquet(meta) })
    }

    /// Reads the whole file (its keys and the columns `names`) into memory.
    fn whole(path: &Path, names: Option<&[String]>) -> Result<Self> {
        let keys = match names {
            Some(n) => KeyedTable::read_columns(path, |_| n.to_vec())?,
            None => KeyedTable::read(path)?,
        };
        let names = chosen(path, &keys.frame, [&keys.ticker_column, &keys.date_column], names)?;
        let columns = names.iter().map(|n| f64_values(path, &keys.frame, n)).collect::<Result<Vec<_>>>()?;
        let runs = era_runs(&keys.fridays);
        Ok(ByEra { keys, names, runs, source: Source::Memory(columns) })
    }

    /// The file read.
    pub fn path(&self) -> &PathBuf {
        &self.keys.path
    }

    /// The rows of `era` (YYYYMMDD) and their value columns; none when the file lacks the era.
    pub fn era(&self, era: i32) -> Result<EraRows> {
        let runs = self.runs.get(&era).map(Vec::as_slice).unwrap_or_default();
        let rows: Vec<usize> = runs.iter().flat_map(|&(a, n)| a..a + n).collect();
        let columns = match &self.source {
            Source::Memory(all) => all.iter().map(|c| rows.iter().map(|&i| c[i]).collect()).collect(),
            Source::Parquet(meta) => {
                let mut columns = vec![Vec::with_capacity(rows.len()); self.names.len()];
                for &run in runs {
                    let frame = self.read_run(meta, run)?;
                    for (c, name) in columns.iter_mut().zip(&self.names) {
                        c.extend(f64_values(self.path(), &frame, name)?);
                    }
                }
                columns
            }
        };
        Ok(EraRows { rows, columns })
    }

    /// The value columns of rows `first .. first + len`: only the row groups holding them are
    /// read (the file is opened afresh, so no mapping of it outlives the era).
    fn read_run(&self, meta: &FileMetadataRef, (first, len): (usize, usize)) -> Result<DataFrame> {
        let path = self.path();
        let mut reader = ParquetReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
        reader.set_metadata(meta.clone());
        reader
            .with_columns(Some(self.names.clone()))
            .with_slice(Some((first, len)))
            .finish()
            .map_err(|e| Error::table(path, e))
    }
}
