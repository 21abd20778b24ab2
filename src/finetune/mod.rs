//! Fine-tuning a BERT-family checkpoint for sequence classification in candle.
//!
//! The model is [`crate::bert::Bert`] computing with differentiable ops over a [`VarMap`] filled
//! from the checkpoint ([`Classifier`]), so one forward both trains and predicts. This module is
//! the trainer: cross-entropy, AdamW with weight decay (our own, torch's update, so its moments
//! can be checkpointed), linear warm-up then linear decay (as transformers'
//! `get_linear_schedule_with_warmup`), gradient-norm clipping (as torch's `clip_grad_norm_`),
//! frozen embeddings and first layers or head only, batches grouped by token length, seeded
//! dropout and shuffling. [`run_epochs`] is the epoch loop both recipes share, with a checkpoint
//! after every epoch that a rerun resumes from.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::Config;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::Value;
use tokenizers::Encoding;

use crate::bert::{Bert, Compute, DropoutRates, Options, labels_of, read_config};
use crate::encode::model::ModelFiles;
use crate::error::{Error, Result};

type CResult<T> = candle_core::Result<T>;

fn cerr(e: candle_core::Error) -> Error {
    Error::Encoder(format!("finetune: {e}"))
}

/// The model being trained: [`Bert`] with a head, over variables named as in a transformers
/// `BertForSequenceClassification` checkpoint, computing with differentiable ops.
pub struct Classifier {
    /// Every weight, named as in a transformers `BertForSequenceClassification` checkpoint.
    pub varmap: VarMap,
    bert: Bert,
    pad_id: u32,
    device: Device,
    /// The checkpoint's config.json as read (id2label is rewritten on save).
    pub config: Value,
    /// Class names in output order.
    pub labels: Vec<String>,
    /// True when the head was newly initialised rather than read from the checkpoint.
    pub fresh_head: bool,
}

/// Reads a checkpoint's tensors in f32, named `bert.…`/`classifier.…` with LayerNorm `weight`/`bias`.
fn read_weights(files: &ModelFiles, device: &Device) -> Result<HashMap<String, Tensor>> {
    let p = &files.weights;
    let raw: Vec<(String, Tensor)> = if p.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load(p, device)
            .map_err(|e| Error::input(p, format!("cannot read: {e}")))?
            .into_iter()
            .collect()
    } else {
        candle_core::pickle::read_all(p).map_err(|e| Error::input(p, format!("cannot read: {e}")))?
    };
    let mut out = HashMap::new();
    for (k, t) in raw {
        let mut k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
        if !k.starts_with("bert.") && !k.starts_with("classifier.") && !k.starts_with("cls.") {
            k = format!("bert.{k}");
        }
        let t = t.to_dtype(DType::F32).and_then(|t| t.to_device(device)).map_err(cerr)?;
        out.insert(k, t);
    }
    Ok(out)
}

