//! Ask: a local decoder LLM answers fixed YES/NO/UNKNOWN questions about each headline; the
//! answer probabilities become features.
//!
//! One forward pass per (headline, question), no sampling: the question is filled in
//! (`{headline}`, `{ticker}`, `{company}`), rendered with the checkpoint's chat template
//! (`add_generation_prompt`), and the softmax over the answer words' first tokens at the answer
//! position gives p_yes, p_no and p_unknown; score = p_yes − p_no. Answers go to the encode
//! store's machinery ([`crate::encode::store`]): one folder per (model, question, answer words),
//! keyed by the headline text, resumable and safe for concurrent runs.

pub mod fused;
pub mod gguf;
pub mod model;
pub mod names;
pub mod padded;
pub mod rope;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::data::headlines::{HeadlineOptions, Headlines};
use crate::encode::hub::ModelSource;
use crate::encode::model::device;
use crate::encode::shard::Shard;
use crate::encode::store::{Encoded, ModelKey, Store, StoreQuery, key, normalise};
use crate::error::{Error, Result};
use model::{Decoder, Template};
use names::Names;

/// The answer columns of every question, in answer-word order: p_yes, p_no, p_unknown.
pub const LABELS: [&str; 3] = ["yes", "no", "unknown"];

/// The file in each question's store folder that says which question it answers.
pub const QUESTION_FILE: &str = "question.json";

/// One fixed question (`[[ask.question]]` in the questions TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Column-friendly name: features are `ask_<name>_score`, `ask_<name>_p_yes`, …
    pub name: String,
    /// The question, with `{headline}` and optionally `{ticker}` and `{company}`.
    pub prompt: String,
    /// The yes, no and unknown words, in that order (default YES, NO, UNKNOWN).
    #[serde(default = "default_answers")]
    pub answers: Vec<String>,
}

fn default_answers() -> Vec<String> {
    ["YES", "NO", "UNKNOWN"].map(str::to_string).to_vec()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionsFile {
    ask: AskTable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskTable {
    question: Vec<Question>,
}

/// The placeholders a prompt may use.
const PLACEHOLDERS: [&str; 3] = ["headline", "ticker", "company"];

impl Question {
    /// The `{name}` placeholders in the prompt, in order of appearance.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.prompt.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            out.push(rest[open + 1..open + close].to_string());
            rest = &rest[open + close + 1..];
        }
        out
    }

    /// Whether the filled prompt depends on more than the headline.
    pub fn uses_ticker(&self) -> bool {
        self.placeholders().iter().any(|p| p == "ticker" || p == "company")
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(Error::input(path, format!("question '{}': {m}", self.name)));
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad("name must be lowercase letters, digits and _ (it names feature columns)".into());
        }
        let found = self.placeholders();
        if let Some(p) = found.iter().find(|p| !PLACEHOLDERS.contains(&p.as_str())) {
            return bad(format!("unknown placeholder {{{p}}}: use {{headline}}, {{ticker}} or {{company}}"));
        }
        if !found.iter().any(|p| p == "headline") {
            return bad("the prompt must contain {headline}".into());
        }
        if self.answers.len() != 3 || self.answers.iter().any(|a| a.trim().is_empty()) {
            return bad("answers must be three words: yes, no, unknown (e.g. [\"YES\", \"NO\", \"UNKNOWN\"])".into());
        }
        Ok(())
    }

    /// The user message for one headline: {company} is the company's name (`--names`), else
    /// the ticker. With `anonymise`, {ticker} and {company} read "the company", and so do the
    /// ticker and the company's name (as given, and without a legal suffix such as "Inc.")
    /// wherever they stand as whole words in the headline.
    pub fn fill(&self, headline: &str, ticker: &str, company: Option<&str>, anonymise: bool) -> String {
        let (ticker_text, company_text, headline) = if anonymise {
            let mut h = replace_word(headline, ticker, ANONYMOUS);
            for name in company.map(company_names).unwrap_or_default() {
                h = replace_word(&h, name, ANONYMOUS);
            }
            (ANONYMOUS, ANONYMOUS, h)
        } else {
            (ticker, company.unwrap_or(ticker), headline.to_string())
        };
        self.prompt.replace("{ticker}", ticker_text).replace("{company}", company_text).replace("{headline}", &headline)
    }

    /// The text this question's store keys on: the normalised headline, preceded by the ticker
    /// and a unit separator when the prompt names it, and by the company's name too when
    /// {company} is filled with one (so different names never share an answer).
    pub fn key_text(&self, headline: &str, ticker: &str, company: Option<&str>) -> String {
        let named = company.filter(|_| self.placeholders().iter().any(|p| p == "company"));
        match (self.uses_ticker(), named) {
            (false, _) => headline.to_string(),
            (true, None) => format!("{ticker}\u{1f}{headline}"),
            (true, Some(name)) => format!("{ticker}\u{1f}{name}\u{1f}{headline}"),
        }
    }
}

