//! `signalkit store merge`: the union of stores (shard stores of one sharded run, or any stores
//! of the same models), checked and written atomically.
//!
//! Stores are content-addressed (a key is a hash of the model and the text), so a union is safe
//! and idempotent. Refused: sources whose model folders differ (another model, fingerprint,
//! dtype, question or answer words), metadata files (`question.json`) that differ, and one key
//! with different values in two sources (a nondeterministic computation, or a store edited by
//! hand). Values agree when within [`TOLERANCE`]: batches of other sizes or padding change the
//! last bits of a float. A new `--out` is built in a temporary folder beside it and renamed into
//! place whole; rows missing from an existing `--out` are added as new store shards, each written
//! atomically under the store's writer lock, so readers never see half a shard. One merge into
//! an output at a time (`.<out>.merge.lock` beside it); it removes the temporary folders of
//! merges into that output that were killed. Every key is
//! checked before anything is written. Memory holds the keys, the rows of keys that several
//! sources hold, and one shard's rows at a time: sources are read shard by shard.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::shard::Shard;
use super::store::{Encoded, MANIFEST, ModelKey, Store};
use crate::data::lock::Lock;
use crate::error::{Error, Result};

/// Largest difference between two values of one key that still counts as the same number,
/// relative to the larger magnitude (or absolute below 1).
pub const TOLERANCE: f32 = 1e-4;

/// Rows per store shard written by a merge.
const ROWS_PER_SHARD: usize = 4096;

/// What one model folder got.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderMerge {
    /// The folder name (the model's slug).
    pub folder: String,
    /// Rows the output held before.
    pub before: usize,
    /// Rows added.
    pub added: usize,
    /// The shards recorded in the sources and the output.
    pub shards: Vec<Shard>,
}

impl FolderMerge {
    /// Shard indexes of a count that no source recorded (empty when unsharded or complete).
    pub fn missing_shards(&self) -> Vec<Shard> {
        let counts: BTreeSet<usize> = self.shards.iter().map(|s| s.count).collect();
        counts
            .into_iter()
            .flat_map(|n| (0..n).map(move |i| Shard { index: i, count: n }))
            .filter(|s| !self.shards.contains(s))
            .collect()
    }
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// The output store.
    pub out: PathBuf,
    /// Whether the output was created (else rows were added to an existing store).
    pub created: bool,
    /// Sources that are the output itself (nothing to copy).
    pub skipped_self: Vec<PathBuf>,
    /// Each model folder.
    pub folders: Vec<FolderMerge>,
    /// Temporary folders of killed merges into this output, removed.
    pub cleaned: Vec<PathBuf>,
}

impl std::fmt::Display for MergeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let added: usize = self.folders.iter().map(|m| m.added).sum();
        let verb = if self.created { "created" } else { "updated" };
        write!(f, "{verb} {} ({} folders, {added} rows added)", self.out.display(), self.folders.len())?;
        for m in &self.folders {
            write!(f, "\n  {}: {} rows before, {} added", m.folder, m.before, m.added)?;
            let missing = m.missing_shards();
            if !m.shards.is_empty() {
                let list: Vec<String> = m.shards.iter().map(Shard::to_string).collect();
                write!(f, "; shards {}", list.join(", "))?;
            }
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(Shard::to_string).collect();
                write!(f, "; warning: shards {} not merged yet", list.join(", "))?;
            }
        }
        for t in &self.cleaned {
            write!(f, "\n  removed {}, left by a merge that was stopped", t.display())?;
        }
        for s in &self.skipped_self {
            write!(f, "\n  {} is the output itself: nothing to copy from it", s.display())?;
        }
        Ok(())
    }
}

/// One source's model folders: slug → (folder, model).
type Folders = BTreeMap<String, (PathBuf, ModelKey)>;

/// The model folders of a store root, keyed by folder name; an empty or missing store is an
/// error naming it.
fn folders(root: &Path, what: &str) -> Result<Folders> {
    if !root.is_dir() {
        return Err(Error::input(root, format!("{what} is not a folder: name a store folder")));
    }
    let models = Store::models(root)?;
    if models.is_empty() && root.join(MANIFEST).is_file() {
        return Err(Error::input(
            root,
            format!("{what} is one model folder of a store, not a store: name the folder that holds it"),
        ));
    }
    if models.is_empty() {
        return Err(Error::input(
            root,
            format!("{what} holds no store (no <model>/model.json): name a folder written by encode or ask"),
        ));
    }
    Ok(models.into_iter().map(|(dir, m)| (dir.file_name().unwrap().to_string_lossy().into_owned(), (dir, m))).collect())
}

