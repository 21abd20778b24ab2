//! The command line's flags, and for each subcommand the function that turns its flags into a
//! stage's arguments (through the same conversions `signalkit run` uses), runs it and prints
//! its summary.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use signalkit::config::{
    AskConfig, Config, DEFAULT_ENCODER, DataConfig, EncodeConfig, FinetuneConfig, FinetuneTarget, JoinConfig,
};
use signalkit::data::time::Zone;
use signalkit::features::PcaOption;
use signalkit::settings::{Hours, Int, PerMinute, Share};
use signalkit::train::{Embargo, Folds, StoppingRounds, Trees};

#[derive(Parser)]
#[command(
    name = "signalkit",
    version,
    about = "Turn financial news into Numerai Signals",
    long_about = None,
    after_help = "Start here: `signalkit run` runs the whole chain on the bundled sample (no network, about a minute);\n\
                  the commands are listed in the order a weekly pipeline runs them."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run join → (finetune) → encode → (ask) → features → train → evaluate → importance from one
    /// config (no config: the shipped sample with the tiny offline encoder). Start here.
    Run(RunCmd),
    /// Write a deterministic synthetic universe (targets.csv, headlines.csv) with planted signal.
    Sample(SampleCmd),
    /// Fetch headlines from a news API (SEC EDGAR, Alpaca, Finnhub, Polygon, Tiingo),
    /// point-in-time, incrementally, into the layout `join` reads.
    News(NewsCmd),
    /// `tickers map`: vendor symbols → the universe's numerai_ticker/composite_figi through
    /// OpenFIGI, as a map that `news fetch`, `join` (--ticker-map) and `ask --names` read.
    Tickers(TickersCmd),
    /// Join headlines to Numerai rows point-in-time: each row sees only news published strictly
    /// before its cutoff and within the look-back window.
    Join(JoinCmd),
    /// Encode headlines with a BERT-family model (FinBERT by default) into a resumable store:
    /// class probabilities, sentiment and the [CLS] embedding per distinct text.
    Encode(EncodeCmd),
    /// Ask a local decoder LLM (Qwen2, Qwen3 or Llama) fixed YES/NO/UNKNOWN questions about each
    /// headline: p_yes, p_no, p_unknown per (headline, question) into a resumable store.
    Ask(AskCmd),
    /// Fine-tune a BERT-family checkpoint (FinBERT by default) in candle on labelled text (--labelled) or on market labels from a join's training rows (--rows):
    /// writes a Hugging Face folder that `encode --model DIR` loads, plus card.json.
    Finetune(FinetuneCmd),
    /// Build the feature table: the joined rows plus the latest headline's probabilities,
    /// sentiment and [CLS] embedding, and sentiment aggregates over the window.
    Features(FeaturesCmd),
    /// Train LightGBM on the training eras (embargo before validation); saves model.txt,
    /// model.json and every row's prediction.
    Train(TrainCmd),
    /// Predict with a trained model: ticker and signal ranked strictly inside (0, 1) per era.
    Predict(PredictCmd),
    /// Score predictions out of sample the Numerai way: report.json, report.md, plots.
    Evaluate(EvaluateCmd),
    /// Compare runs on the eras they share: each run's corr and sharpe with bootstrap intervals,
    /// each pair's per-era difference (mean, standard error, t, p, share of eras better).
    Compare(CompareCmd),
    /// Blend runs: the weighted mean of each run's per-era rank, as one predictions file that
    /// evaluate and compare score like a run (the runs must predict the same rows, same split).
    Blend(BlendCmd),
    /// Feature importance on out-of-sample eras: permutation importance (MDA) per feature and group, gain, corr.
    Importance(ImportanceCmd),
    /// List the Signals dataset files Numerai offers (this round, or --round N).
    Datasets(DatasetsCmd),
    /// Download a Signals dataset file (e.g. signals/v2.1/live.parquet) into a folder.
    Download(DownloadCmd),
    /// Check a submission against every Signals rule, then upload it for a model (or --dry-run).
    Submit(SubmitCmd),
    /// Upload validation predictions to Numerai's diagnostics, wait for the scores, and write
    /// the per-era table and summary (report.json, report.md).
    Diagnostics(DiagnosticsCmd),
    /// List a Signals model's recent submissions and its scores per round.
    Submissions(SubmissionsCmd),
    /// Store maintenance: `store merge` unions stores (the shard stores of a sharded encode/ask).
    Store(StoreCmd),
    /// This machine as signalkit sees it: CPU model, ISA flags, threads, and the kernel each
    /// stage and dtype runs on (paste it into a report about speed).
    Env(EnvCmd),
}

#[derive(Args)]
pub struct EnvCmd {}

impl EnvCmd {
    /// Prints the machine report.
    pub fn run(self) -> Result<()> {
        println!("{}", signalkit::env::report());
        Ok(())
    }
}

#[derive(Args)]
pub struct JoinCmd {
    /// Numerai rows: legacy historical_targets (CSV/parquet) or Signals v2 parquet.
    #[arg(long)]
    targets: PathBuf,
    /// Output parquet: the rows as given plus the latest visible headline and counts.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pit: PitOpts,
}

/// The point-in-time options, given once to the join (its output records them).
#[derive(Args)]
struct PitOpts {
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    #[command(flatten)]
    join: JoinConfig,
    /// CSV mapping headline tickers to row tickers (columns ticker,bloomberg_ticker).
    #[arg(long)]
    ticker_map: Option<PathBuf>,
    /// Suffix that turns a headline ticker into a row ticker when no map is given.
    #[arg(long, default_value = signalkit::data::tickers::DEFAULT_SUFFIX)]
    ticker_suffix: String,
    #[command(flatten)]
    cols: HeadlineCols,
}