/// What `--anonymise` puts in place of the company.
pub const ANONYMOUS: &str = "the company";

/// Legal-form words a headline usually leaves off a company's name.
const LEGAL_SUFFIXES: [&str; 16] = [
    "Inc.",
    "Inc",
    "Corp.",
    "Corp",
    "Corporation",
    "Co.",
    "Ltd.",
    "Ltd",
    "plc",
    "PLC",
    "AG",
    "SA",
    "S.A.",
    "NV",
    "N.V.",
    "SE",
];

/// The ways a headline may write a company's name: the name as given, and without a trailing
/// legal-form word (and its comma), longest first.
fn company_names(name: &str) -> Vec<&str> {
    let name = name.trim();
    let short = LEGAL_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|rest| rest.ends_with(' ')))
        .map(|rest| rest.trim_end().trim_end_matches(',').trim_end())
        .filter(|rest| !rest.is_empty());
    [Some(name), short].into_iter().flatten().filter(|n| !n.is_empty()).collect()
}

/// `text` with every whole-word occurrence of `word` (not inside a longer run of letters, digits
/// or `_`) replaced by `by`.
pub fn replace_word(text: &str, word: &str, by: &str) -> String {
    if word.is_empty() {
        return text.to_string();
    }
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let (mut out, mut rest) = (String::with_capacity(text.len()), text);
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back().or_else(|| out.chars().next_back());
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        out.push_str(if is_word(before) || is_word(after) { word } else { by });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Reads and checks the questions file (`[[ask.question]] name, prompt, answers`).
pub fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file: QuestionsFile = toml::from_str(&text)
        .map_err(|e| Error::input(path, format!("not a questions file ([[ask.question]] name, prompt): {e}")))?;
    let mut names = HashSet::new();
    for q in &file.ask.question {
        q.check(path)?;
        if !names.insert(q.name.clone()) {
            return Err(Error::input(path, format!("question name '{}' appears twice: names must differ", q.name)));
        }
    }
    if file.ask.question.is_empty() {
        return Err(Error::input(path, "no [[ask.question]] entries"));
    }
    Ok(file.ask.question)
}

/// What a question's store folder holds, written beside its shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionRecord {
    /// The question as asked.
    pub question: Question,
    /// The model's id and file fingerprint.
    pub model: String,
    /// Fingerprint of the model's files.
    pub model_fingerprint: String,
    /// The chat template used ("" for the plain `User: …\nAssistant:` fallback).
    pub template: String,
    /// Company and ticker hidden from the model (`--anonymise`).
    #[serde(default)]
    pub anonymise: bool,
    /// The model's training-data cutoff as the user stated it (YYYY-MM-DD): headlines before
    /// it may be answered with knowledge of what followed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// Content hash of the `--names` file when it shaped the prompts ({company}, or the names
    /// `--anonymise` hid): part of the question's identity, so other names are other answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
}

