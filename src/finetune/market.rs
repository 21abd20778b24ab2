//! Recipe (b): market-derived labels. Each headline is labelled with the target bin of the first
//! row that sees it under the join's point-in-time rule (the earliest cutoff strictly after its
//! publication, within the look-back window), and only when that row is in a training era.
//!
//! The join's options come from the rows file's provenance and visibility is re-derived with the
//! join's own code (`pit::redo_join`), so the labels obey exactly the rule the features obey.

use std::fmt;
use std::path::PathBuf;

use serde_json::json;

use super::{Classifier, EpochMetrics, Fit};
use crate::era::eras_of_days;
use crate::error::{Error, Result};
use crate::model::Split;
use crate::pit::{Visibility, recorded_join, redo_join};
use crate::provenance::InputFile;

/// How a target value becomes a class; written as its class count, 5 or 3 (flag and TOML alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum LabelBins {
    /// One class per Numerai bin: 0, 0.25, 0.5, 0.75, 1 → `target_0` … `target_4`.
    Five,
    /// Bin 0 (bottom) → `down`, bin 4 (top) → `up`, bins 0.25–0.75 → `flat`.
    Three,
}

impl TryFrom<i64> for LabelBins {
    type Error = String;
    fn try_from(n: i64) -> std::result::Result<Self, String> {
        match n {
            5 => Ok(LabelBins::Five),
            3 => Ok(LabelBins::Three),
            _ => Err(format!("{n} label bins: use 5 (one class per target bin) or 3 (down/flat/up)")),
        }
    }
}

impl From<LabelBins> for i64 {
    fn from(b: LabelBins) -> i64 {
        match b {
            LabelBins::Five => 5,
            LabelBins::Three => 3,
        }
    }
}

impl std::str::FromStr for LabelBins {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let n: i64 =
            s.trim().parse().map_err(|_| format!("'{s}': use 5 (one class per target bin) or 3 (down/flat/up)"))?;
        LabelBins::try_from(n)
    }
}

impl std::fmt::Display for LabelBins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        i64::from(*self).fmt(f)
    }
}

impl LabelBins {
    /// 5 or 3; anything else is refused with the choices.
    pub fn from_count(n: usize) -> Result<LabelBins> {
        LabelBins::try_from(n as i64).map_err(|e| Error::Config(format!("--label-bins / [finetune] label_bins: {e}")))
    }

    /// The head's class names, in id order.
    pub fn names(self) -> Vec<String> {
        match self {
            LabelBins::Five => (0..5).map(|i| format!("target_{i}")).collect(),
            LabelBins::Three => ["down", "flat", "up"].map(String::from).to_vec(),
        }
    }

    /// The class id of a target bin (0..=4).
    pub fn class(self, bin: u32) -> u32 {
        match (self, bin) {
            (LabelBins::Five, b) => b,
            (LabelBins::Three, 0) => 0,
            (LabelBins::Three, 4) => 2,
            (LabelBins::Three, _) => 1,
        }
    }
}

/// The bin (0..=4) of a Numerai target value 0, 0.25, 0.5, 0.75 or 1; `None` for anything else.
pub fn target_bin(v: f32) -> Option<u32> {
    let x = v as f64 * 4.0;
    let r = x.round();
    ((x - r).abs() < 1e-4 && (0.0..=4.0).contains(&r)).then_some(r as u32)
}

/// Where recipe (b)'s labels come from.
#[derive(Debug, Clone)]
pub struct LabelSource {
    /// The join's output (its metadata records the join's options and headlines).
    pub rows: PathBuf,
    /// The headlines file, when it has moved since the join (its content must be the join's).
    pub headlines: Option<PathBuf>,
    /// Target column (legacy and v2 names are aliases).
    pub target: String,
    /// Five classes or three.
    pub bins: LabelBins,
    /// Train on eras up to this Friday (YYYY-MM-DD) instead of `data_type == train`.
    pub train_until: Option<String>,
    /// Eras between the last training era and the first validation era.
    pub embargo: u32,
}