#[derive(Args)]
pub struct FeaturesCmd {
    /// The output of signalkit join.
    #[arg(long)]
    rows: PathBuf,
    /// Store folder filled by signalkit encode.
    #[arg(long)]
    store: PathBuf,
    /// Which encoder's outputs, as given to encode [default: the only model in the store].
    #[arg(long)]
    model: Option<String>,
    /// The encoder's weights fingerprint (a prefix), when the store holds several for one id.
    #[arg(long)]
    fingerprint: Option<String>,
    /// The encoder's precision (f32, bf16, f16), when the store holds several.
    #[arg(long)]
    dtype: Option<String>,
    /// The encoder's max tokens per headline, when the store holds several.
    #[arg(long)]
    max_len: Option<Int<1, 8192>>,
    /// Make features exactly as a trained model's were: its encoder (id, fingerprint, dtype,
    /// max_len) and its PCA projection, read from its card (the weekly job's choice).
    /// Options given beside it take precedence (predict still refuses what differs).
    #[arg(long, value_name = "MODEL_DIR", conflicts_with = "pca")]
    like: Option<PathBuf>,
    /// Store filled by `signalkit ask`: adds ask_<name>_{p_yes,p_no,p_unknown,score} of each row's
    /// latest headline and the score's window aggregates (ask_<name>_score_mean_7d, _mean_30d,
    /// _decayed, _min_window, _max_window); keep it apart from the encode store.
    #[arg(long, value_name = "DIR")]
    ask_store: Option<PathBuf>,
    /// Output parquet: the rows plus the features.
    #[arg(long)]
    out: PathBuf,
    /// Replace the [CLS] columns by K principal components fitted on the training eras
    /// (data_type == train); the projection is saved as <out>.pca.json.
    #[arg(long, value_name = "K", conflicts_with = "pca_from")]
    pca: Option<Int<1, 4096>>,
    /// Fit the PCA on Fridays up to this date (YYYY-MM-DD) instead of data_type == train.
    #[arg(long, requires = "pca")]
    pca_fit_until: Option<String>,
    /// Apply a saved projection (e.g. the training run's features.pca.json to the live week).
    #[arg(long)]
    pca_from: Option<PathBuf>,
    #[command(flatten)]
    pit: PitRestated,
}

/// The join's options, restated to `features`: not needed (the rows file records them); each one
/// given must equal the join's. Rows from other tools are re-joined with them.
#[derive(Args)]
struct PitRestated {
    /// The headlines the join read, if moved since [default: the path the join recorded].
    #[arg(long)]
    headlines: Option<PathBuf>,
    /// Look-back window in days [default: the join's].
    #[arg(long)]
    window_days: Option<signalkit::data::window::WindowDays>,
    /// Cutoff hours after Friday 00:00 UTC [default: the join's].
    #[arg(long, allow_hyphen_values = true)]
    cutoff_hours: Option<Hours>,
    /// Ticker map [default: the join's].
    #[arg(long)]
    ticker_map: Option<PathBuf>,
    /// Ticker suffix [default: the join's].
    #[arg(long)]
    ticker_suffix: Option<String>,
    /// Headline ticker column [default: the join's].
    #[arg(long)]
    ticker_col: Option<String>,
    /// Headline time column [default: the join's].
    #[arg(long)]
    time_col: Option<String>,
    /// Headline text column [default: the join's].
    #[arg(long)]
    text_col: Option<String>,
    /// The feed's time zone [default: the join's].
    #[arg(long)]
    timezone: Option<Zone>,
}

impl PitRestated {
    fn restated(self) -> signalkit::features::Restated {
        signalkit::features::Restated {
            headlines: self.headlines,
            window_days: self.window_days.map(|d| d.u32()),
            cutoff_hours: self.cutoff_hours.map(Hours::get),
            timezone: self.timezone,
            ticker_map: self.ticker_map,
            ticker_suffix: self.ticker_suffix,
            ticker_column: self.ticker_col,
            time_column: self.time_col,
            text_column: self.text_col,
        }
    }
}

/// How to read a headlines file (shared by join, encode and features).
#[derive(Args)]
struct HeadlineCols {
    /// Headline ticker column.
    #[arg(long, default_value_t = DataConfig::default().ticker_col)]
    ticker_col: String,
    /// Headline publication-time column [default: published_at, else published_date].
    #[arg(long)]
    time_col: Option<String>,
    /// Headline text column.
    #[arg(long, default_value_t = DataConfig::default().text_col)]
    text_col: String,
    /// The feed's time zone (IANA name, UTC, or +05:30): naive timestamps are read in it, and a
    /// day-only date D counts from the end of D there (without it: UTC, naive stamps refused).
    #[arg(long)]
    timezone: Option<Zone>,
}

#[derive(Args)]
pub struct EncodeCmd {
    #[command(flatten)]
    encode: EncodeConfig,
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    #[command(flatten)]
    sharding: ShardOpts,
    #[command(flatten)]
    cols: HeadlineCols,
}

/// Which part of the texts this process takes (README: "Sharding").
#[derive(Args)]
struct ShardOpts {
    /// Take only shard I of N (texts whose xxh3 hash mod N is I) [default: from JOB_COMPLETION_INDEX
    /// with SIGNALKIT_SHARDS, or SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT; else every text].
    #[arg(long, value_name = "I/N")]
    shard: Option<signalkit::encode::shard::Shard>,
    /// The shard count N when the scheduler gives only the index (JOB_COMPLETION_INDEX)
    /// [env: SIGNALKIT_SHARDS].
    #[arg(long, value_name = "N")]
    shard_count: Option<Int<1, { signalkit::encode::shard::MAX_SHARDS }>>,
}

impl ShardOpts {
    fn resolve(&self) -> Result<Option<signalkit::encode::shard::Shard>> {
        Ok(signalkit::encode::shard::Shard::from_env_or(
            self.shard.map(|s| s.to_string()).as_deref(),
            self.shard_count.map(Int::usize),
        )?)
    }
}

#[derive(Args)]
pub struct AskCmd {
    #[command(flatten)]
    ask: AskConfig,
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    /// Store folder (one sub-folder per question; re-runs answer only what it lacks).
    #[arg(long)]
    store: PathBuf,
    /// Compute every prompt whole instead of reusing the question's shared prefix (its keys and
    /// values are computed once by default; the answers agree within float rounding).
    #[arg(long)]
    no_prefix_cache: bool,
    /// Weights from a qwen2, qwen3, llama or mistral GGUF file (q8_0, q4_k, …: dequantised to f32,
    /// batched and prefix-cached as safetensors) instead of model.safetensors; config, tokenizer
    /// and template still from --model, whose architecture and sizes the file must match.
    #[arg(long, value_name = "FILE")]
    gguf: Option<PathBuf>,
    #[command(flatten)]
    sharding: ShardOpts,
    #[command(flatten)]
    cols: HeadlineCols,
}

