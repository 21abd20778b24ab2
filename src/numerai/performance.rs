//! `signalkit submissions`: a model's recent submissions (`submissions(modelId)`) and its scores
//! per round (`v2RoundModelPerformances`, numerapi's `round_model_performances_v2`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiArgs, SIGNALS_TOURNAMENT, ServerSubmission};
use crate::error::{Error, Result};

const ROUNDS_QUERY: &str = "query($modelId:String! $tournament:Int!){ v2RoundModelPerformances(modelId:$modelId tournament:$tournament){ roundNumber roundResolved roundTarget submissionScores{ date day displayName value percentile } } }";

/// One round's scores: each metric's latest value (the highest `day` Numerai reported).
#[derive(Debug, Clone, Serialize)]
pub struct RoundScores {
    /// Round number.
    pub round: i64,
    /// Whether the round has resolved (its scores are final).
    pub resolved: bool,
    /// The target the round is scored on.
    pub target: Option<String>,
    /// Metric name → (day, value).
    pub scores: BTreeMap<String, (i64, f64)>,
}

/// A model's recent submissions and round scores.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionsReport {
    /// The model's name and id.
    pub model: (String, String),
    /// Submissions, newest first: (id, stored file name, inserted at).
    pub submissions: Vec<(String, String, Option<String>)>,
    /// Rounds, newest first.
    pub rounds: Vec<RoundScores>,
}

/// The last `limit` submissions and rounds of Signals model `model_name`.
pub fn submissions(api: &ApiArgs, model_name: &str, limit: usize) -> Result<SubmissionsReport> {
    let client = api.client()?;
    let model_id = client.model_id(model_name)?;
    let mut subs: Vec<ServerSubmission> = client.submissions(&model_id)?;
    subs.sort_by_key(|s| std::cmp::Reverse(s.inserted()));
    let data = client.graphql(ROUNDS_QUERY, json!({ "modelId": model_id, "tournament": SIGNALS_TOURNAMENT }))?;
    let list = match data.get("v2RoundModelPerformances") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => return Err(Error::Api(format!("v2RoundModelPerformances: unexpected answer {other}"))),
    };
    let mut rounds: Vec<RoundScores> = list.iter().filter_map(round_scores).collect();
    rounds.sort_by_key(|r| std::cmp::Reverse(r.round));
    rounds.truncate(limit);
    Ok(SubmissionsReport {
        model: (model_name.to_string(), model_id),
        submissions: subs.into_iter().take(limit).map(|s| (s.id, s.filename, s.inserted_at)).collect(),
        rounds,
    })
}

/// A number given as a JSON number or a numeric string.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// One `v2RoundModelPerformances` entry; None without a round number.
fn round_scores(v: &Value) -> Option<RoundScores> {
    let mut scores: BTreeMap<String, (i64, f64)> = BTreeMap::new();
    for s in v.get("submissionScores").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(value)) = (s.get("displayName").and_then(Value::as_str), s.get("value").and_then(number))
        else {
            continue;
        };
        let day = s.get("day").and_then(Value::as_i64).unwrap_or(0);
        let entry = scores.entry(name.to_string()).or_insert((day, value));
        if day >= entry.0 {
            *entry = (day, value);
        }
    }
    Some(RoundScores {
        round: v.get("roundNumber").and_then(Value::as_i64)?,
        resolved: v.get("roundResolved").and_then(Value::as_bool).unwrap_or(false),
        target: v.get("roundTarget").and_then(Value::as_str).map(str::to_string),
        scores,
    })
}

impl fmt::Display for SubmissionsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {} ({})", self.model.0, self.model.1)?;
        writeln!(f, "submissions, newest first ({}):", self.submissions.len())?;
        for (id, file, at) in &self.submissions {
            writeln!(f, "  {}  {file}  {id}", at.as_deref().unwrap_or("-"))?;
        }
        writeln!(f, "rounds, newest first ({}):", self.rounds.len())?;
        for r in &self.rounds {
            let scores: Vec<String> = r.scores.iter().map(|(k, (d, v))| format!("{k} {v:.4} (day {d})")).collect();
            let state = if r.resolved { "resolved" } else { "open" };
            writeln!(
                f,
                "  round {} {state}: {}",
                r.round,
                if scores.is_empty() { "no scores yet".into() } else { scores.join(", ") }
            )?;
        }
        Ok(())
    }
}
