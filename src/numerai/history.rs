//! The local record of what was uploaded, so the churn gate can compare this week's signal with
//! the model's last ones: `history.jsonl` (one JSON line per confirmed submission: model, server
//! id, file, content hash, time) and `signals/<xxh3>.<ext>`, a copy of each file sent (the file a
//! weekly job overwrites is still there next week). `history.jsonl` is a [`Journal`]: lines are
//! appended under its lock and synced; a torn last line (a writer killed mid-line) is skipped by
//! readers and moved to a side file by the next append, so it never blocks a submit.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::gate::Signal;
use super::{Client, ServerSubmission};
use crate::data::journal::Journal;
use crate::data::{find_column, read_table, str_values, write_bytes_atomic};
use crate::error::{Error, Result};

/// Environment variable naming the history folder.
pub const HISTORY_ENV: &str = "SIGNALKIT_HISTORY";

/// One confirmed submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The model's name on numer.ai.
    pub model_name: String,
    /// The model's id.
    pub model_id: String,
    /// Numerai's submission id.
    pub submission_id: String,
    /// The file as given to `submit`.
    pub file: String,
    /// xxh3-128 of its bytes (hex); its copy is `signals/<this>.<ext>`.
    pub content_xxh3: String,
    /// The copy's extension (csv or parquet).
    pub ext: String,
    /// When it was confirmed (RFC 3339, UTC).
    pub uploaded_at: String,
}

/// A history folder.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// The folder given, else `$SIGNALKIT_HISTORY`, else `~/.numerai/signalkit-history`.
    pub fn at(dir: Option<&Path>) -> Result<History> {
        let dir = match (dir, std::env::var_os(HISTORY_ENV)) {
            (Some(d), _) => d.to_path_buf(),
            (None, Some(d)) if !d.is_empty() => PathBuf::from(d),
            _ => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".numerai/signalkit-history"))
                .ok_or_else(|| Error::Config(format!("no home folder: pass --history DIR or set {HISTORY_ENV}")))?,
        };
        Ok(History { dir })
    }

    fn journal(&self) -> Journal {
        Journal::new(&self.dir.join("history.jsonl"), "upload history record")
    }

    fn copy_path(&self, r: &Record) -> PathBuf {
        self.dir.join("signals").join(format!("{}.{}", r.content_xxh3, r.ext))
    }

    /// Keeps a copy of `bytes` and appends `r`, unless that submission id is already recorded.
    pub fn append(&self, r: &Record, bytes: &[u8]) -> Result<()> {
        fs::create_dir_all(self.dir.join("signals")).map_err(|e| Error::io(&self.dir, e))?;
        let copy = self.copy_path(r);
        if !copy.exists() {
            write_bytes_atomic(&copy, bytes)?;
        }
        self.journal()
            .append(r, |old: &Record| old.submission_id == r.submission_id && old.content_xxh3 == r.content_xxh3)
            .map(|_| ())
    }

    /// Every record, oldest first.
    pub fn records(&self) -> Result<Vec<Record>> {
        self.journal().read()
    }

    /// The model's last `k` submissions (newest first) among `local` (this history's
    /// [`History::records`]) other than the bytes `current_xxh3`, read from their copies; a
    /// record whose copy is gone is skipped with a warning.
    pub fn recent(&self, local: &[Record], model_name: &str, current_xxh3: &str, k: usize) -> Result<Vec<Signal>> {
        let mut out = Vec::new();
        for r in local.iter().rev() {
            if out.len() == k {
                break;
            }
            if r.model_name != model_name || r.content_xxh3 == current_xxh3 {
                continue;
            }
            let copy = self.copy_path(r);
            if !copy.exists() {
                eprintln!(
                    "history: the copy of submission {} ({}) is gone; not compared",
                    r.submission_id,
                    copy.display()
                );
                continue;
            }
            out.push(read_signal(&copy, &format!("submission {} of {}", r.submission_id, r.uploaded_at))?);
        }
        Ok(out)
    }
}

impl History {
    /// The model's last `k` submissions as Numerai lists them (newest first), other than the bytes
    /// `current_xxh3`: each read from this history's copy when it has one, else downloaded once
    /// (`submissionDownloadAuth`) into `signals/server-<id>`. Numerai's list is the truth: it has
    /// uploads made from other machines or tools too. `local` is this history's
    /// [`History::records`], read by the caller first so that a fault in the local file is never
    /// taken for Numerai's.
    pub fn server_recent(
        &self,
        client: &Client,
        model_id: &str,
        local: &[Record],
        current_xxh3: &str,
        k: usize,
    ) -> Result<Vec<Signal>> {
        let mut listed = client.submissions(model_id)?;
        listed.sort_by_key(|s| std::cmp::Reverse(s.inserted()));
        let mut out = Vec::new();
        for s in listed {
            if out.len() == k {
                break;
            }
            let path = match local.iter().find(|r| r.submission_id == s.id).map(|r| self.copy_path(r)) {
                Some(copy) if copy.exists() => copy,
                _ => self.server_copy(client, &s)?,
            };
            let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)) == current_xxh3 {
                continue;
            }
            let label =
                format!("submission {} on Numerai, {}", s.id, s.inserted_at.as_deref().unwrap_or("time unknown"));
            out.push(read_signal(&path, &label)?);
        }
        Ok(out)
    }

    /// Submission `s` downloaded into `signals/server-<id>.<ext>` (kept: the next week reuses it).
    fn server_copy(&self, client: &Client, s: &ServerSubmission) -> Result<PathBuf> {
        let ext = if s.filename.to_ascii_lowercase().ends_with(".parquet") { "parquet" } else { "csv" };
        let safe: String = s.id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        let path = self.dir.join("signals").join(format!("server-{safe}.{ext}"));
        if !path.exists() {
            client.download_submission(&s.id, &path)?;
        }
        Ok(path)
    }
}

/// A submission file's tickers (upper-cased) and signal, rows without either left out.
pub fn read_signal(path: &Path, label: &str) -> Result<Signal> {
    let (tickers, values) = crate::data::signal::read_signal_file(path, None)?;
    Ok(Signal { label: label.to_string(), tickers, values })
}

/// The upper-cased tickers of a live universe file in the submission's ticker column (or its
/// Numerai equivalent), None when it has no such column.
pub fn universe_tickers(universe: &Path, ticker_column: &str) -> Result<Option<Vec<String>>> {
    let df = read_table(universe, true)?;
    let Some(col) = find_column(&df, super::submission::universe_candidates(ticker_column)) else { return Ok(None) };
    let mut out: Vec<String> =
        str_values(universe, &df, &col)?.iter().flatten().map(|t| t.trim().to_ascii_uppercase()).collect();
    out.sort();
    out.dedup();
    Ok(Some(out))
}
