//! Features: per row, the latest visible headline's encoder outputs (class probabilities,
//! sentiment, [CLS] embedding) and sentiment aggregates over the look-back window.
//!
//! The join's options come from the rows file's provenance (users pass them once, to the join);
//! window membership is re-derived with the join's own point-in-time code, and the result must
//! name the same latest headline as the rows file. The output records the join, the encoder and
//! the PCA, so a model can refuse features made any other way.

use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use polars::prelude::*;
use rayon::prelude::*;

use crate::ask::{Answers, read_answers};
use crate::data::headlines::{HeadlineOptions, Headlines};
use crate::data::targets::Targets;
use crate::data::tickers::TickerRule;
use crate::data::time::{US_PER_DAY, Zone};
use crate::data::{file_hash, guard_output, str_values, write_parquet_with};
use crate::encode::store::{ModelKey, Store, StoreQuery, normalise, prob_columns};
use crate::error::{Error, Result};
use crate::model::FeatureMatrix;
use crate::pit::{Visibility, Visible, Window, located_headlines, redo_join};
use crate::provenance::{InputFile, JoinRecord, PcaRecord, Provenance, verify_unchanged};

/// Half-life, in days, of the exponentially decayed sentiment.
pub const HALF_LIFE_DAYS: f64 = 7.0;

/// Everything `signalkit features` needs.
#[derive(Debug, Clone)]
pub struct FeatureArgs {
    /// The join's output (its metadata says how it was joined).
    pub rows: PathBuf,
    /// Join options the user restated; each one given must equal the join's.
    pub restated: Restated,
    /// Store folder filled by `signalkit encode`.
    pub store: PathBuf,
    /// Which encoder's outputs (id, fingerprint, dtype, max_len); default: the only one in the store.
    pub encoder: StoreQuery,
    /// Output parquet.
    pub out: PathBuf,
    /// Replace the [CLS] columns by principal components (`pc_000…`).
    pub pca: Option<PcaOption>,
    /// Store filled by `signalkit ask`: adds `ask_<name>_{p_yes,p_no,p_unknown,score}` and the
    /// score's window aggregates (`ask_<name>_score_mean_7d`, …) per question.
    pub ask_store: Option<PathBuf>,
}

/// The join's options as restated to `features` (each `None`: not given). Rows written by
/// `signalkit join` record their options, so none is needed; rows without that record (another
/// tool, an older signalkit) are re-joined with these (defaults as for the join).
#[derive(Debug, Clone, Default)]
pub struct Restated {
    /// The headlines file, when it has moved since the join (its content must be the join's).
    pub headlines: Option<PathBuf>,
    /// Look-back window in days.
    pub window_days: Option<u32>,
    /// Cutoff offset in hours.
    pub cutoff_hours: Option<f64>,
    /// The feed's time zone.
    pub timezone: Option<Zone>,
    /// Ticker-map file.
    pub ticker_map: Option<PathBuf>,
    /// Ticker suffix rule.
    pub ticker_suffix: Option<String>,
    /// Headline ticker column.
    pub ticker_column: Option<String>,
    /// Headline time column.
    pub time_column: Option<String>,
    /// Headline text column.
    pub text_column: Option<String>,
}

impl Restated {
    /// The join record of rows without provenance: these options over the join's defaults.
    fn record(&self, rows: &Path) -> Result<JoinRecord> {
        let headlines = self.headlines.as_deref().ok_or_else(|| {
            Error::input(
                rows,
                "this file does not record how it was joined (not written by this signalkit's join): re-run signalkit join, or pass --headlines and the join's options",
            )
        })?;
        let defaults = HeadlineOptions::default();
        let opts = HeadlineOptions {
            ticker_column: self.ticker_column.clone().unwrap_or(defaults.ticker_column),
            time_column: self.time_column.clone().or(defaults.time_column),
            text_column: self.text_column.clone().unwrap_or(defaults.text_column),
            zone: self.timezone,
        };
        let d = Window::default();
        let window = Window {
            days: self.window_days.unwrap_or(d.days),
            cutoff_hours: self.cutoff_hours.unwrap_or(d.cutoff_hours),
        };
        let rule = self.ticker_suffix.clone().map(TickerRule::Suffix).unwrap_or_default();
        JoinRecord::new(rows, headlines, window, &opts, self.ticker_map.as_deref(), &rule)
    }

