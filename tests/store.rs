//! The embedding store shared by several processes: concurrent writers, readers during a write,
//! debris of dead writers, a killed run, and choosing among models that share an id.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use signalkit::encode::store::{Encoded, ModelKey, Store, StoreQuery, WRITERS, is_shard, key, normalise};

fn fixture() -> PathBuf {
    fixtures("tiny-finbert")
}

/// A headlines CSV with texts `range` (each distinct once normalised).
fn headlines(dir: &Path, name: &str, range: std::ops::Range<usize>) -> (PathBuf, Vec<String>) {
    let mut csv = String::from("ticker,published_at,headline\n");
    let mut texts = Vec::new();
    for i in range {
        let t = format!("Company {} reports results number {i} for the quarter", i % 211);
        csv.push_str(&format!("T{},2024-03-01,{t}\n", i % 13));
        texts.push(normalise(&t));
    }
    (write(dir, name, &csv), texts)
}

/// Starts `signalkit encode` with the tiny fixture model.
fn spawn_encode(store: &Path, heads: &Path, shard_size: usize) -> Child {
    signalkit(["encode", "--model", fixture().to_str().unwrap(), "--batch-size", "16", "--shard-size"])
        .arg(shard_size.to_string())
        .arg("--headlines")
        .arg(heads)
        .arg("--store")
        .arg(store)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> String {
    Run::from(child.wait_with_output().unwrap()).ok().stdout
}

/// The texts the store holds (one row per key is checked too).
fn stored_texts(root: &Path) -> HashSet<String> {
    let (store, report) = Store::find(root, None).unwrap();
    assert!(report.damaged.is_empty(), "{report:?}");
    let table = store.read_all().unwrap();
    let keys = strs(&table, "key");
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len(), "read_all repeats a key");
    strs(&table, "text").into_iter().flatten().collect()
}

/// Rows in every complete shard file, duplicates included.
fn raw_rows(dir: &Path) -> usize {
    shard_files(dir).iter().map(|p| read_parquet(p).height()).sum()
}

fn shard_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| is_shard(p)).collect();
    v.sort();
    v
}

fn names(dir: &Path, pattern: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(pattern))
        .collect();
    v.sort();
    v
}

/// The only model folder under a store root.
fn model_dir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = fs::read_dir(root).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// A lock file as a live writer holds it (flock conflicts between open files, even in one process).
fn live_writer(dir: &Path, token: &str) -> File {
    fs::create_dir_all(dir.join(WRITERS)).unwrap();
    let f = File::create(dir.join(WRITERS).join(format!("{token}.lock"))).unwrap();
    #[allow(clippy::incompatible_msrv)] // stable since Rust 1.89, above rust-version
    f.lock().unwrap();
    f
}

/// A dead writer's lock file: present, nobody holds it.
fn dead_writer(dir: &Path, token: &str) {
    fs::create_dir_all(dir.join(WRITERS)).unwrap();
    fs::write(dir.join(WRITERS).join(format!("{token}.lock")), b"pid 1").unwrap();
}

fn fake_model(id: &str, fingerprint: &str, dtype: &str) -> ModelKey {
    ModelKey {
        id: id.into(),
        fingerprint: fingerprint.into(),
        max_len: 64,
        labels: vec!["positive".into(), "negative".into(), "neutral".into()],
        dtype: dtype.into(),
    }
}

fn fake_rows(model: &ModelKey, texts: &[String]) -> Vec<Encoded> {
    texts
        .iter()
        .map(|t| Encoded { key: key(model, t), text: t.clone(), probs: vec![0.5, 0.25, 0.25], cls: vec![1.0, 2.0] })
        .collect()
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(snapshot(&e.path()));
        }
        out.insert(e.path(), (m.len(), m.modified().unwrap()));
    }
    out
}

