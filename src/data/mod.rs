//! Ingest: Numerai rows and headlines from CSV, Parquet or JSON Lines, validated and normalised.

pub mod atomic;
pub mod by_era;
pub mod headlines;
pub mod journal;
pub mod lock;
pub mod signal;
pub mod targets;
pub mod tickers;
pub mod time;
pub mod window;

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
pub use atomic::{write_atomic, write_bytes_atomic};

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
///
/// CSV files are checked first: every record must have as many fields as the header and every
/// quote must close, else the error names the line (counting the header as line 1) and the fix.
pub fn read_table(path: &Path, strings: bool) -> Result<DataFrame> {
    let format = format_of(path)?;
    if !path.exists() {
        return Err(Error::input(path, "file not found"));
    }
    if format != Format::Parquet {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        utf8_of(path, &bytes)?;
        if format == Format::Csv {
            check_csv_shape(path, &bytes)?;
        }
    }
    match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(if strings { Some(0) } else { None })
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| csv_error(path, e)),
        Format::Parquet => {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            ParquetReader::new(f).finish().map_err(|e| Error::table(path, e))
        }
        Format::JsonLines => {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            JsonReader::new(f)
                .with_json_format(JsonFormat::JsonLines)
                .infer_schema_len(None)
                .finish()
                .map_err(|e| Error::table(path, e))
        }
    }
}

/// A table's columns: a parquet file's as a frame with no rows (only its footer is read), any
/// other file read whole.
pub fn read_schema(path: &Path) -> Result<DataFrame> {
    if format_of(path)? != Format::Parquet || !path.exists() {
        return read_table(path, false);
    }
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(f).with_slice(Some((0, 0))).finish().map_err(|e| Error::table(path, e))
}

/// Fails with the line and byte offset of the first invalid UTF-8 sequence in a text file.
pub fn check_utf8(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    utf8_of(path, &bytes)
}

fn utf8_of(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Err(e) = std::str::from_utf8(bytes) {
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

/// How a CSV walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvEnd {
    /// Every record was seen (or the visitor stopped).
    Done,
    /// A quote opened on this line (1-based) never closes.
    Unclosed(usize),
}

/// Walks the records of CSV text the way the reader splits them (`,` between fields, a `"` at the
/// start of a field quotes it, `""` inside quotes is a quote, `\n` or `\r\n` ends a record outside
/// quotes). Calls `visit(first_line, last_line, fields)` per record, lines 1-based, until it returns
/// false; a blank line is a record of 0 fields (the reader takes it for a row of nulls). Linear in
/// the file's size.
fn walk_csv(bytes: &[u8], mut visit: impl FnMut(usize, usize, usize) -> bool) -> CsvEnd {
    let (mut line, mut start, mut fields) = (1usize, 1usize, 1usize);
    let (mut in_quotes, mut field_start, mut blank, mut quote_line) = (false, true, true, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'"' if bytes.get(i + 1) == Some(&b'"') => i += 1,
                b'"' => in_quotes = false,
                b'\n' => line += 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' if field_start => {
                in_quotes = true;
                quote_line = line;
                field_start = false;
                blank = false;
            }
            b',' => {
                fields += 1;
                field_start = true;
                blank = false;
            }
            b'\n' => {
                if !visit(start, line, if blank { 0 } else { fields }) {
                    return CsvEnd::Done;
                }
                line += 1;
                (start, fields, field_start, blank) = (line, 1, true, true);
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            _ => {
                field_start = false;
                blank = false;
            }
        }
        i += 1;
    }
    if in_quotes {
        return CsvEnd::Unclosed(quote_line);
    }
    if !blank {
        visit(start, line, fields);
    }
    CsvEnd::Done
}

/// Refuses CSV text whose records do not all have the header's number of fields, or with a quote
/// that never closes: the error names the line and how to fix it.
fn check_csv_shape(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut header: Option<usize> = None;
    let mut bad: Option<(usize, usize, usize)> = None;
    let end = walk_csv(bytes, |first, last, fields| match header {
        None => {
            header = Some(fields);
            true
        }
        // A blank line in a one-column file is an empty value.
        Some(1) if fields == 0 => true,
        Some(n) if n != fields => {
            bad = Some((first, last, fields));
            false
        }
        Some(_) => true,
    });
    let n = header.unwrap_or(0);
    if let Some((first, last, found)) = bad {
        let fix = format!(
            "make every row have {n} fields as in the header (a value holding a comma must be quoted: \"a, b\")"
        );
        let msg = if found == 0 {
            format!(
                "line {first} is blank (it would be read as a row of empty values); remove blank lines, every row needs its {n} fields"
            )
        } else if last > first {
            format!(
                "the record starting at line {first} runs on to line {last} (a quote opened on line {first} closes only there) and has {found} fields, the header has {n}; balance the quote ({fix})"
            )
        } else {
            format!("line {first} has {found} fields, the header (line 1) has {n}; {fix}")
        };
        return Err(Error::input(path, msg));
    }
    if let CsvEnd::Unclosed(line) = end {
        return Err(Error::input(
            path,
            format!(
                "line {line}: a quote opens here and never closes; balance the quote (a quote inside a quoted value is written twice: \"say \"\"hi\"\"\")"
            ),
        ));
    }
    Ok(())
}

