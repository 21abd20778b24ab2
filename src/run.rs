//! `signalkit run`: join → encode → features → train → evaluate → importance, every stage's
//! output kept in one run folder.

use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::data::headlines::HeadlineOptions;
use crate::data::tickers::TickerRule;
use crate::data::write_bytes_atomic;
use crate::encode::hub::ModelSource;
use crate::error::{Error, Result};
use crate::evaluate::{EvalReport, EvaluateArgs, ImportanceArgs, evaluate, importance};
use crate::features::PcaOption;
use crate::train::{ModelCard, TrainArgs, train};
use crate::{EncodeArgs, FeatureArgs, JoinArgs, Window, build_features, encode_files, join_files};

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
}

/// Runs every stage from `cfg`, printing one line per stage as it finishes.
pub fn run(cfg: &Config) -> Result<RunSummary> {
    let out = cfg.out.clone();
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    write_bytes_atomic(&out.join("config.toml"), cfg.to_toml()?.as_bytes())?;
    let d = &cfg.data;
    let zone = d
        .timezone
        .as_deref()
        .map(|z| z.parse().map_err(|e| Error::Config(format!("data.timezone {z:?}: {e}"))))
        .transpose()?;
    let headline_options = HeadlineOptions {
        ticker_column: d.ticker_col.clone(),
        time_column: d.time_col.clone(),
        text_column: d.text_col.clone(),
        zone,
    };
    let tickers = match &d.ticker_map {
        Some(p) => TickerRule::from_map_file(p)?,
        None => TickerRule::Suffix(d.ticker_suffix.clone()),
    };
    let window = Window { days: cfg.join.window_days, cutoff_hours: cfg.join.cutoff_hours };
    let mut stages = Vec::new();
    let mut log = |line: String| {
        eprintln!("{line}");
        stages.push(line);
    };

    let t = Instant::now();
    let rows = out.join("rows.parquet");
    let joined = join_files(&JoinArgs {
        targets: d.targets.clone(),
        out: rows.clone(),
        window,
        tickers,
        ticker_map: d.ticker_map.clone(),
        headlines: d.headlines.clone(),
        headline_options: headline_options.clone(),
    })?;
    log(format!("[1/6] join: {joined} ({:.1}s)", t.elapsed().as_secs_f64()));

    let mut source = ModelSource::new(&cfg.encode.model);
    source.revision = cfg.encode.revision.clone();
    source.offline |= cfg.encode.offline;
    let encoded = encode_files(&EncodeArgs {
        source,
        headlines: d.headlines.clone(),
        headline_options: headline_options.clone(),
        store: cfg.encode.store.clone(),
        device: cfg.encode.device.clone(),
        batch_size: cfg.encode.batch_size(),
        max_len: cfg.encode.max_len,
        precision: cfg.encode.dtype.parse().map_err(Error::Config)?,
        shard_size: 4096,
        progress: true,
    })?;
    log(format!("[2/6] encode: {encoded}"));

    let t = Instant::now();
    let features = out.join("features.parquet");
    let f = build_features(&FeatureArgs {
        rows,
        restated: Default::default(),
        store: cfg.encode.store.clone(),
        encoder: encoded.query.clone(),
        out: features.clone(),
        pca: cfg.features.pca.map(|k| PcaOption::Fit { k, until: cfg.train.train_until.clone() }),
    })?;
    log(format!(
        "[3/6] features: {} rows ({} with a headline), {} features ({:.1}s)",
        f.rows,
        f.with_headline,
        f.features,
        t.elapsed().as_secs_f64()
    ));

    let model_dir = out.join("model");
    let trained = train(&TrainArgs { features: features.clone(), config: cfg.train.clone(), out: model_dir.clone() })?;
    let c = &trained.card;
    log(format!(
        "[4/6] train: {} trees on {} rows ({} eras), {} features, {} embargo eras, {} validation eras ({:.1}s)",
        c.trees,
        c.rows_train,
        c.split.train.len(),
        c.features.len(),
        c.split.embargo.len(),
        c.split.validation.len(),
        c.train_seconds
    ));

    let mut eval = EvaluateArgs::new(trained.predictions.clone(), features.clone(), out.join("evaluate"));
    eval.target = c.target.clone();
    eval.model = Some(model_dir.clone());
    eval.features = Some(features.clone());
    eval.benchmark = cfg.evaluate.benchmark.clone();
    let report = evaluate(&eval)?;
    let s = &report.summary;
    log(format!(
        "[5/6] evaluate: OOS numerai_corr mean {:.4}, std {:.4}, sharpe {:.2}, max drawdown {:.4}, {:.0}% eras positive, {} eras → {}",
        s.mean,
        s.std,
        s.sharpe,
        s.max_drawdown,
        100.0 * s.share_positive,
        s.eras,
        out.join("evaluate/report.md").display()
    ));

    let imp = importance(&ImportanceArgs { model: model_dir, features, out: out.join("importance"), top: 20 })?;
    let top: Vec<String> = imp.iter().take(5).map(|r| format!("{} {:.1}%", r.feature, 100.0 * r.gain_share)).collect();
    log(format!("[6/6] importance: top by gain: {}", top.join(", ")));
    Ok(RunSummary { out, card: trained.card, report, stages })
}
