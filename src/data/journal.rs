//! Append-only JSON Lines journals (the upload history), the one way signalkit keeps one: every
//! append holds the journal's lock (`<journal>.lock`, [`super::lock`]), repairs a torn tail first
//! and syncs the line. A torn tail is what a writer killed mid-line leaves: bytes after the last
//! newline. If they are a whole record, the line is finished; otherwise they are moved to a side
//! file (`<journal>.torn-<unix time>`) and the journal is cut back to its last complete record,
//! with a warning naming the local file; the next run is never blocked by it. A damaged line
//! before the last one is not a stopped write: it is an error naming the file and line, with
//! advice that keeps any real record on it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lock::Lock;
use crate::error::{Error, Result};

/// A JSON Lines journal of records of one kind.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
    what: &'static str,
}

/// A journal's text split at its last newline: the complete lines, and what follows them.
struct Split<'a> {
    complete: &'a str,
    tail: &'a str,
}

fn split(text: &str) -> Split<'_> {
    let at = text.rfind('\n').map_or(0, |i| i + 1);
    Split { complete: &text[..at], tail: &text[at..] }
}

impl Journal {
    /// The journal at `path` holding records described as `what` (e.g. "upload record").
    pub fn new(path: &Path, what: &'static str) -> Journal {
        Journal { path: path.to_path_buf(), what }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, oldest first (none when the file does not exist). A torn last line is left
    /// out with a warning (the next append repairs it); a damaged complete line is an error.
    pub fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let s = split(&text);
        let mut records = self.parse::<T>(s.complete)?;
        match serde_json::from_str::<T>(s.tail) {
            Ok(last) => records.push(last),
            Err(_) if s.tail.trim().is_empty() => {}
            Err(_) => eprintln!(
                "warning: {}: the last line is unfinished (a run was stopped while writing it; this is a local \
                 file): it is left out, and the next append moves it to a side file",
                self.path.display()
            ),
        }
        Ok(records)
    }

    /// Appends `record` unless `same` finds it among the records already there (true when
    /// appended). Holds the journal's lock; repairs a torn tail first.
    pub fn append<T: Serialize + DeserializeOwned>(&self, record: &T, same: impl Fn(&T) -> bool) -> Result<bool> {
        let _lock = Lock::wait(&self.lock_path(), "journal append", |who| {
            eprintln!("{}: waiting for another writer ({who})", self.path.display());
        })?;
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        self.repair::<T>(&mut f)?;
        if self.read::<T>()?.iter().any(same) {
            return Ok(false);
        }
        let mut line = serde_json::to_string(record).map_err(|e| Error::Config(e.to_string()))?;
        line.push('\n');
        f.write_all(line.as_bytes()).and_then(|_| f.sync_data()).map_err(|e| Error::io(&self.path, e))?;
        Ok(true)
    }

    fn lock_path(&self) -> PathBuf {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.path.with_file_name(format!("{name}.lock"))
    }

    /// Makes the file end with a complete line: a torn tail that is a whole record gets its
    /// newline; any other is moved to a side file and cut off. Returns the side file, if any.
    fn repair<T: DeserializeOwned>(&self, f: &mut File) -> Result<Option<PathBuf>> {
        let mut text = String::new();
        f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut text)).map_err(|e| Error::io(&self.path, e))?;
        let s = split(&text);
        if s.tail.is_empty() {
            return Ok(None);
        }
        if serde_json::from_str::<T>(s.tail).is_ok() {
            f.write_all(b"\n").and_then(|_| f.sync_data()).map_err(|e| Error::io(&self.path, e))?;
            return Ok(None);
        }
        let side = self.side_file();
        super::atomic::write_bytes_atomic(&side, s.tail.as_bytes())?;
        f.set_len(s.complete.len() as u64).and_then(|_| f.sync_data()).map_err(|e| Error::io(&self.path, e))?;
        eprintln!(
            "warning: {}: its last line was unfinished (a run was stopped while writing it; this is a local file, \
             nothing on the server changed): moved the fragment to {} and continued after the last complete record",
            self.path.display(),
            side.display()
        );
        Ok(Some(side))
    }

    /// `<journal>.torn-<unix time>`, with `-N` added when that name is taken.
    fn side_file(&self) -> PathBuf {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut side = self.path.with_file_name(format!("{name}.torn-{secs}"));
        let mut n = 0;
        while side.exists() {
            n += 1;
            side = self.path.with_file_name(format!("{name}.torn-{secs}-{n}"));
        }
        side
    }

    /// The records of complete lines (blank lines skipped); a line that is not one is an error.
    fn parse<T: DeserializeOwned>(&self, complete: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for (i, line) in complete.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            out.push(serde_json::from_str(line).map_err(|e| self.damaged::<T>(i + 1, line, &e))?);
        }
        Ok(out)
    }

    /// The error for a damaged complete line: where, why, and how to keep a real record on it.
    fn damaged<T: DeserializeOwned>(&self, n: usize, line: &str, e: &serde_json::Error) -> Error {
        let glued = line.match_indices('{').skip(1).find(|(i, _)| serde_json::from_str::<T>(&line[*i..]).is_ok());
        let advice = match glued {
            Some((i, _)) => format!(
                "it holds an unfinished {what} followed by a whole one from character {} (an older signalkit appended \
                 after a stopped write): delete only the first {i} characters of that line to keep the whole record",
                i + 1,
                what = self.what
            ),
            None => "it is not the last line, so it is not a stopped write signalkit repairs itself, and it may \
                     record something real: do not delete it; move the line into a separate file and check it by hand, \
                     or restore the file from a backup"
                .to_string(),
        };
        Error::input(&self.path, format!("line {n} is not a {} ({e}); {advice}", self.what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct R {
        id: String,
    }

    fn r(id: &str) -> R {
        R { id: id.into() }
    }

    #[test]
    fn a_torn_tail_is_moved_aside_before_the_next_append() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("j.jsonl");
        fs::write(&path, "{\"id\":\"a\"}\n{\"id\":\"b").unwrap();
        let j = Journal::new(&path, "record");
        assert_eq!(j.read::<R>().unwrap(), [r("a")]);
        assert!(j.append(&r("c"), |o: &R| o.id == "c").unwrap());
        assert_eq!(j.read::<R>().unwrap(), [r("a"), r("c")]);
        let side: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("j.jsonl.torn-"))
            .collect();
        assert_eq!(side.len(), 1);
        assert_eq!(fs::read_to_string(side[0].path()).unwrap(), "{\"id\":\"b");
        assert!(!j.append(&r("c"), |o: &R| o.id == "c").unwrap(), "already there");
    }

    #[test]
    fn a_whole_record_without_its_newline_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("j.jsonl");
        fs::write(&path, "{\"id\":\"a\"}").unwrap();
        let j = Journal::new(&path, "record");
        j.append(&r("b"), |_: &R| false).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    }

    #[test]
    fn a_damaged_middle_line_names_the_line_and_keeps_a_glued_record() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("j.jsonl");
        fs::write(&path, "{\"id\":\"a\"}\n{\"i{\"id\":\"b\"}\n{\"id\":\"c\"}\n").unwrap();
        let err = Journal::new(&path, "record").read::<R>().unwrap_err().to_string();
        assert!(err.contains("j.jsonl") && err.contains("line 2"), "{err}");
        assert!(err.contains("delete only the first 3 characters"), "{err}");
        fs::write(&path, "{\"id\":\"a\"}\nxx\n{\"id\":\"c\"}\n").unwrap();
        let err = Journal::new(&path, "record").read::<R>().unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("do not delete it"), "{err}");
    }
}
