//! The settings contract: every CLI default equals its TOML default, and every numeric option of
//! every subcommand, flag and TOML key alike, refuses NaN, negative, zero and absurd values by
//! name before any work starts.

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use serde::Serialize;
use signalkit::config::{AskConfig, Config, DataConfig, EncodeConfig, FinetuneConfig, JoinConfig};

use super::*;

/// Options whose valid range includes 0 (a seed, an embargo, a share, a cutoff hour, …).
const ZERO_OK: [&str; 9] = [
    "cutoff_hours",
    "embargo",
    "embargo_eras",
    "freeze_layers",
    "held_out",
    "seed",
    "smooth",
    "weight_decay",
    "warmup",
];
/// Options whose valid range includes negative numbers.
const NEGATIVE_OK: [&str; 1] = ["cutoff_hours"];
/// Options where any whole number is meaningful (a seed).
const HUGE_OK: [&str; 1] = ["seed"];
/// The values every numeric option is tried with.
const BAD: [(&str, &str); 5] =
    [("NaN", "nan"), ("-5", "negative"), ("0", "zero"), ("1e30", "huge"), ("99999999999999", "huge")];

fn allowed(key: &str, kind: &str) -> bool {
    let key = key.replace('-', "_");
    let k = key.as_str();
    match kind {
        "zero" => ZERO_OK.contains(&k),
        "negative" => NEGATIVE_OK.contains(&k),
        "huge" => HUGE_OK.contains(&k),
        _ => false,
    }
}

fn same<T: Serialize>(a: &T, b: &T, what: &str) {
    assert_eq!(
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
        "{what}: CLI and TOML defaults differ"
    );
}

fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
}

#[test]
fn every_cli_default_equals_the_toml_default() {
    let Command::Finetune(f) = parse(&["signalkit", "finetune", "--out", "o", "--labelled", "l.csv"]) else { panic!() };
    same(&f.train, &FinetuneConfig::default(), "finetune / [finetune]");
    assert_eq!((f.max_len, f.device.as_str()), (EncodeConfig::default().max_len, "cpu"));
    assert_eq!(f.model, EncodeConfig::default().model, "one default encoder");
    let Command::Encode(e) = parse(&["signalkit", "encode", "--headlines", "h.csv", "--store", "runs/store"]) else {
        panic!()
    };
    same(&e.encode, &EncodeConfig::default(), "encode / [encode]");
    let Command::Ask(a) =
        parse(&["signalkit", "ask", "--model", "m", "--questions", "q", "--headlines", "h", "--store", "s"])
    else {
        panic!()
    };
    same(&a.ask, &AskConfig { model: "m".into(), questions: "q".into(), ..Default::default() }, "ask / [ask]");
    let Command::Join(j) = parse(&["signalkit", "join", "--targets", "t", "--headlines", "h", "--out", "o"]) else {
        panic!()
    };
    same(&j.pit.join, &JoinConfig::default(), "join / [join]");
    let (data, _) = j.pit.config("t".into());
    let d = DataConfig::default();
    assert_eq!((data.ticker_col, data.text_col, data.ticker_suffix), (d.ticker_col, d.text_col, d.ticker_suffix));
    let Command::Train(t) = parse(&["signalkit", "train", "--features", "f", "--out", "o"]) else { panic!() };
    same(&t.config().unwrap(), &Config::default().train, "train / [train]");
    let help = Cli::command().find_subcommand_mut("train").unwrap().render_long_help().to_string();
    assert!(help.contains("last training eras") && !help.contains("uses the validation eras"), "{help}");
}

/// Every subcommand path (`["news", "fetch"]`, `["train"]`, …) with its command.
fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    if cmd.get_subcommands().next().is_none() {
        out.push((path.clone(), cmd.clone()));
    }
    for sub in cmd.get_subcommands() {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        leaves(sub, p, out);
    }
}

