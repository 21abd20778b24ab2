//! One TOML config for `signalkit run`, with the defaults signalkit.example.toml documents. With no file it runs the
//! shipped sample with the tiny fixture encoder, which needs no network.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::ask::{AskArgs, AskDtype, AskOptions};
use crate::data::headlines::HeadlineOptions;
use crate::data::tickers::TickerRule;
use crate::encode::EncodeArgs;
use crate::encode::hub::ModelSource;
use crate::encode::model::{ModelFiles, Precision};
use crate::error::{Error, Result};
use crate::finetune::market::LabelSource;
use crate::finetune::{FinetuneArgs, Hyper, LabelBins, MarketArgs, Training};
use crate::pit::{JoinArgs, Window};
use crate::settings::{Hours, Int, LearningRate, Positive, Share, Weight};
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
    /// Fetch news from the vendors into a store before the join, which then reads the store's
    /// headlines (absent: `[data] headlines` is read as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub news: Option<crate::news::NewsConfig>,
    /// Train on Numerai's own dataset (`[numerai] dataset = "signals/v2.1"`) instead of
    /// `[data] targets`, score as Numerai pays and end with the live week's signal file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerai: Option<crate::numerai::dataset::NumeraiConfig>,
}

/// The default checkpoint of `encode`, `finetune` and `[encode]` (the sample run sets the tiny
/// fixture instead, which needs no network).
pub const DEFAULT_ENCODER: &str = "ProsusAI/finbert";

/// Prompts per forward pass of `ask` (1 to 4096).
pub type AskBatch = Int<1, 4096>;
/// Texts per store shard of `encode` and `ask`: the most a killed run can lose.
pub type ShardSize = Int<1, 16_777_216>;

/// `signalkit ask`'s settings and `[ask]` in `run` (on `[data]`'s headlines, before the features):
/// one definition, each default written once.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct AskConfig {
    /// Hub id (downloaded into the Hugging Face cache) or a local model directory (Qwen2, Qwen3 or
    /// Llama; model.safetensors).
    #[arg(long)]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value_t = AskConfig::default().revision)]
    pub revision: String,
    /// Never touch the network: read the model from the Hugging Face cache (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Questions TOML: [[ask.question]] name, prompt (with {headline}, {ticker}, {company}), answers.
    #[arg(long)]
    pub questions: PathBuf,
    /// cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value_t = AskConfig::default().device)]
    pub device: String,
    /// Prompts per forward pass, left-padded, 1 to 4096 [default: 16 on cpu, 64 on cuda].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<AskBatch>,
    /// Answers per store shard: the most a killed run can lose.
    #[arg(long, default_value_t = AskConfig::default().shard_size)]
    pub shard_size: ShardSize,
    /// Hide the company from the model: {ticker}, {company} and the ticker in the headline read
    /// "the company" (kept apart in the store).
    #[arg(long)]
    pub anonymise: bool,
    /// The model's training-data cutoff (YYYY-MM-DD), recorded in each question's store folder
    /// and split on in evaluate.
    #[arg(long, value_name = "DATE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// CSV of ticker,name: {company} becomes the headline ticker's company name (a ticker not in
    /// it keeps its ticker and is counted in the summary).
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<PathBuf>,
    /// What the decoder computes in: f32 (exact, default), bf16 or f16 (as transformers computes
    /// in that dtype; answers go to a separate store folder).
    #[arg(long, value_enum, default_value_t = AskDtype::F32)]
    pub dtype: AskDtype,
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
            shard_size: ShardSize::new(4096),
            anonymise: false,
            knowledge_cutoff: None,
            names: None,
            dtype: AskDtype::F32,
        }
    }
}

impl AskConfig {
    /// The ask of `data`'s headlines into `store`; refuses a missing model or questions file and a
    /// knowledge cutoff that is not a date, by name.
    pub fn ask_args(&self, data: &DataConfig, store: PathBuf) -> Result<AskArgs> {
        let bad = |m: &str| Err(Error::Config(format!("[ask] {m} (see signalkit.example.toml)")));
        if self.model.trim().is_empty() {
            return bad("model is required: a hub id or a Qwen2/Llama checkpoint folder");
        }
        if self.questions.as_os_str().is_empty() {
            return bad("questions is required: a TOML file of [[ask.question]] name, prompt");
        }
        let options = AskOptions {
            anonymise: self.anonymise,
            knowledge_cutoff: self.knowledge_cutoff.clone(),
            dtype: self.dtype,
        };
        options.check().map_err(|e| Error::Config(format!("--knowledge-cutoff / [ask] knowledge_cutoff: {e}")))?;
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
            shard_size: self.shard_size.usize(),
            batch_size: self.batch_size.map_or(if cuda { 64 } else { 16 }, AskBatch::usize),
            options,
            shard: None,
            prefix_cache: true,
            gguf: None,
            names: self.names.clone(),
        })
    }
}

