//! A left-padded batch forward for Qwen2-, Qwen3-, Llama- and Mistral-shaped decoders: the same
//! weights as candle-transformers' models, plus what they lack for batching — a causal mask that
//! also hides padding (and keys beyond a layer's sliding window), each row's positions counted
//! from its first real token (as transformers' `generate` sets `position_ids`), so a padded row
//! gives its unpadded logits, and transformers' rope scaling ([`super::rope`]). It runs in the
//! weights' dtype as loaded (f32, or bf16 with `--dtype bf16`).

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde_json::Value;

use super::rope::Rope;
use crate::bert::onednn::{self, DnnlLinear};

type CResult<T> = candle_core::Result<T>;

/// The sizes the batch forward needs, read from config.json (Qwen2, Qwen3, Llama or Mistral keys).
#[derive(Debug, Clone)]
pub struct Shape {
    vocab: usize,
    hidden: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    eps: f64,
    rope: Rope,
    max_positions: usize,
    qkv_bias: bool,
    tied: bool,
    /// Width of one attention head (`head_dim`, else hidden / heads).
    head_dim: usize,
    /// Qwen3's RMSNorm of each head's queries and keys before the rotation.
    qk_norm: bool,
    /// Each layer's sliding window (keys at most this many positions back), `None`: full attention.
    windows: Vec<Option<usize>>,
}

impl Shape {
    /// The shape of a qwen2, qwen3, llama or mistral config; an error (naming the key) when it
    /// needs what this forward lacks.
    pub fn of(cfg: &Value, kind: &str) -> std::result::Result<Shape, String> {
        let n = |k: &str| cfg.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let need = |k: &str| n(k).ok_or_else(|| format!("{k} is missing or not a whole number"));
        let (hidden, heads, layers) = (need("hidden_size")?, need("num_attention_heads")?, need("num_hidden_layers")?);
        let head_dim = n("head_dim").unwrap_or(hidden / heads.max(1));
        let act = cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("silu");
        if act != "silu" {
            return Err(format!("hidden_act '{act}' is not supported by ask (it runs silu)"));
        }
        Ok(Shape {
            vocab: need("vocab_size")?,
            hidden,
            intermediate: need("intermediate_size")?,
            layers,
            heads,
            kv_heads: n("num_key_value_heads").unwrap_or(heads),
            eps: cfg.get("rms_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6),
            rope: super::rope::rope(cfg, head_dim)?,
            max_positions: super::model::context_of(cfg),
            qkv_bias: kind == "qwen2" || cfg.get("attention_bias").and_then(Value::as_bool).unwrap_or(false),
            tied: cfg.get("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(false),
            head_dim,
            qk_norm: kind == "qwen3",
            windows: windows(cfg, kind, layers)?,
        })
    }
}

impl Shape {
    /// Whether any layer's sliding window is in use.
    pub fn windowed(&self) -> bool {
        self.windows.iter().any(Option::is_some)
    }
}

/// Each layer's sliding window as transformers applies it: Mistral's `sliding_window` on every
/// layer; Qwen2's and Qwen3's only with `use_sliding_window`, on the layers `layer_types` marks
/// `sliding_attention` (else those from `max_window_layers` on); Llama's never.
fn windows(cfg: &Value, kind: &str, layers: usize) -> std::result::Result<Vec<Option<usize>>, String> {
    let window = cfg.get("sliding_window").and_then(Value::as_u64).map(|w| w as usize);
    let used = match kind {
        "mistral" => true,
        "qwen2" | "qwen3" => cfg.get("use_sliding_window").and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    };
    let Some(window) = window.filter(|_| used) else { return Ok(vec![None; layers]) };
    if kind == "mistral" {
        return Ok(vec![Some(window); layers]);
    }
    let from = cfg.get("max_window_layers").and_then(Value::as_u64).map_or(layers, |m| m as usize);
    match cfg.get("layer_types").and_then(Value::as_array) {
        Some(types) if types.len() != layers => {
            Err(format!("layer_types has {} entries for {layers} layers", types.len()))
        }
        Some(types) => Ok(types.iter().map(|t| (t.as_str() == Some("sliding_attention")).then_some(window)).collect()),
        None => Ok((0..layers).map(|i| (i >= from).then_some(window)).collect()),
    }
}

/// RMSNorm as transformers computes it: in f32, then rounded before the weight multiplies
/// ([`super::fused::rms_norm`]).
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        super::fused::rms_norm(x, &self.weight, self.eps)
    }
}

