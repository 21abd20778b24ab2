//! The one BERT model, candle style (`Bert::load(vb, cfg, options)` + `forward`): embeddings,
//! encoder layers, pooler and classification head, used by `encode` (inference) and `finetune`
//! (training).
//!
//! What legitimately differs between the two is a parameter, not a copy:
//! - where the weights come from is the [`VarBuilder`]: constants mapped from a checkpoint, or
//!   the variables of a `VarMap` that an optimiser updates;
//! - how it computes is [`Compute`]: candle-nn's fused LayerNorm and softmax kernels with query,
//!   key and value fused (optionally every encoder linear layer packed to bf16, [`bf16`]), or
//!   differentiable plain ops (the fused kernels have no backward in candle-nn 0.11);
//! - dropout is off until [`Bert::set_training`] switches it on; its masks come from a seeded
//!   generator whose position can be saved and restored.

pub mod bf16;
mod config;
mod layer;
pub mod onednn;
mod ops;
pub mod train_linear;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use candle_transformers::models::bert::Config;
use tokenizers::Encoding;

pub use config::{labels_of, read_config};
pub use ops::DropoutRates;
use ops::{Dense, Dropout, Norm};

/// How the model computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    /// Inference on constant weights: fused QKV, candle-nn's fused LayerNorm and softmax; with
    /// `packed_bf16`, the encoder's linear layers in bf16 on a CPU with AVX512-BF16.
    Fused {
        /// Pack the encoder's linear layers to bf16 (f32 in, f32 out).
        packed_bf16: bool,
    },
    /// Training on variables: query, key and value apart, LayerNorm and softmax from
    /// differentiable ops.
    Differentiable,
}

impl Compute {
    fn fused(self) -> bool {
        matches!(self, Compute::Fused { .. })
    }

    /// The same, with exact (unpacked) linear layers: the head is never packed.
    fn exact(self) -> Self {
        match self {
            Compute::Fused { .. } => Compute::Fused { packed_bf16: false },
            c => c,
        }
    }
}

/// What to load and how it computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The encoder's weights sit under `bert.` (a `BertFor…` checkpoint), not at the root.
    pub prefixed: bool,
    /// Classes of the head (pooler + `classifier`); `None` loads the encoder alone.
    pub classes: Option<usize>,
    /// Fused kernels (inference) or differentiable ops (training).
    pub compute: Compute,
    /// Dropout rates used in training mode.
    pub dropout: DropoutRates,
    /// Seeds the dropout masks.
    pub seed: u64,
}

/// BERT's input embeddings: word + token type + absolute position, then LayerNorm — the
/// operations, in order, of candle-transformers' (private) `BertEmbeddings`.
struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: Norm,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &Config, compute: Compute) -> Result<Self> {
        let h = cfg.hidden_size;
        let table =
            |n: usize, name: &str| Ok::<_, candle_core::Error>(Embedding::new(vb.pp(name).get((n, h), "weight")?, h));
        Ok(Embeddings {
            word: table(cfg.vocab_size, "word_embeddings")?,
            position: table(cfg.max_position_embeddings, "position_embeddings")?,
            token_type: table(cfg.type_vocab_size, "token_type_embeddings")?,
            norm: Norm::load(vb.pp("LayerNorm"), h, cfg.layer_norm_eps, compute)?,
        })
    }

    fn forward(&self, ids: &Tensor, types: &Tensor) -> Result<Tensor> {
        let positions = Tensor::arange(0u32, ids.dim(1)? as u32, ids.device())?;
        let embedded = (self.word.forward(ids)? + self.token_type.forward(types)?)?;
        self.norm.forward(&embedded.broadcast_add(&self.position.forward(&positions)?)?)
    }
}

/// The sequence-classification head: pooler (dense + tanh on [CLS]), dropout, classifier.
struct Head {
    pooler: Dense,
    classifier: Dense,
}

/// A BERT encoder, with a classification head when the options ask for one.
pub struct Bert {
    embeddings: Embeddings,
    encoder: layer::Encoder,
    head: Option<Head>,
    dropout: Dropout,
}

