//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod mock;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};

use polars::prelude::*;

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes a frame as parquet to `dir/name`.
pub fn write_parquet(dir: &Path, name: &str, mut df: DataFrame) -> PathBuf {
    let p = dir.join(name);
    ParquetWriter::new(std::fs::File::create(&p).unwrap()).finish(&mut df).unwrap();
    p
}

/// Reads a parquet file.
pub fn read_parquet(p: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(p).unwrap()).finish().unwrap()
}

/// A string column as owned optional strings.
pub fn strs(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    df.column(col).unwrap().str().unwrap().iter().map(|s| s.map(str::to_string)).collect()
}

/// `name` under data/fixtures, the one root of the test fixtures (tiny checkpoints, reference
/// numbers, metrics cases).
pub fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures").join(name)
}

/// The shared real data folder, if present.
pub fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-2011-2013");
    p.join("targets.parquet").exists().then_some(p)
}

/// The signalkit binary about to run: arguments and environment, then [`Cli::run`].
pub struct Cli {
    cmd: Command,
    args: Vec<String>,
}

/// `signalkit ARGS`; more arguments and environment may follow before [`Cli::run`].
pub fn signalkit<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Cli {
    Cli { cmd: Command::new(env!("CARGO_BIN_EXE_signalkit")), args: Vec::new() }.args(args)
}

impl Cli {
    /// One more argument.
    pub fn arg(self, arg: impl AsRef<OsStr>) -> Self {
        self.args([arg])
    }

    /// More arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        for a in args {
            self.args.push(a.as_ref().to_string_lossy().into_owned());
            self.cmd.arg(a);
        }
        self
    }

    /// An environment variable for the run.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// An environment variable the run must not inherit.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Without the caller's `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` (messages are compared).
    pub fn no_backtrace(self) -> Self {
        self.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE")
    }

    /// The upload history (`SIGNALKIT_HISTORY`) the run reads and writes, never the user's.
    pub fn history(self, dir: impl AsRef<OsStr>) -> Self {
        self.env("SIGNALKIT_HISTORY", dir)
    }

    /// Runs it to the end.
    pub fn run(mut self) -> Run {
        let out = self.cmd.output().unwrap();
        Run { args: self.args, ..Run::from(out) }
    }

    /// The command itself, for a test that spawns (and kills or races) the process.
    pub fn command(self) -> Command {
        self.cmd
    }
}

/// What a run of signalkit did.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its arguments, for messages.
    pub args: Vec<String>,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Run { status: out.status, stdout: text(&out.stdout), stderr: text(&out.stderr), args: Vec::new() }
    }
}

impl Run {
    /// True when it exited with success.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Standard output, then standard error.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts that it succeeded (showing its output if not).
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.success(),
            "signalkit {:?} failed ({}):\n{}\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that it failed and its output names each of `wanted`.
    #[track_caller]
    pub fn refused(self, wanted: &[&str]) -> Self {
        let text = self.text();
        assert!(!self.success(), "signalkit {:?} should have failed:\n{text}", self.args);
        for w in wanted {
            assert!(text.contains(w), "signalkit {:?}: the message should name {w:?}:\n{text}", self.args);
        }
        self
    }
}

/// The public id, secret and model id the [`numerai_stand_in`] server accepts.
pub const STAND_IN_KEY: (&str, &str) = ("PUBLICID42", "S3CRETxyz987secretKEY");

/// The id of model `mymodel` on the [`numerai_stand_in`] server.
pub const STAND_IN_MODEL_ID: &str = "1b7d7a5e-0000-4000-8000-000000000011";

/// A minimal Numerai API on 127.0.0.1 for `submit`: model `mymodel`, an empty submissions list,
/// the upload auth, the presigned PUT, and `createSignalsSubmission` (ids `sub-0`, `sub-1`, …).
pub fn numerai_stand_in() -> mock::Mock {
    use serde_json::json;
    let created = std::sync::atomic::AtomicUsize::new(0);
    mock::serve(move |req, _, base| {
        if req.method == "PUT" {
            return mock::Reply::Text(200, String::new());
        }
        let q = req.query();
        let answer = if q.contains("account") {
            json!({"account": {"models": [{"id": STAND_IN_MODEL_ID, "name": "mymodel", "tournament": 11}]}})
        } else if q.contains("submissionUploadSignalsAuth") {
            json!({"submissionUploadSignalsAuth": {"filename": "stored.csv", "url": format!("{base}/upload/x")}})
        } else if q.contains("createSignalsSubmission") {
            let n = created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            json!({"createSignalsSubmission": {"id": format!("sub-{n}"), "firstEffectiveDate": "2026-11-27"}})
        } else if q.contains("submissions(") {
            json!({"submissions": []})
        } else {
            return mock::Reply::Text(400, r#"{"errors":[{"message":"unknown query"}]}"#.into());
        };
        mock::ok(json!({ "data": answer }))
    })
}

/// A valid Signals submission file `dir/name`: `n` tickers `T000 US`… with distinct signals.
pub fn submission_file(dir: &Path, name: &str, n: usize) -> PathBuf {
    let rows: Vec<String> = (0..n).map(|i| format!("T{i:03} US,{}", (i as f64 + 0.5) / n as f64)).collect();
    write(dir, name, &format!("numerai_ticker,signal\n{}\n", rows.join("\n")))
}

/// Runs the built `signalkit` binary (through [`signalkit`]) with `args`, with `env` set and the
/// Numerai variables of the caller's environment removed; returns whether it succeeded and
/// stdout + stderr.
pub fn signalkit_run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cli = signalkit(args).no_backtrace();
    for k in ["NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "NUMERAI_API_URL", "SIGNALKIT_HISTORY"] {
        cli = cli.env_remove(k);
    }
    for (k, v) in env {
        cli = cli.env(k, v);
    }
    let r = cli.run();
    (r.success(), r.text())
}

/// A deterministic pseudo-random number in [0, 1) (a hash of `i` and `salt`).
pub fn noise(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(salt.wrapping_mul(1442695040888963407));
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// `ask` of `headlines` with `questions` on the tiny Qwen2 fixture into `dir/store`, on the CPU,
/// `shard_size` answers a shard and `batch_size` prompts a pass.
pub fn ask_args(
    shard_size: usize,
    batch_size: usize,
    dir: &Path,
    headlines: &Path,
    questions: &Path,
) -> signalkit::ask::AskArgs {
    signalkit::ask::AskArgs {
        source: signalkit::encode::hub::ModelSource::new(fixtures("tiny-qwen2").to_str().unwrap()),
        questions: questions.to_path_buf(),
        headlines: headlines.to_path_buf(),
        headline_options: Default::default(),
        store: dir.join("store"),
        device: "cpu".into(),
        shard_size,
        batch_size,
        options: Default::default(),
        shard: None,
        prefix_cache: true,
        gguf: None,
        names: None,
    }
}