#[derive(Args)]
pub struct TrainCmd {
    /// Feature table (output of signalkit features).
    #[arg(long)]
    features: PathBuf,
    /// Output folder: model.txt, model.json, predictions.parquet.
    #[arg(long)]
    out: PathBuf,
    /// TOML with a [train] table (target, embargo_eras, features, early_stopping_rounds, [train.params]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Target column [default: target_20d_factor_neutral, alias target_factor_neutral_20].
    #[arg(long)]
    target: Option<String>,
    /// Train on eras up to this date (YYYY-MM-DD) instead of data_type == train.
    #[arg(long)]
    train_until: Option<String>,
    /// Eras left out between training and validation, 0 to 520 [default: 4].
    #[arg(long)]
    embargo: Option<Embargo>,
    /// Stop when l2 on the last training eras (a fifth of them, after an embargo; the validation
    /// eras stay untouched) has not improved for N rounds (1 or more).
    #[arg(long)]
    early_stopping: Option<StoppingRounds>,
    /// Trees, 1 to 1000000 [default: 2000].
    #[arg(long)]
    num_iterations: Option<Trees>,
    /// Walk forward in K folds (2 to 20): the validation eras cut into K blocks, each scored by a
    /// model trained on every era before it less the embargo; writes fold-1/ … fold-K/ and the
    /// out-of-fold predictions.parquet [default: one split].
    #[arg(long, value_name = "K")]
    walk_forward: Option<Folds>,
}

/// A trained model and a feature table to apply it to.
#[derive(Args)]
struct ModelInput {
    /// Model folder (or its model.txt) written by signalkit train.
    #[arg(long)]
    model: PathBuf,
    /// Feature table with the model's feature columns (for importance, with the targets too).
    #[arg(long)]
    features: PathBuf,
}

#[derive(Args)]
pub struct PredictCmd {
    #[command(flatten)]
    input: ModelInput,
    /// Output .csv or .parquet.
    #[arg(long)]
    out: PathBuf,
    /// Write every era (with a date column), not only the latest (the live week).
    #[arg(long)]
    all_eras: bool,
    /// Lower churn: keep this share (0 ≤ A < 1) of last week's rank, `A·last + (1 − A)·this`,
    /// re-ranked; tickers without news this week decay toward 0.5. With --all-eras, each era is
    /// blended with the one before (what a weekly job would have sent).
    #[arg(long, value_name = "A", allow_hyphen_values = true)]
    smooth: Option<Share>,
    /// Last week's signal file, blended into the live week by --smooth.
    #[arg(long, value_name = "LAST_SIGNAL", requires = "smooth")]
    smooth_with: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvaluateCmd {
    /// Predictions (from train's predictions.parquet or predict --all-eras).
    #[arg(long)]
    predictions: PathBuf,
    /// Numerai targets, or the feature table (it carries the targets).
    #[arg(long)]
    targets: PathBuf,
    /// Output folder: report.json, report.md, plots/.
    #[arg(long)]
    out: PathBuf,
    /// Target column.
    #[arg(long, default_value = "target_20d_factor_neutral")]
    target: String,
    /// Model folder: only its validation eras count as out of sample.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Feature table, for feature exposure and feature-neutral corr.
    #[arg(long)]
    features: Option<PathBuf>,
    /// Column of the targets file to report correlation with.
    #[arg(long)]
    benchmark: Option<String>,
    /// Smoothing weights to compare, e.g. 0.3,0.5,0.7: corr and churn of the predictions
    /// blended era by era as `predict --smooth A` would, beside the raw ones.
    #[arg(long, value_name = "A,...", value_delimiter = ',', allow_hyphen_values = true)]
    smooth: Vec<Share>,
    /// Signals v2.1 neutralizer file (ticker, date, factor columns): adds neutral corr per era.
    #[arg(long)]
    neutralizers: Option<PathBuf>,
    /// Signals v2.1 sample-weights file (ticker, date, weight): with --neutralizers, adds alpha.
    #[arg(long, requires = "neutralizers")]
    sample_weights: Option<PathBuf>,
    /// Meta-model column of the targets file: adds MMC (and neutral MMC with --neutralizers).
    #[arg(long, value_name = "COL")]
    meta_model: Option<String>,
    /// Each era's universe (ticker, date) for the "as Numerai pays" scores [default: the
    /// neutralizer file's rows of the era].
    #[arg(long, requires = "neutralizers")]
    universe: Option<PathBuf>,
    /// The language model's training-data cutoff (YYYY-MM-DD): OOS corr is split there
    /// [default: the one `ask --knowledge-cutoff` recorded in the model's or features' provenance].
    #[arg(long, value_name = "DATE")]
    knowledge_cutoff: Option<String>,
}

#[derive(Args)]
pub struct CompareCmd {
    /// Run folders (holding evaluate/report.json), evaluate --out folders or report.json files,
    /// two or more; NAME=PATH names a run (default: its folder's name); PATH@smooth=A takes
    /// the per-era corr of that report's `evaluate --smooth` weight A.
    #[arg(required = true, value_name = "RUN_OR_REPORT")]
    inputs: Vec<String>,
    /// Output folder: compare.json, compare.md, plots/cumulative_difference.png.
    #[arg(long)]
    out: PathBuf,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = Int::new(10_000))]
    resamples: Int<100, 1_000_000>,
    /// Consecutive eras per bootstrap block (a 20-day target spans 4 weekly eras; 1 treats eras as independent).
    #[arg(long, default_value_t = Int::new(4))]
    block_eras: Int<1, 520>,
    /// Seed of the bootstrap (the same seed gives the same intervals).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct BlendCmd {
    /// Run folders, train --out folders or predictions files, two or more; PATH@W weighs one
    /// (default 1; shares are the weights over their sum).
    #[arg(required = true, num_args = 2.., value_name = "RUN[@W]")]
    inputs: Vec<signalkit::blend::BlendInput>,
    /// Output folder: predictions.parquet (score it with evaluate --predictions) and blend.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportanceCmd {
    #[command(flatten)]
    input: ModelInput,
    /// Output folder: importance.json, importance.md, plots/importance.png.
    #[arg(long)]
    out: PathBuf,
    /// Features in the table and plot; permutation importance (MDA) is computed for this many
    /// features by gain, and for every group.
    #[arg(long, default_value_t = Int::new(20))]
    top: Int<1, 100_000>,
}

