//! Outputs (issue 25): every output folder goes through the output guard and takes a lock, and
//! no command writes into its own input (faults 3, 9 and the smaller ones of 12: `sample --out`,
//! `store merge` of a non-store folder or after a killed merge, credentials, diagnostics).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use signalkit::data::lock::lock_folder;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/tiny-finbert")
}

/// A copy of the tiny checkpoint in `dir/name` (tests may damage it; never the fixture itself).
fn checkpoint_copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    fs::create_dir_all(&to).unwrap();
    for f in ["config.json", "model.safetensors", "vocab.txt"] {
        fs::copy(fixture().join(f), to.join(f)).unwrap();
    }
    to
}

fn labelled_csv(dir: &Path) -> PathBuf {
    let rows: Vec<String> = (0..8)
        .map(|i| format!("headline number {i},{}", ["positive", "negative", "neutral", "negative"][i % 4]))
        .collect();
    write(dir, "labelled.csv", &format!("text,label\n{}\n", rows.join("\n")))
}

fn finetune(model: &Path, out: &Path, csv: &Path) -> (bool, String) {
    let (m, o, c) = (model.to_str().unwrap(), out.to_str().unwrap(), csv.to_str().unwrap());
    let args = ["finetune", "--model", m, "--out", o, "--labelled", c, "--epochs", "1", "--batch-size", "4"];
    signalkit_run(&args, &[])
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for e in walk(dir) {
        v.push((e.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&e).unwrap()));
    }
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] })
        .collect()
}

#[test]
fn finetune_refuses_an_out_that_is_holds_or_sits_inside_the_base_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let csv = labelled_csv(dir.path());
    let base = checkpoint_copy(dir.path(), "base");
    let before = snapshot(dir.path());
    for out in [base.clone(), base.join("tuned"), dir.path().to_path_buf(), base.join("..").join("base")] {
        let (ok, said) = finetune(&base, &out, &csv);
        assert!(!ok, "--out {} was accepted: {said}", out.display());
        assert!(said.contains("--out") && said.contains("--model"), "{said}");
        assert_eq!(snapshot(dir.path()), before, "nothing written for --out {}", out.display());
    }
    let (ok, said) = finetune(&base, &dir.path().join("tuned"), &csv);
    assert!(ok, "a folder beside the base is fine: {said}");
}

#[test]
fn a_second_finetune_on_a_locked_out_fails_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let csv = labelled_csv(dir.path());
    let out = dir.path().join("tuned");
    let held = lock_folder(&out, "finetune", "--out").unwrap();
    let t0 = std::time::Instant::now();
    let (ok, said) = finetune(&fixture(), &out, &csv);
    assert!(!ok, "{said}");
    let pid = format!("pid {}", std::process::id());
    assert!(said.contains("another signalkit process") && said.contains(&pid) && said.contains("--out"), "{said}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(30), "it failed at once");
    assert!(!out.join("model.safetensors").exists(), "nothing written");
    drop(held);
    let (ok, said) = finetune(&fixture(), &out, &csv);
    assert!(ok, "{said}");
    assert!(!out.join(".signalkit.lock").exists(), "the lock is gone with its run");
}