    /// Every restated option that differs from the join's record, as `(option, joined, given)`.
    fn conflicts(&self, rec: &JoinRecord) -> Result<Vec<(&'static str, String, String)>> {
        let mut c = Vec::new();
        let mut check = |name: &'static str, joined: String, given: Option<String>| {
            if let Some(g) = given.filter(|g| *g != joined) {
                c.push((name, joined, g));
            }
        };
        check("--window-days", rec.window_days.to_string(), self.window_days.map(|d| d.to_string()));
        check("--cutoff-hours", rec.cutoff_hours.to_string(), self.cutoff_hours.map(|h| h.to_string()));
        check(
            "--timezone",
            rec.timezone.clone().unwrap_or_else(|| "none".into()),
            self.timezone.map(|z| z.to_string()),
        );
        check(
            "--ticker-suffix",
            format!("{:?}", rec.ticker_suffix.as_deref().unwrap_or("none (a map)")),
            self.ticker_suffix.as_ref().map(|s| format!("{s:?}")),
        );
        check("--ticker-col", rec.ticker_column.clone(), self.ticker_column.clone());
        check("--time-col", rec.time_column.clone().unwrap_or_else(|| "default".into()), self.time_column.clone());
        check("--text-col", rec.text_column.clone(), self.text_column.clone());
        let map_hash = self.ticker_map.as_deref().map(file_hash).transpose()?;
        let joined_map =
            rec.ticker_map.as_ref().map_or("none".to_string(), |m| format!("{} (hash {})", m.path, m.xxh3));
        if let (Some(h), Some(p)) = (map_hash, &self.ticker_map)
            && rec.ticker_map.as_ref().is_none_or(|m| m.xxh3 != h)
        {
            c.push(("--ticker-map", joined_map, format!("{} (hash {h})", p.display())));
        }
        Ok(c)
    }
}

/// The join to redo: its record (from the rows' provenance, checked against what was restated)
/// and where its headlines are now.
fn resolve_join(rows: &Path, restated: &Restated) -> Result<(JoinRecord, PathBuf)> {
    let Some(rec) = Provenance::read(rows)?.and_then(|p| p.join) else {
        let rec = restated.record(rows)?;
        let path = PathBuf::from(&rec.headlines.path);
        return Ok((rec, path));
    };
    if let Some((name, joined, given)) = restated.conflicts(&rec)?.into_iter().next() {
        return Err(Error::input(
            rows,
            format!(
                "these rows were joined with {name} {joined} but features was given {given}: drop the option (features takes the join's options from the rows file) or re-run signalkit join with it"
            ),
        ));
    }
    let path = located_headlines(&rec, restated.headlines.as_deref())?;
    Ok((rec, path))
}

/// How to reduce the [CLS] embedding.
#[derive(Debug, Clone)]
pub enum PcaOption {
    /// Fit K components on the training eras (`data_type == train`, or Fridays up to `until`,
    /// YYYY-MM-DD), save the projection beside the output as `<out>.pca.json`.
    Fit {
        /// Components kept.
        k: usize,
        /// Last Friday fitted on, instead of data_type.
        until: Option<String>,
    },
    /// Apply a projection saved by an earlier fit (the live week uses the training fit).
    Apply(PathBuf),
}

impl PcaOption {
    /// The choice the PCA settings make: fit `fit` components (on Fridays up to `until`, else the
    /// training eras), else apply the projection saved at `apply`, else none.
    pub fn choose(fit: Option<usize>, until: Option<String>, apply: Option<PathBuf>) -> Option<PcaOption> {
        match (fit, apply) {
            (Some(k), _) => Some(PcaOption::Fit { k, until }),
            (None, Some(p)) => Some(PcaOption::Apply(p)),
            (None, None) => None,
        }
    }
}

