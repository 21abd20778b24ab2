//! Append-only journals (issue 25, fault 1): a torn tail in the upload history (a run killed
//! mid-line) is moved to a side file by the next append and never blocks a submit; a damaged
//! line before the last is an error naming the local file and line, never blamed on Numerai,
//! with advice that keeps a real record.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use signalkit::numerai::{History, Record};

fn record(id: &str) -> Record {
    Record {
        model_name: "mymodel".into(),
        model_id: STAND_IN_MODEL_ID.into(),
        submission_id: id.into(),
        file: "week.csv".into(),
        content_xxh3: format!("{id:0>32}"),
        ext: "csv".into(),
        uploaded_at: "2026-11-20T12:00:00+00:00".into(),
    }
}

fn line(r: &Record) -> String {
    serde_json::to_string(r).unwrap() + "\n"
}

/// The side files (`history.jsonl.torn-*`) in `dir`, with their contents.
fn torn_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("history.jsonl.torn-"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect();
    v.sort();
    v
}

const FRAGMENT: &str = r#"{"model_name":"m","model_id":"mid","subm"#;

#[test]
fn a_torn_last_line_is_moved_aside_by_the_next_append_and_every_record_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("history.jsonl"), line(&record("a")) + FRAGMENT).unwrap();
    let h = History::at(Some(dir.path())).unwrap();
    assert_eq!(h.records().unwrap(), [record("a")], "the torn line is left out by readers");
    h.append(&record("b"), b"bytes").unwrap();
    assert_eq!(h.records().unwrap(), [record("a"), record("b")], "the next read is not blocked");
    assert_eq!(torn_files(dir.path()), [FRAGMENT], "the fragment is kept in a side file");
    assert_eq!(fs::read_to_string(dir.path().join("history.jsonl")).unwrap(), line(&record("a")) + &line(&record("b")));
    h.append(&record("c"), b"bytes").unwrap();
    assert_eq!(h.records().unwrap().len(), 3);
}

#[test]
fn a_whole_last_record_without_its_newline_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let a = line(&record("a"));
    fs::write(dir.path().join("history.jsonl"), a.trim_end()).unwrap();
    let h = History::at(Some(dir.path())).unwrap();
    h.append(&record("b"), b"bytes").unwrap();
    assert_eq!(h.records().unwrap(), [record("a"), record("b")]);
    assert!(torn_files(dir.path()).is_empty(), "nothing moved aside");
}

#[test]
fn a_damaged_middle_line_names_the_file_and_line_and_keeps_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    // What an older signalkit left: a real record appended onto a torn line.
    fs::write(&path, line(&record("a")) + FRAGMENT + &line(&record("b")) + &line(&record("c"))).unwrap();
    let h = History::at(Some(dir.path())).unwrap();
    let e = h.records().unwrap_err().to_string();
    assert!(e.contains(&path.display().to_string()) && e.contains("line 2"), "{e}");
    let keep = format!("delete only the first {} characters", FRAGMENT.len());
    assert!(e.contains(&keep) && !e.contains("fix or delete the line"), "{e}");
    fs::write(&path, line(&record("a")) + "not json\n" + &line(&record("c"))).unwrap();
    let e = h.records().unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("do not delete it"), "{e}");
}

fn submit(file: &Path, history: &Path, url: &str) -> (bool, String) {
    let (id, secret) = STAND_IN_KEY;
    let env = [
        ("NUMERAI_API_URL", url),
        ("NUMERAI_PUBLIC_ID", id),
        ("NUMERAI_SECRET_KEY", secret),
        ("SIGNALKIT_HISTORY", history.to_str().unwrap()),
    ];
    signalkit_run(&["submit", file.to_str().unwrap(), "--model-name", "mymodel"], &env)
}

/// The reproduction of issue 25: a torn history, then two real uploads; the second must not be
/// blocked by the first's record glued onto the fragment.
#[test]
fn submits_after_a_torn_history_line_succeed_and_the_warning_names_the_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    fs::create_dir_all(&history).unwrap();
    fs::write(history.join("history.jsonl"), FRAGMENT).unwrap();
    let mock = numerai_stand_in();
    let first = submission_file(dir.path(), "week1.csv", 300);
    let (ok, first_said) = submit(&first, &history, &mock.url);
    assert!(ok, "{first_said}");
    let second = submission_file(dir.path(), "week2.csv", 300);
    let (ok, said) = submit(&second, &history, &mock.url);
    assert!(ok, "the next submit is not blocked: {said}");
    let journal = history.join("history.jsonl").display().to_string();
    assert!(first_said.contains(&journal) && first_said.contains("local file"), "{first_said}");
    let h = History::at(Some(history.as_path())).unwrap();
    let ids: Vec<String> = h.records().unwrap().into_iter().map(|r| r.submission_id).collect();
    assert_eq!(ids, ["sub-0", "sub-1"]);
    assert_eq!(torn_files(&history), [FRAGMENT]);
}

#[test]
fn a_damaged_history_is_reported_as_the_local_file_not_as_numerai() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    fs::create_dir_all(&history).unwrap();
    fs::write(history.join("history.jsonl"), line(&record("a")) + "not json\n" + &line(&record("c"))).unwrap();
    let mock = numerai_stand_in();
    let (ok, said) = submit(&submission_file(dir.path(), "week.csv", 300), &history, &mock.url);
    assert!(!ok, "{said}");
    assert!(said.contains("history.jsonl") && said.contains("line 2"), "{said}");
    assert!(!said.contains("could not be read from Numerai"), "a local file is not Numerai's fault: {said}");
}
