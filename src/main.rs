//! The `signalkit` command line: parses the arguments and hands each subcommand to the
//! function in `cli` that runs it.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};

fn main() -> Result<()> {
    quiet_candle_workers();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Ask(_)) {
        passive_openmp();
    }
    match cli.command {
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
        Command::Blend(c) => c.run(),
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
/// (scripts/bench/bench-encode.sh). A value the user sets is kept.
fn quiet_candle_workers() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: called first thing in main, before any thread is started.
        unsafe { std::env::set_var(VAR, "100") };
    }
}

/// `ask`: oneDNN's OpenMP threads spin after each matmul, taking the cores candle's ops in
/// between (attention, norms) need; waiting passively halved ask's CPU time on 2 cores
/// (docs/benchmarks.md). libgomp (linked for LightGBM) reads `OMP_WAIT_POLICY` as the program
/// loads, before `main`, so the process starts itself again with it set. A value the user sets is
/// kept; other commands keep libgomp's default (LightGBM's many short parallel loops).
fn passive_openmp() {
    const VAR: &str = "OMP_WAIT_POLICY";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    // SAFETY: called in main before any thread is started.
    unsafe { std::env::set_var(VAR, "passive") };
    #[cfg(unix)]
    if let Ok(exe) = std::env::current_exe() {
        use std::os::unix::process::CommandExt;
        // Only returns on failure: then ask runs on with libgomp's default.
        let _ = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
    }
}
