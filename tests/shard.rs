//! Sharding and `signalkit store merge`: N concurrent shard processes of the built binary plus a
//! merge give the same store as one run (encode and ask, N = 1, 2, 3); merging is idempotent;
//! bad shard specs, mixed stores and conflicting values are refused with clear errors.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Cli, Run, fixtures, signalkit};
use signalkit::encode::merge::merge;
use signalkit::encode::shard::Shard;
use signalkit::encode::store::{Encoded, ModelKey, Store};

const SCHEDULER_VARS: [&str; 5] = [
    "JOB_COMPLETION_INDEX",
    "SIGNALKIT_SHARDS",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `signalkit ARGS` with no scheduler variables inherited from the test's environment.
fn cli<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Cli {
    SCHEDULER_VARS.iter().fold(signalkit(args), |c, v| c.env_remove(v))
}

/// The first `n` headlines of the shipped sample.
fn headlines(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(root().join("data/sample/headlines.csv")).unwrap();
    let p = dir.join("h.csv");
    std::fs::write(&p, text.lines().take(n + 1).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    p
}

/// Every row of every model folder of a store, by (folder, key).
fn rows(store: &Path) -> BTreeMap<(String, String), Encoded> {
    let mut out = BTreeMap::new();
    for (dir, model) in Store::models(store).unwrap() {
        let (s, _) = Store::find_by(store, &signalkit::encode::store::StoreQuery::exactly(&model)).unwrap();
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        for r in s.read_rows().unwrap() {
            out.insert((folder.clone(), r.key.clone()), r);
        }
    }
    out
}

/// Same keys and texts; probabilities and embeddings within 1e-5 (batches differ across shards).
fn assert_same(a: &BTreeMap<(String, String), Encoded>, b: &BTreeMap<(String, String), Encoded>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, x) in a {
        let y = &b[k];
        assert_eq!(x.text, y.text);
        let close = |p: &[f32], q: &[f32]| p.len() == q.len() && p.iter().zip(q).all(|(u, v)| (u - v).abs() < 1e-5);
        assert!(close(&x.probs, &y.probs) && close(&x.cls, &y.cls), "{k:?}: {:?} vs {:?}", x.probs, y.probs);
    }
}

/// How shard `i` of `n` is told its shard: the flag, a Kubernetes Indexed Job's environment, or
/// a Slurm array's (ids from 4).
#[derive(Clone, Copy)]
enum Via {
    Flag,
    Kubernetes,
    Slurm,
}

fn shard_cmd(base: &[String], i: usize, n: usize, via: Via) -> Cli {
    let c = cli(base);
    match via {
        Via::Flag => c.arg("--shard").arg(format!("{i}/{n}")),
        Via::Kubernetes => c.env("JOB_COMPLETION_INDEX", i.to_string()).env("SIGNALKIT_SHARDS", n.to_string()),
        Via::Slurm => c
            .env("SLURM_ARRAY_TASK_ID", (i + 4).to_string())
            .env("SLURM_ARRAY_TASK_MIN", "4")
            .env("SLURM_ARRAY_TASK_COUNT", n.to_string()),
    }
}

/// One run into `single`, then N concurrent shard processes into their own stores and a merge:
/// the merged store equals the single one; the shard records say which shards were merged.
fn sharded_equals_single(dir: &Path, base: impl Fn(&Path) -> Vec<String>) {
    let single = dir.join("single");
    cli(base(&single)).run().ok();
    let want = rows(&single);
    assert!(want.len() >= 10, "{}", want.len());
    for (n, via) in [(1, Via::Flag), (2, Via::Slurm), (3, Via::Kubernetes)] {
        let stores: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("n{n}-shard{i}"))).collect();
        let children: Vec<_> =
            (0..n).map(|i| shard_cmd(&base(&stores[i]), i, n, via).command().output_in_background()).collect();
        for (i, c) in children.into_iter().enumerate() {
            let out = Run::from(c.wait_with_output().unwrap()).ok().stdout;
            assert!(out.contains(&format!("shard {i}/{n}")), "{out}");
        }
        let sizes: Vec<usize> = stores.iter().map(|s| rows(s).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), want.len(), "shards are disjoint and cover every text: {sizes:?}");
        let out = dir.join(format!("merged-{n}"));
        let s = merge(&out, &stores).unwrap();
        assert!(s.created && s.folders.iter().all(|f| f.missing_shards().is_empty() && f.shards.len() == n), "{s}");
        assert_same(&rows(&out), &want);
        // Idempotent: merging again adds nothing and changes nothing.
        let again = merge(&out, &stores).unwrap();
        assert!(!again.created && again.folders.iter().all(|f| f.added == 0), "{again}");
        assert_same(&rows(&out), &want);
    }
}

trait Background {
    fn output_in_background(&mut self) -> std::process::Child;
}

