//! A blocking GraphQL client for Numerai's tournament API: the Signals dataset listing and
//! download, model lookup, and the upload flow (`submissionUploadSignalsAuth` → PUT →
//! `createSignalsSubmission`, the last at most once).
//!
//! Authentication is `Authorization: Token PUBLIC_ID$SECRET_KEY`. The secret never appears in
//! `Debug` output, logs or error messages: every message built from a response is scrubbed of it,
//! and the header is marked sensitive. Reads (queries, downloads, the PUT of a submission file to
//! its pre-signed URL) that fail with a timeout, a dropped connection, HTTP 429 or 5xx are retried
//! with exponential backoff ([`RetryPolicy`]); HTTP 401/403, GraphQL `errors` and malformed JSON
//! fail at once with an [`Error::Api`] that says what to check. `createSignalsSubmission` is never
//! retried blindly: after a failure that may have reached the server, the model's submissions are
//! listed first ([`Client::upload_submission_with`]).
//! Pre-signed download and upload URLs are fetched without the `Authorization` header, so the key
//! never leaves for another host.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

use crate::error::{Error, Result};
pub use crate::http::RetryPolicy;
use crate::http::error_chain;

/// Numerai's GraphQL endpoint.
pub const DEFAULT_API_URL: &str = "https://api-tournament.numer.ai";
/// The Signals tournament id.
pub const SIGNALS_TOURNAMENT: i64 = 11;
/// Environment variable naming the API URL (overridden by an explicit URL).
pub const API_URL_ENV: &str = "NUMERAI_API_URL";
/// Environment variable holding the API key's public id.
pub const PUBLIC_ID_ENV: &str = "NUMERAI_PUBLIC_ID";
/// Environment variable holding the API key's secret.
pub const SECRET_KEY_ENV: &str = "NUMERAI_SECRET_KEY";

const MODELS_QUERY: &str = "query { account { models { id name tournament } } }";
const LIST_DATASETS_QUERY: &str =
    "query($round:Int $tournament:Int){ listDatasets(round:$round tournament:$tournament) }";
const DATASET_QUERY: &str = "query($filename:String! $round:Int $tournament:Int){ dataset(filename:$filename round:$round tournament:$tournament) }";
const UPLOAD_AUTH_QUERY: &str = "query($filename:String! $tournament:Int! $modelId:String){ submissionUploadSignalsAuth(filename:$filename tournament:$tournament modelId:$modelId){ filename url } }";
const SUBMISSIONS_QUERY: &str = "query($modelId:String){ submissions(modelId:$modelId){ id filename insertedAt } }";
const DOWNLOAD_AUTH_QUERY: &str = "query($id:String){ submissionDownloadAuth(id:$id){ filename url } }";
const CREATE_SUBMISSION_MUTATION: &str = "mutation($filename:String! $modelId:String $triggerId:String $dataDatestamp:Int){ createSignalsSubmission(filename:$filename modelId:$modelId triggerId:$triggerId source:\"signalkit\" dataDatestamp:$dataDatestamp){ id firstEffectiveDate } }";

/// An API key: public id and secret. `Debug` and `Display` never show the secret.
#[derive(Clone)]
pub struct Credentials {
    public_id: String,
    secret_key: String,
    source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("public_id", &self.public_id)
            .field("secret_key", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// Credentials from a public id and a secret (`source` says where they came from, for messages).
    pub fn new(public_id: impl Into<String>, secret_key: impl Into<String>, source: impl Into<String>) -> Result<Self> {
        let (public_id, secret_key, source): (String, String, String) =
            (public_id.into(), secret_key.into(), source.into());
        let (public_id, secret_key) = (public_id.trim().to_string(), secret_key.trim().to_string());
        if public_id.is_empty() || secret_key.is_empty() {
            return Err(Error::Config(format!(
                "{source}: the public id and the secret key must both be non-empty; create an API key at numer.ai (account → API keys)"
            )));
        }
        let ok = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if !ok(&public_id) || !ok(&secret_key) {
            return Err(Error::Config(format!(
                "{source}: the public id or secret key contains spaces or non-ASCII characters; copy them again from numer.ai"
            )));
        }
        Ok(Credentials { public_id, secret_key, source })
    }

    /// The public id (not secret).
    pub fn public_id(&self) -> &str {
        &self.public_id
    }

    /// Where these credentials came from (environment or a file path).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `NUMERAI_PUBLIC_ID` and `NUMERAI_SECRET_KEY`; `None` when neither is set.
    pub fn from_env() -> Result<Option<Self>> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match (get(PUBLIC_ID_ENV), get(SECRET_KEY_ENV)) {
            (None, None) => Ok(None),
            (Some(p), Some(s)) => Credentials::new(p, s, format!("{PUBLIC_ID_ENV}/{SECRET_KEY_ENV}")).map(Some),
            (Some(_), None) => {
                Err(Error::Config(format!("{PUBLIC_ID_ENV} is set but {SECRET_KEY_ENV} is not: set both, or neither")))
            }
            (None, Some(_)) => {
                Err(Error::Config(format!("{SECRET_KEY_ENV} is set but {PUBLIC_ID_ENV} is not: set both, or neither")))
            }
        }
    }

