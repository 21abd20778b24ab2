//! Epoch checkpoints, so a killed fine-tuning run resumes where it stopped and ends with the
//! weights an uninterrupted run would have.
//!
//! One file, `OUT/checkpoint/state.safetensors`, written atomically after every epoch: every
//! weight (`weight.<name>`), AdamW's moments (`adam_m.<name>`, `adam_v.<name>`), the per-epoch
//! metrics (`meta.metrics`, f64) and a JSON record as bytes (`meta.json`: the run's identity,
//! the epoch, the optimiser and schedule steps, the dropout generator's position). The batch
//! order of an epoch is seeded by (seed, epoch), so nothing else is needed to repeat it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EpochMetrics, Trainer, cerr};
use crate::error::{Error, Result};

/// The checkpoint folder inside the output folder.
pub const DIR: &str = "checkpoint";
/// The checkpoint file inside [`DIR`].
pub const FILE: &str = "state.safetensors";

/// The checkpoint file of an output folder.
pub fn path(out: &Path) -> PathBuf {
    out.join(DIR).join(FILE)
}

/// The JSON record saved beside the tensors.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    identity: Value,
    epoch: usize,
    step: usize,
    adam_t: usize,
    /// The dropout generator's word position (a u128, as text).
    dropout_position: String,
}

/// Metrics as an (epochs, 5) f64 tensor (NaN kept, which JSON cannot hold).
fn metrics_tensor(metrics: &[EpochMetrics]) -> candle_core::Result<Tensor> {
    let flat: Vec<f64> = metrics
        .iter()
        .flat_map(|m| [m.epoch as f64, m.train_loss, m.held_out_loss, m.held_out_accuracy, m.texts_per_s])
        .collect();
    Tensor::from_vec(flat, (metrics.len(), 5), &Device::Cpu)
}

fn metrics_of(t: &Tensor) -> candle_core::Result<Vec<EpochMetrics>> {
    let rows = if t.elem_count() == 0 { Vec::new() } else { t.to_vec2::<f64>()? };
    Ok(rows
        .into_iter()
        .map(|r| EpochMetrics {
            epoch: r[0] as usize,
            train_loss: r[1],
            held_out_loss: r[2],
            held_out_accuracy: r[3],
            texts_per_s: r[4],
        })
        .collect())
}

/// Writes the checkpoint of `epoch` (atomically: temp file + rename).
pub fn save(t: &Trainer, out: &Path, identity: &Value, epoch: usize, metrics: &[EpochMetrics]) -> Result<()> {
    let meta = Meta {
        identity: identity.clone(),
        epoch,
        step: t.step,
        adam_t: t.opt.t,
        dropout_position: t.model.dropout_position().to_string(),
    };
    let json = serde_json::to_vec(&meta).expect("json");
    let mut tensors: HashMap<String, Tensor> = {
        let data = t.model.varmap.data().lock().expect("varmap lock");
        data.iter().map(|(k, v)| (format!("weight.{k}"), v.as_tensor().clone())).collect()
    };
    tensors.extend(t.opt.state());
    let n = json.len();
    tensors.insert("meta.json".into(), Tensor::from_vec(json, n, &Device::Cpu).map_err(cerr)?);
    tensors.insert("meta.metrics".into(), metrics_tensor(metrics).map_err(cerr)?);
    let file = path(out);
    crate::data::atomic::write_atomic(&file, |tmp, _| {
        candle_core::safetensors::save(&tensors, tmp).map_err(|e| Error::input(tmp, format!("cannot write: {e}")))
    })
}

/// Restores a checkpoint of the same run into `t`: returns the epochs done and their metrics,
/// or (0, none) when `out` holds no checkpoint. A checkpoint of another run is refused, naming
/// the first setting or input that differs.
pub fn resume(t: &mut Trainer, out: &Path, identity: &Value) -> Result<(usize, Vec<EpochMetrics>)> {
    let file = path(out);
    if !file.exists() {
        return Ok((0, Vec::new()));
    }
    let bad = |what: String| {
        Error::input(&file, format!("{what}: delete {} to start over", file.parent().unwrap_or(out).display()))
    };
    let saved = candle_core::safetensors::load(&file, &t.model.device).map_err(|e| bad(format!("cannot read: {e}")))?;
    let meta: Meta = saved
        .get("meta.json")
        .and_then(|m| m.to_vec1::<u8>().ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("no readable meta.json record".into()))?;
    if let Some(d) = differences(&meta.identity, identity).into_iter().next() {
        return Err(Error::input(
            &file,
            format!(
                "this checkpoint is of another run ({d}): pass the same inputs and settings to resume it, or choose a new --out (or delete {} to start over)",
                file.parent().unwrap_or(out).display()
            ),
        ));
    }
    restore_weights(t, &saved).map_err(bad)?;
    t.opt.restore(&saved, meta.adam_t).map_err(bad)?;
    t.step = meta.step;
    let pos: u128 = meta.dropout_position.parse().map_err(|_| bad("bad dropout position".into()))?;
    t.model.set_dropout_position(pos);
    let metrics = saved.get("meta.metrics").map(metrics_of).transpose().map_err(cerr)?.unwrap_or_default();
    Ok((meta.epoch, metrics))
}

/// Sets every model variable from its `weight.<name>` tensor.
fn restore_weights(t: &Trainer, saved: &HashMap<String, Tensor>) -> std::result::Result<(), String> {
    let data = t.model.varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        let w = saved.get(&format!("weight.{name}")).ok_or_else(|| format!("no tensor weight.{name}"))?;
        if w.dims() != var.dims() || w.dtype() != DType::F32 {
            return Err(format!(
                "tensor weight.{name} is {:?} {:?}, the model needs f32 {:?}",
                w.dtype(),
                w.dims(),
                var.dims()
            ));
        }
        var.set(w).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Removes a finished run's checkpoint folder (nothing when there is none).
pub fn remove(out: &Path) -> Result<()> {
    let dir = out.join(DIR);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&dir, e)),
        _ => Ok(()),
    }
}

/// Each leaf (`a.b.c = value`) that differs between a saved identity and this run's, as
/// "`key` was `saved`, now `now`". File paths are skipped: their content hashes decide.
pub fn differences(saved: &Value, now: &Value) -> Vec<String> {
    let (a, b) = (leaves(saved), leaves(&roundtrip(now)));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "absent".into());
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k} was {} then, {} now", show(a.get(k)), show(b.get(k))))
        .collect()
}

/// The value as read back from its JSON text (what a saved identity went through).
fn roundtrip(v: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(v).expect("json")).expect("json")
}

fn leaves(v: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter().filter(|(k, _)| k.as_str() != "path") {
                    walk(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, x, out);
                }
            }
            _ => {
                out.insert(prefix.to_string(), v.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}
