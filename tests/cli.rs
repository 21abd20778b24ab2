//! The binary end to end: `sample` then `join`, the planted signal, and the shared real data.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;

fn join(dir: &Path, targets: &Path, headlines: &Path, extra: &[&str]) -> (String, polars::prelude::DataFrame) {
    let out = dir.join(format!("rows{}.parquet", extra.join("")));
    let mut args = vec!["join", "--targets", targets.to_str().unwrap(), "--headlines", headlines.to_str().unwrap()];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    let printed = signalkit(&args).run().ok().stdout;
    (printed, read_parquet(&out))
}

/// A word list standing in for a sentiment model: +1, −1 or 0 for a headline.
fn lexicon(text: &str) -> f64 {
    const UP: [&str; 16] = [
        "beats",
        "jump",
        "wins",
        "record",
        "buyback",
        "approval",
        "raise",
        "expands",
        "partnership",
        "upgraded",
        "surges",
        "cheer",
        "rally",
        "gains",
        "high",
        "past forecasts",
    ];
    const DOWN: [&str; 16] = [
        "misses",
        "fall",
        "probe",
        "warns",
        "loses",
        "suspends",
        "slash",
        "recalls",
        "lawsuit",
        "downgraded",
        "loss",
        "resigns",
        "slump",
        "tumbles",
        "sink",
        "losses",
    ];
    let t = text.to_lowercase();
    (UP.iter().any(|w| t.contains(w)) as i32 - DOWN.iter().any(|w| t.contains(w)) as i32) as f64
}

/// Mean over eras of the Pearson correlation between the lexicon score and the target.
fn mean_era_corr(df: &polars::prelude::DataFrame) -> f64 {
    let eras: Vec<i64> = df.column("friday_date").unwrap().i64().unwrap().iter().map(Option::unwrap).collect();
    let target: Vec<Option<f64>> = df.column("target_20d_factor_neutral").unwrap().f64().unwrap().iter().collect();
    let score: Vec<f64> = strs(df, "headline").iter().map(|h| h.as_deref().map_or(0.0, lexicon)).collect();
    let mut by_era: HashMap<i64, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for i in 0..eras.len() {
        if let Some(t) = target[i] {
            let e = by_era.entry(eras[i]).or_default();
            e.0.push(score[i]);
            e.1.push(t);
        }
    }
    let corr = |x: &[f64], y: &[f64]| {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    };
    let cs: Vec<f64> = by_era.values().map(|(s, t)| corr(s, t)).filter(|c| c.is_finite()).collect();
    cs.iter().sum::<f64>() / cs.len() as f64
}

#[test]
fn sample_is_deterministic_and_carries_signal_but_catches_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let printed = signalkit(["sample", "--out", d.join("a").to_str().unwrap()]).run().ok().stdout;
    assert!(printed.contains("published after their Friday"), "{printed}");
    signalkit(["sample", "--out", d.join("b").to_str().unwrap()]).run().ok();
    for f in ["targets.csv", "headlines.csv"] {
        assert_eq!(
            std::fs::read(d.join("a").join(f)).unwrap(),
            std::fs::read(d.join("b").join(f)).unwrap(),
            "{f} differs"
        );
    }
    let (t, h) = (d.join("a/targets.csv"), d.join("a/headlines.csv"));
    let (printed, honest) = join(d, &t, &h, &[]);
    assert!(printed.contains("with a headline") && printed.contains("duplicates dropped"), "{printed}");
    let n_targets = std::fs::read_to_string(&t).unwrap().lines().count() - 1;
    assert_eq!(honest.height(), n_targets, "one output row per target row");
    let (_, leaky) = join(d, &t, &h, &["--cutoff-hours", "96"]);
    let (c_honest, c_leaky) = (mean_era_corr(&honest), mean_era_corr(&leaky));
    println!("lexicon mean era corr: honest {c_honest:.4}, leaky {c_leaky:.4}");
    assert!(c_honest > 0.01, "the honest join should see real signal: {c_honest}");
    assert!(c_leaky > c_honest + 0.1, "a leaky join must score clearly higher: {c_leaky} vs {c_honest}");
}

#[test]
fn shipped_sample_matches_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    signalkit(["sample", "--out", dir.path().to_str().unwrap()]).run().ok();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    for f in ["targets.csv", "headlines.csv"] {
        assert!(
            std::fs::read(shipped.join(f)).unwrap() == std::fs::read(dir.path().join(f)).unwrap(),
            "data/sample/{f} is stale: regenerate with `signalkit sample --out data/sample`"
        );
    }
}

