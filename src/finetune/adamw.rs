//! AdamW whose state can be saved and restored (candle-nn's keeps its moments private).
//!
//! The update is torch.optim.AdamW's (and candle-nn's, operation for operation): decoupled
//! weight decay `θ ← θ·(1 − lr·λ)`, moments `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, then
//! `θ ← θ − lr · m̂ / (√v̂ + ε)` with the bias-corrected `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)`.
//! A variable without a gradient in a step is left alone, moments included.
//!
//! On the CPU the moments and the weights are updated in place, three sweeps per variable, as
//! torch's single-tensor AdamW does (`lerp_`, `addcmul_`, `addcdiv_`): the expression form
//! allocated and filled a fresh tensor per operation, sixteen per variable per step, and took 77 %
//! of a fine-tuning step in page faults and memory traffic (docs/benchmarks.md). Every product
//! is taken in the order and precision of the expression form, so both give the same bits.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, Var};

type CResult<T> = candle_core::Result<T>;

/// AdamW over named variables, with first and second moments and the step count in the open.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken (the bias correction's t).
    pub t: usize,
    /// Learning rate of the next step.
    pub lr: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// β₁, β₂ and ε (torch's defaults: 0.9, 0.999, 1e-8).
    pub betas_eps: (f64, f64, f64),
}

impl AdamW {
    /// Zero moments for each variable; betas 0.9/0.999, eps 1e-8.
    pub fn new(vars: Vec<(String, Var)>, lr: f64, weight_decay: f64) -> CResult<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let m = vars.iter().map(|(_, v)| zeros(v)).collect::<CResult<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| zeros(v)).collect::<CResult<Vec<_>>>()?;
        Ok(AdamW { vars, m, v, t: 0, lr, weight_decay, betas_eps: (0.9, 0.999, 1e-8) })
    }

    /// One update from `grads`, each gradient scaled by `grad_scale` first (gradient-norm
    /// clipping's coefficient; 1 for none).
    pub fn step(&mut self, grads: &GradStore, grad_scale: f32) -> CResult<()> {
        self.t += 1;
        let k = self.coefficients(grad_scale);
        for (i, (_, theta)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(theta) else { continue };
            let in_place = [theta.as_tensor(), g, &self.m[i], &self.v[i]]
                .iter()
                .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous());
            if in_place {
                self.m[i].inplace_op2(g, &Moment { k, second: false })?;
                self.v[i].inplace_op2(g, &Moment { k, second: true })?;
                theta.as_tensor().inplace_op3(&self.m[i], &self.v[i], &Update(k))?;
            } else {
                (self.m[i], self.v[i]) = k.by_tensor_ops(theta, g, &self.m[i], &self.v[i])?;
            }
        }
        Ok(())
    }

    /// The constants of step `self.t`.
    fn coefficients(&self, grad_scale: f32) -> Coefficients {
        let (b1, b2, eps) = self.betas_eps;
        Coefficients {
            grad_scale,
            b1: b1 as f32,
            c1: (1.0 - b1) as f32,
            b2: b2 as f32,
            c2: (1.0 - b2) as f32,
            scale_m: (1f64 / (1f64 - b1.powi(self.t as i32))) as f32,
            scale_v: (1f64 / (1f64 - b2.powi(self.t as i32))) as f32,
            decay: (1f64 - self.lr * self.weight_decay) as f32,
            eps: eps as f32,
            lr: self.lr as f32,
        }
    }

    /// The moments as named tensors: `adam_m.<variable>` and `adam_v.<variable>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let m = self.vars.iter().zip(&self.m).map(|((n, _), t)| (format!("adam_m.{n}"), t.clone()));
        let v = self.vars.iter().zip(&self.v).map(|((n, _), t)| (format!("adam_v.{n}"), t.clone()));
        m.chain(v).collect()
    }

    /// Restores the moments saved by [`AdamW::state`] and the step count; names the first
    /// tensor missing or of the wrong shape.
    pub fn restore(&mut self, saved: &HashMap<String, Tensor>, t: usize) -> std::result::Result<(), String> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (kind, slot) in [("adam_m", &mut self.m[i]), ("adam_v", &mut self.v[i])] {
                let key = format!("{kind}.{name}");
                let s = saved.get(&key).ok_or_else(|| format!("no tensor {key}"))?;
                if s.dims() != var.dims() {
                    return Err(format!("tensor {key} has shape {:?}, the model {:?}", s.dims(), var.dims()));
                }
                *slot = s.copy().map_err(|e| e.to_string())?; // updated in place: never shared
            }
        }
        self.t = t;
        Ok(())
    }
}

