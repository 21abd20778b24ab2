//! The news sources' HTTP side: one blocking client per fetch with a token bucket (the source's
//! rate limit), retries of timeouts, 429 (honouring `Retry-After`, as seconds or a date, and
//! `X-RateLimit-Reset`) and 5xx with backoff, and keys sent only in headers and never printed
//! (every message is scrubbed of them).
//!
//! A 401 or 403 is read the vendor's way ([`Refusal`]): a refused key stops the fetch, naming the
//! key's variable; a throttle (SEC's 403 after a rate excess) is waited out like a 429; a plan
//! limit (Polygon's 403 for dates outside the plan) fails only the request, and the fetch records
//! the ticker's days as not available to this key and goes on with the next ticker.

use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::blocking::RequestBuilder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{RetryPolicy, asked_wait, blocking_client, error_chain, retryable, transient};

/// What a vendor's 401 or 403 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key is wrong or missing: stop, naming the key.
    BadKey,
    /// Too many requests (SEC answers 403 and blocks for about ten minutes): wait and retry.
    Throttle,
    /// The key's plan does not cover what was asked (Polygon: dates outside the plan): skip it.
    PlanLimit,
}

/// How most vendors answer: 401 and 403 both mean the key was refused.
pub fn key_refused(_status: u16, _body: &str) -> Refusal {
    Refusal::BadKey
}

/// Who the client talks for: the vendor's name, its key variables and how it reads a refusal.
#[derive(Debug, Clone, Copy)]
pub struct Speaker {
    /// The source's name.
    pub name: &'static str,
    /// Its key variables.
    pub keys: &'static [&'static str],
    /// Its reading of a 401 or 403.
    pub refusal: fn(u16, &str) -> Refusal,
    /// What a rerun after giving up does, in parentheses (ends the give-up message).
    pub resume: &'static str,
}

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
    who: Speaker,
    denied: std::cell::RefCell<Option<String>>,
}

