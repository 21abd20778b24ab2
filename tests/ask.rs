//! `signalkit ask`: parity with transformers on the tiny Qwen2 fixture (scripts/fixtures/make_ask_fixtures.py),
//! questions files, the store, determinism.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{Run, fixtures, signalkit, write};
use serde_json::Value;
use signalkit::ask::model::{Decoder, Template};
use signalkit::ask::{Question, read_answers, read_questions};
use signalkit::encode::model::ModelFiles;

fn fixture() -> PathBuf {
    fixture_of("tiny-qwen2")
}

fn fixture_of(name: &str) -> PathBuf {
    fixtures(name)
}

fn decoder() -> Decoder {
    Decoder::load(&ModelFiles::from_dir(&fixture()).unwrap(), &Device::Cpu).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn qwen2_matches_transformers_alone_and_batched() {
    parity("tiny-qwen2");
}

#[test]
fn llama_matches_transformers_alone_and_batched() {
    parity("tiny-llama");
}

/// Qwen3: per-head query/key norms and a head_dim (24) set apart from hidden / heads (16).
#[test]
fn qwen3_matches_transformers_alone_and_batched() {
    parity("tiny-qwen3");
}

/// Largest |Δp| between answers and a reference field over the items.
fn worst(got: &[Vec<f32>], items: &[Value], field: &str) -> f32 {
    got.iter()
        .zip(items)
        .flat_map(|(g, it)| g.iter().zip(floats(&it[field])).map(|(a, b)| (a - b).abs()))
        .fold(0.0, f32::max)
}

/// Rendered prompts and token ids equal transformers', answer probabilities within 1e-4: the
/// padded forward alone and in the fixture's left-padded batches, and candle-transformers' model.
fn parity(name: &str) {
    let files = ModelFiles::from_dir(&fixture_of(name)).unwrap();
    let mut d = Decoder::load(&files, &Device::Cpu).unwrap();
    let mut plain = Decoder::load_with(&files, &Device::Cpu, false).unwrap();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_of(name).join("reference.json")).unwrap()).unwrap();
    let answers: Vec<String> = r["answers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect();
    let ids = d.answer_tokens(&answers).unwrap();
    assert_eq!(ids, r["answer_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<_>>());
    let items = r["items"].as_array().unwrap();
    assert!(items.len() >= 100);
    let mut prompts = Vec::new();
    for it in items {
        let prompt = d.template.render(it["content"].as_str().unwrap()).unwrap();
        assert_eq!(prompt, it["prompt"].as_str().unwrap(), "chat template render");
        let want: Vec<u32> = it["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(d.token_ids(&prompt).unwrap(), want, "tokens of {prompt:?}");
        prompts.push(prompt);
    }
    let alone: Vec<Vec<f32>> = prompts.iter().map(|p| d.answer(p, &ids).unwrap()).collect();
    let unpadded: Vec<Vec<f32>> = prompts.iter().map(|p| plain.answer(p, &ids).unwrap()).collect();
    let batch = r["batch"].as_u64().unwrap() as usize;
    let batched: Vec<Vec<f32>> = prompts.chunks(batch).flat_map(|c| d.answer_batch(c, &ids).unwrap()).collect();
    let (a, u, b) =
        (worst(&alone, items, "probs"), worst(&unpadded, items, "probs"), worst(&batched, items, "batched_probs"));
    eprintln!(
        "{name}: max |Δp| vs transformers: alone {a:.2e}, candle-transformers {u:.2e}, left-padded batches {b:.2e}"
    );
    assert!(a < 1e-4 && u < 1e-4 && b < 1e-4, "alone {a}, unpadded {u}, batched {b}");
}

#[test]
fn answers_are_deterministic() {
    let mut d = decoder();
    let ids = d.answer_tokens(&["YES".into(), "NO".into(), "UNKNOWN".into()]).unwrap();
    let p = d.template.render("Is this good? Apple beats estimates").unwrap();
    let a = d.answer(&p, &ids).unwrap();
    let b = d.answer(&p, &ids).unwrap();
    assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    assert!((a.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn plain_template_without_a_chat_template() {
    assert_eq!(Template::Plain.render("Q?").unwrap(), "User: Q?\nAssistant:");
}

#[test]
fn templates_may_call_python_string_methods_and_raise() {
    let t = |source: &str| Template::Jinja { source: source.into(), bos: "<s>".into(), eos: "</s>".into() };
    let strip = t("{{ bos_token }}{% for m in messages %}[{{ m['content'].strip() | upper }}]{% endfor %}");
    assert_eq!(strip.render("  good news? ").unwrap(), "<s>[GOOD NEWS?]");
    let raise = t("{% if messages[0]['role'] != 'system' %}{{ raise_exception('system first') }}{% endif %}");
    assert!(raise.render("x").unwrap_err().to_string().contains("system first"));
}

#[test]
fn questions_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let qs = read_questions(&fixture().join("questions.toml")).unwrap();
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[0].answers, ["YES", "NO", "UNKNOWN"]);
    assert!(!qs[0].uses_ticker() || qs[0].prompt.contains("{company}"));
    let bad = [
        ("[[ask.question]]\nname = \"x\"\nprompt = \"no placeholder\"\n", "must contain {headline}"),
        ("[[ask.question]]\nname = \"x\"\nprompt = \"{headline} {sector}\"\n", "unknown placeholder {sector}"),
        ("[[ask.question]]\nname = \"Bad Name\"\nprompt = \"{headline}\"\n", "lowercase letters"),
        ("[[ask.question]]\nname = \"x\"\nprompt = \"{headline}\"\nanswers = [\"Y\", \"N\"]\n", "three words"),
        (
            "[[ask.question]]\nname = \"x\"\nprompt = \"{headline}\"\n[[ask.question]]\nname = \"x\"\nprompt = \"{headline}\"\n",
            "appears twice",
        ),
        ("[ask]\nquestion = []\n", "no [[ask.question]]"),
    ];
    for (text, want) in bad {
        let e = read_questions(&write(dir.path(), "q.toml", text)).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("q.toml"), "{e}");
    }
    let q = Question { name: "t".into(), prompt: "{company} {headline}".into(), answers: vec![] };
    assert_eq!(q.fill("H", "AAPL", None, false), "AAPL H");
    assert_eq!(q.fill("H", "AAPL", Some("Apple Inc."), false), "Apple Inc. H");
    assert_eq!(q.fill("H", "AAPL", Some("Apple Inc."), true), "the company H");
    // --anonymise hides the --names name in the headline too, with or without its legal suffix.
    let hidden = q.fill("Apple Inc. and Apple beat; Applebee's and Pineapple flat", "AAPL", Some("Apple Inc."), true);
    assert_eq!(hidden, "the company the company and the company beat; Applebee's and Pineapple flat");
    let hidden = q.fill("Société Générale SA: Société Générale cuts jobs", "GLE", Some("Société Générale SA"), true);
    assert_eq!(hidden, "the company the company: the company cuts jobs");
    assert_eq!(
        q.fill("AAPL beats; AAPLX and $AAPL up", "AAPL", None, true),
        "the company the company beats; AAPLX and $the company up"
    );
}

#[test]
fn ask_fills_the_store_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let headlines = write(
        dir.path(),
        "h.csv",
        "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats quarterly earnings estimates and raises full-year guidance\n\
         TSLA,2024-01-03,Tesla shares fall after analyst downgrade to sell\nAAPL,2024-01-04,  Apple beats quarterly earnings estimates and raises full-year guidance \n",
    );
    let q = write(
        dir.path(),
        "q.toml",
        "[[ask.question]]\nname = \"good_news\"\nprompt = \"Answer YES if good news, NO if bad news, or UNKNOWN if uncertain. Is this headline good or bad for the stock price of {company} in the next month?\\n{headline}\"\n",
    );
    let args = common::ask_args(2, 4, dir.path(), &headlines, &q);
    let s = signalkit::ask::ask_files(&args).unwrap();
    assert_eq!((s.answered, s.already_stored, s.store_dirs.len()), (2, 0, 1));
    let again = signalkit::ask::ask_files(&args).unwrap();
    assert_eq!((again.answered, again.already_stored), (0, 2));
    // Features look a ticker question's answers up by (ticker, headline).
    let answers = read_answers(&args.store).unwrap();
    let apple = "Apple beats quarterly earnings estimates and raises full-year guidance";
    assert!(answers[0].get("AAPL", apple).is_some() && answers[0].get("TSLA", apple).is_none());
}

/// `signalkit ask --model M --questions Q --headlines H --store S`, then `extra`.
fn cli_ask(model: &Path, q: &Path, h: &Path, store: &Path, extra: &[&str]) -> Run {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (model, q, h, store) = (s(model), s(q), s(h), s(store));
    let mut args = vec!["ask", "--model", &model, "--questions", &q, "--headlines", &h, "--store", &store];
    args.extend_from_slice(extra);
    signalkit(&args).run()
}

/// Every shard's answer rows in key order, as bytes of (key, text, probabilities).
fn store_rows(store: &Path) -> Vec<(String, String, Vec<u32>)> {
    let mut out = Vec::new();
    for a in read_answers(store).unwrap() {
        for (text, p) in a.by_text {
            out.push((a.key.fingerprint.clone(), text, p.iter().map(|x| x.to_bits()).collect()));
        }
    }
    out.sort();
    out
}

#[test]
fn cli_ask_writes_the_same_answers_every_time_and_names_bad_models() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "h.csv",
        "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats estimates\nTSLA,2024-01-03,Tesla recalls cars\n",
    );
    let q = write(dir.path(), "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? {headline}\"\n");
    let model = fixture();
    let run = |store: &str| {
        let s = dir.path().join(store);
        let out = cli_ask(&model, &q, &h, &s, &[]);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(out.stdout.contains("2 answered"), "{}", out.stdout);
        store_rows(&s)
    };
    let (a, b) = (run("s1"), run("s2"));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "same inputs, same answers to the bit");
    let bert = fixtures("tiny-finbert");
    let out = cli_ask(&bert, &q, &h, &dir.path().join("s3"), &[]);
    let err = &out.stderr;
    assert!(
        !out.status.success()
            && err.contains("model_type 'bert' is not supported by ask")
            && err.contains("config.json"),
        "{err}"
    );
}

