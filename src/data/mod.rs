//! Ingest: Numerai rows and headlines from CSV, Parquet or JSON Lines, validated and normalised.

pub mod headlines;
pub mod targets;
pub mod tickers;
pub mod time;

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

/// A table file format, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    JsonLines,
}

/// The format of a file from its extension (`.csv`, `.parquet`/`.pq`, `.jsonl`/`.ndjson`).
pub fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Ok(Format::Csv),
        "parquet" | "pq" => Ok(Format::Parquet),
        "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
        _ => Err(Error::input(
            path,
            "unknown file type: use .csv, .parquet (or .pq), or .jsonl (JSON Lines, one object per line)",
        )),
    }
}

/// Reads a whole table. With `strings` every CSV column is read as text (the caller parses it).
pub fn read_table(path: &Path, strings: bool) -> Result<DataFrame> {
    let format = format_of(path)?;
    if !path.exists() {
        return Err(Error::input(path, "file not found"));
    }
    if format != Format::Parquet {
        check_utf8(path)?;
    }
    let df = match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(if strings { Some(0) } else { None })
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish()),
        Format::Parquet => {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            ParquetReader::new(f).finish()
        }
        Format::JsonLines => {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            JsonReader::new(f).with_json_format(JsonFormat::JsonLines).infer_schema_len(None).finish()
        }
    };
    df.map_err(|e| Error::table(path, e))
}

/// Fails with the line and byte offset of the first invalid UTF-8 sequence in a text file.
pub fn check_utf8(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if let Err(e) = std::str::from_utf8(&bytes) {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Error::input(
            path,
            format!(
                "invalid UTF-8 at line {line} (byte offset {at}); re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`"
            ),
        ));
    }
    Ok(())
}

/// The first of `candidates` present in `df`, matched exactly, then ignoring case.
pub fn find_column(df: &DataFrame, candidates: &[&str]) -> Option<String> {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    candidates
        .iter()
        .find_map(|c| names.iter().find(|n| n == c))
        .or_else(|| candidates.iter().find_map(|c| names.iter().find(|n| n.eq_ignore_ascii_case(c))))
        .cloned()
}

/// An error for a missing column that lists the columns present and how to name the right one.
pub fn missing_column(path: &Path, df: &DataFrame, wanted: &[&str], fix: &str) -> Error {
    let have: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    Error::input(path, format!("no column {} (columns found: {}); {fix}", wanted.join(" or "), have.join(", ")))
}

/// A column's values as optional text, casting non-text columns.
pub fn str_values(path: &Path, df: &DataFrame, name: &str) -> Result<StringChunked> {
    let col = df.column(name).map_err(|e| Error::table(path, e))?;
    let s = col.as_materialized_series().cast(&DataType::String).map_err(|e| Error::table(path, e))?;
    let ca = s.str().map_err(|e| Error::table(path, e))?.rechunk().into_owned();
    Ok(ca)
}

/// Writes a parquet file atomically: to a temporary file beside it, then renamed into place.
pub fn write_parquet_atomic(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_parquet_with(df, path, None)
}

/// Writes a parquet file atomically with key-value metadata (signalkit's provenance).
pub fn write_parquet_with(df: &mut DataFrame, path: &Path, meta: Option<KeyValueMetadata>) -> Result<()> {
    let tmp = temp_path(path)?;
    let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written =
        ParquetWriter::new(f).with_compression(ParquetCompression::Zstd(None)).with_key_value_metadata(meta).finish(df);
    finish_atomic(written.map(|_| ()).map_err(|e| Error::table(path, e)), &tmp, path)
}

/// Refuses an output path that names one of the stage's inputs (the same file through any path
/// or link) or that is not a regular file: an output never replaces an input.
pub fn guard_output(out: &Path, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(out) else { return Ok(()) };
    check_replaceable(out, &meta)?;
    for input in inputs {
        if std::fs::metadata(input).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino()) {
            return Err(Error::input(
                out,
                format!("the output would replace the input {}: name a new file for the output", input.display()),
            ));
        }
    }
    Ok(())
}

/// An existing output must be a plain file: never a link, FIFO, device or folder.
fn check_replaceable(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let t = meta.file_type();
    let kind = if t.is_symlink() {
        "a symbolic link (writing would cut the link and leave its target stale)"
    } else if t.is_dir() {
        "a folder"
    } else if !t.is_file() {
        "a FIFO, socket or device, not a file"
    } else {
        return Ok(());
    };
    Err(Error::input(path, format!("the output path is {kind}: name a regular file path for the output")))
}

/// Writes a CSV file atomically (temporary file, then rename).
pub fn write_csv_atomic(df: &mut DataFrame, path: &Path) -> Result<()> {
    let tmp = temp_path(path)?;
    let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let written = CsvWriter::new(f).include_header(true).finish(df);
    finish_atomic(written.map_err(|e| Error::table(path, e)), &tmp, path)
}

fn temp_path(path: &Path) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let name = path.file_name().ok_or_else(|| Error::Config(format!("{}: not a file path", path.display())))?;
    Ok(path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id())))
}

fn finish_atomic(written: Result<()>, tmp: &Path, path: &Path) -> Result<()> {
    let done = written
        .and_then(|_| match std::fs::symlink_metadata(path) {
            Ok(meta) => check_replaceable(path, &meta),
            Err(_) => Ok(()),
        })
        .and_then(|_| File::open(tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(tmp, e)))
        .and_then(|_| std::fs::rename(tmp, path).map_err(|e| Error::io(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    done
}

/// Writes a table atomically as CSV or parquet, chosen by the file's extension.
pub fn write_table_atomic(df: &mut DataFrame, path: &Path) -> Result<()> {
    match format_of(path)? {
        Format::Csv => write_csv_atomic(df, path),
        Format::Parquet => write_parquet_atomic(df, path),
        _ => Err(Error::Config(format!("{}: write .csv or .parquet", path.display()))),
    }
}

/// Writes bytes atomically (temporary file beside it, then rename).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let written = std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e));
    finish_atomic(written, &tmp, path)
}

/// A streamed content hash of a file (xxh3-64, hex), recorded so outputs name their inputs.
pub fn file_hash(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:016x}", hasher.digest()))
}
