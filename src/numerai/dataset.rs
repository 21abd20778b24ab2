//! `[numerai] dataset = "signals/v2.1"` in `signalkit run`: Numerai's own files found in (or
//! downloaded into) one folder, checked for v2.1's keys, stacked into the one keyed table the
//! join reads (`data_type` says which file each row came from), scored as Numerai pays (the
//! validation neutralizers and sample weights), and the live rows predicted into a signal file.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::targets::KeyedTable;
use crate::data::{Format, format_of, read_table, write_parquet_with};
use crate::era::date_from_days;
use crate::error::{Error, Result};
use crate::metrics::Summary;
use crate::provenance::Provenance;

use super::ApiArgs;

/// The dataset versions `[numerai] dataset` takes.
pub const DATASETS: [&str; 1] = ["signals/v2.1"];
/// The files of a v2.1 run (train_neutralizer and train_sample_weights are not needed: payout
/// scores are taken on the validation eras).
pub const FILES: [&str; 5] = [
    "train.parquet",
    "validation.parquet",
    "live.parquet",
    "validation_neutralizer.parquet",
    "validation_sample_weights.parquet",
];
/// v2.1's keys: every file is keyed by these.
pub const KEYS: [&str; 2] = ["numerai_ticker", "date"];

/// `[numerai]` in `run`: train on Numerai's own dataset (its features, targets, neutralizers and
/// sample weights) plus the news features, and end with the live week's signal file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumeraiConfig {
    /// Numerai's dataset version (`signals/v2.1`).
    pub dataset: String,
    /// The folder holding the dataset's files (missing ones are downloaded into it).
    pub dir: PathBuf,
    /// Fetch missing files through Numerai's API (no key needed; `NUMERAI_API_URL` overrides
    /// the endpoint); false: refuse, naming the missing files.
    pub download: bool,
    /// Your Signals model's name on numer.ai, for the printed `submit` command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

impl Default for NumeraiConfig {
    fn default() -> Self {
        NumeraiConfig { dataset: DATASETS[0].into(), dir: "data/signals/v2.1".into(), download: true, model_name: None }
    }
}

/// A v2.1 dataset's files, found or downloaded.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// train.parquet, validation.parquet, live.parquet.
    pub parts: [PathBuf; 3],
    /// validation_neutralizer.parquet.
    pub neutralizers: PathBuf,
    /// validation_sample_weights.parquet.
    pub sample_weights: PathBuf,
    /// The files fetched this run (dataset names).
    pub downloaded: Vec<String>,
}

/// The names `data_type` takes, one per part.
const PARTS: [&str; 3] = ["train", "validation", "live"];

impl NumeraiConfig {
    /// Finds the dataset's files in `dir`, downloading the missing ones when `download` is set.
    pub fn locate(&self, api: &ApiArgs) -> Result<Dataset> {
        if !DATASETS.contains(&self.dataset.as_str()) {
            return Err(Error::Config(format!(
                "[numerai] dataset = {:?}: signalkit reads {} (Numerai's current Signals data); set dataset = \"{}\"",
                self.dataset,
                DATASETS.join(", "),
                DATASETS[0]
            )));
        }
        let missing: Vec<&str> = FILES.iter().copied().filter(|f| !self.dir.join(f).is_file()).collect();
        let mut downloaded = Vec::new();
        if !missing.is_empty() && !self.download {
            return Err(Error::Config(format!(
                "[numerai] dir {}: missing {}; set [numerai] download = true to fetch them, or fetch each with \
                 `signalkit download {}/FILE --out {}`",
                self.dir.display(),
                missing.join(", "),
                self.dataset,
                self.dir.display()
            )));
        }
        if !missing.is_empty() {
            let client = api.client()?;
            for f in missing {
                let name = format!("{}/{f}", self.dataset);
                client.download_dataset(&name, &self.dir, None).map_err(|e| {
                    Error::Config(format!(
                        "[numerai] download of {name} into {} failed: {e} (or place the file there and set download = false)",
                        self.dir.display()
                    ))
                })?;
                downloaded.push(name);
            }
        }
        let at = |f: &str| self.dir.join(f);
        Ok(Dataset {
            parts: [at(FILES[0]), at(FILES[1]), at(FILES[2])],
            neutralizers: at(FILES[3]),
            sample_weights: at(FILES[4]),
            downloaded,
        })
    }
}

/// What [`Dataset::write_table`] stacked.
#[derive(Debug, Clone)]
pub struct TableSummary {
    /// Rows per part (train, validation, live).
    pub rows: [usize; 3],
    /// Eras per part.
    pub eras: [usize; 3],
    /// The live week's date.
    pub live_date: chrono::NaiveDate,
    /// `feature_*` columns.
    pub features: usize,
}

impl std::fmt::Display for TableSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ([t, v, l], [te, ve, _]) = (self.rows, self.eras);
        write!(
            f,
            "{t} train rows ({te} eras), {v} validation rows ({ve} eras), {l} live rows for {}, {} Numerai features",
            self.live_date, self.features
        )
    }
}

