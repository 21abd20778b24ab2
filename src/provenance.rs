//! Provenance: what shaped each output — its inputs' content hashes and every option — travels
//! with the data. The join writes it into rows.parquet's key-value metadata, `features` reads it
//! from there (instead of asking for the join's options again), adds the encoder and the PCA and
//! writes it into the feature table, `train` copies it into the model card, and `predict` refuses
//! live features whose provenance differs from the card's in anything that changes the numbers.

use std::fs::File;
use std::path::Path;

use polars::prelude::{KeyValueMetadata, ParquetReader, SerReader};
use serde::{Deserialize, Serialize};

use crate::data::file_hash;
use crate::data::headlines::HeadlineOptions;
use crate::data::tickers::TickerRule;
use crate::data::window::Window;
use crate::error::{Error, Result};

/// The parquet key-value metadata key that holds the provenance JSON.
pub const METADATA_KEY: &str = "signalkit.provenance";

/// What identifies a model's outputs: the same fingerprint means the same numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelKey {
    /// Hub id or local path, for people.
    pub id: String,
    /// Hash of the weights, config and vocabulary files (hex).
    pub fingerprint: String,
    /// Maximum tokens per headline.
    pub max_len: usize,
    /// Class labels in output order (empty for embedding-only models).
    pub labels: Vec<String>,
    /// Precision the outputs were computed in ("f32" unless opted into "bf16" or "f16").
    #[serde(default = "f32_name", skip_serializing_if = "is_f32")]
    pub dtype: String,
}

fn f32_name() -> String {
    "f32".into()
}

fn is_f32(d: &String) -> bool {
    d == "f32"
}

impl ModelKey {
    /// The folder name of this model's shards inside a store.
    pub fn slug(&self) -> String {
        let name: String =
            self.id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        let tail: String = name.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        let dtype = if is_f32(&self.dtype) { String::new() } else { format!("-{}", self.dtype) };
        format!("{tail}-{}-len{}{dtype}", &self.fingerprint[..12.min(self.fingerprint.len())], self.max_len)
    }
}

/// An input file and its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path as given.
    pub path: String,
    /// xxh3-64 of the content.
    pub xxh3: String,
}

impl InputFile {
    /// Hashes `path` now.
    pub fn of(path: &Path) -> Result<InputFile> {
        Ok(InputFile { path: path.display().to_string(), xxh3: file_hash(path)? })
    }
}

/// What shaped an output, stage by stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// signalkit version that wrote the output.
    pub signalkit: String,
    /// The point-in-time join that made the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinRecord>,
    /// The join's output the features were built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<InputFile>,
    /// The encoder whose outputs became features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<ModelKey>,
    /// The questions (`signalkit ask`) whose answers became features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ask: Vec<ModelKey>,
    /// The latest training-data cutoff (YYYY-MM-DD) recorded for those questions' language
    /// model (`ask --knowledge-cutoff`): eras before it may be scored with knowledge of the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// The projection applied to the [CLS] embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<PcaRecord>,
    /// The model (model.txt) that made a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<InputFile>,
    /// How a signal was blended with earlier weeks (`predict --smooth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<SmoothingRecord>,
}

/// A signal's smoothing: the share of the earlier rank kept, and last week's file when one was
/// blended in (else the eras were blended one after another in the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoothingRecord {
    /// The share of last week's rank kept (A).
    pub weight: f64,
    /// Last week's signal (`--smooth-with`), hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<InputFile>,
}

/// The join's inputs and every option that decides which headline a row sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRecord {
    /// The Numerai rows joined.
    pub targets: InputFile,
    /// The headlines file.
    pub headlines: InputFile,
    /// Look-back window in days.
    pub window_days: u32,
    /// Cutoff = Friday 00:00 UTC plus this many hours.
    pub cutoff_hours: f64,
    /// The feed's time zone (naive stamps, end of a day-only date); none = UTC, naive refused.
    pub timezone: Option<String>,
    /// Headline ticker column.
    pub ticker_column: String,
    /// Headline time column (none: published_at, else published_date).
    pub time_column: Option<String>,
    /// Headline text column.
    pub text_column: String,
    /// Suffix rule, when no ticker map was used.
    pub ticker_suffix: Option<String>,
    /// The ticker map, when one was used.
    pub ticker_map: Option<InputFile>,
}

/// A PCA projection applied to the embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaRecord {
    /// The saved projection (`<features>.pca.json`) and its hash.
    pub file: InputFile,
    /// Components kept.
    pub components: usize,
    /// Last Friday of the eras it was fitted on.
    pub last_fit_friday: String,
}

