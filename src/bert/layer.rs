//! BERT's encoder layers: self-attention, then the feed-forward block, each with residual and
//! LayerNorm — the operations of candle-transformers' `BertEncoder`, with dropout where
//! transformers applies it. Constant weights fuse query, key and value into one matmul;
//! variables keep three (a concatenation would be a copy their gradients never reach).

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

use super::Compute;
use super::ops::{Dense, Dropout, Norm, gelu_erf, softmax};

/// Query, key and value projections: one fused layer, or three.
enum Qkv {
    Fused(Dense),
    Split([Dense; 3]),
}

impl Qkv {
    fn load(vb: &VarBuilder, h: usize, compute: Compute) -> Result<Self> {
        let names = ["query", "key", "value"];
        Ok(if compute.fused() {
            Qkv::Fused(Dense::load(vb, &names, h, h, compute)?)
        } else {
            let [q, k, v] = names.map(|n| Dense::load(vb, &[n], h, h, compute));
            Qkv::Split([q?, k?, v?])
        })
    }

    /// Query, key and value, each (batch, seq, hidden).
    fn forward(&self, x: &Tensor) -> Result<[Tensor; 3]> {
        match self {
            Qkv::Fused(d) => {
                let qkv = d.forward(x)?;
                let width = qkv.dim(D::Minus1)? / 3;
                Ok([qkv.narrow(2, 0, width)?, qkv.narrow(2, width, width)?, qkv.narrow(2, 2 * width, width)?])
            }
            Qkv::Split(ds) => Ok([ds[0].forward(x)?, ds[1].forward(x)?, ds[2].forward(x)?]),
        }
    }
}

/// One transformer layer.
struct Layer {
    qkv: Qkv,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    /// The activation, or None when the bf16 intermediate layer applies GELU itself.
    act: Option<HiddenAct>,
    output: Dense,
    output_norm: Norm,
    heads: usize,
    compute: Compute,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config, compute: Compute) -> Result<Self> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let att = vb.pp("attention");
        let (intermediate, act) = match Dense::load(&vb.pp("intermediate"), &["dense"], h, i, compute)? {
            Dense::Bf16(p) if cfg.hidden_act == HiddenAct::Gelu => (Dense::Bf16(p.with_gelu()), None),
            Dense::OneDnn(d) if cfg.hidden_act == HiddenAct::Gelu => (Dense::OneDnn(Box::new(d.with_gelu())), None),
            d => (d, Some(cfg.hidden_act)),
        };
        Ok(Layer {
            qkv: Qkv::load(&att.pp("self"), h, compute)?,
            attention_out: Dense::load(&att.pp("output"), &["dense"], h, h, compute)?,
            attention_norm: Norm::load(att.pp("output").pp("LayerNorm"), h, eps, compute)?,
            intermediate,
            act,
            output: Dense::load(&vb.pp("output"), &["dense"], i, h, compute)?,
            output_norm: Norm::load(vb.pp("output").pp("LayerNorm"), h, eps, compute)?,
            heads: cfg.num_attention_heads,
            compute,
        })
    }

    /// Self-attention with residual and LayerNorm; with `cls_only`, for position 0 alone.
    fn attention(&self, x: &Tensor, mask: &Tensor, cls_only: bool, dropout: &Dropout) -> Result<Tensor> {
        let (b, _, h) = x.dims3()?;
        let d = h / self.heads;
        let split = |t: &Tensor| t.reshape((b, t.dim(1)?, self.heads, d))?.transpose(1, 2)?.contiguous();
        let [q, k, v] = self.qkv.forward(x)?;
        let (q, x) = if cls_only { (q.narrow(1, 0, 1)?, x.narrow(1, 0, 1)?) } else { (q, x.clone()) };
        let (q, k, v) = (split(&q)?, split(&k)?, split(&v)?);
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(mask)?;
        let probs = dropout.apply(&softmax(&scores, self.compute)?, dropout.rates.attention)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.flatten_from(D::Minus2)?;
        let out = dropout.apply(&self.attention_out.forward(&context)?, dropout.rates.hidden)?;
        self.attention_norm.forward(&(out + x)?)
    }

    /// The layer's output, (batch, seq, hidden), or (batch, 1, hidden) for position 0 with `cls_only`.
    fn forward(&self, x: &Tensor, mask: &Tensor, cls_only: bool, dropout: &Dropout) -> Result<Tensor> {
        let attended = self.attention(x, mask, cls_only, dropout)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.act {
            None => inner,
            Some(HiddenAct::Gelu) => gelu_erf(&inner, self.compute)?,
            Some(HiddenAct::GeluApproximate) => inner.gelu()?,
            Some(HiddenAct::Relu) => inner.relu()?,
        };
        let out = dropout.apply(&self.output.forward(&inner)?, dropout.rates.hidden)?;
        self.output_norm.forward(&(out + attended)?)
    }
}