/// Labelled headlines and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketLabels {
    /// Headline texts, in the headlines file's order.
    pub texts: Vec<String>,
    /// Class ids of `labels`.
    pub ids: Vec<u32>,
    /// Each labelled headline's row in the headlines file (0-based).
    pub headlines: Vec<usize>,
    /// Each labelled headline's label row in the rows file (0-based).
    pub label_rows: Vec<usize>,
    /// The head's classes.
    pub labels: Vec<String>,
    /// The target column read.
    pub target: String,
    /// Train, embargo and validation eras.
    pub split: Split,
    /// Headlines whose first row is not a training row (embargo, validation, live): never seen.
    pub dropped_not_training: usize,
    /// Headlines whose first row is a training row without a target.
    pub dropped_no_target: usize,
    /// Headlines no row sees (other tickers, outside every window, duplicates).
    pub never_visible: usize,
    /// Targets of non-training rows used as labels (0 by construction; reported as a check).
    pub validation_labels_read: usize,
    /// Where the headlines were read.
    pub headlines_path: PathBuf,
}

/// Per headline (input index): the row that sees it first (the earliest cutoff), if any.
pub fn first_rows(vis: &Visibility, n_headlines: usize) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..vis.rows.len()).collect();
    order.sort_by_key(|&r| (vis.rows[r].1, r));
    let mut first = vec![None; n_headlines];
    for r in order {
        for (h, _) in vis.index.members(vis.rows[r].0.range) {
            first[h as usize].get_or_insert(r);
        }
    }
    first
}

/// Labels every headline by the target bin of the first row that sees it, keeping only those
/// whose first row is in a training era.
pub fn market_labels(src: &LabelSource) -> Result<MarketLabels> {
    let (join, headlines_path) = recorded_join(&src.rows, src.headlines.as_deref())?;
    let (targets, headlines, vis) = redo_join(&src.rows, &join, &headlines_path)?;
    let (target, y) = crate::split::target_values(&targets, &src.target)?;
    let eras = eras_of_days(&targets.fridays);
    let has_target: Vec<bool> = y.iter().map(|v| !v.is_nan()).collect();
    let split = crate::split::era_split(&targets, &eras, &has_target, src.train_until.as_deref(), src.embargo)?;
    let mut out = MarketLabels {
        texts: Vec::new(),
        ids: Vec::new(),
        headlines: Vec::new(),
        label_rows: Vec::new(),
        labels: src.bins.names(),
        target,
        split,
        dropped_not_training: 0,
        dropped_no_target: 0,
        never_visible: 0,
        validation_labels_read: 0,
        headlines_path,
    };
    for (h, first) in first_rows(&vis, headlines.len()).into_iter().enumerate() {
        let Some(r) = first else {
            out.never_visible += 1;
            continue;
        };
        if out.split.role(eras[r]) != "train" {
            out.dropped_not_training += 1;
            continue;
        }
        out.validation_labels_read += usize::from(out.split.validation.binary_search(&eras[r]).is_ok());
        if y[r].is_nan() {
            out.dropped_no_target += 1;
            continue;
        }
        let bin = target_bin(y[r]).ok_or_else(|| {
            Error::at(
                &src.rows,
                Some(r + 1),
                &out.target,
                format!(
                    "target {} is not one of Numerai's bins 0, 0.25, 0.5, 0.75, 1: pick a binned target with --target",
                    y[r]
                ),
            )
        })?;
        out.texts.push(headlines.text.get(h).unwrap_or("").to_string());
        out.ids.push(src.bins.class(bin));
        out.headlines.push(h);
        out.label_rows.push(r);
    }
    Ok(out)
}

/// What a recipe (b) run needs.
#[derive(Debug, Clone)]
pub struct MarketArgs {
    /// The checkpoint, output folder, passes and optimiser.
    pub training: super::Training,
    /// Where the labels come from.
    pub source: LabelSource,
}

