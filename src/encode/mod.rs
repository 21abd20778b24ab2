//! Encode: headlines → class probabilities and [CLS] embeddings, in a resumable store.
//!
//! Texts are normalised and de-duplicated, texts already in the store are skipped, the rest are
//! sorted by length and run in dynamically padded batches while the next ones are tokenised; each
//! finished chunk becomes one shard written atomically (on its own thread), so a killed run
//! resumes where it stopped, and runs at once into one store never overwrite each other.

pub mod hub;
pub mod merge;
pub mod model;
pub mod shard;
pub mod store;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokenizers::Encoding;

use crate::data::headlines::{HeadlineOptions, Headlines};
use crate::error::{Error, Result};
use hub::ModelSource;
use model::Encoder;
use shard::Shard;
use store::{Encoded, Store, key, normalise};

/// Everything `signalkit encode` needs.
#[derive(Debug, Clone)]
pub struct EncodeArgs {
    /// The checkpoint.
    pub source: ModelSource,
    /// Headlines file (CSV, Parquet or JSON Lines).
    pub headlines: PathBuf,
    /// How to read it.
    pub headline_options: HeadlineOptions,
    /// Store folder.
    pub store: PathBuf,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Headlines per forward pass.
    pub batch_size: usize,
    /// Maximum tokens per headline.
    pub max_len: usize,
    /// Weights' precision (f32, or bf16 / f16 opt-in).
    pub precision: model::Precision,
    /// Headlines per shard (the most a killed run can lose).
    pub shard_size: usize,
    /// Draw a progress bar on a terminal.
    pub progress: bool,
    /// Encode only this shard's texts ([`shard::Shard::keeps`]); `None`: every text.
    pub shard: Option<Shard>,
}

/// Headlines per forward pass when none is given: 256 on a GPU (`cuda`, `cuda:N`), 32 on the CPU.
pub fn default_batch_size(device: &str) -> usize {
    if device.starts_with("cuda") { 256 } else { 32 }
}

/// What an encode run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodeSummary {
    /// Model id.
    pub model: String,
    /// The store query that selects exactly the folder this run filled.
    pub query: store::StoreQuery,
    /// Headlines read.
    pub headlines: usize,
    /// Distinct normalised texts among them (this shard's, when sharded).
    pub unique: usize,
    /// Of those, already in the store.
    pub already_stored: usize,
    /// Encoded by this run.
    pub encoded: usize,
    /// Shards written by this run.
    pub shards: usize,
    /// Damaged shards found and set aside.
    pub damaged: usize,
    /// Seconds spent encoding.
    pub seconds: f64,
    /// The model has no classification head (embeddings only).
    pub embeddings_only: bool,
    /// This model's folder in the store.
    pub store_dir: PathBuf,
    /// The shard this run encoded, if sharded.
    pub shard: Option<Shard>,
    /// Distinct texts left to the other shards.
    pub other_shards: usize,
}

impl fmt::Display for EncodeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.seconds > 0.0 { self.encoded as f64 / self.seconds } else { 0.0 };
        write!(
            f,
            "{} headlines, {} distinct texts: {} already stored, {} encoded in {:.1}s ({:.1}/s) into {} shards{}{} → {}",
            self.headlines,
            self.unique,
            self.already_stored,
            self.encoded,
            self.seconds,
            rate,
            self.shards,
            match self.shard {
                Some(s) => format!(" (shard {s}: {} texts left to the other shards)", self.other_shards),
                None => String::new(),
            },
            if self.damaged > 0 { format!(" ({} damaged shards redone)", self.damaged) } else { String::new() },
            self.store_dir.display()
        )
    }
}

/// How texts are grouped on their way through the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Headlines per forward pass.
    pub batch_size: usize,
    /// Texts tokenised together and sorted by token length (after a global sort by byte length):
    /// large enough that batches are padded almost as tightly as with one global sort.
    pub window: usize,
    /// Headlines per shard (the most a killed run can lose).
    pub shard_size: usize,
}

impl Batching {
    /// `batch_size` per forward pass and `shard_size` per shard, with the default window
    /// (128 batches, at least 32,768 texts: about 0.5 % more padding than a global sort).
    pub fn new(batch_size: usize, shard_size: usize) -> Self {
        Batching { batch_size, window: (batch_size * 128).max(32_768), shard_size }
    }
}

/// One window's batches: (index into the texts, tokens).
type TokenWindow = Vec<Vec<(usize, Encoding)>>;

