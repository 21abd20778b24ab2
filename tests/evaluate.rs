//! `evaluate`'s payout scores: neutral corr, alpha and meta-model contribution per era, from
//! Signals v2.1-shaped neutralizer and sample-weight files, equal to the numerai-tools formulas
//! (parity-tested in tests/metrics_parity.rs) applied to the rows each era has.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{noise, signalkit, write};
use signalkit::evaluate::{EvaluateArgs, evaluate};
use signalkit::metrics;

const ERAS: [i32; 4] = [20240105, 20240112, 20240119, 20240126];
const TICKERS: usize = 150;

/// One era's synthetic values, per ticker: prediction, target bin, two factors, weight, meta model.
struct Era {
    p: Vec<f64>,
    t: Vec<f64>,
    n: Vec<Vec<f64>>,
    w: Vec<f64>,
    m: Vec<f64>,
}

fn era_values(k: usize) -> Era {
    let r = |salt: u64| (0..TICKERS).map(|i| noise(i + 1000 * k, salt)).collect::<Vec<f64>>();
    let (f1, f2, e) = (r(1), r(2), r(3));
    let t = (0..TICKERS).map(|i| ((0.5 * f1[i] + e[i]) * 4.0 / 1.5).floor().min(4.0) / 4.0).collect();
    let p = (0..TICKERS).map(|i| f1[i] + 0.7 * e[i]).collect();
    let m = (0..TICKERS).map(|i| e[i] + 0.5 * f2[i]).collect();
    Era { p, t, n: vec![f1.iter().map(|v| v - 0.5).collect(), f2.iter().map(|v| v - 0.5).collect()], w: r(4), m }
}

/// Writes predictions, targets (with a meta-model column), neutralizers and sample weights; the
/// neutralizer and weight files lack the first `missing` tickers in the last era.
fn write_inputs(d: &Path, missing: usize) -> Vec<Era> {
    let eras: Vec<Era> = (0..ERAS.len()).map(era_values).collect();
    let (mut p, mut t, mut n, mut w) = (
        "bloomberg_ticker,friday_date,prediction\n".to_string(),
        "bloomberg_ticker,friday_date,target_20d,meta_model\n".to_string(),
        "bloomberg_ticker,date,factor_a,factor_b\n".to_string(),
        "bloomberg_ticker,date,weight\n".to_string(),
    );
    for (k, (era, v)) in ERAS.iter().zip(&eras).enumerate() {
        for i in 0..TICKERS {
            writeln!(p, "T{i} US,{era},{}", v.p[i]).unwrap();
            writeln!(t, "T{i} US,{era},{},{}", v.t[i], v.m[i]).unwrap();
            if k + 1 < ERAS.len() || i >= missing {
                writeln!(n, "T{i} US,{era},{},{}", v.n[0][i], v.n[1][i]).unwrap();
                writeln!(w, "T{i} US,{era},{}", v.w[i]).unwrap();
            }
        }
    }
    for (name, text) in [("preds.csv", p), ("targets.csv", t), ("neutralizers.csv", n), ("weights.csv", w)] {
        write(d, name, &text);
    }
    eras
}

fn args(d: &Path) -> EvaluateArgs {
    let mut a = EvaluateArgs::new(d.join("preds.csv"), d.join("targets.csv"), d.join("eval"));
    a.target = "target_20d".into();
    a.neutralizers = Some(d.join("neutralizers.csv"));
    a.sample_weights = Some(d.join("weights.csv"));
    a.meta_model = Some("meta_model".into());
    a
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-12, "{what}: evaluate {a} vs formula {b}");
}