/// Refuses two stores that do not hold the same models (folders, manifests, metadata files).
fn check_same(a: (&Path, &Folders), b: (&Path, &Folders)) -> Result<()> {
    let names = |f: &Folders| f.keys().cloned().collect::<BTreeSet<_>>();
    let (na, nb) = (names(a.1), names(b.1));
    if na != nb {
        let only = |x: &BTreeSet<String>, y: &BTreeSet<String>| x.difference(y).cloned().collect::<Vec<_>>().join(", ");
        return Err(Error::Config(format!(
            "{} and {} hold different models or questions (only in the first: [{}]; only in the second: [{}]): \
             merge only stores written with the same models, questions and options",
            a.0.display(),
            b.0.display(),
            only(&na, &nb),
            only(&nb, &na)
        )));
    }
    for (name, (da, ma)) in a.1 {
        let (db, mb) = &b.1[name];
        if ma != mb {
            return Err(Error::Config(format!(
                "{} and {} describe different models: {ma:?} vs {mb:?}: merge only stores of the same model",
                da.join(MANIFEST).display(),
                db.join(MANIFEST).display()
            )));
        }
        check_metadata(da, db)?;
    }
    Ok(())
}

/// The metadata files of a model folder (top-level `*.json` but the manifest) with their bytes.
fn metadata(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != MANIFEST && e.path().is_file() {
            out.insert(name, fs::read(e.path()).map_err(|err| Error::io(&e.path(), err))?);
        }
    }
    Ok(out)
}

fn check_metadata(a: &Path, b: &Path) -> Result<()> {
    let (ma, mb) = (metadata(a)?, metadata(b)?);
    for (name, bytes) in &ma {
        if mb.get(name).is_some_and(|other| other != bytes) {
            return Err(Error::Config(format!(
                "{} and {} differ (another question, wording or option such as --knowledge-cutoff): \
                 merge only stores written with the same questions and options",
                a.join(name).display(),
                b.join(name).display()
            )));
        }
    }
    Ok(())
}

fn close(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= TOLERANCE * a.abs().max(b.abs()).max(1.0)
}

/// Why two rows of one key differ, if they do.
fn difference(a: &Encoded, b: &Encoded) -> Option<String> {
    if a.text != b.text {
        return Some(format!("texts {:?} vs {:?}", a.text, b.text));
    }
    let pair = |x: &[f32], y: &[f32], what: &str| -> Option<String> {
        if x.len() != y.len() {
            return Some(format!("{what} of {} vs {} values", x.len(), y.len()));
        }
        let i = (0..x.len()).find(|&i| !close(x[i], y[i]))?;
        Some(format!("{what}[{i}] {} vs {}", x[i], y[i]))
    };
    pair(&a.probs, &b.probs, "probabilities").or_else(|| pair(&a.cls, &b.cls, "embedding"))
}

/// Which source first holds each key of one model folder, and the keys several sources hold.
fn owners(stores: &[Store]) -> (HashMap<String, usize>, HashSet<String>) {
    let (mut owner, mut dup) = (HashMap::new(), HashSet::new());
    for (n, s) in stores.iter().enumerate() {
        for k in s.keys() {
            if owner.contains_key(k) {
                dup.insert(k.to_string());
            } else {
                owner.insert(k.to_string(), n);
            }
        }
    }
    (owner, dup)
}

