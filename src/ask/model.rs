//! Decoder checkpoints for `signalkit ask`: a Qwen2- or Llama-architecture causal LM in candle
//! (`candle_transformers::models::{qwen2, qwen3, llama}`), its tokenizer and chat template, and the
//! answer words' probabilities at the answer position.
//!
//! Batches are left-padded and run by [`super::padded`] (a causal mask that hides padding and
//! keys beyond a sliding window, positions counted per row, rope scaling), safetensors and GGUF
//! weights alike (GGUF dequantised to f32 by [`super::gguf::weights`]). candle-transformers'
//! models, which run each prompt alone and unpadded, remain as a cross-check
//! ([`Decoder::load_with`] with `padded` false) on configs they run as transformers does.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::{Cache, Llama, LlamaConfig};
use candle_transformers::models::qwen2::{Config, ModelForCausalLM};
use candle_transformers::models::qwen3::ModelForCausalLM as Qwen3ForCausalLM;
use serde_json::Value;
use tokenizers::Tokenizer;

use super::gguf::fresh;
use super::padded::{Padded, PrefixCache, Shape};
use crate::encode::model::ModelFiles;
use crate::error::{Error, Result};

/// How a question becomes the model's input text.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// The checkpoint's Jinja chat template, with its BOS and EOS tokens.
    Jinja {
        /// Template source.
        source: String,
        /// `bos_token` of tokenizer_config.json ("" when none).
        bos: String,
        /// `eos_token` of tokenizer_config.json ("" when none).
        eos: String,
    },
    /// No template in the checkpoint: `User: …\nAssistant:` (answers then start with a space).
    Plain,
}

/// The network of a loaded decoder.
enum Network {
    Qwen2(Box<ModelForCausalLM>),
    Qwen3(Box<Qwen3ForCausalLM>),
    /// Llama with its rotary tables and masks (no key/value cache).
    Llama(Box<Llama>, Box<Cache>),
    /// Either architecture, batched with left padding.
    Padded(Box<Padded>),
    /// A quantised Qwen2, Qwen3 or Llama from a GGUF file run by candle-transformers' quantised
    /// models (the unpadded cross-check; no key/value cache between prompts).
    Gguf(Box<super::gguf::GgufModel>),
}

/// Refuses, naming the key, what candle-transformers' unpadded models would run differently from
/// transformers: they are a cross-check of the padded forward on plain f32 configs only.
fn unpadded_only(path: &Path, cfg: &Value, kind: &str, dtype: DType) -> Result<()> {
    let rope = super::rope::rope_type(cfg);
    let windowed = Shape::of(cfg, kind).is_ok_and(|s| s.windowed());
    let why = match () {
        _ if kind == "mistral" => "model_type mistral".to_string(),
        _ if rope != "default" => format!("rope_type '{rope}'"),
        _ if windowed => "a sliding window in use".to_string(),
        _ if dtype != DType::F32 => format!("dtype {dtype:?}"),
        _ => return Ok(()),
    };
    Err(Error::input(path, format!("{why}: runs only in the padded forward (Decoder::load), not unpadded")))
}

/// Refuses, naming the key, a config whose rope scaling or sliding window candle-transformers'
/// quantised models (GGUF, unpadded) would not apply; the padded forward applies both.
fn gguf_runs(path: &Path, cfg: &Value, kind: &str, dtype: DType) -> Result<()> {
    let rope = super::rope::rope_type(cfg);
    let windowed = Shape::of(cfg, kind).is_ok_and(|s| s.windowed());
    if rope == "default" && !windowed && dtype == DType::F32 {
        return Ok(());
    }
    let what = if windowed {
        "a sliding window in use".to_string()
    } else if rope != "default" {
        format!("rope_type '{rope}'")
    } else {
        format!("dtype {dtype:?}")
    };
    Err(Error::input(
        path,
        format!("{what}: candle's quantised GGUF models do not apply it; run the GGUF padded (Decoder::load)"),
    ))
}