/// A step's constants, in f32 as candle's `affine` applies them.
#[derive(Clone, Copy)]
struct Coefficients {
    grad_scale: f32,
    b1: f32,
    c1: f32,
    b2: f32,
    c2: f32,
    scale_m: f32,
    scale_v: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl Coefficients {
    /// The update as tensor expressions (any device and dtype): sets `theta`, returns the moments.
    fn by_tensor_ops(&self, theta: &Var, g: &Tensor, m: &Tensor, v: &Tensor) -> CResult<(Tensor, Tensor)> {
        let g = if self.grad_scale == 1.0 { g.clone() } else { (g * self.grad_scale as f64)? };
        let next_m = ((m * self.b1 as f64)? + (&g * self.c1 as f64)?)?;
        let next_v = ((v * self.b2 as f64)? + (g.sqr()? * self.c2 as f64)?)?;
        let m_hat = (&next_m * self.scale_m as f64)?;
        let v_hat = (&next_v * self.scale_v as f64)?;
        let decayed = (theta.as_tensor() * self.decay as f64)?;
        let adjusted = (m_hat / (v_hat.sqrt()? + self.eps as f64)?)?;
        theta.set(&(decayed - (adjusted * self.lr as f64)?)?)?;
        Ok((next_m, next_v))
    }
}

/// Elements per parallel chunk: the sweeps are memory-bound, so only large variables are split.
const CHUNK: usize = 1 << 16;

/// `m ← β₁m + (1 − β₁)g` or `v ← β₂v + (1 − β₂)g²`, in place.
struct Moment {
    k: Coefficients,
    second: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<()> {
        use rayon::prelude::*;
        let (moment, g) = (f32_mut(s1, l1)?, f32_of(s2, l2)?);
        let (k, second) = (self.k, self.second);
        let (keep, take) = if second { (k.b2, k.c2) } else { (k.b1, k.c1) };
        moment.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = if k.grad_scale == 1.0 { g } else { g * k.grad_scale };
                let g = if second { g * g } else { g };
                *m = *m * keep + g * take;
            }
        });
        Ok(())
    }
}

/// `θ ← θ·(1 − lr·λ) − lr · m̂ / (√v̂ + ε)`, in place, from the updated moments.
struct Update(Coefficients);

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<()> {
        use rayon::prelude::*;
        let (theta, m, v) = (f32_mut(s1, l1)?, f32_of(s2, l2)?, f32_of(s3, l3)?);
        let k = self.0;
        theta.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK))).for_each(|(t, (m, v))| {
            for (t, (&m, &v)) in t.iter_mut().zip(m.iter().zip(v)) {
                let adjusted = (m * k.scale_m) / ((v * k.scale_v).sqrt() + k.eps);
                *t = *t * k.decay - adjusted * k.lr;
            }
        });
        Ok(())
    }
}

/// A contiguous f32 tensor's values (the in-place path is only taken for those).
fn f32_of<'a>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("adamw: a contiguous f32 tensor expected"),
    }
}

fn f32_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> CResult<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("adamw: a contiguous f32 tensor expected"),
    }
}

/// Σg² of a gradient, read in place on the CPU: sixteen f32 lanes per block of 16,384 values,
/// the blocks summed in f64 (the plain f64 loop did not vectorise and took 6 % of a step).
pub fn sum_of_squares(g: &Tensor) -> CResult<f64> {
    use rayon::prelude::*;
    if g.device().is_cpu() && g.dtype() == DType::F32 && g.is_contiguous() {
        let (storage, layout) = g.storage_and_layout();
        if let candle_core::Storage::Cpu(s) = &*storage {
            return Ok(f32_of(s, layout)?.par_chunks(1 << 14).map(block_sum_of_squares).sum());
        }
    }
    g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()
}

fn block_sum_of_squares(block: &[f32]) -> f64 {
    let mut lanes = [0f32; 16];
    let mut it = block.chunks_exact(16);
    for c in &mut it {
        lanes.iter_mut().zip(c).for_each(|(s, v)| *s += v * v);
    }
    let tail: f32 = it.remainder().iter().map(|v| v * v).sum();
    lanes.iter().map(|&s| s as f64).sum::<f64>() + tail as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two steps, the second with the gradients clipped: the in-place sweeps give the expression
    /// form's bits, weights and moments alike; the in-place Σg² agrees with candle's.
    #[test]
    fn the_in_place_update_equals_the_tensor_expressions_bit_for_bit() {
        let dev = Device::Cpu;
        let w0 = Tensor::randn(0f32, 1.0, (300, 700), &dev).unwrap();
        let grads = [0.1, 3.0].map(|sd| Tensor::randn(0f32, sd, (300, 700), &dev).unwrap());
        let fused = Var::from_tensor(&w0.copy().unwrap()).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), fused.clone())], 1e-3, 0.01).unwrap();
        let plain = Var::from_tensor(&w0.copy().unwrap()).unwrap();
        let (mut m, mut v) = (w0.zeros_like().unwrap(), w0.zeros_like().unwrap());
        for (g, scale) in grads.iter().zip([1.0f32, 0.37]) {
            let mut store = fused.as_tensor().sum_all().unwrap().backward().unwrap();
            store.insert(fused.as_tensor(), g.clone());
            opt.step(&store, scale).unwrap();
            (m, v) = opt.coefficients(scale).by_tensor_ops(&plain, g, &m, &v).unwrap();
        }
        let bits = |t: &Tensor| {
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(fused.as_tensor()), bits(plain.as_tensor()));
        assert_eq!(bits(&opt.m[0]), bits(&m));
        assert_eq!(bits(&opt.v[0]), bits(&v));
        assert_ne!(bits(fused.as_tensor()), bits(&w0), "the weights moved");
        let candle = grads[1].sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let ours = sum_of_squares(&grads[1]).unwrap();
        assert!((ours - candle).abs() < 1e-5 * candle, "Σg² {ours} vs candle's {candle}");
    }
}