/// A fit's mean, components and explained-variance shares.
pub type Fitted = (Vec<f64>, Vec<Vec<f64>>, Vec<f64>);

/// A fitted PCA projection of the [CLS] embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Encoder model id the embedding came from.
    pub model: String,
    /// Embedding width.
    pub width: usize,
    /// Mean embedding of the fit set.
    pub mean: Vec<f64>,
    /// Components, each of length `width`, by decreasing variance.
    pub components: Vec<Vec<f64>>,
    /// Share of the variance each component explains.
    pub explained: Vec<f64>,
    /// Distinct headlines fitted on.
    pub fitted_on: usize,
    /// Last Friday (YYYY-MM-DD) of the eras fitted on.
    pub last_fit_friday: String,
}

impl Pca {
    /// Fits `k` components on the rows of `x` (one embedding per row), with covariance + a
    /// symmetric eigendecomposition (nalgebra's, in f64); each component's largest entry is made
    /// positive.
    pub fn fit(x: ArrayView2<f32>, k: usize) -> Result<Fitted> {
        let (n, width) = x.dim();
        if n < 2 || k == 0 || k > width {
            return Err(Error::Config(format!("PCA: cannot fit {k} components on {n} embeddings of width {width}")));
        }
        let mut m = DMatrix::from_fn(n, width, |r, c| x[[r, c]] as f64);
        let mean: Vec<f64> = (0..width).map(|c| m.column(c).mean()).collect();
        for (c, mu) in mean.iter().enumerate() {
            m.column_mut(c).add_scalar_mut(-mu);
        }
        let cov = (m.transpose() * &m) / (n as f64 - 1.0);
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..width).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum::<f64>().max(f64::MIN_POSITIVE);
        let mut components = Vec::with_capacity(k);
        let mut explained = Vec::with_capacity(k);
        for &j in order.iter().take(k) {
            let mut v: Vec<f64> = eig.eigenvectors.column(j).iter().copied().collect();
            let big = v.iter().copied().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            components.push(v);
            explained.push(eig.eigenvalues[j].max(0.0) / total);
        }
        Ok((mean, components, explained))
    }

    /// The component scores of one embedding.
    pub fn project(&self, e: &[f32]) -> Vec<f32> {
        self.components
            .iter()
            .map(|v| v.iter().zip(e).zip(&self.mean).map(|((w, x), m)| w * (*x as f64 - m)).sum::<f64>() as f32)
            .collect()
    }

    /// Reads a saved projection.
    pub fn read(path: &Path) -> Result<Pca> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::input(path, format!("not a signalkit PCA file: {e}")))
    }
}

/// How a trained model's features were made, as far as `features` chooses it: the encoder's
/// store folder and the PCA projection to re-apply.
#[derive(Debug, Clone, Default)]
pub struct Like {
    /// Selects exactly the model's encoder.
    pub encoder: StoreQuery,
    /// The model's projection, checked unchanged.
    pub pca: Option<PcaOption>,
    /// The questions whose answers the model was trained on (`--ask-store` must hold them).
    pub ask: Vec<ModelKey>,
}

impl Like {
    /// `args` with what it leaves unset taken from the model (explicit options win; `predict`
    /// still refuses features that differ from the card); refused without an ask store when the
    /// model was trained on prompt answers.
    pub fn under(self, args: FeatureArgs) -> Result<FeatureArgs> {
        if args.ask_store.is_none() && !self.ask.is_empty() {
            let ids: Vec<&str> = self.ask.iter().map(|k| k.id.as_str()).collect();
            return Err(Error::Config(format!(
                "the model was trained on prompt answers ({}): pass --ask-store DIR (the training run's ask-store, after signalkit ask --store DIR on these headlines with the same model and questions)",
                ids.join(", ")
            )));
        }
        let q = args.encoder;
        let encoder = StoreQuery {
            id: q.id.or(self.encoder.id),
            fingerprint: q.fingerprint.or(self.encoder.fingerprint),
            dtype: q.dtype.or(self.encoder.dtype),
            max_len: q.max_len.or(self.encoder.max_len),
        };
        Ok(FeatureArgs { encoder, pca: args.pca.or(self.pca), ..args })
    }
}

