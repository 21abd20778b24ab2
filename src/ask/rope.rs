//! Rotary embedding frequencies as transformers computes them (`modeling_rope_utils`): the
//! default, `linear`, `llama3` and `yarn` rope types, from `rope_parameters` (transformers 5) or
//! `rope_scaling` (earlier). Any other type is refused by name, never run unscaled.

use serde_json::Value;

/// The inverse frequencies of one head (head_dim / 2) and the factor cos and sin are scaled by.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// 1 / wavelength (radians per position) of each rotated pair.
    pub inv_freq: Vec<f32>,
    /// yarn's attention factor (1 for the other types).
    pub attention_factor: f64,
}

/// The rope parameters of a config.json: `rope_parameters`, else `rope_scaling`, with
/// `rope_theta` from either or the top level (10000 when none).
fn params(cfg: &Value) -> (Value, f64) {
    let nonnull = |k: &str| cfg.get(k).filter(|v| !v.is_null());
    let p = nonnull("rope_parameters").or_else(|| nonnull("rope_scaling")).cloned().unwrap_or(Value::Null);
    let theta = p.get("rope_theta").or_else(|| nonnull("rope_theta")).and_then(Value::as_f64).unwrap_or(10_000.0);
    (p, theta)
}

/// The rope type named in a config.json ("default" when none).
pub fn rope_type(cfg: &Value) -> String {
    let (p, _) = params(cfg);
    p.get("rope_type").or_else(|| p.get("type")).and_then(Value::as_str).unwrap_or("default").to_string()
}

/// transformers' frequencies for this config and head width; an error names the config key and
/// what ask runs when the rope type or one of its parameters is not supported.
pub fn rope(cfg: &Value, head_dim: usize) -> std::result::Result<Rope, String> {
    let (p, theta) = params(cfg);
    let kind = rope_type(cfg);
    let num = |k: &str| p.get(k).and_then(Value::as_f64);
    let need = |k: &str| num(k).ok_or_else(|| format!("rope_parameters.{k} is missing for rope_type '{kind}'"));
    if num("partial_rotary_factor").is_some_and(|f| f != 1.0) {
        return Err("rope_parameters.partial_rotary_factor other than 1 is not supported by ask".into());
    }
    let d = head_dim as f32;
    // As torch: base ** (arange(0, dim, 2).float() / dim) in f32.
    let base: Vec<f32> = (0..head_dim).step_by(2).map(|i| (theta as f32).powf(i as f32 / d)).collect();
    let default: Vec<f32> = base.iter().map(|b| 1.0 / b).collect();
    let one = |inv_freq| Ok(Rope { inv_freq, attention_factor: 1.0 });
    match kind.as_str() {
        "default" => one(default),
        "linear" => {
            let factor = need("factor")? as f32;
            one(default.iter().map(|f| f / factor).collect())
        }
        "llama3" => {
            let (factor, low, high, old) = (
                need("factor")? as f32,
                need("low_freq_factor")? as f32,
                need("high_freq_factor")? as f32,
                need("original_max_position_embeddings")? as f32,
            );
            let (low_wavelen, high_wavelen) = (old / low, old / high);
            let scaled = default.iter().map(|&f| {
                let wavelen = 2.0 * std::f32::consts::PI / f;
                let llama = if wavelen > low_wavelen { f / factor } else { f };
                let smooth = (old / wavelen - low) / (high - low);
                let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                if medium { (1.0 - smooth) * llama / factor + smooth * llama } else { llama }
            });
            one(scaled.collect())
        }
        "yarn" => yarn(&p, cfg, theta, head_dim, &base),
        other => Err(format!(
            "rope_type '{other}' is not supported by ask: it runs the default, linear, llama3 and yarn rope types"
        )),
    }
}

/// yarn: interpolated and extrapolated frequencies blended by a linear ramp over the correction
/// range, and cos / sin scaled by the attention factor.
fn yarn(p: &Value, cfg: &Value, theta: f64, head_dim: usize, base: &[f32]) -> std::result::Result<Rope, String> {
    let num = |k: &str| p.get(k).and_then(Value::as_f64).filter(|v| *v != 0.0);
    let max_pos = cfg.get("max_position_embeddings").and_then(Value::as_f64);
    let original = num("original_max_position_embeddings")
        .or(max_pos)
        .ok_or("rope_parameters.original_max_position_embeddings is missing for rope_type 'yarn'")?;
    let factor = num("factor").or(max_pos.map(|m| m / original)).ok_or("rope_parameters.factor is missing")?;
    let mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
    let attention_factor = match (num("attention_factor"), num("mscale"), num("mscale_all_dim")) {
        (Some(a), _, _) => a,
        (None, Some(m), Some(all)) => mscale(factor, m) / mscale(factor, all),
        _ => mscale(factor, 1.0),
    };
    let (fast, slow) = (num("beta_fast").unwrap_or(32.0), num("beta_slow").unwrap_or(1.0));
    let dim = head_dim as f64;
    let correction = |rot: f64| (dim * (original / (rot * 2.0 * std::f64::consts::PI)).ln()) / (2.0 * theta.ln());
    let truncate = p.get("truncate").and_then(Value::as_bool).unwrap_or(true);
    let (mut low, mut high) = (correction(fast), correction(slow));
    if truncate {
        (low, high) = (low.floor(), high.ceil());
    }
    let (low, mut high) = (low.max(0.0) as f32, high.min(dim - 1.0) as f32);
    if low == high {
        high += 0.001;
    }
    let inv_freq = base
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let ramp = ((i as f32 - low) / (high - low)).clamp(0.0, 1.0);
            let extrapolation = 1.0 - ramp;
            let (extra, inter) = (1.0 / b, 1.0 / (factor as f32 * b));
            inter * (1.0 - extrapolation) + extra * extrapolation
        })
        .collect();
    Ok(Rope { inv_freq, attention_factor })
}
