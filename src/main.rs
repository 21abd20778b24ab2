//! The `signalkit` command line: parses the arguments and hands each subcommand to the
//! function in `cli` that runs it.

mod cli;

use anyhow::Result;
use clap::Parser;
use cli::{Cli, Command};

fn main() -> Result<()> {
    quiet_candle_workers();
    let cli = Cli::parse();
    match &cli.command {
        Command::Ask(_) => restart_with(&[PASSIVE_OPENMP]),
        Command::Finetune(_) => restart_with(&FINE_TUNING),
        Command::Run(c) if c.fine_tunes() => restart_with(&FINE_TUNING),
        _ => {}
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

/// `ask` and `finetune`: oneDNN's OpenMP threads spin after each matmul, taking the cores
/// candle's ops in between (attention, norms) need; waiting passively halved ask's CPU time on 2
/// cores, and fine-tuning ran 2.5x faster with it (docs/benchmarks.md).
const PASSIVE_OPENMP: (&str, &str) = ("OMP_WAIT_POLICY", "passive");

/// `finetune`: each training op allocates its output anew; glibc returned those buffers to the
/// kernel and took zeroed pages back every step (a third of the time in page faults), so freed
/// memory is kept for reuse (up to the largest threshold glibc takes, 32 MiB per buffer).
const KEEP_FREED_MEMORY: [(&str, &str); 2] =
    [("MALLOC_MMAP_THRESHOLD_", "33554432"), ("MALLOC_TRIM_THRESHOLD_", "1073741824")];

/// What `finetune` (and `run` with `[finetune]`, where fine-tuning is most of the time) sets.
const FINE_TUNING: [(&str, &str); 3] = [PASSIVE_OPENMP, KEEP_FREED_MEMORY[0], KEEP_FREED_MEMORY[1]];

/// Starts the process again with `vars` set where the user has not set them: libgomp (linked
/// for LightGBM) and glibc's allocator read them as the program loads, before `main`. Other
/// commands keep the defaults (LightGBM's many short parallel loops).
fn restart_with(vars: &[(&str, &str)]) {
    let missing: Vec<_> = vars.iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect();
    if missing.is_empty() {
        return;
    }
    for (k, v) in missing {
        // SAFETY: called in main before any thread is started.
        unsafe { std::env::set_var(k, v) };
    }
    #[cfg(unix)]
    if let Ok(exe) = std::env::current_exe() {
        use std::os::unix::process::CommandExt;
        // Only returns on failure: then the command runs on with the defaults.
        let _ = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
    }
}