/// Reads a trained model's card for `features --like` (a card without provenance, from an older
/// signalkit, gives nothing: the store's only model and no PCA, with a warning).
pub fn like_model(model: &Path) -> Result<Like> {
    let (_, card_path) = crate::model::model_paths(model);
    let text = std::fs::read_to_string(&card_path).map_err(|_| {
        Error::input(&card_path, "no model card here: pass the folder (or model.txt) written by signalkit train")
    })?;
    let card: crate::model::ModelCard =
        serde_json::from_str(&text).map_err(|e| Error::input(&card_path, format!("bad model card: {e}")))?;
    let Some(p) = card.provenance else {
        eprintln!(
            "warning: {}: the card does not say how the model's features were made (an older signalkit); retrain to have them checked",
            card_path.display()
        );
        return Ok(Like::default());
    };
    let pca = match &p.pca {
        Some(rec) => {
            let path = PathBuf::from(&rec.file.path);
            verify_unchanged(&path, &rec.file, "the PCA projection the model was trained with")?;
            Some(PcaOption::Apply(path))
        }
        None => None,
    };
    Ok(Like { encoder: p.encoder.as_ref().map(StoreQuery::exactly).unwrap_or_default(), pca, ask: p.ask })
}

/// Where a fitted projection is saved: `features.parquet` → `features.pca.json`.
pub fn pca_path(out: &Path) -> PathBuf {
    out.with_extension("pca.json")
}

/// Rows used to fit the PCA: `data_type == train`, or Fridays up to `until`.
fn pca_fit_rows(path: &Path, targets: &Targets, until: Option<&str>) -> Result<Vec<usize>> {
    if let Some(u) = until {
        let day = crate::data::time::parse_date_str(u)
            .map(crate::data::time::days_from_date)
            .ok_or_else(|| Error::Config(format!("--pca-fit-until {u:?}: use YYYY-MM-DD")))?;
        return Ok((0..targets.len()).filter(|&i| targets.fridays[i] <= day).collect());
    }
    let types = str_values(path, &targets.frame, "data_type").map_err(|_| {
        Error::input(path, "no data_type column to find the training eras for --pca: pass --pca-fit-until YYYY-MM-DD")
    })?;
    Ok((0..targets.len()).filter(|&i| types.get(i).is_some_and(|t| t.trim().eq_ignore_ascii_case("train"))).collect())
}

fn pca_record(path: &Path, p: &Pca) -> Result<PcaRecord> {
    Ok(PcaRecord {
        file: InputFile::of(path)?,
        components: p.components.len(),
        last_fit_friday: p.last_fit_friday.clone(),
    })
}

/// What a feature run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSummary {
    /// Rows written.
    pub rows: usize,
    /// Rows with a latest headline (the rest keep nulls).
    pub with_headline: usize,
    /// Feature columns added.
    pub features: usize,
    /// Model whose outputs were used.
    pub model: String,
}

impl std::fmt::Display for FeatureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, with, n, model) = (self.rows, self.with_headline, self.features, &self.model);
        write!(f, "{rows} rows ({with} with a headline), {n} features from {model}")
    }
}

/// Sentiment aggregates of one row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Aggregates {
    mean_7d: Option<f32>,
    mean_30d: Option<f32>,
    decayed: Option<f32>,
    min: Option<f32>,
    max: Option<f32>,
}