#[derive(Args)]
pub struct RunCmd {
    /// TOML config (see signalkit.example.toml); relative paths are from its folder.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Encoder: hub id (e.g. ProsusAI/finbert) or local folder [default: the tiny fixture].
    #[arg(long)]
    model: Option<String>,
    /// Run folder [default: runs/sample].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct SampleCmd {
    /// Folder to write targets.csv and headlines.csv into.
    #[arg(long)]
    out: PathBuf,
    /// Number of tickers (1 to 20000).
    #[arg(long, default_value_t = Int::new(signalkit::SampleOptions::default().tickers as u64))]
    tickers: Int<1, 20_000>,
    /// Number of weekly eras (1 to 2600, fifty years).
    #[arg(long, default_value_t = Int::new(signalkit::SampleOptions::default().fridays as u64))]
    fridays: Int<1, 2600>,
    /// Random seed (same seed, same files).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Where the Numerai API is and which API key to use.
#[derive(Args)]
struct ApiOpts {
    /// GraphQL endpoint [default: $NUMERAI_API_URL, else https://api-tournament.numer.ai].
    #[arg(long)]
    api_url: Option<String>,
    /// Credentials file with public_id = "..." and secret_key = "..." lines, mode 600
    /// [default: $NUMERAI_PUBLIC_ID + $NUMERAI_SECRET_KEY, else ~/.numerai/credentials].
    #[arg(long)]
    credentials: Option<PathBuf>,
}

impl ApiOpts {
    fn args(self) -> signalkit::numerai::ApiArgs {
        signalkit::numerai::ApiArgs { api_url: self.api_url, credentials: self.credentials }
    }
}

#[derive(Args)]
pub struct DatasetsCmd {
    /// Round number [default: the current round].
    #[arg(long)]
    round: Option<Int<1, 1_000_000>>,
    #[command(flatten)]
    api: ApiOpts,
}

#[derive(Args)]
pub struct DownloadCmd {
    /// Dataset file name as listed by `signalkit datasets`, e.g. signals/v2.1/live.parquet.
    filename: String,
    /// Folder to write into (the file keeps its base name, e.g. DIR/live.parquet).
    #[arg(long)]
    out: PathBuf,
    /// Round number [default: the current round].
    #[arg(long)]
    round: Option<Int<1, 1_000_000>>,
    #[command(flatten)]
    api: ApiOpts,
}

#[derive(Args)]
pub struct SubmitCmd {
    /// Submission file (CSV or parquet): one ticker column and a signal column.
    file: PathBuf,
    /// Your Signals model's name on numer.ai.
    #[arg(long)]
    model_name: String,
    /// This week's live universe (signals/v2.1/live.parquet) to check the tickers against.
    #[arg(long)]
    universe: Option<PathBuf>,
    /// Validate and print what would be sent; no network call.
    #[arg(long)]
    dry_run: bool,
    /// Upload even when churn (≥ 0.15) or turnover (≥ 0.25) against the model's last five
    /// uploads would set its stake to zero.
    #[arg(long)]
    allow_churn: bool,
    /// Upload history: what was sent, kept to compute churn next week
    /// [default: $SIGNALKIT_HISTORY, else ~/.numerai/signalkit-history].
    #[arg(long, value_name = "DIR")]
    history: Option<PathBuf>,
    /// Signals v2.1 neutralizer file: the churn gate adds turnover and neutral churn (its
    /// latest date stands in for the live week, which Numerai publishes none for).
    #[arg(long, requires = "sample_weights")]
    neutralizers: Option<PathBuf>,
    /// Signals v2.1 sample weights matching --neutralizers.
    #[arg(long, requires = "neutralizers")]
    sample_weights: Option<PathBuf>,
    #[command(flatten)]
    api: ApiOpts,
}

#[derive(Args)]
pub struct DiagnosticsCmd {
    /// Validation predictions (ticker, date, prediction or signal), e.g. predict --all-eras's
    /// output; ranked per era and written with a `date` column before the upload.
    #[arg(required_unless_present = "id")]
    predictions: Option<PathBuf>,
    /// Fetch an earlier diagnostics run by id instead of uploading.
    #[arg(long, conflicts_with = "predictions")]
    id: Option<String>,
    /// Your Signals model's name on numer.ai.
    #[arg(long)]
    model_name: String,
    /// Output folder: diagnostics-upload.csv, report.json, report.md.
    #[arg(long)]
    out: PathBuf,
    /// Seconds between status checks.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    poll_seconds: f64,
    /// Minutes to wait for Numerai before stopping (rerun with --id to fetch it later).
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    wait_minutes: f64,
    #[command(flatten)]
    api: ApiOpts,
}

/// A finite, positive number of seconds or minutes.
fn positive_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e7 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number below 10,000,000")),
    }
}

#[derive(Args)]
pub struct SubmissionsCmd {
    /// Your Signals model's name on numer.ai.
    #[arg(long)]
    model_name: String,
    /// How many recent submissions and rounds to show.
    #[arg(long, default_value_t = Int::new(10))]
    last: Int<1, 1000>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiOpts,
}

