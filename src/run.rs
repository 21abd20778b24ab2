//! `signalkit run`: (news →) join → encode (→ ask) → features → train → evaluate → importance, every
//! stage's output kept in one run folder.

use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::data::write_bytes_atomic;
use crate::error::{Error, Result};
use crate::evaluate::{EvalReport, EvaluateArgs, ImportanceArgs, evaluate, importance};
use crate::features::PcaOption;
use crate::finetune::finetune_market;
use crate::train::walk_forward::walk_forward;
use crate::train::{ModelCard, TrainArgs, train};
use crate::{FeatureArgs, build_features, encode_files, join_files};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run folder.
    pub out: PathBuf,
    /// The trained model's card.
    pub card: ModelCard,
    /// The out-of-sample report.
    pub report: EvalReport,
    /// One line per stage, for the log.
    pub stages: Vec<String>,
    /// With `[numerai]`: the lines the run ends with (payout scores, the signal file, the
    /// `submit --dry-run` command).
    pub submission: Vec<String>,
}

/// Runs every stage from `cfg`, printing one line per stage as it finishes.
pub fn run(cfg: &Config) -> Result<RunSummary> {
    let out = cfg.out.clone();
    crate::train::check_tree_count(&cfg.train.params)?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let _lock = crate::data::lock::lock_folder(&out, "run", "--out (config key `out`)")?;
    write_bytes_atomic(&out.join("config.toml"), cfg.with_absolute_paths().to_toml()?.as_bytes())?;
    if let Some(ft) = &cfg.finetune {
        // Before the join: a [finetune] the base model cannot take is refused at once.
        crate::finetune::check_depth(&cfg.encode.source().resolve()?, &ft.hyper(true))?;
    }
    let ask_store = out.join("ask-store");
    let ask =
        cfg.ask.as_ref().map(|a| Ok::<_, Error>((a.ask_args(&cfg.data, ask_store.clone())?, &a.model))).transpose()?;
    let mut stages = Vec::new();
    let mut log = |line: String| {
        eprintln!("{line}");
        stages.push(line);
    };

    if let Some(news) = &cfg.news {
        let t = Instant::now();
        let fetched = crate::news::run_stage(news, &cfg.data.ticker_rule()?, &cfg.data.headlines)?;
        log(format!("[0/6] news ({:.1}s): {fetched}", t.elapsed().as_secs_f64()));
    }
    let mut data = cfg.data.clone();
    let numerai = match &cfg.numerai {
        Some(n) => {
            let t = Instant::now();
            let (ds, table, line) = crate::numerai::dataset::prepare(n, &out)?;
            log(format!("[0b] {}: {line} ({:.1}s)", n.dataset, t.elapsed().as_secs_f64()));
            data.targets = table;
            Some((n, ds))
        }
        None => None,
    };
    let t = Instant::now();
    let rows = out.join("rows.parquet");
    let joined = join_files(&data.join_args(&cfg.join, rows.clone())?)?;
    if numerai.is_some() {
        let (h, with, unknown) = (joined.headlines, joined.rows_with_headline, joined.unknown_ticker);
        crate::numerai::dataset::check_join_met(&data.headlines, h, with, unknown)?;
    }
    log(format!("[1/6] join: {joined} ({:.1}s)", t.elapsed().as_secs_f64()));

    let mut encode = cfg.encode.clone();
    if let Some(ft) = &cfg.finetune {
        let t = Instant::now();
        let tuned = out.join("finetuned");
        let s = finetune_market(&ft.market_args(cfg, rows.clone(), tuned.clone())?, true)?;
        log(format!("[1b] finetune: {s} → {} ({:.1}s)", tuned.display(), t.elapsed().as_secs_f64()));
        encode.model = tuned.display().to_string();
        encode.offline = true;
    }
    let encoded = encode_files(&encode.encode_args(&cfg.data)?)?;
    log(format!("[2/6] encode with {}: {encoded}", encode.model));

    let ask_store = match ask {
        Some((args, model)) => {
            let asked = crate::ask::ask_files(&args)?;
            log(format!("[2b] ask with {model}: {asked}"));
            Some(ask_store)
        }
        None => None,
    };

    let t = Instant::now();
    let features = out.join("features.parquet");
    let f = build_features(&FeatureArgs {
        rows,
        restated: Default::default(),
        store: cfg.encode.store.clone(),
        encoder: encoded.query.clone(),
        out: features.clone(),
        pca: PcaOption::choose(cfg.features.pca.map(|k| k.usize()), cfg.train.train_until.clone(), None),
        ask_store,
    })?;
    log(format!("[3/6] features: {f} ({:.1}s)", t.elapsed().as_secs_f64()));

    let model_dir = out.join("model");
    let train_args = TrainArgs { features: features.clone(), config: cfg.train.clone(), out: model_dir.clone() };
    // Walk forward: evaluate reads each fold's validation rows from the predictions' `split`
    // column; importance and the card are the last fold's (the model the live week would use).
    let (card, predictions, model_dir, scored_by_card) = match cfg.train.walk_forward {
        Some(_) => {
            let w = walk_forward(&train_args)?;
            log(format!("[4/6] train: {w}"));
            let last = w.folds.last().map(|f| PathBuf::from(&f.model)).unwrap_or(model_dir);
            (crate::model::Model::load(&last)?.card, PathBuf::from(&w.predictions), last, false)
        }
        None => {
            let trained = train(&train_args)?;
            log(format!("[4/6] train: {trained}"));
            (trained.card, trained.predictions, model_dir, true)
        }
    };

    let mut eval = EvaluateArgs::new(predictions, features.clone(), out.join("evaluate"));
    eval.target = card.target.clone();
    eval.model = scored_by_card.then(|| model_dir.clone());
    eval.features = Some(features.clone());
    eval.benchmark = cfg.evaluate.benchmark.clone();
    if let Some((_, ds)) = &numerai {
        // Payout scores on the validation eras, and as Numerai pays over each era's universe.
        (eval.neutralizers, eval.sample_weights) = (Some(ds.neutralizers.clone()), Some(ds.sample_weights.clone()));
    }
    let report = evaluate(&eval)?;
    let report_md = out.join("evaluate/report.md");
    log(format!("[5/6] evaluate: OOS numerai_corr {} → {}", report.summary, report_md.display()));

    let imp = importance(&ImportanceArgs {
        model: model_dir.clone(),
        features: features.clone(),
        out: out.join("importance"),
        top: 20,
    })?;
    let top: Vec<String> = imp
        .features
        .iter()
        .take(5)
        .map(|r| format!("{} {}", r.feature, r.mda.mean.map_or("n/a".into(), |m| format!("{m:+.4}"))))
        .collect();
    log(format!("[6/6] importance: top by OOS MDA ({} eras): {}", imp.eras.len(), top.join(", ")));
    let submission = match &numerai {
        Some((n, ds)) => live_signal(n, ds, &report, &model_dir, &features, &out)?,
        None => Vec::new(),
    };
    Ok(RunSummary { out, card, report, stages, submission })
}

/// `[numerai]`'s last stage: the live rows predicted into `RUN/signal.csv`, checked; returns the
/// lines the run ends with (payout scores, the signal file, the `submit --dry-run` command).
fn live_signal(
    n: &crate::numerai::dataset::NumeraiConfig,
    ds: &crate::numerai::dataset::Dataset,
    report: &EvalReport,
    model: &std::path::Path,
    features: &std::path::Path,
    out: &std::path::Path,
) -> Result<Vec<String>> {
    let signal = out.join("signal.csv");
    let args = crate::train::PredictArgs {
        model: model.to_path_buf(),
        features: crate::numerai::dataset::live_rows(features, out)?,
        out: signal.clone(),
        latest_only: true,
        smooth: None,
        smooth_with: None,
    };
    let written = crate::train::predict(&args)?;
    let paid = report.payout.as_ref().and_then(|p| p.as_paid.as_ref());
    let (alpha, nc) = (paid.and_then(|p| p.alpha.as_ref()), paid.and_then(|p| p.neutral_corr.as_ref()));
    crate::numerai::dataset::closing_lines(n, ds, alpha, nc, &signal, &written)
}
