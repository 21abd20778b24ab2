//! The scores Numerai pays Signals on, per out-of-sample era (numerai-tools' formulas in
//! [`crate::metrics`]): neutral correlation to the era's neutralizers, alpha with its sample
//! weights, and contribution to a meta-model column, plain and neutral.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EvaluateArgs, OutOfSample, Scored, align, no_match, pick};
use crate::data::targets::KeyedTable;
use crate::error::{Error, Result};
use crate::metrics::{self, Summary};

/// One out-of-sample era's payout scores (None: the input it needs was not given; NaN: too few rows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutEra {
    /// The era (YYYYMMDD).
    pub era: i32,
    /// numerai-tools `neutral_correlation` to the neutralizers.
    pub neutral_corr: Option<f64>,
    /// numerai-tools `alpha` with the sample weights, on the rows the neutralizer file covers.
    pub alpha: Option<f64>,
    /// numerai-tools `correlation_contribution` to the meta model.
    pub mmc: Option<f64>,
    /// numerai-tools `neutral_contribution` to the meta model, neutralised.
    pub neutral_mmc: Option<f64>,
}

/// The payout scores over the out-of-sample eras.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayoutScores {
    /// The neutralizer file, its numeric columns, and the sample-weights file.
    pub neutralizers: Option<String>,
    /// Neutralizer columns used.
    pub neutralizer_columns: Vec<String>,
    /// The sample-weights file.
    pub sample_weights: Option<String>,
    /// The meta-model column of the targets file.
    pub meta_model: Option<String>,
    /// Out-of-sample prediction rows the neutralizer file has no row for (left out of alpha).
    pub rows_without_neutralizers: usize,
    /// Statistics of each score over the eras where it is defined.
    pub neutral_corr: Option<Summary>,
    /// Alpha's statistics.
    pub alpha: Option<Summary>,
    /// Meta-model contribution's statistics.
    pub mmc: Option<Summary>,
    /// Neutral meta-model contribution's statistics.
    pub neutral_mmc: Option<Summary>,
    /// Per era.
    pub per_era: Vec<PayoutEra>,
    /// Eras whose rows all have sample weight 0: their alpha is absent.
    #[serde(default)]
    pub zero_weight_eras: Vec<i32>,
}

/// The payout inputs aligned to the out-of-sample rows.
struct Aligned {
    neutralizers: Option<Vec<Vec<f64>>>,
    covered: Vec<bool>,
    weights: Option<Vec<f64>>,
    meta: Option<Vec<f64>>,
}

/// Payout scores when `--neutralizers` or `--meta-model` was given, else None.
pub(super) fn payout_scores(
    args: &EvaluateArgs,
    preds: &KeyedTable,
    targets: &KeyedTable,
    s: &Scored,
    oos: &OutOfSample,
) -> Result<Option<PayoutScores>> {
    if args.neutralizers.is_none() && args.meta_model.is_none() {
        if let Some(w) = &args.sample_weights {
            return Err(Error::input(w, "--sample-weights needs --neutralizers (alpha uses both)"));
        }
        return Ok(None);
    }
    let (aligned, columns) = align_inputs(args, preds, targets, s, oos)?;
    let (p, t) = (pick(&s.p, &oos.rows), pick(&s.t, &oos.rows));
    let groups = metrics::era_groups(&oos.eras);
    let per_era: Vec<PayoutEra> = groups.iter().map(|(era, rows)| era_scores(*era, rows, &p, &t, &aligned)).collect();
    let zero_weight_eras = groups.iter().filter(|(_, rows)| all_zero_weight(rows, &aligned)).map(|g| g.0).collect();
    let stat = |f: fn(&PayoutEra) -> Option<f64>| -> Option<Summary> {
        metrics::summarize_defined(&per_era.iter().filter_map(f).collect::<Vec<_>>())
    };
    Ok(Some(PayoutScores {
        neutralizers: args.neutralizers.as_ref().map(|p| p.display().to_string()),
        neutralizer_columns: columns,
        sample_weights: args.sample_weights.as_ref().map(|p| p.display().to_string()),
        meta_model: args.meta_model.clone(),
        rows_without_neutralizers: aligned.covered.iter().filter(|c| !**c).count(),
        neutral_corr: stat(|e| e.neutral_corr),
        alpha: stat(|e| e.alpha),
        mmc: stat(|e| e.mmc),
        neutral_mmc: stat(|e| e.neutral_mmc),
        per_era,
        zero_weight_eras,
    }))
}

/// The report.md line for eras whose alpha is absent because every sample weight is 0.
pub(super) fn payout_markdown(p: &PayoutScores) -> String {
    if p.zero_weight_eras.is_empty() {
        return String::new();
    }
    let eras: Vec<String> = p.zero_weight_eras.iter().map(|&e| crate::report::era_text(e)).collect();
    format!(
        "\nAlpha is absent in {} eras where every sample weight is 0 ({}): nothing is weighted there.\n",
        eras.len(),
        eras.join(", ")
    )
}