fn aggregate(items: &[(f64, f32)]) -> Aggregates {
    // items: (age in days, sentiment), every one inside the window.
    let mean = |days: f64| {
        let v: Vec<f32> = items.iter().filter(|(a, _)| *a <= days).map(|(_, s)| *s).collect();
        (!v.is_empty()).then(|| (v.iter().map(|&s| s as f64).sum::<f64>() / v.len() as f64) as f32)
    };
    let (mut wsum, mut wsent) = (0.0f64, 0.0f64);
    for (age, s) in items {
        let w = 0.5f64.powf(age / HALF_LIFE_DAYS);
        wsum += w;
        wsent += w * *s as f64;
    }
    Aggregates {
        mean_7d: mean(7.0),
        mean_30d: mean(30.0),
        decayed: (wsum > 0.0).then(|| (wsent / wsum) as f32),
        min: items.iter().map(|x| x.1).reduce(f32::min),
        max: items.iter().map(|x| x.1).reduce(f32::max),
    }
}

/// Builds the feature table and writes it atomically to `args.out`, with the join's, the
/// encoder's and the PCA's provenance in its metadata.
pub fn build_features(args: &FeatureArgs) -> Result<FeatureSummary> {
    let (join, headlines_path) = resolve_join(&args.rows, &args.restated)?;
    guard_outputs(args, &headlines_path)?;
    let (targets, headlines, vis) = redo_join(&args.rows, &join, &headlines_path)?;
    let (store, _) = Store::find_by(&args.store, &args.encoder)?;
    let encoded = Encoded::read(&store)?;
    let rows = RowEntries::resolve(&vis, &headlines, &encoded).map_err(|(missing, example)| {
        Error::input(
            &args.store,
            format!(
                "{missing} visible headlines are not in the store for model '{}' (e.g. {example:?}): run signalkit encode on {} first",
                encoded.model.id,
                headlines_path.display()
            ),
        )
    })?;
    let mut out = Columns { frame: targets.frame.clone(), path: &args.out, added: 0 };
    add_headline_columns(&mut out, &encoded, &rows)?;
    let pca = match &args.pca {
        None => None,
        Some(PcaOption::Apply(path)) => Some((apply_pca(path, &encoded)?, path.clone())),
        Some(PcaOption::Fit { k, until }) => {
            let fit_rows = pca_fit_rows(&args.rows, &targets, until.as_deref())?;
            let p = fit_pca(&encoded, &rows.latest, &fit_rows, &targets, *k)?;
            let json = serde_json::to_vec_pretty(&p).map_err(|e| Error::Config(e.to_string()))?;
            crate::data::write_bytes_atomic(&pca_path(&args.out), &json)?;
            Some((p, pca_path(&args.out)))
        }
    };
    add_embedding_columns(&mut out, &encoded, &rows.latest, pca.as_ref().map(|(p, _)| p))?;
    let (asked, knowledge_cutoff) = match &args.ask_store {
        Some(root) => {
            let answers = read_answers(root)?;
            (add_ask_columns(&mut out, root, &answers, &vis, &headlines)?, Answers::latest_cutoff(&answers))
        }
        None => (Vec::new(), None),
    };
    let provenance = Provenance {
        ask: asked,
        knowledge_cutoff,
        join: Some(join),
        rows: Some(InputFile::of(&args.rows)?),
        encoder: Some(encoded.model.clone()),
        pca: pca.map(|(p, path)| pca_record(&path, &p)).transpose()?,
        ..Provenance::new()
    };
    write_parquet_with(&mut out.frame, &args.out, Some(provenance.to_metadata()))?;
    Ok(FeatureSummary {
        rows: out.frame.height(),
        with_headline: rows.latest.iter().filter(|e| e.is_some()).count(),
        features: out.added,
        model: encoded.model.id,
    })
}

/// Refuses outputs (the table, and a PCA fit's `.pca.json`) that would replace an input.
fn guard_outputs(args: &FeatureArgs, headlines: &Path) -> Result<()> {
    let pca_from = match &args.pca {
        Some(PcaOption::Apply(p)) => Some(p.as_path()),
        _ => None,
    };
    let inputs: Vec<&Path> = [args.rows.as_path(), headlines].into_iter().chain(pca_from).collect();
    guard_output(&args.out, &inputs)?;
    if matches!(args.pca, Some(PcaOption::Fit { .. })) {
        guard_output(&pca_path(&args.out), &inputs)?;
    }
    Ok(())
}

