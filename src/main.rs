//! The `signalkit` command line: parses arguments and calls one library function per subcommand.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use signalkit::data::headlines::HeadlineOptions;
use signalkit::data::tickers::TickerRule;
use signalkit::data::time::Zone;
use signalkit::encode::hub::ModelSource;

#[derive(Parser)]
#[command(name = "signalkit", version, about = "Turn financial news into Numerai Signals", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Join headlines to Numerai rows point-in-time: each row sees only news published strictly
    /// before its cutoff and within the look-back window.
    Join(JoinCmd),
    /// Encode headlines with a BERT-family model (FinBERT by default) into a resumable store:
    /// class probabilities, sentiment and the [CLS] embedding per distinct text.
    Encode(EncodeCmd),
    /// Build the feature table: the joined rows plus the latest headline's probabilities,
    /// sentiment and [CLS] embedding, and sentiment aggregates over the window.
    Features(FeaturesCmd),
    /// Write a deterministic synthetic universe (targets.csv, headlines.csv) with planted signal.
    Sample(SampleCmd),
    /// List the Signals dataset files Numerai offers (this round, or --round N).
    Datasets(DatasetsCmd),
    /// Download a Signals dataset file (e.g. signals/v2.1/live.parquet) into a folder.
    Download(DownloadCmd),
    /// Check a submission against every Signals rule, then upload it for a model (or --dry-run).
    Submit(SubmitCmd),
}

#[derive(Args)]
struct JoinCmd {
    /// Numerai rows: legacy historical_targets (CSV/parquet) or Signals v2 parquet.
    #[arg(long)]
    targets: PathBuf,
    /// Output parquet: the rows as given plus the latest visible headline and counts.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pit: PitOpts,
}

/// The point-in-time options: the join and the feature stage must be given the same ones.
#[derive(Args)]
struct PitOpts {
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    /// Look-back window in days.
    #[arg(long, default_value_t = 30)]
    window_days: u32,
    /// Cutoff = Friday 00:00 UTC plus this many hours (21 = US close; negative allowed).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    cutoff_hours: f64,
    /// CSV mapping headline tickers to row tickers (columns ticker,bloomberg_ticker).
    #[arg(long)]
    ticker_map: Option<PathBuf>,
    /// Suffix that turns a headline ticker into a row ticker when no map is given.
    #[arg(long, default_value = " US")]
    ticker_suffix: String,
    #[command(flatten)]
    cols: HeadlineCols,
}

impl PitOpts {
    fn window(&self) -> signalkit::Window {
        signalkit::Window { days: self.window_days, cutoff_hours: self.cutoff_hours }
    }

    fn tickers(&self) -> Result<TickerRule> {
        Ok(match &self.ticker_map {
            Some(p) => TickerRule::from_map_file(p)?,
            None => TickerRule::Suffix(self.ticker_suffix.clone()),
        })
    }
}

#[derive(Args)]
struct FeaturesCmd {
    /// The output of signalkit join.
    #[arg(long)]
    rows: PathBuf,
    /// Store folder filled by signalkit encode.
    #[arg(long)]
    store: PathBuf,
    /// Which model's outputs, as given to encode [default: the only model in the store].
    #[arg(long)]
    model: Option<String>,
    /// Output parquet: the rows plus the features.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    pit: PitOpts,
}

/// How to read a headlines file (shared by join, encode and features).
#[derive(Args)]
struct HeadlineCols {
    /// Headline ticker column.
    #[arg(long, default_value = "ticker")]
    ticker_col: String,
    /// Headline publication-time column [default: published_at, else published_date].
    #[arg(long)]
    time_col: Option<String>,
    /// Headline text column.
    #[arg(long, default_value = "headline")]
    text_col: String,
    /// Time zone of naive timestamps in the headlines (IANA name, UTC, or +05:30).
    #[arg(long)]
    timezone: Option<Zone>,
}

impl HeadlineCols {
    fn options(self) -> HeadlineOptions {
        HeadlineOptions {
            ticker_column: self.ticker_col,
            time_column: self.time_col,
            text_column: self.text_col,
            zone: self.timezone,
        }
    }
}

