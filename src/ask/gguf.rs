//! GGUF weights for `ask --gguf`: a Qwen2 checkpoint quantised by llama.cpp's converter (q8_0,
//! q4_k_m, …), run by candle-transformers' `quantized_qwen2`, one unpadded prompt at a time
//! (that model takes no padding mask). The tokenizer and chat template still come from the
//! checkpoint folder (`--model`).

use std::path::Path;

use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_transformers::models::quantized_qwen2::ModelWeights;

use crate::error::{Error, Result};

/// Loads a Qwen2 GGUF file; another architecture, or a file that is not GGUF, is an error
/// naming it.
pub fn load(path: &Path, device: &Device) -> Result<ModelWeights> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = gguf_file::Content::read(&mut f)
        .map_err(|e| Error::input(path, format!("not a GGUF file ({e}): name a .gguf written by llama.cpp")))?;
    let arch = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok().cloned());
    if arch.as_deref() != Some("qwen2") {
        return Err(Error::input(
            path,
            format!(
                "GGUF architecture {:?}: ask reads qwen2 GGUF files only (Llama GGUF is not supported yet: use its safetensors)",
                arch.unwrap_or_default()
            ),
        ));
    }
    ModelWeights::from_gguf(content, &mut f, device)
        .map_err(|e| Error::input(path, format!("cannot load the GGUF model: {e}")))
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