/// A loaded decoder.
pub struct Decoder {
    model: Network,
    tokenizer: Tokenizer,
    device: Device,
    /// How prompts are rendered.
    pub template: Template,
    /// Hub id or local path, as the user named it.
    pub id: String,
    /// Fingerprint of config, tokenizer and weights (xxh3, hex).
    pub fingerprint: String,
    /// The shared prompt prefix's keys and values, reused by every prompt that continues it.
    prefix: Option<PrefixCache>,
    /// The most tokens a prompt may have (see [`Decoder::context`]).
    context: usize,
    /// What the forward computes in (f32 unless loaded with another dtype; a GGUF file's weights
    /// are dequantised, then cast to it).
    pub dtype: DType,
}

/// The positions a config allows when it names none (candle's Llama default; the padded forward's).
pub const DEFAULT_CONTEXT: usize = 4096;

/// The most tokens a prompt may have under a config.json: `max_position_embeddings`, else
/// [`DEFAULT_CONTEXT`].
pub fn context_of(cfg: &Value) -> usize {
    cfg.get("max_position_embeddings").and_then(Value::as_u64).map_or(DEFAULT_CONTEXT, |n| n as usize)
}

/// The checkpoint's tokenizer.json with its own padding and truncation turned off: a padded
/// prompt would be read at a pad position, a truncated one would lose its end (the question),
/// and transformers applies neither to a chat prompt.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| Error::input(path, format!("cannot read the tokenizer: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).map_err(|e| Error::input(path, format!("cannot turn truncation off: {e}")))?;
    Ok(tokenizer)
}

fn config_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::input(path, format!("not a Qwen2 config: {e}"))
}

/// config.json as JSON and its `model_type`, refused unless qwen2, qwen3 or llama.
fn read_json(path: &Path) -> Result<(Value, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::input(path, format!("invalid JSON: {e}")))?;
    let kind = v.get("model_type").and_then(Value::as_str).unwrap_or("").to_string();
    if !["qwen2", "qwen3", "llama", "mistral"].contains(&kind.as_str()) {
        return Err(Error::input(
            path,
            format!(
                "model_type '{kind}' is not supported by ask: it runs Qwen2 (and Qwen2.5), Qwen3, Llama and Mistral \
                 architectures (model_type qwen2, qwen3, llama, mistral)"
            ),
        ));
    }
    Ok((v, kind))
}

/// Reads a Llama config.json into candle's, taking `rope_theta` and llama3 rope scaling from
/// `rope_parameters` where newer transformers put them.
pub fn read_llama_config(path: &Path, mut v: Value) -> Result<candle_transformers::models::llama::Config> {
    let obj = v.as_object_mut().ok_or_else(|| Error::input(path, "config.json is not a JSON object"))?;
    if let Some(rope) = obj.get("rope_parameters").cloned() {
        if let Some(theta) = rope.get("rope_theta").filter(|_| obj.get("rope_theta").is_none_or(Value::is_null)) {
            obj.insert("rope_theta".into(), theta.clone());
        }
        if rope.get("rope_type").and_then(Value::as_str) == Some("llama3")
            && obj.get("rope_scaling").is_none_or(Value::is_null)
        {
            obj.insert("rope_scaling".into(), rope);
        }
    }
    let heads = obj.get("num_attention_heads").and_then(Value::as_u64).unwrap_or(1).max(1);
    let hidden = obj.get("hidden_size").and_then(Value::as_u64).unwrap_or(0);
    if let Some(hd) = obj.get("head_dim").and_then(Value::as_u64).filter(|&hd| hd != hidden / heads) {
        return Err(Error::input(
            path,
            format!("head_dim {hd} differs from hidden_size / num_attention_heads: not supported by candle's Llama"),
        ));
    }
    let cfg: LlamaConfig =
        serde_json::from_value(v).map_err(|e| Error::input(path, format!("not a Llama config: {e}")))?;
    Ok(cfg.into_config(false))
}

/// Reads a Qwen2 config.json into candle's Qwen2 config, filling keys newer transformers moved or
/// omit (`rope_parameters.rope_theta`, a null `sliding_window`).
pub fn read_config(path: &Path) -> Result<Config> {
    let (v, kind) = read_json(path)?;
    if kind != "qwen2" {
        return Err(Error::input(path, format!("model_type '{kind}' is not qwen2")));
    }
    serde_json::from_value(qwen_defaults(path, v)?).map_err(|e| config_err(path, e))
}