#[derive(Args)]
struct EncodeCmd {
    /// Hub id (downloaded into the Hugging Face cache) or a local model directory.
    #[arg(long, default_value = "ProsusAI/finbert")]
    model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, default_value = "main")]
    revision: String,
    /// Never touch the network: read the model from the Hugging Face cache (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    offline: bool,
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    /// Store folder (created if missing; re-runs encode only what it lacks).
    #[arg(long)]
    store: PathBuf,
    /// cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Headlines per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Maximum tokens per headline (FinBERT was fine-tuned with 64).
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    /// Headlines per shard: the most a killed run can lose.
    #[arg(long, default_value_t = 4096)]
    shard_size: usize,
    #[command(flatten)]
    cols: HeadlineCols,
}

#[derive(Args)]
struct SampleCmd {
    /// Folder to write targets.csv and headlines.csv into.
    #[arg(long)]
    out: PathBuf,
    /// Number of tickers.
    #[arg(long, default_value_t = 250)]
    tickers: usize,
    /// Number of weekly eras.
    #[arg(long, default_value_t = 150)]
    fridays: usize,
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
struct DatasetsCmd {
    /// Round number [default: the current round].
    #[arg(long)]
    round: Option<i64>,
    #[command(flatten)]
    api: ApiOpts,
}

#[derive(Args)]
struct DownloadCmd {
    /// Dataset file name as listed by `signalkit datasets`, e.g. signals/v2.1/live.parquet.
    filename: String,
    /// Folder to write into (the file keeps its base name, e.g. DIR/live.parquet).
    #[arg(long)]
    out: PathBuf,
    /// Round number [default: the current round].
    #[arg(long)]
    round: Option<i64>,
    #[command(flatten)]
    api: ApiOpts,
}

#[derive(Args)]
struct SubmitCmd {
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
    #[command(flatten)]
    api: ApiOpts,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Join(c) => {
            let args = signalkit::JoinArgs {
                targets: c.targets,
                out: c.out,
                window: c.pit.window(),
                tickers: c.pit.tickers()?,
                headlines: c.pit.headlines,
                headline_options: c.pit.cols.options(),
            };
            let summary = signalkit::join_files(&args).context("join failed")?;
            println!("join: {summary} → {} ({})", args.out.display(), summary.seconds);
        }
        Command::Features(c) => {
            let args = signalkit::FeatureArgs {
                rows: c.rows,
                window: c.pit.window(),
                tickers: c.pit.tickers()?,
                headlines: c.pit.headlines,
                headline_options: c.pit.cols.options(),
                store: c.store,
                model: c.model,
                out: c.out,
            };
            let s = signalkit::build_features(&args).context("features failed")?;
            println!(
                "features: {} rows ({} with a headline), {} features from {} → {}",
                s.rows,
                s.with_headline,
                s.features,
                s.model,
                args.out.display()
            );
        }
        Command::Encode(c) => {
            let mut source = ModelSource::new(&c.model);
            source.revision = c.revision;
            source.offline |= c.offline;
            let args = signalkit::EncodeArgs {
                source,
                headlines: c.headlines,
                headline_options: c.cols.options(),
                store: c.store,
                device: c.device,
                batch_size: c.batch_size,
                max_len: c.max_len,
                shard_size: c.shard_size,
                progress: true,
            };
            let s = signalkit::encode_files(&args).context("encode failed")?;
            if s.embeddings_only {
                println!("note: {} has no classification head: embeddings only (no probabilities)", s.model);
            }
            println!("encode: {s}");
        }
        Command::Sample(c) => {
            let opts =
                signalkit::SampleOptions { tickers: c.tickers, fridays: c.fridays, seed: c.seed, ..Default::default() };
            let s = signalkit::write_sample(&c.out, &opts).context("sample failed")?;
            println!(
                "sample: {} rows, {} headlines ({} published after their Friday) → {}",
                s.rows,
                s.headlines,
                s.after_friday,
                c.out.display()
            );
        }
        Command::Datasets(c) => {
            for name in signalkit::numerai::list_datasets(&c.api.args(), c.round).context("datasets failed")? {
                println!("{name}");
            }
        }
        Command::Download(c) => {
            let path = signalkit::numerai::download_dataset(&c.api.args(), &c.filename, &c.out, c.round)
                .with_context(|| format!("download of {} failed", c.filename))?;
            println!("download: {} → {}", c.filename, path.display());
        }
        Command::Submit(c) => {
            let args = signalkit::numerai::SubmitArgs {
                file: c.file,
                model_name: c.model_name,
                universe: c.universe,
                dry_run: c.dry_run,
                api: c.api.args(),
            };
            let outcome = signalkit::numerai::submit(&args).context("submit failed")?;
            println!("{outcome}");
        }
    }
    Ok(())
}
