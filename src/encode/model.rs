//! BERT-family checkpoints for inference: the files, the tokenizer, and [`crate::bert::Bert`]
//! loaded with fused kernels (and bf16-packed linear layers on request).
//!
//! Loads `config.json`, `tokenizer.json` or `vocab.txt`, and `model.safetensors` or a zip-format
//! `pytorch_model.bin`. A checkpoint with a `classifier` (e.g. ProsusAI/finbert) gives class
//! probabilities and the [CLS] embedding; one without (e.g. all-MiniLM-L6-v2) gives the embedding.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use serde_json::Value;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Encoding, Tokenizer, TruncationParams};
use xxhash_rust::xxh3::Xxh3;

use super::store::ModelKey;
use crate::bert::{Bert, Compute, DropoutRates, Options, labels_of, pad_batch, read_config};
use crate::error::{Error, Result};

/// The files of one checkpoint on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// Hub id or local path, as the user named it.
    pub id: String,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`, if present (preferred).
    pub tokenizer_json: Option<PathBuf>,
    /// `vocab.txt`, if present.
    pub vocab: Option<PathBuf>,
    /// `tokenizer_config.json`, if present (for `do_lower_case`).
    pub tokenizer_config: Option<PathBuf>,
    /// `model.safetensors`, `pytorch_model.bin`, or `model.safetensors.index.json` (shards).
    pub weights: PathBuf,
}

/// The index of a checkpoint saved in safetensors shards.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

impl ModelFiles {
    /// The files of a local model directory.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let pick = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        let config = pick("config.json").ok_or_else(|| Error::input(dir, "no config.json in the model directory"))?;
        let weights = pick("model.safetensors")
            .or_else(|| pick(SHARD_INDEX))
            .or_else(|| pick("pytorch_model.bin"))
            .ok_or_else(|| {
                Error::input(
                    dir,
                    format!("no model.safetensors, {SHARD_INDEX} or pytorch_model.bin in the model directory"),
                )
            })?;
        let files = ModelFiles {
            id: dir.display().to_string(),
            config,
            tokenizer_json: pick("tokenizer.json"),
            vocab: pick("vocab.txt"),
            tokenizer_config: pick("tokenizer_config.json"),
            weights,
        };
        if files.tokenizer_json.is_none() && files.vocab.is_none() {
            return Err(Error::input(dir, "no tokenizer.json or vocab.txt in the model directory"));
        }
        Ok(files)
    }

    /// The weight files: the shards an index names (each once, in name order, beside it), else
    /// the weights file itself.
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        if !self.weights.to_string_lossy().ends_with(".index.json") {
            return Ok(vec![self.weights.clone()]);
        }
        let p = &self.weights;
        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::input(p, format!("invalid JSON: {e}")))?;
        let map = v.get("weight_map").and_then(Value::as_object).ok_or_else(|| {
            Error::input(p, "no weight_map object (tensor name → shard file): re-save the checkpoint")
        })?;
        let mut shards: Vec<&str> = map.values().filter_map(Value::as_str).collect();
        shards.sort_unstable();
        shards.dedup();
        if shards.is_empty() || map.values().any(|s| !s.is_string()) {
            return Err(Error::input(
                p,
                "weight_map must map tensor names to shard file names: re-save the checkpoint",
            ));
        }
        let dir = p.parent().unwrap_or(Path::new("."));
        let files: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(Error::input(
                p,
                format!("names shard {} which is missing: download every shard", missing.display()),
            ));
        }
        Ok(files)
    }

    /// A content fingerprint of the config, vocabulary and weights (every shard) (xxh3, hex).
    pub fn fingerprint(&self) -> Result<String> {
        let mut h = Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let shards =
            if self.weights.to_string_lossy().ends_with(".index.json") { self.weight_files()? } else { vec![] };
        for p in [Some(&self.config), self.tokenizer_json.as_ref(), self.vocab.as_ref(), Some(&self.weights)]
            .into_iter()
            .flatten()
            .chain(shards.iter())
        {
            let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
            loop {
                let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(p, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Ok(format!("{:032x}", h.digest128()))
    }
}

/// Where to run the encoder.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        d if d == "cuda" || d.starts_with("cuda:") => {
            let ordinal = d
                .strip_prefix("cuda:")
                .map_or(Ok(0), str::parse)
                .map_err(|_| Error::Config(format!("bad device '{d}': use cpu, cuda or cuda:N")))?;
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::Config(
                    "this signalkit was built without CUDA: rebuild with `cargo build --release --features cuda` (scripts/gpu/build-cuda.sh)".into(),
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| {
                Error::Config(format!(
                    "cannot open {d}: {e}. Check that `nvidia-smi` lists GPU {ordinal}, the driver is >= 580 and \
                     libcudart.so.13 / libcublas.so.13 are on LD_LIBRARY_PATH (scripts/gpu/run-on-gpu.sh sets it)"
                ))
            })
        }
        d => Err(Error::Config(format!("unknown device '{d}': use cpu, cuda or cuda:N"))),
    }
}

/// Tokenizes texts (truncated, unpadded) with `tokenizer`, in parallel.
pub fn tokenize(tokenizer: &Tokenizer, texts: &[&str]) -> Result<Vec<Encoding>> {
    tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| Error::Encoder(format!("tokenizer: {e}")))
}

/// One text's class probabilities (empty without a head) and [CLS] embedding.
pub type Output = (Vec<f32>, Vec<f32>);

/// A loaded encoder.
pub struct Encoder {
    tokenizer: Tokenizer,
    bert: Bert,
    pad_id: u32,
    device: Device,
    /// Class labels in output order, from the config's `id2label` (empty without a head).
    pub labels: Vec<String>,
    /// Width of the [CLS] embedding.
    pub hidden: usize,
    /// What identifies this model's outputs in the store.
    pub key: ModelKey,
}

fn model_err(files: &ModelFiles, e: impl std::fmt::Display) -> Error {
    Error::input(&files.weights, format!("cannot load the model: {e}"))
}

/// A BERT WordPiece tokenizer from vocab.txt (as transformers' BertTokenizer builds it).
fn tokenizer_from_vocab(vocab: &Path, lowercase: bool) -> Result<Tokenizer> {
    let err = |e: tokenizers::Error| Error::input(vocab, format!("cannot build a tokenizer: {e}"));
    let wp = WordPiece::from_file(&vocab.to_string_lossy()).unk_token("[UNK]".to_string()).build().map_err(err)?;
    let mut tok = Tokenizer::new(wp);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase))).map_err(err)?;
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    let id = |t: &str| tok.token_to_id(t).ok_or_else(|| Error::input(vocab, format!("vocab.txt has no {t} token")));
    let (sep, cls) = (id("[SEP]")?, id("[CLS]")?);
    tok.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(|s| AddedToken::from(s, true)))
        .map_err(err)?;
    Ok(tok)
}

/// The weights' floating-point precision (written f32, bf16 or f16 on the command line and in TOML).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Precision {
    /// 32-bit floats: matches transformers within 1e-5.
    #[default]
    F32,
    /// bfloat16. On a GPU, weights and activations in bf16 (probabilities via an f32 softmax);
    /// on a CPU with AVX512-BF16, linear layers in bf16 with f32 sums and everything else in f32
    /// (as PyTorch's autocast), other CPUs fall back to f32. Its accuracy cost and speed gain are
    /// measured by scripts/bench/bench-encode.sh.
    Bf16,
    /// float16 weights and activations: opt-in, for GPUs; more mantissa than bf16 but a range
    /// that ends at 65,504 (LayerNorm and the probabilities' softmax still run in f32).
    F16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            _ => Err(format!("unknown dtype {s:?}: use f32, bf16 or f16")),
        }
    }
}

impl TryFrom<String> for Precision {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Precision> for String {
    fn from(p: Precision) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

impl Precision {
    /// The precision `device` will run: bf16 on a CPU without AVX512-BF16 falls back to f32, saying so.
    pub fn on(self, device: &Device) -> Self {
        if self == Precision::Bf16 && device.is_cpu() && !crate::bert::bf16::supported() {
            eprintln!(
                "warning: --dtype bf16: this CPU has no AVX512-BF16 instructions, so signalkit encodes in f32 \
                 (exact, slower) and stores the outputs as f32"
            );
            return Precision::F32;
        }
        self
    }

    fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }
}

/// The checkpoint's tokenizer (tokenizer.json, else vocab.txt with tokenizer_config.json's
/// casing), truncating to `max_len` tokens, which must fit the model, and never padding.
fn load_tokenizer(files: &ModelFiles, cfg: &Config, max_len: usize) -> Result<Tokenizer> {
    let mut tokenizer = match (&files.tokenizer_json, &files.vocab) {
        (Some(p), _) => Tokenizer::from_file(p).map_err(|e| Error::input(p, format!("cannot read tokenizer: {e}")))?,
        (None, Some(v)) => {
            let lower = files
                .tokenizer_config
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("do_lower_case").and_then(Value::as_bool))
                .unwrap_or(true);
            tokenizer_from_vocab(v, lower)?
        }
        (None, None) => return Err(Error::input(&files.config, "no tokenizer.json or vocab.txt beside it")),
    };
    if !(MIN_MAX_LEN..=cfg.max_position_embeddings).contains(&max_len) {
        return Err(Error::input(
            &files.config,
            format!(
                "--max-len {max_len}: this model reads {MIN_MAX_LEN} to {} tokens per headline ([CLS], the words, [SEP]); 64 suits headlines",
                cfg.max_position_embeddings
            ),
        ));
    }
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
        .map_err(|e| Error::Encoder(format!("truncation: {e}")))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// The checkpoint's tokenizer alone (what fine-tuning needs), truncating to `max_len` tokens.
pub fn checkpoint_tokenizer(files: &ModelFiles, max_len: usize) -> Result<Tokenizer> {
    load_tokenizer(files, &read_config(&files.config)?.0, max_len)
}

/// The fewest tokens per headline that still hold a word: [CLS], one token, [SEP].
pub const MIN_MAX_LEN: usize = 3;

impl Encoder {
    /// Loads a checkpoint onto `device` in f32, truncating headlines to `max_len` tokens.
    pub fn load(files: &ModelFiles, device: &Device, max_len: usize) -> Result<Self> {
        Self::load_with(files, device, max_len, Precision::F32)
    }

    /// Loads a checkpoint onto `device` in the given precision.
    pub fn load_with(files: &ModelFiles, device: &Device, max_len: usize, precision: Precision) -> Result<Self> {
        let (cfg, raw) = read_config(&files.config)?;
        let tokenizer = load_tokenizer(files, &cfg, max_len)?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(cfg.pad_token_id as u32);

        let precision = precision.on(device);
        let packed = precision == Precision::Bf16 && device.is_cpu();
        let dtype = if packed { DType::F32 } else { precision.dtype() };
        let is_safetensors = files.weight_files()?.iter().all(|p| p.extension().is_some_and(|e| e == "safetensors"));
        let vb = if is_safetensors {
            // SAFETY: the weights files are memory-mapped read-only and not modified while we run.
            unsafe { VarBuilder::from_mmaped_safetensors(&files.weight_files()?, dtype, device) }
        } else {
            VarBuilder::from_pth(&files.weights, dtype, device)
        }
        .map_err(|e| model_err(files, e))?;
        let prefixed = vb.contains_tensor("bert.embeddings.word_embeddings.weight");
        let classes = if vb.contains_tensor("classifier.weight") {
            Some(vb.get_unchecked("classifier.weight").and_then(|w| w.dim(0)).map_err(|e| model_err(files, e))?)
        } else {
            None
        };
        let options = Options {
            prefixed,
            classes,
            compute: Compute::Fused { packed_bf16: packed },
            dropout: DropoutRates::of(&raw),
            seed: 0,
        };
        let bert = Bert::load(vb, &cfg, &options).map_err(|e| model_err(files, e))?;
        let labels = classes.map_or(Vec::new(), |n| labels_of(&raw, n));
        let hidden = cfg.hidden_size;
        let key = ModelKey {
            id: files.id.clone(),
            fingerprint: files.fingerprint()?,
            max_len,
            labels: labels.clone(),
            dtype: precision.to_string(),
        };
        Ok(Encoder { tokenizer, bert, pad_id, device: device.clone(), labels, hidden, key })
    }

    /// True when the checkpoint has a classification head (probabilities as well as embeddings).
    pub fn has_head(&self) -> bool {
        self.bert.has_head()
    }

    /// Tokenizes texts (truncated, unpadded), in parallel.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        tokenize(&self.tokenizer, texts)
    }

    /// The tokenizer alone, to tokenise on another thread while the encoder runs.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Runs one batch, padded to its longest member: per text the class probabilities (empty
    /// without a head) and the [CLS] embedding (last hidden state at position 0).
    pub fn forward(&self, batch: &[&Encoding]) -> Result<Vec<Output>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let err = |e: candle_core::Error| Error::Encoder(e.to_string());
        let n = batch.len();
        let (ids, mask) = pad_batch(batch, self.pad_id, &self.device).map_err(err)?;
        let cls = self.bert.forward(&ids, &mask).map_err(err)?;
        let probs = if self.bert.has_head() {
            let logits = self.bert.logits(&cls).and_then(|t| t.to_dtype(DType::F32)).map_err(err)?;
            candle_nn::ops::softmax_last_dim(&logits).and_then(|t| t.to_vec2::<f32>()).map_err(err)?
        } else {
            vec![Vec::new(); n]
        };
        let cls = cls.to_dtype(DType::F32).and_then(|t| t.to_vec2::<f32>()).map_err(err)?;
        if probs.iter().chain(&cls).flatten().any(|v| !v.is_finite()) {
            return Err(Error::Config(format!(
                "the encoder produced non-finite values in {}: this checkpoint's activations overflow it; \
                 use --dtype bf16 (same range as f32) or f32",
                self.key.dtype
            )));
        }
        Ok(probs.into_iter().zip(cls).collect())
    }
}