/// Reads a Qwen3 config.json into candle's Qwen3 config, with Qwen2's defaults plus `head_dim`
/// (hidden / heads when absent) and `attention_bias` (false).
pub fn read_qwen3_config(path: &Path) -> Result<candle_transformers::models::qwen3::Config> {
    let (v, kind) = read_json(path)?;
    if kind != "qwen3" {
        return Err(Error::input(path, format!("model_type '{kind}' is not qwen3")));
    }
    let mut v = qwen_defaults(path, v)?;
    let obj = v.as_object_mut().ok_or_else(|| config_err(path, "not an object"))?;
    let n = |k: &str| obj.get(k).and_then(Value::as_u64).unwrap_or(1).max(1);
    let head_dim = n("hidden_size") / n("num_attention_heads");
    if obj.get("head_dim").is_none_or(Value::is_null) {
        obj.insert("head_dim".into(), Value::from(head_dim));
    }
    if obj.get("attention_bias").is_none_or(Value::is_null) {
        obj.insert("attention_bias".into(), Value::from(false));
    }
    serde_json::from_value(v).map_err(|e| Error::input(path, format!("not a Qwen3 config: {e}")))
}

/// A Qwen config with the keys newer transformers moved or omit filled in.
fn qwen_defaults(path: &Path, mut v: Value) -> Result<Value> {
    let obj = v.as_object_mut().ok_or_else(|| config_err(path, "not an object"))?;
    let theta = obj.get("rope_parameters").and_then(|r| r.get("rope_theta")).cloned();
    let layers = obj.get("num_hidden_layers").cloned().unwrap_or(Value::from(0));
    let max_pos = obj.get("max_position_embeddings").cloned().unwrap_or(Value::from(32768));
    let defaults = [
        ("rope_theta", theta.unwrap_or(Value::from(10000.0))),
        ("max_window_layers", layers),
        ("use_sliding_window", Value::from(false)),
        ("tie_word_embeddings", Value::from(false)),
        ("rms_norm_eps", Value::from(1e-6)),
        ("hidden_act", Value::from("silu")),
        ("max_position_embeddings", max_pos.clone()),
    ];
    for (k, d) in defaults {
        if obj.get(k).is_none_or(Value::is_null) {
            obj.insert(k.into(), d);
        }
    }
    // candle always applies the window; without use_sliding_window transformers never does.
    if obj.get("sliding_window").is_none_or(Value::is_null)
        || obj.get("use_sliding_window") == Some(&Value::from(false))
    {
        obj.insert("sliding_window".into(), max_pos);
    }
    Ok(v)
}

/// A token's text in tokenizer_config.json (a string or `{"content": …}`), "" when absent.
fn token_text(cfg: &Value, name: &str) -> String {
    match cfg.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.get("content").and_then(Value::as_str).unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// The chat template as transformers picks it: `chat_template.jinja` beside config.json, else
/// `chat_template` in tokenizer_config.json (a string, or a list of named templates: the one
/// named `default`; a list without one is refused, naming the others), else none.
pub fn read_template(files: &ModelFiles) -> Result<Template> {
    let cfg: Value = match &files.tokenizer_config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            serde_json::from_str(&text).map_err(|e| Error::input(p, format!("invalid JSON: {e}")))?
        }
        None => Value::Null,
    };
    let jinja: Option<PathBuf> = files.config.parent().map(|d| d.join("chat_template.jinja")).filter(|p| p.is_file());
    let source = match (jinja, cfg.get("chat_template")) {
        (Some(p), _) => std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?,
        (None, Some(Value::String(s))) => s.clone(),
        (None, Some(Value::Array(list))) => default_template(list, files)?,
        (None, _) => return Ok(Template::Plain),
    };
    Ok(Template::Jinja { source, bos: token_text(&cfg, "bos_token"), eos: token_text(&cfg, "eos_token") })
}

/// The template named `default` of a list of named chat templates.
fn default_template(list: &[Value], files: &ModelFiles) -> Result<String> {
    let name = |t: &Value| t.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let found = list.iter().find(|t| name(t) == "default").and_then(|t| t.get("template")?.as_str());
    found.map(str::to_string).ok_or_else(|| {
        let names: Vec<String> = list.iter().map(name).collect();
        let path = files.tokenizer_config.as_deref().unwrap_or(&files.config);
        Error::input(
            path,
            format!(
                "chat_template lists templates {names:?} but none named \"default\", the one ask (as transformers) \
                 uses: name one of them default"
            ),
        )
    })
}

