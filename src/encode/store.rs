//! The embedding store: encoder outputs keyed by a hash of (model, normalised text), kept as
//! parquet shards, one folder per model (id, fingerprint, max_len, dtype).
//!
//! Several processes may use one store at once:
//! - Every writer (`signalkit encode`) holds an exclusive advisory lock on its own file
//!   `writers/<token>.lock` (token = pid and a random number) for as long as its [`Store`] lives.
//! - Shards are written to `.<shard>.tmp-<token>` and renamed to a name no other process can
//!   choose (`shard-<unix ms>-<token>-<seq>.parquet`), so a killed run loses at most the shard
//!   in flight and concurrent runs never overwrite each other.
//! - Readers ([`Store::find`], [`Store::find_by`]) change nothing on disk: unreadable shards are
//!   reported and skipped. Only a writer removes debris, and only a dead writer's (its lock file
//!   can be locked, or is gone), and only a writer sets unreadable complete shards aside.
//!
//! Old stores (`shard-000123.parquet`) stay readable.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::data::lock::Lock;
use crate::error::{Error, Result};

pub use crate::provenance::ModelKey;

/// The text the store keys on: trimmed, with every run of whitespace made one space.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The store key of a normalised text under a model (128-bit xxh3, hex).
pub fn key(model: &ModelKey, normalised: &str) -> String {
    let mut buf = Vec::with_capacity(model.fingerprint.len() + normalised.len() + 16);
    buf.extend_from_slice(model.fingerprint.as_bytes());
    buf.extend_from_slice(format!("|{}|", model.max_len).as_bytes());
    if model.dtype != "f32" {
        // Reduced-precision outputs never share keys with f32 ones (f32 keys are unchanged).
        buf.extend_from_slice(format!("{}|", model.dtype).as_bytes());
    }
    buf.extend_from_slice(normalised.as_bytes());
    format!("{:032x}", xxh3_128(&buf))
}

/// The file in each model folder that says which model it holds.
pub const MANIFEST: &str = "model.json";

/// One encoded headline.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Store key.
    pub key: String,
    /// Normalised text.
    pub text: String,
    /// Class probabilities in label order (empty for embedding-only models).
    pub probs: Vec<f32>,
    /// Last hidden state at position 0 ([CLS]), before the pooler.
    pub cls: Vec<f32>,
}

/// The folder inside a model folder holding each live writer's lock file.
pub const WRITERS: &str = "writers";

/// What opening a store found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Readable shards.
    pub shards: usize,
    /// Entries in them.
    pub entries: usize,
    /// Shards that could not be read: set aside by a writer (paths after the move, their texts
    /// will be redone), skipped by a reader (paths as found, left in place).
    pub damaged: Vec<PathBuf>,
    /// Temporary files of dead writers removed by a writer's open (always empty for readers).
    pub removed: Vec<PathBuf>,
}

/// Which model folder of a store to open; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreQuery {
    /// Hub id or local path, exactly as given to encode.
    pub id: Option<String>,
    /// A prefix of the fingerprint (hex, case-insensitive).
    pub fingerprint: Option<String>,
    /// Output precision: "f32", "bf16" or "f16".
    pub dtype: Option<String>,
    /// Maximum tokens per headline.
    pub max_len: Option<usize>,
}

impl StoreQuery {
    /// The query that selects exactly this model's folder.
    pub fn exactly(m: &ModelKey) -> StoreQuery {
        StoreQuery {
            id: Some(m.id.clone()),
            fingerprint: Some(m.fingerprint.clone()),
            dtype: Some(m.dtype.clone()),
            max_len: Some(m.max_len),
        }
    }

