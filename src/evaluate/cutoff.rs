//! `evaluate`'s knowledge-cutoff split: a language model whose training data runs to date D may
//! know what followed a headline published before D, so out-of-sample corr is reported for the
//! eras before D and from D on separately, with a warning when validation eras precede D.
//!
//! An era counts as before the cutoff when its Friday is earlier than D. Eras just after D still
//! see headlines from before D inside the look-back window: read the first window after D with
//! care too.

use serde::{Deserialize, Serialize};

use super::EvaluateArgs;
use crate::era::yyyymmdd;
use crate::error::{Error, Result};
use crate::metrics::{EraScore, Summary, summarize};
use crate::model::{Model, Split};
use crate::provenance::Provenance;
use crate::report::era_text;

/// Out-of-sample corr split at the knowledge cutoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffScores {
    /// The cutoff (YYYY-MM-DD).
    pub date: String,
    /// Where it was read: `--knowledge-cutoff`, or the provenance of the model card, predictions
    /// or feature table (recorded by `ask --knowledge-cutoff`).
    pub source: String,
    /// numerai_corr of the scored eras before the cutoff (the model may have known their future).
    pub before: Option<Summary>,
    /// numerai_corr of the scored eras on or after the cutoff.
    pub after: Option<Summary>,
    /// Validation eras (or scored eras, without a model card) before the cutoff.
    pub validation_before: usize,
    /// Validation (or scored) eras in all.
    pub validation: usize,
    /// The warning printed when validation eras precede the cutoff.
    pub warning: Option<String>,
}

/// The cutoff as YYYYMMDD; a date that is not YYYY-MM-DD is an error naming `source`.
fn cutoff_era(date: &str, source: &str) -> Result<i32> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(yyyymmdd)
        .map_err(|_| Error::Config(format!("knowledge cutoff {date:?} from {source} is not a date: write YYYY-MM-DD")))
}

/// The knowledge cutoff and where it came from: `--knowledge-cutoff`, else the model card's,
/// the predictions' or the feature table's provenance; `None` when none records one.
pub fn find_cutoff(args: &EvaluateArgs, model: Option<&Model>) -> Result<Option<(String, String)>> {
    if let Some(d) = &args.knowledge_cutoff {
        return Ok(Some((d.clone(), "--knowledge-cutoff".into())));
    }
    let card = model.and_then(|m| m.card.provenance.as_ref()?.knowledge_cutoff.clone());
    if let Some(d) = card {
        return Ok(Some((d, "the model card's provenance (ask --knowledge-cutoff)".into())));
    }
    let mut files = vec![("the predictions' provenance", &args.predictions)];
    files.extend(args.features.iter().map(|f| ("the feature table's provenance", f)));
    for (what, path) in files {
        if let Some(d) = Provenance::read(path)?.and_then(|p| p.knowledge_cutoff) {
            return Ok(Some((d, format!("{what} ({})", path.display()))));
        }
    }
    Ok(None)
}

/// Splits the out-of-sample eras' corr at the cutoff and counts the validation eras before it.
pub fn cutoff_scores(date: &str, source: &str, per_era: &[EraScore], split: Option<&Split>) -> Result<CutoffScores> {
    let at = cutoff_era(date, source)?;
    let side = |before: bool| -> Option<Summary> {
        let c: Vec<f64> = per_era.iter().filter(|e| (e.era < at) == before).map(|e| e.corr).collect();
        (!c.is_empty()).then(|| summarize(&c))
    };
    let validation: Vec<i32> = match split {
        Some(s) => s.validation.clone(),
        None => per_era.iter().map(|e| e.era).collect(),
    };
    let early: Vec<i32> = validation.iter().copied().filter(|&e| e < at).collect();
    let warning = (!early.is_empty()).then(|| {
        format!(
            "{} of {} validation eras ({} → {}) precede the language model's knowledge cutoff {date} (from {source}): \
             a model that knew the future of its training data scores them; judge by the eras after it",
            early.len(),
            validation.len(),
            era_text(early[0]),
            era_text(*early.last().expect("not empty"))
        )
    });
    Ok(CutoffScores {
        date: date.into(),
        source: source.into(),
        before: side(true),
        after: side(false),
        validation_before: early.len(),
        validation: validation.len(),
        warning,
    })
}

/// The score-table rows of the split (before, after).
pub fn cutoff_rows(c: &CutoffScores, row: impl Fn(&str, &Summary) -> Vec<String>) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    if let Some(s) = &c.before {
        rows.push(row(&format!("numerai_corr (OOS, before cutoff {})", c.date), s));
    }
    if let Some(s) = &c.after {
        rows.push(row(&format!("numerai_corr (OOS, from cutoff {})", c.date), s));
    }
    rows
}

/// report.md's paragraph on the cutoff.
pub fn cutoff_markdown(c: &CutoffScores) -> String {
    let mut md = format!(
        "\nKnowledge cutoff of the language model: {} (from {}). Eras before it may be scored by a model that \
         knew their future; the table splits OOS corr there.\n",
        c.date, c.source
    );
    if let Some(w) = &c.warning {
        md += &format!("\n**Warning:** {w}.\n");
    }
    md
}