impl JoinRecord {
    /// Records a join of `targets` and `headlines` under these options (hashing the files).
    pub fn new(
        targets: &Path,
        headlines: &Path,
        window: Window,
        opts: &HeadlineOptions,
        ticker_map: Option<&Path>,
        rule: &TickerRule,
    ) -> Result<JoinRecord> {
        Ok(JoinRecord {
            targets: InputFile::of(targets)?,
            headlines: InputFile::of(headlines)?,
            window_days: window.days,
            cutoff_hours: window.cutoff_hours,
            timezone: opts.zone.map(|z| z.to_string()),
            ticker_column: opts.ticker_column.clone(),
            time_column: opts.time_column.clone(),
            text_column: opts.text_column.clone(),
            ticker_suffix: match rule {
                TickerRule::Suffix(s) if ticker_map.is_none() => Some(s.clone()),
                _ => None,
            },
            ticker_map: ticker_map.map(InputFile::of).transpose()?,
        })
    }

    /// The window the join used.
    pub fn window(&self) -> Window {
        Window { days: self.window_days, cutoff_hours: self.cutoff_hours }
    }

    /// How the join read the headlines.
    pub fn headline_options(&self) -> Result<HeadlineOptions> {
        let zone = match &self.timezone {
            Some(z) => Some(z.parse().map_err(Error::Config)?),
            None => None,
        };
        Ok(HeadlineOptions {
            ticker_column: self.ticker_column.clone(),
            time_column: self.time_column.clone(),
            text_column: self.text_column.clone(),
            zone,
        })
    }

    /// The ticker rule the join used; a map is re-read from its recorded path and must be
    /// unchanged.
    pub fn ticker_rule(&self) -> Result<TickerRule> {
        match (&self.ticker_map, &self.ticker_suffix) {
            (Some(map), _) => {
                let path = Path::new(&map.path);
                verify_unchanged(path, map, "the ticker map")?;
                TickerRule::from_map_file(path)
            }
            (None, Some(s)) => Ok(TickerRule::Suffix(s.clone())),
            (None, None) => Ok(TickerRule::default()),
        }
    }

    /// The differences, in options that change which headline a row sees, between the join
    /// that made a model's training rows (`self`) and another join (e.g. this week's live rows).
    /// Input files and column names may differ; a ticker map may be updated week to week.
    pub fn differences(&self, other: &JoinRecord) -> Vec<String> {
        let mut d = Vec::new();
        if self.window_days != other.window_days {
            d.push(format!("window {} days vs {} days (--window-days)", self.window_days, other.window_days));
        }
        if self.cutoff_hours.to_bits() != other.cutoff_hours.to_bits() {
            d.push(format!("cutoff +{} h vs +{} h (--cutoff-hours)", self.cutoff_hours, other.cutoff_hours));
        }
        if self.timezone != other.timezone {
            d.push(format!("time zone {} vs {} (--timezone)", zone_name(&self.timezone), zone_name(&other.timezone)));
        }
        if self.ticker_suffix != other.ticker_suffix || self.ticker_map.is_some() != other.ticker_map.is_some() {
            d.push(format!(
                "ticker rule {} vs {} (--ticker-map / --ticker-suffix)",
                self.rule_name(),
                other.rule_name()
            ));
        }
        d
    }

    fn rule_name(&self) -> String {
        match (&self.ticker_map, &self.ticker_suffix) {
            (Some(m), _) => format!("map {}", m.path),
            (None, Some(s)) => format!("suffix {s:?}"),
            (None, None) => "default".into(),
        }
    }
}

fn zone_name(z: &Option<String>) -> &str {
    z.as_deref().unwrap_or("UTC (none named)")
}

/// Fails unless `path` still has the content recorded in `rec` (naming both hashes and the fix).
pub fn verify_unchanged(path: &Path, rec: &InputFile, what: &str) -> Result<()> {
    let now = file_hash(path).map_err(|_| {
        Error::input(path, format!("{what} recorded at this path is gone: restore it, or redo the stages after it"))
    })?;
    if now != rec.xxh3 {
        return Err(Error::input(
            path,
            format!(
                "{what} changed since it was used (content hash {} then, {now} now): restore it, or re-run the stages that used it",
                rec.xxh3
            ),
        ));
    }
    Ok(())
}

impl Provenance {
    /// An empty record stamped with this signalkit's version.
    pub fn new() -> Provenance {
        Provenance { signalkit: env!("CARGO_PKG_VERSION").into(), ..Default::default() }
    }

    /// Parquet key-value metadata holding this record.
    pub fn to_metadata(&self) -> KeyValueMetadata {
        let json = serde_json::to_string(self).expect("serialisable");
        KeyValueMetadata::from_static(vec![(METADATA_KEY.to_string(), json)])
    }

