//! The model's building blocks whose arithmetic depends on [`Compute`]: linear layers (exact or
//! bf16-packed), LayerNorm and softmax (candle-nn's fused kernels, or plain differentiable ops),
//! and seeded dropout.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Compute;
use super::bf16::PackedLinear;
use super::onednn::DnnlLinear;
use super::train_linear::TrainLinear;

/// One linear layer, `y = x Wᵀ + b`: candle's matmul (differentiable), oneDNN's matmul for
/// training (f32, differentiable), oneDNN's matmul (f32 or bf16, inference only) or the
/// AVX512-BF16 kernel (bf16 where oneDNN is not loaded).
pub(super) enum Dense {
    Exact(Linear),
    Train(TrainLinear, Tensor, Tensor),
    OneDnn(Box<DnnlLinear>),
    Bf16(PackedLinear),
}

impl Dense {
    /// Loads the linear layers named by `prefixes` (same input width) as one, outputs
    /// concatenated; packed to bf16 when `compute` asks for it.
    pub(super) fn load(
        vb: &VarBuilder,
        prefixes: &[&str],
        inputs: usize,
        outputs: usize,
        compute: Compute,
    ) -> Result<Self> {
        let parts = prefixes
            .iter()
            .map(|p| Ok((vb.pp(*p).get((outputs, inputs), "weight")?, vb.pp(*p).get(outputs, "bias")?)))
            .collect::<Result<Vec<_>>>()?;
        let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = parts.into_iter().unzip();
        // One part is kept as the tensor itself (candle's `cat` of one), so a variable stays one.
        let (w, b) = (Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?);
        let Compute::Fused { packed_bf16 } = compute else {
            return Ok(match TrainLinear::new(inputs, w.dim(0)?) {
                Some(op) => Dense::Train(op, w, b),
                None => Dense::Exact(Linear::new(w, Some(b))),
            });
        };
        Ok(match DnnlLinear::new(&w, &b, packed_bf16)? {
            Some(layer) => Dense::OneDnn(Box::new(layer)),
            None if packed_bf16 => Dense::Bf16(PackedLinear::from_tensors(&w, Some(&b))?),
            None => Dense::Exact(Linear::new(w, Some(b))),
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Dense::Exact(l) => l.forward(x),
            Dense::Train(op, w, b) => op.forward(x, w, b),
            Dense::OneDnn(d) => x.contiguous()?.apply_op1_no_bwd(d.as_ref()),
            Dense::Bf16(p) => x.contiguous()?.apply_op1_no_bwd(p),
        }
    }
}

/// LayerNorm over the last dimension: candle-nn's fused kernel, or (training) the same formula
/// from differentiable ops, since the fused one has no backward in candle-nn 0.11.
pub(super) struct Norm {
    fused: Option<candle_nn::LayerNorm>,
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    pub(super) fn load(vb: VarBuilder, size: usize, eps: f64, compute: Compute) -> Result<Self> {
        let (weight, bias) = (vb.get(size, "weight")?, vb.get(size, "bias")?);
        let fused = compute.fused().then(|| candle_nn::LayerNorm::new(weight.clone(), bias.clone(), eps));
        Ok(Norm { fused, weight, bias, eps })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(fused) = &self.fused {
            return fused.forward(x);
        }
        if x.dtype() != candle_core::DType::F32 || !x.device().is_cpu() {
            return self.composed(x);
        }
        x.contiguous()?.apply_op3(
            &self.weight.contiguous()?,
            &self.bias.contiguous()?,
            LayerNorm { eps: self.eps as f32 },
        )
    }