impl Classifier {
    /// Loads a checkpoint for training: its own head when `labels` is `None` or names the same
    /// classes in the same order, else a new head over `labels` (normal(0, initializer_range), seeded).
    pub fn load(files: &ModelFiles, device: &Device, labels: Option<&[String]>, seed: u64) -> Result<Self> {
        let (cfg, raw) = read_config(&files.config)?;
        let saved = read_weights(files, device)?;
        let own = saved.get("classifier.weight").map(|w| labels_of(&raw, w.dims()[0]));
        let labels: Vec<String> = match (labels, &own) {
            (Some(l), _) => l.to_vec(),
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(Error::input(
                    &files.weights,
                    "this checkpoint has no classification head: name its classes with --labels (e.g. negative,neutral,positive)",
                ));
            }
        };
        let fresh_head = own.as_ref() != Some(&labels);
        let varmap = VarMap::new();
        let model = Self::build(&varmap, &cfg, raw, labels, fresh_head, device, seed).map_err(cerr)?;
        model.fill(&saved, &files.weights, seed)?;
        Ok(model)
    }

    fn build(
        varmap: &VarMap,
        cfg: &Config,
        raw: Value,
        labels: Vec<String>,
        fresh_head: bool,
        device: &Device,
        seed: u64,
    ) -> CResult<Self> {
        let options = Options {
            prefixed: true,
            classes: Some(labels.len()),
            compute: Compute::Differentiable,
            dropout: DropoutRates::of(&raw),
            seed,
        };
        Ok(Classifier {
            varmap: varmap.clone(),
            bert: Bert::load(VarBuilder::from_varmap(varmap, DType::F32, device), cfg, &options)?,
            pad_id: cfg.pad_token_id as u32,
            device: device.clone(),
            config: raw,
            labels,
            fresh_head,
        })
    }

    /// Copies the checkpoint's tensors into the variables; initialises a new head (and a missing pooler).
    fn fill(&self, saved: &HashMap<String, Tensor>, path: &Path, seed: u64) -> Result<()> {
        let std = self.config.get("initializer_range").and_then(Value::as_f64).unwrap_or(0.02);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let new = (self.fresh_head && name.starts_with("classifier."))
                || (name.starts_with("bert.pooler.") && !saved.contains_key(name.as_str()));
            let value = if new {
                init_tensor(var.dims(), name.ends_with(".weight"), std, &mut rng, &self.device).map_err(cerr)?
            } else {
                let t = saved.get(name.as_str()).ok_or_else(|| {
                    Error::input(path, format!("the checkpoint has no tensor {name}: is it a BERT checkpoint?"))
                })?;
                if t.dims() != var.dims() {
                    return Err(Error::input(
                        path,
                        format!("tensor {name} has shape {:?}, the config says {:?}", t.dims(), var.dims()),
                    ));
                }
                t.clone()
            };
            var.set(&value).map_err(cerr)?;
        }
        Ok(())
    }
}

/// A weight drawn from normal(0, std) or a zero bias, from the seeded generator.
fn init_tensor(dims: &[usize], weight: bool, std: f64, rng: &mut ChaCha8Rng, device: &Device) -> CResult<Tensor> {
    let n: usize = dims.iter().product();
    let normal = Normal::new(0.0, std).expect("positive std");
    let v: Vec<f32> = if weight { (0..n).map(|_| normal.sample(rng) as f32).collect() } else { vec![0.0; n] };
    Tensor::from_vec(v, dims, device)
}

impl Classifier {
    /// How far the dropout generator has run (saved in checkpoints).
    pub fn dropout_position(&self) -> u128 {
        self.bert.dropout_position()
    }

    /// Moves the dropout generator to a saved position.
    pub fn set_dropout_position(&self, pos: u128) {
        self.bert.set_dropout_position(pos);
    }

    /// Switches dropout on (training) or off (evaluation and parity checks).
    pub fn set_training(&self, on: bool) {
        self.bert.set_training(on);
    }

    /// The classification logits (n, classes) of a tokenised batch.
    pub fn logits(&self, batch: &[&Encoding]) -> CResult<Tensor> {
        let (ids, mask) = crate::bert::pad_batch(batch, self.pad_id, &self.device)?;
        self.bert.logits(&self.bert.forward(&ids, &mask)?)
    }

    /// Mean cross-entropy of a batch against class ids.
    pub fn loss(&self, batch: &[&Encoding], labels: &[u32]) -> CResult<Tensor> {
        let targets = Tensor::new(labels, &self.device)?;
        candle_nn::loss::cross_entropy(&self.logits(batch)?, &targets)
    }

