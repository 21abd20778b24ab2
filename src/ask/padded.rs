//! A left-padded batch forward for Qwen2- and Llama-shaped decoders (default rotary embedding):
//! the same weights as candle-transformers' models, plus what they lack for batching — a causal
//! mask that also hides padding, and each row's positions counted from its first real token
//! (as transformers' `generate` sets `position_ids`), so a padded row gives its unpadded logits.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder};
use serde_json::Value;

type CResult<T> = candle_core::Result<T>;

/// The sizes the batch forward needs, read from config.json (Qwen2, Qwen3 or Llama keys).
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
    /// Width of one attention head (Qwen3 may set it apart from hidden / heads).
    head_dim: usize,
    /// Qwen3's RMSNorm of each head's queries and keys before the rotation.
    qk_norm: bool,
}

impl Shape {
    /// The shape of a qwen2, qwen3 or llama config; `None` when it needs what this forward lacks
    /// (rope scaling, a Llama or Qwen2 head_dim other than hidden / heads, sliding windows in use).
    pub fn of(cfg: &Value, kind: &str) -> Option<Shape> {
        let n = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let rope = cfg.get("rope_parameters");
        let scaled = cfg.get("rope_scaling").is_some_and(|v| !v.is_null())
            || rope.and_then(|r| r.get("rope_type")).and_then(Value::as_str).is_some_and(|t| t != "default");
        let (hidden, heads) = (n("hidden_size")?, n("num_attention_heads")?);
        let sliding = cfg.get("use_sliding_window").and_then(Value::as_bool).unwrap_or(false);
        let qwen3 = kind == "qwen3";
        if scaled || sliding || (!qwen3 && n("head_dim").is_some_and(|d| d * heads != hidden)) {
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
            max_positions: super::model::context_of(cfg),
            qkv_bias: kind == "qwen2" || cfg.get("attention_bias").and_then(Value::as_bool).unwrap_or(false),
            tied: cfg.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
            head_dim: n("head_dim").unwrap_or(hidden / heads),
            qk_norm: qwen3,
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
    /// Qwen3's per-head query and key norms.
    qk_norm: Option<(RmsNorm, RmsNorm)>,
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
    let d = s.head_dim;
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
        qk_norm: if s.qk_norm {
            Some((candle_nn::rms_norm(d, s.eps, a.pp("q_norm"))?, candle_nn::rms_norm(d, s.eps, a.pp("k_norm"))?))
        } else {
            None
        },
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
        let d = shape.head_dim;
        let inv: Vec<f32> = (0..d).step_by(2).map(|i| 1f32 / shape.theta.powf(i as f64 / d as f64) as f32).collect();
        let device = vb.device().clone();
        let inv = Tensor::from_vec(inv, (1, d / 2), &device)?;
        let t = Tensor::arange(0u32, shape.max_positions as u32, &device)?.to_dtype(DType::F32)?;
        let freqs = t.reshape((shape.max_positions, 1))?.matmul(&inv)?;
        Ok(Padded { cos: freqs.cos()?, sin: freqs.sin()?, shape, embed, layers, norm, lm_head, device })
    }

    /// The last position's logits of each row (rows of any lengths, left-padded here), (rows, vocab).
    pub fn last_logits(&self, rows: &[&[u32]]) -> CResult<Tensor> {
        self.last_logits_after(None, rows)
    }

    /// The keys and values of a prompt prefix shared by many rows, computed once.
    pub fn prefix(&self, ids: &[u32]) -> CResult<PrefixCache> {
        let p = ids.len();
        let (cos, sin) = self.rotary(&(0..p as u32).collect::<Vec<_>>(), 1, p)?;
        let mask: Vec<f32> = (0..p * p).map(|x| if x % p <= x / p { 0.0 } else { -1e30 }).collect();
        let mask = Tensor::from_vec(mask, (1, 1, p, p), &self.device)?;
        let mut x = self.embed.forward(&Tensor::from_vec(ids.to_vec(), (1, p), &self.device)?)?;
        let mut kv = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let (next, k, v) = self.block(l, &x, &cos, &sin, &mask, None)?;
            kv.push((k, v));
            x = next;
        }
        Ok(PrefixCache { ids: ids.to_vec(), kv })
    }