/// A questions file with one question, "good", naming {company}.
fn company_question(dir: &Path) -> PathBuf {
    write(dir, "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news for {company}? {headline}\"\n")
}

#[test]
fn anonymised_answers_are_kept_apart_and_the_knowledge_cutoff_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-01-02,AAPL beats estimates\n");
    let q = company_question(dir.path());
    let mut args = common::ask_args(2, 4, dir.path(), &h, &q);
    let plain = signalkit::ask::ask_files(&args).unwrap();
    args.options = signalkit::ask::AskOptions {
        anonymise: true,
        knowledge_cutoff: Some("2024-06-30".into()),
        ..Default::default()
    };
    let hidden = signalkit::ask::ask_files(&args).unwrap();
    assert_eq!((plain.answered, hidden.answered), (1, 1), "anonymised answers are a separate folder");
    assert_ne!(plain.store_dirs, hidden.store_dirs);
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(hidden.store_dirs[0].join("question.json")).unwrap()).unwrap();
    assert_eq!((rec["anonymise"].as_bool(), rec["knowledge_cutoff"].as_str()), (Some(true), Some("2024-06-30")));
    args.options.knowledge_cutoff = Some("30/06/2024".into());
    let e = signalkit::ask::ask_files(&args).unwrap_err().to_string();
    assert!(e.contains("--knowledge-cutoff") && e.contains("YYYY-MM-DD"), "{e}");
}