/// Refuses a key whose values differ between sources; only the rows of keys several sources
/// hold are kept in memory.
fn check_conflicts(plan: &FolderPlan, dup: &HashSet<String>) -> Result<()> {
    if dup.is_empty() {
        return Ok(());
    }
    let mut first: HashMap<String, (Encoded, usize)> = HashMap::new();
    for (n, s) in plan.stores.iter().enumerate() {
        s.for_each_shard(|rows| {
            for row in rows.into_iter().filter(|r| dup.contains(&r.key)) {
                match first.get(&row.key) {
                    Some((kept, m)) => {
                        if let Some(why) = difference(kept, &row) {
                            return Err(Error::Config(format!(
                                "key {} ({:?}) has different values in {} and {}: {why}; the same text under the \
                                 same model must give the same numbers (nondeterminism, or a store edited by hand): \
                                 recompute it in one of them",
                                row.key,
                                row.text,
                                plan.stores[*m].dir().display(),
                                s.dir().display()
                            )));
                        }
                    }
                    None => {
                        first.insert(row.key.clone(), (row, n));
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Opens one model folder for reading.
fn open_read(dir: &Path, model: &ModelKey) -> Result<Store> {
    let root = dir.parent().unwrap_or(Path::new("."));
    let (store, report) = Store::find_by(root, &super::store::StoreQuery::exactly(model))?;
    if let Some(bad) = report.damaged.first() {
        return Err(Error::input(
            bad,
            "this store shard cannot be read: rerun encode/ask on that store (it sets damaged shards aside and redoes them) before merging",
        ));
    }
    Ok(store)
}

/// Writes the rows the store at `root` lacks (each key from the first source holding it, read
/// shard by shard), the metadata files and the shard records of one model folder; returns the
/// rows added.
fn fill(root: &Path, plan: &FolderPlan) -> Result<usize> {
    let (mut target, _) = Store::open(root, &plan.model)?;
    let (mut written, mut chunk, mut added) = (HashSet::new(), Vec::new(), 0);
    for (n, s) in plan.stores.iter().enumerate() {
        s.for_each_shard(|rows| {
            for row in rows {
                let mine = plan.owner.get(&row.key) == Some(&n);
                if mine && !target.contains(&row.key) && written.insert(row.key.clone()) {
                    chunk.push(row);
                    if chunk.len() == ROWS_PER_SHARD {
                        target.write_shard(&chunk)?;
                        added += std::mem::take(&mut chunk).len();
                    }
                }
            }
            Ok(())
        })?;
    }
    if !chunk.is_empty() {
        target.write_shard(&chunk)?;
        added += chunk.len();
    }
    for src in &plan.meta {
        let name = src.file_name().expect("a file");
        let bytes = fs::read(src).map_err(|e| Error::io(src, e))?;
        crate::data::write_bytes_atomic(&target.dir().join(name), &bytes)?;
    }
    for s in &plan.shards {
        s.record(target.dir())?;
    }
    Ok(added)
}

/// The output when it is an existing store; `None` when it is missing or an empty folder.
fn existing_out(out: &Path) -> Result<Option<Folders>> {
    match fs::read_dir(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(out, e)),
        Ok(mut entries) => match entries.next() {
            None => Ok(None),
            Some(_) => folders(out, "--out").map(Some).map_err(|_| {
                Error::input(out, "--out holds files but no store: name a new folder, or an existing store")
            }),
        },
    }
}

/// Same file or folder (after resolving links and `..`).
fn same_path(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Merges the stores `sources` into `out` (created, or an existing store that gains what it
/// lacks); see the module documentation for what is refused.
pub fn merge(out: &Path, sources: &[PathBuf]) -> Result<MergeSummary> {
    if sources.is_empty() {
        return Err(Error::Config("store merge: name at least one source store after --out DIR".into()));
    }
    let (parent, name) = beside(out)?;
    let _lock = Lock::take(&parent.join(format!(".{name}.merge.lock")), "store merge", out, "name another --out")?;
    let cleaned = remove_stale_temps(&parent, &name)?;
    let existing = existing_out(out)?;
    let mut skipped_self = Vec::new();
    let mut inputs: Vec<(PathBuf, Folders)> = Vec::new();
    for src in sources {
        if same_path(src, out) {
            skipped_self.push(src.clone());
        } else if !inputs.iter().any(|(p, _)| same_path(p, src)) {
            inputs.push((src.clone(), folders(src, "the source")?));
        }
    }
    let reference: (&Path, &Folders) = match (&existing, inputs.first()) {
        (Some(f), _) => (out, f),
        (None, Some((p, f))) => (p, f),
        (None, None) => {
            return Err(Error::Config("store merge: every source is --out itself: nothing to merge".into()));
        }
    };
    for (p, f) in &inputs {
        check_same(reference, (p, f))?;
    }
    let plan = plan(existing.as_ref(), &inputs)?;
    let folders = match existing {
        Some(_) => write_folders(out, &plan)?,
        None => write_new(out, (parent.as_path(), name.as_str()), &plan)?,
    };
    Ok(MergeSummary { out: out.to_path_buf(), created: folders.0, skipped_self, folders: folders.1, cleaned })
}

/// One model folder's merge: its model, the sources opened for reading (the output first when
/// it exists), which source gives each key, rows the output held, metadata files to copy, shards
/// recorded anywhere.
struct FolderPlan {
    name: String,
    model: ModelKey,
    stores: Vec<Store>,
    owner: HashMap<String, usize>,
    before: usize,
    meta: Vec<PathBuf>,
    shards: Vec<Shard>,
}

/// Every model folder's plan, its keys' values checked across the sources before anything is
/// written.
fn plan(existing: Option<&Folders>, inputs: &[(PathBuf, Folders)]) -> Result<Vec<FolderPlan>> {
    let names: Vec<String> =
        existing.or(inputs.first().map(|(_, f)| f)).into_iter().flat_map(|f| f.keys().cloned()).collect();
    let mut plans = Vec::new();
    for name in names {
        let mut dirs: Vec<(PathBuf, ModelKey)> = Vec::new();
        if let Some(f) = existing {
            dirs.push(f[&name].clone());
        }
        dirs.extend(inputs.iter().map(|(_, f)| f[&name].clone()));
        let stores = dirs.iter().map(|(d, m)| open_read(d, m)).collect::<Result<Vec<_>>>()?;
        let before = if existing.is_some() { stores[0].len() } else { 0 };
        let (owner, dup) = owners(&stores);
        let mut shards = BTreeSet::new();
        let mut meta = BTreeMap::new();
        for (dir, _) in &dirs {
            shards.extend(Shard::recorded(dir)?.into_iter().map(|s| (s.count, s.index)));
            for file in metadata(dir)?.into_keys() {
                meta.entry(file.clone()).or_insert_with(|| dir.join(file));
            }
        }
        let plan = FolderPlan {
            model: dirs[0].1.clone(),
            name,
            stores,
            owner,
            before,
            meta: meta.into_values().collect(),
            shards: shards.into_iter().map(|(count, index)| Shard { index, count }).collect(),
        };
        check_conflicts(&plan, &dup)?;
        plans.push(plan);
    }
    Ok(plans)
}

/// Fills every planned folder in the store at `root`.
fn write_folders(root: &Path, plans: &[FolderPlan]) -> Result<(bool, Vec<FolderMerge>)> {
    let mut done = Vec::new();
    for p in plans {
        let added = fill(root, p)?;
        done.push(FolderMerge { folder: p.name.clone(), before: p.before, added, shards: p.shards.clone() });
    }
    Ok((false, done))
}

/// Builds the store in a temporary folder beside `out` (in `parent`, named after `name`) and
/// renames it into place whole.
fn write_new(out: &Path, (parent, name): (&Path, &str), plans: &[FolderPlan]) -> Result<(bool, Vec<FolderMerge>)> {
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}{TEMP_MARK}"))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let (_, done) = write_folders(tmp.path(), plans)?;
    // rename(2) replaces a missing or empty folder, never a non-empty one.
    fs::rename(tmp.path(), out).map_err(|e| Error::io(out, e))?;
    Ok((true, done))
}

/// What names a merge's temporary folder: `.<out name>.merge-tmp-<random>`.
const TEMP_MARK: &str = ".merge-tmp-";

/// The folder `out` is in and its name (an existing `.` or `..` resolved first).
fn beside(out: &Path) -> Result<(PathBuf, String)> {
    let path = match out.file_name() {
        Some(_) => out.to_path_buf(),
        None => fs::canonicalize(out).map_err(|e| Error::io(out, e))?,
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
    Ok((parent, name))
}

/// Removes the temporary folders that merges into `<parent>/<name>` left when they were killed.
/// None of them is live: the caller holds the merge lock of that output.
fn remove_stale_temps(parent: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!(".{name}{TEMP_MARK}");
    let Ok(entries) = fs::read_dir(parent) else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir() {
            fs::remove_dir_all(e.path()).map_err(|err| Error::io(&e.path(), err))?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}