/// One encoder's stored outputs, column by column, and each normalised text's entry.
struct Encoded {
    model: ModelKey,
    /// Entry of each stored (normalised) text.
    at: PlHashMap<String, usize>,
    /// Class probabilities, one vector per label.
    probs: Vec<Vec<f32>>,
    sentiment: Option<Vec<f32>>,
    /// [CLS] embeddings, row-major, `width` wide.
    cls: Vec<f32>,
    width: usize,
}

impl Encoded {
    fn read(store: &Store) -> Result<Encoded> {
        let model = store.model().clone();
        let table = store.read_all()?;
        let fail = |e: PolarsError| Error::table(store.dir(), e);
        let text = table.column("text").and_then(|c| c.str().cloned()).map_err(fail)?;
        let at = text.iter().enumerate().filter_map(|(i, t)| Some((t?.to_string(), i))).collect();
        let f32s = |name: &str| -> Result<Vec<f32>> {
            let c = table.column(name).and_then(|c| c.cast(&DataType::Float32)).map_err(fail)?;
            Ok(c.f32().map_err(fail)?.iter().map(|v| v.unwrap_or(f32::NAN)).collect())
        };
        let probs = prob_columns(&model.labels).iter().map(|c| f32s(c)).collect::<Result<_>>()?;
        let sentiment = if table.column("sentiment").is_ok() { Some(f32s("sentiment")?) } else { None };
        let cls = table.column("cls").and_then(|c| c.list().cloned()).map_err(fail)?;
        let width = cls.get_as_series(0).map_or(0, |s| s.len());
        let cls = cls
            .explode(ExplodeOptions { empty_as_null: false, keep_nulls: false })
            .and_then(|s| s.f32().map(|c| c.into_no_null_iter().collect()))
            .map_err(fail)?;
        Ok(Encoded { model, at, probs, sentiment, cls, width })
    }

    fn embedding(&self, e: usize) -> &[f32] {
        &self.cls[e * self.width..(e + 1) * self.width]
    }
}

/// Per row: the store entry of its latest visible headline and its window's sentiment aggregates.
struct RowEntries {
    latest: Vec<Option<usize>>,
    aggregates: Vec<Option<Aggregates>>,
}

impl RowEntries {
    /// Resolves every row's window against the store; `Err((missing, example))` when visible
    /// headlines are not in it.
    fn resolve(
        vis: &Visibility,
        headlines: &Headlines,
        enc: &Encoded,
    ) -> std::result::Result<RowEntries, (usize, String)> {
        // Each headline's store entry, resolved once (a headline sits in several rows' windows).
        let texts: Vec<Option<&str>> = headlines.text.iter().collect();
        let entries: Vec<Option<usize>> =
            texts.par_iter().map(|t| t.and_then(|t| enc.at.get(normalise(t).as_str()).copied())).collect();
        let (mut missing, mut example) = (0, None);
        let mut rows = RowEntries { latest: Vec::with_capacity(vis.rows.len()), aggregates: Vec::new() };
        for (v, cutoff) in &vis.rows {
            let mut items = Vec::new();
            for (age, h) in window_members(vis, v, *cutoff) {
                match entries[h] {
                    Some(e) => items.push((age, e)),
                    None => {
                        missing += 1;
                        example.get_or_insert_with(|| texts[h].unwrap_or("").to_string());
                    }
                }
            }
            rows.latest.push(v.latest.and_then(|h| entries[h as usize]));
            let sentiment = |s: &Vec<f32>| aggregate(&items.iter().map(|(age, e)| (*age, s[*e])).collect::<Vec<_>>());
            rows.aggregates.push(enc.sentiment.as_ref().map(sentiment));
        }
        if missing > 0 { Err((missing, example.unwrap_or_default())) } else { Ok(rows) }
    }
}

/// The output table as it grows, and how many feature columns were added.
struct Columns<'a> {
    frame: DataFrame,
    path: &'a Path,
    added: usize,
}