impl DiagnosticsCmd {
    /// Uploads (or fetches) diagnostics and prints the summary.
    pub fn run(self) -> Result<()> {
        let args = signalkit::numerai::diagnostics::DiagnosticsArgs {
            api: self.api.args(),
            predictions: self.predictions,
            id: self.id,
            model_name: self.model_name,
            out: self.out,
            poll: std::time::Duration::from_secs_f64(self.poll_seconds),
            wait: std::time::Duration::from_secs_f64(self.wait_minutes * 60.0),
        };
        let r = signalkit::numerai::diagnostics::diagnostics(&args, true).context("diagnostics failed")?;
        let summary: Vec<String> = r.summary.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        println!("diagnostics {} {}: {} eras; {}", r.id, r.status, r.per_era.len(), summary.join(", "));
        println!("→ {}", args.out.join("report.md").display());
        Ok(())
    }
}

impl SubmissionsCmd {
    /// Lists the model's submissions and round scores.
    pub fn run(self) -> Result<()> {
        let r = signalkit::numerai::performance::submissions(&self.api.args(), &self.model_name, self.last.usize())
            .context("submissions failed")?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            print!("{r}");
        }
        Ok(())
    }
}

impl HeadlineCols {
    /// The data settings these flags give for `headlines`.
    fn data(self, headlines: PathBuf) -> DataConfig {
        DataConfig {
            headlines,
            ticker_col: self.ticker_col,
            time_col: self.time_col,
            text_col: self.text_col,
            timezone: self.timezone.map(|z| z.to_string()),
            ..Default::default()
        }
    }
}

impl PitOpts {
    /// The data and join settings these flags give for the rows in `targets`.
    fn config(self, targets: PathBuf) -> (DataConfig, JoinConfig) {
        let data = DataConfig {
            targets,
            ticker_map: self.ticker_map,
            ticker_suffix: self.ticker_suffix,
            ..self.cols.data(self.headlines)
        };
        (data, self.join)
    }
}

impl JoinCmd {
    /// Joins and prints the summary.
    pub fn run(self) -> Result<()> {
        let (data, join) = self.pit.config(self.targets);
        let args = data.join_args(&join, self.out)?;
        let summary = signalkit::join_files(&args).context("join failed")?;
        println!("join: {summary} → {} ({})", args.out.display(), summary.seconds);
        Ok(())
    }
}

impl FeaturesCmd {
    /// Builds the feature table and prints the summary.
    pub fn run(self) -> Result<()> {
        let args = signalkit::FeatureArgs {
            rows: self.rows,
            restated: self.pit.restated(),
            store: self.store,
            encoder: signalkit::encode::store::StoreQuery {
                id: self.model,
                fingerprint: self.fingerprint,
                dtype: self.dtype,
                max_len: self.max_len.map(Int::usize),
            },
            out: self.out,
            pca: PcaOption::choose(self.pca.map(Int::usize), self.pca_fit_until, self.pca_from),
            ask_store: self.ask_store,
        };
        let args = match &self.like {
            Some(model) => signalkit::features::like_model(model)?.under(args)?,
            None => args,
        };
        let s = signalkit::build_features(&args).context("features failed")?;
        println!("features: {s} → {}", args.out.display());
        Ok(())
    }
}

impl EncodeCmd {
    /// Encodes the headlines into the store and prints the summary.
    pub fn run(self) -> Result<()> {
        let mut args = self.encode.encode_args(&self.cols.data(self.headlines))?;
        args.shard = self.sharding.resolve().context("encode failed")?;
        let s = signalkit::encode_files(&args).context("encode failed")?;
        if s.embeddings_only {
            println!("note: {} has no classification head: embeddings only (no probabilities)", s.model);
        }
        println!("encode: {s}");
        Ok(())
    }
}

impl AskCmd {
    /// Answers every (headline, question) the store lacks and prints the summary.
    pub fn run(self) -> Result<()> {
        let data = self.cols.data(self.headlines);
        let mut args = self.ask.ask_args(&data, self.store).context("ask failed")?;
        args.shard = self.sharding.resolve().context("ask failed")?;
        args.prefix_cache = !self.no_prefix_cache;
        args.gguf = self.gguf;
        let s = signalkit::ask::ask_files(&args).context("ask failed")?;
        println!("ask: {s} → {}", args.store.display());
        Ok(())
    }
}

impl SampleCmd {
    /// Writes the synthetic universe and prints what it holds.
    pub fn run(self) -> Result<()> {
        let opts = signalkit::SampleOptions {
            tickers: self.tickers.usize(),
            fridays: self.fridays.usize(),
            seed: self.seed,
            ..Default::default()
        };
        let s = signalkit::write_sample(&self.out, &opts).context("sample failed")?;
        println!("sample: {s} → {}", self.out.display());
        Ok(())
    }
}

impl TrainCmd {
    /// The config file's [train] table (or the defaults) with these flags over it.
    fn config(&self) -> Result<signalkit::train::TrainConfig> {
        let mut cfg = match &self.config {
            Some(p) => Config::read(p)?.train,
            None => Default::default(),
        };
        cfg.target = self.target.clone().unwrap_or(cfg.target);
        cfg.train_until = self.train_until.clone().or(cfg.train_until);
        cfg.embargo_eras = self.embargo.unwrap_or(cfg.embargo_eras);
        cfg.early_stopping_rounds = self.early_stopping.or(cfg.early_stopping_rounds);
        cfg.walk_forward = self.walk_forward.or(cfg.walk_forward);
        if let Some(n) = self.num_iterations {
            cfg.params.insert("num_iterations".into(), n.get().into());
        }
        Ok(cfg)
    }

    /// Trains and prints the summary.
    pub fn run(self) -> Result<()> {
        let args = signalkit::train::TrainArgs { config: self.config()?, features: self.features, out: self.out };
        if args.config.walk_forward.is_some() {
            let s = signalkit::train::walk_forward::walk_forward(&args).context("train --walk-forward failed")?;
            println!("{s}");
            return Ok(());
        }
        let s = signalkit::train::train(&args).context("train failed")?;
        println!("train: {s} → {}", s.model.display());
        Ok(())
    }
}

impl PredictCmd {
    /// Predicts and prints what was written.
    pub fn run(self) -> Result<()> {
        let args = signalkit::train::PredictArgs {
            model: self.input.model,
            features: self.input.features,
            out: self.out,
            latest_only: !self.all_eras,
            smooth: self.smooth.map(Share::get),
            smooth_with: self.smooth_with,
        };
        let s = signalkit::train::predict(&args).context("predict failed")?;
        println!("predict: {s} → {}", args.out.display());
        Ok(())
    }
}