#[test]
fn payout_scores_per_era_equal_the_formulas_on_each_eras_rows() {
    let dir = tempfile::tempdir().unwrap();
    let eras = write_inputs(dir.path(), 20);
    let r = evaluate(&args(dir.path())).unwrap();
    let p = r.payout.as_ref().expect("payout scores");
    assert_eq!(p.neutralizer_columns, ["factor_a", "factor_b"]);
    assert_eq!(p.rows_without_neutralizers, 20, "the last era lacks 20 tickers' neutralizer rows");
    assert_eq!(p.per_era.len(), ERAS.len());
    for (k, (e, v)) in p.per_era.iter().zip(&eras).enumerate() {
        assert_eq!(e.era, ERAS[k]);
        // The last era's missing neutralizer rows are NaN to the formulas; alpha keeps the covered rows.
        let cut = if k + 1 == ERAS.len() { 20 } else { 0 };
        let nan_missing = |c: &Vec<f64>| (0..TICKERS).map(|i| if i < cut { f64::NAN } else { c[i] }).collect();
        let n: Vec<Vec<f64>> = v.n.iter().map(nan_missing).collect();
        close(e.neutral_corr.unwrap(), metrics::neutral_correlation(&v.p, &n, &v.t), "neutral corr");
        close(e.mmc.unwrap(), metrics::correlation_contribution(&v.p, &v.m, &v.t), "mmc");
        close(e.neutral_mmc.unwrap(), metrics::neutral_contribution(&v.p, &v.m, &n, &v.t), "neutral mmc");
        let c: Vec<Vec<f64>> = v.n.iter().map(|c| c[cut..].to_vec()).collect();
        close(e.alpha.unwrap(), metrics::alpha(&v.p[cut..], &c, &v.w[cut..], &v.t[cut..]), "alpha");
        assert!(e.alpha.unwrap().is_finite() && e.neutral_corr.unwrap().is_finite());
    }
    // The predictions load on factor_a: neutralising it removes most of their raw corr.
    assert!(
        p.neutral_corr.as_ref().unwrap().mean < r.summary.mean,
        "{} vs {}",
        p.neutral_corr.as_ref().unwrap().mean,
        r.summary.mean
    );
    let md = std::fs::read_to_string(dir.path().join("eval/report.md")).unwrap();
    // No model card and no split column: every era is scored, and no figure is called OOS.
    let all = "(all eras (in-sample included))";
    for row in ["neutral corr", "alpha", "| MMC", "neutral MMC"] {
        for convention in [", predicted rows ", ", as Numerai pays "] {
            let row = format!("{row}{convention}{all}");
            assert!(md.contains(&row), "report.md lacks {row}");
        }
    }
    assert!(md.contains("corr_and_churn.png"), "report.md lacks corr_and_churn.png");
    assert!(dir.path().join("eval/plots/corr_and_churn.png").metadata().unwrap().len() > 1000);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("eval/report.json")).unwrap()).unwrap();
    assert_eq!(json["payout"]["per_era"].as_array().unwrap().len(), ERAS.len());
}

#[test]
fn a_signal_equal_to_the_meta_model_contributes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 0);
    let targets = std::fs::read_to_string(dir.path().join("targets.csv")).unwrap();
    let preds: String = targets
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f[0] == "bloomberg_ticker" {
                "bloomberg_ticker,friday_date,prediction\n".to_string()
            } else {
                format!("{},{},{}\n", f[0], f[1], f[3])
            }
        })
        .collect();
    write(dir.path(), "preds.csv", &preds);
    let r = evaluate(&args(dir.path())).unwrap();
    for e in &r.payout.unwrap().per_era {
        assert!(e.mmc.unwrap().abs() < 1e-12 && e.neutral_mmc.unwrap().abs() < 1e-9, "{e:?}");
    }
}

#[test]
fn payout_inputs_that_cannot_be_used_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d, 0);
    let err = |a: EvaluateArgs| format!("{:#}", evaluate(&a).unwrap_err());

    let mut a = args(d);
    a.neutralizers = None;
    a.meta_model = None;
    let e = err(a);
    assert!(e.contains("weights.csv") && e.contains("--sample-weights needs --neutralizers"), "{e}");

    let mut a = args(d);
    a.meta_model = Some("no_such".into());
    let e = err(a);
    assert!(e.contains("targets.csv") && e.contains("no_such"), "{e}");

    // Tickers in another form than the predictions' match nothing.
    write(d, "other.csv", "numerai_ticker,date,factor_a\nT1,20240105,0.3\n");
    let mut a = args(d);
    a.neutralizers = Some(d.join("other.csv"));
    let e = err(a);
    assert!(e.contains("other.csv") && e.contains("no row matches"), "{e}");

    // Two numeric columns in a sample-weights file.
    let mut a = args(d);
    a.sample_weights = Some(d.join("neutralizers.csv"));
    let e = err(a);
    assert!(e.contains("neutralizers.csv") && e.contains("exactly one numeric column"), "{e}");
}

