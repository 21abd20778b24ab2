//! The careless user, round two (issue 25, faults 4, 5, 7, 8 and 12's inputs; issue 27 item 1):
//! each bad input is refused by name (file, row, flag, question) or reported as absent, never
//! turned into a silent wrong number or a crash far from its cause.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use common::{noise, write};
use serde_json::Value;
use signalkit::ask::model::Decoder;
use signalkit::ask::{AskArgs, ask_files, read_answers};
use signalkit::encode::model::ModelFiles;
use signalkit::evaluate::{EvaluateArgs, evaluate};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Runs the binary; returns (success, stdout and stderr together).
fn signalkit(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signalkit")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

// --- Fault 4 and issue 27 item 1: prompts are never padded, cut or run past the context -------

/// A copy of the tiny Qwen2 fixture whose tokenizer.json pads to 128 tokens, truncates at 128 and
/// adds a BOS in its post-processor, as many hub tokenizers do.
fn padded_truncating_copy(dir: &Path) -> PathBuf {
    let src = repo("data/fixtures/tiny-qwen2");
    let dst = dir.join("tiny-qwen2-padded");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    let mut tok = json(&dst.join("tokenizer.json"));
    tok["padding"] = serde_json::json!({"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
        "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
    tok["truncation"] =
        serde_json::json!({"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0});
    tok["post_processor"] = serde_json::json!({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]}}});
    std::fs::write(dst.join("tokenizer.json"), serde_json::to_string(&tok).unwrap()).unwrap();
    dst
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter().map(|r| r.iter().map(|x| x.to_bits()).collect()).collect()
}

#[test]
fn ask_ignores_the_padding_truncation_and_post_processor_of_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let load = |p: &Path| Decoder::load(&ModelFiles::from_dir(p).unwrap(), &Device::Cpu).unwrap();
    let (mut plain, mut hub) = (load(&repo("data/fixtures/tiny-qwen2")), load(&padded_truncating_copy(dir.path())));
    let long = "Apple beats quarterly earnings estimates and raises full-year guidance. ".repeat(6);
    let long = format!("Good news? {long}");
    let contents = ["Good news? Apple beats estimates", "Good news? Tesla recalls cars", long.as_str()];
    let prompts: Vec<String> = contents.iter().map(|c| plain.template.render(c).unwrap()).collect();
    let n_long = plain.token_ids(&prompts[2]).unwrap().len();
    assert!(n_long > 128 && n_long < 512, "the long prompt must pass the copy's truncation only: {n_long} tokens");
    for p in &prompts {
        assert_eq!(hub.token_ids(p).unwrap(), plain.token_ids(p).unwrap(), "tokens of {p:?}");
    }
    let words: Vec<String> = ["YES", "NO", "UNKNOWN"].map(String::from).to_vec();
    let ids = plain.answer_tokens(&words).unwrap();
    assert_eq!(hub.answer_tokens(&words).unwrap(), ids, "answer words' first tokens");
    let alone = |d: &mut Decoder| prompts.iter().map(|p| d.answer(p, &ids).unwrap()).collect::<Vec<_>>();
    assert_eq!(bits(&alone(&mut hub)), bits(&alone(&mut plain)), "answers one prompt at a time");
    assert_eq!(
        bits(&hub.answer_batch(&prompts, &ids).unwrap()),
        bits(&plain.answer_batch(&prompts, &ids).unwrap()),
        "answers of one left-padded batch"
    );
}

#[test]
fn ask_refuses_a_prompt_longer_than_the_context_by_name_and_keeps_every_other_answer() {
    let dir = tempfile::tempdir().unwrap();
    let short = "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats estimates\n";
    let long = format!("TSLA,2024-01-03,Tesla {}\n", "recall widens to more models again ".repeat(120));
    let h = write(dir.path(), "h.csv", &format!("{short}{long}MSFT,2024-01-04,Microsoft raises guidance\n"));
    let q = write(dir.path(), "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? {headline}\"\n");
    let args = common::ask_args(1, 1, dir.path(), &h, &q);
    let e = ask_files(&args).unwrap_err().to_string();
    for part in ["h.csv", "question 'good'", "row 2", "TSLA", "Tesla recall widens", "512 tokens", "never cut"] {
        assert!(e.contains(part), "the refusal names {part:?}: {e}");
    }
    assert!(!e.contains("index-select"), "{e}");
    let stored = |args: &AskArgs| read_answers(&args.store).unwrap()[0].by_text.len();
    assert_eq!(stored(&args), 2, "the prompts that fit are answered and kept");
    // The user drops the long headline: the rerun asks nothing and succeeds.
    let h = write(dir.path(), "h2.csv", &format!("{short}MSFT,2024-01-04,Microsoft raises guidance\n"));
    let s = ask_files(&AskArgs { headlines: h, ..args.clone() }).unwrap();
    assert_eq!((s.answered, s.already_stored), (0, 2));

    // A library caller's long prompt is refused by length on both forwards, not crashed into.
    let files = ModelFiles::from_dir(&repo("data/fixtures/tiny-qwen2")).unwrap();
    for padded in [true, false] {
        let mut d = Decoder::load_with(&files, &Device::Cpu, padded).unwrap();
        let ids = d.answer_tokens(&["YES".into(), "NO".into(), "UNKNOWN".into()]).unwrap();
        let prompt = d.template.render(&long).unwrap();
        let e = d.answer(&prompt, &ids).unwrap_err().to_string();
        assert!(e.contains("longer than the model's context of 512 tokens"), "padded {padded}: {e}");
    }
    // A GGUF file (gguf-py's q8_0) runs the same padded forward: refused by name the same way.
    let compat = repo("data/fixtures/ask-compat/template-jinja");
    let source = signalkit::encode::hub::ModelSource::new(compat.to_str().unwrap());
    let args = AskArgs { source, gguf: Some(compat.join("model-q8_0.gguf")), ..args };
    let e = ask_files(&AskArgs { store: dir.path().join("gguf-store"), ..args }).unwrap_err().to_string();
    for part in ["h.csv", "question 'good'", "row 2", "TSLA", "512 tokens", "never cut"] {
        assert!(e.contains(part), "the GGUF refusal names {part:?}: {e}");
    }
}

// --- Fault 5: NaN predictions do not hide churn; statistics over nothing are absent ------------

const CHURN_ERAS: usize = 12;
const CHURN_TICKERS: usize = 90;

/// Fridays from 2024-01-05, as YYYYMMDD.
fn friday(k: usize) -> i32 {
    let d = chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap() + chrono::Duration::weeks(k as i64);
    d.format("%Y%m%d").to_string().parse().unwrap()
}

/// Predictions that persist from week to week (churn well above 0 and below the limit in some
/// eras), with `nan(era, ticker)` rows written as NaN and `drop(era, ticker)` rows left out;
/// and targets for every row.
fn churn_inputs(d: &Path, nan: impl Fn(usize, usize) -> bool, drop: impl Fn(usize, usize) -> bool) {
    let (mut p, mut t) = ("bloomberg_ticker,friday_date,prediction\n".to_string(), String::new());
    t += "bloomberg_ticker,friday_date,target_20d\n";
    for k in 0..CHURN_ERAS {
        for i in 0..CHURN_TICKERS {
            let v = noise(i, 1) + 0.4 * noise(i + 1000 * k, 2);
            writeln!(t, "T{i} US,{},{}", friday(k), (noise(i + 1000 * k, 3) * 4.0).floor() / 4.0).unwrap();
            if !drop(k, i) {
                let v = if nan(k, i) { "NaN".to_string() } else { v.to_string() };
                writeln!(p, "T{i} US,{},{v}", friday(k)).unwrap();
            }
        }
    }
    write(d, "preds.csv", &p);
    write(d, "targets.csv", &t);
}

fn churn_report(d: &Path) -> (Value, String) {
    let mut a = EvaluateArgs::new(d.join("preds.csv"), d.join("targets.csv"), d.join("eval"));
    a.target = "target_20d".into();
    evaluate(&a).unwrap();
    let r = json(&d.join("eval/report.json"));
    (r["churn"].clone(), std::fs::read_to_string(d.join("eval/report.md")).unwrap())
}

#[test]
fn churn_drops_nan_predictions_as_numerai_tools_does_and_is_absent_when_undefined() {
    let (with_nan, without) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let third = |_: usize, i: usize| i.is_multiple_of(3);
    churn_inputs(with_nan.path(), third, |_, _| false);
    churn_inputs(without.path(), |_, _| false, third);
    let ((nan, _), (clean, _)) = (churn_report(with_nan.path()), churn_report(without.path()));
    let mean = clean["mean"].as_f64().unwrap();
    assert!(mean > 0.05, "the reference churn is far from 0: {clean}");
    for field in ["mean", "max_over_last_5", "eras_over_limit", "per_era"] {
        assert_eq!(nan[field], clean[field], "{field}: NaN rows count as absent tickers");
    }

    // NaN on a random third of the tickers each week: no two weeks share 80% of their tickers,
    // so numerai-tools cannot compute churn; every statistic over it is absent, never 0.
    let shifting = tempfile::tempdir().unwrap();
    churn_inputs(shifting.path(), |k, i| noise(i + 1000 * k, 7) < 1.0 / 3.0, |_, _| false);
    let (c, md) = churn_report(shifting.path());
    for field in ["mean", "max_over_last_5", "eras_over_limit"] {
        assert!(c[field].is_null(), "{field} over no defined churn is absent: {c}");
    }
    assert!(c["per_era"].as_array().unwrap().iter().all(|e| e[1].is_null()), "{c}");
    assert!(md.contains("mean n/a") && md.contains("eras have no churn") && !md.contains("NaN"), "{md}");
}

#[test]
fn a_benchmark_with_no_value_in_any_era_is_absent_not_a_summary_of_nothing() {
    let d = tempfile::tempdir().unwrap();
    churn_inputs(d.path(), |_, _| false, |_, _| false);
    let t = std::fs::read_to_string(d.path().join("targets.csv")).unwrap();
    let t: Vec<String> =
        t.lines().enumerate().map(|(i, l)| format!("{l},{}", if i == 0 { "bench" } else { "" })).collect();
    write(d.path(), "targets.csv", &(t.join("\n") + "\n"));
    let mut a = EvaluateArgs::new(d.path().join("preds.csv"), d.path().join("targets.csv"), d.path().join("eval"));
    a.target = "target_20d".into();
    a.benchmark = Some("bench".into());
    evaluate(&a).unwrap();
    let r = json(&d.path().join("eval/report.json"));
    assert!(r["benchmark"].is_null(), "{}", r["benchmark"]);
    let md = std::fs::read_to_string(d.path().join("eval/report.md")).unwrap();
    assert!(!md.contains("corr with benchmark") && !md.contains("NaN"), "{md}");
}

// --- Fault 12: sample weights and ticker matches in evaluate -------------------------------------

/// Predictions, targets, neutralizers and sample weights over 4 eras × 60 tickers; `weight(era,
/// ticker)` is the weight cell as written.
fn payout_inputs(d: &Path, weight: impl Fn(usize, usize) -> String) -> EvaluateArgs {
    let mut p = String::from("bloomberg_ticker,friday_date,prediction\n");
    let mut t = String::from("bloomberg_ticker,friday_date,target_20d\n");
    let mut n = String::from("bloomberg_ticker,date,factor_a,factor_b\n");
    let mut w = String::from("bloomberg_ticker,date,weight\n");
    for k in 0..4 {
        for i in 0..60 {
            let (f, e, r) = (noise(i + 100 * k, 1), noise(i + 100 * k, 2), noise(i + 100 * k, 4));
            writeln!(p, "T{i} US,{},{}", friday(k), f + e).unwrap();
            writeln!(t, "T{i} US,{},{}", friday(k), ((f + e) * 2.0).floor() / 4.0).unwrap();
            writeln!(n, "T{i} US,{},{},{}", friday(k), f - 0.5, r - 0.5).unwrap();
            writeln!(w, "T{i} US,{},{}", friday(k), weight(k, i)).unwrap();
        }
    }
    for (name, text) in [("preds.csv", p), ("targets.csv", t), ("neutralizers.csv", n), ("weights.csv", w)] {
        write(d, name, &text);
    }
    let mut a = EvaluateArgs::new(d.join("preds.csv"), d.join("targets.csv"), d.join("eval"));
    a.target = "target_20d".into();
    a.neutralizers = Some(d.join("neutralizers.csv"));
    a.sample_weights = Some(d.join("weights.csv"));
    a
}

#[test]
fn sample_weights_that_are_missing_nan_or_negative_are_refused_by_row_and_all_zero_eras_are_named() {
    let d = tempfile::tempdir().unwrap();
    let w = |k: usize, i: usize| format!("{}", 0.5 + noise(i + 100 * k, 5));
    for (bad, shown) in [("", "missing"), ("NaN", "missing"), ("-0.5", "-0.5"), ("inf", "inf")] {
        let args = payout_inputs(d.path(), |k, i| if (k, i) == (1, 7) { bad.to_string() } else { w(k, i) });
        let e = evaluate(&args).unwrap_err().to_string();
        for part in ["weights.csv", "row 68", "weight", shown, "at least 0"] {
            assert!(e.contains(part), "weight {bad:?}: the refusal names {part:?}: {e}");
        }
    }
    // Every weight of the second era is 0: its alpha is absent and the report says why.
    let args = payout_inputs(d.path(), |k, i| if k == 1 { "0".into() } else { w(k, i) });
    let r = evaluate(&args).unwrap();
    let payout = r.payout.as_ref().unwrap();
    assert!(payout.per_era[1].alpha.is_none(), "{:?}", payout.per_era[1]);
    assert!(payout.per_era.iter().enumerate().all(|(k, e)| k == 1 || e.alpha.is_some_and(f64::is_finite)));
    let md = std::fs::read_to_string(d.path().join("eval/report.md")).unwrap();
    assert!(md.contains("every sample weight is 0") && md.contains("2024-01-12"), "{md}");
}

#[test]
fn evaluate_says_zero_tickers_matched_and_shows_both_sides() {
    let d = tempfile::tempdir().unwrap();
    let args = payout_inputs(d.path(), |_, _| "1".into());
    let preds = std::fs::read_to_string(&args.predictions).unwrap().replace(" US,", ",");
    write(d.path(), "bare.csv", &preds);
    let e = evaluate(&EvaluateArgs { predictions: d.path().join("bare.csv"), ..args.clone() }).unwrap_err().to_string();
    for part in ["targets.csv", "0 tickers matched", "T0,", "T0 US", "bloomberg_ticker"] {
        assert!(e.contains(part), "predictions vs targets: names {part:?}: {e}");
    }
    let neutral = std::fs::read_to_string(d.path().join("neutralizers.csv")).unwrap().replace(" US,", " UW,");
    write(d.path(), "neutralizers.csv", &neutral);
    let e = evaluate(&args).unwrap_err().to_string();
    for part in ["neutralizers.csv", "0 tickers matched", "T0 UW", "T0 US"] {
        assert!(e.contains(part), "predictions vs neutralizers: names {part:?}: {e}");
    }
}

// --- Faults 7 and 12: finetune's --labels and --freeze-layers -------------------------------------

fn labelled(dir: &Path) -> PathBuf {
    let mut body = String::from("text,label\n");
    for i in 0..8 {
        writeln!(body, "\"Shares move number {i}\",{}", ["a", "b"][i % 2]).unwrap();
    }
    write(dir, "labelled.csv", &body)
}

fn finetune(dir: &Path, extra: &[&str]) -> (bool, String) {
    let (model, csv) = (repo("data/fixtures/tiny-finbert"), labelled(dir));
    let out = dir.join("tuned");
    let mut args = vec!["finetune", "--model", model.to_str().unwrap(), "--labelled", csv.to_str().unwrap()];
    args.extend(["--out", out.to_str().unwrap(), "--epochs", "1", "--batch-size", "4"]);
    args.extend_from_slice(extra);
    signalkit(&args)
}

#[test]
fn finetune_refuses_labels_that_cannot_name_a_head() {
    let dir = tempfile::tempdir().unwrap();
    for (labels, why) in
        [("a,a,b", "both 'a'"), ("a,A,b", "both 'A'"), ("a,,b", "label 2 is empty"), ("x", "at least 2")]
    {
        let (ok, log) = finetune(dir.path(), &["--labels", labels]);
        assert!(!ok && log.contains(&format!("--labels {labels}")) && log.contains(why), "{labels}: {log}");
        assert!(!dir.path().join("tuned").exists(), "{labels}: refused before any work");
    }
}

#[test]
fn finetune_refuses_freezing_more_layers_than_the_model_has() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, log) = finetune(dir.path(), &["--labels", "a,b", "--freeze-layers", "3"]);
    assert!(!ok && log.contains("--freeze-layers") && log.contains("has 2 encoder layers"), "{log}");
    assert!(!dir.path().join("tuned").exists());
    let (ok, log) = finetune(dir.path(), &["--labels", "a,b", "--freeze-layers", "2"]);
    assert!(ok, "freezing every layer (the head and pooler still train) is allowed: {log}");
}