impl EvaluateCmd {
    /// Scores the predictions and prints the summary.
    pub fn run(self) -> Result<()> {
        let mut args = signalkit::evaluate::EvaluateArgs::new(self.predictions, self.targets, self.out);
        args.target = self.target;
        args.model = self.model;
        args.features = self.features;
        args.benchmark = self.benchmark;
        args.smooth = self.smooth.into_iter().map(Share::get).collect();
        args.neutralizers = self.neutralizers;
        args.sample_weights = self.sample_weights;
        args.meta_model = self.meta_model;
        args.universe = self.universe;
        args.knowledge_cutoff = self.knowledge_cutoff;
        let r = signalkit::evaluate::evaluate(&args).context("evaluate failed")?;
        if let Some(w) = r.knowledge_cutoff.as_ref().and_then(|c| c.warning.as_ref()) {
            eprintln!("warning: {w}");
        }
        if let Some(w) = r.in_sample_warning() {
            eprintln!("warning: {w}");
        }
        println!("evaluate: numerai_corr ({}) {} → {}", r.scope(), r.summary, args.out.join("report.md").display());
        Ok(())
    }
}

impl CompareCmd {
    /// Compares the runs and prints each pair's verdict.
    pub fn run(self) -> Result<()> {
        use signalkit::evaluate::compare::{Bootstrap, CompareArgs, compare};
        let bootstrap =
            Bootstrap { resamples: self.resamples.usize(), block_eras: self.block_eras.usize(), seed: self.seed };
        let args = CompareArgs { inputs: self.inputs, out: self.out, bootstrap };
        let c = compare(&args).context("compare failed")?;
        eprintln!("warning: {}", c.warning);
        for r in &c.runs {
            println!("{r}");
        }
        c.pairs.iter().for_each(|p| println!("{p}"));
        println!(
            "compare: {} runs on {} shared eras → {}",
            c.runs.len(),
            c.per_era.len(),
            args.out.join("compare.md").display()
        );
        Ok(())
    }
}

impl BlendCmd {
    /// Blends the runs and prints what went in and the evaluate line that scores it.
    pub fn run(self) -> Result<()> {
        let args = signalkit::blend::BlendArgs { inputs: self.inputs, out: self.out };
        let s = signalkit::blend::blend(&args).context("blend failed")?;
        println!("blend: {s} → {}", s.predictions.display());
        println!(
            "score it: signalkit evaluate --predictions {} --targets TARGETS --out {}",
            s.predictions.display(),
            args.out.join("evaluate").display()
        );
        Ok(())
    }
}

impl ImportanceCmd {
    /// Ranks the features by OOS MDA and prints the top ten and the groups.
    pub fn run(self) -> Result<()> {
        let args = signalkit::evaluate::ImportanceArgs {
            model: self.input.model,
            features: self.input.features,
            out: self.out,
            top: self.top.usize(),
        };
        let imp = signalkit::evaluate::importance(&args).context("importance failed")?;
        imp.features.iter().take(10).for_each(|r| println!("{r}"));
        imp.groups.iter().for_each(|r| println!("{r}"));
        println!(
            "importance: {} features, {} groups, on {} OOS eras (shuffle seed {}) → {}",
            imp.features.len(),
            imp.groups.len(),
            imp.eras.len(),
            imp.seed,
            args.out.join("importance.md").display()
        );
        Ok(())
    }
}

impl RunCmd {
    /// Whether the config has a `[finetune]` section (an unreadable config is reported by `run`).
    pub fn fine_tunes(&self) -> bool {
        let cfg = self.config.as_deref().map(Config::read_for_run);
        cfg.is_some_and(|c| c.is_ok_and(|c| c.finetune.is_some()))
    }

    /// Runs the whole chain and prints the out-of-sample summary.
    pub fn run(self) -> Result<()> {
        let mut cfg = match &self.config {
            Some(p) => Config::read_for_run(p)?,
            None if signalkit::config::sample_root().is_none() => anyhow::bail!(
                "the bundled sample (data/sample) is neither in this folder nor beside the binary: run `signalkit run` \
                 from the signalkit repository folder, or pass --config FILE (see signalkit.example.toml)"
            ),
            None => Config::sample(),
        };
        cfg.encode.model = self.model.unwrap_or(cfg.encode.model);
        cfg.out = self.out.unwrap_or(cfg.out);
        let s = signalkit::run::run(&cfg).context("run failed")?;
        let r = &s.report.summary;
        let churn = s.report.churn.as_ref();
        println!(
            "run: out-of-sample numerai_corr mean {:.4}, sharpe {}, max drawdown {:.4} over {} validation eras; {} → {}",
            r.mean,
            r.sharpe_text(2),
            r.max_drawdown,
            r.eras,
            churn_line(churn),
            s.out.display()
        );
        for line in &s.submission {
            println!("{line}");
        }
        if churn.and_then(|c| c.eras_over_limit).is_some_and(|n| n > 0) {
            println!(
                "hint: churn at or over {} against any of the last five submissions sets the stake to zero; \
                 blend with last week's signal (`predict --smooth 0.5`), comparing weights first with \
                 `evaluate --smooth 0.3,0.5,0.7`",
                signalkit::metrics::CHURN_LIMIT
            );
        }
        Ok(())
    }
}

/// The run's churn, each figure with what it compares against ("n/a" where undefined).
fn churn_line(churn: Option<&signalkit::evaluate::ChurnSummary>) -> String {
    let na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
    match churn {
        None => "churn n/a (under two eras)".into(),
        Some(c) => format!(
            "churn mean {} vs the week before, {} eras at or over {} vs any of the five before",
            na(c.mean.map(|m| format!("{m:.3}"))),
            na(c.eras_over_limit.map(|n| n.to_string())),
            signalkit::metrics::CHURN_LIMIT
        ),
    }
}

impl DatasetsCmd {
    /// Prints the dataset files on offer.
    pub fn run(self) -> Result<()> {
        for name in signalkit::numerai::list_datasets(&self.api.args(), self.round.map(|r| r.get() as i64))
            .context("datasets failed")?
        {
            println!("{name}");
        }
        Ok(())
    }
}