/// One era's scores from the rows `rows` (indices into the out-of-sample rows).
fn era_scores(era: i32, rows: &[usize], p: &[f64], t: &[f64], a: &Aligned) -> PayoutEra {
    let (p, t) = (pick(p, rows), pick(t, rows));
    let n: Option<Vec<Vec<f64>>> = a.neutralizers.as_ref().map(|cols| cols.iter().map(|c| pick(c, rows)).collect());
    let m = a.meta.as_ref().map(|m| pick(m, rows));
    let alpha = match (&a.weights, &a.neutralizers) {
        (Some(_), Some(_)) if all_zero_weight(rows, a) => None,
        (Some(w), Some(cols)) => {
            let u: Vec<usize> = rows.iter().copied().filter(|&r| a.covered[r]).collect();
            let local: Vec<usize> = (0..rows.len()).filter(|&k| a.covered[rows[k]]).collect();
            let cols: Vec<Vec<f64>> = cols.iter().map(|c| pick(c, &u)).collect();
            Some(metrics::alpha(&pick(&p, &local), &cols, &pick(w, &u), &pick(&t, &local)))
        }
        _ => None,
    };
    PayoutEra {
        era,
        neutral_corr: n.as_ref().map(|n| metrics::neutral_correlation(&p, n, &t)),
        alpha,
        mmc: m.as_ref().map(|m| metrics::correlation_contribution(&p, m, &t)),
        neutral_mmc: m.as_ref().zip(n.as_ref()).map(|(m, n)| metrics::neutral_contribution(&p, m, n, &t)),
    }
}

/// Whether every covered row among `rows` (one era's) that has a sample weight has weight 0:
/// alpha weighs nothing there and is absent.
fn all_zero_weight(rows: &[usize], a: &Aligned) -> bool {
    let Some(w) = &a.weights else { return false };
    let mut present = rows.iter().copied().filter(|&r| a.covered[r] && !w[r].is_nan()).peekable();
    present.peek().is_some() && present.all(|r| w[r] == 0.0)
}

/// Reads the neutralizer, sample-weight and meta-model inputs and aligns them to the
/// out-of-sample rows by (ticker, era); also returns the neutralizer column names.
fn align_inputs(
    args: &EvaluateArgs,
    preds: &KeyedTable,
    targets: &KeyedTable,
    s: &Scored,
    oos: &OutOfSample,
) -> Result<(Aligned, Vec<String>)> {
    let mut a = Aligned { neutralizers: None, covered: vec![true; oos.rows.len()], weights: None, meta: None };
    let mut names = Vec::new();
    if let Some(path) = &args.neutralizers {
        let f = read_aligned(path, preds, oos, false)?;
        (a.neutralizers, a.covered, names) = (Some(f.columns), f.covered, f.names);
    }
    if let Some(path) = &args.sample_weights {
        a.weights = read_aligned(path, preds, oos, true)?.columns.pop();
    }
    if let Some(col) = &args.meta_model {
        let all = targets.f64_column(col)?;
        a.meta = Some(oos.rows.iter().map(|&i| s.matched[i].map(|j| all[j]).unwrap_or(f64::NAN)).collect());
    }
    Ok((a, names))
}

/// A keyed file's numeric columns aligned to the out-of-sample rows.
struct AlignedFile {
    /// Columns, NaN where the file has no row.
    columns: Vec<Vec<f64>>,
    /// Per out-of-sample row: whether the file has it.
    covered: Vec<bool>,
    /// Column names.
    names: Vec<String>,
}

/// Reads a keyed file and aligns its numeric columns to the out-of-sample rows; `single`:
/// exactly one column (sample weights).
fn read_aligned(path: &Path, preds: &KeyedTable, oos: &OutOfSample, single: bool) -> Result<AlignedFile> {
    let table = KeyedTable::read(path)?;
    let columns = table.numeric_columns()?;
    if columns.is_empty() || (single && columns.len() != 1) {
        let want = if single { "exactly one numeric column" } else { "numeric neutralizer columns" };
        return Err(Error::input(path, format!("needs {want} besides the ticker and date columns")));
    }
    if single {
        check_weights(path, &columns[0])?;
    }
    let at = align(preds, &table);
    let covered: Vec<bool> = oos.rows.iter().map(|&i| at[i].is_some()).collect();
    if !covered.iter().any(|c| *c) {
        return Err(no_match(preds, &table, if single { "--sample-weights" } else { "--neutralizers" }));
    }
    let aligned = columns
        .iter()
        .map(|(_, c)| oos.rows.iter().map(|&i| at[i].map(|j| c[j]).unwrap_or(f64::NAN)).collect())
        .collect();
    Ok(AlignedFile { columns: aligned, covered, names: columns.into_iter().map(|c| c.0).collect() })
}

/// Refuses a sample weight that is missing, NaN, infinite or negative, naming its row.
fn check_weights(path: &Path, (name, w): &(String, Vec<f64>)) -> Result<()> {
    match w.iter().position(|v| !v.is_finite() || *v < 0.0) {
        Some(i) => Err(Error::at(
            path,
            Some(i + 1),
            name,
            format!(
                "sample weight {} is not usable: weights must be finite and at least 0 (0 leaves a row out); \
                 fix or drop the row",
                if w[i].is_nan() { "missing (or NaN)".to_string() } else { w[i].to_string() }
            ),
        )),
        None => Ok(()),
    }
}
