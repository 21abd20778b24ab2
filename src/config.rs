//! One TOML config for `signalkit run`, with the defaults signalkit.example.toml documents. With no file it runs the
//! shipped sample with the tiny fixture encoder, which needs no network.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ask::{AskArgs, AskOptions};
use crate::data::headlines::HeadlineOptions;
use crate::data::tickers::TickerRule;
use crate::encode::EncodeArgs;
use crate::encode::hub::ModelSource;
use crate::error::{Error, Result};
use crate::finetune::market::LabelSource;
use crate::finetune::{Hyper, LabelBins, MarketArgs};
use crate::pit::{JoinArgs, Window};
use crate::train::TrainConfig;

/// The whole pipeline's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Run folder: every stage's output goes here.
    pub out: PathBuf,
    /// Input files.
    pub data: DataConfig,
    /// Point-in-time join.
    pub join: JoinConfig,
    /// Headline encoder.
    pub encode: EncodeConfig,
    /// Feature table.
    pub features: FeaturesConfig,
    /// LightGBM and the era split.
    pub train: TrainConfig,
    /// Evaluation.
    pub evaluate: EvaluateConfig,
    /// Fine-tune the encoder on market labels of the training eras before encoding (absent: the
    /// encoder is used as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneConfig>,
    /// Ask a local language model fixed questions about every headline (into `RUN/ask-store`)
    /// and add its answers to the features (absent: no answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ask: Option<AskConfig>,
}

/// `[ask]`: `signalkit ask` inside `run`, on `[data]`'s headlines, before the features.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AskConfig {
    /// Decoder checkpoint: hub id or local folder (Qwen2 / Llama).
    pub model: String,
    /// Hub revision.
    pub revision: String,
    /// Never touch the network.
    pub offline: bool,
    /// Questions TOML (`[[ask.question]] name, prompt`).
    pub questions: PathBuf,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Prompts per forward pass (default: 16 on cpu, 64 on cuda).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Answers per store shard.
    pub shard_size: usize,
    /// Hide the company from the model ({ticker}, {company} and the ticker in the headline).
    pub anonymise: bool,
    /// The model's training-data cutoff (YYYY-MM-DD), recorded and split on in evaluate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// CSV of ticker,name: {company} becomes the company's name (else the ticker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<PathBuf>,
}

impl Default for AskConfig {
    fn default() -> Self {
        AskConfig {
            model: String::new(),
            revision: "main".into(),
            offline: false,
            questions: PathBuf::new(),
            device: "cpu".into(),
            batch_size: None,
            shard_size: 4096,
            anonymise: false,
            knowledge_cutoff: None,
            names: None,
        }
    }
}

impl AskConfig {
    /// The ask of `data`'s headlines into `store`; refuses a missing model or questions file, a
    /// zero batch or shard size and a knowledge cutoff that is not a date, by name.
    pub fn ask_args(&self, data: &DataConfig, store: PathBuf) -> Result<AskArgs> {
        let bad = |m: &str| Err(Error::Config(format!("[ask] {m} (see signalkit.example.toml)")));
        if self.model.trim().is_empty() {
            return bad("model is required: a hub id or a Qwen2/Llama checkpoint folder");
        }
        if self.questions.as_os_str().is_empty() {
            return bad("questions is required: a TOML file of [[ask.question]] name, prompt");
        }
        if self.batch_size == Some(0) || self.shard_size == 0 {
            return bad("batch_size and shard_size must be at least 1");
        }
        let options = AskOptions { anonymise: self.anonymise, knowledge_cutoff: self.knowledge_cutoff.clone() };
        options.check().map_err(|e| Error::Config(format!("[ask] knowledge_cutoff: {e}")))?;
        let mut source = ModelSource::new(&self.model);
        source.revision = self.revision.clone();
        source.offline |= self.offline;
        let cuda = self.device.starts_with("cuda");
        Ok(AskArgs {
            source,
            questions: self.questions.clone(),
            headlines: data.headlines.clone(),
            headline_options: data.headline_options()?,
            store,
            device: self.device.clone(),
            shard_size: self.shard_size,
            batch_size: self.batch_size.unwrap_or(if cuda { 64 } else { 16 }),
            options,
            shard: None,
            prefix_cache: true,
            gguf: None,
            names: self.names.clone(),
        })
    }
}