impl DownloadCmd {
    /// Downloads one dataset file.
    pub fn run(self) -> Result<()> {
        let path = signalkit::numerai::download_dataset(
            &self.api.args(),
            &self.filename,
            &self.out,
            self.round.map(|r| r.get() as i64),
        )
        .with_context(|| format!("download of {} failed", self.filename))?;
        println!("download: {} → {}", self.filename, path.display());
        Ok(())
    }
}

impl SubmitCmd {
    /// Checks and uploads the submission (or shows what would be sent).
    pub fn run(self) -> Result<()> {
        let args = signalkit::numerai::SubmitArgs {
            file: self.file,
            model_name: self.model_name,
            universe: self.universe,
            dry_run: self.dry_run,
            api: self.api.args(),
            history: self.history,
            allow_churn: self.allow_churn,
            neutralizers: self.neutralizers,
            sample_weights: self.sample_weights,
        };
        println!("{}", signalkit::numerai::submit(&args).context("submit failed")?);
        Ok(())
    }
}

#[derive(Args)]
pub struct StoreCmd {
    #[command(subcommand)]
    command: StoreSubcommand,
}

#[derive(Subcommand)]
pub enum StoreSubcommand {
    /// Union stores into --out (created whole, or an existing store that gains what it lacks):
    /// refuses stores of different models or questions, and a key whose values differ.
    Merge(StoreMergeCmd),
}

#[derive(Args)]
pub struct StoreMergeCmd {
    /// Output store folder (new, empty, or an existing store of the same models).
    #[arg(long)]
    out: PathBuf,
    /// Source store folders (e.g. the shard stores of `encode --shard` or `ask --shard`).
    #[arg(required = true)]
    sources: Vec<PathBuf>,
}

impl StoreCmd {
    /// Runs the store subcommand.
    pub fn run(self) -> Result<()> {
        match self.command {
            StoreSubcommand::Merge(c) => {
                let s = signalkit::encode::merge::merge(&c.out, &c.sources).context("store merge failed")?;
                println!("store merge: {s}");
                Ok(())
            }
        }
    }
}

#[derive(Args)]
pub struct NewsCmd {
    #[command(subcommand)]
    command: NewsSubcommand,
}

#[derive(Subcommand)]
pub enum NewsSubcommand {
    /// Fetch each source's headlines (--source sec,polygon) for the tickers and days into DIR/<source>/YYYY-MM.parquet
    /// and DIR/headlines.parquet (what `join --headlines` reads); a rerun asks only for what is new.
    Fetch(Box<NewsFetchCmd>),
    /// Per source and ticker in DIR (a `news fetch --out` folder): the days asked, the rows
    /// stored, and the gaps (not available to this key, unknown) with why.
    Status {
        /// The `news fetch --out` folder.
        dir: PathBuf,
    },
}