    /// The formula from differentiable candle ops (what the training op computes in one sweep).
    fn composed(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// A row's mean and 1/√(variance + eps).
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// LayerNorm over the last dimension, `(x − μ)/√(σ² + eps) · γ + β`, as a custom op whose
/// backward is one sweep (candle's composition takes some twenty ops).
struct LayerNorm {
    eps: f32,
}

impl candle_core::CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (x, w, b) = (f32_values(s1, l1)?, f32_values(s2, l2)?, f32_values(s3, l3)?);
        let h = w.len();
        if l1.shape().dims().last() != Some(&h) || b.len() != h {
            candle_core::bail!("layer-norm: input {:?} with {h} weights and {} biases", l1.shape(), b.len())
        }
        let mut out = x.to_vec();
        out.par_chunks_mut(h).for_each(|row| {
            let (mean, r) = row_stats(row, self.eps);
            row.iter_mut().zip(w.iter().zip(b)).for_each(|(v, (w, b))| *v = (*v - mean) * r * w + b);
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = weight.elem_count();
        let rows = x.elem_count() / h.max(1);
        let packed = x.apply_op3_no_bwd(weight, &grad.contiguous()?, &LayerNormGrad { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let (dw, db) = (packed.narrow(0, rows, 1)?.reshape(h)?, packed.narrow(0, rows + 1, 1)?.reshape(h)?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// LayerNorm's gradients from x, γ and dY, packed as (rows + 2, h): dX's rows, then dγ = Σ dY ⊙ x̂,
/// then dβ = Σ dY; dX = r (ĝ − mean ĝ − x̂ · mean(ĝ ⊙ x̂)) with ĝ = dY ⊙ γ, x̂ = (x − μ) r.
struct LayerNormGrad {
    eps: f32,
}

impl candle_core::CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "layer-norm-train-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (x, w, g) = (f32_values(s1, l1)?, f32_values(s2, l2)?, f32_values(s3, l3)?);
        let h = w.len();
        if h == 0 || x.len() != g.len() || x.len() % h != 0 {
            candle_core::bail!("layer-norm: {} values, {} gradients, {h} weights", x.len(), g.len())
        }
        let rows = x.len() / h;
        let mut out = vec![0f32; (rows + 2) * h];
        let (dx, tail) = out.split_at_mut(rows * h);
        let sums = dx
            .par_chunks_mut(h)
            .zip(x.par_chunks(h).zip(g.par_chunks(h)))
            .fold(
                || vec![0f32; 2 * h],
                |mut acc, (d, (x, g))| {
                    let (mean, r) = row_stats(x, self.eps);
                    let (mut m1, mut m2) = (0f32, 0f32);
                    for i in 0..h {
                        let (xh, gh) = ((x[i] - mean) * r, g[i] * w[i]);
                        m1 += gh;
                        m2 += gh * xh;
                        acc[i] += g[i] * xh;
                        acc[h + i] += g[i];
                    }
                    let (m1, m2) = (m1 / h as f32, m2 / h as f32);
                    for i in 0..h {
                        d[i] = r * (g[i] * w[i] - m1 - (x[i] - mean) * r * m2);
                    }
                    acc
                },
            )
            .reduce(
                || vec![0f32; 2 * h],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        tail.copy_from_slice(&sums);
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, h))))
    }
}

/// Softmax over the last dimension: candle-nn's fused kernel (no backward), or (training) the
/// same kernel with a backward pass of one sweep, `dX = Y ⊙ (dY − Σ dY ⊙ Y)` per row, where
/// candle's differentiable composition takes a dozen ops each way.
pub(super) fn softmax(x: &Tensor, compute: Compute) -> Result<Tensor> {
    if compute.fused() || x.dtype() != candle_core::DType::F32 || !x.device().is_cpu() {
        return if compute.fused() {
            candle_nn::ops::softmax_last_dim(x)
        } else {
            candle_nn::ops::softmax(x, D::Minus1)
        };
    }
    x.contiguous()?.apply_op1(Softmax)
}

/// Softmax over the last dimension as a custom op with its own backward.
struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-train"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = f32_values(storage, layout)?;
        let width = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = x.to_vec();
        out.par_chunks_mut(width).for_each(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            row.iter_mut().for_each(|v| {
                *v = (*v - max).exp();
                sum += *v;
            });
            row.iter_mut().for_each(|v| *v /= sum);
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?))
    }
}

/// `Y ⊙ (dY − Σ dY ⊙ Y)` per row of the softmax output `Y`.
struct SoftmaxGrad;

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-train-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (y, g) = (f32_values(s1, l1)?, f32_values(s2, l2)?);
        if y.len() != g.len() {
            candle_core::bail!("softmax: {} values but {} gradients", y.len(), g.len())
        }
        let width = l1.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(width).zip(y.par_chunks(width).zip(g.par_chunks(width))).for_each(|(o, (y, g))| {
            let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
            o.iter_mut().zip(y.iter().zip(g)).for_each(|(o, (y, g))| *o = y * (g - dot));
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// GELU (erf form, BERT's `gelu`): candle's op, or (training, f32 on the CPU) the same values
/// with a backward pass of one sweep, where candle composes the derivative from eleven ops.
pub(super) fn gelu_erf(x: &Tensor, compute: Compute) -> Result<Tensor> {
    if compute.fused() || x.dtype() != candle_core::DType::F32 || !x.device().is_cpu() {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1(GeluErf)
}

/// The contiguous f32 values of an operand of the training ops below.
fn f32_values<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        (other, _) => candle_core::bail!("a contiguous f32 tensor expected, got {:?}", other.dtype()),
    }
}

/// GELU (erf form) as a custom op with its own backward.
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = f32_values(storage, layout)?;
        let out = x.par_iter().map(|&v| (fast_erf(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluErfGrad)?))
    }
}