#[test]
fn batch_sizes_agree_and_an_empty_batch_is_empty() {
    let mut d = decoder();
    let ids = d.answer_tokens(&["YES".into(), "NO".into(), "UNKNOWN".into()]).unwrap();
    let prompts: Vec<String> =
        ["Up", "Apple beats quarterly earnings estimates and raises full-year guidance", "Tesla shares fall"]
            .iter()
            .map(|h| d.template.render(&format!("Good news? {h}")).unwrap())
            .collect();
    let batched = d.answer_batch(&prompts, &ids).unwrap();
    for (p, b) in prompts.iter().zip(&batched) {
        let alone = d.answer(p, &ids).unwrap();
        assert!(alone.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5), "{alone:?} vs {b:?}");
    }
    assert!(d.answer_batch(&[], &ids).unwrap().is_empty());
}

/// Largest |Δp| between two sets of answers.
fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(u, v)| (u - v).abs())).fold(0.0, f32::max)
}

/// The prefix-cache path (the question's shared prefix computed once, its keys and values reused
/// and expanded over the batch) equals full recomputation within 1e-5, alone and batched, and
/// stays within 1e-4 of transformers.
fn prefix_cache_is_exact(name: &str) {
    let files = ModelFiles::from_dir(&fixture_of(name)).unwrap();
    let mut d = Decoder::load(&files, &Device::Cpu).unwrap();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_of(name).join("reference.json")).unwrap()).unwrap();
    let answers: Vec<String> = r["answers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect();
    let ids = d.answer_tokens(&answers).unwrap();
    let items = r["items"].as_array().unwrap();
    // One question's prompts (the fixture holds two questions): those sharing the first prompt's opening.
    let prompts: Vec<String> = items.iter().map(|it| it["prompt"].as_str().unwrap().to_string()).collect();
    let first_q: Vec<usize> = (0..prompts.len()).filter(|&i| prompts[i][..40] == prompts[0][..40]).collect();
    assert!(first_q.len() >= 20 && first_q.len() < prompts.len(), "{}", first_q.len());
    let qp: Vec<String> = first_q.iter().map(|&i| prompts[i].clone()).collect();
    let full_alone: Vec<Vec<f32>> = qp.iter().map(|p| d.answer(p, &ids).unwrap()).collect();
    let full_batched: Vec<Vec<f32>> = qp.chunks(8).flat_map(|c| d.answer_batch(c, &ids).unwrap()).collect();
    let n = d.set_prefix(qp.iter().map(String::as_str)).unwrap();
    assert!(n >= 10, "the shared prefix is the chat template's opening and the question: {n} tokens");
    assert_eq!(d.prefix_len(), n);
    let cached_alone: Vec<Vec<f32>> = qp.iter().map(|p| d.answer(p, &ids).unwrap()).collect();
    let cached_batched: Vec<Vec<f32>> = qp.chunks(8).flat_map(|c| d.answer_batch(c, &ids).unwrap()).collect();
    let (a, b) = (max_diff(&cached_alone, &full_alone), max_diff(&cached_batched, &full_batched));
    let picked: Vec<Value> = first_q.iter().map(|&i| items[i].clone()).collect();
    let t = worst(&cached_alone, &picked, "probs");
    eprintln!(
        "{name}: prefix cache ({n} tokens) vs full recomputation: alone {a:.2e}, batched {b:.2e}; vs transformers {t:.2e}"
    );
    assert!(a < 1e-5 && b < 1e-5 && t < 1e-4, "alone {a}, batched {b}, transformers {t}");
    // Prompts that do not continue the prefix (the other question) are computed whole.
    let other: Vec<String> =
        (0..prompts.len()).filter(|i| !first_q.contains(i)).take(8).map(|i| prompts[i].clone()).collect();
    let mixed = d.answer_batch(&other, &ids).unwrap();
    d.clear_prefix();
    assert_eq!(d.prefix_len(), 0);
    assert!(max_diff(&mixed, &d.answer_batch(&other, &ids).unwrap()) < 1e-6);
}

#[test]
fn qwen2_prefix_cache_equals_full_recomputation() {
    prefix_cache_is_exact("tiny-qwen2");
}

#[test]
fn llama_prefix_cache_equals_full_recomputation() {
    prefix_cache_is_exact("tiny-llama");
}

#[test]
fn qwen3_prefix_cache_equals_full_recomputation() {
    prefix_cache_is_exact("tiny-qwen3");
}

#[test]
fn ask_with_and_without_the_prefix_cache_stores_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "h.csv",
        "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats estimates\nTSLA,2024-01-03,Tesla recalls cars\n\
         MSFT,2024-01-04,Microsoft raises its dividend by ten percent\n",
    );
    let q = write(dir.path(), "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? {headline}\"\n");
    let mut args = common::ask_args(2, 4, dir.path(), &h, &q);
    signalkit::ask::ask_files(&args).unwrap();
    let cached = store_rows(&args.store);
    args.store = dir.path().join("whole");
    args.prefix_cache = false;
    signalkit::ask::ask_files(&args).unwrap();
    let whole = store_rows(&args.store);
    assert_eq!(cached.len(), 3);
    for (c, w) in cached.iter().zip(&whole) {
        assert_eq!((&c.0, &c.1), (&w.0, &w.1));
        let close = c.2.iter().zip(&w.2).all(|(x, y)| (f32::from_bits(*x) - f32::from_bits(*y)).abs() < 1e-5);
        assert!(close, "{c:?} vs {w:?}");
    }
}

/// The tiny Qwen2 fixture's weights as a GGUF file (see [`write_gguf_of`]).
fn write_gguf(dir: &Path, dtype: candle_core::quantized::GgmlDType) -> PathBuf {
    write_gguf_of("tiny-qwen2", dir, dtype)
}