/// The CSV reader's error as one message for the user: the file, the line when it can be told,
/// and no advice about options of other tools (polars' hints name Python arguments).
fn csv_error(path: &Path, e: PolarsError) -> Error {
    const HINTS: [&str; 8] = [
        "You might want to try",
        "Consider ",
        "consider ",
        "truncate_ragged_lines",
        "infer_schema_length",
        "schema_overrides",
        "ignore_errors",
        "null_values",
    ];
    let text = e.to_string();
    let mut cut = text.len();
    for h in HINTS {
        if let Some(at) = text.find(h) {
            // Back to the start of the sentence or line holding the hint.
            let from = text[..at].rfind(['\n', '.', ';']).map(|p| p + 1).unwrap_or(0);
            cut = cut.min(from);
        }
    }
    let mut msg: String = text[..cut].split_whitespace().collect::<Vec<_>>().join(" ");
    let msg_end = msg.trim_end_matches([',', ';', ':', ' ']).len();
    msg.truncate(msg_end);
    if msg.is_empty() {
        msg = "the CSV reader failed".into();
    }
    let offset = text.find("offset in the file is ").and_then(|at| {
        text[at + 22..].split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<usize>().ok())
    });
    let line = offset.and_then(|o| {
        let bytes = std::fs::read(path).ok()?;
        Some(bytes[..o.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1)
    });
    let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
    Error::input(
        path,
        format!(
            "{at}cannot read the CSV: {msg}; check that line against the header (same number of fields, text values quoted when they hold commas, quotes balanced)"
        ),
    )
}

/// The lines (1-based, the header being line 1) on which the 1-based data `rows` of a CSV file
/// start; `None` for other formats or an unreadable file. For error messages.
pub fn csv_lines_of_rows(path: &Path, rows: &[usize]) -> Option<Vec<usize>> {
    if format_of(path).ok()? != Format::Csv {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let want = rows.iter().copied().max()?;
    let mut starts = Vec::with_capacity(want + 1);
    walk_csv(&bytes, |first, _, _| {
        starts.push(first);
        starts.len() <= want
    });
    rows.iter().map(|&r| starts.get(r).copied()).collect()
}

/// "rows 2 and 5 (1-based data rows, the header not counted; lines 3 and 6 of the CSV)": names
/// rows of `path` for a message, with their CSV line numbers when the file is a CSV.
pub fn rows_text(path: &Path, rows: &[usize]) -> String {
    let list = |v: &[usize]| match v {
        [] => String::new(),
        [a] => a.to_string(),
        [init @ .., last] => {
            format!("{} and {last}", init.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "))
        }
    };
    let word = if rows.len() == 1 { "row" } else { "rows" };
    match csv_lines_of_rows(path, rows) {
        Some(lines) => format!(
            "{word} {} (1-based data rows, the header not counted; line{} {} of the CSV file)",
            list(rows),
            if lines.len() == 1 { "" } else { "s" },
            list(&lines)
        ),
        None => format!("{word} {} (1-based data rows)", list(rows)),
    }
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
    write_atomic(path, |_, f| {
        ParquetWriter::new(f)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(meta)
            .finish(df)
            .map(|_| ())
            .map_err(|e| Error::table(path, e))
    })
}

/// Refuses an output path that names one of the stage's inputs (the same file through any path
/// or link) or that is not a regular file: an output never replaces an input.
pub fn guard_output(out: &Path, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(out) else { return Ok(()) };
    atomic::check_replaceable(out, &meta)?;
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

/// Refuses an output folder `out` (named by the option `out_flag`) that is, holds or sits inside
/// one of the input folders `inputs` (each with its option), through any path or link: writing
/// there would overwrite or mix with the input's files. A missing `out` is fine; an existing
/// one must be a folder.
pub fn guard_output_folder(out: &Path, out_flag: &str, inputs: &[(&Path, &str)]) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::input(out, format!("{out_flag} is a file, not a folder: name a folder for the output")));
    }
    let o = resolved(out);
    for (input, flag) in inputs {
        let Ok(i) = std::fs::canonicalize(input) else { continue };
        let how = if o == i {
            format!("{out_flag} is the {flag} folder {}", input.display())
        } else if o.starts_with(&i) {
            format!("{out_flag} is inside the {flag} folder {}", input.display())
        } else if i.starts_with(&o) {
            format!("the {flag} folder {} is inside {out_flag}", input.display())
        } else {
            continue;
        };
        return Err(Error::input(
            out,
            format!("{how}: the output would overwrite or mix with {flag}'s files; name a new folder for {out_flag}"),
        ));
    }
    Ok(())
}