/// `[finetune]`: recipe (b) inside `run` (see `signalkit finetune --rows`). The base model is
/// `[encode] model`; the target, `train_until` and embargo are `[train]`'s, so the labels come
/// from the training eras only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Passes over the labelled headlines.
    pub epochs: usize,
    /// Headlines per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Share of steps in linear warm-up.
    pub warmup: f64,
    /// Gradient clip norm.
    pub max_grad_norm: f64,
    /// Share of labelled headlines held out for per-epoch loss and accuracy.
    pub held_out: f64,
    /// 5 (one class per target bin) or 3 (down / flat / up).
    pub label_bins: usize,
    /// Freeze the embeddings and the first N layers.
    pub freeze_layers: usize,
    /// Train the classification head only.
    pub head_only: bool,
    /// Seed of the head, dropout and batch order.
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: 1,
            batch_size: 16,
            lr: 2e-5,
            weight_decay: 0.01,
            warmup: 0.1,
            max_grad_norm: 1.0,
            held_out: 0.1,
            label_bins: 3,
            freeze_layers: 0,
            head_only: false,
            seed: 0,
        }
    }
}

impl FinetuneConfig {
    /// Recipe (b)'s arguments: the joined `rows`, the encoder's base model and `[train]`'s era
    /// split, into `out`.
    pub fn market_args(&self, cfg: &Config, rows: PathBuf, out: PathBuf) -> Result<MarketArgs> {
        let hyper = Hyper {
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup_steps: 0,
            total_steps: 0,
            max_grad_norm: self.max_grad_norm,
            freeze_layers: self.freeze_layers,
            head_only: self.head_only,
            seed: self.seed,
            dropout: true,
        };
        let source = LabelSource {
            rows,
            headlines: Some(cfg.data.headlines.clone()),
            target: cfg.train.target.clone(),
            bins: LabelBins::from_count(self.label_bins)?,
            train_until: cfg.train.train_until.clone(),
            embargo: cfg.train.embargo_eras,
        };
        Ok(MarketArgs {
            model: cfg.encode.source().resolve()?,
            out,
            source,
            epochs: self.epochs,
            batch_size: self.batch_size,
            warmup_share: self.warmup,
            held_out: self.held_out,
            max_len: cfg.encode.max_len,
            device: cfg.encode.device.clone(),
            hyper,
        })
    }
}

/// Input files and how to read the headlines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Numerai rows (historical_targets or Signals v2 parquet).
    pub targets: PathBuf,
    /// Headlines (CSV, parquet or JSON Lines).
    pub headlines: PathBuf,
    /// Headline ticker column.
    pub ticker_col: String,
    /// Headline time column (default: published_at, else published_date).
    pub time_col: Option<String>,
    /// Headline text column.
    pub text_col: String,
    /// Time zone for naive headline timestamps (IANA name, UTC or +05:30).
    pub timezone: Option<String>,
    /// CSV mapping headline tickers to row tickers.
    pub ticker_map: Option<PathBuf>,
    /// Suffix turning a headline ticker into a row ticker when no map is given.
    pub ticker_suffix: String,
}

impl DataConfig {
    /// How to read the headlines file (its columns and time zone).
    pub fn headline_options(&self) -> Result<HeadlineOptions> {
        let zone =
            self.timezone.as_deref().map(|z| z.parse().map_err(|e| Error::Config(format!("timezone {z:?}: {e}"))));
        Ok(HeadlineOptions {
            ticker_column: self.ticker_col.clone(),
            time_column: self.time_col.clone(),
            text_column: self.text_col.clone(),
            zone: zone.transpose()?,
        })
    }

