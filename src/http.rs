//! HTTP pieces shared by the API clients (Numerai, the news sources): the retry policy, the
//! `Retry-After` header, a reqwest error's causes, the 0600 rule for files holding secrets, and a
//! blocking client that bypasses proxies for loopback test servers.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::RETRY_AFTER;

use crate::error::{Error, Result};

/// How failed requests are retried: up to `max_attempts` tries, waiting `base_delay`, then twice
/// that, and so on, capped at `max_delay` (a 429's `Retry-After` is honoured up to the cap).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total tries, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub base_delay: Duration,
    /// Longest wait between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry `retry` when the server asked for `after`: the longer of the two,
    /// capped at `max_delay`.
    pub fn wait(&self, retry: u32, after: Option<Duration>) -> Duration {
        after.map_or(self.delay(retry), |a| a.max(self.delay(retry))).min(self.max_delay)
    }
}

/// A transient status (429 or 5xx) with the wait the server asked for, if any (see
/// [`asked_wait`]); `None` otherwise.
pub fn transient(resp: &Response) -> Option<Option<Duration>> {
    let status = resp.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Some(asked_wait(resp.headers()));
    }
    None
}

/// The wait a server asks for: `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3),
/// else `X-RateLimit-Reset` (Alpaca: the Unix second the quota resets; a small number is read as
/// seconds from now). A time already past is no wait.
pub fn asked_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let now = chrono::Utc::now();
    let until = |t: chrono::DateTime<chrono::Utc>| (t - now).to_std().unwrap_or(Duration::ZERO);
    if let Some(v) = text(RETRY_AFTER.as_str()) {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
            return Some(until(t.with_timezone(&chrono::Utc)));
        }
    }
    let reset = text("x-ratelimit-reset")?.parse::<f64>().ok().filter(|r| r.is_finite() && *r >= 0.0)?;
    if reset < 1e9 {
        return Some(Duration::from_secs_f64(reset));
    }
    chrono::DateTime::from_timestamp(reset as i64, 0).map(until)
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        src = s.source();
    }
    msg
}

/// True for errors worth retrying: timeouts, refused or dropped connections, broken bodies.
pub fn retryable(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

/// A blocking client with these timeouts and User-Agent, without proxies for a loopback `url`.
pub fn blocking_client(url: &reqwest::Url, timeout: Duration, user_agent: &str) -> Result<reqwest::blocking::Client> {
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .user_agent(user_agent);
    if url
        .host_str()
        .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| Error::Api(format!("cannot build the HTTP client: {e}")))
}

/// A file holding a secret must not be readable by group or others (mode 0600).
#[cfg(unix)]
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(Error::input(
            path,
            format!("is {kind}, expected the credentials file itself (KEY = value lines, mode 600): name that file"),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::input(
            path,
            format!(
                "holds an API secret but is readable by others (mode {mode:04o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// A file holding a secret must not be readable by group or others (checked on Unix only).
#[cfg(not(unix))]
pub fn check_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// Reads a private (mode 0600) secrets file of `KEY = value` lines — quotes, `#` comments,
/// `[section]` lines and `export` allowed, so TOML and shell files both work — as (key as written,
/// value) pairs. A malformed line, or a key given twice (`same_key` maps a key to the name it
/// stands for, so aliases count as one), is an error naming its line (never echoing it: it may
/// hold a secret); `example` shows the expected form.
pub fn read_key_file(path: &Path, example: &str, same_key: impl Fn(&str) -> String) -> Result<Vec<(String, String)>> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::input(path, format!("line {}: expected KEY = value, e.g. {example}", i + 1)));
        };
        let key = k.trim().trim_start_matches("export ").trim().to_string();
        if let Some(first) = seen.insert(same_key(&key), i + 1) {
            return Err(Error::input(
                path,
                format!("line {}: {key} is given again (first on line {first}): keep one of the two lines", i + 1),
            ));
        }
        out.push((key, unquote(v)));
    }
    Ok(out)
}

/// The value without its surrounding quotes, if any.
fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}