#[test]
fn bad_input_exits_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(dir.path(), "t.csv", "bloomberg_ticker,friday_date\nAAPL US,20240301\n");
    let h = write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-02-28 10:00:00,naive\n");
    let out = signalkit(["join", "--targets", t.to_str().unwrap(), "--headlines", h.to_str().unwrap(), "--out"])
        .arg(dir.path().join("o.parquet"))
        .run();
    let err = &out.stderr;
    assert!(!out.success());
    assert!(err.contains("h.csv: row 1, column 'published_at'") && err.contains("--timezone"), "{err}");
    assert!(!dir.path().join("o.parquet").exists());
}

#[test]
#[ignore = "needs ../shared/data/real-2011-2013 (not in the repository): cargo test --release -- --ignored"]
fn real_2011_2013() {
    let real =
        real_data().expect("../shared/data/real-2011-2013/targets.parquet not found: this test needs the real data");
    let dir = tempfile::tempdir().unwrap();
    let (printed, rows) = join(dir.path(), &real.join("targets.parquet"), &real.join("headlines.parquet"), &[]);
    println!("real data: {printed}");
    let targets = read_parquet(&real.join("targets.parquet"));
    assert_eq!(rows.height(), targets.height(), "one output row per target row");
    // No lookahead: every chosen headline is dated strictly before its row's Friday.
    let fridays: Vec<i64> = rows.column("friday_date").unwrap().i64().unwrap().iter().map(Option::unwrap).collect();
    let published = rows.column("headline_published_at").unwrap().datetime().unwrap().physical().clone();
    let mut with = 0;
    for (f, p) in fridays.iter().zip(published.iter()) {
        if let Some(p) = p {
            with += 1;
            let day = chrono::DateTime::from_timestamp_micros(p).unwrap().date_naive();
            let friday = chrono::NaiveDate::parse_from_str(&f.to_string(), "%Y%m%d").unwrap();
            assert!(day < friday, "headline of {day} shown to the row of {friday}");
        }
    }
    let share = with as f64 / rows.height() as f64;
    println!("real data: {:.1}% of rows have a headline", 100.0 * share);
    assert!(share > 0.05, "suspiciously few rows matched: {share}");
}

/// `signalkit env` names the CPU, its ISA flags and the kernel each stage and dtype runs on, and
/// follows `SIGNALKIT_ONEDNN=off` and oneDNN's own ISA cap.
#[test]
fn env_names_the_cpu_and_each_kernel_path() {
    let text = signalkit(["env"]).run().ok().stdout;
    for key in [
        "cpu: ",
        "isa: ",
        "cores: ",
        "threads: ",
        "onednn: ",
        "encode f32: ",
        "encode bf16: ",
        "ask f32: ",
        "ask bf16: ",
        "finetune: ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(key)), "no {key:?} line in:\n{text}");
    }
    let off = signalkit(["env"]).env("SIGNALKIT_ONEDNN", "off").run().ok().stdout;
    assert!(off.contains("onednn: not loaded") && off.contains("encode f32: candle's matmul"), "{off}");
    assert!(off.contains("ask f32: candle's matmul") && off.contains("ask bf16: candle's matmul"), "{off}");
    assert!(off.contains("finetune: candle's matmul"), "{off}");
    // The same cap moves ask's own kernels to their AVX2 (or baseline) build.
    let base = signalkit(["env"]).env("ONEDNN_MAX_CPU_ISA", "SSE41").run().ok().stdout;
    assert!(base.contains("on signalkit's baseline kernels"), "{base}");
    if text.contains(" avx2 fma ") || text.contains("isa: avx2 fma") {
        let avx2 = signalkit(["env"]).env("ONEDNN_MAX_CPU_ISA", "AVX2").run().ok().stdout;
        assert!(avx2.contains("on signalkit's AVX2 kernels"), "{avx2}");
    }
    if text.contains("onednn: oneDNN") {
        assert!(text.contains("ask f32: oneDNN") && !text.contains("ask, finetune"), "{text}");
        assert!(text.contains("finetune: oneDNN f32, linear layers forward"), "{text}");
        let avx2 = signalkit(["env"]).env("ONEDNN_MAX_CPU_ISA", "AVX2").run().ok().stdout;
        assert!(avx2.contains("onednn isa cap: AVX2") && !avx2.contains("avx512_core"), "{avx2}");
    } else {
        eprintln!("SKIPPED the oneDNN half: oneDNN is not installed (bash scripts/setup.sh installs it)");
    }
}
