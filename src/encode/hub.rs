//! Models by hub id, through the standard Hugging Face cache (hf-hub): `HF_HOME`/`HF_HUB_CACHE`
//! choose the cache and `HF_ENDPOINT` the server; offline (`--offline` or `HF_HUB_OFFLINE=1`)
//! reads the cache only and never touches the network.

use std::path::{Path, PathBuf};

use hf_hub::{HFClient, HFError};

use super::model::ModelFiles;
use crate::error::{Error, Result};

/// Where a model comes from: a local directory or a hub id.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSource {
    /// Local directory, or hub id like `ProsusAI/finbert`.
    pub spec: String,
    /// Hub revision (branch, tag or commit).
    pub revision: String,
    /// Never use the network: the files must already be in the cache.
    pub offline: bool,
    /// Hub server; default `HF_ENDPOINT`, else huggingface.co.
    pub endpoint: Option<String>,
    /// Cache folder; default `HF_HUB_CACHE`, else `$HF_HOME/hub`, else ~/.cache/huggingface/hub.
    pub cache_dir: Option<PathBuf>,
}

impl ModelSource {
    /// A source for `spec` with the defaults (revision main, offline if `HF_HUB_OFFLINE` is set).
    pub fn new(spec: &str) -> Self {
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"));
        ModelSource { spec: spec.to_string(), revision: "main".into(), offline, endpoint: None, cache_dir: None }
    }

    /// The checkpoint's files on disk, downloading them into the cache when needed.
    pub fn resolve(&self) -> Result<ModelFiles> {
        let path = Path::new(&self.spec);
        if path.is_dir() {
            return ModelFiles::from_dir(path);
        }
        let parts: Vec<&str> = self.spec.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty() || p.starts_with('.')) {
            return Err(Error::Config(format!(
                "model '{}' is neither a local directory nor a hub id like ProsusAI/finbert",
                self.spec
            )));
        }
        self.download(parts[0], parts[1])
    }

    fn download(&self, owner: &str, name: &str) -> Result<ModelFiles> {
        let hub_err = |what: &str, e: HFError| {
            let hint = if self.offline {
                "; offline mode reads only the Hugging Face cache: run once online, or point --model at a local directory"
            } else {
                ""
            };
            Error::Config(format!("{}: {what}: {e}{hint}", self.spec))
        };
        let mut builder = HFClient::builder();
        if let Some(e) = &self.endpoint {
            builder = builder.endpoint(e.clone());
        }
        if let Some(c) = &self.cache_dir {
            builder = builder.cache_dir(c.clone());
        }
        let client = builder.build_sync().map_err(|e| hub_err("cannot set up the hub client", e))?;
        let repo = client.model(owner, name);
        let fetch = |file: &str| -> Result<Option<PathBuf>> {
            let got = repo
                .download_file()
                .filename(file)
                .revision(self.revision.clone())
                .local_files_only(self.offline)
                .send();
            match got {
                Ok(p) => Ok(Some(p)),
                Err(HFError::EntryNotFound { .. }) | Err(HFError::LocalEntryNotFound { .. }) => Ok(None),
                Err(e) => Err(hub_err(&format!("downloading {file}"), e)),
            }
        };
        let need = |file: &str, found: Option<PathBuf>| {
            found.ok_or_else(|| {
                Error::Config(format!(
                    "{}: {file} not found {}",
                    self.spec,
                    if self.offline { "in the Hugging Face cache (offline)" } else { "on the hub" }
                ))
            })
        };
        let config = need("config.json", fetch("config.json")?)?;
        let tokenizer_json = fetch("tokenizer.json")?;
        let vocab = if tokenizer_json.is_some() { None } else { fetch("vocab.txt")? };
        if tokenizer_json.is_none() && vocab.is_none() {
            return Err(Error::Config(format!("{}: neither tokenizer.json nor vocab.txt found", self.spec)));
        }
        let tokenizer_config = fetch("tokenizer_config.json")?;
        // A decoder's chat template may be its own file; it lands beside config.json (ask reads it there).
        fetch("chat_template.jinja")?;
        let weights = match fetch("model.safetensors")? {
            Some(p) => p,
            None => match fetch(super::model::SHARD_INDEX)? {
                Some(index) => fetch_shards(&index, &fetch)?,
                None => need("model.safetensors or pytorch_model.bin", fetch("pytorch_model.bin")?)?,
            },
        };
        Ok(ModelFiles { id: self.spec.clone(), config, tokenizer_json, vocab, tokenizer_config, weights })
    }
}

/// Downloads every shard a `model.safetensors.index.json` names; returns the index.
fn fetch_shards(index: &Path, fetch: &dyn Fn(&str) -> Result<Option<PathBuf>>) -> Result<PathBuf> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::input(index, format!("invalid JSON: {e}")))?;
    let mut shards: Vec<&str> =
        v.get("weight_map").and_then(|m| m.as_object()).into_iter().flatten().filter_map(|(_, s)| s.as_str()).collect();
    shards.sort_unstable();
    shards.dedup();
    for s in shards {
        fetch(s)?.ok_or_else(|| Error::input(index, format!("names shard {s}, which the hub does not have")))?;
    }
    Ok(index.to_path_buf())
}