/// `signalkit finetune`'s training settings and `[finetune]` in `run` (recipe (b), whose base
/// model is `[encode] model` and whose target, `train_until` and embargo are `[train]`'s, so the
/// labels come from the training eras only): one definition, each default written once. The
/// defaults are the ones measured on real data (1 epoch, 3 bins).
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Passes over the training texts.
    #[arg(long, default_value_t = FinetuneConfig::default().epochs)]
    pub epochs: Int<1, 1000>,
    /// Texts per optimiser step (grouped by token length).
    #[arg(long, default_value_t = FinetuneConfig::default().batch_size)]
    pub batch_size: Int<1, 4096>,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = FinetuneConfig::default().lr)]
    pub lr: LearningRate,
    /// AdamW weight decay.
    #[arg(long, default_value_t = FinetuneConfig::default().weight_decay)]
    pub weight_decay: Weight,
    /// Share of the steps spent in linear warm-up (then linear decay to 0).
    #[arg(long, default_value_t = FinetuneConfig::default().warmup)]
    pub warmup: Share,
    /// Largest gradient L2 norm (clipped above).
    #[arg(long, default_value_t = FinetuneConfig::default().max_grad_norm)]
    pub max_grad_norm: Positive,
    /// Share of texts held out for per-epoch loss and accuracy.
    #[arg(long, default_value_t = FinetuneConfig::default().held_out)]
    pub held_out: Share,
    /// Recipe (b): 5 classes (target_0..target_4, one per bin) or 3 (down = bin 0, up = bin 1.0,
    /// flat = the three middle bins).
    #[arg(long, default_value_t = FinetuneConfig::default().label_bins, requires = "rows")]
    pub label_bins: LabelBins,
    /// Freeze the embeddings and the first N encoder layers.
    #[arg(long, default_value_t = FinetuneConfig::default().freeze_layers)]
    pub freeze_layers: Int<0, 1000>,
    /// Train the classification head only.
    #[arg(long)]
    pub head_only: bool,
    /// Seed for the new head, dropout and batch order: equal seeds repeat a run.
    #[arg(long, default_value_t = FinetuneConfig::default().seed)]
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            epochs: Int::new(1),
            batch_size: Int::new(16),
            lr: LearningRate::new(2e-5),
            weight_decay: Weight::new(0.01),
            warmup: Share::new(0.1),
            max_grad_norm: Positive::new(1.0),
            held_out: Share::new(0.1),
            label_bins: LabelBins::Three,
            freeze_layers: Int::new(0),
            head_only: false,
            seed: 0,
        }
    }
}

/// Where and how a fine-tune runs, beside its training settings.
#[derive(Debug, Clone)]
pub struct FinetuneTarget {
    /// The base checkpoint.
    pub model: ModelFiles,
    /// The output folder.
    pub out: PathBuf,
    /// Maximum tokens per text.
    pub max_len: usize,
    /// cpu, cuda or cuda:N.
    pub device: String,
    /// Dropout at the config's rates while training.
    pub dropout: bool,
}

impl FinetuneConfig {
    /// The optimiser settings (steps are derived from the data later).
    pub fn hyper(&self, dropout: bool) -> Hyper {
        Hyper {
            lr: self.lr.get(),
            weight_decay: self.weight_decay.get(),
            warmup_steps: 0,
            total_steps: 0,
            max_grad_norm: self.max_grad_norm.get(),
            freeze_layers: self.freeze_layers.usize(),
            head_only: self.head_only,
            seed: self.seed,
            dropout,
        }
    }

    /// The checkpoint, folder, passes and optimiser of a fine-tune with these settings.
    pub fn training(&self, to: FinetuneTarget) -> Training {
        Training {
            hyper: self.hyper(to.dropout),
            model: to.model,
            out: to.out,
            epochs: self.epochs.usize(),
            batch_size: self.batch_size.usize(),
            warmup_share: self.warmup.get(),
            held_out: self.held_out.get(),
            max_len: to.max_len,
            device: to.device,
        }
    }

    /// Recipe (a)'s arguments: the labelled table and the classes of a new head.
    pub fn labelled_args(&self, to: FinetuneTarget, labelled: PathBuf, labels: Option<Vec<String>>) -> FinetuneArgs {
        FinetuneArgs { training: self.training(to), labelled, labels }
    }

    /// Recipe (b)'s arguments: labels from `source`.
    pub fn market(&self, to: FinetuneTarget, source: LabelSource) -> MarketArgs {
        MarketArgs { training: self.training(to), source }
    }

