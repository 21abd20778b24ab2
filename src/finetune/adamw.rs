//! AdamW whose state can be saved and restored (candle-nn's keeps its moments private).
//!
//! The update is torch.optim.AdamW's (and candle-nn's, operation for operation): decoupled
//! weight decay `θ ← θ·(1 − lr·λ)`, moments `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, then
//! `θ ← θ − lr · m̂ / (√v̂ + ε)` with the bias-corrected `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)`.
//! A variable without a gradient in a step is left alone, moments included.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

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

    /// One update from `grads`.
    pub fn step(&mut self, grads: &GradStore) -> CResult<()> {
        self.t += 1;
        let (b1, b2, eps) = self.betas_eps;
        let scale_m = 1f64 / (1f64 - b1.powi(self.t as i32));
        let scale_v = 1f64 / (1f64 - b2.powi(self.t as i32));
        for (i, (_, theta)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(theta) else { continue };
            let next_m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let next_v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let decayed = (theta.as_tensor() * (1f64 - self.lr * self.weight_decay))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + eps)?)?;
            theta.set(&(decayed - (adjusted * self.lr)?)?)?;
            self.m[i] = next_m;
            self.v[i] = next_v;
        }
        Ok(())
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
                *slot = s.clone();
            }
        }
        self.t = t;
        Ok(())
    }
}