    /// Whether a model matches every given field.
    pub fn matches(&self, m: &ModelKey) -> bool {
        self.id.as_ref().is_none_or(|id| &m.id == id)
            && self.fingerprint.as_ref().is_none_or(|f| m.fingerprint.to_lowercase().starts_with(&f.to_lowercase()))
            && self.dtype.as_ref().is_none_or(|d| m.dtype.eq_ignore_ascii_case(d))
            && self.max_len.is_none_or(|n| m.max_len == n)
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(id) = &self.id {
            parts.push(format!("model '{id}'"));
        }
        if let Some(f) = &self.fingerprint {
            parts.push(format!("fingerprint {f}*"));
        }
        if let Some(d) = &self.dtype {
            parts.push(format!("dtype {d}"));
        }
        if let Some(n) = self.max_len {
            parts.push(format!("max_len {n}"));
        }
        if parts.is_empty() { "any model".into() } else { parts.join(", ") }
    }
}

/// A writer's claim on a model folder: an exclusive lock on `writers/<token>.lock` (the one
/// lock helper, [`crate::data::lock`]), released and removed when the store is dropped (or by a
/// later writer once this process is dead).
#[derive(Debug)]
struct WriterLock {
    token: String,
    _lock: Lock,
}

impl WriterLock {
    /// Creates and locks a fresh lock file, then renames it into place: a lock file under its
    /// final name is always locked while its writer lives.
    fn acquire(dir: &Path) -> Result<WriterLock> {
        let writers = dir.join(WRITERS);
        fs::create_dir_all(&writers).map_err(|e| Error::io(&writers, e))?;
        let mut last = None;
        for _ in 0..8 {
            let token = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
            let Some(mut lock) = Lock::create_new(&writers.join(format!("{token}.lock.new")), "store writer")? else {
                continue;
            };
            let path = writers.join(format!("{token}.lock"));
            match lock.rename(&path) {
                Ok(()) => return Ok(WriterLock { token, _lock: lock }),
                // A cleaner took the fresh file for debris: try again under a new name.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::io(&writers, last.unwrap_or_else(|| std::io::Error::other("no free lock file name"))))
    }
}

/// How long a temporary file without an owner token (written by an older signalkit) must be
/// untouched before a writer removes it.
const LEGACY_TEMP_AGE: Duration = Duration::from_secs(3600);

fn older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

/// Removes the temporary files of dead writers and their lock files (never those of `own` or of
/// any writer whose lock is held).
fn clean_debris(dir: &Path, own: &str) -> Result<Vec<PathBuf>> {
    let writers = dir.join(WRITERS);
    let mut dead = Vec::new(); // (token, its abandoned lock, removed when dropped)
    for e in fs::read_dir(&writers).map_err(|e| Error::io(&writers, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(token) = name.strip_suffix(".lock") {
            if token == own {
                continue;
            }
            if let Some(lock) = Lock::abandoned(&e.path()) {
                dead.push((token.to_string(), lock));
            }
        } else if name.ends_with(".lock.new") && older_than(&e.path(), Duration::from_secs(60)) {
            // A writer killed between creating its lock file and renaming it into place.
            // Dropping the abandoned lock removes its file.
            drop(Lock::abandoned(&e.path()));
        }
    }
    let mut removed = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, owner)) = name.rsplit_once(".tmp-") else { continue };
        let gone = if owner == own {
            false
        } else if dead.iter().any(|(t, _)| t == owner) {
            true
        } else if owner.contains('-') {
            // A writer's lock file exists before its first temporary file and is removed after
            // its last: a temporary file without one is debris.
            !writers.join(format!("{owner}.lock")).exists()
        } else {
            // Written by an older signalkit (`.tmp-<pid>`, no lock file): only when long untouched.
            older_than(&e.path(), LEGACY_TEMP_AGE)
        };
        if gone && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    drop(dead); // each lock file removed while still locked by us
    Ok(removed)
}

/// A store folder for one model, opened for writing ([`Store::open`]) or reading
/// ([`Store::find`], [`Store::find_by`]).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    model: ModelKey,
    known: HashSet<String>,
    writer: Option<WriterLock>,
    seq: usize,
}