fn rms_norm(size: usize, eps: f64, vb: VarBuilder) -> CResult<RmsNorm> {
    Ok(RmsNorm { weight: vb.get(size, "weight")?, eps })
}

/// A projection, `y = x Wᵀ (+ b)` in the weights' dtype: oneDNN's matmul where it is loaded
/// (f32, or bf16 in and out), else candle's.
enum Proj {
    Candle(Linear),
    OneDnn(Box<DnnlLinear>),
}

impl Proj {
    fn load(inputs: usize, outputs: usize, bias: bool, vb: VarBuilder) -> CResult<Proj> {
        let lin = candle_nn::linear_b(inputs, outputs, bias, vb)?;
        Ok(match DnnlLinear::for_decoder(lin.weight(), lin.bias())? {
            Some(d) => Proj::OneDnn(Box::new(d)),
            None => Proj::Candle(lin),
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        match self {
            Proj::Candle(l) => biased(l, x),
            Proj::OneDnn(d) => x.contiguous()?.apply_op1_no_bwd(d.as_ref()),
        }
    }
}

/// The kernel the decoder's projections run on here in f32 or bf16, as [`Proj::load`] chooses
/// it (oneDNN's implementation for a Qwen2-0.5B-shaped MLP layer, named).
pub fn linear_path(bf16: bool) -> String {
    match onednn::library().map(|dnnl| (onednn::decoder_kernel(dnnl, 896, 4864, bf16), dnnl)) {
        Some((Some(name), _)) => format!("oneDNN {name}"),
        Some((None, dnnl)) => match onednn::jit_kernel(dnnl, 896, 4864, bf16) {
            Some(name) => format!("candle's matmul (gemm crate): faster than oneDNN's emulated {name}"),
            None => "candle's matmul (gemm crate): oneDNN has only reference code here".into(),
        },
        None => "candle's matmul (gemm crate)".into(),
    }
}

struct Layer {
    q: Proj,
    k: Proj,
    v: Proj,
    o: Proj,
    gate: Proj,
    up: Proj,
    down: Proj,
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
        q: Proj::load(s.hidden, s.heads * d, s.qkv_bias, a.pp("q_proj"))?,
        k: Proj::load(s.hidden, s.kv_heads * d, s.qkv_bias, a.pp("k_proj"))?,
        v: Proj::load(s.hidden, s.kv_heads * d, s.qkv_bias, a.pp("v_proj"))?,
        o: Proj::load(s.heads * d, s.hidden, false, a.pp("o_proj"))?,
        gate: Proj::load(s.hidden, s.intermediate, false, m.pp("gate_proj"))?,
        up: Proj::load(s.hidden, s.intermediate, false, m.pp("up_proj"))?,
        down: Proj::load(s.intermediate, s.hidden, false, m.pp("down_proj"))?,
        ln1: rms_norm(s.hidden, s.eps, vb.pp("input_layernorm"))?,
        ln2: rms_norm(s.hidden, s.eps, vb.pp("post_attention_layernorm"))?,
        qk_norm: if s.qk_norm {
            Some((rms_norm(d, s.eps, a.pp("q_norm"))?, rms_norm(d, s.eps, a.pp("k_norm"))?))
        } else {
            None
        },
    })
}