/// `p` made absolute with every link resolved, as far as it exists (the missing rest appended).
fn resolved(p: &Path) -> std::path::PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |acc, name| acc.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return abs,
        }
    }
}

/// Writes a CSV file atomically (temporary file, then rename).
pub fn write_csv_atomic(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_atomic(path, |_, f| CsvWriter::new(f).include_header(true).finish(df).map_err(|e| Error::table(path, e)))
}

/// Writes a table atomically as CSV or parquet, chosen by the file's extension.
pub fn write_table_atomic(df: &mut DataFrame, path: &Path) -> Result<()> {
    match format_of(path)? {
        Format::Csv => write_csv_atomic(df, path),
        Format::Parquet => write_parquet_atomic(df, path),
        _ => Err(Error::Config(format!("{}: write .csv or .parquet", path.display()))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> (Vec<(usize, usize, usize)>, CsvEnd) {
        let mut v = Vec::new();
        let end = walk_csv(text.as_bytes(), |a, b, n| {
            v.push((a, b, n));
            true
        });
        (v, end)
    }

    #[test]
    fn csv_walk_follows_quotes_and_lines() {
        assert_eq!(records("a,b\n1,2\n"), (vec![(1, 1, 2), (2, 2, 2)], CsvEnd::Done));
        // No final newline, CRLF, blank lines, a quoted comma, a doubled quote, a newline in quotes.
        let (v, end) = records("a,b\r\n\r\n\"x,\"\"y\"\"\",2\r\n\"two\nlines\",3");
        assert_eq!((v, end), (vec![(1, 1, 2), (2, 2, 0), (3, 3, 2), (4, 5, 2)], CsvEnd::Done));
        // A quote mid-value is text, as for the reader.
        assert_eq!(records("a,b\n5\" screen,2\n").0, vec![(1, 1, 2), (2, 2, 2)]);
        assert_eq!(records("a,b\n1,\"open\n2,3\n").1, CsvEnd::Unclosed(2));
    }

    #[test]
    fn csv_shape_names_the_line() {
        let p = Path::new("x.csv");
        assert!(check_csv_shape(p, b"a,b\n1,2\n").is_ok());
        assert!(check_csv_shape(p, b"").is_ok());
        assert!(check_csv_shape(p, b"a\n1\n\n2\n").is_ok(), "an empty value in a one-column file");
        let e = check_csv_shape(p, b"a,b\n1,2\n\n").unwrap_err().to_string();
        assert!(e.contains("line 3 is blank") && e.contains("remove blank lines"), "{e}");
        let e = check_csv_shape(p, b"a,b\n1,2\n1,2,3\n").unwrap_err().to_string();
        assert!(e.starts_with("x.csv: line 3 has 3 fields, the header (line 1) has 2"), "{e}");
        let e = check_csv_shape(p, b"a,b\n1,\"x\n").unwrap_err().to_string();
        assert!(e.contains("line 2: a quote opens here and never closes"), "{e}");
    }

    #[test]
    fn polars_hints_are_dropped() {
        let e = PolarsError::ComputeError(
            "could not parse `x` as dtype `i64` at column 'b' (column number 2)\n\nThe current offset in the file is 6 bytes.\n\nYou might want to try:\n- increasing `infer_schema_length` (e.g. `infer_schema_length=10000`),\n- setting `ignore_errors` to `True`".into(),
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "a,b\n1,x\n").unwrap();
        let m = csv_error(&p, e).to_string();
        assert!(m.contains("x.csv: line 2: cannot read the CSV: could not parse `x` as dtype `i64`"), "{m}");
        assert!(!m.contains("infer_schema_length") && !m.contains("ignore_errors") && !m.contains("try"), "{m}");
        let e = PolarsError::ComputeError(
            "found more fields than defined in 'Schema'\n\nConsider setting 'truncate_ragged_lines=True'.".into(),
        );
        let m = csv_error(&p, e).to_string();
        assert!(m.contains("found more fields than defined in 'Schema'") && !m.contains("truncate"), "{m}");
    }

    #[test]
    fn rows_text_gives_csv_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "a,b\n1,\"two\nlines\"\n2,y\n").unwrap();
        assert_eq!(csv_lines_of_rows(&p, &[1, 2]), Some(vec![2, 4]));
        assert_eq!(rows_text(&p, &[2]), "row 2 (1-based data rows, the header not counted; line 4 of the CSV file)");
        assert_eq!(rows_text(Path::new("x.parquet"), &[1, 3]), "rows 1 and 3 (1-based data rows)");
    }
}
