//! Linear layers for training on oneDNN's matmul, forward and backward, as a candle custom op so
//! candle's autograd runs through it: `y = x Wᵀ + b` forward; `dX = dY W`, `dW = dYᵀ X` and
//! `dB = Σ dY` backward. Each product is one oneDNN matmul reading its operands in place (a
//! transpose is a view with its strides swapped, not a copy); the weights are the optimiser's
//! variables, read as they are at each step.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::onednn::{self, OneDnn, View};

/// `x Wᵀ + b` for x (..., k), W (n, k) and b (n), differentiable in all three.
#[derive(Clone, Copy)]
pub struct TrainLinear {
    dnnl: &'static OneDnn,
}

/// The contiguous f32 values of an operand, or an error naming it.
fn f32s<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((start, end))) => Ok(&v[start..end]),
        (CpuStorage::F32(_), None) => candle_core::bail!("onednn-train-linear: the {what} is not contiguous"),
        (other, _) => candle_core::bail!("onednn-train-linear: the {what} is {:?}, f32 expected", other.dtype()),
    }
}

impl TrainLinear {
    /// The op for a (k → n) layer when oneDNN is loaded and has a JIT f32 kernel for it; `None`
    /// leaves the layer on candle's matmul.
    pub fn new(k: usize, n: usize) -> Option<Self> {
        let dnnl = onednn::library()?;
        onednn::jit_kernel(dnnl, k, n, false)?;
        Some(TrainLinear { dnnl })
    }

    /// `x Wᵀ + b`, recorded for the backward pass.
    pub fn forward(self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, self)
    }
}

impl CustomOp3 for TrainLinear {
    fn name(&self) -> &'static str {
        "onednn-train-linear"
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
        let (n, k) = l2.shape().dims2()?;
        let dims = l1.shape().dims();
        if dims.last() != Some(&k) || l3.shape().dims() != [n] {
            candle_core::bail!("onednn-train-linear: input {dims:?}, weight ({n}, {k}), bias {:?}", l3.shape())
        }
        let (x, w, b) = (f32s(s1, l1, "input")?, f32s(s2, l2, "weight")?, f32s(s3, l3, "bias")?);
        let rows = dims[..dims.len() - 1].iter().product();
        let mut out = vec![0f32; rows * n];
        onednn::product(self.dnnl, (x, View::of(rows, k, false)), (w, View::of(k, n, true)), Some(b), &mut out)?;
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = n;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = weight.dims2()?;
        let rows = x.elem_count() / k.max(1);
        let g = grad.contiguous()?.reshape((rows, n))?;
        let dx = g.apply_op2_no_bwd(weight, &Product { dnnl: self.dnnl, transpose_a: false })?;
        let dw = g.apply_op2_no_bwd(&x.reshape((rows, k))?, &Product { dnnl: self.dnnl, transpose_a: true })?;
        Ok((Some(dx.reshape(x.shape())?), Some(dw), Some(g.apply_op1_no_bwd(&ColumnSums)?)))
    }
}

/// `dB = Σ dY` over the rows of a contiguous (rows, n) f32 matrix, a row at a time (candle's
/// `sum(0)` walks the columns with a stride).
struct ColumnSums;

impl candle_core::CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, n) = l.shape().dims2()?;
        let mut sums = vec![0f32; n];
        for row in f32s(s, l, "gradient")?.chunks_exact(n.max(1)) {
            sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        Ok((CpuStorage::F32(sums), Shape::from(n)))
    }
}

/// `a · b` (or `aᵀ · b`) of contiguous f32 matrices on oneDNN, without a backward pass: the
/// backward products of [`TrainLinear`].
struct Product {
    dnnl: &'static OneDnn,
    transpose_a: bool,
}

impl CustomOp2 for Product {
    fn name(&self) -> &'static str {
        "onednn-product"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((p, q), (k, n)) = (l1.shape().dims2()?, l2.shape().dims2()?);
        let (m, inner) = if self.transpose_a { (q, p) } else { (p, q) };
        if inner != k {
            candle_core::bail!("onednn-product: ({m}, {inner}) · ({k}, {n})")
        }
        let (a, b) = (f32s(s1, l1, "left operand")?, f32s(s2, l2, "right operand")?);
        let mut out = vec![0f32; m * n];
        let a = (a, View::of(m, k, self.transpose_a));
        onednn::product(self.dnnl, a, (b, View::of(k, n, false)), None, &mut out)?;
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }
}

/// The kernel fine-tuning's linear layers run, as `signalkit env` prints it.
pub fn path() -> String {
    let Some(dnnl) = onednn::library() else { return "candle's matmul (gemm crate), f32".into() };
    if TrainLinear::new(768, 3072).is_none() {
        return "candle's matmul (gemm crate), f32: oneDNN has only reference code here".into();
    }
    let (rows, k, n) = (512, 768, 3072);
    let name = |a, b| onednn::product_impl(dnnl, a, b).unwrap_or_else(|e| e.to_string());
    format!(
        "oneDNN f32, linear layers forward {} and backward {} / {} (dX / dW); LayerNorm, softmax and GELU \
         signalkit's one-sweep ops; AdamW in place; attention products on candle",
        name(View::of(rows, k, false), View::of(k, n, true)),
        name(View::of(rows, n, false), View::of(n, k, false)),
        name(View::of(n, rows, true), View::of(rows, k, false)),
    )
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};
    use candle_nn::Module;

    use super::TrainLinear;

    fn random(dims: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..dims.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
        d.max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The output and the gradients of input, weight and bias against candle's own `Linear` and
    /// autograd, for a batch (b, seq, k) as the encoder feeds it and for plain rows; the
    /// upstream gradient is a random weighting of the output (any loss reaches the layer so).
    #[test]
    fn output_and_gradients_match_candles_linear() {
        let Some(op) = TrainLinear::new(48, 40) else {
            assert!(super::onednn::library().is_none(), "oneDNN is loaded but has no JIT f32 matmul");
            eprintln!("SKIPPED: oneDNN is not installed (bash scripts/setup.sh installs it)");
            return;
        };
        for (case, dims) in [[3usize, 7, 48].as_slice(), &[5, 48], &[1, 1, 48]].into_iter().enumerate() {
            let seed = 10 * case as u64;
            let (x, w, b) = (random(dims, seed), random(&[40, 48], seed + 1), random(&[40], seed + 2));
            let mut out_dims = dims.to_vec();
            *out_dims.last_mut().unwrap() = 40;
            let weighting = random(&out_dims, seed + 3);
            let run = |ours: bool| {
                let (x, w, b) =
                    (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap(), Var::from_tensor(&b).unwrap());
                let y = if ours {
                    op.forward(&x, &w, &b).unwrap()
                } else {
                    candle_nn::Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone())).forward(&x).unwrap()
                };
                let grads = (&y * &weighting).unwrap().sum_all().unwrap().backward().unwrap();
                let grad = |v: &Var| grads.get(v.as_tensor()).expect("a gradient").clone();
                [y.clone(), grad(&x), grad(&w), grad(&b)]
            };
            let (ours, theirs) = (run(true), run(false));
            for (what, (a, b)) in ["output", "dX", "dW", "dB"].iter().zip(ours.iter().zip(&theirs)) {
                assert_eq!(a.dims(), b.dims(), "{what} of {dims:?}");
                assert_eq!(a.dtype(), DType::F32);
                let d = max_diff(a, b);
                assert!(d < 1e-4, "{what} of {dims:?}: max |diff| {d}");
            }
        }
    }
}