#[test]
fn two_encodes_at_once_into_one_store_keep_every_text() {
    let dir = tempfile::tempdir().unwrap();
    let (a, texts_a) = headlines(dir.path(), "a.csv", 0..4000);
    let (b, texts_b) = headlines(dir.path(), "b.csv", 2000..6000);
    let store = dir.path().join("store");
    let (first, second) = (spawn_encode(&store, &a, 25), spawn_encode(&store, &b, 25));
    let (out_a, out_b) = (finish(first), finish(second));
    let all: HashSet<String> = texts_a.into_iter().chain(texts_b).collect();
    let stored = stored_texts(&store);
    let missing = all.difference(&stored).count();
    assert_eq!(missing, 0, "{missing} texts lost\n{out_a}\n{out_b}");
    assert_eq!(stored.len(), 6000);
    let folder = model_dir(&store);
    assert!(raw_rows(&folder) >= 6000);
    assert_eq!(names(&folder, ".tmp-"), Vec::<String>::new(), "temporary files left");
    assert_eq!(names(&folder.join(WRITERS), ".lock"), Vec::<String>::new(), "lock files left");
}

#[test]
fn many_writers_in_one_process_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let model = fake_model("org/model", "0123456789abcdef0123", "f32");
    let texts: Vec<String> = (0..8 * 30).map(|i| format!("headline {i}")).collect();
    std::thread::scope(|s| {
        for chunk in texts.chunks(30) {
            let (root, model) = (dir.path(), &model);
            s.spawn(move || {
                // Opening creates the manifest at the same moment in every thread.
                let (mut store, _) = Store::open(root, model).unwrap();
                for part in chunk.chunks(10) {
                    store.write_shard(&fake_rows(model, part)).unwrap();
                }
            });
        }
    });
    let folder = model_dir(dir.path());
    assert_eq!(shard_files(&folder).len(), 24);
    let stored = stored_texts(dir.path());
    assert_eq!(stored, texts.into_iter().collect::<HashSet<_>>());
    let manifest: ModelKey = serde_json::from_str(&fs::read_to_string(folder.join("model.json")).unwrap()).unwrap();
    assert_eq!(manifest, model);
}

#[test]
fn a_reader_changes_nothing_on_disk_and_skips_unreadable_shards() {
    let dir = tempfile::tempdir().unwrap();
    let model = fake_model("org/model", "0123456789abcdef0123", "f32");
    let texts: Vec<String> = (0..40).map(|i| format!("headline {i}")).collect();
    let folder = {
        let (mut store, _) = Store::open(dir.path(), &model).unwrap();
        store.write_shard(&fake_rows(&model, &texts[..20])).unwrap();
        store.dir().to_path_buf()
    };
    // A shard named the old way, a damaged shard, and a dead writer's debris.
    let old = {
        let (mut tmp_store, _) = Store::open(&dir.path().join("elsewhere"), &model).unwrap();
        tmp_store.write_shard(&fake_rows(&model, &texts[20..])).unwrap()
    };
    fs::rename(&old, folder.join("shard-000000.parquet")).unwrap();
    fs::write(folder.join("shard-000001.parquet"), b"PAR1 not really parquet").unwrap();
    dead_writer(&folder, "111-dead");
    fs::write(folder.join(".shard-x.parquet.tmp-111-dead"), b"half a shard").unwrap();
    fs::write(folder.join(".shard-y.parquet.tmp-333-nolock"), b"half a shard").unwrap();

    let before = snapshot(&folder);
    let (store, report) = Store::find(dir.path(), Some("org/model")).unwrap();
    assert!(!store.is_writer());
    assert_eq!((report.shards, report.entries), (2, 40));
    assert_eq!(report.damaged, [folder.join("shard-000001.parquet")]);
    assert!(report.removed.is_empty());
    assert!(texts.iter().all(|t| store.contains(&key(&model, t))));
    assert_eq!(store.keys().count(), 40);
    let (table, skipped) = store.read_all_report().unwrap();
    assert_eq!(table.height(), 40);
    assert_eq!(skipped, [folder.join("shard-000001.parquet")]);
    assert!(store.read_all().is_ok());
    let mut store = store;
    assert!(store.write_shard(&fake_rows(&model, &texts[..1])).is_err(), "a reader must not write");
    assert_eq!(snapshot(&folder), before, "opening for reading changed the store");

    // A writer sets the damaged shard aside and removes the dead writer's debris.
    let (_writer, report) = Store::open(dir.path(), &model).unwrap();
    assert_eq!(report.damaged, [folder.join("shard-000001.parquet.damaged")]);
    assert_eq!(report.removed.len(), 2, "{report:?}");
    assert_eq!(names(&folder, ".tmp-"), Vec::<String>::new());
    assert_eq!(names(&folder.join(WRITERS), "111-dead"), Vec::<String>::new());
}