impl Template {
    /// The model's input for one user message, ending where the answer starts
    /// (`add_generation_prompt=True`), rendered as transformers does (trim and lstrip blocks,
    /// Python string methods).
    pub fn render(&self, content: &str) -> Result<String> {
        let Template::Jinja { source, bos, eos } = self else {
            return Ok(format!("User: {content}\nAssistant:"));
        };
        let fail = |e: minijinja::Error| Error::Encoder(format!("chat template: {e}"));
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Python string and dict methods (`.strip()`, `.startswith()`, `.items()`, …) as in Jinja2.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        let tmpl = env.template_from_str(source).map_err(fail)?;
        let ctx = serde_json::json!({
            "messages": [{"role": "user", "content": content}],
            "add_generation_prompt": true, "bos_token": bos, "eos_token": eos,
        });
        tmpl.render(ctx).map_err(fail)
    }
}

impl Decoder {
    /// Loads a Qwen2, Qwen3, Llama or Mistral checkpoint (safetensors, one file or shards, or a
    /// GGUF file as `files.weights`, dequantised) in f32 with its tokenizer.json and chat
    /// template, for padded batches.
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Decoder> {
        Decoder::load_as(files, device, true, DType::F32)
    }

    /// [`Decoder::load`], choosing candle-transformers' unpadded models when `padded` is false
    /// (f32, default rope, no sliding window: a cross-check of the padded forward).
    pub fn load_with(files: &ModelFiles, device: &Device, padded: bool) -> Result<Decoder> {
        Decoder::load_as(files, device, padded, DType::F32)
    }