/// Refuses a file not keyed by v2.1's `numerai_ticker` and `date`, naming the keys it has.
fn check_keys(path: &Path, columns: &[String]) -> Result<()> {
    let lacking: Vec<&str> = KEYS.iter().copied().filter(|k| !columns.iter().any(|c| c == k)).collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let found: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| c.contains("ticker") || c.contains("date") || c.contains("figi") || c.contains("era"))
        .collect();
    Err(Error::input(
        path,
        format!(
            "not keyed as Numerai's signals/v2.1 is (lacks {}; key-like columns: {found:?}): [numerai] dataset = \
             \"signals/v2.1\" reads Numerai's own files keyed by numerai_ticker and date; delete it so the run \
             downloads it again, or set [numerai] dir to the folder of the v2.1 files",
            lacking.join(", ")
        ),
    ))
}

/// The column names of a parquet file (its footer only) or of a whole table.
fn column_names(path: &Path) -> Result<Vec<String>> {
    let frame = match format_of(path)? {
        Format::Parquet => {
            let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            ParquetReader::new(f).with_slice(Some((0, 0))).finish().map_err(|e| Error::table(path, e))?
        }
        _ => read_table(path, false)?,
    };
    Ok(frame.get_column_names().iter().map(|c| c.to_string()).collect())
}

impl Dataset {
    /// Reads train, validation and live, checks their keys and that their dates follow one
    /// another, and writes them stacked to `out` with `data_type` (train/validation/live); the
    /// neutralizer and sample-weight files are checked for the same keys (their footers only).
    pub fn write_table(&self, out: &Path) -> Result<TableSummary> {
        for p in [&self.neutralizers, &self.sample_weights] {
            check_keys(p, &column_names(p)?)?;
        }
        let mut frames = Vec::new();
        let mut spans = Vec::new();
        for (path, kind) in self.parts.iter().zip(PARTS) {
            let frame = read_table(path, false)?;
            let names: Vec<String> = frame.get_column_names().iter().map(|c| c.to_string()).collect();
            check_keys(path, &names)?;
            let t = KeyedTable::from_frame(path, frame)?;
            let first = t.fridays.iter().min().copied();
            let last = t.fridays.iter().max().copied();
            let (Some(first), Some(last)) = (first, last) else {
                return Err(Error::input(path, "no rows: download it again (delete it and re-run)"));
            };
            let eras = t.fridays.iter().collect::<std::collections::BTreeSet<_>>().len();
            spans.push((first, last, eras, t.len()));
            let mut frame = t.frame;
            if frame.column("data_type").is_ok() {
                frame.drop_in_place("data_type").map_err(|e| Error::table(path, e))?;
            }
            let kinds = Column::new("data_type".into(), vec![kind; frame.height()]);
            frame.with_column(kinds).map_err(|e| Error::table(path, e))?;
            frames.push(frame);
        }
        check_order(&self.parts, &spans)?;
        let features = frames[0].get_column_names().iter().filter(|c| c.starts_with("feature_")).count();
        let mut table = stack(out, frames)?;
        write_parquet_with(&mut table, out, None)?;
        Ok(TableSummary {
            rows: [spans[0].3, spans[1].3, spans[2].3],
            eras: [spans[0].2, spans[1].2, spans[2].2],
            live_date: date_from_days(spans[2].1),
            features,
        })
    }
}

/// Refuses train, validation and live whose dates overlap or come out of order.
fn check_order(parts: &[PathBuf; 3], spans: &[(i32, i32, usize, usize)]) -> Result<()> {
    for i in 1..3 {
        let (before, after) = (spans[i - 1], spans[i]);
        if after.0 <= before.1 {
            return Err(Error::input(
                &parts[i],
                format!(
                    "its dates start {} but {} runs to {}: Numerai's {} follows {} in time; download both again \
                     from the same dataset ([numerai] dataset) into [numerai] dir",
                    date_from_days(after.0),
                    parts[i - 1].display(),
                    date_from_days(before.1),
                    FILES[i],
                    FILES[i - 1]
                ),
            ));
        }
    }
    Ok(())
}

/// Stacks frames whose columns differ (live has no targets): every column of any frame, in the
/// order first seen, with the first frame's type; a frame lacking one gets nulls.
fn stack(out: &Path, frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut schema: Vec<(PlSmallStr, DataType)> = Vec::new();
    for f in &frames {
        for c in f.columns() {
            if !schema.iter().any(|(n, _)| n == c.name()) {
                schema.push((c.name().clone(), c.dtype().clone()));
            }
        }
    }
    let mut stacked: Option<DataFrame> = None;
    for f in frames {
        let cols = schema
            .iter()
            .map(|(name, dtype)| match f.column(name) {
                Ok(c) if c.dtype() == dtype => Ok(c.clone()),
                Ok(c) => {
                    c.cast(dtype).map_err(|e| Error::at(out, None, name, format!("types differ between files: {e}")))
                }
                Err(_) => Ok(Column::full_null(name.clone(), f.height(), dtype)),
            })
            .collect::<Result<Vec<_>>>()?;
        let f = DataFrame::new(f.height(), cols).map_err(|e| Error::table(out, e))?;
        match stacked.as_mut() {
            Some(s) => {
                s.vstack_mut(&f).map_err(|e| Error::table(out, e))?;
            }
            None => stacked = Some(f),
        }
    }
    let mut s = stacked.unwrap_or_default();
    s.rechunk_mut();
    Ok(s)
}

