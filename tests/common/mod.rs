//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod mock;

use std::path::{Path, PathBuf};

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

/// The shared real data folder, if present.
pub fn real_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-2011-2013");
    p.join("targets.parquet").exists().then_some(p)
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

/// Runs the built `signalkit` binary with `args`, with `env` set (and the Numerai variables of
/// the caller's environment removed); returns whether it succeeded and stdout + stderr.
pub fn signalkit_run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signalkit"));
    cmd.args(args);
    for k in ["NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "NUMERAI_API_URL", "SIGNALKIT_HISTORY", "RUST_BACKTRACE"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