    /// The variables a run updates: all, all but the embeddings and the first `freeze_layers`
    /// layers, or the classifier alone (`head_only`); sorted by name.
    pub fn trainable(&self, freeze_layers: usize, head_only: bool) -> Vec<(String, Var)> {
        let frozen = |name: &str| {
            if head_only {
                return !name.starts_with("classifier.");
            }
            if freeze_layers == 0 {
                return false;
            }
            name.starts_with("bert.embeddings.")
                || name
                    .strip_prefix("bert.encoder.layer.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i < freeze_layers)
        };
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut vars: Vec<(String, Var)> =
            data.iter().filter(|(n, _)| !frozen(n)).map(|(n, v)| (n.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }
}

/// Optimiser settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hyper {
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Optimiser steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: usize,
    /// Total optimiser steps (the decay reaches 0 here).
    pub total_steps: usize,
    /// Largest global gradient L2 norm; larger gradients are scaled down.
    pub max_grad_norm: f64,
    /// Embeddings and the first N encoder layers stay fixed.
    pub freeze_layers: usize,
    /// Only the classifier trains.
    pub head_only: bool,
    /// Seeds the head, dropout and the batch order.
    pub seed: u64,
    /// Dropout at the config's rates while training (off for parity checks).
    pub dropout: bool,
}

impl Hyper {
    /// The learning rate at optimiser step `step` (0-based), as transformers' linear schedule.
    pub fn lr_at(&self, step: usize) -> f64 {
        let factor = if step < self.warmup_steps {
            step as f64 / self.warmup_steps.max(1) as f64
        } else {
            let left = self.total_steps.saturating_sub(step) as f64;
            (left / self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64).max(0.0)
        };
        self.lr * factor
    }
}

/// A model and its optimiser.
pub struct Trainer {
    /// The model being trained.
    pub model: Classifier,
    opt: adamw::AdamW,
    vars: Vec<Var>,
    /// The settings.
    pub hyper: Hyper,
    /// Optimiser steps taken.
    pub step: usize,
}

impl Trainer {
    /// An AdamW (betas 0.9/0.999, eps 1e-8) over the model's trainable variables.
    pub fn new(model: Classifier, hyper: Hyper) -> Result<Self> {
        let named = model.trainable(hyper.freeze_layers, hyper.head_only);
        let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
        let opt = adamw::AdamW::new(named, hyper.lr_at(0), hyper.weight_decay).map_err(cerr)?;
        Ok(Trainer { model, opt, vars, hyper, step: 0 })
    }

    /// One optimiser step on a batch (dropout on): returns the batch's loss before the step.
    pub fn step(&mut self, batch: &[&Encoding], labels: &[u32]) -> Result<f32> {
        self.model.set_training(self.hyper.dropout);
        let loss = self.model.loss(batch, labels).map_err(cerr)?;
        let grads = loss.backward().map_err(cerr)?;
        let mut sq = 0f64;
        for v in &self.vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                sq += adamw::sum_of_squares(g).map_err(cerr)?;
            }
        }
        // torch's clip_grad_norm_: the gradients are scaled only when the norm is over the limit.
        let coef = self.hyper.max_grad_norm / (sq.sqrt() + 1e-6);
        self.opt.lr = self.hyper.lr_at(self.step);
        self.opt.step(&grads, if coef < 1.0 { coef as f32 } else { 1.0 }).map_err(cerr)?;
        self.step += 1;
        self.model.set_training(false);
        loss.to_scalar::<f32>().map_err(cerr)
    }

    /// Mean loss and accuracy over texts (dropout off), in batches of `batch_size`.
    pub fn evaluate(&self, encodings: &[Encoding], labels: &[u32], batch_size: usize) -> Result<(f64, f64)> {
        self.model.set_training(false);
        let (mut loss, mut right) = (0f64, 0usize);
        for (chunk, lab) in encodings.chunks(batch_size.max(1)).zip(labels.chunks(batch_size.max(1))) {
            let refs: Vec<&Encoding> = chunk.iter().collect();
            let logits = self.model.logits(&refs).map_err(cerr)?;
            let targets = Tensor::new(lab, &self.model.device).map_err(cerr)?;
            let l =
                candle_nn::loss::cross_entropy(&logits, &targets).and_then(|l| l.to_scalar::<f32>()).map_err(cerr)?;
            loss += l as f64 * lab.len() as f64;
            let pred = logits.argmax(D::Minus1).and_then(|p| p.to_vec1::<u32>()).map_err(cerr)?;
            right += pred.iter().zip(lab).filter(|(p, l)| p == l).count();
        }
        let n = labels.len().max(1) as f64;
        Ok((loss / n, right as f64 / n))
    }
}