impl Padded {
    /// Loads the weights, in the VarBuilder's dtype, under the Hugging Face names the
    /// architectures share.
    pub fn load(shape: Shape, vb: VarBuilder) -> CResult<Padded> {
        let m = vb.pp("model");
        let embed = candle_nn::embedding(shape.vocab, shape.hidden, m.pp("embed_tokens"))?;
        let layers = (0..shape.layers).map(|i| layer(&shape, m.pp("layers").pp(i))).collect::<CResult<_>>()?;
        let norm = rms_norm(shape.hidden, shape.eps, m.pp("norm"))?;
        let lm_head = if shape.tied || !vb.contains_tensor("lm_head.weight") {
            Linear::new(embed.embeddings().clone(), None)
        } else {
            candle_nn::linear_no_bias(shape.hidden, shape.vocab, vb.pp("lm_head"))?
        };
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        let half = shape.rope.inv_freq.len();
        let inv = Tensor::from_vec(shape.rope.inv_freq.clone(), (1, half), &device)?;
        let t = Tensor::arange(0u32, shape.max_positions as u32, &device)?.to_dtype(DType::F32)?;
        let freqs = t.reshape((shape.max_positions, 1))?.matmul(&inv)?;
        // As transformers: cos and sin in f32, scaled by the attention factor, then cast.
        let table = |t: Tensor| (t * shape.rope.attention_factor)?.to_dtype(dtype);
        Ok(Padded { cos: table(freqs.cos()?)?, sin: table(freqs.sin()?)?, shape, embed, layers, norm, lm_head, device })
    }

    /// The last position's logits of each row (rows of any lengths, left-padded here), (rows, vocab).
    pub fn last_logits(&self, rows: &[&[u32]]) -> CResult<Tensor> {
        self.last_logits_after(None, rows, None)
    }

    /// Tokens in the vocabulary (rows of the output weight).
    pub fn vocab(&self) -> usize {
        self.shape.vocab
    }

    /// Each layer's additive mask, (b, 1, len, keys): a key is seen when `seen(row, query, key,
    /// window)` (one mask built per distinct window).
    fn masks(
        &self,
        (b, len, keys): (usize, usize, usize),
        seen: impl Fn(usize, usize, usize, Option<usize>) -> bool,
    ) -> CResult<Vec<Tensor>> {
        let mut distinct = self.shape.windows.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let built = distinct
            .iter()
            .map(|w| {
                let mask: Vec<f32> = (0..b * len * keys)
                    .map(|x| if seen(x / (len * keys), (x / keys) % len, x % keys, *w) { 0.0 } else { -1e30 })
                    .collect();
                Tensor::from_vec(mask, (b, 1, len, keys), &self.device)?.to_dtype(self.cos.dtype())
            })
            .collect::<CResult<Vec<_>>>()?;
        Ok(self.shape.windows.iter().map(|w| built[distinct.binary_search(w).unwrap_or(0)].clone()).collect())
    }

    /// The keys and values of a prompt prefix shared by many rows, computed once.
    pub fn prefix(&self, ids: &[u32]) -> CResult<PrefixCache> {
        let p = ids.len();
        let (cos, sin) = self.rotary(&(0..p as u32).collect::<Vec<_>>(), 1, p)?;
        let masks = self.masks((1, p, p), |_, q, k, w| k <= q && w.is_none_or(|w| q - k < w))?;
        let mut x = self.embed.forward(&Tensor::from_vec(ids.to_vec(), (1, p), &self.device)?)?;
        let mut kv = Vec::with_capacity(self.layers.len());
        for (l, mask) in self.layers.iter().zip(&masks) {
            let (next, k, v) = self.block(l, &x, &cos, &sin, mask, None)?;
            kv.push((k, v));
            x = next;
        }
        Ok(PrefixCache { ids: ids.to_vec(), kv })
    }