/// Refuses a join that gave no Numerai row a headline (of `headlines` read, `unknown` named a
/// ticker outside the rows): the tickers of the headlines and of `numerai_ticker` do not meet.
pub fn check_join_met(path: &Path, headlines: usize, rows_with_headline: usize, unknown: usize) -> Result<()> {
    if headlines > 0 && rows_with_headline == 0 {
        return Err(Error::input(
            path,
            format!(
                "no Numerai row got a headline ({} of {} headlines name a ticker outside numerai_ticker): v2.1 keys \
                 rows by numerai_ticker (\"AAPL US\"); set [data] ticker_suffix (default \" US\") or [data] ticker_map \
                 so the headline tickers become numerai_ticker values",
                unknown, headlines
            ),
        ));
    }
    Ok(())
}

/// The live rows of `features` (`data_type = live`), with its provenance, written to
/// `RUN/live_features.parquet` for `predict`; returns that path.
pub fn live_rows(features: &Path, run: &Path) -> Result<PathBuf> {
    let table = read_table(features, false)?;
    let mut live = table
        .column("data_type")
        .and_then(|c| c.str().map(|s| s.equal("live")))
        .and_then(|mask| table.filter(&mask))
        .map_err(|e| Error::table(features, e))?;
    if live.height() == 0 {
        return Err(Error::input(features, "no live rows (data_type = live): is live.parquet empty?"));
    }
    let path = run.join("live_features.parquet");
    let meta = Provenance::read(features)?.map(|p| p.to_metadata());
    write_parquet_with(&mut live, &path, meta)?;
    Ok(path)
}

/// The lines the run ends with, once `signal` (written as `written` says) passes Signals' rules:
/// the payout scores as Numerai pays (`alpha`, `neutral_corr`), the signal file and the
/// `submit --dry-run` command that checks and would upload it.
pub fn closing_lines(
    cfg: &NumeraiConfig,
    ds: &Dataset,
    alpha: Option<&Summary>,
    neutral_corr: Option<&Summary>,
    signal: &Path,
    written: &dyn std::fmt::Display,
) -> Result<Vec<String>> {
    super::validate_submission(signal, Some(&ds.parts[2]))?;
    let mean = |x: Option<&Summary>| x.map_or("n/a".into(), |s| format!("{:+.4} over {} eras", s.mean, s.eras));
    Ok(vec![
        format!(
            "as Numerai pays (validation eras, neutralizers and sample weights of {}): alpha {}, neutral corr {}",
            cfg.dataset,
            mean(alpha),
            mean(neutral_corr)
        ),
        format!("signal: {written} → {}", signal.display()),
        format!("check and upload it with: {}", submit_command(cfg, signal, &ds.parts[2])),
    ])
}

/// The `signalkit submit --dry-run` line that checks and would upload `signal` against the live
/// universe `live` (model name as configured, else a placeholder).
pub fn submit_command(cfg: &NumeraiConfig, signal: &Path, live: &Path) -> String {
    let name = cfg.model_name.as_deref().unwrap_or("YOUR_MODEL");
    format!(
        "signalkit submit --dry-run --model-name {} --universe {} {}",
        quoted(name),
        quoted(&live.display().to_string()),
        quoted(&signal.display().to_string())
    )
}

/// The run's first stage: the dataset's files found or downloaded (endpoint: `NUMERAI_API_URL`,
/// else Numerai's), stacked into `RUN/numerai.parquet`; returns them and the stage's log line.
pub fn prepare(cfg: &NumeraiConfig, run: &Path) -> Result<(Dataset, PathBuf, String)> {
    let ds = cfg.locate(&ApiArgs::default())?;
    let table = run.join("numerai.parquet");
    let s = ds.write_table(&table)?;
    let fetched = match ds.downloaded.len() {
        0 => format!("found in {}", cfg.dir.display()),
        n => format!("{n} file(s) downloaded into {}", cfg.dir.display()),
    };
    Ok((ds, table.clone(), format!("{s} ({fetched}) → {}", table.display())))
}

/// `s` as one shell word.
fn quoted(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacking_fills_the_columns_a_part_lacks_and_quoting_keeps_one_word() {
        let a = df!("numerai_ticker" => ["A US"], "target_chili_60" => [0.5f64]).unwrap();
        let b = df!("numerai_ticker" => ["B US"], "feature_x" => [1.0f32]).unwrap();
        let s = stack(Path::new("t.parquet"), vec![a, b]).unwrap();
        assert_eq!(s.get_column_names(), ["numerai_ticker", "target_chili_60", "feature_x"]);
        assert_eq!(s.column("target_chili_60").unwrap().null_count(), 1);
        assert_eq!(s.column("feature_x").unwrap().null_count(), 1);
        assert_eq!(quoted("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(quoted("runs/x/signal.csv"), "runs/x/signal.csv");
    }
}
