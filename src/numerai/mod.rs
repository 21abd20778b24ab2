//! Numerai: the GraphQL API client ([`client`]), submission validation ([`submission`]), and the
//! `datasets`, `download` and `submit` commands built on them.
//!
//! Credentials: `--credentials FILE`, else `NUMERAI_PUBLIC_ID` + `NUMERAI_SECRET_KEY`, else
//! `~/.numerai/credentials` (`public_id = "..."` and `secret_key = "..."` lines, mode 0600).

pub mod client;
pub mod dataset;
pub mod diagnostics;
pub mod gate;
pub mod history;
pub mod performance;
pub mod submission;

use std::fmt;
use std::path::{Path, PathBuf};

pub use client::{
    Client, ClientOptions, Confirmed, Credentials, DEFAULT_API_URL, Model, RetryPolicy, SIGNALS_TOURNAMENT,
    ServerSubmission, SubmissionReceipt,
};
pub use gate::{EraData, GateReport};
pub use history::{History, Record};
pub use submission::{Problem, SubmissionCheck, check_submission, validate_submission};

use chrono::Datelike;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};

/// Where the API is and which key to use (shared by the `datasets`, `download` and `submit` commands).
#[derive(Debug, Clone, Default)]
pub struct ApiArgs {
    /// GraphQL endpoint; `None` = `NUMERAI_API_URL`, else Numerai's.
    pub api_url: Option<String>,
    /// Credentials file; `None` = the environment, else `~/.numerai/credentials`.
    pub credentials: Option<PathBuf>,
}

impl ApiArgs {
    /// A client with the credentials found (none is fine for public calls).
    pub fn client(&self) -> Result<Client> {
        let creds = Credentials::discover(self.credentials.as_deref())?;
        Client::new(creds, ClientOptions { api_url: self.api_url.clone(), ..Default::default() })
    }
}

/// `signalkit datasets`: the Signals dataset files for `round` (default: the current round).
pub fn list_datasets(api: &ApiArgs, round: Option<i64>) -> Result<Vec<String>> {
    api.client()?.list_datasets(round)
}

/// `signalkit download`: fetches dataset `filename` into `dir`; returns the file written.
pub fn download_dataset(api: &ApiArgs, filename: &str, dir: &Path, round: Option<i64>) -> Result<PathBuf> {
    api.client()?.download_dataset(filename, dir, round)
}

/// Arguments of `signalkit submit`.
#[derive(Debug, Clone)]
pub struct SubmitArgs {
    /// The submission file (CSV or parquet).
    pub file: PathBuf,
    /// The Signals model to submit for (its name on numer.ai).
    pub model_name: String,
    /// This week's live universe (`signals/v2.1/live.parquet`), checked against when given.
    pub universe: Option<PathBuf>,
    /// Validate and print what would be sent, without any network call.
    pub dry_run: bool,
    /// API location and key.
    pub api: ApiArgs,
    /// The upload history folder (`None`: `$SIGNALKIT_HISTORY`, else `~/.numerai/signalkit-history`).
    pub history: Option<PathBuf>,
    /// Upload even when the churn gate finds churn or turnover above Numerai's limits.
    pub allow_churn: bool,
    /// A Signals v2.1 neutralizer file (with `sample_weights`): the gate adds turnover and
    /// neutral churn, on its latest date.
    pub neutralizers: Option<PathBuf>,
    /// The sample weights matching `neutralizers`.
    pub sample_weights: Option<PathBuf>,
}

/// What `submit` did.
#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    /// Validated only (`--dry-run`).
    DryRun {
        /// The validation summary.
        check: SubmissionCheck,
        /// The churn gate's numbers.
        gate: GateReport,
        /// The model name that would be used.
        model_name: String,
        /// The API the upload would go to.
        api_url: String,
        /// Public id of the key that would be used, if one was found.
        public_id: Option<String>,
    },
    /// Validated and uploaded.
    Uploaded {
        /// The validation summary.
        check: SubmissionCheck,
        /// The churn gate's numbers.
        gate: GateReport,
        /// The model name.
        model_name: String,
        /// The model id it resolved to.
        model_id: String,
        /// Numerai's answer.
        receipt: SubmissionReceipt,
    },
}

