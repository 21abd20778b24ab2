//! GGUF weights for `ask --gguf`: a Qwen2, Qwen3 or Llama checkpoint quantised by llama.cpp's
//! converter (q8_0, q4_k_m, …), run by candle-transformers' quantised models, one unpadded prompt
//! at a time (they take no padding mask). The tokenizer and chat template still come from the
//! checkpoint folder (`--model`).

use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
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

/// Loads a GGUF file whose architecture is `kind` (config.json's model_type), with the most
/// positions it runs (`<arch>.context_length`; at most candle's 4096 for llama); another
/// architecture, or a file that is not GGUF, is an error naming it.
pub fn load(path: &Path, kind: &str, device: &Device) -> Result<(GgufModel, Option<usize>)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = gguf_file::Content::read(&mut f)
        .map_err(|e| Error::input(path, format!("not a GGUF file ({e}): name a .gguf written by llama.cpp")))?;
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
    let content = gguf_file::Content::read(&mut f).map_err(|e| Error::input(path, format!("not a GGUF file: {e}")))?;
    let mut names: Vec<String> =
        content.tensor_infos.values().map(|t| format!("{:?}", t.ggml_dtype).to_lowercase()).collect();
    names.sort();
    names.dedup();
    Ok(names.join(", "))
}
