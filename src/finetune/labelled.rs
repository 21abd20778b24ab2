//! Recipe (a): fine-tuning on a labelled table (`text,label`), with a held-out share scored
//! every epoch, a checkpoint folder and card written after every epoch.

use std::path::{Path, PathBuf};

use polars::prelude::DataType;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use xxhash_rust::xxh3::xxh3_128;

use super::{Classifier, EpochMetrics, Fit};
use crate::error::{Error, Result};

/// The common three-class layout of integer sentiment labels.
const COMMON: [&str; 3] = ["negative", "neutral", "positive"];

/// The class id of a label: a class name (case-insensitive), else an integer in the common
/// layout (0 negative, 1 neutral, 2 positive) mapped by name onto `labels`, or, when `labels`
/// are not the sentiment classes, the integer as an index into `labels`.
pub fn label_id(raw: &str, labels: &[String]) -> Option<u32> {
    let raw = raw.trim();
    let by_name = |n: &str| labels.iter().position(|l| l.eq_ignore_ascii_case(n)).map(|i| i as u32);
    if let Some(i) = by_name(raw) {
        return Some(i);
    }
    let n: usize = raw.parse().ok()?;
    if COMMON.iter().all(|c| by_name(c).is_some()) {
        return by_name(COMMON.get(n)?);
    }
    (n < labels.len()).then_some(n as u32)
}

/// Reads `text,label` rows (CSV, Parquet or JSON Lines) as texts and class ids of `labels`.
pub fn read_labelled(path: &Path, labels: &[String]) -> Result<(Vec<String>, Vec<u32>)> {
    let df = crate::data::read_table(path, true)?;
    let col = |name: &str| {
        df.column(name)
            .and_then(|c| c.cast(&DataType::String))
            .map_err(|_| Error::input(path, format!("no '{name}' column: the labelled file needs columns text,label")))
    };
    let (text, label) = (col("text")?, col("label")?);
    let (text, label) = (text.str().expect("cast to string"), label.str().expect("cast to string"));
    let (mut texts, mut ids) = (Vec::new(), Vec::new());
    for (row, (t, l)) in text.iter().zip(label.iter()).enumerate() {
        let (Some(t), Some(l)) = (t, l) else {
            return Err(Error::input(path, format!("row {}: empty text or label; fill or drop it", row + 1)));
        };
        let id = label_id(l, labels).ok_or_else(|| {
            Error::input(
                path,
                format!("row {}, column label: '{l}' is not one of the head's classes {labels:?} (or 0-2 in negative/neutral/positive)", row + 1),
            )
        })?;
        texts.push(t.to_string());
        ids.push(id);
    }
    Ok((texts, ids))
}

/// What a recipe (a) run needs.
#[derive(Debug, Clone)]
pub struct FinetuneArgs {
    /// The checkpoint, output folder, passes and optimiser.
    pub training: super::Training,
    /// The labelled table.
    pub labelled: PathBuf,
    /// Classes for a new head (None: the checkpoint's own head).
    pub labels: Option<Vec<String>>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneSummary {
    /// Training and held-out texts.
    pub train: usize,
    /// Held-out texts.
    pub held_out: usize,
    /// The head's classes.
    pub labels: Vec<String>,
    /// Per-epoch numbers.
    pub epochs: Vec<EpochMetrics>,
}

/// Splits indices into training and held-out (a seeded shuffle; the last `share` held out).
pub(crate) fn split(n: usize, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x4e1d));
    let held = ((n as f64) * share.clamp(0.0, 0.9)).round() as usize;
    let train = idx.split_off(held);
    (train, idx)
}

/// Fine-tunes on a labelled table, writing the folder and card after every epoch.
pub fn finetune_labelled(args: &FinetuneArgs, show: bool) -> Result<FinetuneSummary> {
    super::check_labels(args.labels.as_deref())?;
    let _out = args.training.start()?;
    let device = crate::encode::model::device(&args.training.device)?;
    let model = Classifier::load(&args.training.model, &device, args.labels.as_deref(), args.training.hyper.seed)?;
    let labels = model.labels.clone();
    let (texts, ids) = read_labelled(&args.labelled, &labels)?;
    let encodings = super::tokenize(&args.training.model, &texts, args.training.max_len)?;
    let (tr, ho) = split(texts.len(), args.training.held_out, args.training.hyper.seed);
    if tr.is_empty() {
        return Err(Error::input(&args.labelled, "no training texts left: add rows or lower --held-out"));
    }
    let data_hash =
        format!("{:032x}", xxh3_128(&std::fs::read(&args.labelled).map_err(|e| Error::io(&args.labelled, e))?));
    let fit = Fit {
        base: &args.training.model,
        out: &args.training.out,
        encodings: &encodings,
        ids: &ids,
        split: (&tr, &ho),
        epochs: args.training.epochs,
        batch_size: args.training.batch_size,
        warmup_share: args.training.warmup_share,
        card: json!({
            "recipe": "labelled", "max_len": args.training.max_len,
            "data": {"path": args.labelled, "xxh3": data_hash, "train": tr.len(), "held_out": ho.len()},
        }),
        show,
    };
    let metrics = super::fit(model, &args.training.hyper, fit)?;
    Ok(FinetuneSummary { train: tr.len(), held_out: ho.len(), labels, epochs: metrics })
}