impl fmt::Display for SubmitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitOutcome::DryRun { check, gate, model_name, api_url, public_id } => {
                writeln!(f, "dry run: valid submission {check}")?;
                writeln!(f, "{gate}")?;
                for w in &check.warnings {
                    writeln!(f, "warning: {w}")?;
                }
                write!(
                    f,
                    "would upload {} ({} rows) for Signals model '{model_name}' (tournament {SIGNALS_TOURNAMENT}) to {api_url}",
                    check.file.display(),
                    check.rows
                )?;
                match public_id {
                    Some(p) => write!(f, " with API key {p} (secret not shown)"),
                    None => {
                        write!(f, "; no API key found: set NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY before uploading")
                    }
                }
            }
            SubmitOutcome::Uploaded { check, gate, model_name, model_id, receipt } => {
                writeln!(f, "valid submission {check}")?;
                writeln!(f, "{gate}")?;
                for w in &check.warnings {
                    writeln!(f, "warning: {w}")?;
                }
                let file = check.file.display();
                match receipt.confirmed {
                    Confirmed::Created => write!(
                        f,
                        "uploaded {file} for model '{model_name}' ({model_id}): submission {} as {}",
                        receipt.id, receipt.filename
                    )?,
                    Confirmed::FoundAfterFailure => write!(
                        f,
                        "uploaded {file} for model '{model_name}' ({model_id}): the create call failed, but Numerai lists submission {} as {}",
                        receipt.id, receipt.filename
                    )?,
                    Confirmed::AlreadyOnServer => write!(
                        f,
                        "already submitted: Numerai lists submission {} ({}) of {file} for model '{model_name}' ({model_id}) from an earlier run; nothing uploaded",
                        receipt.id, receipt.filename
                    )?,
                }
                if let Some(d) = &receipt.first_effective_date {
                    write!(f, ", first effective {d}")?;
                }
                if let Some(r) = self.receipt_json() {
                    write!(f, "\nreceipt: {r}")?;
                }
                Ok(())
            }
        }
    }
}

impl SubmitOutcome {
    /// The one-line JSON receipt of a submission Numerai confirmed (`None` for a dry run): id,
    /// stored file name, model, the file sent, and how it was confirmed (`created`,
    /// `found-after-failure`, `already-on-server`). `signalkit submit` prints it last, after
    /// `receipt: `; scripts/ops/weekly.sh writes its `submitted` marker from it.
    pub fn receipt_json(&self) -> Option<serde_json::Value> {
        match self {
            SubmitOutcome::DryRun { .. } => None,
            SubmitOutcome::Uploaded { check, model_name, model_id, receipt, .. } => Some(json!({
                "id": receipt.id,
                "filename": receipt.filename,
                "model_name": model_name,
                "model_id": model_id,
                "file": check.file.display().to_string(),
                "confirmed": receipt.confirmed.as_str(),
                "first_effective_date": receipt.first_effective_date,
            })),
        }
    }
}

/// A note, beside the submission file, of an upload that got as far as registering the
/// submission: written (and synced) before `createSignalsSubmission` is sent, so that a later run
/// can ask Numerai whether that submission exists (by the stored file name) before uploading the
/// same file again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    model_id: String,
    /// xxh3-128 of the file's bytes (hex).
    content_xxh3: String,
    /// The name Numerai stored the upload under (from `submissionUploadSignalsAuth`).
    stored_filename: String,
    /// When this client started creating it (RFC 3339, UTC).
    started_at: String,
    /// The submission id, once Numerai confirmed one.
    submission_id: Option<String>,
}

impl Journal {
    /// `DIR/.NAME.MODEL_ID.submission.json` for submission file `DIR/NAME`.
    fn path(file: &Path, model_id: &str) -> PathBuf {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let id: String =
            model_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        file.with_file_name(format!(".{name}.{id}.submission.json"))
    }

    /// The journal at `path`, if there is one.
    fn read(path: &Path) -> Result<Option<Journal>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::input(
                path,
                format!(
                    "unreadable submission journal ({e}); it records an earlier upload of this file: check the model's submissions on signals.numer.ai, then delete it"
                ),
            )
        })
    }

    /// Writes through a synced temporary file, renamed into place.
    fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        crate::data::write_bytes_atomic(path, text.as_bytes())
    }
}