/// The mean of some eras' numerai_corr.
fn mean_corr(r: &signalkit::evaluate::EvalReport, eras: &[i32]) -> f64 {
    let c: Vec<f64> = r.per_era.iter().filter(|e| eras.contains(&e.era)).map(|e| e.corr).collect();
    c.iter().sum::<f64>() / c.len() as f64
}

#[test]
fn the_knowledge_cutoff_splits_oos_corr_and_warns_about_eras_before_it() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 0);
    let mut a = args(dir.path());
    a.knowledge_cutoff = Some("2024-01-15".into());
    let r = evaluate(&a).unwrap();
    let c = r.knowledge_cutoff.as_ref().expect("a cutoff split");
    let (before, after) = (c.before.as_ref().unwrap(), c.after.as_ref().unwrap());
    assert_eq!((before.eras, after.eras, c.validation_before, c.validation), (2, 2, 2, 4));
    assert!(
        (before.mean - mean_corr(&r, &ERAS[..2])).abs() < 1e-12
            && (after.mean - mean_corr(&r, &ERAS[2..])).abs() < 1e-12
    );
    let w = c.warning.as_deref().unwrap();
    assert!(
        w.contains("2 of 4 validation eras") && w.contains("2024-01-15") && w.contains("--knowledge-cutoff"),
        "{w}"
    );
    let md = std::fs::read_to_string(dir.path().join("eval/report.md")).unwrap();
    for want in
        ["numerai_corr (OOS, before cutoff 2024-01-15)", "numerai_corr (OOS, from cutoff 2024-01-15)", "**Warning:**"]
    {
        assert!(md.contains(want), "report.md lacks {want}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("eval/report.json")).unwrap()).unwrap();
    assert_eq!(json["knowledge_cutoff"]["before"]["eras"], 2);

    // A cutoff before every era: nothing before it, no warning.
    a.knowledge_cutoff = Some("2023-12-01".into());
    let c = evaluate(&a).unwrap().knowledge_cutoff.unwrap();
    assert_eq!((c.before.is_none(), c.after.as_ref().unwrap().eras, c.warning), (true, 4, None));
    a.knowledge_cutoff = Some("15/01/2024".into());
    let e = evaluate(&a).unwrap_err().to_string();
    assert!(e.contains("--knowledge-cutoff") && e.contains("YYYY-MM-DD"), "{e}");
    // Without a cutoff anywhere: no split.
    assert!(evaluate(&args(dir.path())).unwrap().knowledge_cutoff.is_none());
}

#[test]
fn the_knowledge_cutoff_is_read_from_the_predictions_provenance_and_warned_about_by_the_cli() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let eras = write_inputs(dir.path(), 0);
    let (mut t, mut f, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for (era, v) in ERAS.iter().zip(&eras) {
        for i in 0..TICKERS {
            t.push(format!("T{i} US"));
            f.push(*era as i64);
            p.push(v.p[i]);
        }
    }
    let mut df = df!("bloomberg_ticker" => t, "friday_date" => f, "prediction" => p).unwrap();
    let prov = signalkit::provenance::Provenance {
        knowledge_cutoff: Some("2024-01-20".into()),
        ..signalkit::provenance::Provenance::new()
    };
    let preds = dir.path().join("preds.parquet");
    signalkit::data::write_parquet_with(&mut df, &preds, Some(prov.to_metadata())).unwrap();
    let mut a = EvaluateArgs::new(preds.clone(), dir.path().join("targets.csv"), dir.path().join("eval"));
    a.target = "target_20d".into();
    let c = evaluate(&a).unwrap().knowledge_cutoff.unwrap();
    assert!(c.source.contains("predictions' provenance"), "{}", c.source);
    assert_eq!((c.before.unwrap().eras, c.after.unwrap().eras), (3, 1));
    let out = signalkit(["evaluate", "--predictions", preds.to_str().unwrap(), "--targets"])
        .arg(dir.path().join("targets.csv"))
        .args(["--target", "target_20d", "--out"])
        .arg(dir.path().join("cli"))
        .run();
    let err = &out.stderr;
    assert!(out.status.success() && err.contains("warning: 3 of 4 validation eras"), "{err}");
}

/// Without a model card the predictions' own `split` column decides which eras are out of sample;
/// without either, every figure is labelled "all eras (in-sample included)", never OOS, and the
/// report warns.
#[test]
fn in_sample_eras_are_never_called_out_of_sample() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d, 0);
    let mut a = EvaluateArgs::new(d.join("preds.csv"), d.join("targets.csv"), d.join("all"));
    a.target = "target_20d".into();
    let r = evaluate(&a).unwrap();
    assert!(r.in_sample_included && r.summary.eras == ERAS.len(), "{}", r.scored);
    let md = std::fs::read_to_string(d.join("all/report.md")).unwrap();
    assert!(!md.contains("(OOS)") && !md.contains("# Out-of-sample"), "{md}");
    assert!(md.contains("all eras (in-sample included)") && md.contains("Warning"), "{md}");

    // The same predictions with train's split column: only the validation rows are scored.
    let text = std::fs::read_to_string(d.join("preds.csv")).unwrap();
    let mut marked = String::new();
    for (k, line) in text.lines().enumerate() {
        let split = if k == 0 {
            "split"
        } else if line.contains(&ERAS[3].to_string()) {
            "validation"
        } else {
            "train"
        };
        writeln!(marked, "{line},{split}").unwrap();
    }
    write(d, "preds.csv", &marked);
    a.out = d.join("split");
    let r = evaluate(&a).unwrap();
    assert!(!r.in_sample_included && r.summary.eras == 1, "{}", r.scored);
    let md = std::fs::read_to_string(d.join("split/report.md")).unwrap();
    assert!(md.contains("numerai_corr (OOS)") && !md.contains("Warning"), "{md}");
}