impl Columns<'_> {
    fn add(&mut self, name: String, values: Vec<Option<f32>>) -> Result<()> {
        self.frame
            .with_column(Float32Chunked::from_iter_options(name.into(), values.into_iter()).into_column())
            .map_err(|e| Error::table(self.path, e))?;
        self.added += 1;
        Ok(())
    }
}

/// The latest headline's class probabilities and sentiment, and the window's aggregates.
fn add_headline_columns(out: &mut Columns, enc: &Encoded, rows: &RowEntries) -> Result<()> {
    let latest = |v: &[f32]| rows.latest.iter().map(|e| e.map(|e| v[e])).collect();
    for (name, p) in prob_columns(&enc.model.labels).into_iter().zip(&enc.probs) {
        out.add(name, latest(p))?;
    }
    let Some(s) = &enc.sentiment else { return Ok(()) };
    out.add("sentiment".into(), latest(s))?;
    add_aggregate_columns(out, "sentiment", &rows.aggregates)
}

/// Picks one aggregate out of a row's [`Aggregates`].
type Pick = fn(&Aggregates) -> Option<f32>;

/// The window aggregates, by column-name suffix: `<prefix>_mean_7d`, `_mean_30d`, `_decayed`,
/// `_min_window`, `_max_window`.
const AGGREGATES: [(&str, Pick); 5] = [
    ("mean_7d", |a| a.mean_7d),
    ("mean_30d", |a| a.mean_30d),
    ("decayed", |a| a.decayed),
    ("min_window", |a| a.min),
    ("max_window", |a| a.max),
];

/// One column per [`AGGREGATES`] entry, named `<prefix>_<suffix>`.
fn add_aggregate_columns(out: &mut Columns, prefix: &str, aggregates: &[Option<Aggregates>]) -> Result<()> {
    for (suffix, pick) in AGGREGATES {
        out.add(format!("{prefix}_{suffix}"), aggregates.iter().map(|a| a.as_ref().and_then(pick)).collect())?;
    }
    Ok(())
}

/// A row's window: (age in days at its cutoff, headline input index) of every headline it sees.
fn window_members<'a>(vis: &'a Visibility, v: &Visible, cutoff: i64) -> impl Iterator<Item = (f64, usize)> + 'a {
    vis.index.members(v.range).map(move |(h, t)| ((cutoff - t) as f64 / US_PER_DAY as f64, h as usize))
}

/// A saved projection, refused unless fitted on this encoder's embedding.
fn apply_pca(path: &Path, enc: &Encoded) -> Result<Pca> {
    let p = Pca::read(path)?;
    if p.model != enc.model.id || p.width != enc.width {
        return Err(Error::input(
            path,
            format!(
                "fitted on {} (width {}) but the store holds {} (width {}): fit a PCA for this model",
                p.model, p.width, enc.model.id, enc.width
            ),
        ));
    }
    Ok(p)
}

/// Fits `k` components on the distinct latest headlines of the fit rows (training eras only).
fn fit_pca(enc: &Encoded, latest: &[Option<usize>], fit_rows: &[usize], targets: &Targets, k: usize) -> Result<Pca> {
    let mut fit_entries: Vec<usize> = fit_rows.iter().filter_map(|&i| latest[i]).collect();
    fit_entries.sort_unstable();
    fit_entries.dedup();
    let mut x = FeatureMatrix::zeros((fit_entries.len(), enc.width));
    for (mut row, &e) in x.rows_mut().into_iter().zip(&fit_entries) {
        row.assign(&ArrayView1::from(enc.embedding(e)));
    }
    let (mean, components, explained) = Pca::fit(x.view(), k)?;
    let last = fit_rows.iter().map(|&i| targets.fridays[i]).max().unwrap_or(0);
    Ok(Pca {
        model: enc.model.id.clone(),
        width: enc.width,
        mean,
        components,
        explained,
        fitted_on: fit_entries.len(),
        last_fit_friday: crate::data::time::date_from_days(last).to_string(),
    })
}