    /// Reads a credentials file: `KEY = value` lines (valid TOML too; quotes, `#` comments and
    /// `[section]` lines allowed), keys `public_id` / `NUMERAI_PUBLIC_ID` and `secret_key` /
    /// `NUMERAI_SECRET_KEY`. On Unix the file must not be readable by group or others (mode 0600).
    pub fn from_file(path: &Path) -> Result<Self> {
        let (mut public_id, mut secret_key) = (None, None);
        let example = "public_id = \"...\", secret_key = \"...\"";
        let same = |k: &str| k.to_ascii_lowercase().trim_start_matches("numerai_").to_string();
        for (key, value) in crate::http::read_key_file(path, example, same)? {
            match key.to_ascii_lowercase().as_str() {
                "public_id" | "numerai_public_id" => public_id = Some(value),
                "secret_key" | "numerai_secret_key" => secret_key = Some(value),
                _ => {}
            }
        }
        match (public_id, secret_key) {
            (Some(p), Some(s)) => Credentials::new(p, s, path.display().to_string()),
            _ => Err(Error::input(
                path,
                "needs both public_id = \"...\" and secret_key = \"...\" (or NUMERAI_PUBLIC_ID=... and NUMERAI_SECRET_KEY=...)",
            )),
        }
    }

    /// The default credentials file, `~/.numerai/credentials`.
    pub fn default_file() -> Option<PathBuf> {
        std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".numerai/credentials"))
    }

    /// The credentials to use: `file` if given, else the environment, else `~/.numerai/credentials`
    /// if it exists; `None` when there are none.
    pub fn discover(file: Option<&Path>) -> Result<Option<Self>> {
        if let Some(f) = file {
            return Credentials::from_file(f).map(Some);
        }
        if let Some(c) = Credentials::from_env()? {
            return Ok(Some(c));
        }
        match Credentials::default_file().filter(|f| f.exists()) {
            Some(f) => Credentials::from_file(&f).map(Some),
            None => Ok(None),
        }
    }

    fn header(&self) -> Result<HeaderValue> {
        let mut v = HeaderValue::from_str(&format!("Token {}${}", self.public_id, self.secret_key))
            .map_err(|_| Error::Config(format!("{}: the API key is not a valid HTTP header value", self.source)))?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// GraphQL endpoint; `None` = `NUMERAI_API_URL`, else [`DEFAULT_API_URL`].
    pub api_url: Option<String>,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Longest wait for a connection, a response or one read of a body.
    pub timeout: Duration,
    /// Draw a progress bar for downloads (on a terminal only).
    pub progress: bool,
    /// Print a line to stderr before each retry.
    pub log_retries: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            api_url: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(120),
            progress: true,
            log_retries: true,
        }
    }
}

/// A Numerai model of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Model id (a UUID).
    pub id: String,
    /// Model name as shown on the site.
    pub name: String,
    /// Tournament id (11 = Signals).
    pub tournament: i64,
}

/// What Numerai answered to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionReceipt {
    /// Submission id.
    pub id: String,
    /// The file name Numerai stored the upload under.
    pub filename: String,
    /// First date the submission is scored from, if given.
    pub first_effective_date: Option<String>,
    /// How Numerai confirmed that the submission exists.
    pub confirmed: Confirmed,
}

/// How a [`SubmissionReceipt`]'s submission is known to exist on Numerai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// `createSignalsSubmission` answered with its id.
    Created,
    /// The create failed in a way that left it unclear, and the model's submissions list it.
    FoundAfterFailure,
    /// An earlier run created it (the model's submissions list it); nothing was uploaded now.
    AlreadyOnServer,
}

impl Confirmed {
    /// A short name for receipts: `created`, `found-after-failure`, `already-on-server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmed::Created => "created",
            Confirmed::FoundAfterFailure => "found-after-failure",
            Confirmed::AlreadyOnServer => "already-on-server",
        }
    }
}

