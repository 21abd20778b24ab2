//! The model's building blocks whose arithmetic depends on [`Compute`]: linear layers (exact or
//! bf16-packed), LayerNorm and softmax (candle-nn's fused kernels, or plain differentiable ops),
//! and seeded dropout.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Compute;
use super::bf16::PackedLinear;
use super::onednn::DnnlLinear;
use super::train_linear::TrainLinear;

/// One linear layer, `y = x Wᵀ + b`: candle's matmul (differentiable), oneDNN's matmul for
/// training (f32, differentiable), oneDNN's matmul (f32 or bf16, inference only) or the
/// AVX512-BF16 kernel (bf16 where oneDNN is not loaded).
pub(super) enum Dense {
    Exact(Linear),
    Train(TrainLinear, Tensor, Tensor),
    OneDnn(Box<DnnlLinear>),
    Bf16(PackedLinear),
}

impl Dense {
    /// Loads the linear layers named by `prefixes` (same input width) as one, outputs
    /// concatenated; packed to bf16 when `compute` asks for it.
    pub(super) fn load(
        vb: &VarBuilder,
        prefixes: &[&str],
        inputs: usize,
        outputs: usize,
        compute: Compute,
    ) -> Result<Self> {
        let parts = prefixes
            .iter()
            .map(|p| Ok((vb.pp(*p).get((outputs, inputs), "weight")?, vb.pp(*p).get(outputs, "bias")?)))
            .collect::<Result<Vec<_>>>()?;
        let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = parts.into_iter().unzip();
        // One part is kept as the tensor itself (candle's `cat` of one), so a variable stays one.
        let (w, b) = (Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?);
        let Compute::Fused { packed_bf16 } = compute else {
            return Ok(match TrainLinear::new(inputs, w.dim(0)?) {
                Some(op) => Dense::Train(op, w, b),
                None => Dense::Exact(Linear::new(w, Some(b))),
            });
        };
        Ok(match DnnlLinear::new(&w, &b, packed_bf16)? {
            Some(layer) => Dense::OneDnn(Box::new(layer)),
            None if packed_bf16 => Dense::Bf16(PackedLinear::from_tensors(&w, Some(&b))?),
            None => Dense::Exact(Linear::new(w, Some(b))),
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Dense::Exact(l) => l.forward(x),
            Dense::Train(op, w, b) => op.forward(x, w, b),
            Dense::OneDnn(d) => x.contiguous()?.apply_op1_no_bwd(d.as_ref()),
            Dense::Bf16(p) => x.contiguous()?.apply_op1_no_bwd(p),
        }
    }
}

/// LayerNorm over the last dimension: candle-nn's fused kernel, or (training) the same formula
/// from differentiable ops, since the fused one has no backward in candle-nn 0.11.
pub(super) struct Norm {
    fused: Option<candle_nn::LayerNorm>,
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    pub(super) fn load(vb: VarBuilder, size: usize, eps: f64, compute: Compute) -> Result<Self> {
        let (weight, bias) = (vb.get(size, "weight")?, vb.get(size, "bias")?);
        let fused = compute.fused().then(|| candle_nn::LayerNorm::new(weight.clone(), bias.clone(), eps));
        Ok(Norm { fused, weight, bias, eps })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(fused) = &self.fused {
            return fused.forward(x);
        }
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// Softmax over the last dimension: candle-nn's fused kernel (no backward), or its
/// differentiable composition.
pub(super) fn softmax(x: &Tensor, compute: Compute) -> Result<Tensor> {
    if compute.fused() { candle_nn::ops::softmax_last_dim(x) } else { candle_nn::ops::softmax(x, D::Minus1) }
}

/// Dropout probabilities, as transformers' config names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutRates {
    /// `hidden_dropout_prob`: after the embeddings and each sub-layer's output projection.
    pub hidden: f64,
    /// `attention_probs_dropout_prob`: on the attention probabilities.
    pub attention: f64,
    /// `classifier_dropout` (else `hidden_dropout_prob`): before the classifier.
    pub classifier: f64,
}

impl DropoutRates {
    /// The rates of a config.json (transformers' defaults, 0.1, where it omits them).
    pub fn of(config: &serde_json::Value) -> Self {
        let prob = |k: &str, d: f64| config.get(k).and_then(serde_json::Value::as_f64).unwrap_or(d);
        let hidden = prob("hidden_dropout_prob", 0.1);
        DropoutRates {
            hidden,
            attention: prob("attention_probs_dropout_prob", 0.1),
            classifier: prob("classifier_dropout", hidden),
        }
    }
}

/// Dropout at [`DropoutRates`], its masks drawn from one seeded generator; off until switched on.
pub(super) struct Dropout {
    pub(super) rates: DropoutRates,
    pub(super) rng: Mutex<ChaCha8Rng>,
    pub(super) on: AtomicBool,
}

impl Dropout {
    pub(super) fn new(rates: DropoutRates, seed: u64) -> Self {
        Dropout { rates, rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)), on: AtomicBool::new(false) }
    }

    /// Zeroes each value with probability `p` and scales the rest by 1/(1-p), when on.
    pub(super) fn apply(&self, x: &Tensor, p: f64) -> Result<Tensor> {
        if !self.on.load(Ordering::Relaxed) || p <= 0.0 {
            return Ok(x.clone());
        }
        let mut rng = self.rng.lock().expect("dropout generator");
        let keep = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f64>() < p { 0.0 } else { keep }).collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}