/// What a recipe (b) run did.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketSummary {
    /// Headlines trained on.
    pub train: usize,
    /// Headlines held out.
    pub held_out: usize,
    /// Headlines labelled (train + held out).
    pub labelled: usize,
    /// Headlines dropped because their first row is not a training row.
    pub dropped_not_training: usize,
    /// Targets of non-training rows used as labels (always 0).
    pub validation_labels_read: usize,
    /// Training eras.
    pub train_eras: usize,
    /// The head's classes.
    pub labels: Vec<String>,
    /// Per-epoch numbers.
    pub epochs: Vec<EpochMetrics>,
}

impl fmt::Display for MarketSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fine-tuned on {} headlines labelled from {} training eras ({} held out), {} dropped as not seen first by a training row, classes {:?}",
            self.train, self.train_eras, self.held_out, self.dropped_not_training, self.labels
        )
    }
}

/// Labelled headlines per class name.
fn class_counts(m: &MarketLabels) -> serde_json::Map<String, serde_json::Value> {
    let mut n = vec![0usize; m.labels.len()];
    for &id in &m.ids {
        n[id as usize] += 1;
    }
    m.labels.iter().zip(n).map(|(l, c)| (l.clone(), c.into())).collect()
}

/// The card's recipe fields: inputs, eras used and the counts.
fn market_card(args: &MarketArgs, m: &MarketLabels, train: usize, held_out: usize) -> Result<serde_json::Value> {
    Ok(json!({
        "recipe": "market", "max_len": args.training.max_len,
        "data": {
            "rows": InputFile::of(&args.source.rows)?, "headlines": InputFile::of(&m.headlines_path)?,
            "target": m.target, "label_bins": m.labels.len(), "train_until": args.source.train_until,
            "embargo_eras": args.source.embargo,
            "eras": {"train": m.split.train, "embargo": m.split.embargo, "validation": m.split.validation},
            "labelled": m.texts.len(), "per_class": class_counts(m), "train": train, "held_out": held_out,
            "dropped_not_training": m.dropped_not_training, "dropped_no_target": m.dropped_no_target,
            "never_visible": m.never_visible, "validation_labels_read": m.validation_labels_read,
        },
    }))
}

/// Fine-tunes on market-derived labels, writing the folder and card after every epoch.
pub fn finetune_market(args: &MarketArgs, show: bool) -> Result<MarketSummary> {
    let _out = args.training.start()?;
    let m = market_labels(&args.source)?;
    let (tr, ho) = super::labelled::split(m.texts.len(), args.training.held_out, args.training.hyper.seed);
    if tr.is_empty() {
        return Err(Error::input(
            &args.source.rows,
            format!(
                "no headline is seen first by a training row with a target ({} seen first by other rows): check --train-until / data_type and the headlines' dates",
                m.dropped_not_training
            ),
        ));
    }
    let device = crate::encode::model::device(&args.training.device)?;
    let model = Classifier::load(&args.training.model, &device, Some(&m.labels), args.training.hyper.seed)?;
    let encodings = super::tokenize(&args.training.model, &m.texts, args.training.max_len)?;
    let fit = Fit {
        base: &args.training.model,
        out: &args.training.out,
        encodings: &encodings,
        ids: &m.ids,
        split: (&tr, &ho),
        epochs: args.training.epochs,
        batch_size: args.training.batch_size,
        warmup_share: args.training.warmup_share,
        card: market_card(args, &m, tr.len(), ho.len())?,
        show,
    };
    let epochs = super::fit(model, &args.training.hyper, fit)?;
    Ok(MarketSummary {
        train: tr.len(),
        held_out: ho.len(),
        labelled: m.texts.len(),
        dropped_not_training: m.dropped_not_training,
        validation_labels_read: m.validation_labels_read,
        train_eras: m.split.train.len(),
        labels: m.labels,
        epochs,
    })
}
