//! Numerai: the GraphQL API client ([`client`]), submission validation ([`submission`]), and the
//! `datasets`, `download` and `submit` commands built on them.
//!
//! Credentials: `--credentials FILE`, else `NUMERAI_PUBLIC_ID` + `NUMERAI_SECRET_KEY`, else
//! `~/.numerai/credentials` (`public_id = "..."` and `secret_key = "..."` lines, mode 0600).

pub mod client;
pub mod submission;

use std::fmt;
use std::path::{Path, PathBuf};

pub use client::{
    Client, ClientOptions, Credentials, DEFAULT_API_URL, Model, RetryPolicy, SIGNALS_TOURNAMENT, SubmissionReceipt,
};
pub use submission::{Problem, SubmissionCheck, check_submission, validate_submission};

use chrono::Datelike;

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
}

/// What `submit` did.
#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    /// Validated only (`--dry-run`).
    DryRun {
        /// The validation summary.
        check: SubmissionCheck,
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
            SubmitOutcome::DryRun { check, model_name, api_url, public_id } => {
                writeln!(f, "dry run: valid submission {check}")?;
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
            SubmitOutcome::Uploaded { check, model_name, model_id, receipt } => {
                writeln!(f, "valid submission {check}")?;
                for w in &check.warnings {
                    writeln!(f, "warning: {w}")?;
                }
                write!(
                    f,
                    "uploaded {} for model '{model_name}' ({model_id}): submission {} as {}",
                    check.file.display(),
                    receipt.id,
                    receipt.filename
                )?;
                if let Some(d) = &receipt.first_effective_date {
                    write!(f, ", first effective {d}")?;
                }
                Ok(())
            }
        }
    }
}

/// `signalkit submit`: validates the file (failing with every problem before any network call),
/// then, unless `dry_run`, resolves the model name to its id and uploads.
pub fn submit(args: &SubmitArgs) -> Result<SubmitOutcome> {
    if args.model_name.trim().is_empty() {
        return Err(Error::Config("--model-name is empty: give your Signals model's name as on numer.ai".into()));
    }
    let check = validate_submission(&args.file, args.universe.as_deref())?;
    let creds = Credentials::discover(args.api.credentials.as_deref())?;
    if args.dry_run {
        let client = Client::new(creds, ClientOptions { api_url: args.api.api_url.clone(), ..Default::default() })?;
        let public_id = client.credentials().map(|c| c.public_id().to_string());
        return Ok(SubmitOutcome::DryRun {
            check,
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
    let data_datestamp =
        check.date.map(|d| i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()));
    let receipt = client.upload_submission(&args.file, &model_id, data_datestamp)?;
    Ok(SubmitOutcome::Uploaded { check, model_name: args.model_name.clone(), model_id, receipt })
}
