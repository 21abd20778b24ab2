//! The one lock helper: an exclusive advisory lock (`flock`, std's `File::lock`) on a lock file
//! that says who holds it (`pid N, signalkit COMMAND, since TIME`). The lock dies with its
//! process, so a killed run never leaves a lock that blocks the next one; the file is removed
//! when a [`Lock`] is dropped (while still locked), and a taker checks that the file it locked is
//! still the one at the path, so removal never lets two processes hold one path.
//!
//! Output folders take [`lock_folder`] (`<folder>/.signalkit.lock`); the encode store's
//! per-writer locks, `news fetch`'s source folders, `store merge`, `submit`'s upload lock and
//! the append-only journals all take their locks here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file inside a locked output folder.
pub const LOCK_FILE: &str = ".signalkit.lock";

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked: a process waiting on this file sees it is gone and retries.
        let _ = fs::remove_file(&self.path);
    }
}

impl Lock {
    /// Takes the lock on `path` (created if missing) for `command`, or `None` at once when
    /// another process holds it.
    pub fn try_take(path: &Path, command: &str) -> Result<Option<Lock>> {
        loop {
            let file = open(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
            }
            if let Some(lock) = Lock::claim(file, path, command)? {
                return Ok(Some(lock));
            }
        }
    }

    /// Takes the lock on `path`, or fails at once naming the holder, the lock file and `fix`.
    pub fn take(path: &Path, command: &str, what: &Path, fix: &str) -> Result<Lock> {
        Lock::try_take(path, command)?.ok_or_else(|| busy(path, what, fix))
    }

    /// Takes the lock on `path`, waiting for its holder; `waiting` is called once, with the
    /// holder's description, before the wait.
    pub fn wait(path: &Path, command: &str, waiting: impl FnOnce(&str)) -> Result<Lock> {
        if let Some(lock) = Lock::try_take(path, command)? {
            return Ok(lock);
        }
        waiting(&holder(path));
        loop {
            let file = open(path)?;
            file.lock().map_err(|e| Error::io(path, e))?;
            if let Some(lock) = Lock::claim(file, path, command)? {
                return Ok(lock);
            }
        }
    }

    /// A new lock file at `path`, created (never an existing one) and locked: `None` when a file
    /// of that name exists.
    pub fn create_new(path: &Path, command: &str) -> Result<Option<Lock>> {
        let file = match OpenOptions::new().read(true).write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        file.lock().map_err(|e| Error::io(path, e))?;
        Lock::claim(file, path, command)
    }

    /// The lock of an existing lock file whose holder is gone (nobody holds it): the caller may
    /// clean up after the dead holder while it keeps this. `None` when held or missing.
    pub fn abandoned(path: &Path) -> Option<Lock> {
        let file = File::open(path).ok()?;
        file.try_lock().ok()?;
        let still = fs::metadata(path).ok().zip(file.metadata().ok());
        still
            .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino())
            .then(|| Lock { _file: file, path: path.into() })
    }

    /// Moves the lock file to `to` (it stays locked).
    pub fn rename(&mut self, to: &Path) -> std::io::Result<()> {
        fs::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock if `file` (locked) is still the file at `path`, with the holder written into it;
    /// `None` when the previous holder removed it meanwhile (the caller tries again).
    fn claim(mut file: File, path: &Path, command: &str) -> Result<Option<Lock>> {
        let here = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mine = file.metadata().map_err(|e| Error::io(path, e))?;
        if (here.dev(), here.ino()) != (mine.dev(), mine.ino()) {
            return Ok(None);
        }
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let who = format!("pid {}, signalkit {command}, since {since}\n", std::process::id());
        file.set_len(0).and_then(|_| file.write_all(who.as_bytes())).map_err(|e| Error::io(path, e))?;
        Ok(Some(Lock { _file: file, path: path.to_path_buf() }))
    }
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| Error::io(path, e))
}

/// Who holds the lock at `path`, as its holder wrote it (`pid N, signalkit COMMAND, since TIME`).
pub fn holder(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    match text.trim() {
        "" => "a process that has not said who it is yet".into(),
        who => who.to_string(),
    }
}

/// The error for a lock held by another process: what is locked, by whom, and what to do.
fn busy(path: &Path, what: &Path, fix: &str) -> Error {
    Error::input(
        what,
        format!(
            "another signalkit process is writing here ({}; lock file {}): wait for it to finish, or {fix}",
            holder(path),
            path.display()
        ),
    )
}

/// Locks the output folder `dir` (created if missing) for `command` through
/// `<dir>/.signalkit.lock`, failing at once when another process writes it; `flag` names the
/// option that chose the folder (e.g. `--out`).
pub fn lock_folder(dir: &Path, command: &str, flag: &str) -> Result<Lock> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(dir, format!("{flag} is a file, not a folder: name a folder for {command}'s output")));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Lock::take(&dir.join(LOCK_FILE), command, dir, &format!("name another {flag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_naming_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = lock_folder(d.path(), "finetune", "--out").unwrap();
        let err = lock_folder(d.path(), "finetune", "--out").unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("signalkit finetune"), "{err}");
        assert!(err.contains(LOCK_FILE) && err.contains("name another --out"), "{err}");
        drop(first);
        assert!(!d.path().join(LOCK_FILE).exists(), "the lock file is removed with the lock");
        lock_folder(d.path(), "finetune", "--out").unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        fs::write(&path, "pid 1, signalkit old, since then\n").unwrap();
        assert!(Lock::abandoned(&path).is_some());
        let lock = Lock::try_take(&path, "new").unwrap().expect("free");
        assert!(holder(lock.path()).contains("signalkit new"));
        assert!(Lock::abandoned(&path).is_none(), "held");
        assert!(Lock::create_new(&path, "new").unwrap().is_none(), "exists");
    }
}
