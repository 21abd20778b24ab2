//! A left-padded batch forward for Qwen2- and Llama-shaped decoders (default rotary embedding):
//! the same weights as candle-transformers' models, plus what they lack for batching — a causal
//! mask that also hides padding, and each row's positions counted from its first real token
//! (as transformers' `generate` sets `position_ids`), so a padded row gives its unpadded logits.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder};
use serde_json::Value;

type CResult<T> = candle_core::Result<T>;

/// The sizes the batch forward needs, read from config.json (Qwen2 or Llama keys).
#[derive(Debug, Clone)]
pub struct Shape {
    vocab: usize,
    hidden: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    eps: f64,
    theta: f64,
    max_positions: usize,
    qkv_bias: bool,
    tied: bool,
}

impl Shape {
    /// The shape of a qwen2 or llama config; `None` when it needs what this forward lacks
    /// (rope scaling, a head_dim other than hidden / heads, sliding windows in use).
    pub fn of(cfg: &Value, kind: &str) -> Option<Shape> {
        let n = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let rope = cfg.get("rope_parameters");
        let scaled = cfg.get("rope_scaling").is_some_and(|v| !v.is_null())
            || rope.and_then(|r| r.get("rope_type")).and_then(Value::as_str).is_some_and(|t| t != "default");
        let (hidden, heads) = (n("hidden_size")?, n("num_attention_heads")?);
        let sliding = cfg.get("use_sliding_window").and_then(Value::as_bool).unwrap_or(false);
        if scaled || sliding || n("head_dim").is_some_and(|d| d * heads != hidden) {
            return None;
        }
        let theta = cfg.get("rope_theta").or_else(|| rope?.get("rope_theta")).and_then(Value::as_f64);
        Some(Shape {
            vocab: n("vocab_size")?,
            hidden,
            intermediate: n("intermediate_size")?,
            layers: n("num_hidden_layers")?,
            heads,
            kv_heads: n("num_key_value_heads").unwrap_or(heads),
            eps: cfg.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6),
            theta: theta.unwrap_or(10_000.0),
            max_positions: n("max_position_embeddings").unwrap_or(4096),
            qkv_bias: kind == "qwen2" || cfg.get("attention_bias").and_then(Value::as_bool).unwrap_or(false),
            tied: cfg.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    gate: Linear,
    up: Linear,
    down: Linear,
    ln1: RmsNorm,
    ln2: RmsNorm,
}

/// A decoder whose forward takes left-padded batches.
pub struct Padded {
    shape: Shape,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

fn layer(s: &Shape, vb: VarBuilder) -> CResult<Layer> {
    let d = s.hidden / s.heads;
    let (a, m) = (vb.pp("self_attn"), vb.pp("mlp"));
    Ok(Layer {
        q: candle_nn::linear_b(s.hidden, s.heads * d, s.qkv_bias, a.pp("q_proj"))?,
        k: candle_nn::linear_b(s.hidden, s.kv_heads * d, s.qkv_bias, a.pp("k_proj"))?,
        v: candle_nn::linear_b(s.hidden, s.kv_heads * d, s.qkv_bias, a.pp("v_proj"))?,
        o: candle_nn::linear_no_bias(s.heads * d, s.hidden, a.pp("o_proj"))?,
        gate: candle_nn::linear_no_bias(s.hidden, s.intermediate, m.pp("gate_proj"))?,
        up: candle_nn::linear_no_bias(s.hidden, s.intermediate, m.pp("up_proj"))?,
        down: candle_nn::linear_no_bias(s.intermediate, s.hidden, m.pp("down_proj"))?,
        ln1: candle_nn::rms_norm(s.hidden, s.eps, vb.pp("input_layernorm"))?,
        ln2: candle_nn::rms_norm(s.hidden, s.eps, vb.pp("post_attention_layernorm"))?,
    })
}

impl Padded {
    /// Loads the weights (f32) under the Hugging Face names both architectures share.
    pub fn load(shape: Shape, vb: VarBuilder) -> CResult<Padded> {
        let m = vb.pp("model");
        let embed = candle_nn::embedding(shape.vocab, shape.hidden, m.pp("embed_tokens"))?;
        let layers = (0..shape.layers).map(|i| layer(&shape, m.pp("layers").pp(i))).collect::<CResult<_>>()?;
        let norm = candle_nn::rms_norm(shape.hidden, shape.eps, m.pp("norm"))?;
        let lm_head = if shape.tied || !vb.contains_tensor("lm_head.weight") {
            Linear::new(embed.embeddings().clone(), None)
        } else {
            candle_nn::linear_no_bias(shape.hidden, shape.vocab, vb.pp("lm_head"))?
        };
        let d = shape.hidden / shape.heads;
        let inv: Vec<f32> = (0..d).step_by(2).map(|i| 1f32 / shape.theta.powf(i as f64 / d as f64) as f32).collect();
        let device = vb.device().clone();
        let inv = Tensor::from_vec(inv, (1, d / 2), &device)?;
        let t = Tensor::arange(0u32, shape.max_positions as u32, &device)?.to_dtype(DType::F32)?;
        let freqs = t.reshape((shape.max_positions, 1))?.matmul(&inv)?;
        Ok(Padded { cos: freqs.cos()?, sin: freqs.sin()?, shape, embed, layers, norm, lm_head, device })
    }

    /// The last position's logits of each row (rows of any lengths, left-padded here), (rows, vocab).
    pub fn last_logits(&self, rows: &[&[u32]]) -> CResult<Tensor> {
        let (b, len) = (rows.len(), rows.iter().map(|r| r.len()).max().unwrap_or(0));
        let (mut ids, mut pos, mut real) = (vec![0u32; b * len], vec![0u32; b * len], vec![false; b * len]);
        for (i, r) in rows.iter().enumerate() {
            let pad = len - r.len();
            for (j, &t) in r.iter().enumerate() {
                (ids[i * len + pad + j], pos[i * len + pad + j], real[i * len + pad + j]) = (t, j as u32, true);
            }
        }
        let dev = &self.device;
        let half = self.cos.dim(1)?;
        let pos = Tensor::from_vec(pos, b * len, dev)?;
        let cos = self.cos.index_select(&pos, 0)?.reshape((b, len, half))?;
        let sin = self.sin.index_select(&pos, 0)?.reshape((b, len, half))?;
        let mask: Vec<f32> = (0..b * len * len)
            .map(|x| {
                let (row, q, k) = (x / (len * len), (x / len) % len, x % len);
                if k <= q && real[row * len + k] { 0.0 } else { -1e30 }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, len, len), dev)?;
        let mut x = self.embed.forward(&Tensor::from_vec(ids, (b, len), dev)?)?;
        for l in &self.layers {
            x = self.block(l, &x, &cos, &sin, &mask)?;
        }
        self.norm.forward(&x)?.i((.., len - 1, ..))?.contiguous()?.apply(&self.lm_head)
    }

    /// One decoder layer: attention (grouped keys and values, rotary, masked) then the SwiGLU MLP.
    fn block(&self, l: &Layer, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor) -> CResult<Tensor> {
        let s = &self.shape;
        let (b, len, _) = x.dims3()?;
        let d = s.hidden / s.heads;
        let h = l.ln1.forward(x)?;
        let split = |t: Tensor, n: usize| t.reshape((b, len, n, d))?.transpose(1, 2)?.contiguous();
        let q = candle_nn::rotary_emb::rope(&split(l.q.forward(&h)?, s.heads)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&split(l.k.forward(&h)?, s.kv_heads)?, cos, sin)?;
        let v = split(l.v.forward(&h)?, s.kv_heads)?;
        let rep = s.heads / s.kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
        let att = (q.matmul(&k.transpose(2, 3)?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?.matmul(&v)?;
        let x = (x + att.transpose(1, 2)?.reshape((b, len, s.hidden))?.apply(&l.o)?)?;
        let h = l.ln2.forward(&x)?;
        let mlp = (candle_nn::ops::silu(&l.gate.forward(&h)?)? * l.up.forward(&h)?)?.apply(&l.down)?;
        x + mlp
    }
}

/// Rows' last-position logits as plain vectors (for the answer softmax).
pub fn rows_of(logits: &Tensor) -> CResult<Vec<Vec<f32>>> {
    logits.to_dtype(DType::F32)?.to_vec2::<f32>()
}
