//! The `signalkit` command line: parses arguments and calls one library function per subcommand.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use signalkit::data::headlines::HeadlineOptions;
use signalkit::data::tickers::TickerRule;
use signalkit::data::time::Zone;

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
    /// Write a deterministic synthetic universe (targets.csv, headlines.csv) with planted signal.
    Sample(SampleCmd),
}

#[derive(Args)]
struct JoinCmd {
    /// Numerai rows: legacy historical_targets (CSV/parquet) or Signals v2 parquet.
    #[arg(long)]
    targets: PathBuf,
    /// Headlines: CSV, Parquet or JSON Lines.
    #[arg(long)]
    headlines: PathBuf,
    /// Output parquet: the rows as given plus the latest visible headline and counts.
    #[arg(long)]
    out: PathBuf,
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
    /// Time zone of naive timestamps in the headlines (IANA name, UTC, or +05:30).
    #[arg(long)]
    timezone: Option<Zone>,
    /// Headline ticker column.
    #[arg(long, default_value = "ticker")]
    ticker_col: String,
    /// Headline publication-time column [default: published_at, else published_date].
    #[arg(long)]
    time_col: Option<String>,
    /// Headline text column.
    #[arg(long, default_value = "headline")]
    text_col: String,
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

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Join(c) => {
            let tickers = match &c.ticker_map {
                Some(p) => TickerRule::from_map_file(p)?,
                None => TickerRule::Suffix(c.ticker_suffix.clone()),
            };
            let args = signalkit::JoinArgs {
                targets: c.targets,
                headlines: c.headlines,
                out: c.out,
                window: signalkit::Window { days: c.window_days, cutoff_hours: c.cutoff_hours },
                tickers,
                headline_options: HeadlineOptions {
                    ticker_column: c.ticker_col,
                    time_column: c.time_col,
                    text_column: c.text_col,
                    zone: c.timezone,
                },
            };
            let summary = signalkit::join_files(&args).context("join failed")?;
            println!("join: {summary} → {} ({})", args.out.display(), summary.seconds);
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
    }
    Ok(())
}