/// The smoothing table says what each churn column compares against.
#[test]
fn the_smoothing_table_names_what_each_churn_column_compares_against() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 0);
    // Every row out of sample (train's split column), so compare takes the report below.
    let text = std::fs::read_to_string(dir.path().join("preds.csv")).unwrap();
    let marked: String = text
        .lines()
        .enumerate()
        .map(|(k, l)| format!("{l},{}\n", if k == 0 { "split" } else { "validation" }))
        .collect();
    write(dir.path(), "preds.csv", &marked);
    let mut a = EvaluateArgs::new(dir.path().join("preds.csv"), dir.path().join("targets.csv"), dir.path().join("e"));
    a.target = "target_20d".into();
    a.smooth = vec![0.5];
    let r = evaluate(&a).unwrap();
    let md = std::fs::read_to_string(dir.path().join("e/report.md")).unwrap();
    assert!(md.contains("churn mean (vs the era before)") && md.contains("(vs any of the five before)"), "{md}");

    // `compare RUN RUN@smooth=A` pairs the raw predictions with the smoothed ones era by era.
    use signalkit::evaluate::compare::{CompareArgs, compare};
    let e = dir.path().join("e").display().to_string();
    let args = |inputs: Vec<String>| CompareArgs {
        inputs,
        out: dir.path().join("cmp"),
        bootstrap: signalkit::evaluate::compare::Bootstrap { resamples: 200, ..Default::default() },
    };
    let c = compare(&args(vec![e.clone(), format!("{e}@smooth=0.5")])).unwrap();
    assert_eq!(c.runs[1].name, "e@smooth=0.5");
    let smoothed = r.smoothing[0].summary.unwrap();
    assert!((c.runs[1].mean - smoothed.mean).abs() < 1e-12 && (c.runs[0].mean - r.summary.mean).abs() < 1e-12);
    assert_ne!(c.runs[0].mean, c.runs[1].mean);
    let missing = compare(&args(vec![e.clone(), format!("{e}@smooth=0.7")])).unwrap_err().to_string();
    assert!(missing.contains("it has: 0.5") && missing.contains("--smooth 0.7"), "{missing}");
}