/// The store identity of a question under a model (and the `--names` file, when it shapes the
/// prompts): the same key means the same numbers.
pub fn question_key(
    decoder: &Decoder,
    q: &Question,
    opts: &AskOptions,
    names: Option<&Names>,
) -> (ModelKey, QuestionRecord) {
    let template = match &decoder.template {
        Template::Jinja { source, bos, eos } => format!("{source}\u{1f}{bos}\u{1f}{eos}"),
        Template::Plain => String::new(),
    };
    let record = QuestionRecord {
        question: q.clone(),
        model: decoder.id.clone(),
        model_fingerprint: decoder.fingerprint.clone(),
        template,
        anonymise: opts.anonymise,
        knowledge_cutoff: opts.knowledge_cutoff.clone(),
        names: names.filter(|_| opts.anonymise || q.placeholders().iter().any(|p| p == "company")).map(Names::hash),
    };
    let version = if opts.anonymise { "ask-v1-anonymised" } else { "ask-v1" };
    let base = (&record.model_fingerprint, &record.template, &q.prompt, &q.answers, version);
    let identity = match &record.names {
        None => serde_json::to_vec(&base),
        Some(h) => serde_json::to_vec(&(base, h)),
    }
    .expect("serialisable");
    let key = ModelKey {
        id: format!("{}#ask-{}", decoder.id, q.name),
        fingerprint: format!("{:032x}", xxh3_128(&identity)),
        max_len: 0,
        labels: LABELS.map(str::to_string).to_vec(),
        dtype: dtype_name(decoder.dtype).into(),
    };
    (key, record)
}

/// Everything `signalkit ask` needs.
#[derive(Debug, Clone)]
pub struct AskArgs {
    /// The decoder checkpoint.
    pub source: ModelSource,
    /// Questions TOML.
    pub questions: PathBuf,
    /// Headlines file (CSV, Parquet or JSON Lines).
    pub headlines: PathBuf,
    /// How to read it.
    pub headline_options: HeadlineOptions,
    /// Store folder (one sub-folder per question).
    pub store: PathBuf,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Answers per shard (the most a killed run can lose).
    pub shard_size: usize,
    /// Prompts per forward pass (left-padded).
    pub batch_size: usize,
    /// Anonymising and the recorded knowledge cutoff.
    pub options: AskOptions,
    /// Answer only this shard's texts ([`Shard::keeps`] on each question's key text); `None`:
    /// every text.
    pub shard: Option<Shard>,
    /// Compute the question's shared prompt prefix once and reuse its keys and values for every
    /// headline (exact: the same numbers within float rounding; off only to measure it).
    pub prefix_cache: bool,
    /// Weights from this GGUF file (a quantised Qwen2, Qwen3, Llama or Mistral, dequantised into
    /// the padded forward) instead of the checkpoint's safetensors; config, tokenizer and chat
    /// template still from the checkpoint.
    pub gguf: Option<PathBuf>,
    /// `ticker,name` file: {company} becomes the headline ticker's company name (a ticker not in
    /// it: the ticker, counted in the summary).
    pub names: Option<PathBuf>,
}

/// Options that shape (anonymise, dtype) or annotate (knowledge cutoff) a question's answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AskOptions {
    /// Hide the company: {ticker}, {company}, and the ticker and `--names` name in the headline
    /// read "the company".
    pub anonymise: bool,
    /// The model's training-data cutoff (YYYY-MM-DD), recorded in each question's folder.
    pub knowledge_cutoff: Option<String>,
    /// What the forward computes in (a separate store folder per dtype).
    pub dtype: AskDtype,
}

/// `--dtype`: what the decoder computes in. f32 (the default) is exact whatever the weights;
/// bf16 and f16 compute as transformers does in that dtype (half the memory, faster on GPU).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AskDtype {
    /// 32-bit floats.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// float16.
    F16,
}