/// Batches of similar token length: a seeded shuffle, sorted by length within windows of 50
/// batches, cut into batches, the batches shuffled again.
pub fn length_batches(lens: &[usize], batch_size: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let b = batch_size.max(1);
    let mut idx: Vec<usize> = (0..lens.len()).collect();
    idx.shuffle(rng);
    for window in idx.chunks_mut(b * 50) {
        window.sort_by_key(|&i| lens[i]);
    }
    let mut batches: Vec<Vec<usize>> = idx.chunks(b).map(<[usize]>::to_vec).collect();
    batches.shuffle(rng);
    batches
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Held-out loss (NaN without a held-out share).
    pub held_out_loss: f64,
    /// Held-out accuracy (NaN without a held-out share).
    pub held_out_accuracy: f64,
    /// Training texts per second.
    pub texts_per_s: f64,
}

/// Trains one epoch over `train` (encodings, class ids) with a progress bar showing loss and texts/s.
pub fn train_epoch(
    t: &mut Trainer,
    train: (&[Encoding], &[u32]),
    batch_size: usize,
    epoch: usize,
    show: bool,
) -> Result<(f64, f64)> {
    let (enc, lab) = train;
    let mut rng = ChaCha8Rng::seed_from_u64(t.hyper.seed.wrapping_add(epoch as u64));
    let lens: Vec<usize> = enc.iter().map(|e| e.get_ids().len()).collect();
    let batches = length_batches(&lens, batch_size, &mut rng);
    let bar = if show {
        ProgressBar::with_draw_target(Some(enc.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}").expect("template"));
    bar.set_prefix(epoch.to_string());
    let (start, mut total, mut seen) = (std::time::Instant::now(), 0f64, 0usize);
    for (k, b) in batches.iter().enumerate() {
        let refs: Vec<&Encoding> = b.iter().map(|&i| &enc[i]).collect();
        let ys: Vec<u32> = b.iter().map(|&i| lab[i]).collect();
        total += t.step(&refs, &ys)? as f64;
        seen += b.len();
        let rate = seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {:.4} {rate:.1} texts/s", total / (k + 1) as f64));
        bar.inc(b.len() as u64);
    }
    bar.finish_and_clear();
    Ok((total / batches.len().max(1) as f64, seen as f64 / start.elapsed().as_secs_f64().max(1e-9)))
}

impl Classifier {
    /// Writes a Hugging Face folder `dir`: model.safetensors (every weight, transformers' names),
    /// config.json with this head's id2label/label2id, and the base model's tokenizer files.
    pub fn save(&self, dir: &Path, base: &ModelFiles) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors: HashMap<String, Tensor> = {
            let data = self.varmap.data().lock().expect("varmap lock");
            data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
        };
        let weights = dir.join("model.safetensors");
        crate::data::atomic::write_atomic(&weights, |tmp, _| {
            candle_core::safetensors::save(&tensors, tmp).map_err(|e| Error::input(tmp, format!("cannot write: {e}")))
        })?;
        let mut config = self.config.clone();
        let id2label: serde_json::Map<String, Value> =
            self.labels.iter().enumerate().map(|(i, l)| (i.to_string(), Value::from(l.as_str()))).collect();
        let label2id: serde_json::Map<String, Value> =
            self.labels.iter().enumerate().map(|(i, l)| (l.clone(), Value::from(i))).collect();
        config["id2label"] = Value::Object(id2label);
        config["label2id"] = Value::Object(label2id);
        config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
        let text = serde_json::to_string_pretty(&config).expect("json");
        crate::data::atomic::write_bytes_atomic(&dir.join("config.json"), text.as_bytes())?;
        for src in [&base.tokenizer_json, &base.vocab, &base.tokenizer_config].into_iter().flatten() {
            let bytes = std::fs::read(src).map_err(|e| Error::io(src, e))?;
            let name = src.file_name().expect("a file name");
            crate::data::atomic::write_bytes_atomic(&dir.join(name), &bytes)?;
        }
        Ok(())
    }
}

/// Refuses settings that cannot train, naming the option (`--flag` and `[finetune]` key alike):
/// no epochs or empty batches, and a learning rate, decay, clip norm or share that is NaN or out
/// of its range.
pub fn check_settings(epochs: usize, batch_size: usize, warmup_share: f64, held_out: f64, h: &Hyper) -> Result<()> {
    let within = |v: f64, lo: f64, hi: f64, lo_ok: bool, hi_ok: bool| {
        v.is_finite() && (v > lo || (lo_ok && v == lo)) && (v < hi || (hi_ok && v == hi))
    };
    let checks = [
        ("epochs", epochs as f64, epochs >= 1, "at least 1"),
        ("batch-size (batch_size)", batch_size as f64, batch_size >= 1, "at least 1"),
        ("lr", h.lr, within(h.lr, 0.0, 1.0, false, true), "a number in (0, 1], e.g. 2e-5"),
        ("weight-decay (weight_decay)", h.weight_decay, within(h.weight_decay, 0.0, 1.0, true, false), "in [0, 1)"),
        ("max-grad-norm (max_grad_norm)", h.max_grad_norm, within(h.max_grad_norm, 0.0, 1e6, false, true), "> 0"),
        ("warmup", warmup_share, within(warmup_share, 0.0, 1.0, true, true), "a share in [0, 1]"),
        ("held-out (held_out)", held_out, within(held_out, 0.0, 1.0, true, false), "a share in [0, 1)"),
    ];
    match checks.iter().find(|c| !c.2) {
        Some((name, v, _, want)) => Err(Error::Config(format!("finetune: {name} = {v} is not usable: give {want}"))),
        None => Ok(()),
    }
}

/// Refuses `--labels` that cannot name a head's classes: fewer than two, an empty one, or one
/// given twice (case aside: answers match labels case-insensitively, and each names a `p_<label>`
/// column). None (the checkpoint's own head) passes.
pub fn check_labels(labels: Option<&[String]>) -> Result<()> {
    let Some(labels) = labels else { return Ok(()) };
    let given = labels.join(",");
    let bad = |why: String| Err(Error::Config(format!("--labels {given}: {why}")));
    if let Some(i) = labels.iter().position(|l| l.trim().is_empty()) {
        return bad(format!("label {} is empty: name every class (e.g. negative,neutral,positive)", i + 1));
    }
    for (i, l) in labels.iter().enumerate() {
        if let Some(j) = labels[..i].iter().position(|m| m.trim().eq_ignore_ascii_case(l.trim())) {
            return bad(format!(
                "labels {} and {} are both '{}': each class needs its own name (it names the p_<label> column)",
                j + 1,
                i + 1,
                l.trim()
            ));
        }
    }
    if labels.len() < 2 {
        return bad(format!(
            "{} class: a classification head needs at least 2 (e.g. negative,neutral,positive)",
            labels.len()
        ));
    }
    Ok(())
}

/// Refuses freezing more encoder layers than the checkpoint has (its config.json's
/// `num_hidden_layers`), before any data is read.
pub fn check_depth(files: &ModelFiles, h: &Hyper) -> Result<()> {
    let (cfg, _) = read_config(&files.config)?;
    if h.freeze_layers <= cfg.num_hidden_layers {
        return Ok(());
    }
    Err(Error::Config(format!(
        "finetune: --freeze-layers (freeze_layers in [finetune]) = {} but {} has {} encoder layers (num_hidden_layers): \
         give at most {} (0 trains them all; --head-only trains the head alone)",
        h.freeze_layers,
        files.config.display(),
        cfg.num_hidden_layers,
        cfg.num_hidden_layers
    )))
}

impl Hyper {
    /// These settings with the schedule of a run: `epochs` passes over `n` texts in batches of
    /// `batch_size`, the first `warmup_share` of the steps warming up.
    pub fn scheduled(&self, epochs: usize, n: usize, batch_size: usize, warmup_share: f64) -> Hyper {
        let total = epochs * n.div_ceil(batch_size.max(1));
        Hyper { total_steps: total, warmup_steps: (total as f64 * warmup_share).round() as usize, ..self.clone() }
    }
}

/// What a recipe hands the shared epoch loop: the data, where to write, and its card fields.
pub struct EpochRun<'a> {
    /// The base checkpoint (its fingerprint goes in the card, its tokenizer files in the folder).
    pub base: &'a ModelFiles,
    /// The output folder.
    pub out: &'a Path,
    /// Passes over the training texts.
    pub epochs: usize,
    /// Texts per optimiser step.
    pub batch_size: usize,
    /// Training encodings and class ids.
    pub train: (&'a [Encoding], &'a [u32]),
    /// Held-out encodings and class ids (may be empty).
    pub held_out: (&'a [Encoding], &'a [u32]),
    /// The recipe's own card fields (recipe, data, counts…), merged into every card.json.
    pub card: Value,
    /// Show a progress bar.
    pub show: bool,
}