/// The CSV `name` in `d` rewritten as parquet, rows in the given order, `group` rows a row group.
fn as_parquet(d: &Path, name: &str, order: impl Fn(&polars::prelude::DataFrame) -> Vec<u32>, group: usize) {
    use polars::prelude::*;
    let df = signalkit::data::read_table(&d.join(name), false).unwrap();
    let idx = IdxCa::from_vec("i".into(), order(&df));
    let mut df = df.take(&idx).unwrap();
    let out = d.join(name.replace(".csv", ".parquet"));
    ParquetWriter::new(std::fs::File::create(out).unwrap()).with_row_group_size(Some(group)).finish(&mut df).unwrap();
}

#[test]
fn parquet_neutralizers_read_era_by_era_score_as_the_csv_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_inputs(d, 20);
    let whole = evaluate(&args(d)).unwrap().payout.unwrap();
    let in_order = |df: &polars::prelude::DataFrame| (0..df.height() as u32).collect();
    // By ticker: each era is spread over every row group (read whole, with a note).
    let by_ticker = |df: &polars::prelude::DataFrame| {
        let mut i: Vec<u32> = (0..df.height() as u32).collect();
        i.sort_by_key(|&k| (k as usize % TICKERS, k));
        i
    };
    for (order, group) in [(&in_order as &dyn Fn(&_) -> Vec<u32>, TICKERS), (&in_order, 37), (&by_ticker, TICKERS)] {
        for name in ["neutralizers.csv", "weights.csv"] {
            as_parquet(d, name, order, group);
        }
        let mut a = args(d);
        a.neutralizers = Some(d.join("neutralizers.parquet"));
        a.sample_weights = Some(d.join("weights.parquet"));
        a.out = d.join(format!("eval-{group}"));
        let _ = std::fs::remove_dir_all(&a.out);
        let streamed = evaluate(&a).unwrap().payout.unwrap();
        assert_eq!(streamed.rows_without_neutralizers, whole.rows_without_neutralizers);
        let (x, y) = (serde_json::to_value(&streamed).unwrap(), serde_json::to_value(&whole).unwrap());
        assert_eq!(x["per_era"], y["per_era"], "row groups of {group}");
        assert_eq!(x["as_paid"]["per_era"], y["as_paid"]["per_era"], "row groups of {group}");
    }
}