    /// Recipe (b) inside `run`: the joined `rows`, the encoder's base model and `[train]`'s era
    /// split, into `out`.
    pub fn market_args(&self, cfg: &Config, rows: PathBuf, out: PathBuf) -> Result<MarketArgs> {
        let source = LabelSource {
            rows,
            headlines: Some(cfg.data.headlines.clone()),
            target: cfg.train.target.clone(),
            bins: self.label_bins,
            train_until: cfg.train.train_until.clone(),
            embargo: cfg.train.embargo_eras.u32(),
        };
        let to = FinetuneTarget {
            model: cfg.encode.source().resolve()?,
            out,
            max_len: cfg.encode.max_len.usize(),
            device: cfg.encode.device.clone(),
            dropout: true,
        };
        Ok(self.market(to, source))
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
            ticker_suffix: crate::data::tickers::DEFAULT_SUFFIX.into(),
        }
    }
}

/// The point-in-time window of `join` (and every command that joins) and `[join]`.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct JoinConfig {
    /// Look-back window in days (1 to 3660).
    #[arg(long, default_value_t = JoinConfig::default().window_days)]
    pub window_days: crate::data::window::WindowDays,
    /// Cutoff = Friday 00:00 UTC plus this many hours (21 = US close; -168 to 168).
    #[arg(long, default_value_t = JoinConfig::default().cutoff_hours, allow_hyphen_values = true)]
    pub cutoff_hours: Hours,
}

impl JoinConfig {
    /// The look-back window and cutoff.
    pub fn window(&self) -> Window {
        Window { days: self.window_days.u32(), cutoff_hours: self.cutoff_hours.get() }
    }
}

impl Default for JoinConfig {
    fn default() -> Self {
        let w = Window::default();
        JoinConfig { window_days: Int::new(w.days.into()), cutoff_hours: Hours::new(w.cutoff_hours) }
    }
}

/// Headlines per encoder forward pass (1 to 65536).
pub type EncodeBatch = Int<1, 65_536>;

/// `signalkit encode`'s settings and `[encode]`: the encoder and its store.
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Hub id (downloaded into the Hugging Face cache) or a local model directory.
    #[arg(long, default_value_t = EncodeConfig::default().model)]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value_t = EncodeConfig::default().revision)]
    pub revision: String,
    /// Never touch the network: read the model from the Hugging Face cache (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value_t = EncodeConfig::default().device)]
    pub device: String,
    /// Headlines per forward pass, 1 to 65536 [default: 32 on cpu, 256 on cuda].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<EncodeBatch>,
    /// Maximum tokens per headline (FinBERT was fine-tuned with 64).
    #[arg(long, default_value_t = EncodeConfig::default().max_len)]
    pub max_len: Int<1, 8192>,
    /// Precision, each kept apart in the store. f32: exact (within 1e-6 of transformers). bf16:
    /// on a CPU with AVX512-BF16, linear layers in bf16 with f32 sums, [CLS] cosine >= 0.99999
    /// vs f32 (other CPUs fall back to f32, saying so); on a GPU, all bf16. f16: for GPUs (no
    /// gain on CPUs). Speed per CPU: docs/benchmarks.md.
    #[arg(long, default_value_t = EncodeConfig::default().dtype)]
    pub dtype: Precision,
    /// Store folder (created if missing; re-runs encode only what it lacks), shared between runs
    /// so each text is encoded once.
    #[arg(long)]
    pub store: PathBuf,
    /// Headlines per store shard: the most a killed run can lose.
    #[arg(long, default_value_t = EncodeConfig::default().shard_size)]
    pub shard_size: ShardSize,
}

impl EncodeConfig {
    /// The batch size given, or the device's default.
    pub fn batch_size(&self) -> usize {
        self.batch_size.map_or_else(|| crate::encode::default_batch_size(&self.device), EncodeBatch::usize)
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
            max_len: self.max_len.usize(),
            precision: self.dtype,
            shard_size: self.shard_size.usize(),
            progress: true,
            shard: None,
        })
    }
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            model: DEFAULT_ENCODER.into(),
            revision: "main".into(),
            offline: false,
            device: "cpu".into(),
            batch_size: None,
            max_len: Int::new(64),
            dtype: Precision::F32,
            store: "runs/store".into(),
            shard_size: ShardSize::new(4096),
        }
    }
}

/// The sample run's encoder: the tiny fixture checkpoint (random weights), available offline.
pub const SAMPLE_ENCODER: &str = "data/fixtures/tiny-finbert";

/// The folder holding the bundled sample (`data/sample/targets.csv`): the current folder, else
/// the repository of the binary (`target/release/signalkit` → `../..`), else the source folder it
/// was built from; `None` when none has it.
pub fn sample_root() -> Option<PathBuf> {
    let has = |d: &Path| d.join("data/sample/targets.csv").is_file();
    let exe = std::env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|e| e.parent()?.parent()?.parent()).map(Path::to_path_buf);
    [Some(PathBuf::new()), from_exe, Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")))]
        .into_iter()
        .flatten()
        .find(|d| has(if d.as_os_str().is_empty() { Path::new(".") } else { d }))
}