/// Claims the output folder before any work: `--out` may not be, hold or sit inside the base
/// checkpoint's folder (`--model`; the run would overwrite or mix with the checkpoint it reads),
/// and one fine-tuning run at a time writes it (its lock is held until the returned value is
/// dropped; a second run fails at once naming the first).
pub fn claim_out(base: &ModelFiles, out: &Path) -> Result<crate::data::lock::Lock> {
    let model_dir = base.config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::data::guard_output_folder(out, "--out", &[(model_dir, "--model")])?;
    crate::data::lock::lock_folder(out, "finetune", "--out")
}

/// Set to an epoch number, the process aborts (as if killed) once that epoch's checkpoint is
/// written: the resume tests use it.
pub const ABORT_AFTER_EPOCH_ENV: &str = "SIGNALKIT_FINETUNE_ABORT_AFTER_EPOCH";

/// Trains `run.epochs` epochs, resuming from `out/checkpoint` when it holds an earlier epoch of
/// the same run; after each epoch, scores the held-out texts and writes the Hugging Face folder,
/// card.json and the checkpoint. The checkpoint is removed when the last epoch is done.
pub fn run_epochs(trainer: &mut Trainer, run: &EpochRun) -> Result<Vec<EpochMetrics>> {
    if run.out.exists() && !run.out.is_dir() {
        return Err(Error::input(run.out, "--out is a file, not a folder: name a new folder for the fine-tuned model"));
    }
    let identity = card_fields(trainer, run)?;
    let (done, mut metrics) = checkpoint::resume(trainer, run.out, &identity)?;
    if done > 0 && run.show {
        eprintln!("resuming after epoch {done} from {}", checkpoint::path(run.out).display());
    }
    let abort_after: Option<usize> = std::env::var(ABORT_AFTER_EPOCH_ENV).ok().and_then(|v| v.parse().ok());
    for epoch in done + 1..=run.epochs {
        let (train_loss, rate) = train_epoch(trainer, run.train, run.batch_size, epoch, run.show)?;
        let (ho_e, ho_y) = run.held_out;
        let (hl, ha) =
            if ho_e.is_empty() { (f64::NAN, f64::NAN) } else { trainer.evaluate(ho_e, ho_y, run.batch_size)? };
        metrics.push(EpochMetrics { epoch, train_loss, held_out_loss: hl, held_out_accuracy: ha, texts_per_s: rate });
        trainer.model.save(run.out, run.base)?;
        write_card(&identity, run.out, &metrics)?;
        checkpoint::save(trainer, run.out, &identity, epoch, &metrics)?;
        if abort_after == Some(epoch) {
            std::process::abort();
        }
    }
    checkpoint::remove(run.out)?;
    Ok(metrics)
}