    /// The record in a parquet file's metadata; `None` for other files (CSV, or parquet written
    /// by another tool or an older signalkit).
    pub fn read(path: &Path) -> Result<Option<Provenance>> {
        if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq")) {
            return Ok(None);
        }
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = ParquetReader::new(f);
        let meta = reader.get_metadata().map_err(|e| Error::table(path, e))?;
        let Some(kv) = meta.key_value_metadata() else { return Ok(None) };
        let Some(json) = kv.iter().find(|k| k.key == METADATA_KEY).and_then(|k| k.value.clone()) else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::input(path, format!("unreadable signalkit provenance ({e}): rebuild this file")))
    }

    /// Why features with provenance `live` cannot feed a model trained on `self` (empty: they can).
    pub fn mismatches(&self, live: &Provenance) -> Vec<String> {
        let mut d = Vec::new();
        match (&self.join, &live.join) {
            (Some(a), Some(b)) => d.extend(a.differences(b)),
            (Some(_), None) => {
                d.push("the model's rows came from signalkit join; these did not say how they were joined".into())
            }
            _ => {}
        }
        match (&self.encoder, &live.encoder) {
            (Some(a), Some(b)) => d.extend(encoder_differences(a, b)),
            (Some(a), None) => d.push(format!("the model used encoder {}; these features name none", a.id)),
            (None, Some(b)) => d.push(format!("the model used no recorded encoder; these features come from {}", b.id)),
            (None, None) => {}
        }
        match (&self.pca, &live.pca) {
            (Some(a), Some(b)) if a.file.xxh3 != b.file.xxh3 => d.push(format!(
                "PCA {} (hash {}) vs {} (hash {}): apply the training fit with --pca-from {}",
                a.file.path, a.file.xxh3, b.file.path, b.file.xxh3, a.file.path
            )),
            (Some(a), None) => d.push(format!("the model used PCA features: pass --pca-from {}", a.file.path)),
            (None, Some(b)) => {
                d.push(format!("the model used the raw embedding; these features apply PCA {}", b.file.path))
            }
            _ => {}
        }
        for q in &self.ask {
            if !live.ask.iter().any(|l| l.id == q.id && l.fingerprint == q.fingerprint) {
                d.push(format!(
                    "the model used the answers of {} (fingerprint {}); these features lack them: pass --ask-store with that question's answers",
                    q.id,
                    short(&q.fingerprint)
                ));
            }
        }
        d
    }
}

/// Differences between two encoders that change the numbers they give.
pub fn encoder_differences(a: &ModelKey, b: &ModelKey) -> Vec<String> {
    let mut d = Vec::new();
    if a.fingerprint != b.fingerprint {
        d.push(format!(
            "encoder {} (fingerprint {}) vs {} (fingerprint {}) (--model of encode/features)",
            a.id,
            short(&a.fingerprint),
            b.id,
            short(&b.fingerprint)
        ));
    }
    if a.dtype != b.dtype {
        d.push(format!("encoder dtype {} vs {} (--dtype)", a.dtype, b.dtype));
    }
    if a.max_len != b.max_len {
        d.push(format!("encoder max_len {} vs {} (--max-len)", a.max_len, b.max_len));
    }
    if a.labels != b.labels {
        d.push(format!("encoder labels {:?} vs {:?}", a.labels, b.labels));
    }
    d
}

fn short(fp: &str) -> &str {
    &fp[..12.min(fp.len())]
}

/// The full refusal: what was trained, what was given, and how to fix it.
pub fn mismatch_error(path: &Path, model: &Path, differences: &[String]) -> Error {
    Error::input(
        path,
        format!(
            "these features were not made the way the model in {} was trained (trained vs given): {}; rebuild them with the training run's options",
            model.display(),
            differences.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(fingerprint: &str) -> ModelKey {
        ModelKey {
            id: "qwen#ask-good".into(),
            fingerprint: fingerprint.into(),
            max_len: 0,
            labels: vec!["yes".into(), "no".into(), "unknown".into()],
            dtype: "f32".into(),
        }
    }

    #[test]
    fn features_lacking_the_models_questions_are_a_mismatch() {
        let trained = Provenance { ask: vec![question("aaaa")], ..Provenance::default() };
        let same = Provenance { ask: vec![question("aaaa"), question("bbbb")], ..Provenance::default() };
        assert!(trained.mismatches(&same).is_empty(), "extra questions are not used by the model");
        let none = trained.mismatches(&Provenance::default());
        assert!(none.len() == 1 && none[0].contains("qwen#ask-good") && none[0].contains("--ask-store"), "{none:?}");
        let other = trained.mismatches(&Provenance { ask: vec![question("cccc")], ..Provenance::default() });
        assert_eq!(other.len(), 1, "another wording or model under the same name: {other:?}");
    }
}
