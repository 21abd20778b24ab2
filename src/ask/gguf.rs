//! GGUF weights for `ask --gguf`: a Qwen2, Qwen3, Llama or Mistral checkpoint quantised by
//! llama.cpp's converter or quantiser (q8_0, q4_k_m, q4_0, …). [`weights`] dequantises every
//! tensor (candle's GGUF block decoders) to f32, cast to the compute dtype, under the Hugging Face names, so the file runs in the same
//! left-padded batched forward and prefix cache as safetensors ([`super::padded`]), with the
//! config.json beside it (rope scaling, sliding windows). candle-transformers' quantised models
//! ([`load`], matmuls on the quantised blocks, one unpadded prompt at a time) remain as a
//! cross-check. The tokenizer and chat template come from the checkpoint folder (`--model`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};

use crate::error::{Error, Result};

/// A quantised decoder read from a GGUF file.
pub enum GgufModel {
    /// `general.architecture` qwen2.
    Qwen2(quantized_qwen2::ModelWeights),
    /// `general.architecture` qwen3.
    Qwen3(quantized_qwen3::ModelWeights),
    /// `general.architecture` llama.
    Llama(quantized_llama::ModelWeights),
}

impl GgufModel {
    /// The logits after one prompt (1, len), from an empty key/value cache, leaving it empty.
    pub fn forward(&mut self, input: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            GgufModel::Qwen2(m) => fresh(m, quantized_qwen2::ModelWeights::clear_kv_cache, |m| m.forward(input, 0)),
            GgufModel::Qwen3(m) => fresh(m, quantized_qwen3::ModelWeights::clear_kv_cache, |m| m.forward(input, 0)),
            GgufModel::Llama(m) => fresh(m, quantized_llama::ModelWeights::clear_kv_cache, |m| m.forward(input, 0)),
        }
    }
}

/// `run` on a model with a key/value cache, emptied before and after.
pub(crate) fn fresh<M, T>(m: &mut M, clear: fn(&mut M), run: impl FnOnce(&mut M) -> T) -> T {
    clear(m);
    let out = run(m);
    clear(m);
    out
}

/// ggml's tensor type names by number (ggml.h's `enum ggml_type`), for types candle cannot read.
const GGML_TYPES: [(u32, &str); 21] = [
    (4, "Q4_2 (removed from ggml)"),
    (5, "Q4_3 (removed from ggml)"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (31, "Q4_0_4_4 (removed from ggml)"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (39, "MXFP4"),
    (40, "NVFP4"),
];

/// The GGUF header (metadata and tensor table) of `path`. A tensor type candle cannot dequantise
/// (the i-quants IQ*, TQ*, MXFP4, …) is refused naming the type; a file that is not GGUF says so.
fn read_content(path: &Path, f: &mut std::fs::File) -> Result<gguf_file::Content> {
    gguf_file::Content::read(f).map_err(|e| {
        let text = e.to_string();
        let after = text.split("unknown dtype for tensor ").nth(1).unwrap_or_default();
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let unknown = digits.parse::<u32>().ok();
        match unknown {
            Some(n) => {
                let name = GGML_TYPES.iter().find(|(k, _)| *k == n).map_or("an unknown type", |(_, name)| name);
                Error::input(
                    path,
                    format!(
                        "a tensor is ggml type {n} ({name}), which ask cannot dequantise: it reads F32, F16, BF16, \
                         Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the k-quants Q2_K to Q6_K (Q4_K_M, Q5_K_M, Q6_K files); \
                         download one of those quantisations of the checkpoint"
                    ),
                )
            }
            None => Error::input(path, format!("not a GGUF file ({e}): name a .gguf written by llama.cpp")),
        }
    })
}

/// Loads a GGUF file whose architecture is `kind` (config.json's model_type), with the most
/// positions it runs (`<arch>.context_length`; at most candle's 4096 for llama); another
/// architecture, or a file that is not GGUF, is an error naming it.
pub fn load(path: &Path, kind: &str, device: &Device) -> Result<(GgufModel, Option<usize>)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = read_content(path, &mut f)?;
    let arch = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok().cloned());
    let arch = arch.unwrap_or_default();
    if arch != kind {
        return Err(Error::input(
            path,
            format!(
                "GGUF architecture {arch:?} but config.json's model_type is {kind:?}: pass the --model folder of the same checkpoint"
            ),
        ));
    }
    let fail = |e: candle_core::Error| Error::input(path, format!("cannot load the GGUF model: {e}"));
    let stated = content.metadata.get(&format!("{kind}.context_length")).and_then(|v| v.to_u32().ok());
    let context = match kind {
        "llama" => {
            Some(stated.map_or(quantized_llama::MAX_SEQ_LEN, |n| (n as usize).min(quantized_llama::MAX_SEQ_LEN)))
        }
        _ => stated.map(|n| n as usize),
    };
    let model = match kind {
        "qwen2" => GgufModel::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, &mut f, device).map_err(fail)?),
        "qwen3" => GgufModel::Qwen3(quantized_qwen3::ModelWeights::from_gguf(content, &mut f, device).map_err(fail)?),
        "llama" => GgufModel::Llama(quantized_llama::ModelWeights::from_gguf(content, &mut f, device).map_err(fail)?),
        other => {
            return Err(Error::input(
                path,
                format!("GGUF architecture {other:?}: ask reads qwen2, qwen3 and llama GGUF files"),
            ));
        }
    };
    Ok((model, context))
}