/// The card without its metrics: the base model, classes, settings and the recipe's fields
/// (also what a checkpoint must match to be resumed).
fn card_fields(trainer: &Trainer, run: &EpochRun) -> Result<Value> {
    let mut card = serde_json::json!({
        "base": {"id": run.base.id, "fingerprint": run.base.fingerprint()?},
        "labels": trainer.model.labels, "hyper": trainer.hyper, "epochs": run.epochs, "batch_size": run.batch_size,
    });
    if let (Some(c), Some(extra)) = (card.as_object_mut(), run.card.as_object()) {
        c.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok(card)
}

/// Writes card.json: the card's fields plus the metrics so far.
fn write_card(fields: &Value, out: &Path, metrics: &[EpochMetrics]) -> Result<()> {
    let mut card = fields.clone();
    card["metrics"] = serde_json::to_value(metrics).expect("json");
    let text = serde_json::to_string_pretty(&card).expect("json");
    crate::data::atomic::write_bytes_atomic(&out.join("card.json"), text.as_bytes())
}

/// The data and settings both recipes hand [`fit`]: encodings with class ids, the training and
/// held-out indices, and the run's shape.
pub struct Fit<'a> {
    /// The base checkpoint.
    pub base: &'a ModelFiles,
    /// The output folder.
    pub out: &'a Path,
    /// Every labelled text, tokenised.
    pub encodings: &'a [Encoding],
    /// Class id per text.
    pub ids: &'a [u32],
    /// Indices trained on, and held out.
    pub split: (&'a [usize], &'a [usize]),
    /// Passes, batch size and warm-up share.
    pub epochs: usize,
    /// Texts per optimiser step.
    pub batch_size: usize,
    /// Share of the steps warming up.
    pub warmup_share: f64,
    /// The recipe's card fields.
    pub card: Value,
    /// Show a progress bar.
    pub show: bool,
}