impl Store {
    /// Opens (creating if needed) the store under `root` for `model` as a writer: takes this
    /// process's writer lock, removes dead writers' temporary files, sets unreadable shards aside
    /// and reads every shard's keys.
    pub fn open(root: &Path, model: &ModelKey) -> Result<(Store, OpenReport)> {
        let dir = root.join(model.slug());
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = WriterLock::acquire(&dir)?;
        let manifest = dir.join(MANIFEST);
        if !manifest.exists() {
            // Identical content from every writer: concurrent creations all succeed.
            let json = serde_json::to_vec_pretty(model).expect("serialisable");
            write_atomic(&dir, MANIFEST, &lock.token, |f| f.write_all(&json).map_err(|e| Error::io(&manifest, e)))?;
        }
        let removed = clean_debris(&dir, &lock.token)?;
        let mut report = OpenReport { removed, ..OpenReport::default() };
        let (known, failed) = scan_shards(&dir, &mut report)?;
        for (path, failure) in failed {
            if let ReadFailure::Io(e) = failure {
                return Err(e);
            }
            // Complete shards are renamed into place whole: this one is damaged.
            let aside = path.with_extension("parquet.damaged");
            match fs::rename(&path, &aside) {
                Ok(()) => report.damaged.push(aside),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.damaged.push(aside),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok((Store { dir, model: model.clone(), known, writer: Some(lock), seq: 0 }, report))
    }

    /// Opens the store folder of the model named `id` (hub id or path as given to encode), or
    /// the only model in the store when `id` is `None`, for reading (see [`Store::find_by`]).
    pub fn find(root: &Path, id: Option<&str>) -> Result<(Store, OpenReport)> {
        Store::find_by(root, &StoreQuery { id: id.map(str::to_string), ..StoreQuery::default() })
    }

    /// Opens the one model folder under `root` that matches `query`, for reading: nothing on disk
    /// changes. Errors list every candidate when none or several match.
    pub fn find_by(root: &Path, query: &StoreQuery) -> Result<(Store, OpenReport)> {
        let models = Store::models(root)?;
        let chosen: Vec<&(PathBuf, ModelKey)> = models.iter().filter(|(_, m)| query.matches(m)).collect();
        let list = |ms: &[&(PathBuf, ModelKey)]| -> String {
            ms.iter().map(|(dir, m)| format!("\n  {}", describe(dir, m))).collect()
        };
        match chosen.as_slice() {
            [(dir, model)] => Store::open_read(dir, model),
            [] if models.is_empty() => Err(Error::input(root, "the store is empty: run signalkit encode first")),
            [] => Err(Error::input(
                root,
                format!(
                    "no outputs of {} in this store; it has:{}\nrun signalkit encode first, or choose one of these",
                    query.describe(),
                    list(&models.iter().collect::<Vec<_>>())
                ),
            )),
            several => {
                let differ = |f: &dyn Fn(&ModelKey) -> String| -> bool {
                    several.iter().map(|(_, m)| f(m)).collect::<HashSet<_>>().len() > 1
                };
                let mut options = Vec::new();
                if differ(&|m| m.id.clone()) {
                    options.push("--model <id>");
                }
                if differ(&|m| m.fingerprint.clone()) {
                    options.push("--fingerprint <prefix>");
                }
                if differ(&|m| m.dtype.clone()) {
                    options.push("--dtype <f32|bf16|f16>");
                }
                if differ(&|m| m.max_len.to_string()) {
                    options.push("--max-len <n>");
                }
                Err(Error::input(
                    root,
                    format!(
                        "the store holds several models matching {}:{}\nchoose one with {}",
                        query.describe(),
                        list(several),
                        options.join(" or ")
                    ),
                ))
            }
        }
    }

    /// Every model folder under `root` with its manifest, sorted by folder name.
    pub fn models(root: &Path) -> Result<Vec<(PathBuf, ModelKey)>> {
        let mut models = Vec::new();
        for e in fs::read_dir(root).map_err(|e| Error::io(root, e))?.flatten() {
            let m = e.path().join(MANIFEST);
            if let Ok(text) = fs::read_to_string(&m) {
                let key: ModelKey = serde_json::from_str(&text).map_err(|e| not_a_store(root, &m, &e))?;
                models.push((e.path(), key));
            }
        }
        models.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(models)
    }

    /// Opens one model folder for reading: reads every readable shard's keys, reports the others.
    fn open_read(dir: &Path, model: &ModelKey) -> Result<(Store, OpenReport)> {
        let mut report = OpenReport::default();
        let (known, failed) = scan_shards(dir, &mut report)?;
        report.damaged.extend(failed.into_iter().map(|(path, _)| path));
        Ok((Store { dir: dir.to_path_buf(), model: model.clone(), known, writer: None, seq: 0 }, report))
    }

    /// The model whose outputs this folder holds.
    pub fn model(&self) -> &ModelKey {
        &self.model
    }

    /// The folder holding this model's shards.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when opened for writing ([`Store::open`]), false when opened for reading.
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    /// Whether a key is already stored.
    pub fn contains(&self, key: &str) -> bool {
        self.known.contains(key)
    }

    /// Every stored key known to this handle (read at open, plus those it wrote), in no order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.known.iter().map(String::as_str)
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// True when nothing is stored yet.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Writes one shard atomically under a name no other process can choose, and records its
    /// keys. Errors on a store opened for reading.
    pub fn write_shard(&mut self, rows: &[Encoded]) -> Result<PathBuf> {
        let Some(lock) = &self.writer else {
            return Err(Error::Config(format!(
                "{}: opened for reading; open the store with Store::open to write",
                self.dir.display()
            )));
        };
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let name = format!("shard-{millis:013}-{}-{:06}.parquet", lock.token, self.seq);
        let path = self.dir.join(&name);
        let mut df = to_frame(&self.model, rows).map_err(|e| Error::table(&path, e))?;
        write_atomic(&self.dir, &name, &lock.token, |f| {
            ParquetWriter::new(f)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| Error::table(&path, e))
        })?;
        self.seq += 1;
        self.known.extend(rows.iter().map(|r| r.key.clone()));
        Ok(path)
    }

    /// Every stored entry of this model as one table (columns: key, text, p_*, sentiment, cls),
    /// one row per key; unreadable shards are skipped (see [`Store::read_all_report`]).
    pub fn read_all(&self) -> Result<DataFrame> {
        self.read_all_report().map(|(df, _)| df)
    }

    /// Every stored entry of this model as rows (see [`Store::read_all`]): key, text,
    /// probabilities in label order, [CLS] embedding.
    pub fn read_rows(&self) -> Result<Vec<Encoded>> {
        rows_of(&self.model, &self.dir, &self.read_all()?)
    }

    /// Calls `f` with the rows of each readable shard in turn (shard order; a key two shards
    /// hold comes twice), so a whole model folder never has to fit in memory.
    pub fn for_each_shard(&self, mut f: impl FnMut(Vec<Encoded>) -> Result<()>) -> Result<()> {
        for p in shard_paths(&self.dir)? {
            let df = match fs::File::open(&p) {
                Ok(file) => match ParquetReader::new(file).finish() {
                    Ok(df) => df,
                    Err(_) => continue, // unreadable: reported by open
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&p, e)),
            };
            f(rows_of(&self.model, &p, &df)?)?;
        }
        Ok(())
    }