/// Feature table options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Replace the [CLS] columns by this many principal components fitted on the training eras.
    pub pca: Option<Int<1, 4096>>,
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
    /// Its inputs are read from the current folder when it holds data/sample, else from the
    /// repository the binary was built in ([`sample_root`]); the outputs go to the current folder.
    pub fn sample() -> Self {
        let root = sample_root().unwrap_or_default();
        let mut cfg = Config { out: "runs/sample".into(), ..Default::default() };
        cfg.data.targets = root.join(&cfg.data.targets);
        cfg.data.headlines = root.join(&cfg.data.headlines);
        cfg.encode.model = root.join(SAMPLE_ENCODER).display().to_string();
        cfg
    }

    /// The config with every relative path made absolute (from the current folder), as a run
    /// saves it: its config.toml then runs again from any folder.
    pub fn with_absolute_paths(&self) -> Config {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let abs_model =
            |m: &str| if Path::new(m).is_dir() { abs(Path::new(m)).display().to_string() } else { m.into() };
        let mut c = self.clone();
        c.out = abs(&c.out);
        c.data.targets = abs(&c.data.targets);
        c.data.headlines = abs(&c.data.headlines);
        c.data.ticker_map = c.data.ticker_map.as_deref().map(abs);
        c.encode.store = abs(&c.encode.store);
        c.encode.model = abs_model(&c.encode.model);
        if let Some(n) = c.numerai.as_mut() {
            n.dir = abs(&n.dir);
        }
        if let Some(a) = c.ask.as_mut() {
            a.questions = abs(&a.questions);
            a.names = a.names.as_deref().map(abs);
            a.model = abs_model(&a.model);
        }
        if let (Some(n), Ok(cwd)) = (c.news.as_mut(), std::env::current_dir()) {
            n.from_folder(&cwd);
        }
        c
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
        if let Some(n) = cfg.numerai.as_mut() {
            fix(&mut n.dir);
        }
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
        if let Some(news) = cfg.news.as_mut() {
            news.from_folder(&base);
            let given =
                toml::from_str::<toml::Table>(&text).ok().and_then(|t| t.get("data")?.get("headlines").cloned());
            let given = given.and(Some(cfg.data.headlines.clone()));
            cfg.data.headlines = news.data_headlines(given.as_deref(), path)?;
        }
        Ok(cfg)
    }

    /// [`Config::read`] for `run`, which reads `[data]`: an input the file leaves out falls back
    /// to the bundled sample's path beside the config; where nothing is there, the key is named
    /// rather than a file the user never wrote.
    pub fn read_for_run(path: &Path) -> Result<Self> {
        let cfg = Config::read(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let table = toml::from_str::<toml::Table>(&text).unwrap_or_default();
        let given = |key: &str| table.get("data").and_then(|d| d.get(key)).is_some();
        let supplied = [
            ("targets", &cfg.data.targets, cfg.numerai.is_some(), "your/targets.parquet"),
            ("headlines", &cfg.data.headlines, cfg.news.is_some(), "your/headlines.parquet"),
        ];
        for (key, file, other_source, example) in supplied {
            if !given(key) && !other_source && !file.exists() {
                return Err(Error::input(
                    path,
                    format!(
                        "[data] {key} is not set, and its default {} is not there: add `{key} = \"{example}\"` under [data] (paths are taken from the config's folder)",
                        file.display()
                    ),
                ));
            }
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
    fn a_run_config_without_data_names_the_key_not_a_default_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "[train]\nembargo_eras = 4\n").unwrap();
        assert!(Config::read(&path).is_ok(), "train --config reads only [train]");
        let e = Config::read_for_run(&path).unwrap_err().to_string();
        assert!(e.contains("[data] targets is not set") && e.contains("run.toml"), "{e}");
        std::fs::write(&path, "[data]\ntargets = \"t.csv\"\n").unwrap();
        let e = Config::read_for_run(&path).unwrap_err().to_string();
        assert!(e.contains("[data] headlines is not set") && e.contains("headlines = "), "{e}");
    }

    #[test]
    fn the_example_config_parses_and_round_trips() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("signalkit.example.toml");
        let cfg = Config::read(&path).unwrap();
        assert_eq!(cfg.train.params["num_iterations"], 2000);
        assert_eq!(cfg.join.window_days.get(), 30);
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
        assert_eq!(
            (ask.shard_size.get(), ask.batch_size, ask.anonymise),
            (4096, None, false),
            "defaults fill the table"
        );
        assert!(cfg.to_toml().unwrap().contains("[ask]"), "the run folder's config.toml keeps it");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
