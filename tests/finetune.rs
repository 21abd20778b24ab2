//! Fine-tuning in candle: the trainable forward equals the frozen encoder's, gradients reach
//! the weights that should train and no others, and a seeded run repeats exactly.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{Run, fixtures, signalkit};
use signalkit::encode::model::{Encoder, ModelFiles};
use signalkit::finetune::{Classifier, Hyper, Trainer};
use tokenizers::Encoding;

fn fixture() -> PathBuf {
    fixtures("tiny-finbert")
}

const TEXTS: [&str; 4] = [
    "Apple beats estimates and raises guidance",
    "Shares fall after the profit warning",
    "Company holds annual meeting",
    "Regulator fines the bank over reporting failures in its trading unit",
];
const LABELS: [u32; 4] = [0, 1, 2, 1];

fn setup(seed: u64, labels: Option<&[String]>) -> (Classifier, Vec<Encoding>) {
    let files = ModelFiles::from_dir(&fixture()).unwrap();
    let enc = Encoder::load(&files, &Device::Cpu, 64).unwrap();
    let encodings = enc.tokenize(&TEXTS).unwrap();
    (Classifier::load(&files, &Device::Cpu, labels, seed).unwrap(), encodings)
}

fn hyper() -> Hyper {
    Hyper {
        lr: 1e-3,
        weight_decay: 0.01,
        warmup_steps: 2,
        total_steps: 10,
        max_grad_norm: 1.0,
        freeze_layers: 0,
        head_only: false,
        seed: 7,
        dropout: true,
    }
}

