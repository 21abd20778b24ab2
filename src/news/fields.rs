//! What the vendor files share: the UTC instants a request asks for, and the fields of a JSON
//! answer (ids, stamps, symbol lists, texts, the array of articles).

use chrono::NaiveDate;
use reqwest::Url;
use serde_json::Value;

use crate::error::{Error, Result};

/// UTC microseconds of midnight starting `d`.
pub fn day_start_us(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros()
}

/// RFC 3339 with a `Z`, to the second.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// The first and the last second of the UTC days `[from, to]`, in RFC 3339.
pub fn day_bounds(from: NaiveDate, to: NaiveDate) -> (String, String) {
    (rfc3339(day_start_us(from)), rfc3339(day_start_us(to + chrono::Duration::days(1)) - 1_000_000))
}

/// The vendor's id: a string as it is, a number (or other value) as JSON writes it.
pub fn id(a: &Value) -> Option<String> {
    Some(match a.get("id")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// An RFC 3339 field as UTC microseconds.
pub fn stamp(a: &Value, key: &str) -> Option<i64> {
    a.get(key)
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp_micros())
}

/// The strings of an array field (none when it is missing).
pub fn strings(a: &Value, key: &str) -> Vec<String> {
    a.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// A text field that is not blank.
pub fn text(a: &Value, key: &str) -> Option<String> {
    a.get(key).and_then(Value::as_str).filter(|h| !h.trim().is_empty()).map(str::to_string)
}

/// A link field, empty when missing.
pub fn link(a: &Value, key: &str) -> String {
    a.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The array of articles under `key` in the answer to `url`.
pub fn listed<'a>(url: &Url, answer: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    answer
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| Error::News(format!("GET {url}: no `{key}` array in the answer")))
}

/// The answer to `url` as an array of articles.
pub fn articles<'a>(url: &Url, answer: &'a Value) -> Result<&'a Vec<Value>> {
    answer.as_array().ok_or_else(|| Error::News(format!("GET {url}: expected an array of articles")))
}
