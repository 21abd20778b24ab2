//! The `signalkit` command line: parses the arguments and hands each subcommand to the
//! function in `cli` that runs it.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};

fn main() -> Result<()> {
    quiet_candle_workers();
    match Cli::parse().command {
        Command::Join(c) => c.run(),
        Command::Encode(c) => c.run(),
        Command::Ask(c) => c.run(),
        Command::Store(c) => c.run(),
        Command::Features(c) => c.run(),
        Command::Finetune(c) => c.run(),
        Command::Sample(c) => c.run(),
        Command::Train(c) => c.run(),
        Command::Predict(c) => c.run(),
        Command::Evaluate(c) => c.run(),
        Command::Compare(c) => c.run(),
        Command::Importance(c) => c.run(),
        Command::Run(c) => c.run(),
        Command::Datasets(c) => c.run(),
        Command::Download(c) => c.run(),
        Command::Submit(c) => c.run(),
        Command::Diagnostics(c) => c.run(),
        Command::Submissions(c) => c.run(),
        Command::News(c) => c.run(),
        Command::Tickers(c) => c.run(),
        Command::Env(c) => c.run(),
    }
}

/// candle's element-wise worker threads spin 25,000 times before sleeping, taking a core from the
/// matmul threads between every small op; a short spin measured faster on 2-core machines
/// (scripts/bench/bench-encode.sh). oneDNN's OpenMP threads (libgomp) likewise spin after each
/// matmul, taking the cores candle's ops in between need: they wait passively (`ask` on 2 cores
/// used half the CPU time, docs/benchmarks.md). A value the user sets is kept.
fn quiet_candle_workers() {
    for (var, value) in [("CANDLE_BARRIER_POOL_SPIN_LIMIT", "100"), ("OMP_WAIT_POLICY", "passive")] {
        if std::env::var_os(var).is_none() {
            // SAFETY: called first thing in main, before any thread is started.
            unsafe { std::env::set_var(var, value) };
        }
    }
}