/// A fixture's weights as a GGUF file the way llama.cpp's converter writes them: its tensor
/// names and metadata keys, Llama's query and key rows permuted for its interleaved rotation,
/// matrices quantised to `dtype`, vectors (norms, biases) kept in f32.
fn write_gguf_of(fixture_name: &str, dir: &Path, dtype: candle_core::quantized::GgmlDType) -> PathBuf {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file::Value};
    let folder = fixture_of(fixture_name);
    let tensors = candle_core::safetensors::load(folder.join("model.safetensors"), &Device::Cpu).unwrap();
    let cfg: Value2 = serde_json::from_str(&std::fs::read_to_string(folder.join("config.json")).unwrap()).unwrap();
    let arch = cfg["model_type"].as_str().unwrap().to_string();
    let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let head_dim = cfg["head_dim"].as_u64().map_or(n("hidden_size") / n("num_attention_heads"), |d| d as usize);
    let rename = |name: &str| -> String {
        let n = name.replace("model.embed_tokens", "token_embd").replace("model.norm", "output_norm");
        let n = n.replace("lm_head", "output").replace("model.layers.", "blk.");
        let pairs = [
            ("self_attn.q_proj", "attn_q"),
            ("self_attn.k_proj", "attn_k"),
            ("self_attn.v_proj", "attn_v"),
            ("self_attn.o_proj", "attn_output"),
            ("self_attn.q_norm", "attn_q_norm"),
            ("self_attn.k_norm", "attn_k_norm"),
            ("mlp.gate_proj", "ffn_gate"),
            ("mlp.up_proj", "ffn_up"),
            ("mlp.down_proj", "ffn_down"),
            ("post_attention_layernorm", "ffn_norm"),
            ("input_layernorm", "attn_norm"),
        ];
        pairs.iter().fold(n, |n, (a, b)| n.replace(a, b))
    };
    // llama.cpp's `permute`: rows (heads, 2, head_dim / 2) → (heads, head_dim / 2, 2).
    let permute = |t: &candle_core::Tensor, heads: usize| {
        let (rows, cols) = t.dims2().unwrap();
        t.reshape((heads, 2, rows / heads / 2, cols)).unwrap().transpose(1, 2).unwrap().reshape((rows, cols)).unwrap()
    };
    let mut q: Vec<(String, QTensor)> = tensors
        .iter()
        .map(|(name, t)| {
            let t = match (arch.as_str(), name.ends_with("q_proj.weight"), name.ends_with("k_proj.weight")) {
                ("llama", true, _) => permute(t, n("num_attention_heads")),
                ("llama", _, true) => permute(t, n("num_key_value_heads")),
                _ => t.clone(),
            };
            let kind = if t.rank() == 2 { dtype } else { GgmlDType::F32 };
            (rename(name), QTensor::quantize(&t, kind).unwrap())
        })
        .collect();
    q.sort_by(|a, b| a.0.cmp(&b.0));
    let u = |k: &str| Value::U32(n(k) as u32);
    let theta = cfg["rope_parameters"]["rope_theta"].as_f64().or(cfg["rope_theta"].as_f64()).unwrap() as f32;
    let meta = [
        ("general.architecture".to_string(), Value::String(arch.clone())),
        (format!("{arch}.attention.head_count"), u("num_attention_heads")),
        (format!("{arch}.attention.head_count_kv"), u("num_key_value_heads")),
        (format!("{arch}.attention.key_length"), Value::U32(head_dim as u32)),
        (format!("{arch}.rope.dimension_count"), Value::U32(head_dim as u32)),
        (format!("{arch}.embedding_length"), u("hidden_size")),
        (format!("{arch}.context_length"), u("max_position_embeddings")),
        (format!("{arch}.block_count"), u("num_hidden_layers")),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F32(cfg["rms_norm_eps"].as_f64().unwrap() as f32)),
        (format!("{arch}.rope.freq_base"), Value::F32(theta)),
    ];
    let path = dir.join(format!("{fixture_name}.gguf"));
    let mut f = std::fs::File::create(&path).unwrap();
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    candle_core::quantized::gguf_file::write(&mut f, &meta_refs, &tensor_refs).unwrap();
    path
}

type Value2 = serde_json::Value;

/// A q8_0 GGUF of the fixture answers like the f32 safetensors within the stated tolerance
/// (README: |Δp| at most 0.15, 0.03 on average, on this fixture's large random weights), and an f32 GGUF within 1e-5 (the loading is right, the rest is
/// quantisation).
#[test]
fn gguf_q8_0_is_close_to_the_f32_model() {
    for name in ["tiny-qwen2", "tiny-qwen3", "tiny-llama"] {
        gguf_close_to_f32(name);
    }
}

fn gguf_close_to_f32(fixture_name: &str) {
    use candle_core::quantized::GgmlDType;
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_of(fixture_name);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(folder.join("reference.json")).unwrap()).unwrap();
    let prompts: Vec<String> =
        r["items"].as_array().unwrap().iter().map(|it| it["prompt"].as_str().unwrap().to_string()).collect();
    let mut f32_model = Decoder::load(&ModelFiles::from_dir(&folder).unwrap(), &Device::Cpu).unwrap();
    let ids = f32_model.answer_tokens(&["YES".into(), "NO".into(), "UNKNOWN".into()]).unwrap();
    let want: Vec<Vec<f32>> = prompts.iter().map(|p| f32_model.answer(p, &ids).unwrap()).collect();
    let mut worst = Vec::new();
    for (dtype, name) in [(GgmlDType::F32, "f32"), (GgmlDType::Q8_0, "q8_0")] {
        let mut files = ModelFiles::from_dir(&folder).unwrap();
        files.weights = write_gguf_of(fixture_name, dir.path(), dtype);
        assert!(signalkit::ask::gguf::dtypes(&files.weights).unwrap().contains(name));
        let mut g = Decoder::load(&files, &Device::Cpu).unwrap();
        assert_ne!(g.fingerprint, f32_model.fingerprint, "GGUF answers are kept apart in the store");
        let got: Vec<Vec<f32>> = prompts.iter().map(|p| g.answer(p, &ids).unwrap()).collect();
        let batched = g.answer_batch(&prompts[..3], &ids).unwrap();
        assert!(max_diff(&batched, &got[..3]) < 1e-5, "a left-padded batch answers as its prompts alone");
        let diffs: Vec<f32> =
            got.iter().zip(&want).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs())).collect();
        worst.push((max_diff(&got, &want), diffs.iter().sum::<f32>() / diffs.len() as f32));
    }
    eprintln!(
        "{fixture_name}: GGUF vs f32 safetensors over {} prompts, |Δp| max / mean: f32 {:.1e} / {:.1e}, q8_0 {:.1e} / {:.1e}",
        prompts.len(),
        worst[0].0,
        worst[0].1,
        worst[1].0,
        worst[1].1
    );
    // Dequantised into the padded forward, an f32 GGUF answers as the safetensors (candle's
    // quantized_qwen3, with its own attention kernel, was 0.017 away on tiny-qwen3).
    assert!(worst[0].0 < 1e-5 && worst[1].0 < 0.15 && worst[1].1 < 0.03 && worst[1].0 > 0.0, "{worst:?}");
}

