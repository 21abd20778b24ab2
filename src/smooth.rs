//! Churn control: this week's ranks blended with last week's signal, an exponential moving
//! average on ranks (`A·last + (1 − A)·rank`, re-ranked into (0, 1)). A ticker without news this
//! week keeps last week's value decayed toward the middle (`0.5 + A·(last − 0.5)`); a ticker new
//! this week starts at its rank. Week t only ever reads weeks ≤ t.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::metrics::{era_groups, rank};

/// Refuses a smoothing weight outside [0, 1): the share of last week's rank kept.
pub fn check_weight(a: f64) -> Result<()> {
    if (0.0..1.0).contains(&a) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "--smooth {a}: the share of last week's rank kept must be at least 0 and below 1 (0 = no smoothing; 0.5 is a strong blend)"
    )))
}

/// One week: the signal of `tickers` (`values` on any scale, `has_news` per row) blended with
/// `previous` (ticker → last week's signal), re-ranked into (0, 1).
pub fn blend_week(
    tickers: &[String],
    values: &[f64],
    has_news: &[bool],
    previous: &HashMap<String, f64>,
    a: f64,
) -> Vec<f64> {
    let now = rank(values);
    let blended: Vec<f64> = tickers
        .iter()
        .enumerate()
        .map(|(i, t)| match previous.get(t) {
            Some(p) if has_news[i] => a * p + (1.0 - a) * now[i],
            Some(p) => 0.5 + a * (p - 0.5),
            None => now[i],
        })
        .collect();
    rank(&blended)
}

/// Every era blended with the one before, in time order (`eras` as YYYYMMDD): the signal a weekly
/// job with `--smooth a` would have sent each week, from the raw predictions.
pub fn smooth_eras(eras: &[i32], tickers: &[String], values: &[f64], has_news: &[bool], a: f64) -> Vec<f64> {
    let mut out = vec![f64::NAN; values.len()];
    let mut previous: HashMap<String, f64> = HashMap::new();
    for (_, rows) in era_groups(eras) {
        let pick = |i: &usize| tickers[*i].clone();
        let week_tickers: Vec<String> = rows.iter().map(pick).collect();
        let week_values: Vec<f64> = rows.iter().map(|&i| values[i]).collect();
        let week_news: Vec<bool> = rows.iter().map(|&i| has_news[i]).collect();
        let blended = blend_week(&week_tickers, &week_values, &week_news, &previous, a);
        previous = week_tickers.into_iter().zip(blended.iter().copied()).collect();
        for (&i, b) in rows.iter().zip(blended) {
            out[i] = b;
        }
    }
    out
}

/// Last week's signal file (CSV or parquet): ticker (upper-cased) → signal, keyed by the column
/// `ticker_column` or a usual Numerai ticker column. Refuses a ticker on two rows, and a file
/// that gives none of this week's `tickers` a value (smoothing would silently do nothing).
pub fn read_previous(path: &Path, ticker_column: &str, tickers: &[String]) -> Result<HashMap<String, f64>> {
    let rows = crate::data::signal::read_signal_rows(path, Some(ticker_column))?;
    rows.check_unique(path)?;
    let n_rows = rows.values.len();
    let (ids, values) = rows.usable();
    let previous: HashMap<String, f64> = ids.into_iter().zip(values).collect();
    let shared = tickers.iter().filter(|t| previous.contains_key(*t)).count();
    if shared == 0 {
        return Err(Error::input(
            path,
            format!(
                "--smooth-with: this file shares 0 of this week's {} tickers ({n_rows} rows, {} with a ticker and a finite signal), \
                 so smoothing would change nothing: pass last week's signal for the same universe and ticker column \
                 (predict's output from last week), or drop --smooth",
                tickers.len(),
                previous.len()
            ),
        ));
    }
    if 2 * shared < tickers.len() {
        eprintln!(
            "warning: {}: --smooth-with shares only {shared} of this week's {} tickers: the others are not smoothed",
            path.display(),
            tickers.len()
        );
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("T{i}")).collect()
    }

    #[test]
    fn blending_keeps_ranks_inside_and_decays_tickers_without_news() {
        let t = names(4);
        let prev: HashMap<String, f64> = [("T0".to_string(), 0.9), ("T1".to_string(), 0.1)].into();
        let b = blend_week(&t, &[1.0, 2.0, 3.0, 4.0], &[true, false, true, true], &prev, 0.5);
        assert!(b.iter().all(|v| *v > 0.0 && *v < 1.0));
        // T0 had news: 0.5·0.9 + 0.5·0.125 = 0.51; T1 without news: 0.5 + 0.5·(0.1 − 0.5) = 0.3.
        assert!(b[1] < b[0], "{b:?}");
        assert_eq!(blend_week(&t, &[1.0, 2.0, 3.0, 4.0], &[true; 4], &prev, 0.0), rank(&[1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn smoothing_never_looks_ahead() {
        let n = 6;
        let eras: Vec<i32> = (0..4).flat_map(|w| vec![20240105 + w * 7; n]).collect();
        let tickers: Vec<String> = (0..4).flat_map(|_| names(n)).collect();
        let values: Vec<f64> = (0..eras.len()).map(|i| ((i * 37) % 11) as f64).collect();
        let news: Vec<bool> = (0..eras.len()).map(|i| i % 5 != 0).collect();
        let all = smooth_eras(&eras, &tickers, &values, &news, 0.6);
        for weeks in 1..4 {
            let k = weeks * n;
            let truncated = smooth_eras(&eras[..k], &tickers[..k], &values[..k], &news[..k], 0.6);
            assert_eq!(truncated, all[..k], "week {weeks} changed when later weeks were added");
        }
    }

    #[test]
    fn weights_outside_zero_to_one_are_refused() {
        for bad in [f64::NAN, 1.0, -0.1, f64::INFINITY] {
            assert!(check_weight(bad).unwrap_err().to_string().contains("--smooth"));
        }
        assert!(check_weight(0.0).is_ok() && check_weight(0.9).is_ok());
    }
}