    /// [`Padded::last_logits`] of rows that each continue `prefix` (its keys and values reused,
    /// expanded over the batch): `rows` are the continuations, left-padded after the prefix, at
    /// positions counted on from it. `None`: the rows alone.
    pub fn last_logits_after(&self, prefix: Option<&PrefixCache>, rows: &[&[u32]]) -> CResult<Tensor> {
        let p = prefix.map_or(0, |c| c.ids.len());
        let (b, len) = (rows.len(), rows.iter().map(|r| r.len()).max().unwrap_or(0));
        let (mut ids, mut pos, mut real) = (vec![0u32; b * len], vec![0u32; b * len], vec![false; b * len]);
        for (i, r) in rows.iter().enumerate() {
            let pad = len - r.len();
            for (j, &t) in r.iter().enumerate() {
                (ids[i * len + pad + j], pos[i * len + pad + j], real[i * len + pad + j]) = (t, (p + j) as u32, true);
            }
        }
        let dev = &self.device;
        let (cos, sin) = self.rotary(&pos, b, len)?;
        let keys = p + len;
        let mask: Vec<f32> = (0..b * len * keys)
            .map(|x| {
                let (row, q, k) = (x / (len * keys), (x / keys) % len, x % keys);
                if k < p || (k - p <= q && real[row * len + k - p]) { 0.0 } else { -1e30 }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (b, 1, len, keys), dev)?;
        let mut x = self.embed.forward(&Tensor::from_vec(ids, (b, len), dev)?)?;
        for (i, l) in self.layers.iter().enumerate() {
            x = self.block(l, &x, &cos, &sin, &mask, prefix.map(|c| &c.kv[i]))?.0;
        }
        self.norm.forward(&x)?.i((.., len - 1, ..))?.contiguous()?.apply(&self.lm_head)
    }

    /// The rotary tables at the given positions, (b, len, head_dim / 2) each.
    fn rotary(&self, pos: &[u32], b: usize, len: usize) -> CResult<(Tensor, Tensor)> {
        let half = self.cos.dim(1)?;
        let pos = Tensor::from_vec(pos.to_vec(), b * len, &self.device)?;
        let cos = self.cos.index_select(&pos, 0)?.reshape((b, len, half))?;
        let sin = self.sin.index_select(&pos, 0)?.reshape((b, len, half))?;
        Ok((cos, sin))
    }

    /// One decoder layer: attention (grouped keys and values, rotary, masked; after `past`'s keys
    /// and values when given) then the SwiGLU MLP. Returns the output and this layer's keys
    /// (rotated) and values, before grouping.
    fn block(
        &self,
        l: &Layer,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        past: Option<&(Tensor, Tensor)>,
    ) -> CResult<(Tensor, Tensor, Tensor)> {
        let s = &self.shape;
        let (b, len, _) = x.dims3()?;
        let d = s.head_dim;
        let h = l.ln1.forward(x)?;
        let split = |t: Tensor, n: usize| t.reshape((b, len, n, d))?.transpose(1, 2)?.contiguous();
        let (q, k) = (split(l.q.forward(&h)?, s.heads)?, split(l.k.forward(&h)?, s.kv_heads)?);
        let (q, k) = match &l.qk_norm {
            Some((qn, kn)) => (qn.forward(&q)?, kn.forward(&k)?),
            None => (q, k),
        };
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let v = split(l.v.forward(&h)?, s.kv_heads)?;
        let (k_all, v_all) = match past {
            None => (k.clone(), v.clone()),
            Some((pk, pv)) => {
                let grow = |t: &Tensor| -> CResult<Tensor> {
                    let (_, n, p, d) = t.dims4()?;
                    t.broadcast_as((b, n, p, d))?.contiguous()
                };
                (Tensor::cat(&[grow(pk)?, k.clone()], 2)?, Tensor::cat(&[grow(pv)?, v.clone()], 2)?)
            }
        };
        let rep = s.heads / s.kv_heads;
        let ka = candle_transformers::utils::repeat_kv(k_all, rep)?.contiguous()?;
        let va = candle_transformers::utils::repeat_kv(v_all, rep)?.contiguous()?;
        let att = (q.matmul(&ka.transpose(2, 3)?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?.matmul(&va)?;
        let x = (x + att.transpose(1, 2)?.reshape((b, len, s.heads * d))?.apply(&l.o)?)?;
        let h = l.ln2.forward(&x)?;
        let mlp = (candle_nn::ops::silu(&l.gate.forward(&h)?)? * l.up.forward(&h)?)?.apply(&l.down)?;
        Ok(((x + mlp)?, k, v))
    }
}

/// The keys (rotated) and values of a shared prompt prefix, per layer (1, kv_heads, P, head_dim):
/// computed once per question ([`Padded::prefix`]) and reused for every headline.
pub struct PrefixCache {
    ids: Vec<u32>,
    kv: Vec<(Tensor, Tensor)>,
}

impl PrefixCache {
    /// The prefix's token ids.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// Rows' last-position logits as plain vectors (for the answer softmax).
pub fn rows_of(logits: &Tensor) -> CResult<Vec<Vec<f32>>> {
    logits.to_dtype(DType::F32)?.to_vec2::<f32>()
}