#[test]
fn cli_ask_reads_gguf_weights_and_refuses_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = write_gguf(dir.path(), candle_core::quantized::GgmlDType::Q8_0);
    let h = write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats estimates\n");
    let q = write(dir.path(), "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? {headline}\"\n");
    let store = dir.path().join("store");
    let run = |model: &Path, weights: &Path| cli_ask(model, &q, &h, &store, &["--gguf", weights.to_str().unwrap()]);
    let out = run(&fixture(), &gguf);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("1 answered"));
    let rows = store_rows(&store);
    assert_eq!(rows.len(), 1);
    let p: Vec<f32> = rows[0].2.iter().map(|b| f32::from_bits(*b)).collect();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{p:?}");
    let err = |o: Run| o.stderr;
    let e = err(run(&fixture(), &h));
    assert!(e.contains("h.csv") && e.contains(".gguf"), "{e}");
    let fake = write(dir.path(), "fake.gguf", "not gguf at all");
    let e = err(run(&fixture(), &fake));
    assert!(e.contains("fake.gguf") && e.contains("not a GGUF file"), "{e}");
    let e = err(run(&fixture_of("tiny-llama"), &gguf));
    assert!(e.contains("GGUF architecture \"qwen2\" but config.json's model_type is \"llama\""), "{e}");
}

/// Every stored (key text, probabilities) of the one question folder under `root`.
fn stored_texts(root: &Path) -> std::collections::HashMap<String, Vec<f32>> {
    use signalkit::encode::store::{Store, StoreQuery};
    let models = Store::models(root).unwrap();
    assert_eq!(models.len(), 1);
    let (store, _) = Store::find_by(root, &StoreQuery::exactly(&models[0].1)).unwrap();
    let df = store.read_all().unwrap();
    let text = df.column("text").unwrap().str().unwrap().clone();
    let yes = df.column("p_yes").unwrap().cast(&polars::prelude::DataType::Float32).unwrap();
    let no = df.column("p_no").unwrap().cast(&polars::prelude::DataType::Float32).unwrap();
    let (yes, no) = (yes.f32().unwrap().clone(), no.f32().unwrap().clone());
    (0..df.height())
        .map(|i| (text.get(i).unwrap().to_string(), vec![yes.get(i).unwrap(), no.get(i).unwrap()]))
        .collect()
}

#[test]
fn names_fill_company_and_never_share_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(
        dir.path(),
        "h.csv",
        "ticker,published_at,headline\nAAPL,2024-01-02,Shares jump after results\nTSLA,2024-01-03,Shares jump after results\n",
    );
    let q = company_question(dir.path());
    let mut args = common::ask_args(2, 4, dir.path(), &h, &q);
    let root = args.store.clone();
    let mut ask_into = |store: &str, names: Option<PathBuf>| {
        args.store = root.join(store);
        args.names = names;
        signalkit::ask::ask_files(&args).unwrap()
    };
    let plain = ask_into("plain", None);
    assert_eq!((plain.answered, plain.unnamed), (2, 0), "without --names every ticker names itself");
    let inc_file = write(dir.path(), "names.csv", "ticker,name\naapl, Apple Inc.\n");
    let named = ask_into("inc", Some(inc_file.clone()));
    assert_eq!((named.answered, named.unnamed), (2, 1), "TSLA, not in the file, is named by its ticker");
    assert!(named.to_string().contains("1 tickers not in --names were named by their ticker"), "{named}");
    let other =
        ask_into("computer", Some(write(dir.path(), "other.csv", "ticker,name\nAAPL,Apple Computer\nTSLA,Tesla\n")));
    assert_eq!((other.answered, other.unnamed), (2, 0));
    let key = |parts: &[&str]| parts.join("\u{1f}");
    let h = "Shares jump after results";
    let (plain_s, inc_s, computer_s) =
        (stored_texts(&root.join("plain")), stored_texts(&root.join("inc")), stored_texts(&root.join("computer")));
    let (by_ticker, inc, computer) = (
        &plain_s[&key(&["AAPL", h])],
        &inc_s[&key(&["AAPL", "Apple Inc.", h])],
        &computer_s[&key(&["AAPL", "Apple Computer", h])],
    );
    assert!(inc_s.contains_key(&key(&["TSLA", h])) && computer_s.contains_key(&key(&["TSLA", "Tesla", h])));
    assert!(by_ticker != inc && inc != computer, "the name reaches the prompt: {by_ticker:?} {inc:?} {computer:?}");
    // The names file's content is part of the question's identity (store folder and feature
    // provenance): answers asked with other names are never taken for these.
    let fingerprint = |store: &str| read_answers(&root.join(store)).unwrap()[0].key.fingerprint.clone();
    let prints = [fingerprint("plain"), fingerprint("inc"), fingerprint("computer")];
    assert!(prints[0] != prints[1] && prints[1] != prints[2] && prints[0] != prints[2], "{prints:?}");
    let again = ask_into("inc", Some(inc_file.clone()));
    assert_eq!((again.answered, again.already_stored), (0, 2), "the same names file resumes its answers");
    let record = std::fs::read_to_string(again.store_dirs[0].join("question.json")).unwrap();
    assert!(record.contains("\"names\""), "{record}");
    // One store asked with two names files holds two folders for the question: refused by name.
    let mixed = ask_into("inc", Some(write(dir.path(), "names2.csv", "ticker,name\nAAPL,Apple\n")));
    assert_eq!(mixed.answered, 2);
    let e = read_answers(&root.join("inc")).unwrap_err().to_string();
    assert!(e.contains("--names") && e.contains("'good'"), "{e}");
    args.store = root.join("bad");

    for (text, want) in [
        ("ticker,company\nAAPL,Apple\n", "no column name"),
        ("ticker,name\nAAPL,Apple\nTSLA,\n", "ticker 'TSLA' has no name"),
        ("ticker,name\nAAPL,Apple\nAAPL,Apple Computer\n", "ticker 'AAPL' has two names"),
    ] {
        args.names = Some(write(dir.path(), "bad.csv", text));
        let e = signalkit::ask::ask_files(&args).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("bad.csv"), "{e}");
    }
}