#[test]
fn a_writer_removes_only_dead_writers_debris() {
    let dir = tempfile::tempdir().unwrap();
    let model = fake_model("org/model", "0123456789abcdef0123", "f32");
    let folder = Store::open(dir.path(), &model).unwrap().0.dir().to_path_buf();
    let _live = live_writer(&folder, "222-live");
    dead_writer(&folder, "111-dead");
    let files = [
        ".shard-a.parquet.tmp-222-live",   // live writer: kept
        ".model.json.tmp-222-live",        // live writer: kept
        ".shard-b.parquet.tmp-111-dead",   // dead writer (lock free): removed
        ".shard-c.parquet.tmp-333-nolock", // no lock file at all: removed
        ".shard-000004.parquet.tmp-4444",  // older signalkit, recent: kept
    ];
    for f in files {
        fs::write(folder.join(f), b"partial").unwrap();
    }
    let (writer, report) = Store::open(dir.path(), &model).unwrap();
    assert!(writer.is_writer());
    let mut removed: Vec<String> =
        report.removed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    removed.sort();
    assert_eq!(removed, [".shard-b.parquet.tmp-111-dead", ".shard-c.parquet.tmp-333-nolock"]);
    assert_eq!(
        names(&folder, ".tmp-"),
        [".model.json.tmp-222-live", ".shard-000004.parquet.tmp-4444", ".shard-a.parquet.tmp-222-live"]
    );
    let locks = names(&folder.join(WRITERS), ".lock");
    assert!(locks.contains(&"222-live.lock".to_string()), "{locks:?}");
    assert!(!locks.contains(&"111-dead.lock".to_string()), "{locks:?}");
    // Ours is there while the store is open, and gone after.
    assert_eq!(locks.len(), 2, "{locks:?}");
    drop(writer);
    assert_eq!(names(&folder.join(WRITERS), ".lock"), ["222-live.lock"]);
}

#[test]
fn readers_during_an_encode_never_break_it_or_delete_a_live_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let (small, _) = headlines(dir.path(), "small.csv", 0..10);
    let store = dir.path().join("store");
    finish(spawn_encode(&store, &small, 5));
    let folder = model_dir(&store);
    // Another writer's shard in flight: its lock is held for the whole test.
    let _live = live_writer(&folder, "424242-feedface");
    let in_flight = folder.join(".shard-9.parquet.tmp-424242-feedface");
    fs::write(&in_flight, b"partial").unwrap();

    let (heads, texts) = headlines(dir.path(), "h.csv", 0..4000);
    let mut child = spawn_encode(&store, &heads, 20);
    let mut reads = 0;
    let mut grew = false;
    let mut last = 0;
    while child.try_wait().unwrap().is_none() {
        let (st, report) = Store::find(&store, None).unwrap();
        assert!(report.damaged.is_empty(), "{report:?}");
        let rows = st.read_all().unwrap().height();
        grew |= rows > last && last > 0;
        last = rows;
        reads += 1;
        assert!(
            in_flight.exists(),
            "a live writer's temporary file was deleted during the encode (by a reader or the encode)"
        );
    }
    finish(child);
    assert!(reads >= 2 && grew, "the reads did not overlap the encode ({reads} reads)");
    assert!(in_flight.exists(), "the encode deleted a live writer's temporary file");
    let stored = stored_texts(&store);
    assert!(texts.iter().all(|t| stored.contains(t)), "texts missing after the encode");
}

