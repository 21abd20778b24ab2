//! A BERT checkpoint's config.json: candle's `Config` with BERT's defaults filled in, and the
//! head's class names.

use std::path::Path;

use candle_transformers::models::bert::Config;
use serde_json::Value;

use crate::error::{Error, Result};

/// Reads config.json into candle's BERT config, filling BERT's defaults for keys it omits.
pub fn read_config(path: &Path) -> Result<(Config, Value)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut v: Value = serde_json::from_str(&text).map_err(|e| Error::input(path, format!("invalid JSON: {e}")))?;
    let obj = v.as_object_mut().ok_or_else(|| Error::input(path, "config.json is not a JSON object"))?;
    if let Some(t) = obj.get("model_type").and_then(Value::as_str)
        && t != "bert"
    {
        return Err(Error::input(
            path,
            format!(
                "model_type '{t}' is not supported: signalkit runs BERT-architecture checkpoints (model_type bert)"
            ),
        ));
    }
    let defaults = serde_json::json!({
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
        "pad_token_id": 0, "type_vocab_size": 2, "max_position_embeddings": 512, "position_embedding_type": "absolute"
    });
    for (k, d) in defaults.as_object().expect("object") {
        if obj.get(k).is_none_or(Value::is_null) {
            obj.insert(k.clone(), d.clone());
        }
    }
    if let Some(act) = obj.get("hidden_act").and_then(Value::as_str) {
        let mapped = match act {
            "gelu" => "gelu",
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => "geluapproximate",
            "relu" => "relu",
            other => {
                return Err(Error::input(
                    path,
                    format!("hidden_act '{other}' is not supported (gelu, gelu_new, relu)"),
                ));
            }
        };
        obj.insert("hidden_act".into(), Value::String(mapped.into()));
    }
    let cfg: Config =
        serde_json::from_value(v.clone()).map_err(|e| Error::input(path, format!("not a BERT config: {e}")))?;
    Ok((cfg, v))
}

/// Labels ordered by id from `id2label` (keys are strings of integers).
pub fn labels_of(config: &Value, n: usize) -> Vec<String> {
    let map = config.get("id2label").and_then(Value::as_object);
    (0..n)
        .map(|i| {
            map.and_then(|m| m.get(&i.to_string())).and_then(Value::as_str).map_or(format!("label_{i}"), str::to_string)
        })
        .collect()
}