/// Schedules `hyper` for the data, trains `model` through [`run_epochs`] and returns the metrics.
pub fn fit(model: Classifier, hyper: &Hyper, f: Fit) -> Result<Vec<EpochMetrics>> {
    let pick = |ix: &[usize]| -> (Vec<Encoding>, Vec<u32>) {
        (ix.iter().map(|&i| f.encodings[i].clone()).collect(), ix.iter().map(|&i| f.ids[i]).collect())
    };
    let ((tr_e, tr_y), (ho_e, ho_y)) = (pick(f.split.0), pick(f.split.1));
    let hyper = hyper.scheduled(f.epochs, f.split.0.len(), f.batch_size, f.warmup_share);
    let mut trainer = Trainer::new(model, hyper)?;
    let run = EpochRun {
        base: f.base,
        out: f.out,
        epochs: f.epochs,
        batch_size: f.batch_size,
        train: (&tr_e, &tr_y),
        held_out: (&ho_e, &ho_y),
        card: f.card,
        show: f.show,
    };
    run_epochs(&mut trainer, &run)
}

/// Tokenises texts with the base checkpoint's tokenizer, at most `max_len` tokens each.
pub fn tokenize(model: &ModelFiles, texts: &[String], max_len: usize) -> Result<Vec<Encoding>> {
    let tokenizer = crate::encode::model::checkpoint_tokenizer(model, max_len)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    crate::encode::model::tokenize(&tokenizer, &refs)
}

pub mod adamw;
pub mod checkpoint;
pub mod labelled;
pub mod market;
/// What every fine-tune needs beside its labels: the base checkpoint, the output folder, the
/// passes and the optimiser (recipes (a) and (b) alike).
#[derive(Debug, Clone)]
pub struct Training {
    /// The base checkpoint.
    pub model: ModelFiles,
    /// The output folder (a Hugging Face checkpoint plus card.json).
    pub out: std::path::PathBuf,
    /// Passes over the training texts.
    pub epochs: usize,
    /// Texts per optimiser step.
    pub batch_size: usize,
    /// Share of all steps spent warming up.
    pub warmup_share: f64,
    /// Share of texts held out for per-epoch loss and accuracy.
    pub held_out: f64,
    /// Maximum tokens per text.
    pub max_len: usize,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Optimiser settings (`warmup_steps`/`total_steps` are derived from the data).
    pub hyper: Hyper,
}

impl Training {
    /// Checks the settings against each other and the checkpoint's depth, then claims the output
    /// folder (guarded against the base checkpoint, locked until the returned lock drops).
    pub fn start(&self) -> Result<crate::data::lock::Lock> {
        check_settings(self.epochs, self.batch_size, self.warmup_share, self.held_out, &self.hyper)?;
        check_depth(&self.model, &self.hyper)?;
        claim_out(&self.model, &self.out)
    }
}

pub use labelled::{FinetuneArgs, FinetuneSummary, finetune_labelled};
pub use market::{LabelBins, MarketArgs, MarketLabels, MarketSummary, finetune_market, market_labels};