impl Bert {
    /// Loads the weights `vb` names (transformers' names) for `cfg`, as `options` say.
    pub fn load(vb: VarBuilder, cfg: &Config, options: &Options) -> Result<Self> {
        let base = if options.prefixed { vb.pp("bert") } else { vb.clone() };
        let (h, compute) = (cfg.hidden_size, options.compute);
        let head = options
            .classes
            .map(|n| -> Result<Head> {
                Ok(Head {
                    pooler: Dense::load(&base.pp("pooler"), &["dense"], h, h, compute.exact())?,
                    classifier: Dense::load(&vb, &["classifier"], h, n, compute.exact())?,
                })
            })
            .transpose()?;
        Ok(Bert {
            embeddings: Embeddings::load(base.pp("embeddings"), cfg, compute)?,
            encoder: layer::Encoder::load(base.pp("encoder"), cfg, compute)?,
            head,
            dropout: Dropout::new(options.dropout, options.seed ^ 0x5eed_d40f),
        })
    }

    /// The last hidden state at [CLS], (batch, hidden), of padded token ids (batch, seq) and their
    /// 0/1 attention mask; token types are all 0.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let embedded = self.embeddings.forward(ids, &ids.zeros_like()?)?;
        let x = self.dropout.apply(&embedded, self.dropout.rates.hidden)?;
        let mask = extended_mask(mask, x.dtype())?;
        self.encoder.forward_cls(&x, &mask, &self.dropout)?.contiguous()
    }

    /// True when the model has a classification head.
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// The head's logits, (batch, classes), from [`Self::forward`]'s [CLS] states.
    pub fn logits(&self, cls: &Tensor) -> Result<Tensor> {
        let Some(head) = &self.head else { candle_core::bail!("this model has no classification head") };
        let pooled = head.pooler.forward(cls)?.tanh()?;
        head.classifier.forward(&self.dropout.apply(&pooled, self.dropout.rates.classifier)?)
    }

    /// Switches dropout on (training) or off (inference, evaluation, parity checks).
    pub fn set_training(&self, on: bool) {
        self.dropout.on.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// How far the dropout generator has run (a checkpoint saves it).
    pub fn dropout_position(&self) -> u128 {
        self.dropout.rng.lock().expect("dropout generator").get_word_pos()
    }

    /// Moves the dropout generator to a saved position.
    pub fn set_dropout_position(&self, pos: u128) {
        self.dropout.rng.lock().expect("dropout generator").set_word_pos(pos);
    }
}

/// The additive attention mask (batch, 1, 1, seq): 0 where attended, the dtype's most negative
/// finite value at padding. candle-transformers scales by `f32::MIN`, which is -inf in bf16 and
/// turns every score into NaN (0 × -inf); this stays finite in every dtype.
pub fn extended_mask(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let lowest = match dtype {
        DType::BF16 => -3.389_531_4e38_f64, // bfloat16's lowest finite value
        DType::F16 => -65_504.0,
        _ => f32::MIN as f64,
    };
    let mask = mask.unsqueeze(1)?.unsqueeze(1)?.to_dtype(dtype)?;
    (mask.ones_like()? - &mask)?.affine(lowest, 0.0)
}

/// A tokenised batch padded to its longest member with `pad_id`: ids and attention mask, (n, width).
pub fn pad_batch(batch: &[&Encoding], pad_id: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let width = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
    let n = batch.len();
    let (mut ids, mut mask) = (vec![pad_id; n * width], vec![0u32; n * width]);
    for (row, e) in batch.iter().enumerate() {
        for (j, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
            ids[row * width + j] = id;
            mask[row * width + j] = m;
        }
    }
    Ok((Tensor::from_vec(ids, (n, width), device)?, Tensor::from_vec(mask, (n, width), device)?))
}

/// The kernel the encoder's linear layers run on this machine, in f32 or bf16, as
/// [`ops::Dense`] chooses it (oneDNN's implementation for a BERT-base-shaped layer, named).
pub fn linear_path(bf16: bool) -> String {
    if bf16 && !bf16::supported() {
        return format!("f32 (no AVX512-BF16 on this CPU), {}", linear_path(false));
    }
    match onednn::library().map(|dnnl| onednn::chosen(dnnl, 768, 3072, bf16)) {
        Some(Some(name)) => format!("oneDNN {name}"),
        Some(None) if bf16 => "signalkit's AVX512-BF16 kernel (as fast as oneDNN's without AMX)".into(),
        Some(None) => "candle's matmul (gemm crate): oneDNN has only reference code here".into(),
        None if bf16 => "signalkit's AVX512-BF16 kernel".into(),
        None => "candle's matmul (gemm crate)".into(),
    }
}
