//! BERT's encoder stack for inference: the operations of candle-transformers' `BertEncoder`, with
//! query, key and value fused into one matmul and each linear layer either candle's `Linear`
//! (exact f32, or the checkpoint's dtype on a GPU) or a bf16 [`PackedLinear`] (CPU `--dtype bf16`).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};

use super::bf16::PackedLinear;

/// One linear layer, exact or bf16-packed.
enum Dense {
    Exact(Linear),
    Bf16(PackedLinear),
}

impl Dense {
    /// Loads the linear layers named by `prefixes` (same input width) as one, outputs concatenated.
    fn load(vb: &VarBuilder, prefixes: &[&str], inputs: usize, outputs: usize, bf16: bool) -> Result<Self> {
        let parts = prefixes
            .iter()
            .map(|p| Ok((vb.pp(*p).get((outputs, inputs), "weight")?, vb.pp(*p).get(outputs, "bias")?)))
            .collect::<Result<Vec<_>>>()?;
        let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = parts.into_iter().unzip();
        let (w, b) = (Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?);
        Ok(if bf16 {
            Dense::Bf16(PackedLinear::from_tensors(&w, Some(&b))?)
        } else {
            Dense::Exact(Linear::new(w, Some(b)))
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Dense::Exact(l) => l.forward(x),
            Dense::Bf16(p) => x.contiguous()?.apply_op1_no_bwd(p),
        }
    }
}

/// One transformer layer: self-attention, then the feed-forward block, each with residual + LayerNorm.
struct Layer {
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    /// The activation, or None when the bf16 intermediate layer applies GELU itself.
    act: Option<HiddenAct>,
    output: Dense,
    output_norm: LayerNorm,
    heads: usize,
    head_size: usize,
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config, bf16: bool) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let norm = |p: &str| candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp(p).pp("LayerNorm"));
        let att = vb.pp("attention");
        let fused = bf16 && cfg.hidden_act == HiddenAct::Gelu;
        Ok(Layer {
            qkv: Dense::load(&att.pp("self"), &["query", "key", "value"], h, h, bf16)?,
            attention_out: Dense::load(&att.pp("output"), &["dense"], h, h, bf16)?,
            attention_norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
            intermediate: match Dense::load(&vb.pp("intermediate"), &["dense"], h, i, bf16)? {
                Dense::Bf16(p) if fused => Dense::Bf16(p.with_gelu()),
                d => d,
            },
            act: (!fused).then_some(cfg.hidden_act),
            output: Dense::load(&vb.pp("output"), &["dense"], i, h, bf16)?,
            output_norm: norm("output")?,
            heads: cfg.num_attention_heads,
            head_size: h / cfg.num_attention_heads,
        })
    }

    /// Self-attention with residual and LayerNorm; with `cls_only`, for position 0 alone.
    fn attention(&self, x: &Tensor, mask: &Tensor, cls_only: bool) -> Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let (b, s, _) = qkv.dims3()?;
        let width = self.heads * self.head_size;
        let split = |i: usize| {
            qkv.narrow(2, i * width, width)?.reshape((b, s, self.heads, self.head_size))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let (q, x) = if cls_only { (q.narrow(2, 0, 1)?.contiguous()?, x.narrow(1, 0, 1)?) } else { (q, x.clone()) };
        let scores = (q.matmul(&k.t()?)? / (self.head_size as f64).sqrt())?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.flatten_from(D::Minus2)?;
        self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)
    }

    /// The layer's output, (batch, seq, hidden), or (batch, 1, hidden) for position 0 with `cls_only`.
    fn forward(&self, x: &Tensor, mask: &Tensor, cls_only: bool) -> Result<Tensor> {
        let attended = self.attention(x, mask, cls_only)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.act {
            None => inner,
            Some(HiddenAct::Gelu) => inner.gelu_erf()?,
            Some(HiddenAct::GeluApproximate) => inner.gelu()?,
            Some(HiddenAct::Relu) => inner.relu()?,
        };
        self.output_norm.forward(&(self.output.forward(&inner)? + attended)?)
    }
}

/// The encoder layers of a BERT checkpoint.
pub struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    /// Loads `encoder.layer.N` from `vb`; with `bf16`, every linear layer is packed to bf16.
    pub fn load(vb: VarBuilder, cfg: &Config, bf16: bool) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("layer.{i}")), cfg, bf16))
            .collect::<Result<_>>()?;
        Ok(Encoder { layers })
    }

    /// The last hidden state at [CLS], (batch, hidden), from embedded inputs and an additive mask
    /// (batch, 1, 1, seq). The last layer computes position 0 alone: no other position is read.
    pub fn forward_cls(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let last = self.layers.len().saturating_sub(1);
        let hidden =
            self.layers.iter().enumerate().try_fold(x.clone(), |h, (i, layer)| layer.forward(&h, mask, i == last))?;
        hidden.narrow(1, 0, 1)?.squeeze(1)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;

    /// The fused-QKV f32 layers against candle-transformers' `BertEncoder` on the tiny fixture,
    /// with padding in the mask: the f32 path is unchanged within 1e-6.
    #[test]
    fn f32_layers_equal_candle_transformers_bert() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/tiny-finbert");
        let (cfg, _) = crate::encode::model::read_config(&dir.join("config.json")).unwrap();
        // SAFETY: the committed fixture is mapped read-only.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu) }
                .unwrap()
                .pp("bert.encoder");
        let theirs = candle_transformers::models::bert::BertEncoder::load(vb.clone(), &cfg).unwrap();
        let ours = super::Encoder::load(vb, &cfg, false).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 9, cfg.hidden_size), &Device::Cpu).unwrap();
        let mask = Tensor::from_vec(
            (0..27).map(|i| if i % 9 < 9 - i / 9 * 3 { 1u32 } else { 0 }).collect::<Vec<_>>(),
            (3, 9),
            &Device::Cpu,
        )
        .unwrap();
        let mask = crate::encode::model::extended_mask(&mask, DType::F32).unwrap();
        let theirs = theirs.forward(&x, &mask).unwrap().narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        let diff = (ours.forward_cls(&x, &mask).unwrap() - theirs).unwrap();
        let worst = diff.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(worst <= 1e-6, "max |difference| {worst}");
        eprintln!("fused-QKV f32 layers vs candle-transformers BertEncoder: max |difference| {worst:.1e}");
    }
}
