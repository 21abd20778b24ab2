//! The era split `train` and `finetune` share: which eras of a keyed table train, which are
//! embargoed and which validate (by `train_until` or the `data_type` column), and the target
//! column the split is drawn from.

use std::path::Path;

use polars::prelude::*;

use crate::data::targets::{KeyedTable, resolve_target};
use crate::era::{days_of_era, parse_era};
use crate::error::{Error, Result};
use crate::model::{Split, f32_values};

/// The longest embargo accepted, in weekly eras (ten years).
pub const MAX_EMBARGO_ERAS: u32 = 520;
/// Splits eras (YYYYMMDD, any order, repeats allowed) by `train_until` or, without it, by each
/// era's `data_type`; validation eras start more than `embargo` weeks after the last train era.
/// `labelled` says which eras have targets (only those can train or validate).
pub fn split_eras(
    path: &Path,
    eras: &[i32],
    data_types: Option<&[Option<String>]>,
    labelled: &[bool],
    train_until: Option<i32>,
    embargo: u32,
) -> Result<Split> {
    let mut role: std::collections::BTreeMap<i32, Option<String>> = Default::default();
    let mut has_target: std::collections::BTreeMap<i32, bool> = Default::default();
    for (i, &era) in eras.iter().enumerate() {
        *has_target.entry(era).or_default() |= labelled[i];
        let kind = match (train_until, data_types) {
            (Some(until), _) => Some(if era <= until { "train" } else { "validation" }.to_string()),
            (None, Some(types)) => types[i].clone(),
            (None, None) => {
                return Err(Error::input(
                    path,
                    "no data_type column to tell train from validation eras: pass --train-until YYYY-MM-DD",
                ));
            }
        };
        match role.get(&era) {
            Some(prev) if *prev != kind => {
                return Err(Error::at(
                    path,
                    Some(i + 1),
                    "data_type",
                    format!(
                        "era {era} is both {:?} and {:?}: an era must not straddle train and validation; \
                         pass --train-until YYYY-MM-DD to split by date",
                        prev.as_deref().unwrap_or("null"),
                        kind.as_deref().unwrap_or("null")
                    ),
                ));
            }
            _ => {
                role.insert(era, kind);
            }
        }
    }
    let mut split = Split::default();
    let train: Vec<i32> =
        role.iter().filter(|(e, k)| k.as_deref() == Some("train") && has_target[*e]).map(|(e, _)| *e).collect();
    let Some(&last_train) = train.last() else {
        return Err(Error::input(path, "no training era with targets: check the data_type column or --train-until"));
    };
    let first_allowed = days_of_era(last_train) + 7 * (embargo as i32 + 1);
    for (&era, kind) in &role {
        if kind.as_deref() != Some("validation") || !has_target[&era] || era <= last_train {
            continue;
        }
        if days_of_era(era) < first_allowed {
            split.embargo.push(era);
        } else {
            split.validation.push(era);
        }
    }
    split.train = train;
    Ok(split)
}

/// Reads the table's target as f32 (NaN where missing), and the column's name in the table.
pub fn target_values(t: &KeyedTable, name: &str) -> Result<(String, Vec<f32>)> {
    let col = resolve_target(&t.frame, name).ok_or_else(|| {
        Error::input(
            &t.path,
            format!(
                "no target column '{name}' (or its alias); columns starting with 'target': {:?}",
                t.frame.get_column_names().iter().filter(|c| c.starts_with("target")).collect::<Vec<_>>()
            ),
        )
    })?;
    let values = f32_values(&t.path, t.frame.column(&col).map_err(|e| Error::table(&t.path, e))?)?;
    Ok((col, values))
}

fn parse_until(s: &str) -> Result<i32> {
    parse_era(s).ok_or_else(|| Error::Config(format!("--train-until {s:?}: use YYYY-MM-DD or YYYYMMDD")))
}

/// Refuses an embargo longer than [`MAX_EMBARGO_ERAS`].
pub fn check_embargo(embargo_eras: u32) -> Result<()> {
    if embargo_eras > MAX_EMBARGO_ERAS {
        return Err(Error::Config(format!(
            "--embargo {embargo_eras}: at most {MAX_EMBARGO_ERAS} weekly eras (4 suits 20-day targets, 12 60-day ones)"
        )));
    }
    Ok(())
}

/// The `data_type` column (trimmed, lower case), when the table has one.
fn data_types(t: &KeyedTable) -> Result<Option<Vec<Option<String>>>> {
    let Ok(c) = t.frame.column("data_type") else { return Ok(None) };
    let s = c.cast(&DataType::String).map_err(|e| Error::table(&t.path, e))?;
    let ca = s.str().map_err(|e| Error::table(&t.path, e))?;
    Ok(Some(ca.iter().map(|v| v.map(|s| s.trim().to_ascii_lowercase())).collect()))
}

/// Train, embargo and validation eras of a keyed table (`eras` per row, `labelled`: the row has
/// a target), by `train_until` (YYYY-MM-DD or YYYYMMDD) or else its `data_type` column.
pub fn era_split(
    t: &KeyedTable,
    eras: &[i32],
    labelled: &[bool],
    train_until: Option<&str>,
    embargo: u32,
) -> Result<Split> {
    check_embargo(embargo)?;
    let types = data_types(t)?;
    let until = train_until.map(parse_until).transpose()?;
    split_eras(&t.path, eras, types.as_deref(), labelled, until, embargo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::era::era_of_days;

    fn fridays(n: usize) -> Vec<i32> {
        let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 3).unwrap();
        (0..n).map(|k| era_of_days(crate::data::time::days_from_date(start) + 7 * k as i32)).collect()
    }

    #[test]
    fn embargo_leaves_a_gap_and_eras_never_straddle() {
        let eras = fridays(20);
        let types: Vec<Option<String>> =
            eras.iter().enumerate().map(|(k, _)| Some(if k < 10 { "train" } else { "validation" }.into())).collect();
        let s = split_eras(Path::new("x"), &eras, Some(&types), &[true; 20], None, 4).unwrap();
        assert_eq!(s.train, eras[..10]);
        assert_eq!(s.embargo, eras[10..14]);
        assert_eq!(s.validation, eras[14..]);
        let mut mixed = types.clone();
        mixed.push(Some("validation".into()));
        let mut eras2 = eras.clone();
        eras2.push(eras[3]);
        let e = split_eras(Path::new("x"), &eras2, Some(&mixed), &[true; 21], None, 4).unwrap_err();
        assert!(e.to_string().contains("straddle"), "{e}");
    }
}