impl AskDtype {
    /// candle's dtype.
    pub fn candle(self) -> candle_core::DType {
        match self {
            AskDtype::F32 => candle_core::DType::F32,
            AskDtype::Bf16 => candle_core::DType::BF16,
            AskDtype::F16 => candle_core::DType::F16,
        }
    }
}

impl fmt::Display for AskDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(dtype_name(self.candle()))
    }
}

impl AskOptions {
    /// Refuses a knowledge cutoff that is not a YYYY-MM-DD date.
    pub fn check(&self) -> Result<()> {
        match &self.knowledge_cutoff {
            Some(d) if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() => Err(Error::Config(format!(
                "--knowledge-cutoff {d:?} is not a date: write it as YYYY-MM-DD (e.g. 2024-06-30)"
            ))),
            _ => Ok(()),
        }
    }
}

/// What an ask run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AskSummary {
    /// Headlines read.
    pub headlines: usize,
    /// Questions asked.
    pub questions: usize,
    /// (question, text) pairs already stored.
    pub already_stored: usize,
    /// Answered by this run.
    pub answered: usize,
    /// Seconds spent answering.
    pub seconds: f64,
    /// Each question's folder in the store.
    pub store_dirs: Vec<PathBuf>,
    /// The shard this run answered, if sharded.
    pub shard: Option<Shard>,
    /// (question, text) pairs left to the other shards.
    pub other_shards: usize,
    /// Headline tickers missing from `--names` that a {company} question named by ticker.
    pub unnamed: usize,
}

impl fmt::Display for AskSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} headlines × {} questions: {} already stored, {} answered in {:.2}s into {} folders{}{}",
            self.headlines,
            self.questions,
            self.already_stored,
            self.answered,
            self.seconds,
            self.store_dirs.len(),
            match self.shard {
                Some(s) => format!(" (shard {s}: {} left to the other shards)", self.other_shards),
                None => String::new(),
            },
            match self.unnamed {
                0 => String::new(),
                n => format!("; {n} tickers not in --names were named by their ticker"),
            }
        )
    }
}

/// One distinct (ticker, normalised headline) pair of a headlines file.
#[derive(Debug, Clone)]
struct Pair {
    ticker: String,
    headline: String,
    /// The 0-based data row where it first appears.
    row: usize,
}

/// The distinct (ticker, normalised headline) pairs of a headlines file, in file order.
fn distinct_pairs(headlines: &Headlines) -> Vec<Pair> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (row, (t, h)) in headlines.tickers.iter().zip(headlines.text.iter()).enumerate() {
        let (Some(t), Some(h)) = (t, h) else { continue };
        let (ticker, headline) = (t.to_string(), normalise(h));
        if seen.insert((ticker.clone(), headline.clone())) {
            out.push(Pair { ticker, headline, row });
        }
    }
    out
}

/// One answer still to compute.
struct Todo {
    /// Store key.
    key: String,
    /// The text the store keys on.
    text: String,
    /// The rendered prompt.
    prompt: String,
    /// The pair it asks about.
    pair: usize,
}

/// A prompt longer than the model's context: never cut, never asked.
#[derive(Debug, Clone)]
struct TooLong {
    question: String,
    pair: usize,
    tokens: usize,
}

/// How many of a question's distinct texts are stored already and left to other shards.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    stored: usize,
    other_shards: usize,
}

/// The pairs a question's store lacks in this shard, rendered (each key once), and the counts.
fn missing(
    store: &Store,
    mkey: &ModelKey,
    q: &Question,
    pairs: &[Pair],
    args: &AskArgs,
    template: &Template,
    names: Option<&Names>,
) -> Result<(Vec<Todo>, Counts)> {
    let (mut seen, mut todo, mut counts) = (HashSet::new(), Vec::new(), Counts::default());
    for (i, Pair { ticker, headline, .. }) in pairs.iter().enumerate() {
        let company = names.and_then(|n| n.get(ticker));
        let text = q.key_text(headline, ticker, company.filter(|_| !args.options.anonymise));
        let k = key(mkey, &text);
        if !seen.insert(k.clone()) {
            continue;
        }
        if args.shard.is_some_and(|s| !s.keeps(&text)) {
            counts.other_shards += 1;
        } else if store.contains(&k) {
            counts.stored += 1;
        } else {
            let prompt = template.render(&q.fill(headline, ticker, company, args.options.anonymise))?;
            todo.push(Todo { key: k, text, prompt, pair: i });
        }
    }
    Ok((todo, counts))
}