/// `signalkit submit`: validates the file (failing with every problem before any network call),
/// then, unless `dry_run`, resolves the model name to its id and uploads, creating the submission
/// at most once.
///
/// Before `createSignalsSubmission` is sent, a journal beside the file
/// (`.NAME.MODEL_ID.submission.json`) records the name Numerai stored the upload under. When a
/// later run finds a journal for the same model and the same bytes, it first asks Numerai
/// (`submissions(modelId:)`) whether that submission exists: if it does, nothing is uploaded and
/// the outcome is [`Confirmed::AlreadyOnServer`]; if the question cannot be answered, it stops
/// with an error instead of uploading.
pub fn submit(args: &SubmitArgs) -> Result<SubmitOutcome> {
    if args.model_name.trim().is_empty() {
        return Err(Error::Config("--model-name is empty: give your Signals model's name as on numer.ai".into()));
    }
    let check = validate_submission(&args.file, args.universe.as_deref())?;
    let bytes = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let content_xxh3 = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
    let history = History::at(args.history.as_deref())?;
    let creds = Credentials::discover(args.api.credentials.as_deref())?;
    if args.dry_run {
        let gate = churn_gate_of(args, &check, &history, &content_xxh3, None)?;
        let client = Client::new(creds, ClientOptions { api_url: args.api.api_url.clone(), ..Default::default() })?;
        let public_id = client.credentials().map(|c| c.public_id().to_string());
        return Ok(SubmitOutcome::DryRun {
            check,
            gate,
            model_name: args.model_name.clone(),
            api_url: client.api_url().to_string(),
            public_id,
        });
    }
    let Some(creds) = creds else {
        return Err(Error::Api(
            "uploading needs an API key: set NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY, or pass --credentials FILE (mode 600)"
                .into(),
        ));
    };
    let client = Client::new(Some(creds), ClientOptions { api_url: args.api.api_url.clone(), ..Default::default() })?;
    let model_id = client.model_id(&args.model_name)?;
    let gate = churn_gate_of(args, &check, &history, &content_xxh3, Some((&client, &model_id)))?;
    let attempt = Attempt {
        args,
        client: &client,
        content_xxh3: content_xxh3.clone(),
        journal_path: Journal::path(&args.file, &model_id),
        model_id: &model_id,
    };
    let _lock = attempt.lock()?;
    let receipt = match attempt.earlier_submission()? {
        Some(receipt) => receipt,
        None => attempt.create_once(&check)?,
    };
    let record = Record {
        model_name: args.model_name.clone(),
        model_id: model_id.clone(),
        submission_id: receipt.id.clone(),
        file: args.file.display().to_string(),
        content_xxh3,
        ext: args.file.extension().and_then(|e| e.to_str()).unwrap_or("csv").to_ascii_lowercase(),
        uploaded_at: chrono::Utc::now().to_rfc3339(),
    };
    if let Err(e) = history.append(&record, &bytes) {
        eprintln!(
            "submit: warning: submission {} exists, but recording it in the upload history failed: {e}",
            receipt.id
        );
    }
    Ok(SubmitOutcome::Uploaded { check, gate, model_name: args.model_name.clone(), model_id, receipt })
}

/// The model's last submissions: Numerai's list when a client is given (the local history's
/// copies where it has them), else, or when Numerai cannot be asked, the local history's.
fn previous_signals(
    args: &SubmitArgs,
    history: &History,
    xxh3: &str,
    server: Option<(&Client, &str)>,
) -> Result<Vec<gate::Signal>> {
    // The local history first: a damaged line there is an error about that file, not Numerai's.
    let local = history.records()?;
    if let Some((client, model_id)) = server {
        match history.server_recent(client, model_id, &local, xxh3, gate::GATE_WINDOW) {
            Ok(p) => return Ok(p),
            Err(e) => eprintln!(
                "submit: warning: the model's submissions could not be read from Numerai ({e}); the churn gate compares with the local history only"
            ),
        }
    }
    history.recent(&local, &args.model_name, xxh3, gate::GATE_WINDOW)
}

/// The churn gate of the file against the model's last submissions (see [`previous_signals`];
/// on the live universe when given, with turnover when neutralizers are given); an error above
/// Numerai's limits unless `--allow-churn`.
fn churn_gate_of(
    args: &SubmitArgs,
    check: &SubmissionCheck,
    history: &History,
    xxh3: &str,
    server: Option<(&Client, &str)>,
) -> Result<GateReport> {
    let current = history::read_signal(&args.file, &args.file.display().to_string())?;
    let previous = previous_signals(args, history, xxh3, server)?;
    let universe = match (&args.universe, &check.ticker_column) {
        (Some(u), Some(col)) => history::universe_tickers(u, col)?,
        _ => None,
    };
    let era = match (&args.neutralizers, &args.sample_weights) {
        (Some(n), Some(w)) => Some(EraData::read(n, w)?),
        (None, None) => None,
        _ => return Err(Error::Config("--neutralizers and --sample-weights go together: give both or neither".into())),
    };
    let report = gate::churn_gate(&current, &previous, universe.as_deref(), era.as_ref());
    let breaches = report.breaches();
    if breaches.is_empty() || args.allow_churn {
        return Ok(report);
    }
    Err(Error::input(
        &args.file,
        format!(
            "{report}\nrefused: {}: Numerai would set model '{}''s stake to zero. Blend with last week's signal \
             (signalkit predict --smooth-with LAST_SIGNAL --smooth A) or pass --allow-churn to upload anyway",
            breaches.join(", "),
            args.model_name
        ),
    ))
}