    /// [`Padded::last_logits`] of rows that each continue `prefix` (its keys and values reused,
    /// expanded over the batch): `rows` are the continuations, left-padded after the prefix, at
    /// positions counted on from it (`None`: the rows alone). With `tokens`, only those tokens'
    /// logits, (rows, tokens), in their order: the product with just their rows of the output
    /// weight, which for a 151,936-token vocabulary is a tenth of a 0.5B model's last step.
    pub fn last_logits_after(
        &self,
        prefix: Option<&PrefixCache>,
        rows: &[&[u32]],
        tokens: Option<&[u32]>,
    ) -> CResult<Tensor> {
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
        // A key is the prefix's (position k) or a real token of the row at or before the query.
        let masks = self.masks((b, len, p + len), |row, q, k, w| {
            let at = |i: usize| pos[row * len + i] as usize;
            let key_pos = if k < p { Some(k) } else { (k - p <= q && real[row * len + k - p]).then(|| at(k - p)) };
            key_pos.is_some_and(|kp| w.is_none_or(|w| at(q).saturating_sub(kp) < w))
        })?;
        let mut x = self.embed.forward(&Tensor::from_vec(ids, (b, len), dev)?)?;
        for (i, (l, mask)) in self.layers.iter().zip(&masks).enumerate() {
            x = self.block(l, &x, &cos, &sin, mask, prefix.map(|c| &c.kv[i]))?.0;
        }
        let last = self.norm.forward(&x)?.i((.., len - 1, ..))?.contiguous()?;
        match tokens {
            None => last.apply(&self.lm_head),
            // The output weight has no bias (tied to the embeddings, or lm_head without one).
            Some(t) => last.matmul(&self.lm_head.weight().index_select(&Tensor::new(t, dev)?, 0)?.t()?),
        }
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
        let (q, k) = (l.q.forward(&h)?, l.k.forward(&h)?);
        // Qwen3's norms act on each head's d values (b, len, heads, d), before the rotation.
        let per_head = |norm: &RmsNorm, t: Tensor, n: usize| norm.forward(&t.reshape((b, len, n, d))?)?.flatten_from(2);
        let (q, k) = match &l.qk_norm {
            Some((qn, kn)) => (per_head(qn, q, s.heads)?, per_head(kn, k, s.kv_heads)?),
            None => (q, k),
        };
        // Split into heads, (b, heads, len, d), and rotated, in one pass.
        let q = super::fused::rope_heads(&q, cos, sin, s.heads)?;
        let k = super::fused::rope_heads(&k, cos, sin, s.kv_heads)?;
        let v = l.v.forward(&h)?.reshape((b, len, s.kv_heads, d))?.transpose(1, 2)?.contiguous()?;
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
        // Grouped-query attention without repeating keys and values: the query heads sharing a
        // key head are stacked as rows of one product, (b, kv, rep·len, d) · (b, kv, d, keys).
        let (rep, keys) = (s.heads / s.kv_heads, k_all.dim(2)?);
        let grouped = q.reshape((b, s.kv_heads, rep * len, d))?;
        let scores = grouped.matmul(&k_all.transpose(2, 3)?)?.reshape((b, s.heads, len, keys))?;
        let probs = super::fused::masked_softmax(&scores, mask, 1.0 / (d as f64).sqrt())?;
        let att = probs.reshape((b, s.kv_heads, rep * len, keys))?.matmul(&v_all)?.reshape((b, s.heads, len, d))?;
        let x = (x + l.o.forward(&att.transpose(1, 2)?.reshape((b, len, s.heads * d))?)?)?;
        let h = l.ln2.forward(&x)?;
        let mlp = l.down.forward(&super::fused::silu_mul(&l.gate.forward(&h)?, &l.up.forward(&h)?)?)?;
        Ok(((x + mlp)?, k, v))
    }
}

/// A projection with its bias added before the one rounding to the activations' dtype, as torch's
/// fused addmm (candle's Linear rounds the product, then the sum: in bf16 that moves answers).
fn biased(lin: &Linear, x: &Tensor) -> CResult<Tensor> {
    let Some(b) = lin.bias().filter(|_| x.dtype() != DType::F32) else { return lin.forward(x) };
    let w = lin.weight().to_dtype(DType::F32)?;
    let y = x.to_dtype(DType::F32)?.broadcast_matmul(&w.t()?)?.broadcast_add(&b.to_dtype(DType::F32)?)?;
    y.to_dtype(x.dtype())
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