/// A submission as `submissions(modelId:)` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSubmission {
    /// Submission id.
    pub id: String,
    /// The file name Numerai stored it under.
    pub filename: String,
    /// When Numerai recorded it (RFC 3339), if given.
    pub inserted_at: Option<String>,
}

impl ServerSubmission {
    /// `inserted_at` as a time, when it parses.
    pub fn inserted(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let t = self.inserted_at.as_deref()?;
        chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.to_utc())
    }
}

/// The blocking Numerai API client.
pub struct Client {
    http: reqwest::blocking::Client,
    api_url: String,
    credentials: Option<Credentials>,
    options: ClientOptions,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.api_url)
            .field("credentials", &self.credentials)
            .field("retry", &self.options.retry)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

/// What one try of a request came to.
enum Attempt<T> {
    Done(T),
    /// Transient failure: why, and the server's `Retry-After`, if any.
    Retry(String, Option<Duration>),
    Fail(Error),
}

impl Client {
    /// A client for `options.api_url` (else `NUMERAI_API_URL`, else Numerai's), authenticating
    /// with `credentials` when given (public calls such as datasets need none).
    pub fn new(credentials: Option<Credentials>, options: ClientOptions) -> Result<Self> {
        let api_url = options
            .api_url
            .clone()
            .or_else(|| std::env::var(API_URL_ENV).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let url = reqwest::Url::parse(api_url.trim()).map_err(|e| {
            Error::Config(format!("API URL '{api_url}' is not a URL ({e}); give e.g. {DEFAULT_API_URL}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config(format!("API URL '{api_url}' must start with https:// (or http://)")));
        }
        let http =
            crate::http::blocking_client(&url, options.timeout, concat!("signalkit/", env!("CARGO_PKG_VERSION")))?;
        Ok(Client { http, api_url: url.to_string(), credentials, options })
    }

    /// The GraphQL endpoint in use.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The API key in use, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Removes the secret from a message (defence in depth: servers may echo headers).
    fn scrub(&self, msg: String) -> String {
        match &self.credentials {
            Some(c) if c.secret_key.len() >= 4 => msg.replace(&c.secret_key, "<redacted>"),
            _ => msg,
        }
    }

    fn fail(&self, msg: impl Into<String>) -> Error {
        Error::Api(self.scrub(msg.into()))
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry policy is spent.
    fn with_retry<T>(&self, what: &str, mut attempt: impl FnMut() -> Attempt<T>) -> Result<T> {
        let policy = self.options.retry;
        let tries = policy.max_attempts.max(1);
        let mut n = 1;
        loop {
            match attempt() {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(why, after) => {
                    let why = self.scrub(why);
                    if n >= tries {
                        return Err(Error::Api(format!(
                            "{what}: {why} (gave up after {tries} tries); Numerai may be down or your network flaky — try again later"
                        )));
                    }
                    let delay = policy.wait(n, after);
                    if self.options.log_retries {
                        eprintln!("numerai: {what}: {why}; retry {n}/{} in {:.1}s", tries - 1, delay.as_secs_f64());
                    }
                    std::thread::sleep(delay);
                    n += 1;
                }
            }
        }
    }

    /// Sorts a send error: timeouts and connection failures are worth retrying.
    fn send_error<T>(&self, e: reqwest::Error) -> Attempt<T> {
        let msg = error_chain(&e);
        if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
            Attempt::Retry(msg, None)
        } else {
            Attempt::Fail(self.fail(msg))
        }
    }

    /// A transient HTTP status (429, 5xx) as a retry, with its `Retry-After`.
    fn retry_status<T>(resp: &Response) -> Option<Attempt<T>> {
        crate::http::transient(resp).map(|after| Attempt::Retry(format!("HTTP {}", resp.status()), after))
    }

    /// Posts a GraphQL query and returns its `data`.
    pub fn graphql(&self, query: &str, variables: Value) -> Result<Value> {
        let body = json!({ "query": query, "variables": variables });
        let op = operation_name(query);
        let what = format!("{op} ({})", self.api_url);
        let auth = self.credentials.as_ref().map(Credentials::header).transpose()?;
        self.with_retry(&what, || {
            let mut req = self.http.post(&self.api_url).json(&body);
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            let resp = match req.send() {
                Ok(r) => r,
                Err(e) => return self.send_error(e),
            };
            if let Some(r) = Self::retry_status(&resp) {
                return r;
            }
            let status = resp.status();
            let text = match resp.text() {
                Ok(t) => t,
                Err(e) => return self.send_error(e),
            };
            match self.parse_graphql(&what, status, &text) {
                Ok(d) => Attempt::Done(d),
                Err(e) => Attempt::Fail(e.error),
            }
        })
    }

    /// The `data` of a GraphQL answer, or why there is none (and whether the server said so).
    fn parse_graphql(&self, what: &str, status: StatusCode, text: &str) -> std::result::Result<Value, GraphqlError> {
        let answered = |error| GraphqlError { error, answered: true };
        let unclear = |error| GraphqlError { error, answered: false };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(answered(self.fail(format!("{what}: HTTP {status}: {}", self.auth_hint()))));
        }
        let parsed: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Err(unclear(self.fail(format!(
                    "{what}: malformed JSON in the response (HTTP {status}, {e}): {}; is the API URL right?",
                    snippet(text)
                ))));
            }
        };
        if let Some(errors) = parsed.get("errors").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let msgs: Vec<String> = errors
                .iter()
                .map(|e| e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string))
                .collect();
            let joined = msgs.join("; ");
            let lower = joined.to_ascii_lowercase();
            let hint = if ["auth", "token", "permission", "credential", "api key"].iter().any(|k| lower.contains(k)) {
                format!(" — {}", self.auth_hint())
            } else {
                String::new()
            };
            return Err(answered(self.fail(format!("{what}: GraphQL error: {joined}{hint}"))));
        }
        if !status.is_success() {
            let e = self.fail(format!("{what}: HTTP {status}: {}", snippet(text)));
            return Err(if status.is_client_error() { answered(e) } else { unclear(e) });
        }
        match parsed.get("data") {
            Some(d) if !d.is_null() => Ok(d.clone()),
            _ => Err(unclear(self.fail(format!("{what}: the response has no data: {}", snippet(text))))),
        }
    }

    fn auth_hint(&self) -> String {
        match &self.credentials {
            None => format!(
                "this call needs an API key: set {PUBLIC_ID_ENV} and {SECRET_KEY_ENV}, or write them to ~/.numerai/credentials (mode 600)"
            ),
            Some(c) => format!(
                "the API key from {} (public id {}) was refused; check it at numer.ai (account → API keys) and that it may view user info and upload submissions",
                c.source, c.public_id
            ),
        }
    }

    fn require_credentials(&self, what: &str) -> Result<()> {
        if self.credentials.is_none() {
            return Err(Error::Api(format!("{what}: {}", self.auth_hint())));
        }
        Ok(())
    }

    /// The account's Signals models (tournament 11).
    pub fn models(&self) -> Result<Vec<Model>> {
        self.require_credentials("listing models")?;
        let data = self.graphql(MODELS_QUERY, json!({}))?;
        let list = data.pointer("/account/models").and_then(Value::as_array).ok_or_else(|| {
            self.fail(format!("account models: unexpected response shape: {}", snippet(&data.to_string())))
        })?;
        let mut models = Vec::new();
        for m in list {
            let id = m.get("id").and_then(Value::as_str);
            let name = m.get("name").and_then(Value::as_str);
            let tournament = m.get("tournament").and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()));
            if let (Some(id), Some(name), Some(SIGNALS_TOURNAMENT)) = (id, name, tournament) {
                let tournament = SIGNALS_TOURNAMENT;
                models.push(Model { id: id.to_string(), name: name.to_string(), tournament });
            }
        }
        Ok(models)
    }

    /// The id of the Signals model called `name` (case-insensitive).
    pub fn model_id(&self, name: &str) -> Result<String> {
        let models = self.models()?;
        if let Some(m) = models.iter().find(|m| m.name.eq_ignore_ascii_case(name.trim())) {
            return Ok(m.id.clone());
        }
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        Err(Error::Api(if names.is_empty() {
            format!("model '{name}': this account has no Signals models; create one at signals.numer.ai")
        } else {
            format!(
                "model '{name}' is not one of this account's Signals models ({}); check --model-name",
                names.join(", ")
            )
        }))
    }

    /// The dataset files Numerai lists for Signals (for `round`, else the current one).
    pub fn list_datasets(&self, round: Option<i64>) -> Result<Vec<String>> {
        let data = self.graphql(LIST_DATASETS_QUERY, json!({ "round": round, "tournament": SIGNALS_TOURNAMENT }))?;
        let list = data.get("listDatasets").and_then(Value::as_array).ok_or_else(|| {
            self.fail(format!("listDatasets: unexpected response shape: {}", snippet(&data.to_string())))
        })?;
        Ok(list.iter().filter_map(Value::as_str).map(str::to_string).collect())
    }

    /// The pre-signed URL of dataset `filename` (e.g. `signals/v2.1/live.parquet`).
    pub fn dataset_url(&self, filename: &str, round: Option<i64>) -> Result<String> {
        let vars = json!({ "filename": filename, "round": round, "tournament": SIGNALS_TOURNAMENT });
        let data = self.graphql(DATASET_QUERY, vars)?;
        match data.get("dataset").and_then(Value::as_str) {
            Some(u) if !u.is_empty() => Ok(u.to_string()),
            _ => Err(Error::Api(format!(
                "dataset '{filename}': no such file for this round; run `signalkit datasets` to list the files"
            ))),
        }
    }

    /// Downloads dataset `filename` into `dir` (as its base name, e.g. `dir/live.parquet`) and
    /// returns the path. The bytes go to a temporary file in `dir`, renamed only when complete.
    pub fn download_dataset(&self, filename: &str, dir: &Path, round: Option<i64>) -> Result<PathBuf> {
        let url = self.dataset_url(filename, round)?;
        let base = Path::new(filename)
            .file_name()
            .ok_or_else(|| Error::Config(format!("dataset name '{filename}' has no file name")))?;
        let dest = dir.join(base);
        self.download_url(&url, &dest)?;
        Ok(dest)
    }

    /// Streams `url` (no API key is sent) to `dest` through a temporary file beside it; returns
    /// the byte count. A failed or truncated transfer leaves nothing under `dest`.
    pub fn download_url(&self, url: &str, dest: &Path) -> Result<u64> {
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let what = format!("download of {name}");
        self.with_retry(&what, || {
            // Removed on drop unless persisted (renamed into place) once complete.
            let tmp = match tempfile::Builder::new().prefix(&format!(".{name}.part-")).tempfile_in(dir) {
                Ok(t) => t,
                Err(e) => return Attempt::Fail(Error::io(dir, e)),
            };
            let resp = match self.http.get(url).send() {
                Ok(r) => r,
                Err(e) => return self.send_error(e),
            };
            if let Some(r) = Self::retry_status(&resp) {
                return r;
            }
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().unwrap_or_default();
                let hint = if status == StatusCode::FORBIDDEN { " (pre-signed URLs expire: run again)" } else { "" };
                return Attempt::Fail(self.fail(format!("{what}: HTTP {status}{hint}: {}", snippet(&text))));
            }
            match self.stream_to(resp, tmp.path(), &name) {
                Ok(n) => match tmp.persist(dest) {
                    Ok(_) => Attempt::Done(n),
                    Err(e) => Attempt::Fail(Error::io(dest, e.error)),
                },
                Err(StreamError::Local(e)) => Attempt::Fail(e),
                Err(StreamError::Transfer(why)) => Attempt::Retry(why, None),
            }
        })
    }

    fn stream_to(&self, mut resp: Response, path: &Path, name: &str) -> Result<u64, StreamError> {
        let expected = resp.content_length();
        let bar = if self.options.progress {
            let bar = ProgressBar::with_draw_target(expected, ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}")
            {
                bar.set_style(style);
            }
            bar.set_message(name.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        let local = |e| StreamError::Local(Error::io(path, e));
        let mut out = std::io::BufWriter::new(File::create(path).map_err(local)?);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    bar.abandon();
                    return Err(StreamError::Transfer(format!("connection lost after {total} bytes ({e})")));
                }
            };
            out.write_all(&buf[..n]).map_err(local)?;
            total += n as u64;
            bar.inc(n as u64);
        }
        if let Some(len) = expected.filter(|&len| len != total) {
            bar.abandon();
            return Err(StreamError::Transfer(format!("got {total} of {len} bytes")));
        }
        let f = out.into_inner().map_err(|e| local(e.into_error()))?;
        f.sync_all().map_err(local)?;
        bar.finish_and_clear();
        Ok(total)
    }

    /// Uploads a submission file for Signals model `model_id`: asks for an upload URL, PUTs the
    /// bytes there (without the API key), then registers the submission with one
    /// `createSignalsSubmission` call (see [`Client::upload_submission_with`]).
    pub fn upload_submission(
        &self,
        file: &Path,
        model_id: &str,
        data_datestamp: Option<i64>,
    ) -> Result<SubmissionReceipt> {
        self.upload_submission_with(file, model_id, data_datestamp, |_| Ok(()))
    }

    /// [`Client::upload_submission`], calling `before_create(stored_filename)` after the bytes are
    /// uploaded and before the submission is registered (an error there stops before the create).
    ///
    /// The upload-URL query and the PUT (of the same object) are retried like every read. The
    /// create is not: when it fails after the request may have reached Numerai (a timeout, a
    /// dropped connection, HTTP 429 or 5xx, an unreadable answer), the model's submissions are
    /// listed, and the create is sent again only when none has the stored file name. If the
    /// listing fails too, or a timed-out create is not listed yet (it may still be running), this
    /// stops with an error saying the submission may exist: it never creates blindly.
    pub fn upload_submission_with(
        &self,
        file: &Path,
        model_id: &str,
        data_datestamp: Option<i64>,
        before_create: impl FnOnce(&str) -> Result<()>,
    ) -> Result<SubmissionReceipt> {
        self.require_credentials("uploading a submission")?;
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let filename = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Config(format!("{}: not a file", file.display())))?;
        let vars = json!({ "filename": filename, "tournament": SIGNALS_TOURNAMENT, "modelId": model_id });
        let data = self.graphql(UPLOAD_AUTH_QUERY, vars)?;
        let auth = data.get("submissionUploadSignalsAuth");
        let (Some(stored), Some(url)) = (
            auth.and_then(|a| a.get("filename")).and_then(Value::as_str),
            auth.and_then(|a| a.get("url")).and_then(Value::as_str),
        ) else {
            return Err(self.fail(format!(
                "submissionUploadSignalsAuth: no upload URL in the response: {}",
                snippet(&data.to_string())
            )));
        };
        let stored = stored.to_string();
        self.put_presigned(url, &bytes, &filename)?;
        before_create(&stored)?;
        let trigger = std::env::var("TRIGGER_ID").ok().filter(|t| !t.is_empty());
        let vars =
            json!({ "filename": stored, "modelId": model_id, "triggerId": trigger, "dataDatestamp": data_datestamp });
        self.create_submission(vars, model_id, &stored, chrono::Utc::now())
    }

    /// PUTs `bytes` to a presigned upload URL (without the API key), retried like a read; any
    /// status but 2xx is an error naming `what`.
    pub fn put_presigned(&self, url: &str, bytes: &[u8], what: &str) -> Result<()> {
        self.with_retry(&format!("upload of {what}"), || {
            let resp = match self.http.put(url).body(bytes.to_vec()).send() {
                Ok(r) => r,
                Err(e) => return self.send_error(e),
            };
            if let Some(r) = Self::retry_status(&resp) {
                return r;
            }
            let status = resp.status();
            if status.is_success() {
                Attempt::Done(())
            } else {
                let text = resp.text().unwrap_or_default();
                Attempt::Fail(self.fail(format!("upload of {what}: HTTP {status}: {}", snippet(&text))))
            }
        })
    }

    /// `createSignalsSubmission`, sent again only after the server was asked and lists no
    /// submission of `stored` (inserted since `since`, give or take clock skew).
    fn create_submission(
        &self,
        vars: Value,
        model_id: &str,
        stored: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<SubmissionReceipt> {
        let body = json!({ "query": CREATE_SUBMISSION_MUTATION, "variables": vars });
        let what = format!("createSignalsSubmission ({})", self.api_url);
        let auth = self.credentials.as_ref().map(Credentials::header).transpose()?;
        let policy = self.options.retry;
        let tries = policy.max_attempts.max(1);
        let mut n = 1;
        loop {
            let delay = policy.delay(n);
            let (why, may_still_run) = match self.create_once(&body, auth.as_ref(), &what) {
                Ok(data) => return self.created_receipt(&data, stored),
                Err(CreateFailure::Refused(e)) => return Err(e),
                Err(CreateFailure::NotSent(why)) => {
                    let why = self.scrub(why);
                    if n >= tries {
                        return Err(Error::Api(format!(
                            "{what}: {why} (gave up after {tries} tries; the request never reached Numerai, so nothing was created); check your network and run again"
                        )));
                    }
                    if self.options.log_retries {
                        eprintln!("numerai: {what}: {why}; retry {n}/{} in {:.1}s", tries - 1, delay.as_secs_f64());
                    }
                    std::thread::sleep(delay);
                    n += 1;
                    continue;
                }
                Err(CreateFailure::Ambiguous(why)) => (self.scrub(why), false),
                Err(CreateFailure::TimedOut(why)) => (self.scrub(why), true),
            };
            if self.options.log_retries {
                eprintln!(
                    "numerai: {what}: {why}; Numerai may have created the submission: looking for {stored} among the model's submissions in {:.1}s",
                    delay.as_secs_f64()
                );
            }
            std::thread::sleep(delay);
            let asked = Asked { what: &what, why: &why, model_id, stored, since };
            if let Some(receipt) = self.created_after_failure(&asked, may_still_run, n >= tries)? {
                return Ok(receipt);
            }
            n += 1;
        }
    }

    /// After a create that may have reached Numerai: the receipt when the model's submissions
    /// list `stored`, `None` when they do not and sending again is safe, else the error to show.
    fn created_after_failure(
        &self,
        a: &Asked,
        may_still_run: bool,
        last_try: bool,
    ) -> Result<Option<SubmissionReceipt>> {
        let (what, why, stored) = (a.what, a.why, a.stored);
        match self.find_submission(a.model_id, stored, Some(a.since)) {
            Ok(Some(found)) => Ok(Some(SubmissionReceipt {
                id: found.id,
                filename: stored.to_string(),
                first_effective_date: None,
                confirmed: Confirmed::FoundAfterFailure,
            })),
            Ok(None) if may_still_run => Err(Error::Api(format!(
                "{what}: {why}; the model's submissions do not list {stored} yet, but Numerai may still be creating it, so it is not sent again. \
                 Look at the model's submissions on signals.numer.ai in a few minutes, or run the same `signalkit submit` again later: \
                 it asks Numerai first and uploads only if the submission is not there"
            ))),
            Ok(None) if last_try => Err(Error::Api(format!(
                "{what}: {why} (gave up after {} tries; each time Numerai listed no submission of {stored}, so none was created); \
                 Numerai may be down — run again later",
                self.options.retry.max_attempts.max(1)
            ))),
            Ok(None) => {
                if self.options.log_retries {
                    eprintln!("numerai: {what}: no submission of {stored} on the server; sending the create again");
                }
                Ok(None)
            }
            Err(e) => Err(Error::Api(format!(
                "{what}: {why}; the request may have reached Numerai, and checking whether it created the submission failed too ({}). \
                 THE SUBMISSION MAY EXIST: look at the model's submissions on signals.numer.ai, or run the same `signalkit submit` again \
                 when the API answers (it asks Numerai first and uploads only if the submission is not there); do not upload by hand before checking",
                error_text(e)
            ))),
        }
    }

    /// One `createSignalsSubmission` request, its failure sorted by what the server may have done.
    fn create_once(
        &self,
        body: &Value,
        auth: Option<&HeaderValue>,
        what: &str,
    ) -> std::result::Result<Value, CreateFailure> {
        let mut req = self.http.post(&self.api_url).json(body);
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let sort = |e: reqwest::Error| {
            let msg = error_chain(&e);
            if e.is_connect() {
                CreateFailure::NotSent(msg)
            } else if e.is_timeout() {
                CreateFailure::TimedOut(msg)
            } else {
                CreateFailure::Ambiguous(msg)
            }
        };
        let resp = req.send().map_err(sort)?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(CreateFailure::Ambiguous(format!("HTTP {status}")));
        }
        let text = resp.text().map_err(sort)?;
        self.parse_graphql(what, status, &text).map_err(|e| {
            if e.answered { CreateFailure::Refused(e.error) } else { CreateFailure::Ambiguous(error_text(e.error)) }
        })
    }

    fn created_receipt(&self, data: &Value, stored: &str) -> Result<SubmissionReceipt> {
        let created = data.get("createSignalsSubmission");
        let id = created.and_then(|c| c.get("id")).and_then(Value::as_str).ok_or_else(|| {
            self.fail(format!(
                "createSignalsSubmission: no submission id in the response: {}; look at the model's submissions on signals.numer.ai before uploading again",
                snippet(&data.to_string())
            ))
        })?;
        let first = created.and_then(|c| c.get("firstEffectiveDate")).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        });
        Ok(SubmissionReceipt {
            id: id.to_string(),
            filename: stored.to_string(),
            first_effective_date: first,
            confirmed: Confirmed::Created,
        })
    }

    /// The submissions Numerai lists for model `model_id` (numerapi's `submission_ids` query).
    pub fn submissions(&self, model_id: &str) -> Result<Vec<ServerSubmission>> {
        self.require_credentials("listing submissions")?;
        let data = self.graphql(SUBMISSIONS_QUERY, json!({ "modelId": model_id }))?;
        let list = match data.get("submissions") {
            Some(Value::Array(a)) => a.as_slice(),
            Some(Value::Null) => &[],
            _ => {
                return Err(
                    self.fail(format!("submissions: unexpected response shape: {}", snippet(&data.to_string())))
                );
            }
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(list
            .iter()
            .filter_map(|s| {
                Some(ServerSubmission {
                    id: text(s, "id")?,
                    filename: text(s, "filename").unwrap_or_default(),
                    inserted_at: text(s, "insertedAt"),
                })
            })
            .collect())
    }

    /// Downloads submission `id` (`submissionDownloadAuth` → presigned GET) to `dest`; returns
    /// the file name Numerai stored it under.
    pub fn download_submission(&self, id: &str, dest: &Path) -> Result<String> {
        self.require_credentials("downloading a submission")?;
        let data = self.graphql(DOWNLOAD_AUTH_QUERY, json!({ "id": id }))?;
        let field = |k: &str| data.pointer(&format!("/submissionDownloadAuth/{k}")).and_then(Value::as_str);
        let Some(url) = field("url") else {
            return Err(self.fail(format!("submissionDownloadAuth: no URL for {id}: {}", snippet(&data.to_string()))));
        };
        let name = field("filename").unwrap_or_default().to_string();
        self.download_url(url, dest)?;
        Ok(name)
    }

    /// The submission of model `model_id` whose stored file name is `stored` (the name
    /// `submissionUploadSignalsAuth` gave), inserted since `since` (less [`CLOCK_SKEW`]) when
    /// both times are known; the newest such.
    pub fn find_submission(
        &self,
        model_id: &str,
        stored: &str,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<ServerSubmission>> {
        let earliest = since.map(|t| t - CLOCK_SKEW);
        let mut found: Vec<ServerSubmission> = self
            .submissions(model_id)?
            .into_iter()
            .filter(|s| s.filename == stored)
            .filter(|s| match (earliest, s.inserted()) {
                (Some(e), Some(at)) => at >= e,
                _ => true,
            })
            .collect();
        found.sort_by_key(ServerSubmission::inserted);
        Ok(found.pop())
    }
}

/// How far apart this machine's clock and Numerai's may be when matching a submission's
/// `insertedAt` against the time this client started creating it.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// What a create that may have reached Numerai was: the request, why it failed, and which
/// submission (model, stored file name, not before `since`) to look for.
struct Asked<'a> {
    what: &'a str,
    why: &'a str,
    model_id: &'a str,
    stored: &'a str,
    since: chrono::DateTime<chrono::Utc>,
}

