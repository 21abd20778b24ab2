//! Numerai's diagnostics round trip (numerapi's `upload_diagnostics` / `diagnostics`):
//! validation predictions are written the way Numerai reads them (ticker, `date`, `signal` ranked
//! per era), uploaded (`diagnosticsUploadAuth` → PUT, status checked → `createDiagnostics`), polled
//! until Numerai has scored them, and written as report.json and report.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiArgs, Client, SIGNALS_TOURNAMENT};
use crate::data::targets::KeyedTable;
use crate::era::{date_from_days, eras_of_days};
use crate::error::{Error, Result};
use crate::metrics;
use crate::report::{markdown_table, write_json};

const UPLOAD_AUTH_QUERY: &str = "query($filename:String! $tournament:Int! $modelId:String){ diagnosticsUploadAuth(filename:$filename tournament:$tournament modelId:$modelId){ filename url } }";
const CREATE_MUTATION: &str = "mutation($filename:String! $tournament:Int! $modelId:String){ createDiagnostics(filename:$filename tournament:$tournament modelId:$modelId){ id } }";
/// The per-era scores asked for, and the summary fields; Numerai's names.
const PER_ERA: [&str; 8] = [
    "validationCorrV4",
    "validationFncV4",
    "validationMmc",
    "validationBmc",
    "validationAlpha",
    "validationChurn",
    "validationIcV2",
    "validationRic",
];
const SUMMARY: [&str; 12] = [
    "validationCorrV4Mean",
    "validationCorrV4Sharpe",
    "validationCorrV4Std",
    "validationCorrV4MaxDrawdown",
    "validationFncV4Mean",
    "validationFncV4Sharpe",
    "validationMmcMean",
    "validationMmcSharpe",
    "validationAlphaMean",
    "validationAlphaSharpe",
    "validationBmcMean",
    "validationAutocorr",
];
/// The first date of Numerai's Signals validation window.
pub const VALIDATION_START: &str = "2013-01-04";

/// What `signalkit diagnostics` needs.
#[derive(Debug, Clone)]
pub struct DiagnosticsArgs {
    /// API endpoint and key.
    pub api: ApiArgs,
    /// Validation predictions to upload (ticker, date, prediction or signal); None with `id`.
    pub predictions: Option<PathBuf>,
    /// An earlier diagnostics id to fetch instead of uploading.
    pub id: Option<String>,
    /// The Signals model the diagnostics belong to.
    pub model_name: String,
    /// Output folder: the uploaded CSV, report.json, report.md.
    pub out: PathBuf,
    /// Time between polls.
    pub poll: Duration,
    /// How long to wait for Numerai to finish before stopping (the id is printed to resume).
    pub wait: Duration,
}

/// One era of Numerai's per-era diagnostics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiagnosticsEra {
    /// The era as Numerai names it.
    pub era: String,
    /// Each score asked for, by Numerai's field name (absent when Numerai gave none).
    pub scores: BTreeMap<String, f64>,
}

/// Numerai's diagnostics of one upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiagnosticsReport {
    /// Diagnostics id (fetch it again with `--id`).
    pub id: String,
    /// The model's id.
    pub model_id: String,
    /// Numerai's status.
    pub status: String,
    /// Numerai's message, if any.
    pub message: Option<String>,
    /// The summary fields Numerai gave, by name.
    pub summary: BTreeMap<String, f64>,
    /// Per era.
    pub per_era: Vec<DiagnosticsEra>,
    /// Numerai's whole answer.
    pub raw: Value,
}

fn query() -> String {
    format!(
        "query($id:String $modelId:String!){{ diagnostics(id:$id modelId:$modelId){{ status message erasAcceptedCount erasRejectedCount updatedAt perEraDiagnostics{{ era {} }} {} }} }}",
        PER_ERA.join(" "),
        SUMMARY.join(" ")
    )
}

