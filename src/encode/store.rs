//! The embedding store: encoder outputs keyed by a hash of (model, normalised text), kept as
//! parquet shards. Each shard is written to a temporary file and renamed, so a killed run loses at
//! most the shard in flight; a shard that cannot be read back is set aside and its texts redone.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::data::write_parquet_atomic;
use crate::error::{Error, Result};

/// What identifies a model's outputs: the same fingerprint means the same numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelKey {
    /// Hub id or local path, for people.
    pub id: String,
    /// Hash of the weights, config and vocabulary files (hex).
    pub fingerprint: String,
    /// Maximum tokens per headline.
    pub max_len: usize,
    /// Class labels in output order (empty for embedding-only models).
    pub labels: Vec<String>,
    /// Precision the outputs were computed in ("f32" unless opted into "bf16" or "f16").
    #[serde(default = "f32_name", skip_serializing_if = "is_f32")]
    pub dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

fn is_f32(d: &String) -> bool {
    d == "f32"
}

impl ModelKey {
    /// The folder name of this model's shards inside a store.
    pub fn slug(&self) -> String {
        let name: String =
            self.id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        let tail: String = name.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        let dtype = if is_f32(&self.dtype) { String::new() } else { format!("-{}", self.dtype) };
        format!("{tail}-{}-len{}{dtype}", &self.fingerprint[..12.min(self.fingerprint.len())], self.max_len)
    }
}

/// The text the store keys on: trimmed, with every run of whitespace made one space.
pub fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The store key of a normalised text under a model (128-bit xxh3, hex).
pub fn key(model: &ModelKey, normalised: &str) -> String {
    let mut buf = Vec::with_capacity(model.fingerprint.len() + normalised.len() + 16);
    buf.extend_from_slice(model.fingerprint.as_bytes());
    buf.extend_from_slice(format!("|{}|", model.max_len).as_bytes());
    if !is_f32(&model.dtype) {
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

/// What opening a store found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Readable shards.
    pub shards: usize,
    /// Entries in them.
    pub entries: usize,
    /// Shards that could not be read and were set aside (their texts will be redone).
    pub damaged: Vec<PathBuf>,
}

/// A store folder for one model.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    model: ModelKey,
    known: HashSet<String>,
    next_shard: usize,
}

impl Store {
    /// Opens (creating if needed) the store under `root` for `model`, reading every shard's keys.
    pub fn open(root: &Path, model: &ModelKey) -> Result<(Store, OpenReport)> {
        let dir = root.join(model.slug());
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let manifest = dir.join(MANIFEST);
        if !manifest.exists() {
            let json = serde_json::to_vec_pretty(model).expect("serialisable");
            let tmp = dir.join(format!(".{MANIFEST}.tmp-{}", std::process::id()));
            fs::write(&tmp, json).and_then(|_| fs::rename(&tmp, &manifest)).map_err(|e| Error::io(&manifest, e))?;
        }
        let mut report = OpenReport::default();
        let mut known = HashSet::new();
        let mut next_shard = 0;
        for path in shard_paths(&dir)? {
            let n = shard_number(&path).unwrap_or(0);
            next_shard = next_shard.max(n + 1);
            match read_keys(&path) {
                Ok(keys) => {
                    report.shards += 1;
                    report.entries += keys.len();
                    known.extend(keys);
                }
                Err(_) => {
                    let aside = path.with_extension("parquet.damaged");
                    fs::rename(&path, &aside).map_err(|e| Error::io(&path, e))?;
                    report.damaged.push(aside);
                }
            }
        }
        // Temporary files of killed runs are never complete: remove them.
        for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.flatten() {
            if e.file_name().to_string_lossy().contains(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok((Store { dir, model: model.clone(), known, next_shard }, report))
    }

    /// Opens the store folder of the model named `id` (hub id or path as given to encode), or
    /// the only model in the store when `id` is `None`.
    pub fn find(root: &Path, id: Option<&str>) -> Result<(Store, OpenReport)> {
        let mut models = Vec::new();
        for e in fs::read_dir(root).map_err(|e| Error::io(root, e))?.flatten() {
            let m = e.path().join(MANIFEST);
            if let Ok(text) = fs::read_to_string(&m) {
                let key: ModelKey =
                    serde_json::from_str(&text).map_err(|e| Error::input(&m, format!("invalid: {e}")))?;
                models.push(key);
            }
        }
        let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        let chosen: Vec<&ModelKey> = models.iter().filter(|m| id.is_none_or(|id| m.id == id)).collect();
        match chosen.as_slice() {
            [one] => Store::open(root, one),
            [] => Err(Error::input(
                root,
                match id {
                    Some(id) => format!(
                        "no outputs of model '{id}' in this store (it has: {}); run signalkit encode first",
                        ids.join(", ")
                    ),
                    None => "the store is empty: run signalkit encode first".into(),
                },
            )),
            _ => Err(Error::input(
                root,
                format!("the store holds several models ({}): choose one with --model", ids.join(", ")),
            )),
        }
    }

    /// The model whose outputs this folder holds.
    pub fn model(&self) -> &ModelKey {
        &self.model
    }

    /// The folder holding this model's shards.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a key is already stored.
    pub fn contains(&self, key: &str) -> bool {
        self.known.contains(key)
    }

    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// True when nothing is stored yet.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Writes one shard atomically and records its keys.
    pub fn write_shard(&mut self, rows: &[Encoded]) -> Result<PathBuf> {
        let path = self.dir.join(format!("shard-{:06}.parquet", self.next_shard));
        let mut df = to_frame(&self.model, rows).map_err(|e| Error::table(&path, e))?;
        write_parquet_atomic(&mut df, &path)?;
        self.next_shard += 1;
        self.known.extend(rows.iter().map(|r| r.key.clone()));
        Ok(path)
    }

    /// Every stored entry of this model as one table (columns: key, text, p_*, sentiment, cls).
    pub fn read_all(&self) -> Result<DataFrame> {
        let mut all: Option<DataFrame> = None;
        for p in shard_paths(&self.dir)? {
            let f = fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
            let df = ParquetReader::new(f).finish().map_err(|e| Error::table(&p, e))?;
            match all.as_mut() {
                Some(a) => {
                    a.vstack_mut_owned(df).map_err(|e| Error::table(&p, e))?;
                }
                None => all = Some(df),
            }
        }
        match all {
            Some(df) => Ok(df),
            None => to_frame(&self.model, &[]).map_err(|e| Error::table(&self.dir, e)),
        }
    }
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

fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| shard_number(p).is_some())
        .collect();
    v.sort();
    Ok(v)
}

fn shard_number(p: &Path) -> Option<usize> {
    let name = p.file_name()?.to_str()?;
    name.strip_prefix("shard-")?.strip_suffix(".parquet")?.parse().ok()
}

fn read_keys(p: &Path) -> Result<Vec<String>> {
    let f = fs::File::open(p).map_err(|e| Error::io(p, e))?;
    let df = ParquetReader::new(f).finish().map_err(|e| Error::table(p, e))?;
    let keys = df.column("key").and_then(|c| c.str().cloned()).map_err(|e| Error::table(p, e))?;
    Ok(keys.iter().flatten().map(str::to_string).collect())
}