/// Splits off the prompts longer than the model's context, before any forward pass, with a
/// warning (they are listed again when the run ends).
fn within_context(decoder: &Decoder, q: &Question, todo: Vec<Todo>) -> Result<(Vec<Todo>, Vec<TooLong>)> {
    let (mut fits, mut long) = (Vec::with_capacity(todo.len()), Vec::new());
    for t in todo {
        let tokens = decoder.token_ids(&t.prompt)?.len();
        if tokens > decoder.context() {
            long.push(TooLong { question: q.name.clone(), pair: t.pair, tokens });
        } else {
            fits.push(t);
        }
    }
    if !long.is_empty() {
        eprintln!(
            "warning: question '{}': {} prompt(s) longer than the model's context of {} tokens: not asked (listed when the run ends); answering the others",
            q.name,
            long.len(),
            decoder.context()
        );
    }
    Ok((fits, long))
}

/// What one question's run did.
struct Asked {
    counts: Counts,
    answered: usize,
    dir: PathBuf,
    too_long: Vec<TooLong>,
}

/// Answers one question for every pair its store lacks whose prompt fits the model's context,
/// shortest prompts first in batches of `batch_size`, one shard per `shard_size` answers.
fn ask_question(
    decoder: &mut Decoder,
    q: &Question,
    pairs: &[Pair],
    args: &AskArgs,
    names: Option<&Names>,
) -> Result<Asked> {
    let (mkey, record) = question_key(decoder, q, &args.options, names);
    let (mut store, _) = Store::open(&args.store, &mkey)?;
    let json = serde_json::to_vec_pretty(&record).expect("serialisable");
    crate::data::write_bytes_atomic(&store.dir().join(QUESTION_FILE), &json)?;
    if let Some(s) = args.shard {
        s.record(store.dir())?;
    }
    let answer_ids = decoder.answer_tokens(&q.answers)?;
    let (todo, counts) = missing(&store, &mkey, q, pairs, args, &decoder.template, names)?;
    let (todo, too_long) = within_context(decoder, q, todo)?;
    if args.prefix_cache {
        decoder.set_prefix(todo.iter().map(|t| t.prompt.as_str()))?;
    } else {
        decoder.clear_prefix();
    }
    let mut order: Vec<usize> = (0..todo.len()).collect();
    order.sort_by_key(|&i| (todo[i].prompt.len(), i));
    for shard in order.chunks(args.shard_size.max(1)) {
        let mut rows = Vec::with_capacity(shard.len());
        for batch in shard.chunks(args.batch_size.max(1)) {
            let prompts: Vec<String> = batch.iter().map(|&i| todo[i].prompt.clone()).collect();
            for (&i, probs) in batch.iter().zip(decoder.answer_batch(&prompts, &answer_ids)?) {
                rows.push(Encoded { key: todo[i].key.clone(), text: todo[i].text.clone(), probs, cls: Vec::new() });
            }
        }
        store.write_shard(&rows)?;
    }
    Ok(Asked { counts, answered: todo.len(), dir: store.dir().to_path_buf(), too_long })
}