#[test]
fn a_killed_encode_resumes_without_losing_or_repeating_texts() {
    let dir = tempfile::tempdir().unwrap();
    let (heads, texts) = headlines(dir.path(), "h.csv", 0..20_000);
    let store = dir.path().join("store");
    let mut child = spawn_encode(&store, &heads, 100);
    // Kill only once a shard is complete (not on a timer).
    let complete = || -> usize {
        fs::read_dir(&store).into_iter().flatten().flatten().map(|d| shard_files(&d.path()).len()).sum()
    };
    let t0 = Instant::now();
    while complete() < 1 {
        assert!(t0.elapsed() < Duration::from_secs(300), "no shard written");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed");
    let folder = model_dir(&store);
    let done = shard_files(&folder).len();
    assert!(done < 200, "the run should have been cut short: {done} shards");
    // The killed writer's lock file stays behind, unlocked; add its shard in flight for certain,
    // and a live writer's, which the resumed run must leave alone.
    let dead: Vec<String> = names(&folder.join(WRITERS), ".lock");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let dead_token = dead[0].strip_suffix(".lock").unwrap();
    fs::write(folder.join(format!(".shard-x.parquet.tmp-{dead_token}")), b"partial").unwrap();
    let _live = live_writer(&folder, "424242-feedface");
    let live_temp = folder.join(".shard-y.parquet.tmp-424242-feedface");
    fs::write(&live_temp, b"partial").unwrap();

    let out = finish(spawn_encode(&store, &heads, 100));
    assert!(out.contains(&format!("{} already stored", done * 100)), "finished shards were not kept: {out}");
    let stored = stored_texts(&store);
    assert_eq!(stored, texts.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(raw_rows(&folder), 20_000, "a text was encoded twice");
    assert_eq!(names(&folder, ".tmp-"), [live_temp.file_name().unwrap().to_string_lossy()]);
    assert_eq!(names(&folder.join(WRITERS), ".lock"), ["424242-feedface.lock"]);
}

#[test]
fn models_sharing_an_id_are_chosen_by_fingerprint_dtype_or_max_len() {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        fake_model("org/model", "aaaa1111bbbb2222cccc", "f32"),
        fake_model("org/model", "dddd3333eeee4444ffff", "f32"),
        fake_model("org/model", "dddd3333eeee4444ffff", "bf16"),
        fake_model("other/model", "9999888877776666", "f32"),
    ];
    for (i, m) in models.iter().enumerate() {
        let (mut st, _) = Store::open(dir.path(), m).unwrap();
        st.write_shard(&fake_rows(m, &[format!("only in model {i}")])).unwrap();
    }
    let text_of = |q: &StoreQuery| -> String {
        let (st, _) = Store::find_by(dir.path(), q).unwrap();
        assert!(!st.is_writer());
        strs(&st.read_all().unwrap(), "text")[0].clone().unwrap()
    };

    let err = Store::find(dir.path(), Some("org/model")).unwrap_err().to_string();
    for prefix in ["aaaa1111bbbb", "dddd3333eeee"] {
        assert!(err.contains(prefix), "{err}");
    }
    assert!(err.contains("bf16") && err.contains("--fingerprint") && err.contains("--dtype"), "{err}");
    assert!(!err.contains("other/model"), "{err}");
    let err = Store::find(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("other/model") && err.contains("--model"), "{err}");

    let q = |fp: &str, dtype: Option<&str>| StoreQuery {
        id: Some("org/model".into()),
        fingerprint: Some(fp.into()),
        dtype: dtype.map(str::to_string),
        max_len: None,
    };
    assert_eq!(text_of(&q("aaaa", None)), "only in model 0");
    assert_eq!(text_of(&q("AAAA1111", None)), "only in model 0");
    let err = Store::find_by(dir.path(), &q("dddd", None)).unwrap_err().to_string();
    assert!(err.contains("--dtype") && !err.contains("--fingerprint"), "{err}");
    assert_eq!(text_of(&q("dddd", Some("f32"))), "only in model 1");
    assert_eq!(text_of(&q("dddd", Some("bf16"))), "only in model 2");
    assert_eq!(text_of(&StoreQuery { id: Some("other/model".into()), ..StoreQuery::default() }), "only in model 3");
    let (st, _) = Store::find(dir.path(), Some("other/model")).unwrap();
    assert_eq!(st.model(), &models[3]);

    let err = Store::find_by(dir.path(), &q("0000", None)).unwrap_err().to_string();
    assert!(err.contains("no outputs") && err.contains("aaaa1111bbbb") && err.contains("other/model"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = Store::find(empty.path(), None).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
}