#[derive(Args)]
pub struct NewsFetchCmd {
    #[command(flatten)]
    news: signalkit::news::NewsConfig,
    /// CSV mapping vendor symbols to Numerai tickers (columns ticker,bloomberg_ticker), as for join.
    #[arg(long)]
    ticker_map: Option<PathBuf>,
    /// Suffix that turns a symbol into a Numerai ticker when no map is given, as for join.
    #[arg(long, default_value = signalkit::data::tickers::DEFAULT_SUFFIX)]
    ticker_suffix: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl NewsCmd {
    /// Runs the news subcommand.
    pub fn run(self) -> Result<()> {
        match self.command {
            NewsSubcommand::Fetch(c) => c.run(),
            NewsSubcommand::Status { dir } => {
                print!("{}", signalkit::news::status(&dir)?);
                Ok(())
            }
        }
    }
}

#[derive(Args)]
pub struct TickersCmd {
    #[command(subcommand)]
    command: TickersSubcommand,
}

#[derive(Subcommand)]
pub enum TickersSubcommand {
    /// Map vendor symbols to the universe's keys with OpenFIGI (keyless at 25 requests a minute;
    /// OPENFIGI_API_KEY for more): writes OUT (ticker,numerai_ticker,composite_figi,exch_code,
    /// name,cik), OUT-stem.unmapped.csv (every symbol not mapped, and why) and the answer cache
    /// OUT-stem.openfigi.json (a rerun asks only for new symbols).
    Map(TickersMapCmd),
}

#[derive(Args)]
pub struct TickersMapCmd {
    /// Numerai's universe: parquet/CSV with numerai_ticker and/or composite_figi (e.g.
    /// signals/v2.1/live.parquet), or legacy bloomberg_ticker.
    #[arg(long)]
    universe: PathBuf,
    /// The map CSV to write.
    #[arg(long)]
    out: PathBuf,
    /// Vendor symbols: AAPL,BRK.B or a file (one per line, or a table with a ticker column)
    /// [default: the universe's tickers on --exch-code].
    #[arg(long)]
    tickers: Option<String>,
    /// OpenFIGI exchange code of the symbols (US: the composite of US exchanges).
    #[arg(long, default_value = "US")]
    exch_code: String,
    /// Add each US symbol's CIK and company name from SEC's company_tickers.json (needs SEC_USER_AGENT).
    #[arg(long)]
    sec: bool,
    /// Credentials file (KEY = value lines, mode 600) [default: ~/.signalkit/credentials];
    /// environment variables win over it.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Requests a minute, above 0 and at most 60000 [default: OpenFIGI's limit, 25 keyless, 250 with a key].
    #[arg(long)]
    rate: Option<PerMinute>,
    /// Another base URL for OpenFIGI (and SEC with --sec): a proxy or a test server.
    #[arg(long)]
    base_url: Option<String>,
    /// Tries per request (429, 5xx and dropped connections are retried with backoff).
    #[arg(long, default_value_t = Int::new(5))]
    max_tries: Int<1, 100>,
}

impl TickersCmd {
    /// Runs the tickers subcommand.
    pub fn run(self) -> Result<()> {
        match self.command {
            TickersSubcommand::Map(c) => c.run(),
        }
    }
}

impl TickersMapCmd {
    /// Maps the symbols and prints the summary.
    pub fn run(self) -> Result<()> {
        use signalkit::news::figi::{KEY_ENV, MapArgs, map_tickers};
        use signalkit::news::sec::USER_AGENT_ENV;
        let args = MapArgs {
            universe: self.universe,
            out: self.out,
            tickers: self.tickers.as_deref().map(signalkit::news::read_tickers).transpose()?,
            exch_code: self.exch_code,
            keys: signalkit::news::Keys::discover(self.credentials.as_deref(), &[KEY_ENV, USER_AGENT_ENV])?,
            base_url: self.base_url,
            rate_per_minute: self.rate.map(PerMinute::get),
            retry: signalkit::http::RetryPolicy { max_attempts: self.max_tries.u32(), ..Default::default() },
            sec: self.sec,
        };
        let summary = map_tickers(&args).context("tickers map failed")?;
        println!("{summary}");
        Ok(())
    }
}

impl NewsFetchCmd {
    /// Fetches each source's headlines and prints its summary.
    pub fn run(self) -> Result<()> {
        let rule = DataConfig { ticker_map: self.ticker_map, ticker_suffix: self.ticker_suffix, ..Default::default() }
            .ticker_rule()?;
        for &source in self.news.sources()? {
            let args = self.news.fetch_args(source, rule.clone(), !self.quiet)?;
            let summary =
                signalkit::news::fetch(&args).with_context(|| format!("news fetch from {} failed", source.name()))?;
            println!("{summary}");
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct FinetuneCmd {
    /// Base checkpoint: hub id or local model directory.
    #[arg(long, default_value = DEFAULT_ENCODER)]
    model: String,
    /// Output folder: config.json, model.safetensors, tokenizer files and card.json (rewritten every epoch).
    #[arg(long)]
    out: PathBuf,
    /// Recipe (a): labelled texts (CSV, Parquet or JSON Lines) with columns text,label: a class
    /// name, or 0/1/2 meaning negative/neutral/positive, mapped onto the head's id2label by name.
    #[arg(long, required_unless_present = "rows", conflicts_with = "rows")]
    labelled: Option<PathBuf>,
    /// Recipe (b): rows.parquet from signalkit join; each headline is labelled with the target bin
    /// of the first row that sees it, when that row is in a training era.
    #[arg(long)]
    rows: Option<PathBuf>,
    /// Recipe (b): the headlines file, when it moved since the join (same content).
    #[arg(long, requires = "rows")]
    headlines: Option<PathBuf>,
    /// Recipe (b): target column [default: target_20d_factor_neutral, alias target_factor_neutral_20].
    #[arg(long, requires = "rows")]
    target: Option<String>,
    /// Recipe (b): train on eras up to this date (YYYY-MM-DD) instead of data_type == train.
    #[arg(long, requires = "rows")]
    train_until: Option<String>,
    /// Recipe (b): eras left out between training and validation, 0 to 520 [default: 4, as train].
    #[arg(long, requires = "rows")]
    embargo: Option<Embargo>,
    /// Recipe (a): classes of a new head, comma-separated (default: the checkpoint's own head).
    #[arg(long, value_delimiter = ',')]
    labels: Option<Vec<String>>,
    #[command(flatten)]
    train: FinetuneConfig,
    /// Maximum tokens per text.
    #[arg(long, default_value_t = EncodeConfig::default().max_len)]
    max_len: Int<1, 8192>,
    /// Train without dropout (the config's rates apply otherwise).
    #[arg(long)]
    no_dropout: bool,
    /// cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value_t = EncodeConfig::default().device)]
    device: String,
}

impl FinetuneCmd {
    pub fn run(self) -> Result<()> {
        signalkit::finetune::check_labels(self.labels.as_deref())?;
        let out = self.out.clone();
        let to = FinetuneTarget {
            model: signalkit::encode::hub::ModelSource::new(&self.model).resolve()?,
            out: self.out.clone(),
            max_len: self.max_len.usize(),
            device: self.device.clone(),
            dropout: !self.no_dropout,
        };
        match self.rows.clone() {
            Some(rows) => self.market(to, rows)?,
            None => self.labelled(to)?,
        }
        println!("wrote {} (encode --model {} loads it)", out.display(), out.display());
        Ok(())
    }

    fn labelled(self, to: FinetuneTarget) -> Result<()> {
        let labelled = self.labelled.expect("clap requires --labelled or --rows");
        let args = self.train.labelled_args(to, labelled, self.labels);
        let s = signalkit::finetune::finetune_labelled(&args, true).context("finetune")?;
        println!("fine-tuned on {} texts ({} held out), classes {:?}", s.train, s.held_out, s.labels);
        print_epochs(&s.epochs);
        Ok(())
    }

    fn market(self, to: FinetuneTarget, rows: PathBuf) -> Result<()> {
        if self.labels.is_some() {
            anyhow::bail!("--labels does not apply to --rows: the classes come from --label-bins (5 or 3)");
        }
        let source = signalkit::finetune::market::LabelSource {
            rows,
            headlines: self.headlines,
            target: self.target.unwrap_or_else(|| signalkit::train::DEFAULT_TARGET.into()),
            bins: self.train.label_bins,
            train_until: self.train_until,
            embargo: self.embargo.unwrap_or(signalkit::train::TrainConfig::default().embargo_eras).u32(),
        };
        let s = signalkit::finetune::finetune_market(&self.train.market(to, source), true).context("finetune")?;
        println!("{s}");
        print_epochs(&s.epochs);
        Ok(())
    }
}

/// One line per epoch: losses, accuracy (absent without held-out texts), speed.
fn print_epochs(epochs: &[signalkit::finetune::EpochMetrics]) {
    for m in epochs {
        let held_out = if m.held_out_loss.is_finite() {
            format!("held-out loss {:.4}, accuracy {:.3}", m.held_out_loss, m.held_out_accuracy)
        } else {
            "no held-out texts (--held-out 0)".into()
        };
        println!("epoch {}: train loss {:.4}, {held_out}, {:.1} texts/s", m.epoch, m.train_loss, m.texts_per_s);
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