/// Uploads the predictions (or takes `id`), waits for Numerai's scores and writes the report.
/// The local predictions file is checked and prepared before any network call.
pub fn diagnostics(args: &DiagnosticsArgs, show: bool) -> Result<DiagnosticsReport> {
    let _out = crate::data::lock::lock_folder(&args.out, "diagnostics", "--out")?;
    let file = match (&args.id, &args.predictions) {
        (Some(_), _) => None,
        (None, Some(p)) => Some(prepare_upload(p, &args.out)?),
        (None, None) => return Err(Error::Config("diagnostics: give a predictions file or --id".into())),
    };
    let client = args.api.client()?;
    let model_id = client.model_id(&args.model_name)?;
    let id = match (&args.id, file) {
        (Some(id), _) => id.clone(),
        (None, Some(file)) => upload(&client, &file, &model_id)?,
        (None, None) => unreachable!("refused above"),
    };
    if show {
        eprintln!("diagnostics {id}: waiting for Numerai's scores (resume with --id {id})");
    }
    let raw = poll(&client, &id, &model_id, args, show)?;
    let report = parse(&id, &model_id, raw)?;
    write_report(&args.out, &report)?;
    Ok(report)
}

/// Writes `dir/diagnostics-upload.csv`: the ticker column, `date` (YYYY-MM-DD) and `signal`, the
/// tie-kept rank of the predictions within each era (Numerai ranks them anyway; a submission's
/// values must lie in [0, 1]). Refuses a file with no era in the validation window.
pub fn prepare_upload(predictions: &Path, dir: &Path) -> Result<PathBuf> {
    let t = KeyedTable::read(predictions)?;
    let col = ["signal", "prediction"].into_iter().find(|c| t.frame.column(c).is_ok()).ok_or_else(|| {
        Error::input(predictions, "no 'signal' or 'prediction' column: pass predictions from train or predict")
    })?;
    let values = t.f64_column(col)?;
    let mut signal = vec![f64::NAN; values.len()];
    for (_, rows) in metrics::era_groups(&eras_of_days(&t.fridays)) {
        let ranked = metrics::rank(&rows.iter().map(|&i| values[i]).collect::<Vec<_>>());
        rows.iter().zip(ranked).for_each(|(&i, r)| signal[i] = r);
    }
    let dates: Vec<String> = t.fridays.iter().map(|&d| date_from_days(d).to_string()).collect();
    if !dates.iter().any(|d| d.as_str() >= VALIDATION_START) {
        return Err(Error::input(
            predictions,
            format!(
                "no row on or after {VALIDATION_START}: Numerai's diagnostics score the validation eras from then on; predict those eras (predict --all-eras)"
            ),
        ));
    }
    let tickers: Vec<&str> = t.ticker_ids.iter().map(|&i| t.universe[i as usize].as_str()).collect();
    let mut df = df!(t.ticker_column.as_str() => tickers, "date" => dates, "signal" => signal)
        .map_err(|e| Error::table(predictions, e))?;
    let out = dir.join("diagnostics-upload.csv");
    crate::data::write_csv_atomic(&mut df, &out)?;
    Ok(out)
}

/// `diagnosticsUploadAuth` → PUT (status checked) → `createDiagnostics`; returns the id.
fn upload(client: &Client, file: &Path, model_id: &str) -> Result<String> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let vars = json!({ "filename": name, "tournament": SIGNALS_TOURNAMENT, "modelId": model_id });
    let auth = client.graphql(UPLOAD_AUTH_QUERY, vars)?;
    let field = |k: &str| auth.pointer(&format!("/diagnosticsUploadAuth/{k}")).and_then(Value::as_str);
    let (Some(stored), Some(url)) = (field("filename"), field("url")) else {
        return Err(Error::Api(format!("diagnosticsUploadAuth: no upload URL in the answer: {auth}")));
    };
    client.put_presigned(url, &bytes, &name)?;
    let vars = json!({ "filename": stored, "tournament": SIGNALS_TOURNAMENT, "modelId": model_id });
    let created = client.graphql(CREATE_MUTATION, vars)?;
    created
        .pointer("/createDiagnostics/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Api(format!("createDiagnostics: no id in the answer: {created}")))
}

/// Where a diagnostics run stands, by Numerai's status word.
#[derive(Debug, PartialEq)]
enum Stage {
    Done,
    Failed,
    Pending,
}

fn stage(status: &str) -> Stage {
    match status.to_ascii_lowercase().as_str() {
        "done" | "complete" | "completed" | "succeeded" | "success" => Stage::Done,
        "failed" | "failure" | "error" | "errored" | "rejected" => Stage::Failed,
        _ => Stage::Pending,
    }
}