/// The parse error of `path --flag value` when the value itself is refused.
fn value_error(path: &[String], flag: &str, value: &str) -> Option<String> {
    let mut args = vec!["signalkit".to_string()];
    args.extend(path.iter().cloned());
    args.push(format!("--{flag}={value}"));
    match Cli::try_parse_from(&args) {
        Err(e) if matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) => Some(e.to_string()),
        _ => None,
    }
}

#[test]
fn every_numeric_flag_refuses_nan_negative_zero_and_absurd_values_by_name() {
    let mut all = Vec::new();
    leaves(&Cli::command(), Vec::new(), &mut all);
    let mut numeric = 0;
    for (path, cmd) in &all {
        for arg in cmd.get_arguments().filter(|a| a.get_action().takes_values()) {
            let Some(flag) = arg.get_long() else { continue };
            let is_number = value_error(path, flag, "abc").is_some()
                && ["1", "0.5", "3", "16"].iter().any(|v| value_error(path, flag, v).is_none());
            if !is_number {
                continue;
            }
            numeric += 1;
            for (value, kind) in BAD {
                match value_error(path, flag, value) {
                    Some(e) => assert!(e.contains(&format!("--{flag}")), "{path:?} --{flag} {value}: {e}"),
                    None => assert!(allowed(flag, kind), "{path:?} --{flag} {value} is accepted"),
                }
            }
        }
    }
    assert!(numeric >= 30, "only {numeric} numeric flags found: the probe is broken");
    for cmd in ["encode", "ask"] {
        let e = value_error(&[cmd.to_string()], "shard", "1/4294967297").expect("a shard count past the bound");
        assert!(e.contains("--shard") && e.contains("65536"), "{e}");
    }
}

/// The config with every optional table and key present, as a TOML table.
fn full_config() -> toml::Table {
    let mut cfg = Config { finetune: Some(FinetuneConfig::default()), ..Default::default() };
    let mut ask = AskConfig { model: "m".into(), questions: "q.toml".into(), ..Default::default() };
    ask.batch_size = Some(signalkit::config::AskBatch::new(16));
    cfg.ask = Some(ask);
    cfg.encode.batch_size = Some(signalkit::config::EncodeBatch::new(32));
    cfg.features.pca = Some(signalkit::settings::Int::new(8));
    cfg.train.early_stopping_rounds = Some(signalkit::train::StoppingRounds::new(10));
    cfg.train.early_stopping_eras = Some(signalkit::settings::Int::new(4));
    cfg.train.walk_forward = Some(signalkit::train::Folds::new(4));
    toml::from_str(&cfg.to_toml().unwrap()).unwrap()
}

#[test]
fn every_numeric_toml_key_refuses_nan_negative_zero_and_absurd_values_by_name() {
    let full = full_config();
    toml::from_str::<Config>(&toml::to_string(&full).unwrap()).expect("the full config parses");
    let mut numeric = 0;
    for (table, keys) in full.iter().filter_map(|(t, v)| v.as_table().map(|k| (t, k))) {
        for (key, _) in keys.iter().filter(|(_, v)| v.is_integer() || v.is_float()) {
            numeric += 1;
            for (value, kind) in BAD {
                let bad: toml::Table = toml::from_str(&format!("v = {}", value.replace("NaN", "nan"))).unwrap();
                let mut t = full.clone();
                let mut edited = t[table].as_table().unwrap().clone();
                edited.insert(key.clone(), bad["v"].clone());
                t.insert(table.clone(), edited.into());
                match toml::from_str::<Config>(&toml::to_string(&t).unwrap()) {
                    Err(e) => assert!(e.to_string().contains(&format!("{key} = ")), "[{table}] {key} = {value}: {e}"),
                    Ok(_) => assert!(allowed(key, kind), "[{table}] {key} = {value} is accepted"),
                }
            }
        }
    }
    assert!(numeric >= 20, "only {numeric} numeric keys found: the probe is broken");
    let e = signalkit::train::check_tree_count(&serde_json::from_str(r#"{"num_iterations": 0}"#).unwrap()).unwrap_err();
    assert!(e.to_string().contains("[train.params] num_iterations"), "{e}");
}