#[test]
fn as_numerai_pays_scores_the_cleaned_submission_over_the_eras_universe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eras = write_inputs(d, 20);
    // The second era predicts only tickers 30..: 30 universe tickers are filled with 0.5; a
    // ticker outside every universe is dropped.
    let preds = std::fs::read_to_string(d.join("preds.csv")).unwrap();
    let mut kept: String = preds
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let i: usize = f[0].trim_start_matches('T').trim_end_matches(" US").parse().unwrap_or(usize::MAX);
            !(f[1] == ERAS[1].to_string() && i < 30)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    kept += &format!("ZZZ US,{},0.9\n", ERAS[1]);
    write(d, "preds.csv", &kept);
    let r = evaluate(&args(d)).unwrap();
    let paid = r.payout.as_ref().unwrap().as_paid.as_ref().expect("as paid");
    assert_eq!(paid.universe, "the neutralizer file's rows of each era");
    // Outside: ZZZ, and the last era's first 20 tickers (it has no neutralizer rows for them).
    assert_eq!((paid.universe_rows_filled, paid.predictions_outside_universe), (30, 21));
    for (k, (e, v)) in paid.per_era.iter().zip(&eras).enumerate() {
        // The universe: the era's neutralizer rows (the last era lacks the first 20 tickers).
        let cut = if k + 1 == ERAS.len() { 20 } else { 0 };
        let universe: Vec<String> = (cut..TICKERS).map(|i| format!("T{i} US")).collect();
        let from = if k == 1 { 30 } else { 0 };
        let mut ids: Vec<String> = (from..TICKERS).map(|i| format!("T{i} US")).collect();
        let mut p: Vec<f64> = v.p[from..].to_vec();
        if k == 1 {
            ids.push("ZZZ US".into());
            p.push(0.9);
        }
        let cleaned = metrics::clean_submission(&universe, &ids, &p);
        let n: Vec<Vec<f64>> = v.n.iter().map(|c| c[cut..].to_vec()).collect();
        let (w, t) = (&v.w[cut..], &v.t[cut..]);
        close(e.alpha.unwrap(), metrics::alpha(&cleaned, &n, w, t), "alpha as paid");
        close(e.neutral_corr.unwrap(), metrics::neutral_correlation(&cleaned, &n, t), "neutral corr as paid");
        close(e.mmc.unwrap(), metrics::correlation_contribution(&cleaned, &v.m[cut..], t), "mmc as paid");
    }
    // Filling 30 tickers with 0.5 changes the second era's alpha.
    let predicted = &r.payout.as_ref().unwrap().per_era[1];
    assert!((predicted.alpha.unwrap() - paid.per_era[1].alpha.unwrap()).abs() > 1e-6);

    // --universe: a file of (ticker, date) rows; tickers without neutralizer rows are NaN to the formulas.
    let mut u = "numerai_ticker,date\n".to_string();
    for era in ERAS {
        for i in 0..100 {
            writeln!(u, "T{i} US,{era}").unwrap();
        }
    }
    write(d, "universe.csv", &u);
    let mut a = args(d);
    a.universe = Some(d.join("universe.csv"));
    a.out = d.join("eval-universe");
    let r = evaluate(&a).unwrap();
    let paid = r.payout.as_ref().unwrap().as_paid.as_ref().unwrap();
    assert!(paid.universe.ends_with("universe.csv"), "{}", paid.universe);
    assert_eq!((paid.universe_rows_filled, paid.predictions_outside_universe), (30, 4 * 50 + 1));
    let v = &eras[0];
    let universe: Vec<String> = (0..100).map(|i| format!("T{i} US")).collect();
    let ids: Vec<String> = (0..TICKERS).map(|i| format!("T{i} US")).collect();
    let cleaned = metrics::clean_submission(&universe, &ids, &v.p);
    let n: Vec<Vec<f64>> = v.n.iter().map(|c| c[..100].to_vec()).collect();
    close(paid.per_era[0].alpha.unwrap(), metrics::alpha(&cleaned, &n, &v.w[..100], &v.t[..100]), "alpha, --universe");
}

#[test]
fn as_numerai_pays_equals_numerai_tools_on_the_cleaned_submission() {
    // data/fixtures/metrics/as_paid: scripts/fixtures/make_as_paid_fixture.py, numerai-tools 0.7.2.
    let fx = common::fixtures("metrics/as_paid");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["neutralizers.csv", "weights.csv"] {
        std::fs::copy(fx.join(name), d.join(name)).unwrap();
        as_parquet(d, name, |df| (0..df.height() as u32).collect(), 40);
    }
    for ext in ["csv", "parquet"] {
        let mut a =
            EvaluateArgs::new(fx.join("predictions.csv"), fx.join("targets.csv"), d.join(format!("eval-{ext}")));
        a.target = "target_chili_60".into();
        a.neutralizers = Some(d.join(format!("neutralizers.{ext}")));
        a.sample_weights = Some(d.join(format!("weights.{ext}")));
        let r = evaluate(&a).unwrap();
        let paid = r.payout.unwrap().as_paid.unwrap();
        let eras = expected["eras"].as_array().unwrap();
        assert_eq!(paid.per_era.len(), eras.len());
        let count = |key: &str| eras.iter().map(|e| e[key].as_u64().unwrap() as usize).sum::<usize>();
        assert_eq!((paid.universe_rows_filled, paid.predictions_outside_universe), (count("filled"), count("outside")));
        for (got, want) in paid.per_era.iter().zip(eras) {
            assert_eq!(got.era as i64, want["era"].as_i64().unwrap());
            for (v, key) in [(got.alpha, "alpha"), (got.neutral_corr, "neutral_correlation")] {
                let (v, w) = (v.unwrap(), want[key].as_f64().unwrap());
                assert!((v - w).abs() <= 1e-9 * w.abs().max(1e-3), "{ext} {} {key}: {v} vs numerai-tools {w}", got.era);
            }
        }
    }
}