/// A compat variant's answers: each prompt alone, in the fixture's left-padded batches, and the
/// first question's prompts (every other one, `first`) in batches through its cached prefix.
struct CompatRuns {
    alone: Vec<Vec<f32>>,
    batched: Vec<Vec<f32>>,
    cached: Vec<Vec<f32>>,
    first: Vec<usize>,
    items: Vec<Value>,
    /// compat.json's "gguf": transformers' answers on each GGUF file's dequantised weights.
    gguf: Value,
}

/// Runs a compat variant from `files` (its folder, or a GGUF beside it) in `dtype`, after checking
/// that prompts, token ids and answer tokens equal transformers'.
fn compat_runs(dir: &Path, files: &ModelFiles, dtype: candle_core::DType) -> Result<CompatRuns, String> {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("compat.json")).unwrap()).unwrap();
    let mut d = Decoder::load_as(files, &Device::Cpu, true, dtype).map_err(|e| e.to_string())?;
    let answers: Vec<String> = r["answers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect();
    let ids = d.answer_tokens(&answers).map_err(|e| e.to_string())?;
    let want_ids: Vec<u32> = r["answer_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    if ids != want_ids {
        return Err(format!("answer tokens {ids:?}, transformers {want_ids:?}"));
    }
    let items = r["items"].as_array().unwrap().clone();
    let mut prompts = Vec::new();
    for it in &items {
        let prompt = d.template.render(it["content"].as_str().unwrap()).map_err(|e| e.to_string())?;
        if prompt != it["prompt"].as_str().unwrap() {
            return Err(format!("prompt {prompt:?}, transformers {:?}", it["prompt"]));
        }
        let want: Vec<u32> = it["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let got = d.token_ids(&prompt).map_err(|e| e.to_string())?;
        if got != want {
            return Err(format!("token ids {got:?}, transformers {want:?}"));
        }
        prompts.push(prompt);
    }
    let batch = r["batch"].as_u64().unwrap() as usize;
    let alone: Vec<Vec<f32>> = prompts.iter().map(|p| d.answer(p, &ids).unwrap()).collect();
    let batched: Vec<Vec<f32>> = prompts.chunks(batch).flat_map(|c| d.answer_batch(c, &ids).unwrap()).collect();
    // The first question's prompts through its cached prefix, in batches.
    let first: Vec<usize> = (0..prompts.len()).step_by(2).collect();
    let qp: Vec<String> = first.iter().map(|&i| prompts[i].clone()).collect();
    assert!(d.set_prefix(qp.iter().map(String::as_str)).unwrap() > 5);
    let cached: Vec<Vec<f32>> = qp.chunks(batch).flat_map(|c| d.answer_batch(c, &ids).unwrap()).collect();
    d.clear_prefix();
    Ok(CompatRuns { alone, batched, cached, first, items, gguf: r["gguf"].clone() })
}

impl CompatRuns {
    /// The largest |Δp| against the items' `field` (alone and cached) and its batched twin.
    fn worst(&self, field: &str, batched_field: &str) -> f32 {
        let picked: Vec<Value> = self.first.iter().map(|&i| self.items[i].clone()).collect();
        worst(&self.alone, &self.items, field).max(worst(&self.batched, &self.items, batched_field)).max(worst(
            &self.cached,
            &picked,
            field,
        ))
    }
}

/// One compat variant's answers in `dtype` vs transformers' (`field`: alone, `field` with
/// `batched_` after its dtype prefix: in left-padded batches), also through the prefix cache;
/// prompts and token ids must equal transformers'. Returns the largest |Δp|, or what differed.
fn compat_variant(dir: &Path, dtype: candle_core::DType, prefix: &str) -> Result<f32, String> {
    let files = ModelFiles::from_dir(dir).map_err(|e| e.to_string())?;
    let runs = compat_runs(dir, &files, dtype)?;
    Ok(runs.worst(&format!("{prefix}probs"), &format!("{prefix}batched_probs")))
}

/// The compat matrix (scripts/fixtures/make_ask_compat.py): checkpoints saved by transformers'
/// save_pretrained, each a variant of what hub checkpoints hold; every one answers as
/// transformers does within 1e-5 in f32 and, for bf16 weights computed in bf16 or f16, 2e-3.
#[test]
fn compat_matrix_matches_transformers() {
    let root = fixtures("ask-compat");
    let mut variants: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    variants.sort();
    assert!(variants.len() >= 14, "{variants:?}");
    let (mut failed, mut table) = (Vec::new(), Vec::new());
    for dir in &variants {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("compat.json")).unwrap()).unwrap();
        let all = [
            (candle_core::DType::F32, "", 1e-5),
            (candle_core::DType::BF16, "bf16_", 2e-3),
            (candle_core::DType::F16, "f16_", 2e-3),
        ];
        let runs: Vec<_> =
            all.into_iter().filter(|(_, p, _)| r["items"][0].get(format!("{p}probs")).is_some()).collect();
        for (dtype, prefix, tolerance) in runs {
            let got = compat_variant(dir, dtype, prefix);
            let shown = got.as_ref().map_or_else(|e| format!("FAILED: {e}"), |w| format!("{w:.2e}"));
            table.push(format!("{name:>20} {dtype:?}: {shown} (tolerance {tolerance:.0e})"));
            if !got.as_ref().is_ok_and(|&w| w < tolerance) {
                failed.push(format!("{name} {dtype:?}: {got:?}"));
            }
        }
    }
    eprintln!("max |Δp| vs transformers, alone / left-padded batches / prefix cache:\n{}", table.join("\n"));
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A copy of a compat variant with `edit` applied to one of its files (as JSON).
fn edited_copy(dir: &Path, variant: &str, file: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let from = fixtures("ask-compat").join(variant);
    let to = dir.join(variant);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(to.join(file)).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(to.join(file), serde_json::to_string(&v).unwrap()).unwrap();
    to
}