/// The refusal of the prompts longer than the model's context, naming each one's question,
/// headline row and length (the first ten), after every other answer was stored.
fn too_long_error(args: &AskArgs, headlines: &Headlines, pairs: &[Pair], long: &[TooLong], context: usize) -> Error {
    const SHOWN: usize = 10;
    let lines: Vec<String> = long
        .iter()
        .take(SHOWN)
        .map(|t| {
            let p = &pairs[t.pair];
            let start: String = headlines.text.get(p.row).unwrap_or("").chars().take(40).collect();
            format!(
                "question '{}', {} (ticker {}, \"{start}…\"): {} tokens",
                t.question,
                crate::data::rows_text(&args.headlines, &[p.row + 1]),
                p.ticker,
                t.tokens
            )
        })
        .collect();
    let more = long.len().saturating_sub(SHOWN);
    Error::input(
        &args.headlines,
        format!(
            "{} longer than the model's context of {context} tokens and not asked (a prompt is never cut: its end is the \
             question):\n  {}{}\nShorten or drop those headlines (or use a model with a longer context) and run again: every \
             other answer is stored, so only those are asked",
            if long.len() == 1 { "1 prompt is".to_string() } else { format!("{} prompts are", long.len()) },
            lines.join("\n  "),
            if more > 0 { format!("\n  … and {more} more") } else { String::new() }
        ),
    )
}

/// The store's name for a compute dtype (`f32`, `bf16`, `f16`).
pub fn dtype_name(dtype: candle_core::DType) -> &'static str {
    match dtype {
        candle_core::DType::BF16 => "bf16",
        candle_core::DType::F16 => "f16",
        _ => "f32",
    }
}

/// Reads the questions and headlines and fills the store with every answer it lacks.
pub fn ask_files(args: &AskArgs) -> Result<AskSummary> {
    args.options.check()?;
    let questions = read_questions(&args.questions)?;
    let names = args.names.as_deref().map(Names::read).transpose()?;
    let mut files = args.source.resolve()?;
    if let Some(g) = &args.gguf {
        files.weights = g.clone();
    }
    let mut decoder = Decoder::load_as(&files, &device(&args.device)?, true, args.options.dtype.candle())?;
    let headlines = Headlines::read(&args.headlines, &args.headline_options)?;
    let pairs = distinct_pairs(&headlines);
    let clock = Instant::now();
    let mut summary = AskSummary {
        headlines: headlines.len(),
        questions: questions.len(),
        shard: args.shard,
        unnamed: unnamed(&questions, &pairs, names.as_ref()),
        ..AskSummary::default()
    };
    let mut too_long = Vec::new();
    for q in &questions {
        let asked = ask_question(&mut decoder, q, &pairs, args, names.as_ref())?;
        summary.already_stored += asked.counts.stored;
        summary.other_shards += asked.counts.other_shards;
        summary.answered += asked.answered;
        summary.store_dirs.push(asked.dir);
        too_long.extend(asked.too_long);
    }
    if !too_long.is_empty() {
        return Err(too_long_error(args, &headlines, &pairs, &too_long, decoder.context()));
    }
    summary.seconds = clock.elapsed().as_secs_f64();
    Ok(summary)
}

/// Distinct headline tickers that `names` lacks, when a question fills {company} (0 without a
/// names file: every ticker is then named by itself, as asked).
fn unnamed(questions: &[Question], pairs: &[Pair], names: Option<&Names>) -> usize {
    let Some(names) = names else { return 0 };
    if !questions.iter().any(|q| q.placeholders().iter().any(|p| p == "company")) {
        return 0;
    }
    pairs.iter().map(|p| p.ticker.as_str()).filter(|t| names.get(t).is_none()).collect::<HashSet<_>>().len()
}

/// One question's stored answers, for features: p_yes, p_no, p_unknown per normalised headline.
#[derive(Debug, Clone)]
pub struct Answers {
    /// The question.
    pub question: Question,
    /// Its store identity (recorded in the features' provenance).
    pub key: ModelKey,
    /// Answer probabilities by normalised headline text, or by `ticker␟headline` for a question
    /// that names the ticker or company (see [`Answers::get`]).
    pub by_text: HashMap<String, [f32; 3]>,
    /// The model's training-data cutoff recorded with the answers (`--knowledge-cutoff`).
    pub knowledge_cutoff: Option<String>,
}