/// The quantisation types of a GGUF file's tensors, for messages (e.g. "q8_0, f32").
pub fn dtypes(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = read_content(path, &mut f)?;
    let mut names: Vec<String> =
        content.tensor_infos.values().map(|t| format!("{:?}", t.ggml_dtype).to_lowercase()).collect();
    names.sort();
    names.dedup();
    Ok(names.join(", "))
}

/// The architecture a GGUF file states for a config.json `model_type` (llama.cpp's converter
/// writes Mistral as llama).
fn gguf_arch(kind: &str) -> &str {
    if kind == "mistral" { "llama" } else { kind }
}

/// A GGUF tensor name as the Hugging Face name it was converted from (convert_hf_to_gguf.py's
/// table read backwards); names it does not know are kept (and never asked for).
fn hf_name(gguf: &str) -> String {
    let (stem, suffix) = gguf.rsplit_once('.').unwrap_or((gguf, ""));
    let top = match stem {
        "token_embd" => Some("model.embed_tokens"),
        "output_norm" => Some("model.norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(t) = top {
        return format!("{t}.{suffix}");
    }
    let Some((layer, part)) = stem.strip_prefix("blk.").and_then(|r| r.split_once('.')) else {
        return gguf.to_string();
    };
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return gguf.to_string(),
    };
    format!("model.layers.{layer}.{hf}.{suffix}")
}

/// Undoes convert_hf_to_gguf.py's `LlamaModel.permute` of query and key rows (llama.cpp rotates
/// interleaved pairs, transformers the two halves): (heads, head_dim / 2, 2, …) back to
/// (heads, 2, head_dim / 2, …).
fn unpermute(t: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let dims = t.dims().to_vec();
    let rest: usize = dims[1..].iter().product();
    let half = dims[0] / heads / 2;
    t.reshape((heads, half, 2, rest))?.transpose(1, 2)?.contiguous()?.reshape(dims)
}

/// A size the GGUF metadata (`key`) and config.json (`cfg_key`) both give; the file is refused
/// when they differ (it was converted from another checkpoint) or neither has it.
fn check_count(
    path: &Path,
    content: &gguf_file::Content,
    key: &str,
    cfg: &serde_json::Value,
    cfg_key: &str,
) -> Result<usize> {
    let stated = content.metadata.get(key).and_then(|v| v.to_u32().ok()).map(|n| n as usize);
    let want = cfg.get(cfg_key).and_then(serde_json::Value::as_u64).map(|n| n as usize);
    match (stated, want) {
        (Some(a), Some(b)) if a != b => Err(Error::input(
            path,
            format!(
                "GGUF {key} is {a} but config.json's {cfg_key} is {b}: pass the --model folder of the checkpoint \
                 this file was converted from"
            ),
        )),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => {
            Err(Error::input(path, format!("neither the GGUF's {key} nor config.json's {cfg_key} is given")))
        }
    }
}

/// A GGUF file's weights dequantised to f32 and cast to `dtype` (f32, bf16 or f16) under the
/// Hugging Face names, as a VarBuilder for the padded forward, and the file's context length.
/// Tensor by tensor: each is read, dequantised, cast and its quantised bytes dropped before the
/// next, so the peak is the cast weights plus one tensor. The file must be of config.json's
/// architecture (`kind`) and sizes (`cfg`), else an error names the key.
pub fn weights(
    path: &Path,
    kind: &str,
    cfg: &serde_json::Value,
    device: &Device,
    dtype: DType,
) -> Result<(VarBuilder<'static>, Option<usize>)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = read_content(path, &mut f)?;
    let arch =
        content.metadata.get("general.architecture").and_then(|v| v.to_string().ok().cloned()).unwrap_or_default();
    let want = gguf_arch(kind);
    if arch != want {
        return Err(Error::input(
            path,
            format!(
                "GGUF architecture {arch:?} but config.json's model_type is {kind:?}: pass the --model folder of the same checkpoint"
            ),
        ));
    }
    for (key, cfg_key) in [
        ("block_count", "num_hidden_layers"),
        ("embedding_length", "hidden_size"),
        ("feed_forward_length", "intermediate_size"),
    ] {
        check_count(path, &content, &format!("{arch}.{key}"), cfg, cfg_key)?;
    }
    let heads = check_count(path, &content, &format!("{arch}.attention.head_count"), cfg, "num_attention_heads")?;
    let kv_key = if cfg.get("num_key_value_heads").is_some() { "num_key_value_heads" } else { "num_attention_heads" };
    let kv_heads = check_count(path, &content, &format!("{arch}.attention.head_count_kv"), cfg, kv_key)?;
    let context =
        content.metadata.get(&format!("{arch}.context_length")).and_then(|v| v.to_u32().ok()).map(|n| n as usize);
    let fail = |name: &str, e: candle_core::Error| Error::input(path, format!("cannot read GGUF tensor {name}: {e}"));
    let mut tensors = HashMap::new();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    for name in names {
        let q = content.tensor(&mut f, &name, device).map_err(|e| fail(&name, e))?;
        let mut t = q.dequantize(device).and_then(|t| t.to_dtype(dtype)).map_err(|e| fail(&name, e))?;
        drop(q);
        let hf = hf_name(&name);
        if arch == "llama" && hf.contains("self_attn.q_proj.") {
            t = unpermute(&t, heads).map_err(|e| fail(&name, e))?;
        } else if arch == "llama" && hf.contains("self_attn.k_proj.") {
            t = unpermute(&t, kv_heads).map_err(|e| fail(&name, e))?;
        }
        tensors.insert(hf, t);
    }
    Ok((VarBuilder::from_tensors(tensors, dtype, device), context))
}