/// `dY · GELU'(x)`, GELU'(x) = Φ(x) + x φ(x) = ½(1 + erf(x/√2)) + x e^(−x²/2)/√(2π).
struct GeluErfGrad;

impl CustomOp2 for GeluErfGrad {
    fn name(&self) -> &'static str {
        "gelu-erf-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (x, g) = (f32_values(s1, l1)?, f32_values(s2, l2)?);
        if x.len() != g.len() {
            candle_core::bail!("gelu-erf: {} values but {} gradients", x.len(), g.len())
        }
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        let out = x
            .par_iter()
            .zip(g)
            .map(|(&v, &d)| {
                let cdf = 0.5 * (1.0 + fast_erf(v * std::f32::consts::FRAC_1_SQRT_2));
                d * (cdf + v * INV_SQRT_2PI * (-0.5 * v * v).exp())
            })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// erf(x) in f32 as Eigen's `generic_fast_erf_float` computes it: a rational function of odd
/// degree 13 over even degree 8 on x clamped to [-4, 4] (where erf is ±1 in f32), within 4.5e-7
/// of the exact erf. Unlike a libm call it vectorises: scalar erf took 9 % of a fine-tuning step.
/// The GELU it gives is within 1.4e-6 of the exact one; PyTorch's own f32 GELU is 1.2e-6 off.
#[inline]
pub(super) fn fast_erf(x: f32) -> f32 {
    const ALPHA: [f64; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    const BETA: [f64; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0, |acc, &a| acc * x2 + a as f32) * x;
    let q = BETA.iter().fold(0.0, |acc, &b| acc * x2 + b as f32);
    p / q
}

/// Dropout probabilities, as transformers' config names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutRates {
    /// `hidden_dropout_prob`: after the embeddings and each sub-layer's output projection.
    pub hidden: f64,
    /// `attention_probs_dropout_prob`: on the attention probabilities.
    pub attention: f64,
    /// `classifier_dropout` (else `hidden_dropout_prob`): before the classifier.
    pub classifier: f64,
}

impl DropoutRates {
    /// The rates of a config.json (transformers' defaults, 0.1, where it omits them).
    pub fn of(config: &serde_json::Value) -> Self {
        let prob = |k: &str, d: f64| config.get(k).and_then(serde_json::Value::as_f64).unwrap_or(d);
        let hidden = prob("hidden_dropout_prob", 0.1);
        DropoutRates {
            hidden,
            attention: prob("attention_probs_dropout_prob", 0.1),
            classifier: prob("classifier_dropout", hidden),
        }
    }
}

/// Dropout at [`DropoutRates`], its masks drawn from one seeded generator; off until switched on.
pub(super) struct Dropout {
    pub(super) rates: DropoutRates,
    pub(super) rng: Mutex<ChaCha8Rng>,
    pub(super) on: AtomicBool,
}

impl Dropout {
    pub(super) fn new(rates: DropoutRates, seed: u64) -> Self {
        Dropout { rates, rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)), on: AtomicBool::new(false) }
    }

    /// Zeroes each value with probability `p` and scales the rest by 1/(1-p), when on.
    pub(super) fn apply(&self, x: &Tensor, p: f64) -> Result<Tensor> {
        if !self.on.load(Ordering::Relaxed) || p <= 0.0 {
            return Ok(x.clone());
        }
        let mut rng = self.rng.lock().expect("dropout generator");
        let keep = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f64>() < p { 0.0 } else { keep }).collect();
        x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::super::Compute;

    /// The training GELU's values and gradient against candle's `gelu_erf` and its autograd,
    /// over [-6, 6] (both tails and the bend) and a random upstream gradient.
    #[test]
    fn training_gelu_and_its_gradient_match_candles() {
        let x: Vec<f32> = (0..1201).map(|i| -6.0 + i as f32 / 100.0).collect();
        let weighting: Vec<f32> = (0..1201).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let (x, weighting) = (Tensor::new(x, &Device::Cpu).unwrap(), Tensor::new(weighting, &Device::Cpu).unwrap());
        let run = |ours: bool| {
            let v = Var::from_tensor(&x.reshape((1201, 1)).unwrap()).unwrap();
            let y = if ours { super::gelu_erf(&v, Compute::Differentiable) } else { v.gelu_erf() }.unwrap();
            let loss = (y.flatten_all().unwrap() * &weighting).unwrap().sum_all().unwrap();
            let grad = loss.backward().unwrap().get(v.as_tensor()).expect("a gradient").clone();
            (y.flatten_all().unwrap(), grad.flatten_all().unwrap())
        };
        let ((y, g), (want_y, want_g)) = (run(true), run(false));
        let worst =
            |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(worst(&y, &want_y) < 1e-6, "values: max |diff| {}", worst(&y, &want_y));
        assert!(worst(&g, &want_g) < 1e-5, "gradients: max |diff| {}", worst(&g, &want_g));
    }

    /// The training LayerNorm's values and the gradients of input, weight and bias against the
    /// same formula from candle's differentiable ops.
    #[test]
    fn training_layer_norm_and_its_gradients_match_candles_composition() {
        let filled = |dims: &[usize], salt: usize| {
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919 + salt) % 101) as f32 / 25.0 - 2.0).collect();
            Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
        };
        let (x, w, b, weighting) = (filled(&[3, 5, 16], 1), filled(&[16], 2), filled(&[16], 3), filled(&[3, 5, 16], 4));
        let run = |ours: bool| {
            let vars = [&x, &w, &b].map(|t| Var::from_tensor(t).unwrap());
            let norm = super::Norm {
                fused: None,
                weight: vars[1].as_tensor().clone(),
                bias: vars[2].as_tensor().clone(),
                eps: 1e-12,
            };
            let y = if ours { norm.forward(&vars[0]) } else { norm.composed(&vars[0]) }.unwrap();
            let grads = (&y * &weighting).unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = vec![y.flatten_all().unwrap()];
            out.extend(vars.iter().map(|v| grads.get(v.as_tensor()).expect("a gradient").flatten_all().unwrap()));
            out
        };
        let (ours, theirs) = (run(true), run(false));
        for (what, (a, b)) in ["output", "dX", "dW", "dB"].iter().zip(ours.iter().zip(&theirs)) {
            let d = (a - b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "{what}: max |diff| {d}");
        }
    }

    /// The training softmax's values and gradient against candle-nn's differentiable softmax,
    /// on attention-shaped scores with a masked (most negative) position per row.
    #[test]
    fn training_softmax_and_its_gradient_match_candles() {
        let n = 2 * 3 * 5 * 7;
        let mut x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 97) as f32 / 10.0 - 4.0).collect();
        x.iter_mut().step_by(7).for_each(|v| *v = f32::MIN);
        let x = Tensor::from_vec(x, (2, 3, 5, 7), &Device::Cpu).unwrap();
        let weighting = Tensor::from_vec(
            (0..n).map(|i| ((i * 31) % 13) as f32 - 6.0).collect::<Vec<_>>(),
            (2, 3, 5, 7),
            &Device::Cpu,
        )
        .unwrap();
        let run = |ours: bool| {
            let v = Var::from_tensor(&x).unwrap();
            let y = if ours {
                super::softmax(&v, Compute::Differentiable)
            } else {
                candle_nn::ops::softmax(&v, candle_core::D::Minus1)
            }
            .unwrap();
            let loss = (&y * &weighting).unwrap().sum_all().unwrap();
            let grad = loss.backward().unwrap().get(v.as_tensor()).expect("a gradient").clone();
            (y.flatten_all().unwrap(), grad.flatten_all().unwrap())
        };
        let ((y, g), (want_y, want_g)) = (run(true), run(false));
        let worst =
            |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(worst(&y, &want_y) < 1e-6, "values: max |diff| {}", worst(&y, &want_y));
        assert!(worst(&g, &want_g) < 1e-5, "gradients: max |diff| {}", worst(&g, &want_g));
    }
}