    /// [`Decoder::load_with`] computing in `dtype` (f32, bf16 or f16; the weights are cast to it).
    pub fn load_as(files: &ModelFiles, device: &Device, padded: bool, dtype: DType) -> Result<Decoder> {
        let (json, kind) = read_json(&files.config)?;
        let tok_path = files.tokenizer_json.as_ref().ok_or_else(|| {
            Error::input(&files.config, "no tokenizer.json beside config.json: ask needs the fast tokenizer file")
        })?;
        let tokenizer = load_tokenizer(tok_path)?;
        let context = context_of(&json);
        let gguf = files.weights.extension().is_some_and(|e| e == "gguf");
        let weights = files.weight_files()?;
        if !gguf && weights.iter().any(|w| w.extension().is_none_or(|e| e != "safetensors")) {
            return Err(Error::input(
                &files.weights,
                "ask reads model.safetensors (or its shards with model.safetensors.index.json), or a qwen2, qwen3 or \
                 llama file ending .gguf with --gguf: convert the checkpoint",
            ));
        }
        let load_err = |e: candle_core::Error| Error::input(&files.weights, format!("cannot load the model: {e}"));
        if gguf && !padded {
            gguf_runs(&files.config, &json, &kind, dtype)?;
            let (model, limit) = super::gguf::load(&files.weights, &kind, device)?;
            let context = limit.map_or(context, |n| n.min(context));
            return Decoder::assemble(Network::Gguf(Box::new(model)), tokenizer, files, (device, context));
        }
        let shape = Shape::of(&json, &kind).map_err(|e| {
            Error::input(&files.config, format!("{e}; change config.json or choose another checkpoint"))
        })?;
        if gguf {
            // Dequantised and cast to `dtype`: the same padded batches and prefix cache as safetensors.
            let (vb, limit) = super::gguf::weights(&files.weights, &kind, &json, device, dtype)?;
            let context = limit.map_or(context, |n| n.min(context));
            let model = Padded::load(shape, vb).map_err(load_err)?;
            let mut d = Decoder::assemble(Network::Padded(Box::new(model)), tokenizer, files, (device, context))?;
            d.dtype = dtype;
            return Ok(d);
        }
        if !padded {
            unpadded_only(&files.config, &json, &kind, dtype)?;
        }
        // SAFETY: the weights files are memory-mapped read-only and not modified while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, dtype, device) }.map_err(load_err)?;
        let model = if padded {
            Network::Padded(Box::new(Padded::load(shape, vb).map_err(load_err)?))
        } else if kind == "qwen2" {
            Network::Qwen2(Box::new(ModelForCausalLM::new(&read_config(&files.config)?, vb).map_err(load_err)?))
        } else if kind == "qwen3" {
            let cfg = read_qwen3_config(&files.config)?;
            Network::Qwen3(Box::new(Qwen3ForCausalLM::new(&cfg, vb).map_err(load_err)?))
        } else {
            let cfg = read_llama_config(&files.config, json)?;
            let cache = Cache::new(false, DType::F32, &cfg, device).map_err(load_err)?;
            // candle's Llama::load panics on a missing or misshapen tensor: turn that into an error.
            let loaded =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Llama::load(vb, &cfg))).map_err(|_| {
                    Error::input(&files.weights, "cannot load the model: a Llama tensor is missing or misshapen")
                })?;
            Network::Llama(Box::new(loaded.map_err(load_err)?), Box::new(cache))
        };
        let mut d = Decoder::assemble(model, tokenizer, files, (device, context))?;
        d.dtype = dtype;
        Ok(d)
    }

    fn assemble(model: Network, tokenizer: Tokenizer, files: &ModelFiles, at: (&Device, usize)) -> Result<Decoder> {
        Ok(Decoder {
            model,
            tokenizer,
            device: at.0.clone(),
            template: read_template(files)?,
            id: files.id.clone(),
            fingerprint: files.fingerprint()?,
            prefix: None,
            context: at.1,
            dtype: DType::F32,
        })
    }

    /// The most tokens a prompt may have: config.json's `max_position_embeddings` (a GGUF
    /// file's context length when smaller). Longer prompts are refused, never cut.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The first token of each answer word as it would follow the rendered prompt (a leading
    /// space under the plain template); refused when two words share a first token.
    pub fn answer_tokens(&self, words: &[String]) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(words.len());
        for w in words {
            let text = if self.template == Template::Plain { format!(" {w}") } else { w.clone() };
            let enc =
                self.tokenizer.encode(text.as_str(), false).map_err(|e| Error::Encoder(format!("tokenizer: {e}")))?;
            let id = *enc.get_ids().first().ok_or_else(|| Error::Config(format!("answer word '{w}' has no tokens")))?;
            if let Some(j) = ids.iter().position(|&x| x == id) {
                return Err(Error::Config(format!(
                    "answer words '{}' and '{w}' start with the same token of {}: choose words that differ in their first token",
                    words[j], self.id
                )));
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Softmax over the answer tokens' logits at the last position of `prompt` (one forward
    /// pass, no sampling), in the order of `answer_ids`.
    pub fn answer(&mut self, prompt: &str, answer_ids: &[u32]) -> Result<Vec<f32>> {
        let fail = |e: candle_core::Error| Error::Encoder(format!("{}: forward pass: {e}", self.id));
        let ids = self.checked_ids(prompt)?;
        if matches!(self.model, Network::Padded(_)) {
            return Ok(self.answer_batch(&[prompt.to_string()], answer_ids)?.remove(0));
        }
        let input = Tensor::new(ids.as_slice(), &self.device).and_then(|t| t.unsqueeze(0)).map_err(fail)?;
        let logits = match &mut self.model {
            Network::Qwen2(m) => fresh(m.as_mut(), ModelForCausalLM::clear_kv_cache, |m| m.forward(&input, 0)),
            Network::Qwen3(m) => fresh(m.as_mut(), Qwen3ForCausalLM::clear_kv_cache, |m| m.forward(&input, 0)),
            Network::Llama(m, cache) => m.forward(&input, 0, cache),
            Network::Gguf(m) => m.forward(&input),
            Network::Padded(m) => m.last_logits(&[ids.as_slice()]),
        };
        let logits = logits.and_then(|l| l.flatten_all()?.to_vec1::<f32>()).map_err(fail)?;
        pick(&logits, answer_ids, &self.id)
    }

    /// [`Decoder::answer`] for several prompts: one left-padded forward pass when the model runs
    /// padded, else one pass per prompt.
    pub fn answer_batch(&mut self, prompts: &[String], answer_ids: &[u32]) -> Result<Vec<Vec<f32>>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        if !matches!(self.model, Network::Padded(_)) {
            return prompts.iter().map(|p| self.answer(p, answer_ids)).collect();
        }
        let fail = |e: candle_core::Error| Error::Encoder(format!("{}: forward pass: {e}", self.id));
        let ids = prompts.iter().map(|p| self.checked_ids(p)).collect::<Result<Vec<_>>>()?;
        let Network::Padded(m) = &self.model else { unreachable!("checked above") };
        // Every row continues the cached prefix (and is longer): only the continuations run.
        let cached = self.prefix.as_ref().filter(|c| {
            let p = c.ids();
            ids.iter().all(|r| r.len() > p.len() && r.starts_with(p))
        });
        let skip = cached.map_or(0, |c| c.ids().len());
        let rows: Vec<&[u32]> = ids.iter().map(|r| &r[skip..]).collect();
        if answer_ids.iter().any(|&t| t as usize >= m.vocab()) {
            return Err(outside_vocabulary(&self.id));
        }
        // Only the answer tokens' logits are computed: column i is answer i's.
        let logits = m.last_logits_after(cached, &rows, Some(answer_ids));
        let logits = logits.and_then(|l| super::padded::rows_of(&l)).map_err(fail)?;
        let columns: Vec<u32> = (0..answer_ids.len() as u32).collect();
        logits.iter().map(|l| pick(l, &columns, &self.id)).collect()
    }

    /// Computes and keeps the keys and values of the longest token prefix all `prompts` share
    /// (at least one token of each left over): later [`Decoder::answer_batch`] calls whose
    /// prompts all continue it run only the rest. Returns the prefix length (0: nothing cached,
    /// as for models that do not run padded).
    pub fn set_prefix<'a>(&mut self, prompts: impl IntoIterator<Item = &'a str>) -> Result<usize> {
        self.prefix = None;
        let Network::Padded(m) = &self.model else { return Ok(0) };
        let mut common: Option<Vec<u32>> = None;
        for p in prompts {
            let ids = self.token_ids(p)?;
            let keep = ids.len().saturating_sub(1);
            common = Some(match common {
                None => ids[..keep].to_vec(),
                Some(c) => c.iter().zip(&ids[..keep]).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
            });
        }
        let common = common.unwrap_or_default();
        if !common.is_empty() {
            let fail = |e: candle_core::Error| Error::Encoder(format!("{}: prefix forward pass: {e}", self.id));
            self.prefix = Some(m.prefix(&common).map_err(fail)?);
        }
        Ok(common.len())
    }

    /// Drops the cached prefix: every prompt is computed whole.
    pub fn clear_prefix(&mut self) {
        self.prefix = None;
    }

    /// Tokens in the cached prefix (0 when none).
    pub fn prefix_len(&self) -> usize {
        self.prefix.as_ref().map_or(0, |c| c.ids().len())
    }

    /// The rendered prompt's token ids (as [`Decoder::answer`] feeds them).
    pub fn token_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(prompt, false).map_err(|e| Error::Encoder(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// [`Decoder::token_ids`], refusing a prompt without tokens or longer than [`Decoder::context`].
    fn checked_ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let ids = self.token_ids(prompt)?;
        if ids.is_empty() {
            return Err(Error::Encoder(format!("{}: a prompt has no tokens", self.id)));
        }
        if ids.len() > self.context {
            return Err(Error::Encoder(format!(
                "{}: a prompt of {} tokens is longer than the model's context of {} tokens (max_position_embeddings, \
                 or a GGUF file's context_length when smaller): \
                 shorten it (prompts are never cut: the question is at their end)",
                self.id,
                ids.len(),
                self.context
            )));
        }
        Ok(ids)
    }
}

/// The softmax over the answer tokens' logits, in the order of `answer_ids`.
fn pick(logits: &[f32], answer_ids: &[u32], id: &str) -> Result<Vec<f32>> {
    let picked: Option<Vec<f64>> = answer_ids.iter().map(|&i| logits.get(i as usize).map(|&l| l as f64)).collect();
    Ok(softmax(&picked.ok_or_else(|| outside_vocabulary(id))?))
}

fn outside_vocabulary(id: &str) -> Error {
    Error::Encoder(format!("{id}: an answer token is outside the model's vocabulary (tokenizer and weights differ)"))
}

/// Softmax in f64, returned as f32.
fn softmax(logits: &[f64]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}