/// Writes features.csv: the targets' columns, three numeric features (`cls_0` an embedding
/// column), a text feature and an unused target column that is not a number.
fn write_feature_table(d: &Path, eras: &[Era]) -> Vec<[Vec<f64>; 3]> {
    let mut text =
        "bloomberg_ticker,friday_date,target_20d,meta_model,feature_a,feature_b,cls_0,feature_country,target_note\n"
            .to_string();
    let mut features = Vec::new();
    for (k, (era, v)) in ERAS.iter().zip(eras).enumerate() {
        let f = |salt: u64| (0..TICKERS).map(|i| noise(i + 1000 * k, salt)).collect::<Vec<f64>>();
        let (a, b, c): (Vec<f64>, _, _) = (f(11), f(12), f(13));
        let a: Vec<f64> = a.iter().zip(&v.p).map(|(x, p)| x + 0.5 * p).collect();
        for i in 0..TICKERS {
            writeln!(text, "T{i} US,{era},{},{},{},{},{},US,n/a", v.t[i], v.m[i], a[i], b[i], c[i]).unwrap();
        }
        features.push([a, b, c]);
    }
    write(d, "features.csv", &text);
    features
}

#[test]
fn a_feature_table_handed_as_targets_and_features_is_scored_era_by_era_as_the_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eras = write_inputs(d, 0);
    let features = write_feature_table(d, &eras);
    // Per era: exposure to every numeric feature, feature-neutral corr to all but the embedding.
    let (mut exposure, mut neutral) = (0.0, 0.0);
    for (v, f) in eras.iter().zip(&features) {
        exposure += metrics::max_feature_correlation(&v.p, metrics::from_columns(TICKERS, f).view()).unwrap().1;
        neutral += metrics::feature_neutral_corr(&v.p, metrics::from_columns(TICKERS, &f[..2]).view(), &v.t);
    }
    let by_ticker = |df: &polars::prelude::DataFrame| {
        let mut i: Vec<u32> = (0..df.height() as u32).collect();
        i.sort_by_key(|&k| (k as usize % TICKERS, k));
        i
    };
    let mut reports = Vec::new();
    // CSV (read whole), parquet grouped by date (read era by era), parquet by ticker (read whole).
    for (name, order) in [("features.csv", None), ("features.parquet", Some(false)), ("features.parquet", Some(true))] {
        if let Some(shuffled) = order {
            let in_order = |df: &polars::prelude::DataFrame| (0..df.height() as u32).collect();
            if shuffled {
                as_parquet(d, "features.csv", by_ticker, TICKERS)
            } else {
                as_parquet(d, "features.csv", in_order, TICKERS)
            }
        }
        let mut a = args(d);
        (a.targets, a.features, a.out) = (d.join(name), Some(d.join(name)), d.join(format!("eval-{name}-{order:?}")));
        let r = evaluate(&a).unwrap();
        close(r.feature_exposure.unwrap(), exposure / ERAS.len() as f64, "feature exposure");
        close(r.feature_neutral.as_ref().unwrap().mean, neutral / ERAS.len() as f64, "feature-neutral corr");
        assert_eq!(r.most_exposed_feature.as_deref(), Some("feature_a"), "feature_a carries half the prediction");
        reports.push(serde_json::to_value(&r.payout).unwrap());
    }
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "payout scores differ between the readings");
}