// --- Fault 8: predict --smooth-with ----------------------------------------------------------

/// A hand-made feature table (40 tickers × 30 eras, one feature) and a small model trained on it;
/// returns (features, model) as strings for the command line.
fn tiny_model(d: &Path) -> (String, String) {
    let mut f = String::from("bloomberg_ticker,friday_date,target,feature_a\n");
    for k in 0..30 {
        for i in 0..40 {
            let x = noise(i + 100 * k, 1);
            writeln!(f, "T{i} US,{},{},{x}", friday(k), ((x + noise(i + 100 * k, 2)) * 2.0).floor() / 4.0).unwrap();
        }
    }
    let f = write(d, "f.csv", &f).display().to_string();
    let m = d.join("m").display().to_string();
    let (ok, log) = signalkit(&[
        "train",
        "--features",
        &f,
        "--out",
        &m,
        "--target",
        "target",
        "--train-until",
        "2024-04-26",
        "--num-iterations",
        "20",
    ]);
    assert!(ok, "{log}");
    (f, m)
}

#[test]
fn smooth_with_refuses_a_duplicate_ticker_and_a_file_that_shares_no_ticker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (f, m) = tiny_model(d);
    let predict = |last: &str| {
        let (last, out) = (write(d, "last.csv", last), d.join("signal.csv"));
        let (last, out) = (last.display().to_string(), out.display().to_string());
        signalkit(&[
            "predict",
            "--model",
            &m,
            "--features",
            &f,
            "--out",
            &out,
            "--smooth",
            "0.5",
            "--smooth-with",
            &last,
        ])
    };
    let rows: String = (0..40).map(|i| format!("T{i} US,{}\n", noise(i, 9))).collect();
    let (ok, log) = predict(&format!("bloomberg_ticker,signal\n{rows}"));
    assert!(ok, "{log}");
    let (ok, log) = predict(&format!("bloomberg_ticker,signal\n{rows}T3 US,0.99\n"));
    for part in ["last.csv", "duplicate", "rows 4 and 41", "'T3 US'"] {
        assert!(!ok && log.contains(part), "a ticker twice: names {part:?}: {log}");
    }
    let nan: String = (0..40).map(|i| format!("T{i} US,{}\n", ["NaN", ""][i % 2])).collect();
    let elsewhere: String = (0..40).map(|i| format!("X{i} US,{}\n", noise(i, 9))).collect();
    for last in [nan, elsewhere] {
        let (ok, log) = predict(&format!("bloomberg_ticker,signal\n{last}"));
        for part in ["last.csv", "shares 0 of this week's 40 tickers", "--smooth"] {
            assert!(!ok && log.contains(part), "names {part:?}: {log}");
        }
    }
}