/// What the compat matrix does not run is refused by name, never answered differently.
#[test]
fn unsupported_checkpoint_variants_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let load =
        |d: &Path| Decoder::load(&ModelFiles::from_dir(d).unwrap(), &Device::Cpu).map(|_| ()).unwrap_err().to_string();
    let dynamic = edited_copy(dir.path(), "rope-yarn", "config.json", |c| {
        c["rope_parameters"]["rope_type"] = "dynamic".into();
    });
    let e = load(&dynamic);
    assert!(
        e.contains("config.json") && e.contains("rope_type 'dynamic' is not supported") && e.contains("yarn"),
        "{e}"
    );
    let partial = edited_copy(dir.path(), "rope-linear", "config.json", |c| {
        c["rope_parameters"]["partial_rotary_factor"] = 0.5.into();
    });
    assert!(load(&partial).contains("partial_rotary_factor"), "{}", load(&partial));
    let no_default = edited_copy(dir.path(), "template-list", "tokenizer_config.json", |t| {
        t["chat_template"].as_array_mut().unwrap().retain(|x| x["name"] != "default");
    });
    let e = load(&no_default);
    assert!(e.contains("tokenizer_config.json") && e.contains("tool_use") && e.contains("default"), "{e}");
    let lost = edited_copy(dir.path(), "sharded", "model.safetensors.index.json", |_| {});
    std::fs::remove_file(lost.join("model-00002-of-00003.safetensors")).unwrap();
    let e = load(&lost);
    assert!(e.contains("model.safetensors.index.json") && e.contains("model-00002-of-00003.safetensors"), "{e}");
    // candle-transformers' quantised models (the unpadded GGUF cross-check) do not scale rope: refused.
    let mut gguf = ModelFiles::from_dir(&fixtures("ask-compat").join("rope-llama3")).unwrap();
    gguf.weights = fixtures("ask-compat").join("bos-twice").join("model-f32.gguf");
    let e = Decoder::load_with(&gguf, &Device::Cpu, false).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("rope_type 'llama3'") && e.contains("padded"), "{e}");
    // A GGUF of other sizes than the config.json beside it is refused naming both keys.
    let mut other = ModelFiles::from_dir(&fixtures("ask-compat").join("template-jinja")).unwrap();
    other.weights = fixtures("ask-compat").join("wide").join("model-q4_k.gguf");
    let e = Decoder::load(&other, &Device::Cpu).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("model-q4_k.gguf") && e.contains("qwen2.embedding_length") && e.contains("hidden_size"), "{e}");
    // A GGUF tensor type candle cannot dequantise (here IQ4_XS, type 23, in place of the Q6_K
    // token_embd of the q4_k_m file) is refused naming the type, not as "not a GGUF file".
    let mut bytes = std::fs::read(fixtures("ask-compat").join("wide").join("model-q4_k_m.gguf")).unwrap();
    let name = b"token_embd.weight";
    let at = bytes.windows(name.len() + 8).position(|w| w[..8] == (name.len() as u64).to_le_bytes() && &w[8..] == name);
    let at = at.unwrap() + 8 + name.len() + 4 + 2 * 8; // past the name, n_dims (2) and two dims: the type
    assert_eq!(bytes[at..at + 4], 14u32.to_le_bytes(), "token_embd.weight is Q6_K (14)");
    bytes[at..at + 4].copy_from_slice(&23u32.to_le_bytes());
    let mut iq = ModelFiles::from_dir(&fixtures("ask-compat").join("wide")).unwrap();
    iq.weights = dir.path().join("model-iq4_xs.gguf");
    std::fs::write(&iq.weights, bytes).unwrap();
    let e = Decoder::load(&iq, &Device::Cpu).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("model-iq4_xs.gguf") && e.contains("IQ4_XS") && e.contains("Q4_K_M"), "{e}");
    // candle-transformers' unpadded models (a cross-check) do not scale rope: refused, not run unscaled.
    let files = ModelFiles::from_dir(&fixtures("ask-compat").join("rope-yarn")).unwrap();
    let e = Decoder::load_with(&files, &Device::Cpu, false).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("rope_type 'yarn'") && e.contains("padded"), "{e}");
}

/// `--dtype bf16` answers into its own store folder, as transformers in bf16; with `--gguf` too.
#[test]
fn cli_ask_dtype_bf16_keeps_its_answers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let h = write(dir.path(), "h.csv", "ticker,published_at,headline\nAAPL,2024-01-02,Apple beats estimates\n");
    let q = write(dir.path(), "q.toml", "[[ask.question]]\nname = \"good\"\nprompt = \"Good news? {headline}\"\n");
    let (model, store) = (fixtures("ask-compat").join("bf16"), dir.path().join("store"));
    for extra in [&[][..], &["--dtype", "bf16"][..]] {
        let out = cli_ask(&model, &q, &h, &store, extra);
        assert!(out.status.success() && out.stdout.contains("1 answered"), "{}{}", out.stdout, out.stderr);
    }
    let folders = signalkit::encode::store::Store::models(&store).unwrap();
    let mut dtypes: Vec<String> = folders.iter().map(|(_, k)| k.dtype.clone()).collect();
    dtypes.sort();
    assert_eq!(dtypes, ["bf16", "f32"]);
    // A GGUF file in bf16: dequantised, cast, and stored apart from its f32 answers.
    let (wide, gguf_store) = (fixtures("ask-compat").join("wide"), dir.path().join("gguf-store"));
    let gguf = wide.join("model-q4_k_m.gguf");
    for extra in [&["--gguf", gguf.to_str().unwrap()][..], &["--dtype", "bf16", "--gguf", gguf.to_str().unwrap()][..]] {
        let out = cli_ask(&wide, &q, &h, &gguf_store, extra);
        assert!(out.status.success() && out.stdout.contains("1 answered"), "{}{}", out.stdout, out.stderr);
    }
    let folders = signalkit::encode::store::Store::models(&gguf_store).unwrap();
    let mut dtypes: Vec<String> = folders.iter().map(|(_, k)| k.dtype.clone()).collect();
    dtypes.sort();
    assert_eq!(dtypes, ["bf16", "f32"]);
}