/// The latest headline's embedding: `cls_000…`, or its principal components `pc_000…`.
fn add_embedding_columns(out: &mut Columns, enc: &Encoded, latest: &[Option<usize>], pca: Option<&Pca>) -> Result<()> {
    match pca {
        Some(p) => {
            let scores: Vec<Option<Vec<f32>>> =
                latest.par_iter().map(|e| e.map(|e| p.project(enc.embedding(e)))).collect();
            for j in 0..p.components.len() {
                out.add(format!("pc_{j:03}"), scores.iter().map(|s| s.as_ref().map(|s| s[j])).collect())?;
            }
        }
        None => {
            for j in 0..enc.width {
                out.add(format!("cls_{j:03}"), latest.iter().map(|e| e.map(|e| enc.embedding(e)[j])).collect())?;
            }
        }
    }
    Ok(())
}

/// Per question: the latest visible headline's p_yes, p_no, p_unknown and score (p_yes − p_no),
/// and the score's window aggregates (`ask_<name>_score_mean_7d`, …, as sentiment's); refuses a
/// visible headline the question was not asked about. Returns the questions' keys.
fn add_ask_columns(
    out: &mut Columns,
    root: &Path,
    answers: &[Answers],
    vis: &Visibility,
    headlines: &Headlines,
) -> Result<Vec<ModelKey>> {
    let texts: Vec<Option<String>> = headlines.text.par_iter().map(|t| t.map(normalise)).collect();
    for a in answers {
        let entries: Vec<Option<[f32; 3]>> = texts
            .iter()
            .zip(headlines.tickers.iter())
            .map(|(t, ticker)| a.get(ticker.unwrap_or(""), t.as_deref()?))
            .collect();
        let (latest, aggregates) = ask_rows(vis, &entries).map_err(|(n, h)| {
            Error::input(
                root,
                format!(
                    "{n} visible headlines were not asked question '{}' (e.g. {:?}): run signalkit ask on the join's headlines first",
                    a.question.name,
                    texts[h].as_deref().unwrap_or("")
                ),
            )
        })?;
        let name = &a.question.name;
        for (j, label) in crate::ask::LABELS.iter().enumerate() {
            out.add(format!("ask_{name}_p_{label}"), latest.iter().map(|p| p.map(|p| p[j])).collect())?;
        }
        out.add(format!("ask_{name}_score"), latest.iter().map(|p| p.as_ref().map(Answers::score)).collect())?;
        add_aggregate_columns(out, &format!("ask_{name}_score"), &aggregates)?;
    }
    Ok(answers.iter().map(|a| a.key.clone()).collect())
}

/// Per row: the latest headline's (p_yes, p_no, p_unknown), and the window's score aggregates.
type AskRows = (Vec<Option<[f32; 3]>>, Vec<Option<Aggregates>>);

/// Per row: the latest headline's answer and the window's score aggregates, from each headline's
/// answer (`entries`, by input index); `Err((distinct unanswered headlines, an example's index))`
/// (a latest headline first) when a visible headline has no answer.
fn ask_rows(vis: &Visibility, entries: &[Option<[f32; 3]>]) -> std::result::Result<AskRows, (usize, usize)> {
    let (mut unanswered, mut example) = (vec![false; entries.len()], None);
    let mut latest = Vec::with_capacity(vis.rows.len());
    let mut aggregates = Vec::with_capacity(vis.rows.len());
    for (v, cutoff) in &vis.rows {
        if let Some(h) = v.latest.map(|h| h as usize).filter(|&h| entries[h].is_none()) {
            example.get_or_insert(h);
        }
        let mut items = Vec::new();
        for (age, h) in window_members(vis, v, *cutoff) {
            match entries[h] {
                Some(p) => items.push((age, Answers::score(&p))),
                None => unanswered[h] = true,
            }
        }
        latest.push(v.latest.and_then(|h| entries[h as usize]));
        aggregates.push(Some(aggregate(&items)));
    }
    match unanswered.iter().filter(|&&u| u).count() {
        0 => Ok((latest, aggregates)),
        n => Err((n, example.or_else(|| unanswered.iter().position(|&u| u)).unwrap_or(0))),
    }
}