    /// The rule from headline tickers to row tickers: the map file when given, else the suffix.
    pub fn ticker_rule(&self) -> Result<TickerRule> {
        Ok(match &self.ticker_map {
            Some(p) => TickerRule::from_map_file(p)?,
            None => TickerRule::Suffix(self.ticker_suffix.clone()),
        })
    }

    /// The join of these inputs with `join`'s window, written to `out`.
    pub fn join_args(&self, join: &JoinConfig, out: PathBuf) -> Result<JoinArgs> {
        Ok(JoinArgs {
            targets: self.targets.clone(),
            out,
            window: join.window(),
            tickers: self.ticker_rule()?,
            ticker_map: self.ticker_map.clone(),
            headlines: self.headlines.clone(),
            headline_options: self.headline_options()?,
        })
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            targets: "data/sample/targets.csv".into(),
            headlines: "data/sample/headlines.csv".into(),
            ticker_col: "ticker".into(),
            time_col: None,
            text_col: "headline".into(),
            timezone: None,
            ticker_map: None,
            ticker_suffix: " US".into(),
        }
    }
}

/// Look-back window and cutoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JoinConfig {
    /// Look-back window in days.
    pub window_days: u32,
    /// Cutoff = Friday 00:00 UTC plus this many hours.
    pub cutoff_hours: f64,
}

impl JoinConfig {
    /// The look-back window and cutoff.
    pub fn window(&self) -> Window {
        Window { days: self.window_days, cutoff_hours: self.cutoff_hours }
    }
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig { window_days: 30, cutoff_hours: 0.0 }
    }
}

/// The encoder and its store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Hub id or local folder (default: the tiny fixture checkpoint, available offline).
    pub model: String,
    /// Hub revision.
    pub revision: String,
    /// Never touch the network.
    pub offline: bool,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Headlines per forward pass (default: 32 on cpu, 256 on cuda).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Maximum tokens per headline.
    pub max_len: usize,
    /// f32 (exact), or bf16 (CPUs with AVX512-BF16 and GPUs) / f16 (GPUs): opt-ins, stored apart.
    pub dtype: String,
    /// Store folder, shared between runs so each text is encoded once.
    pub store: PathBuf,
    /// Headlines per shard: the most a killed encode can lose.
    pub shard_size: usize,
}

impl EncodeConfig {
    /// The batch size given, or the device's default.
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or_else(|| crate::encode::default_batch_size(&self.device))
    }

    /// The checkpoint: hub id or folder, revision, offline.
    pub fn source(&self) -> ModelSource {
        let mut source = ModelSource::new(&self.model);
        source.revision = self.revision.clone();
        source.offline |= self.offline;
        source
    }

    /// The encode of `data`'s headlines with this encoder into the store, with a progress bar.
    pub fn encode_args(&self, data: &DataConfig) -> Result<EncodeArgs> {
        Ok(EncodeArgs {
            source: self.source(),
            headlines: data.headlines.clone(),
            headline_options: data.headline_options()?,
            store: self.store.clone(),
            device: self.device.clone(),
            batch_size: self.batch_size(),
            max_len: self.max_len,
            precision: self.dtype.parse().map_err(|e| Error::Config(format!("dtype {:?}: {e}", self.dtype)))?,
            shard_size: self.shard_size,
            progress: true,
            shard: None,
        })
    }
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            model: "data/fixtures/tiny-finbert".into(),
            revision: "main".into(),
            offline: false,
            device: "cpu".into(),
            batch_size: None,
            max_len: 64,
            dtype: "f32".into(),
            store: "runs/store".into(),
            shard_size: 4096,
        }
    }
}

/// Feature table options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Replace the [CLS] columns by this many principal components fitted on the training eras.
    pub pca: Option<usize>,
}