/// Encodes `texts` (normalised, distinct, not yet stored) into `store`, one shard per
/// `shard_size` texts, shortest first.
///
/// Three stages run at once: a thread tokenises the next window of texts, this thread runs the
/// encoder on the current one (on a GPU it mostly waits for the device), and a thread writes
/// finished shards. Between stages at most one window and one shard wait (bounded queues), so
/// memory stays flat however many texts there are. A failure in any stage stops all three and is
/// returned; shards already written stay valid, so a rerun resumes after them.
pub fn encode_into(
    encoder: &Encoder,
    store: &mut Store,
    texts: &[String],
    batching: Batching,
    bar: &ProgressBar,
) -> Result<usize> {
    let Batching { batch_size, window, shard_size } = batching;
    let (batch_size, window, shard_size) = (batch_size.max(1), window.max(1), shard_size.max(1));
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| (texts[i].len(), i));
    let tokenizer = encoder.tokenizer();
    std::thread::scope(|scope| {
        let (window_tx, window_rx) = mpsc::sync_channel::<Result<TokenWindow>>(1);
        let (shard_tx, shard_rx) = mpsc::sync_channel::<Vec<Encoded>>(1);
        let order = &order;
        scope.spawn(move || {
            for chunk in order.chunks(window) {
                let refs: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
                let tokens = model::tokenize(tokenizer, &refs).map(|e| {
                    let mut tokens: Vec<(usize, Encoding)> = chunk.iter().copied().zip(e).collect();
                    tokens.sort_by_key(|(i, e)| (e.get_ids().len(), *i));
                    let mut rest = tokens.into_iter();
                    std::iter::from_fn(|| Some(rest.by_ref().take(batch_size).collect::<Vec<_>>()))
                        .take_while(|b| !b.is_empty())
                        .collect()
                });
                let failed = tokens.is_err();
                if window_tx.send(tokens).is_err() || failed {
                    return; // the encoder stopped, or it has our error
                }
            }
        });
        let writer = scope.spawn(move || -> Result<usize> {
            let mut shards = 0;
            for rows in shard_rx {
                store.write_shard(&rows)?;
                shards += 1;
            }
            Ok(shards)
        });
        let encoded = (|| -> Result<()> {
            let mut rows = Vec::with_capacity(shard_size);
            for batches in window_rx {
                for batch in batches? {
                    let encs: Vec<&Encoding> = batch.iter().map(|(_, e)| e).collect();
                    for (&(i, _), (probs, cls)) in batch.iter().zip(encoder.forward(&encs)?) {
                        rows.push(Encoded { key: key(&encoder.key, &texts[i]), text: texts[i].clone(), probs, cls });
                        if rows.len() == shard_size {
                            let full = std::mem::replace(&mut rows, Vec::with_capacity(shard_size));
                            if shard_tx.send(full).is_err() {
                                return Ok(()); // the writer failed: its error is returned below
                            }
                        }
                    }
                    bar.inc(batch.len() as u64);
                }
            }
            if !rows.is_empty() {
                let _ = shard_tx.send(rows);
            }
            Ok(())
        })();
        drop(shard_tx);
        let written = writer.join().expect("the shard writer panicked");
        encoded?;
        written
    })
}

/// Reads headlines and fills the store with every text it lacks.
///
/// Several runs may fill one store at once: each writes shards under its own names, so none is
/// lost; a text that two runs both lacked is encoded by each ([`Store::read_all`] keeps one row).
pub fn encode_files(args: &EncodeArgs) -> Result<EncodeSummary> {
    if args.batch_size == 0 || args.shard_size == 0 {
        return Err(Error::Config("--batch-size and the shard size must be at least 1".into()));
    }
    let files = args.source.resolve()?;
    let device = model::device(&args.device)?;
    let encoder = Encoder::load_with(&files, &device, args.max_len, args.precision)?;
    let headlines = Headlines::read(&args.headlines, &args.headline_options)?;
    let (mut store, opened) = Store::open(&args.store, &encoder.key)?;
    if let Some(s) = args.shard {
        s.record(store.dir())?;
    }

    let mut seen = HashSet::new();
    let (mut unique, mut other_shards) = (0, 0);
    let mut missing = Vec::new();
    for t in headlines.text.iter().flatten() {
        let n = normalise(t);
        if seen.insert(n.clone()) {
            if args.shard.is_some_and(|s| !s.keeps(&n)) {
                other_shards += 1;
                continue;
            }
            unique += 1;
            if !store.contains(&key(&encoder.key, &n)) {
                missing.push(n);
            }
        }
    }
    let bar = if args.progress {
        ProgressBar::with_draw_target(Some(missing.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("encode {bar:40} {pos}/{len} headlines  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let clock = Instant::now();
    let shards = encode_into(&encoder, &mut store, &missing, Batching::new(args.batch_size, args.shard_size), &bar)?;
    bar.finish_and_clear();
    Ok(EncodeSummary {
        model: files.id,
        query: store::StoreQuery::exactly(&encoder.key),
        headlines: headlines.len(),
        unique,
        already_stored: unique - missing.len(),
        encoded: missing.len(),
        shards,
        damaged: opened.damaged.len(),
        seconds: clock.elapsed().as_secs_f64(),
        embeddings_only: !encoder.has_head(),
        store_dir: store.dir().to_path_buf(),
        shard: args.shard,
        other_shards,
    })
}