/// One upload of a file for a model, journalled so that it is created at most once.
struct Attempt<'a> {
    args: &'a SubmitArgs,
    client: &'a Client,
    model_id: &'a str,
    content_xxh3: String,
    journal_path: PathBuf,
}

impl Attempt<'_> {
    /// Notes the submission's id in the journal (a failure to note it is only a warning: the
    /// submission exists).
    fn record(&self, mut journal: Journal, receipt: &SubmissionReceipt) {
        journal.submission_id = Some(receipt.id.clone());
        if let Err(e) = journal.write(&self.journal_path) {
            eprintln!("submit: warning: submission {} exists, but noting it failed: {e}", receipt.id);
        }
    }

    /// Holds `<journal>.lock` exclusively (waiting, with a message, while another `submit` of this
    /// file for this model runs), so two runs at once cannot both create the submission: the
    /// second finds the first's journal and asks Numerai before uploading.
    fn lock(&self) -> Result<crate::data::lock::Lock> {
        let path = self.journal_path.with_extension("json.lock");
        crate::data::lock::Lock::wait(&path, "submit", |who| {
            eprintln!("submit: another submit of {} is running ({who}); waiting for it", self.args.file.display());
        })
    }

    /// When an earlier run got as far as creating a submission of these bytes, asks Numerai
    /// whether it exists: its receipt if so, `None` to upload; an error when it cannot be asked.
    fn earlier_submission(&self) -> Result<Option<SubmissionReceipt>> {
        let Some(earlier) = Journal::read(&self.journal_path)?
            .filter(|j| j.model_id == self.model_id && j.content_xxh3 == self.content_xxh3)
        else {
            return Ok(None);
        };
        let since = chrono::DateTime::parse_from_rfc3339(&earlier.started_at).ok().map(|t| t.to_utc());
        match self.client.find_submission(self.model_id, &earlier.stored_filename, since) {
            Ok(Some(found)) => {
                let receipt = SubmissionReceipt {
                    id: found.id,
                    filename: earlier.stored_filename.clone(),
                    first_effective_date: None,
                    confirmed: Confirmed::AlreadyOnServer,
                };
                self.record(earlier, &receipt);
                Ok(Some(receipt))
            }
            Ok(None) => {
                eprintln!(
                    "submit: an earlier upload of {} (started {}) is not among model '{}''s submissions on Numerai; uploading it again",
                    self.args.file.display(),
                    earlier.started_at,
                    self.args.model_name
                );
                Ok(None)
            }
            Err(e) => {
                let e = match e {
                    Error::Api(m) => m,
                    other => other.to_string(),
                };
                Err(Error::Api(format!(
                    "an earlier run already tried to submit {} for model '{}' (see {}), and asking Numerai whether that submission exists failed: {e}. \
                     Nothing was uploaded; run again when the API answers. Only if signals.numer.ai shows no submission of this round for the model, \
                     delete {} to upload regardless",
                    self.args.file.display(),
                    self.args.model_name,
                    self.journal_path.display(),
                    self.journal_path.display()
                )))
            }
        }
    }

    /// Uploads and creates the submission, journalling the stored name before the create is sent.
    fn create_once(&self, check: &SubmissionCheck) -> Result<SubmissionReceipt> {
        let data_datestamp =
            check.date.map(|d| i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()));
        let mut journal = None;
        let receipt = self.client.upload_submission_with(&self.args.file, self.model_id, data_datestamp, |stored| {
            let j = Journal {
                model_id: self.model_id.to_string(),
                content_xxh3: self.content_xxh3.clone(),
                stored_filename: stored.to_string(),
                started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                submission_id: None,
            };
            j.write(&self.journal_path).map_err(|e| {
                Error::Config(format!(
                    "cannot note the upload before registering it ({e}); nothing was submitted: make {} writable and run again",
                    self.journal_path.parent().map_or_else(|| ".".into(), |p| p.display().to_string())
                ))
            })?;
            journal = Some(j);
            Ok(())
        })?;
        if let Some(j) = journal {
            self.record(j, &receipt);
        }
        Ok(receipt)
    }
}