/// Evaluation options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateConfig {
    /// A column of the targets file to report correlation with.
    pub benchmark: Option<String>,
}

impl Config {
    /// The built-in default: data/sample with the tiny fixture encoder, into runs/sample.
    pub fn sample() -> Self {
        Config { out: "runs/sample".into(), ..Default::default() }
    }

    /// Reads a TOML file over the defaults; relative paths in it are taken from its folder.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut cfg: Config = toml::from_str(&text)
            .map_err(|e| Error::input(path, format!("invalid config: {e}(see signalkit.example.toml)")))?;
        if cfg.out.as_os_str().is_empty() {
            cfg.out = "runs/run".into();
        }
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut cfg.out);
        fix(&mut cfg.data.targets);
        fix(&mut cfg.data.headlines);
        if let Some(m) = cfg.data.ticker_map.as_mut() {
            fix(m);
        }
        fix(&mut cfg.encode.store);
        let local = |model: &mut String| {
            let at = base.join(&*model);
            if Path::new(model.as_str()).is_relative() && at.is_dir() {
                *model = at.display().to_string();
            }
        };
        local(&mut cfg.encode.model);
        if let Some(ask) = cfg.ask.as_mut() {
            fix(&mut ask.questions);
            if let Some(n) = ask.names.as_mut() {
                fix(n);
            }
            local(&mut ask.model);
        }
        Ok(cfg)
    }

    /// The config as TOML (saved in the run folder so a run can be repeated).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Config(format!("config: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_round_trips() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("signalkit.example.toml");
        let cfg = Config::read(&path).unwrap();
        assert_eq!(cfg.train.params["num_iterations"], 2000);
        assert_eq!(cfg.join.window_days, 30);
        assert!(cfg.data.targets.ends_with("data/sample/targets.csv"));
        let back: Config = toml::from_str(&cfg.to_toml().unwrap()).unwrap();
        assert_eq!(back.encode.model, cfg.encode.model);
        assert_eq!((cfg.encode.batch_size, cfg.encode.batch_size()), (None, 32));
        let gpu: Config = toml::from_str("[encode]\ndevice = \"cuda:1\"\n").unwrap();
        assert_eq!(gpu.encode.batch_size(), 256);
        let set: Config = toml::from_str("[encode]\ndevice = \"cuda\"\nbatch_size = 64\n").unwrap();
        assert_eq!(set.encode.batch_size(), 64);
        assert!(set.to_toml().unwrap().contains("batch_size = 64"));
        let bad = std::env::temp_dir().join(format!("signalkit-bad-{}.toml", std::process::id()));
        std::fs::write(&bad, "[train]\nembargo = 4\n").unwrap();
        let e = Config::read(&bad).unwrap_err().to_string();
        assert!(e.contains("embargo") && e.contains(&bad.display().to_string()), "{e}");
        std::fs::remove_file(bad).unwrap();
    }

    #[test]
    fn ask_paths_are_taken_from_the_config_folder() {
        let dir = std::env::temp_dir().join(format!("signalkit-ask-cfg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("qwen")).unwrap();
        std::fs::write(dir.join("c.toml"), "[ask]\nmodel = \"qwen\"\nquestions = \"q.toml\"\nnames = \"n.csv\"\n")
            .unwrap();
        let cfg = Config::read(&dir.join("c.toml")).unwrap();
        let ask = cfg.ask.as_ref().unwrap();
        assert_eq!((ask.questions.clone(), PathBuf::from(&ask.model)), (dir.join("q.toml"), dir.join("qwen")));
        assert_eq!(ask.names, Some(dir.join("n.csv")));
        assert_eq!((ask.shard_size, ask.batch_size, ask.anonymise), (4096, None, false), "defaults fill the table");
        assert!(cfg.to_toml().unwrap().contains("[ask]"), "the run folder's config.toml keeps it");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
