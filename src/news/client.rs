//! The news sources' HTTP side: one blocking client per fetch with a token bucket (the source's
//! rate limit), retries of timeouts, 429 (honouring `Retry-After`) and 5xx with backoff, and keys
//! sent only in headers and never printed (every message is scrubbed of them).

use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{RetryPolicy, blocking_client, error_chain, retryable, transient};

/// A token bucket: `rate` requests per second on average, bursts of up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket allowing `per_minute` requests a minute, `burst` at once.
    pub fn new(per_minute: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket { rate: (per_minute / 60.0).max(1e-6), burst, tokens: burst, last: Instant::now() }
    }

    /// How long to wait before the next request may go (and takes its token).
    pub fn take(&mut self) -> Duration {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

/// A rate-limited, retrying JSON client for one source.
pub struct NewsHttp {
    http: reqwest::blocking::Client,
    bucket: std::cell::RefCell<TokenBucket>,
    retry: RetryPolicy,
    headers: HeaderMap,
    secrets: Vec<String>,
    /// Requests sent (retries included).
    pub requests: std::cell::Cell<u64>,
    /// Retries after a 429, a 5xx or a dropped connection.
    pub retries: std::cell::Cell<u64>,
    log_retries: bool,
}

impl NewsHttp {
    /// A client for `base` sending `headers` (marked sensitive when they hold a key) with every
    /// request to `base`'s host, as `user_agent`, at most `per_minute` requests a minute.
    pub fn new(
        base: &Url,
        user_agent: &str,
        headers: &[(&str, String, bool)],
        per_minute: f64,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let http = blocking_client(base, Duration::from_secs(60), user_agent)?;
        let mut map = HeaderMap::new();
        let mut secrets = Vec::new();
        for (name, value, secret) in headers {
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                Error::Config(format!("the value for header {name} is not a valid HTTP header value; check the key"))
            })?;
            if *secret {
                v.set_sensitive(true);
                secrets.extend(value.split_whitespace().filter(|s| s.len() >= 4).map(str::to_string));
            }
            map.insert(HeaderName::from_bytes(name.as_bytes()).expect("static header name"), v);
        }
        Ok(NewsHttp {
            http,
            bucket: std::cell::RefCell::new(TokenBucket::new(per_minute, burst_of(per_minute))),
            retry,
            headers: map,
            secrets,
            requests: Default::default(),
            retries: Default::default(),
            log_retries: true,
        })
    }

    /// Removes every key from a message.
    pub fn scrub(&self, msg: String) -> String {
        self.secrets.iter().fold(msg, |m, s| m.replace(s.as_str(), "<redacted>"))
    }

    /// GETs `url` and parses its JSON body, retrying transient failures; `headers_too` says
    /// whether the key headers go with it (never to another host than the source's).
    pub fn get_json(&self, url: &Url, headers_too: bool) -> Result<Value> {
        let tries = self.retry.max_attempts.max(1);
        let shown = self.scrub(url.to_string());
        for n in 1.. {
            std::thread::sleep(self.bucket.borrow_mut().take());
            self.requests.set(self.requests.get() + 1);
            let mut req = self.http.get(url.clone());
            if headers_too {
                req = req.headers(self.headers.clone());
            }
            let (why, after) = match req.send() {
                Err(e) if retryable(&e) => (self.scrub(error_chain(&e)), None),
                Err(e) => return Err(Error::News(format!("GET {shown}: {}", self.scrub(error_chain(&e))))),
                Ok(resp) => match transient(&resp) {
                    Some(after) => (format!("HTTP {}", resp.status()), after),
                    None => return self.parse(&shown, resp),
                },
            };
            if n >= tries {
                return Err(Error::News(format!(
                    "GET {shown}: {why} (gave up after {tries} tries); the source may be down or rate-limiting you — run again later (the fetch resumes where it stopped)"
                )));
            }
            let wait = self.retry.wait(n, after);
            if self.log_retries {
                eprintln!("news: GET {shown}: {why}; retry {n}/{} in {:.1}s", tries - 1, wait.as_secs_f64());
            }
            self.retries.set(self.retries.get() + 1);
            std::thread::sleep(wait);
        }
        unreachable!("the loop returns")
    }

    fn parse(&self, shown: &str, resp: reqwest::blocking::Response) -> Result<Value> {
        let status = resp.status();
        let text = resp
            .text()
            .map_err(|e| Error::News(format!("GET {shown}: reading the body: {}", self.scrub(error_chain(&e)))))?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Error::News(format!(
                "GET {shown}: HTTP {status}: the key was refused; check the source's key (env var or credentials file) and your plan's access"
            )));
        }
        if !status.is_success() {
            return Err(Error::News(format!("GET {shown}: HTTP {status}: {}", self.scrub(snippet(&text)))));
        }
        serde_json::from_str(&text).map_err(|e| {
            Error::News(format!("GET {shown}: the answer is not JSON ({e}): {}", self.scrub(snippet(&text))))
        })
    }
}

/// Burst size for a rate: a second's worth, at least one.
fn burst_of(per_minute: f64) -> u32 {
    ((per_minute / 60.0).floor() as u32).max(1)
}

/// The start of a body for a message.
fn snippet(text: &str) -> String {
    let t: String = text.trim().chars().take(200).collect();
    if t.is_empty() { "(empty body)".into() } else { t }
}

/// `base` joined with `path` and the query pairs (a trailing slash on `base` is ignored).
pub fn endpoint(base: &Url, path: &str, query: &[(&str, String)]) -> Url {
    let mut u = base.clone();
    let joined = format!("{}{path}", base.path().trim_end_matches('/'));
    u.set_path(&joined);
    u.set_query(None);
    if !query.is_empty() {
        u.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    u
}