/// A failed `createSignalsSubmission`, by what the server may have done.
enum CreateFailure {
    /// The connection was never made: nothing was created.
    NotSent(String),
    /// The server answered that it did not create it (HTTP 4xx but 429, GraphQL `errors`).
    Refused(Error),
    /// No answer in time: the server may have created it, or may still be creating it.
    TimedOut(String),
    /// The request may have reached the server, and no clear answer came back (a dropped
    /// connection, HTTP 429 or 5xx, an unreadable body).
    Ambiguous(String),
}

/// A GraphQL failure, and whether the server clearly answered (rather than failed to).
struct GraphqlError {
    error: Error,
    answered: bool,
}

/// An error's message without the "Numerai API: " prefix of [`Error::Api`].
fn error_text(e: Error) -> String {
    match e {
        Error::Api(m) => m,
        other => other.to_string(),
    }
}

enum StreamError {
    /// The local file could not be written: not worth retrying.
    Local(Error),
    /// The transfer broke off: worth retrying.
    Transfer(String),
}

/// The first field of a GraphQL query, for messages (`listDatasets`, `account`, ...).
fn operation_name(query: &str) -> String {
    let body = query.split_once('{').map_or(query, |(_, b)| b).trim_start();
    body.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// The start of a response body for an error message.
fn snippet(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return "(empty body)".to_string();
    }
    let cut: String = t.chars().take(200).collect();
    if cut.len() < t.len() { format!("{cut}…") } else { cut }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names() {
        assert_eq!(operation_name(MODELS_QUERY), "account");
        assert_eq!(operation_name(LIST_DATASETS_QUERY), "listDatasets");
        assert_eq!(operation_name(CREATE_SUBMISSION_MUTATION), "createSignalsSubmission");
        assert_eq!(operation_name(SUBMISSIONS_QUERY), "submissions");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(350));
    }

    #[test]
    fn debug_redacts_secret() {
        let c = Credentials::new("PUBLICID", "SUPERSECRET123", "test").unwrap();
        assert!(!format!("{c:?}").contains("SUPERSECRET123"));
        let client = Client::new(Some(c), ClientOptions::default()).unwrap();
        assert!(!format!("{client:?}").contains("SUPERSECRET123"));
    }
}
