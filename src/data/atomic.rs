//! Atomic writes, the one way signalkit writes a file: the bytes go to a temporary file in the
//! target's folder, which is synced and renamed into place (tempfile's `persist`), so a reader
//! sees the old file or the new one, never half of one, and a killed or failed write leaves the
//! target as it was. An existing target must be a plain file: never a link, FIFO, device or
//! folder.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `path` atomically: `write` fills the temporary file (given as a path and an open
/// handle; it may use either), named `.<name>.tmp-<pid>-<random>[.<ext>]` beside the target (the
/// extension kept for writers that choose a format by it).
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path, &mut File) -> Result<()>) -> Result<()> {
    let name = file_name(path)?;
    let suffix = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let prefix = format!(".{name}.tmp-{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    write_via(path, builder, write)
}

/// As [`write_atomic`], with the temporary file named exactly `tmp_name` in the target's folder
/// (created new: an existing file of that name is an error, never reused).
pub fn write_atomic_as(path: &Path, tmp_name: &str, write: impl FnOnce(&Path, &mut File) -> Result<()>) -> Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(tmp_name).rand_bytes(0);
    write_via(path, builder, write)
}

/// Writes bytes atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |tmp, f| std::io::Write::write_all(f, bytes).map_err(|e| Error::io(tmp, e)))
}

fn write_via(
    path: &Path,
    mut builder: tempfile::Builder<'_, '_>,
    write: impl FnOnce(&Path, &mut File) -> Result<()>,
) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if let Ok(meta) = fs::symlink_metadata(path) {
        check_replaceable(path, &meta)?;
    }
    // 0666 less the umask, as `File::create` gives (tempfile's default is 0600).
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o666);
    let mut tmp = builder.permissions(mode).tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    write(&tmp_path, tmp.as_file_mut())?;
    tmp.as_file().sync_all().map_err(|e| Error::io(&tmp_path, e))?;
    if let Ok(meta) = fs::symlink_metadata(path) {
        check_replaceable(path, &meta)?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Config(format!("{}: not a file path", path.display())))
}

/// An existing output must be a plain file: never a link, FIFO, device or folder.
pub fn check_replaceable(path: &Path, meta: &fs::Metadata) -> Result<()> {
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
