//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod mock;

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes a frame as parquet to `dir/name`.
pub fn write_parquet(dir: &Path, name: &str, mut df: DataFrame) -> PathBuf {
    let p = dir.join(name);
    ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut df).unwrap();
    p
}

/// Reads a parquet file.
pub fn read_parquet(p: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap()
}

/// A string column as owned optional strings.
pub fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    df.column(col).unwrap().str().unwrap().iter().map(|s| s.map(str::to_string)).collect()
}

/// The shared real data folder, if present.
pub fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-2011-2013");
    p.join("targets.parquet").exists().then_some(p)
}
