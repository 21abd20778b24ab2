//! Sharding: one of N processes (a Kubernetes Indexed Job's pods, a Slurm array's tasks) takes
//! only the texts whose hash modulo N is its index, and writes them to an ordinary store;
//! `signalkit store merge` ([`super::merge`]) unions the shard stores.
//!
//! The hash is xxh3-64 of the exact UTF-8 text the store keys on (the normalised headline; for an
//! ask question naming `{ticker}` or `{company}`, ticker, U+001F, headline), so it does not depend
//! on the model, the file order or the machine: every shard of every run splits texts alike.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// The environment variable giving the shard count where the scheduler gives only an index
/// (a Kubernetes Indexed Job sets `JOB_COMPLETION_INDEX` but not the completions).
pub const SHARDS_ENV: &str = "SIGNALKIT_SHARDS";

/// The most shards a text set is split into (a count read from a flag, the environment or a
/// shard record sizes what `store merge` builds, so it is bounded).
pub const MAX_SHARDS: u64 = 65_536;

/// The folder inside a model folder holding one record per shard written into it.
pub const SHARDS_DIR: &str = "shards";

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// This process's shard, counted from 0.
    pub index: usize,
    /// How many shards the texts are split into.
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Shard::parse(s).map_err(|e| e.to_string())
    }
}

/// What a shard record (`shards/<I>-of-<N>.json`) says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ShardRecord {
    index: usize,
    count: usize,
    hash: String,
}

const HASH_RULE: &str = "xxh3_64(store key text) mod count";

impl Shard {
    /// A checked shard: `count` ≥ 1 and `index` < `count`; `what` names where the numbers came
    /// from in the error.
    pub fn new(index: usize, count: usize, what: &str) -> Result<Shard> {
        if count == 0 || count as u64 > MAX_SHARDS {
            return Err(Error::Config(format!("{what}: the shard count must be from 1 to {MAX_SHARDS}")));
        }
        if index >= count {
            return Err(Error::Config(format!(
                "{what}: shard index {index} is not below the shard count {count}: indexes run from 0 to {}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N` (as `--shard` takes it).
    pub fn parse(spec: &str) -> Result<Shard> {
        let bad = || {
            Error::Config(format!(
                "--shard {spec:?}: write it as I/N, e.g. --shard 0/4 (shard 0 of 4, I from 0 to N-1)"
            ))
        };
        let (i, n) = spec.split_once('/').ok_or_else(bad)?;
        let (i, n) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        Shard::new(i, n, &format!("--shard {spec}"))
    }

    /// Whether this shard takes a text (as the store keys it).
    pub fn keeps(&self, text: &str) -> bool {
        xxh3_64(text.as_bytes()) % self.count as u64 == self.index as u64
    }

    /// Records in a model folder that this shard was written into it
    /// (`shards/<I>-of-<N>.json`; the same content from every writer of the shard).
    pub fn record(&self, model_dir: &Path) -> Result<()> {
        let rec = ShardRecord { index: self.index, count: self.count, hash: HASH_RULE.into() };
        let path = model_dir.join(SHARDS_DIR).join(format!("{}-of-{}.json", self.index, self.count));
        crate::data::write_bytes_atomic(&path, &serde_json::to_vec_pretty(&rec).expect("serialisable"))
    }

    /// The shards recorded in a model folder, sorted (unreadable records are errors).
    pub fn recorded(model_dir: &Path) -> Result<Vec<Shard>> {
        let dir = model_dir.join(SHARDS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            let rec: ShardRecord = serde_json::from_str(&text)
                .map_err(|e| Error::input(&p, format!("not a shard record ({{index, count, hash}}): {e}")))?;
            out.push(Shard::new(rec.index, rec.count, &p.display().to_string())?);
        }
        out.sort_by_key(|s| (s.count, s.index));
        Ok(out)
    }

    /// The shard to run: `--shard I/N` when given, else the scheduler's environment
    /// (`JOB_COMPLETION_INDEX` with `--shard-count` or `SIGNALKIT_SHARDS`; `SLURM_ARRAY_TASK_ID`
    /// less `SLURM_ARRAY_TASK_MIN` with `SLURM_ARRAY_TASK_COUNT`), else none (every text).
    pub fn resolve(
        spec: Option<&str>,
        count: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>> {
        if let Some(spec) = spec {
            if count.is_some() {
                return Err(Error::Config(
                    "--shard I/N already gives the count: drop --shard-count (it is for JOB_COMPLETION_INDEX)".into(),
                ));
            }
            return Shard::parse(spec).map(Some);
        }
        let num = |name: &str| -> Result<Option<usize>> {
            match env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    Error::Config(format!(
                        "{name}={v:?} is not a whole number ≥ 0: fix or unset it, or pass --shard I/N"
                    ))
                }),
            }
        };
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = match count {
                Some(n) => n,
                None => num(SHARDS_ENV)?.ok_or_else(|| {
                    Error::Config(format!(
                        "JOB_COMPLETION_INDEX={i} is set (a Kubernetes Indexed Job) but not the shard count: \
                         set {SHARDS_ENV} to the Job's completions, or pass --shard-count N or --shard I/N"
                    ))
                })?,
            };
            return Shard::new(i, n, &format!("JOB_COMPLETION_INDEX={i} with {n} shards")).map(Some);
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let n = match count {
                Some(n) => n,
                None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                    Error::Config(format!(
                        "SLURM_ARRAY_TASK_ID={id} is set but not SLURM_ARRAY_TASK_COUNT: pass --shard-count N or --shard I/N"
                    ))
                })?,
            };
            let i = id.checked_sub(min).ok_or_else(|| {
                Error::Config(format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"))
            })?;
            let what = format!(
                "SLURM_ARRAY_TASK_ID={id} (less SLURM_ARRAY_TASK_MIN={min}) with {n} shards \
                 (use a contiguous array such as --array=0-{}, no step)",
                n.saturating_sub(1)
            );
            return Shard::new(i, n, &what).map(Some);
        }
        match count {
            Some(_) => Err(Error::Config(
                "--shard-count needs JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment: pass --shard I/N instead"
                    .into(),
            )),
            None => Ok(None),
        }
    }

    /// [`Shard::resolve`] with the process's environment.
    pub fn from_env_or(spec: Option<&str>, count: Option<usize>) -> Result<Option<Shard>> {
        Shard::resolve(spec, count, |name| std::env::var(name).ok())
    }
}