fn flat(c: &Classifier, name: &str) -> Vec<f32> {
    let data = c.varmap.data().lock().unwrap();
    data[name].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn trainable_forward_equals_the_frozen_encoders_probabilities() {
    let files = ModelFiles::from_dir(&fixture()).unwrap();
    let enc = Encoder::load(&files, &Device::Cpu, 64).unwrap();
    let (model, encodings) = setup(1, None);
    assert!(!model.fresh_head, "the fixture's own head (positive, negative, neutral) is reused");
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let frozen = enc.forward(&refs).unwrap();
    let logits = model.logits(&refs).unwrap();
    let probs = candle_nn::ops::softmax_last_dim(&logits).unwrap().to_vec2::<f32>().unwrap();
    for (p, (q, _)) in probs.iter().zip(&frozen) {
        for (a, b) in p.iter().zip(q) {
            assert!((a - b).abs() < 1e-5, "{p:?} vs {q:?}");
        }
    }
}

#[test]
fn a_seeded_run_repeats_and_the_loss_falls() {
    let run = || {
        let (model, encodings) = setup(3, None);
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let mut t = Trainer::new(model, hyper()).unwrap();
        let losses: Vec<f32> = (0..8).map(|_| t.step(&refs, &LABELS).unwrap()).collect();
        (losses, flat(&t.model, "bert.encoder.layer.1.output.dense.weight"))
    };
    let (a, wa) = run();
    let (b, wb) = run();
    assert_eq!(a, b, "same seed, same losses (dropout included)");
    assert_eq!(wa, wb, "same seed, same weights");
    let (model, encodings) = setup(3, None);
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let mut t = Trainer::new(model, Hyper { dropout: false, ..hyper() }).unwrap();
    let losses: Vec<f32> = (0..8).map(|_| t.step(&refs, &LABELS).unwrap()).collect();
    assert!(losses[7] < losses[0] * 0.5, "without dropout the loss falls on a fixed batch: {losses:?}");
}

#[test]
fn frozen_layers_and_head_only_leave_those_weights_unchanged() {
    for (freeze, head_only) in [(1usize, false), (0, true)] {
        let (model, encodings) = setup(5, None);
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let names = ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.output.dense.weight"];
        let before: Vec<Vec<f32>> = names.iter().map(|n| flat(&model, n)).collect();
        let moving = "bert.encoder.layer.1.output.dense.weight";
        let moving_before = flat(&model, moving);
        let head_before = flat(&model, "classifier.weight");
        let mut t =
            Trainer::new(model, Hyper { freeze_layers: freeze, head_only, warmup_steps: 0, ..hyper() }).unwrap();
        t.step(&refs, &LABELS).unwrap();
        for (n, b) in names.iter().zip(&before) {
            assert_eq!(&flat(&t.model, n), b, "{n} must stay frozen");
        }
        assert_eq!(flat(&t.model, moving) == moving_before, head_only, "layer 1 trains unless head-only");
        assert_ne!(flat(&t.model, "classifier.weight"), head_before, "the head always trains");
    }
}

#[test]
fn new_labels_get_a_new_seeded_head() {
    let labels: Vec<String> = ["bin_0", "bin_1", "bin_2", "bin_3", "bin_4"].map(String::from).to_vec();
    let (a, _) = setup(11, Some(&labels));
    let (b, _) = setup(11, Some(&labels));
    assert!(a.fresh_head);
    assert_eq!(a.labels, labels);
    assert_eq!(flat(&a, "classifier.weight").len(), 5 * 32);
    assert_eq!(flat(&a, "classifier.weight"), flat(&b, "classifier.weight"));
}

#[test]
fn the_schedule_warms_up_then_decays_to_zero() {
    let h = Hyper { lr: 1.0, warmup_steps: 4, total_steps: 12, ..hyper() };
    let lrs: Vec<f64> = (0..13).map(|s| h.lr_at(s)).collect();
    assert_eq!(&lrs[..5], &[0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(lrs[8], 0.5);
    assert_eq!(lrs[12], 0.0);
}

/// transformers + torch's AdamW steps on the same batch (scripts/fixtures/make_finetune_fixture.py).
fn torch_reference() -> serde_json::Value {
    let p = fixtures("finetune-reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn one_and_five_adamw_steps_match_torch_within_1e_5() {
    let r = torch_reference();
    let texts: Vec<&str> = r["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let labels: Vec<u32> = r["labels"].as_array().unwrap().iter().map(|l| l.as_u64().unwrap() as u32).collect();
    for name in ["one", "five"] {
        let run = &r["runs"][name];
        let files = ModelFiles::from_dir(&fixture()).unwrap();
        let encodings = Encoder::load(&files, &Device::Cpu, 64).unwrap().tokenize(&texts).unwrap();
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let model = Classifier::load(&files, &Device::Cpu, None, 0).unwrap();
        let h = Hyper {
            lr: r["lr"].as_f64().unwrap(),
            weight_decay: r["weight_decay"].as_f64().unwrap(),
            warmup_steps: run["warmup_steps"].as_u64().unwrap() as usize,
            total_steps: run["total_steps"].as_u64().unwrap() as usize,
            max_grad_norm: r["max_grad_norm"].as_f64().unwrap(),
            freeze_layers: 0,
            head_only: false,
            seed: 0,
            dropout: false,
        };
        let mut t = Trainer::new(model, h).unwrap();
        let steps = run["steps"].as_u64().unwrap() as usize;
        let losses: Vec<f32> = (0..steps).map(|_| t.step(&refs, &labels).unwrap()).collect();
        let mut worst_loss = 0f64;
        for (a, b) in losses.iter().zip(run["losses"].as_array().unwrap()) {
            worst_loss = worst_loss.max((*a as f64 - b.as_f64().unwrap()).abs());
        }
        let mut worst_value = 0f64;
        for (k, vals) in run["values"].as_object().unwrap() {
            for (a, b) in flat(&t.model, k).iter().zip(vals.as_array().unwrap()) {
                worst_value = worst_value.max((*a as f64 - b.as_f64().unwrap()).abs());
            }
        }
        let mut worst_sum = 0f64;
        for (k, s) in run["sums"].as_object().unwrap() {
            // An attention key bias adds the same q·b to every key's score, which softmax cancels:
            // its true gradient is 0, both sides hold rounding noise (~1e-10), and Adam's
            // g/(|g|+eps) turns that noise into steps of up to ±lr in any implementation.
            if k.ends_with("attention.self.key.bias") {
                continue;
            }
            let ours: f64 = flat(&t.model, k).iter().map(|&v| v as f64).sum();
            let n = flat(&t.model, k).len() as f64;
            let d = (ours - s.as_f64().unwrap()).abs() / n;
            worst_sum = worst_sum.max(d);
        }
        eprintln!(
            "{name}: loss max |diff| {worst_loss:.2e}, weights max |diff| {worst_value:.2e}, per-element sum diff {worst_sum:.2e}"
        );
        assert!(worst_loss < 1e-5, "{name}: losses {losses:?} vs {}", run["losses"]);
        assert!(worst_value < 1e-5, "{name}: weights differ by {worst_value}");
        assert!(worst_sum < 1e-5, "{name}: a parameter's sum differs by {worst_sum} per element");
    }
}

/// A new down/flat/up head tuned one step from `seed`, saved to a temporary folder and loaded
/// back in encode: (labels, trainer, the batch, the folder, the loaded encoder).
fn tuned_and_saved(seed: u64) -> (Vec<String>, Trainer, Vec<Encoding>, tempfile::TempDir, Encoder) {
    let labels: Vec<String> = ["down", "flat", "up"].map(String::from).to_vec();
    let (model, encodings) = setup(seed, Some(&labels));
    let refs: Vec<&Encoding> = encodings.iter().collect();
    let mut t = Trainer::new(model, Hyper { dropout: false, warmup_steps: 0, ..hyper() }).unwrap();
    t.step(&refs, &LABELS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    t.model.save(dir.path(), &ModelFiles::from_dir(&fixture()).unwrap()).unwrap();
    let enc = Encoder::load(&ModelFiles::from_dir(dir.path()).unwrap(), &Device::Cpu, 64).unwrap();
    (labels, t, encodings, dir, enc)
}

#[test]
fn the_saved_folder_loads_in_encode_with_the_trained_outputs() {
    let (labels, t, encodings, _dir, enc) = tuned_and_saved(9);
    let refs: Vec<&Encoding> = encodings.iter().collect();
    assert_eq!(enc.labels, labels, "id2label comes from the new head");
    let ours = candle_nn::ops::softmax_last_dim(&t.model.logits(&refs).unwrap()).unwrap().to_vec2::<f32>().unwrap();
    for (p, (q, _)) in ours.iter().zip(enc.forward(&refs).unwrap()) {
        for (a, b) in p.iter().zip(&q) {
            assert!((a - b).abs() < 1e-5, "{p:?} vs {q:?}");
        }
    }
}

#[test]
fn recipe_a_maps_labels_by_name_and_writes_a_loadable_folder_and_card() {
    use signalkit::finetune::labelled::label_id;
    let own: Vec<String> = ["positive", "negative", "neutral"].map(String::from).to_vec();
    assert_eq!(label_id("0", &own), Some(1), "0 means negative, which is id 1 in this head");
    assert_eq!(label_id("2", &own), Some(0), "2 means positive, id 0 here");
    assert_eq!(label_id("Neutral", &own), Some(2));
    assert_eq!(label_id("3", &own), None);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("labelled.csv");
    let mut body = String::from("text,label\n");
    for i in 0..12 {
        body += &format!("\"{} number {i}\",{}\n", TEXTS[i % 4], ["positive", "0", "neutral", "negative"][i % 4]);
    }
    std::fs::write(&csv, body).unwrap();
    let out = dir.path().join("tuned");
    let args =
        signalkit::finetune::FinetuneArgs { training: training(&out, 2, 4, (0.1, 0.25)), labelled: csv, labels: None };
    let s = signalkit::finetune::finetune_labelled(&args, false).unwrap();
    assert_eq!((s.train, s.held_out, s.epochs.len()), (9, 3, 2));
    assert!(s.epochs.iter().all(|m| m.held_out_accuracy.is_finite() && m.held_out_loss.is_finite()));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["metrics"].as_array().unwrap().len(), 2);
    assert_eq!(card["hyper"]["total_steps"], 6);
    assert_eq!(card["base"]["fingerprint"].as_str().unwrap().len(), 32);
    let enc = Encoder::load(&ModelFiles::from_dir(&out).unwrap(), &Device::Cpu, 64).unwrap();
    assert_eq!(enc.labels, own);
}

/// The Python with transformers that scripts/fixtures/make-fixtures.sh sets up, if it is there.
fn transformers_python() -> Option<PathBuf> {
    let p = std::env::var_os("SIGNALKIT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-fixtures/bin/python"));
    p.exists().then_some(p)
}

/// A fine-tuned folder is a standard Hugging Face checkpoint: transformers loads it as is and
/// gives the probabilities signalkit's encoder gives (scripts/fixtures/check_finetune_reload.py).
#[test]
fn transformers_loads_the_saved_folder_with_equal_outputs() {
    let Some(python) = transformers_python() else {
        eprintln!(
            "SKIPPED transformers_loads_the_saved_folder_with_equal_outputs: no transformers venv (run SIGNALKIT_VENV_ONLY=1 scripts/fixtures/make-fixtures.sh, or set SIGNALKIT_PYTHON)"
        );
        return;
    };
    let (labels, _, _, dir, enc) = tuned_and_saved(11);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fixtures/check_finetune_reload.py");
    let out = std::process::Command::new(python).arg(script).arg(dir.path()).arg("64").args(TEXTS).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["labels"], serde_json::json!(labels));
    let mut worst = 0f32;
    for (text, probs) in TEXTS.iter().zip(theirs["probs"].as_array().unwrap()) {
        let one = enc.tokenize(&[text]).unwrap();
        let (ours, _) = enc.forward(&one.iter().collect::<Vec<_>>()).unwrap().remove(0);
        for (a, b) in ours.iter().zip(probs.as_array().unwrap()) {
            worst = worst.max((a - b.as_f64().unwrap() as f32).abs());
        }
    }
    eprintln!("transformers vs signalkit on the fine-tuned folder: max |Δp| {worst:.2e}");
    assert!(worst < 1e-5, "max |Δp| {worst}");
}

/// Eight weekly rows of AAA: four training eras (2024-01-05 … 01-26), then (data_type
/// validation) 02-02 in the 1-week embargo and 02-09 … 02-23 validating, whose targets are all 1.
const MARKET_ROWS: &str = "bloomberg_ticker,friday_date,data_type,target_20d_factor_neutral
AAA US,20240105,train,0.25
AAA US,20240112,train,0.0
AAA US,20240119,train,1.0
AAA US,20240126,train,0.75
AAA US,20240202,validation,0.5
AAA US,20240209,validation,1.0
AAA US,20240216,validation,1.0
AAA US,20240223,validation,1.0
";

/// Headlines: seen first by training rows (0-4), by the embargoed row (5), by validation rows
/// only, with the planted perfect label "surges" (6-8), and by no row (9).
const MARKET_HEADLINES: &str = "ticker,published_at,headline
AAA,2024-01-03T12:00:00Z,Acme opens a new plant
AAA,2024-01-10T09:00:00Z,Acme cuts its outlook
AAA,2024-01-12T00:00:00Z,Acme news exactly at the cutoff
AAA,2024-01-12T00:00:01Z,Acme news a second after the cutoff
AAA,2024-01-25T23:59:59Z,Acme names a new chief executive
AAA,2024-01-30T10:00:00Z,Acme during the embargo
AAA,2024-02-05T10:00:00Z,Acme surges on record orders one
AAA,2024-02-12T10:00:00Z,Acme surges on record orders two
AAA,2024-02-20T10:00:00Z,Acme surges on record orders three
AAA,2023-11-01T10:00:00Z,Acme story older than every window
";

/// Joins the market case into `dir/rows.parquet` (the join records its options there).
fn market_rows(dir: &Path) -> PathBuf {
    use signalkit::pit::{JoinArgs, Window, join_files};
    let (targets, headlines) = (dir.join("t.csv"), dir.join("h.csv"));
    std::fs::write(&targets, MARKET_ROWS).unwrap();
    std::fs::write(&headlines, MARKET_HEADLINES).unwrap();
    let rows = dir.join("rows.parquet");
    join_files(&JoinArgs {
        targets,
        headlines,
        out: rows.clone(),
        window: Window::default(),
        tickers: Default::default(),
        ticker_map: None,
        headline_options: Default::default(),
    })
    .unwrap();
    rows
}

fn market_source(rows: PathBuf, bins: signalkit::finetune::LabelBins) -> signalkit::finetune::market::LabelSource {
    signalkit::finetune::market::LabelSource {
        rows,
        headlines: None,
        target: "target_20d_factor_neutral".into(),
        bins,
        train_until: None,
        embargo: 1,
    }
}

#[test]
fn market_labels_come_from_training_rows_only() {
    use signalkit::finetune::{LabelBins, market_labels};
    let dir = tempfile::tempdir().unwrap();
    let m = market_labels(&market_source(market_rows(dir.path()), LabelBins::Five)).unwrap();
    assert_eq!(m.split.train, vec![20240105, 20240112, 20240119, 20240126]);
    assert_eq!((m.split.embargo.clone(), m.split.validation.len()), (vec![20240202], 3));
    assert!(m.texts.iter().all(|t| !t.contains("surges")), "validation-only headlines leaked: {:?}", m.texts);
    assert!(!m.texts.iter().any(|t| t.contains("embargo")), "the embargoed row's headline is dropped");
    assert_eq!(m.validation_labels_read, 0);
    assert_eq!(m.headlines, vec![0, 1, 2, 3, 4]);
    assert!(m.label_rows.iter().all(|&r| r < 4), "every label row is a training row: {:?}", m.label_rows);
    assert_eq!((m.dropped_not_training, m.dropped_no_target, m.never_visible), (4, 0, 1));
    assert_eq!(m.labels, ["target_0", "target_1", "target_2", "target_3", "target_4"]);
}

#[test]
fn a_headline_after_a_cutoff_is_labelled_by_the_next_row() {
    use signalkit::finetune::{LabelBins, market_labels};
    let dir = tempfile::tempdir().unwrap();
    let m = market_labels(&market_source(market_rows(dir.path()), LabelBins::Five)).unwrap();
    // (headline, label row, class): 01-03 → 01-05 (0.25); 01-10 → 01-12 (0.0); at and after the
    // 01-12 cutoff → 01-19 (1.0), never 01-12; 01-25 → 01-26 (0.75).
    let got: Vec<(usize, usize, u32)> =
        m.headlines.iter().zip(&m.label_rows).zip(&m.ids).map(|((&h, &r), &c)| (h, r, c)).collect();
    assert_eq!(got, vec![(0, 0, 1), (1, 1, 0), (2, 2, 4), (3, 2, 4), (4, 3, 3)]);
}

#[test]
fn three_bins_map_bottom_middle_top() {
    use signalkit::finetune::market::target_bin;
    use signalkit::finetune::{LabelBins, market_labels};
    let three = LabelBins::Three;
    assert_eq!(three.names(), ["down", "flat", "up"]);
    let classes: Vec<u32> = [0.0, 0.25, 0.5, 0.75, 1.0].iter().map(|&v| three.class(target_bin(v).unwrap())).collect();
    assert_eq!(classes, [0, 1, 1, 1, 2], "0 → down, 1 → up, the three middle bins → flat");
    assert_eq!(target_bin(0.3), None);
    assert!(LabelBins::from_count(4).is_err());
    let dir = tempfile::tempdir().unwrap();
    let m = market_labels(&market_source(market_rows(dir.path()), three)).unwrap();
    assert_eq!(m.ids, vec![1, 0, 2, 2, 1]);
}

#[test]
fn recipe_b_writes_a_card_with_the_eras_and_counts() {
    use signalkit::finetune::{LabelBins, MarketArgs, finetune_market};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tuned");
    let args = MarketArgs {
        training: training(&out, 1, 2, (0.0, 0.0)),
        source: market_source(market_rows(dir.path()), LabelBins::Three),
    };
    let s = finetune_market(&args, false).unwrap();
    assert_eq!((s.train, s.labelled, s.dropped_not_training, s.validation_labels_read), (5, 5, 4, 0));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["recipe"], "market");
    assert_eq!(card["data"]["eras"]["train"], serde_json::json!([20240105, 20240112, 20240119, 20240126]));
    assert_eq!(card["data"]["dropped_not_training"], 4);
    assert_eq!(card["data"]["validation_labels_read"], 0);
    assert_eq!(card["data"]["per_class"], serde_json::json!({"down": 1, "flat": 2, "up": 2}));
    let enc = Encoder::load(&ModelFiles::from_dir(&out).unwrap(), &Device::Cpu, 64).unwrap();
    assert_eq!(enc.labels, ["down", "flat", "up"]);
}

/// Runs `signalkit finetune` on a labelled table (2 epochs, dropout on), aborting after `abort_after`.
fn finetune_cli(csv: &Path, out: &Path, lr: &str, abort_after: Option<&str>) -> Run {
    use signalkit::finetune::ABORT_AFTER_EPOCH_ENV;
    let c = signalkit(["finetune", "--model"]).arg(fixture()).arg("--labelled").arg(csv).arg("--out").arg(out);
    let c = c.args([
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--held-out",
        "0.25",
        "--seed",
        "3",
        "--lr",
        lr,
        "--warmup",
        "0.2",
    ]);
    match abort_after {
        Some(e) => c.env(ABORT_AFTER_EPOCH_ENV, e),
        None => c.env_remove(ABORT_AFTER_EPOCH_ENV),
    }
    .run()
}

fn saved_weights(dir: &Path) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn a_run_killed_after_epoch_one_resumes_to_the_uninterrupted_weights() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("labelled.csv");
    let mut body = String::from("text,label\n");
    for i in 0..12 {
        body +=
            &format!("\"{} number {i}\",{}\n", TEXTS[i % 4], ["positive", "negative", "neutral", "negative"][i % 4]);
    }
    std::fs::write(&csv, body).unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    finetune_cli(&csv, &whole, "1e-3", None).ok();
    assert!(!whole.join("checkpoint").exists(), "a finished run removes its checkpoint");

    let aborted = finetune_cli(&csv, &killed, "1e-3", Some("1"));
    assert!(!aborted.status.success(), "the hook aborts the process after epoch 1's checkpoint");
    let left: Vec<_> = std::fs::read_dir(killed.join("checkpoint")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["state.safetensors"], "one checkpoint file, no temp files");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["metrics"].as_array().unwrap().len(), 1);

    let other = finetune_cli(&csv, &killed, "2e-3", None);
    let err = &other.stderr;
    assert!(!other.status.success() && err.contains("hyper.lr"), "a changed setting is named: {err}");

    finetune_cli(&csv, &killed, "1e-3", None).ok();
    let (a, b) = (saved_weights(&whole), saved_weights(&killed));
    assert_eq!(a.len(), b.len());
    for (name, ta) in &a {
        let d = (ta - &b[name]).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        let d = d.to_scalar::<f32>().unwrap();
        assert!(d <= 1e-6, "{name} differs by {d} after resuming");
    }
    let card = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("card.json")).unwrap()).unwrap()
    };
    let losses = |c: &serde_json::Value| -> Vec<f64> {
        c["metrics"].as_array().unwrap().iter().map(|m| m["train_loss"].as_f64().unwrap()).collect()
    };
    assert_eq!(losses(&card(&whole)), losses(&card(&killed)), "the resumed run's metrics are the whole run's");
}

#[test]
fn checkpoint_differences_name_the_setting_and_skip_paths() {
    use signalkit::finetune::checkpoint::differences;
    let a = serde_json::json!({"hyper": {"lr": 1e-3, "seed": 3}, "data": {"path": "a.csv", "xxh3": "1"}});
    let b = serde_json::json!({"hyper": {"lr": 1e-3, "seed": 4}, "data": {"path": "b.csv", "xxh3": "1"}});
    assert_eq!(differences(&a, &a), Vec::<String>::new());
    assert_eq!(differences(&a, &b), ["hyper.seed was 3 then, 4 now"]);
}

/// The tiny fixture fine-tuned into `out` on the CPU: `epochs` passes of `batch` texts, with
/// (warm-up share, held-out share).
fn training(
    out: &Path,
    epochs: usize,
    batch: usize,
    (warmup_share, held_out): (f64, f64),
) -> signalkit::finetune::Training {
    signalkit::finetune::Training {
        model: ModelFiles::from_dir(&fixture()).unwrap(),
        out: out.to_path_buf(),
        epochs,
        batch_size: batch,
        warmup_share,
        held_out,
        max_len: 64,
        device: "cpu".into(),
        hyper: hyper(),
    }
}