/// Every command that writes a folder takes its lock before any other work: a held lock stops
/// each at once, naming the holder (their inputs here do not even exist).
#[test]
fn every_folder_writing_command_refuses_a_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (o, missing) = (out.to_str().unwrap().to_string(), dir.path().join("missing.parquet"));
    let m = missing.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["train", "--features", m, "--out", &o],
        vec!["evaluate", "--predictions", m, "--targets", m, "--out", &o],
        vec!["importance", "--model", m, "--features", m, "--out", &o],
        vec!["compare", m, m, "--out", &o],
        vec!["diagnostics", m, "--model-name", "x", "--out", &o],
        vec!["sample", "--out", &o],
        vec!["run", "--out", &o],
    ];
    let _held = lock_folder(&out, "test", "--out").unwrap();
    for args in commands {
        let (ok, said) = signalkit_run(&args, &[]);
        assert!(
            !ok && said.contains("another signalkit process") && said.contains("signalkit test"),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn sample_never_overwrites_a_users_files_but_replaces_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mine = write(dir.path(), "targets.csv", "my,own\n1,2\n");
    let (ok, said) = signalkit_run(&["sample", "--out", dir.path().to_str().unwrap()], &[]);
    assert!(!ok && said.contains("targets.csv") && said.contains("--out"), "{said}");
    assert_eq!(fs::read_to_string(&mine).unwrap(), "my,own\n1,2\n");
    assert!(!dir.path().join("headlines.csv").exists(), "nothing written");

    let out = dir.path().join("s");
    let run = |seed: &str| signalkit_run(&["sample", "--out", out.to_str().unwrap(), "--seed", seed], &[]);
    assert!(run("1").0);
    let (ok, said) = run("2");
    assert!(ok, "its own earlier output is replaced: {said}");
    fs::write(out.join("headlines.csv"), "edited by hand\n").unwrap();
    let (ok, said) = run("3");
    assert!(!ok && said.contains("headlines.csv") && said.contains("edited"), "{said}");
    assert_eq!(fs::read_to_string(out.join("headlines.csv")).unwrap(), "edited by hand\n");
}

fn a_store(root: &Path) {
    use signalkit::encode::store::{Encoded, ModelKey, Store};
    let key =
        ModelKey { id: "m".into(), fingerprint: "ab".repeat(16), max_len: 8, labels: vec![], dtype: "f32".into() };
    let (mut s, _) = Store::open(root, &key).unwrap();
    s.write_shard(&[Encoded { key: "k1".into(), text: "t".into(), probs: vec![], cls: vec![0.5] }]).unwrap();
}

#[test]
fn merging_a_folder_that_is_not_a_store_says_what_a_store_is() {
    let dir = tempfile::tempdir().unwrap();
    // A run folder: its model/ holds a trained model's card as model.json.
    let run = dir.path().join("run");
    fs::create_dir_all(run.join("model")).unwrap();
    fs::write(run.join("model/model.json"), r#"{"features": ["a"], "target": "t"}"#).unwrap();
    fs::write(run.join("model/model.txt"), "tree\n").unwrap();
    let e = signalkit::encode::merge::merge(&dir.path().join("out"), &[run]).unwrap_err().to_string();
    assert!(e.contains("not a signalkit store") && e.contains("shard-*.parquet"), "{e}");
    assert!(!e.contains("missing field"), "{e}");
    // One model folder of a store named instead of the store.
    let store = dir.path().join("store");
    a_store(&store);
    let folder = signalkit::encode::store::Store::models(&store).unwrap()[0].0.clone();
    let e = signalkit::encode::merge::merge(&dir.path().join("out"), &[folder]).unwrap_err().to_string();
    assert!(e.contains("one model folder of a store"), "{e}");
}

#[test]
fn a_merge_removes_what_a_killed_merge_left_beside_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    a_store(&src);
    // What a merge killed before its rename leaves: a temporary store beside the output.
    let stale = dir.path().join(".out.merge-tmp-AbC123");
    fs::create_dir_all(stale.join("some-model")).unwrap();
    fs::write(stale.join("some-model/shard-1.parquet"), b"partial").unwrap();
    let other = dir.path().join(".other.merge-tmp-AbC123");
    fs::create_dir_all(&other).unwrap();
    let (out, src) = (dir.path().join("out"), src.to_str().unwrap().to_string());
    let (ok, said) = signalkit_run(&["store", "merge", "--out", out.to_str().unwrap(), &src], &[]);
    assert!(ok, "{said}");
    assert!(!stale.exists(), "the killed merge's folder is removed: {said}");
    assert!(other.exists(), "another output's merge is left alone");
    let names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.starts_with(".out.")), "nothing left beside the output: {names:?}");
}

/// `submit --dry-run --credentials FILE` of a valid file: whether it succeeded, and what it said.
fn dry_run_with(dir: &Path, credentials: &Path) -> (bool, String) {
    let file = submission_file(dir, "week.csv", 300);
    let (f, c) = (file.to_str().unwrap(), credentials.to_str().unwrap());
    let history = dir.join("history");
    let env = [("SIGNALKIT_HISTORY", history.to_str().unwrap())];
    signalkit_run(&["submit", f, "--model-name", "mymodel", "--dry-run", "--credentials", c], &env)
}

#[test]
fn a_credentials_directory_is_named_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    fs::create_dir_all(&creds).unwrap();
    fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, said) = dry_run_with(dir.path(), &creds);
    assert!(!ok && said.contains("is a directory") && said.contains("credentials file"), "{said}");
    assert!(!said.contains("readable by others"), "{said}");
}

fn private(dir: &Path, text: &str) -> PathBuf {
    let p = write(dir, "credentials", text);
    fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    p
}

#[test]
fn a_key_given_twice_in_a_credentials_file_is_refused_naming_the_lines() {
    let dir = tempfile::tempdir().unwrap();
    for (text, lines) in [
        ("public_id = \"P\"\nsecret_key = \"S1\"\nsecret_key = \"S2\"\n", "line 3"),
        ("[default]\npublic_id = \"P\"\nsecret_key = \"S1\"\nNUMERAI_SECRET_KEY = \"S2\"\n", "line 4"),
    ] {
        let p = private(dir.path(), text);
        let (ok, said) = dry_run_with(dir.path(), &p);
        assert!(!ok && said.contains("credentials") && said.contains(lines) && said.contains("given again"), "{said}");
        assert!(!said.contains("S1") && !said.contains("S2"), "no secret echoed: {said}");
    }
    let p = private(dir.path(), "FINNHUB_API_KEY = \"a\"\nfinnhub_api_key = \"b\"\n");
    let e = signalkit::news::Keys::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("first on line 1"), "{e}");
}

#[test]
fn diagnostics_checks_its_file_before_any_network_call() {
    let dir = tempfile::tempdir().unwrap();
    let mock = numerai_stand_in();
    let (id, secret) = STAND_IN_KEY;
    let creds = private(dir.path(), &format!("public_id = \"{id}\"\nsecret_key = \"{secret}\"\n"));
    let bad = write(dir.path(), "preds.csv", "ticker,date\nAAA US,2013-01-04\n");
    let (b, c, o) = (bad.to_str().unwrap(), creds.to_str().unwrap(), dir.path().join("diag"));
    let args = ["diagnostics", b, "--model-name", "mymodel", "--out", o.to_str().unwrap(), "--credentials", c];
    let (ok, said) = signalkit_run(&[&args[..], &["--api-url", mock.url.as_str()]].concat(), &[]);
    assert!(!ok && said.contains("preds.csv"), "{said}");
    assert!(mock.requests().is_empty(), "the API was called before the file was checked: {said}");
}