impl CompatRuns {
    /// The largest |Δp| against a GGUF file's reference in compat.json's "gguf" (`prefix`: "" for
    /// f32, "bf16_" or "f16_"): alone, in left-padded batches and through the prefix cache.
    fn worst_vs_file(&self, quant: &str, prefix: &str) -> f32 {
        let entry = &self.gguf[quant];
        let list = |field: &str| -> Vec<Vec<f32>> { entry[field].as_array().unwrap().iter().map(floats).collect() };
        let (alone, batched) = (list(&format!("{prefix}probs")), list(&format!("{prefix}batched_probs")));
        let first: Vec<Vec<f32>> = self.first.iter().map(|&i| alone[i].clone()).collect();
        max_diff(&self.alone, &alone).max(max_diff(&self.batched, &batched)).max(max_diff(&self.cached, &first))
    }
}

/// GGUF files written by llama.cpp's own Python writer (PyPI gguf, as convert_hf_to_gguf.py and
/// llama.cpp's quantiser write them; scripts/fixtures/make_ask_compat.py) run in the padded
/// forward and answer, alone, in left-padded batches and through the prefix cache, as
/// transformers does on what the file holds (within 1e-5): for q4_k_m (Q4_K with Q6_K in the
/// embeddings, the last layer's attn_v and ffn_down, by llama.cpp's mixture rule) transformers'
/// own GGUF loader, for the rest the weights gguf-py dequantises. Against transformers' f32
/// answers on the unquantised checkpoint, what quantisation costs is bounded per type, a little
/// above what transformers itself measures (the fixture's "max_vs_f32" and "mean_vs_f32").
#[test]
fn gguf_files_from_llama_cpp_writer_match_transformers() {
    // (variant, file, candle's names of its matrix types, max and mean |Δp| allowed vs transformers' f32 answers)
    let cases: [(&str, &str, &[&str], f32, f32); 10] = [
        ("template-jinja", "f32", &["f32"], 1e-5, 1e-5),
        ("template-jinja", "q8_0", &["q8_0"], 0.03, 0.01),
        ("bos-twice", "f32", &["f32"], 1e-5, 1e-5),
        ("bos-twice", "q8_0", &["q8_0"], 0.05, 0.02),
        ("mistral", "f32", &["f32"], 1e-5, 1e-5),
        ("wide", "q8_0", &["q8_0"], 0.04, 0.01),
        ("wide", "q5_0", &["q5_0"], 0.35, 0.08),
        ("wide", "q4_0", &["q4_0"], 0.35, 0.08),
        ("wide", "q4_k", &["q4k"], 0.5, 0.07),
        ("wide", "q4_k_m", &["q4k", "q6k"], 0.3, 0.05),
    ];
    let mut failed = Vec::new();
    for (variant, quant, types, max_f32, mean_f32) in cases {
        let dir = fixtures("ask-compat").join(variant);
        let mut files = ModelFiles::from_dir(&dir).unwrap();
        files.weights = dir.join(format!("model-{quant}.gguf"));
        let held = signalkit::ask::gguf::dtypes(&files.weights).unwrap();
        assert!(types.iter().all(|t| held.split(", ").any(|h| h == *t)), "{quant}: {held}");
        let runs = compat_runs(&dir, &files, candle_core::DType::F32).unwrap();
        let vs_file = runs.worst_vs_file(quant, "");
        let diffs: Vec<f32> = runs
            .alone
            .iter()
            .zip(&runs.items)
            .flat_map(|(g, it)| g.iter().zip(floats(&it["probs"])).map(|(a, b)| (a - b).abs()).collect::<Vec<_>>())
            .collect();
        let (max, mean) = (runs.worst("probs", "batched_probs"), diffs.iter().sum::<f32>() / diffs.len() as f32);
        let source = runs.gguf[quant]["source"].as_str().unwrap_or_default().to_string();
        eprintln!(
            "{variant} GGUF {quant} ({held}): alone/batched/prefix vs transformers on {source} {vs_file:.1e}; \
             vs transformers f32 |Δp| max {max:.2e}, mean {mean:.2e}"
        );
        if !(vs_file < 1e-5 && max < max_f32 && mean < mean_f32) {
            failed.push(format!("{variant} {quant}: vs_file {vs_file} max {max} mean {mean}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// `--dtype bf16` (or f16) with a GGUF file: the q4_k_m file dequantised, cast to bf16 and computed
/// in it answers as transformers' own GGUF loader in bf16 does (within 2e-3, the matrix's bf16
/// tolerance), alone, batched and through the prefix cache.
#[test]
fn gguf_q4_k_m_in_bf16_and_f16_matches_transformers() {
    let dir = fixtures("ask-compat").join("wide");
    let mut files = ModelFiles::from_dir(&dir).unwrap();
    files.weights = dir.join("model-q4_k_m.gguf");
    for (dtype, prefix) in [(candle_core::DType::BF16, "bf16_"), (candle_core::DType::F16, "f16_")] {
        let runs = compat_runs(&dir, &files, dtype).unwrap();
        let (vs_file, vs_f32) = (runs.worst_vs_file("q4_k_m", prefix), runs.worst_vs_file("q4_k_m", ""));
        eprintln!(
            "wide q4_k_m in {dtype:?}: vs transformers' GGUF loader in {dtype:?} {vs_file:.1e}, vs its f32 {vs_f32:.1e}"
        );
        assert!(vs_file < 2e-3, "{dtype:?}: {vs_file}");
    }
}