impl NewsHttp {
    /// A client for `who` at `base` sending `headers` (marked sensitive when they hold a key) with
    /// every request to `base`'s host, as `user_agent`, at most `per_minute` requests a minute.
    pub fn new(
        who: Speaker,
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
            who,
            denied: Default::default(),
        })
    }

    /// Removes every key from a message.
    pub fn scrub(&self, msg: String) -> String {
        self.secrets.iter().fold(msg, |m, s| m.replace(s.as_str(), "<redacted>"))
    }

    /// The plan limit the last failed request met, if that is why it failed (taken once).
    pub fn take_denied(&self) -> Option<String> {
        self.denied.borrow_mut().take()
    }

    /// GETs `url` and parses its JSON body ([`NewsHttp::send_json`]).
    pub fn get_json(&self, url: &Url, headers_too: bool) -> Result<Value> {
        self.send_json(self.http.get(url.clone()), headers_too)
    }

    /// POSTs `body` as JSON to `url` and parses the JSON answer ([`NewsHttp::send_json`]).
    pub fn post_json(&self, url: &Url, body: &Value, headers_too: bool) -> Result<Value> {
        let req = self.http.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json");
        self.send_json(req.body(body.to_string()), headers_too)
    }

    /// Sends `req` (a GET or a POST of this client, its body in memory) and parses its JSON
    /// answer: one request per token of the bucket, transient failures (timeouts, 429, 5xx) and
    /// throttles retried with backoff or the wait the server asked for, refusals read the
    /// speaker's way, and every message scrubbed of the keys. `headers_too` says whether the key
    /// headers go with it (never to another host than the source's).
    pub fn send_json(&self, req: RequestBuilder, headers_too: bool) -> Result<Value> {
        let probe = req.try_clone().and_then(|r| r.build().ok()).ok_or_else(|| {
            Error::News(format!("{}: a request that cannot be repeated (a streamed body)", self.who.name))
        })?;
        let shown = format!("{} {}", probe.method(), self.scrub(probe.url().to_string()));
        let tries = self.retry.max_attempts.max(1);
        for n in 1.. {
            std::thread::sleep(self.bucket.borrow_mut().take());
            self.requests.set(self.requests.get() + 1);
            // Compressed answers, as SEC's fair-access page asks; `body_text` decodes them.
            let mut one = req.try_clone().expect("cloned above").header(reqwest::header::ACCEPT_ENCODING, "gzip");
            if headers_too {
                one = one.headers(self.headers.clone());
            }
            let (why, after) = match one.send() {
                Err(e) if retryable(&e) => (self.scrub(error_chain(&e)), None),
                Err(e) => return Err(Error::News(format!("{shown}: {}", self.scrub(error_chain(&e))))),
                Ok(resp) => match transient(&resp) {
                    Some(after) => (format!("HTTP {}", resp.status()), after),
                    None => match self.answer(&shown, resp)? {
                        Answer::Json(v) => return Ok(v),
                        // A throttle: wait as long as the retries allow (SEC blocks for minutes).
                        Answer::Throttled(why, after) => (why, Some(after.unwrap_or(self.retry.max_delay))),
                    },
                },
            };
            if n >= tries {
                return Err(self.gave_up(&shown, &why, tries));
            }
            let wait = self.retry.wait(n, after);
            if self.log_retries {
                eprintln!("{}: {shown}: {why}; retry {n}/{} in {:.1}s", self.who.name, tries - 1, wait.as_secs_f64());
            }
            self.retries.set(self.retries.get() + 1);
            std::thread::sleep(wait);
        }
        unreachable!("the loop returns")
    }

    /// The error after the last try: the vendor may be down or throttling; what to do.
    fn gave_up(&self, shown: &str, why: &str, tries: u32) -> Error {
        let hint = if why.contains("(throttled)") {
            format!(" (a throttle can last about ten minutes; if it persists, check {})", self.who.keys.join(" and "))
        } else {
            String::new()
        };
        Error::News(format!(
            "{shown}: {why} (gave up after {tries} tries); {} may be down or rate-limiting you — run again later{hint} {}",
            self.who.name, self.who.resume
        ))
    }

    /// A final answer: its JSON, a throttle to wait out, or an error (a refusal read the vendor's way).
    fn answer(&self, shown: &str, resp: reqwest::blocking::Response) -> Result<Answer> {
        let status = resp.status();
        let after = asked_wait(resp.headers());
        let text = self.scrub(body_text(resp).map_err(|e| Error::News(format!("{shown}: reading the body: {e}")))?);
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return self.refused(shown, status, &text, after);
        }
        if !status.is_success() {
            return Err(Error::News(format!("{shown}: HTTP {status}: {}", snippet(&text))));
        }
        serde_json::from_str(&text)
            .map(Answer::Json)
            .map_err(|e| Error::News(format!("{shown}: the answer is not JSON ({e}): {}", snippet(&text))))
    }

    /// A 401 or 403, read the vendor's way.
    fn refused(&self, shown: &str, status: reqwest::StatusCode, text: &str, after: Option<Duration>) -> Result<Answer> {
        let Speaker { name, keys, refusal, .. } = self.who;
        let said = snippet(text);
        match refusal(status.as_u16(), text) {
            Refusal::Throttle => Ok(Answer::Throttled(format!("HTTP {status} (throttled): {said}"), after)),
            Refusal::PlanLimit => {
                let why = format!("HTTP {status} from {name}: {said}");
                *self.denied.borrow_mut() = Some(why.clone());
                Err(Error::News(format!("{shown}: {why}")))
            }
            Refusal::BadKey => Err(Error::News(format!(
                "{shown}: HTTP {status}: {name} refused the key ({said}); check {} (environment variable, ~/.signalkit/credentials or the file given with --credentials) and your plan's access",
                keys.join(" and ")
            ))),
        }
    }
}

/// What one response came to.
enum Answer {
    Json(Value),
    /// A throttle's message and the wait the server asked for.
    Throttled(String, Option<Duration>),
}

/// The body as text, gunzipped when the server says it is gzip.
fn body_text(resp: reqwest::blocking::Response) -> std::result::Result<String, String> {
    let gzip = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = resp.bytes().map_err(|e| error_chain(&e))?;
    if !gzip {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .map_err(|e| format!("the gzip body does not decode ({e})"))?;
    Ok(text)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderValue};

    use crate::http::asked_wait;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (reqwest::header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn news_asked_wait_reads_seconds_dates_and_rate_limit_resets() {
        assert_eq!(asked_wait(&headers(&[("retry-after", "7".into())])), Some(Duration::from_secs(7)));
        // RFC 9110's example form, in the future and in the past.
        let later =
            (chrono::Utc::now() + chrono::Duration::seconds(30)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let w = asked_wait(&headers(&[("retry-after", later)])).unwrap();
        assert!(w > Duration::from_secs(28) && w <= Duration::from_secs(30), "{w:?}");
        let past = asked_wait(&headers(&[("retry-after", "Fri, 31 Dec 1999 23:59:59 GMT".into())]));
        assert_eq!(past, Some(Duration::ZERO));
        let reset = (chrono::Utc::now().timestamp() + 20).to_string();
        let w = asked_wait(&headers(&[("x-ratelimit-reset", reset)])).unwrap();
        assert!(w > Duration::from_secs(18) && w <= Duration::from_secs(20), "{w:?}");
        assert_eq!(asked_wait(&headers(&[("x-ratelimit-reset", "5".into())])), Some(Duration::from_secs(5)));
        assert_eq!(asked_wait(&headers(&[("retry-after", "soon".into())])), None);
    }
}