/// The encoder layers of a BERT checkpoint.
pub(super) struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    /// Loads `layer.N` from `vb` (the checkpoint's `encoder`).
    pub(super) fn load(vb: VarBuilder, cfg: &Config, compute: Compute) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layer.{i}")), cfg, compute))
            .collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }

    /// The last hidden state at [CLS], (batch, hidden), from embedded inputs and an additive mask
    /// (batch, 1, 1, seq). The last layer computes position 0 alone: no other position is read
    /// (nor reaches the logits, so a loss and its gradients are unchanged).
    pub(super) fn forward_cls(&self, x: &Tensor, mask: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        let last = self.layers.len().saturating_sub(1);
        let hidden = self
            .layers
            .iter()
            .enumerate()
            .try_fold(x.clone(), |h, (i, layer)| layer.forward(&h, mask, i == last, dropout))?;
        hidden.narrow(1, 0, 1)?.squeeze(1)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;

    use super::super::Compute;
    use super::super::ops::{Dropout, DropoutRates};

    /// Our layers, in both ways of computing, against candle-transformers' `BertEncoder` on the
    /// tiny fixture, with padding in the mask: each within 1e-6.
    #[test]
    fn f32_layers_equal_candle_transformers_bert() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/tiny-finbert");
        let (cfg, _) = crate::bert::read_config(&dir.join("config.json")).unwrap();
        // SAFETY: the committed fixture is mapped read-only.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu) }
                .unwrap()
                .pp("bert.encoder");
        let theirs = candle_transformers::models::bert::BertEncoder::load(vb.clone(), &cfg).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 9, cfg.hidden_size), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(
            (0..27).map(|i| if i % 9 < 9 - i / 9 * 3 { 1u32 } else { 0 }).collect::<Vec<_>>(),
            (3, 9),
            &Device::Cpu,
        )
        .unwrap();
        let mask = crate::bert::extended_mask(&mask, DType::F32).unwrap();
        let theirs = theirs.forward(&x, &mask).unwrap().narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        let off = Dropout::new(DropoutRates { hidden: 0.1, attention: 0.1, classifier: 0.1 }, 0);
        for compute in [Compute::Fused { packed_bf16: false }, Compute::Differentiable] {
            let ours = super::Encoder::load(vb.clone(), &cfg, compute).unwrap();
            let diff = (ours.forward_cls(&x, &mask, &off).unwrap() - &theirs).unwrap();
            let worst = diff.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            // Both sum in another order than candle-transformers (Fused: oneDNN's matmul where it
            // is installed; Differentiable: plain ops): unseeded random inputs differ by up to
            // ~2e-6 after the layers (1.4e-6 seen), so 1e-6 flaked; a real bug is far larger.
            assert!(worst <= 1e-5, "{compute:?}: max |difference| {worst}");
            eprintln!("{compute:?} f32 layers vs candle-transformers BertEncoder: max |difference| {worst:.1e}");
        }
    }
}