impl Background for Command {
    fn output_in_background(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn sharded_encode_plus_merge_equals_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let h = headlines(dir.path(), 60);
    let model = fixtures("tiny-finbert");
    sharded_equals_single(dir.path(), |store| {
        ["encode", "--model", &s(&model), "--headlines", &s(&h), "--store", &s(store), "--batch-size", "8"]
            .map(str::to_string)
            .to_vec()
    });
}

#[test]
fn sharded_ask_plus_merge_equals_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let h = headlines(dir.path(), 14);
    let fixture = fixtures("tiny-qwen2");
    let q = fixture.join("questions.toml");
    sharded_equals_single(dir.path(), |store| {
        ["ask", "--model", &s(&fixture), "--questions", &s(&q), "--headlines", &s(&h), "--store", &s(store)]
            .map(str::to_string)
            .to_vec()
    });
}

#[test]
fn shard_specs_are_checked_and_read_from_the_scheduler() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    let none = env(&[]);
    assert_eq!(Shard::resolve(Some("1/3"), None, none).unwrap(), Some(Shard { index: 1, count: 3 }));
    assert_eq!(Shard::resolve(None, None, none).unwrap(), None);
    for (spec, want) in [
        ("3/3", "0 to 2"),
        ("0/0", "from 1 to 65536"),
        ("1/4294967297", "from 1 to 65536"),
        ("a/2", "I/N"),
        ("2", "I/N"),
        ("-1/2", "I/N"),
    ] {
        let e = Shard::resolve(Some(spec), None, none).unwrap_err().to_string();
        assert!(e.contains("--shard") && e.contains(want), "{spec}: {e}");
    }
    let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("SIGNALKIT_SHARDS", "3")]);
    assert_eq!(Shard::resolve(None, None, k8s).unwrap(), Some(Shard { index: 2, count: 3 }));
    assert_eq!(Shard::resolve(None, Some(5), k8s).unwrap(), Some(Shard { index: 2, count: 5 }));
    assert_eq!(Shard::resolve(Some("0/1"), None, k8s).unwrap(), Some(Shard { index: 0, count: 1 }), "the flag wins");
    let e = Shard::resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap_err().to_string();
    assert!(e.contains("SIGNALKIT_SHARDS") && e.contains("--shard-count"), "{e}");
    let e = Shard::resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "3"), ("SIGNALKIT_SHARDS", "3")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("JOB_COMPLETION_INDEX=3") && e.contains("0 to 2"), "{e}");
    let slurm = env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "4"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
    assert_eq!(Shard::resolve(None, None, slurm).unwrap(), Some(Shard { index: 1, count: 3 }));
    let stepped = env(&[("SLURM_ARRAY_TASK_ID", "8"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
    let e = Shard::resolve(None, None, stepped).unwrap_err().to_string();
    assert!(e.contains("SLURM_ARRAY_TASK_ID=8") && e.contains("contiguous"), "{e}");
    let e = Shard::resolve(None, None, env(&[("SLURM_ARRAY_TASK_ID", "x")])).unwrap_err().to_string();
    assert!(e.contains("SLURM_ARRAY_TASK_ID=\"x\"") && e.contains("whole number"), "{e}");
    let e = Shard::resolve(None, Some(3), none).unwrap_err().to_string();
    assert!(e.contains("--shard-count") && e.contains("--shard I/N"), "{e}");
    let e = Shard::resolve(Some("0/2"), Some(3), none).unwrap_err().to_string();
    assert!(e.contains("drop --shard-count"), "{e}");
    // Every text goes to exactly one shard, and the split is not degenerate.
    let texts: Vec<String> = (0..300).map(|i| format!("headline {i}")).collect();
    let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
    assert!(texts.iter().all(|t| shards.iter().filter(|s| s.keeps(t)).count() == 1));
    assert!(shards.iter().all(|s| texts.iter().filter(|t| s.keeps(t)).count() > 60));
}

#[test]
fn the_cli_refuses_bad_shards_naming_the_option_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let h = headlines(dir.path(), 3);
    let model = fixtures("tiny-finbert");
    let base = ["encode", "--model", &s(&model), "--headlines", &s(&h), "--store", &s(&dir.path().join("st"))];
    let out = cli(base).args(["--shard", "2/2"]).run();
    let err = &out.stderr;
    assert!(!out.status.success() && err.contains("--shard 2/2") && err.contains("0 to 1"), "{err}");
    let out = cli(base).env("JOB_COMPLETION_INDEX", "1").run();
    let err = &out.stderr;
    assert!(!out.status.success() && err.contains("SIGNALKIT_SHARDS"), "{err}");
    assert!(!dir.path().join("st").exists(), "nothing written on a refused shard");
}

fn key(id: &str) -> ModelKey {
    ModelKey { id: id.into(), fingerprint: "ab".repeat(16), max_len: 8, labels: vec![], dtype: "f32".into() }
}

fn row(key: &str, cls: f32) -> Encoded {
    Encoded { key: key.into(), text: format!("text {key}"), probs: vec![], cls: vec![cls, 1.0] }
}

fn store_with(root: &Path, model: &ModelKey, rows: &[Encoded]) {
    let (mut s, _) = Store::open(root, model).unwrap();
    s.write_shard(rows).unwrap();
}

#[test]
fn merge_refuses_mixed_stores_and_conflicting_values_and_handles_out_among_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"), dir.path().join("d"));
    store_with(&a, &key("m"), &[row("k1", 0.5), row("k2", 0.25)]);
    store_with(&b, &key("m"), &[row("k2", 0.25 + 1e-7), row("k3", 0.75)]);
    store_with(&c, &key("other"), &[row("k1", 0.5)]);
    store_with(&d, &key("m"), &[row("k2", 0.3)]);
    let out = dir.path().join("out");
    let e = merge(&out, &[a.clone(), c.clone()]).unwrap_err().to_string();
    assert!(e.contains(&s(&a)) && e.contains(&s(&c)) && e.contains("different models"), "{e}");
    let e = merge(&out, &[a.clone(), d.clone()]).unwrap_err().to_string();
    assert!(e.contains("key k2") && e.contains(&s(&a)) && e.contains(&s(&d)) && e.contains("nondeterminism"), "{e}");
    assert!(!out.exists(), "a refused merge writes nothing");
    let e = merge(&out, &[dir.path().join("missing")]).unwrap_err().to_string();
    assert!(e.contains("missing") && e.contains("not a folder"), "{e}");
    let m = merge(&out, &[a.clone(), b.clone()]).unwrap();
    assert_eq!((m.created, m.folders[0].added), (true, 3), "{m}");
    let merged = rows(&out);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged.values().find(|r| r.key == "k2").unwrap().cls[0], 0.25, "the first source's value is kept");
    // --out among the sources: read as the output, never copied onto itself.
    let again = merge(&out, &[out.clone(), b.clone()]).unwrap();
    assert_eq!((again.created, again.folders[0].added, again.skipped_self.len()), (false, 0, 1), "{again}");
    assert_eq!(rows(&out).len(), 3);
    // A conflict with the output's own rows is refused before anything is written.
    let e = merge(&out, std::slice::from_ref(&d)).unwrap_err().to_string();
    assert!(e.contains("key k2") && e.contains(&s(&out)) && e.contains(&s(&d)), "{e}");
    assert_eq!(rows(&out).len(), 3);
    // A key twice in one source (two runs both wrote it) is merged once; big sources go in
    // several shards.
    let (twice, big) = (dir.path().join("twice"), dir.path().join("big"));
    store_with(&twice, &key("m"), &[row("k5", 0.1)]);
    store_with(&twice, &key("m"), &[row("k5", 0.1)]);
    let m = merge(&dir.path().join("out3"), &[twice]).unwrap();
    assert_eq!((m.folders[0].added, rows(&dir.path().join("out3")).len()), (1, 1), "{m}");
    let many: Vec<Encoded> = (0..5000).map(|i| row(&format!("r{i}"), i as f32)).collect();
    store_with(&big, &key("m"), &many);
    let out4 = dir.path().join("out4");
    assert_eq!(merge(&out4, &[big]).unwrap().folders[0].added, 5000);
    let folder = Store::models(&out4).unwrap()[0].0.clone();
    let shards = std::fs::read_dir(&folder)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert_eq!((rows(&out4).len(), shards), (5000, 2));
    // A folder with files but no store is refused as --out.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "x").unwrap();
    let e = merge(&junk, std::slice::from_ref(&a)).unwrap_err().to_string();
    assert!(e.contains("no store"), "{e}");
    // The question files must agree.
    let qa = Store::models(&a).unwrap()[0].0.join("question.json");
    let qb = Store::models(&b).unwrap()[0].0.join("question.json");
    std::fs::write(&qa, "{\"q\": 1}").unwrap();
    std::fs::write(&qb, "{\"q\": 2}").unwrap();
    let e = merge(&dir.path().join("out2"), &[a, b]).unwrap_err().to_string();
    assert!(e.contains("question.json") && e.contains("differ"), "{e}");
}

#[test]
fn the_cli_merges() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    store_with(&a, &key("m"), &[row("k1", 0.5)]);
    let out = dir.path().join("out");
    let text = cli(["store", "merge", "--out", &s(&out), &s(&a)]).run().ok().stdout;
    assert!(text.contains("created") && text.contains("1 rows added"), "{text}");
    let bad = cli(["store", "merge", "--out", &s(&out)]).run();
    assert!(!bad.status.success());
}