/// Asks `diagnostics(id, modelId)` every `args.poll` until it is done or failed, or `args.wait` passed.
fn poll(client: &Client, id: &str, model_id: &str, args: &DiagnosticsArgs, show: bool) -> Result<Value> {
    let started = Instant::now();
    let bar = if show { indicatif::ProgressBar::new_spinner() } else { indicatif::ProgressBar::hidden() };
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        let data = client.graphql(&query(), json!({ "id": id, "modelId": model_id }))?;
        let d = match data.get("diagnostics") {
            Some(Value::Array(a)) => a.iter().find(|d| d["id"] == id).or(a.first()).cloned().unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let status = d.get("status").and_then(Value::as_str).unwrap_or("pending").to_string();
        bar.set_message(format!("{id}: {status}, {:.0} s", started.elapsed().as_secs_f64()));
        match stage(&status) {
            Stage::Done => {
                bar.finish_and_clear();
                return Ok(d);
            }
            Stage::Failed => {
                let msg = d.get("message").and_then(Value::as_str).unwrap_or("no message");
                return Err(Error::Api(format!("diagnostics {id} failed on Numerai: {msg}")));
            }
            Stage::Pending if started.elapsed() >= args.wait => {
                return Err(Error::Api(format!(
                    "diagnostics {id} still '{status}' after {:.0} s; fetch it later with `signalkit diagnostics --id {id} --model-name {}`",
                    args.wait.as_secs_f64(),
                    args.model_name
                )));
            }
            Stage::Pending => std::thread::sleep(args.poll),
        }
    }
}

/// A number Numerai gave as a JSON number or a numeric string.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// The report from Numerai's answer.
fn parse(id: &str, model_id: &str, raw: Value) -> Result<DiagnosticsReport> {
    let pick = |obj: &Value, names: &[&str]| -> BTreeMap<String, f64> {
        names.iter().filter_map(|n| Some((n.to_string(), number(obj.get(*n)?)?))).collect()
    };
    let per_era = raw
        .get("perEraDiagnostics")
        .and_then(Value::as_array)
        .map(|eras| {
            eras.iter()
                .map(|e| DiagnosticsEra {
                    era: e.get("era").map(|v| v.as_str().map_or(v.to_string(), str::to_string)).unwrap_or_default(),
                    scores: pick(e, &PER_ERA),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DiagnosticsReport {
        id: id.into(),
        model_id: model_id.into(),
        status: raw.get("status").and_then(Value::as_str).unwrap_or_default().into(),
        message: raw.get("message").and_then(Value::as_str).map(str::to_string),
        summary: pick(&raw, &SUMMARY),
        per_era,
        raw,
    })
}

/// report.json (everything) and report.md (summary and per-era table).
fn write_report(out: &Path, r: &DiagnosticsReport) -> Result<()> {
    write_json(&out.join("report.json"), r)?;
    let mut md = format!("# Numerai diagnostics {}\n\nModel `{}`, status `{}`.\n\n", r.id, r.model_id, r.status);
    if let Some(m) = &r.message {
        md += &format!("Numerai: {m}\n\n");
    }
    let rows: Vec<Vec<String>> = r.summary.iter().map(|(k, v)| vec![k.clone(), format!("{v:.4}")]).collect();
    md += &markdown_table(&["summary", "value"], &rows);
    let cols: Vec<&str> =
        PER_ERA.iter().copied().filter(|c| r.per_era.iter().any(|e| e.scores.contains_key(*c))).collect();
    let rows: Vec<Vec<String>> = r
        .per_era
        .iter()
        .map(|e| {
            let cell = |c: &&str| e.scores.get(*c).map_or("-".into(), |v| format!("{v:.4}"));
            std::iter::once(e.era.clone()).chain(cols.iter().map(cell)).collect()
        })
        .collect();
    let header: Vec<&str> = std::iter::once("era").chain(cols.iter().copied()).collect();
    md += &format!("\n## Per era\n\n{}", markdown_table(&header, &rows));
    crate::data::write_bytes_atomic(&out.join("report.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_map_to_stages() {
        assert_eq!(stage("done"), Stage::Done);
        assert_eq!(stage("Failed"), Stage::Failed);
        assert_eq!(stage("pending"), Stage::Pending);
        assert_eq!(stage("running"), Stage::Pending);
    }
}