impl Answers {
    /// The answer about a headline (normalised) published for `ticker`.
    pub fn get(&self, ticker: &str, headline: &str) -> Option<[f32; 3]> {
        if self.question.uses_ticker() {
            self.by_text.get(&format!("{ticker}\u{1f}{headline}")).copied()
        } else {
            self.by_text.get(headline).copied()
        }
    }

    /// The latest knowledge cutoff recorded among `answers` (dates compare as YYYY-MM-DD text).
    pub fn latest_cutoff(answers: &[Answers]) -> Option<String> {
        answers.iter().filter_map(|a| a.knowledge_cutoff.clone()).max()
    }

    /// p_yes − p_no of one entry.
    pub fn score(p: &[f32; 3]) -> f32 {
        p[0] - p[1]
    }
}

/// Every question folder under `root` (written by `signalkit ask`), with its answers; refuses
/// questions keyed by ticker (features look answers up by headline text) and repeated names.
pub fn read_answers(root: &Path) -> Result<Vec<Answers>> {
    let mut out: Vec<Answers> = Vec::new();
    for (dir, mkey) in Store::models(root)? {
        let path = dir.join(QUESTION_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let rec: QuestionRecord =
            serde_json::from_str(&text).map_err(|e| Error::input(&path, format!("invalid: {e}")))?;
        let (q, knowledge_cutoff) = (rec.question, rec.knowledge_cutoff);
        if out.iter().any(|a| a.question.name == q.name) {
            return Err(Error::input(
                root,
                format!(
                    "question '{}' was answered by more than one model, wording, dtype or --names file here: keep one folder per name",
                    q.name
                ),
            ));
        }
        let (store, _) = Store::find_by(root, &StoreQuery::exactly(&mkey))?;
        let table = answer_table(&store)?;
        let by_text = if q.uses_ticker() { by_ticker_and_headline(table, &q.name, &dir)? } else { table };
        out.push(Answers { by_text, question: q, key: mkey, knowledge_cutoff });
    }
    if out.is_empty() {
        return Err(Error::input(root, "no answers in this store: run signalkit ask --store on it first"));
    }
    out.sort_by(|a, b| a.question.name.cmp(&b.question.name));
    Ok(out)
}

/// A ticker question's answers keyed `ticker␟headline`, whatever company name filled the
/// prompt; one (ticker, headline) answered under two names with different answers is refused.
fn by_ticker_and_headline(
    table: HashMap<String, [f32; 3]>,
    name: &str,
    dir: &Path,
) -> Result<HashMap<String, [f32; 3]>> {
    let mut out: HashMap<String, [f32; 3]> = HashMap::with_capacity(table.len());
    for (text, p) in table {
        let parts: Vec<&str> = text.split('\u{1f}').collect();
        let key = format!("{}\u{1f}{}", parts[0], parts[parts.len() - 1]);
        if out.insert(key, p).is_some_and(|q| q != p) {
            return Err(Error::input(
                dir,
                format!(
                    "question '{name}' was answered for ticker {} under two company names: ask it into a store with one --names file",
                    parts[0]
                ),
            ));
        }
    }
    Ok(out)
}

/// A question folder's rows: text → (p_yes, p_no, p_unknown).
fn answer_table(store: &Store) -> Result<HashMap<String, [f32; 3]>> {
    let df = store.read_all()?;
    let fail = |e: polars::prelude::PolarsError| Error::table(store.dir(), e);
    let text = df.column("text").and_then(|c| c.str().cloned()).map_err(fail)?;
    let col = |name: &str| -> Result<Vec<f32>> {
        let c = df.column(name).and_then(|c| c.cast(&polars::prelude::DataType::Float32)).map_err(fail)?;
        Ok(c.f32().map_err(fail)?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
    };
    let (y, n, u) = (col("p_yes")?, col("p_no")?, col("p_unknown")?);
    Ok(text.iter().enumerate().filter_map(|(i, t)| Some((t?.to_string(), [y[i], n[i], u[i]]))).collect())
}
