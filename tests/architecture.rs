//! ARCHITECTURE.md's layering, checked on the source: code depends downward only, and a stage
//! imports another stage only when it consumes that stage's output.

use std::collections::BTreeSet;
use std::path::Path;

/// The layer of a top-level module (higher may import lower), as ARCHITECTURE.md's table says.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "error" | "era" | "data" => 0,
        "provenance" | "metrics" | "report" | "model" | "categorical" | "http" | "smooth" | "bert" | "split" => 1,
        "pit" | "encode" | "ask" | "features" | "finetune" | "train" | "evaluate" | "numerai" | "sample" | "news" => 2,
        "config" | "run" => 3,
        _ => return None,
    })
}

/// Stage → stages whose output it consumes (the only sideways imports allowed).
const CONSUMES: &[(&str, &str)] = &[
    ("features", "pit"),
    ("features", "encode"),
    ("features", "ask"),
    ("ask", "encode"),
    ("finetune", "encode"),
    ("finetune", "pit"),
];

/// The top-level module a source file belongs to (`src/encode/store.rs` → `encode`).
fn module_of(rel: &Path) -> String {
    let first = rel.iter().next().unwrap().to_string_lossy().to_string();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` a file names.
fn imports(text: &str) -> BTreeSet<String> {
    text.split("crate::")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_import_only_downward_or_what_they_consume() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for f in &files {
        let from = module_of(f.strip_prefix(&src).unwrap());
        let Some(from_layer) = layer(&from) else { continue };
        for to in imports(&std::fs::read_to_string(f).unwrap()) {
            let Some(to_layer) = layer(&to) else { continue };
            let sideways_ok = to == from || CONSUMES.contains(&(from.as_str(), to.as_str()));
            if to_layer > from_layer || (to_layer == from_layer && from_layer == 2 && !sideways_ok) {
                broken.push(format!("{} imports crate::{to}", f.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "imports against ARCHITECTURE.md's layers:\n{}", broken.join("\n"));
    assert!(files.len() > 20, "the check must see the source tree");
}

#[test]
fn the_check_catches_an_upward_import() {
    let text = "use crate::train::TrainConfig;\nuse crate::error::Result;";
    let found = imports(text);
    assert!(found.contains("train") && found.contains("error"));
    assert!(layer("train") > layer("metrics"), "a shared module importing a stage must be caught");
}