    /// [`Store::read_all`] plus the shards it skipped because they could not be read.
    pub fn read_all_report(&self) -> Result<(DataFrame, Vec<PathBuf>)> {
        let mut all: Option<DataFrame> = None;
        let mut skipped = Vec::new();
        for p in shard_paths(&self.dir)? {
            let df = match fs::File::open(&p) {
                Ok(f) => match ParquetReader::new(f).finish() {
                    Ok(df) => df,
                    Err(_) => {
                        skipped.push(p);
                        continue;
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // set aside meanwhile
                Err(e) => return Err(Error::io(&p, e)),
            };
            match all.as_mut() {
                Some(a) => {
                    if a.vstack_mut_owned(df).is_err() {
                        skipped.push(p); // readable, but not this model's columns
                    }
                }
                None => all = Some(df),
            }
        }
        let df = match all {
            Some(df) => df,
            None => to_frame(&self.model, &[]).map_err(|e| Error::table(&self.dir, e))?,
        };
        // Concurrent runs may both have encoded a text: keep its first row.
        let keys = df.column("key").and_then(|c| c.str().cloned()).map_err(|e| Error::table(&self.dir, e))?;
        let mut seen = HashSet::with_capacity(keys.len());
        let first: BooleanChunked = keys.iter().map(|k| seen.insert(k)).collect();
        let df = if seen.len() < df.height() { df.filter(&first).map_err(|e| Error::table(&self.dir, e))? } else { df };
        Ok((df, skipped))
    }
}

/// The error for a `<folder>/model.json` under `root` that is not a store manifest: `root` is
/// not a signalkit store (say what one holds).
fn not_a_store(root: &Path, manifest: &Path, e: &serde_json::Error) -> Error {
    let why = if manifest.with_file_name("model.txt").exists() {
        "a trained model's card".to_string()
    } else if e.classify() == serde_json::error::Category::Data {
        "JSON of another kind".to_string()
    } else {
        format!("not valid JSON: {e}")
    };
    Error::input(
        manifest,
        format!(
            "not a store manifest ({why}): {} is not a signalkit store. A store holds one folder per encoder \
             (or ask question), each with model.json naming the model (id, fingerprint, max_len, dtype, labels) and \
             shard-*.parquet files: name a folder written by encode or ask",
            root.display()
        ),
    )
}

/// A store table's rows (columns key, text, p_*, cls); `at` names it in errors.
fn rows_of(model: &ModelKey, at: &Path, df: &DataFrame) -> Result<Vec<Encoded>> {
    let fail = |e: PolarsError| Error::table(at, e);
    let strs = |name: &str| -> Result<Vec<String>> {
        let c = df.column(name).and_then(|c| c.str().cloned()).map_err(fail)?;
        Ok(c.iter().map(|v| v.unwrap_or_default().to_string()).collect())
    };
    let (keys, texts) = (strs("key")?, strs("text")?);
    let mut probs = Vec::new();
    for name in prob_columns(&model.labels) {
        let c = df.column(&name).and_then(|c| c.cast(&DataType::Float32)).map_err(fail)?;
        probs.push(c.f32().map_err(fail)?.iter().map(|v| v.unwrap_or(f32::NAN)).collect::<Vec<f32>>());
    }
    let cls = df.column("cls").and_then(|c| c.list().cloned()).map_err(fail)?;
    let mut rows = Vec::with_capacity(df.height());
    for (i, (key, text)) in keys.into_iter().zip(texts).enumerate() {
        let emb = match cls.get_as_series(i) {
            Some(s) => s.f32().map_err(fail)?.iter().map(|v| v.unwrap_or(f32::NAN)).collect(),
            None => Vec::new(),
        };
        rows.push(Encoded { key, text, probs: probs.iter().map(|p| p[i]).collect(), cls: emb });
    }
    Ok(rows)
}

fn describe(dir: &Path, m: &ModelKey) -> String {
    format!(
        "{} (fingerprint {}, dtype {}, max_len {}) in {}",
        m.id,
        &m.fingerprint[..12.min(m.fingerprint.len())],
        m.dtype,
        m.max_len,
        dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
    )
}

/// Writes `dir/name` atomically through `dir/.<name>.tmp-<token>` (the owner's token in the name
/// lets writers tell a dead writer's debris from a live one's).
fn write_atomic(dir: &Path, name: &str, token: &str, write: impl FnOnce(&mut fs::File) -> Result<()>) -> Result<()> {
    crate::data::atomic::write_atomic_as(&dir.join(name), &format!(".{name}.tmp-{token}"), |_, f| write(f))
}

/// The keys of the readable shards, and the shards that could not be read with why.
type ShardScan = (HashSet<String>, Vec<(PathBuf, ReadFailure)>);

/// Reads every shard's keys, counting readable shards and entries into `report`; returns the
/// keys and the shards that could not be read, with why (a shard renamed away meanwhile is
/// skipped).
fn scan_shards(dir: &Path, report: &mut OpenReport) -> Result<ShardScan> {
    let (mut known, mut failed) = (HashSet::new(), Vec::new());
    for path in shard_paths(dir)? {
        match read_keys(&path) {
            Ok(keys) => {
                report.shards += 1;
                report.entries += keys.len();
                known.extend(keys);
            }
            Err(ReadFailure::Gone) => {}
            Err(failure) => failed.push((path, failure)),
        }
    }
    Ok((known, failed))
}

/// Column names of the class probabilities: `p_<label>`.
pub fn prob_columns(labels: &[String]) -> Vec<String> {
    labels.iter().map(|l| format!("p_{}", l.to_lowercase())).collect()
}

/// P(positive) − P(negative), when the labels include both.
pub fn sentiment(labels: &[String], probs: &[f32]) -> Option<f32> {
    let at = |name: &str| labels.iter().position(|l| l.eq_ignore_ascii_case(name));
    Some(probs.get(at("positive")?)? - probs.get(at("negative")?)?)
}

fn to_frame(model: &ModelKey, rows: &[Encoded]) -> PolarsResult<DataFrame> {
    let mut cols = vec![
        Column::new("key".into(), rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>()),
        Column::new("text".into(), rows.iter().map(|r| r.text.as_str()).collect::<Vec<_>>()),
    ];
    if !model.labels.is_empty() {
        for (j, name) in prob_columns(&model.labels).into_iter().enumerate() {
            cols.push(Column::new(name.into(), rows.iter().map(|r| r.probs[j]).collect::<Vec<f32>>()));
        }
        if rows.first().is_none_or(|r| sentiment(&model.labels, &r.probs).is_some()) {
            let s: Vec<Option<f32>> = rows.iter().map(|r| sentiment(&model.labels, &r.probs)).collect();
            cols.push(Column::new("sentiment".into(), s));
        }
    }
    let width = rows.first().map_or(0, |r| r.cls.len());
    let mut cls = ListPrimitiveChunkedBuilder::<Float32Type>::new(
        "cls".into(),
        rows.len(),
        rows.len() * width,
        DataType::Float32,
    );
    for r in rows {
        cls.append_slice(&r.cls);
    }
    cols.push(cls.finish().into_column());
    DataFrame::new_infer_height(cols)
}

/// Every complete shard of a model folder, sorted by name: `shard-000123.parquet` (older stores)
/// and `shard-<unix ms>-<token>-<seq>.parquet`.
fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten().map(|e| e.path()).filter(|p| is_shard(p)).collect();
    v.sort();
    Ok(v)
}

/// Whether a file name is a complete shard's.
pub fn is_shard(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("shard-")?.strip_suffix(".parquet"))
        .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

enum ReadFailure {
    /// The shard disappeared (set aside by a writer meanwhile).
    Gone,
    /// It could not be opened (permissions, I/O): not the shard's fault.
    Io(Error),
    /// It opens but is not a readable shard.
    Unreadable,
}

/// The `key` column of one shard (the embeddings are not read).
fn read_keys(p: &Path) -> std::result::Result<Vec<String>, ReadFailure> {
    let f = fs::File::open(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound { ReadFailure::Gone } else { ReadFailure::Io(Error::io(p, e)) }
    })?;
    let df =
        ParquetReader::new(f).with_columns(Some(vec!["key".into()])).finish().map_err(|_| ReadFailure::Unreadable)?;
    let keys = df.column("key").and_then(|c| c.str().cloned()).map_err(|_| ReadFailure::Unreadable)?;
    Ok(keys.iter().flatten().map(str::to_string).collect())
}
