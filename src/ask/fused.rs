//! The decoder's element-wise steps fused into one pass each on the CPU, in f32, bf16 or f16,
//! rounding where transformers' eager forward rounds (each intermediate tensor it keeps in the
//! model's dtype is rounded to that dtype here too):
//! - [`rms_norm`]: `weight * (x * rsqrt(mean(x²) + eps)).to(dtype)`, computed in f32;
//! - [`silu_mul`]: `silu(gate) * up`, the SiLU in f32 and rounded, then the product rounded;
//! - [`masked_softmax`]: `softmax(scores * scale + mask)` in f32, the scaled and the masked
//!   scores each rounded first;
//! - [`rope_heads`]: a projection's output split into heads and rotated, `x * cos +
//!   rotate_half(x) * sin`, each product and the sum rounded.
//!
//! candle computes each as four to eight ops over the whole tensor, each allocating its output;
//! in bf16 that was a fifth of `ask`'s profile. Each kernel is compiled for AVX-512, for AVX2 with
//! FMA and for the baseline, and picked at run time. Off the CPU the same steps run as candle ops
//! ([`unfused`]), which the tests hold the fused kernels to.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, D, DType, Layout, Shape, Tensor, WithDType};
use half::{bf16, f16};
use rayon::prelude::*;

type CResult<T> = candle_core::Result<T>;

/// A value the forward computes in: read as f32, rounded to its own dtype when written.
trait Value: WithDType {
    fn get(self) -> f32;
    fn put(x: f32) -> Self;
}

impl Value for f32 {
    #[inline(always)]
    fn get(self) -> f32 {
        self
    }
    #[inline(always)]
    fn put(x: f32) -> Self {
        x
    }
}

impl Value for bf16 {
    #[inline(always)]
    fn get(self) -> f32 {
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    /// To nearest, ties to even, as torch and half round (without branches, so it vectorises);
    /// a NaN stays a NaN.
    #[inline(always)]
    fn put(x: f32) -> Self {
        let b = x.to_bits();
        let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
        bf16::from_bits(if x.is_nan() { ((b >> 16) as u16) | 0x40 } else { rounded })
    }
}

impl Value for f16 {
    #[inline(always)]
    fn get(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn put(x: f32) -> Self {
        f16::from_f32(x)
    }
}

/// e^x in f32 as SLEEF's 1-ulp `expf` (its FMA form), which torch's vectorised `exp` is on x86 and
/// so what its softmax and SiLU compute: x = q ln2 + s (ln2 in two parts), a degree-6 polynomial
/// in s, times 2^q in two factors; 0 below -104, infinite above 100. No branches the compiler
/// cannot turn into selects, so it vectorises.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const POLY: [f32; 6] = [0.000_198_527_62, 0.001_393_043_6, 0.008_333_361, 0.041_666_485, 0.166_666_67, 0.5];
    // q clamped so that its halves stay among f32's exponents (outside, the result is replaced).
    let q = (x * std::f32::consts::LOG2_E).round_ties_even().clamp(-150.0, 150.0);
    let s = q.mul_add(-0.693_145_75, x);
    let s = q.mul_add(-1.428_606_8e-6, s);
    let u = POLY[1..].iter().fold(POLY[0], |u, &c| u.mul_add(s, c));
    let u = 1.0 + (s * s).mul_add(u, s);
    // 2^e for a whole e in -75..=75: e + 127 lands in the low mantissa bits of 2^23 + e + 127,
    // and goes to the exponent field from there (bit operations only, so this vectorises).
    let pow2 = |e: f32| f32::from_bits((e + 8_388_735.0).to_bits().wrapping_sub(0x4b00_0000) << 23);
    let half = (q * 0.5).floor();
    let e = u * pow2(half) * pow2(q - half);
    if x < -104.0 {
        0.0
    } else if x > 100.0 {
        f32::INFINITY
    } else {
        e
    }
}

/// The sum of `xs` in the order torch's `vec::reduce_all` adds them with 16-lane vectors (its
/// AVX-512 build; the softmax's denominator): fewer than 16 one by one; else 16 partial sums, the
/// tail added into the first lanes, then halves folded (lane i + lane i+8, +4, +2, +1).
#[inline(always)]
fn torch_sum(xs: &[f32]) -> f32 {
    if xs.len() < LANES {
        return xs.iter().skip(1).fold(xs.first().copied().unwrap_or(0.0), |a, &x| a + x);
    }
    let mut acc = [0f32; LANES];
    acc.copy_from_slice(&xs[..LANES]);
    let chunks = xs[LANES..].chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += x;
    }
    for half in [8, 4, 2, 1] {
        let before = acc;
        for (i, a) in acc.iter_mut().enumerate() {
            *a = before[i] + before[i ^ half];
        }
    }
    acc[0]
}

/// Lanes summed apart (in the order the vector registers hold them) so the sum vectorises.
const LANES: usize = 16;

/// The f32 sum of `f` over `xs`, in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum<T: Value>(xs: &[T], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v.get())).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v.get());
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Which build of the kernels runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// AVX-512 F, BW, VL and DQ.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// The baseline x86-64 (or another architecture).
    Base,
}

/// The best build this CPU runs, capped as oneDNN is by `ONEDNN_MAX_CPU_ISA` (AVX2…: the AVX2
/// build; AVX or SSE41: the baseline), so one variable moves every kernel to a lower level when
/// measuring or testing another CPU's path. Read once.
pub fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var("ONEDNN_MAX_CPU_ISA").unwrap_or_default().to_ascii_uppercase();
        // The highest build the cap lets through: 2 AVX-512, 1 AVX2, 0 the baseline.
        let allowed = match cap.as_str() {
            c if c.starts_with("AVX512") => 2,
            c if c.starts_with("AVX2") => 1,
            c if c.starts_with("AVX") || c.starts_with("SSE") => 0,
            _ => 2,
        };
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if allowed >= 2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") {
                return Level::Avx512;
            }
            if allowed >= 1 && has!("avx2") && has!("fma") {
                return Level::Avx2;
            }
        }
        let _ = allowed;
        Level::Base
    })
}

/// Defines `mod $name` with the kernel compiled three times (`base`, `avx2`, `avx512`) and
/// `run`, which calls the best one this CPU has (detected once, cached by std).
macro_rules! multiversioned {
    ($(#[$doc:meta])* fn $name:ident<T>($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        mod $name {
            use super::*;

            #[inline(always)]
            pub(super) fn kernel<T: Value>($($a: $t),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            pub(super) unsafe fn avx2<T: Value>($($a: $t),*) {
                kernel::<T>($($a),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")]
            pub(super) unsafe fn avx512<T: Value>($($a: $t),*) {
                kernel::<T>($($a),*)
            }

            pub(super) fn run<T: Value>($($a: $t),*) {
                #[cfg(target_arch = "x86_64")]
                match super::level() {
                    // SAFETY: the CPU has every feature the function is compiled for.
                    super::Level::Avx512 => return unsafe { avx512::<T>($($a),*) },
                    // SAFETY: as above.
                    super::Level::Avx2 => return unsafe { avx2::<T>($($a),*) },
                    super::Level::Base => {}
                }
                kernel::<T>($($a),*)
            }
        }
    };
}

multiversioned! {
    /// RMSNorm of each `w.len()`-wide row of `x` into `out`.
    fn rms_rows<T>(x: &[T], w: &[T], out: &mut [T], eps: f32) {
        for (row, o) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
            let mean = lane_sum(row, |v| v * v) / w.len() as f32;
            let r = 1.0 / (mean + eps).sqrt();
            for ((o, &v), &g) in o.iter_mut().zip(row).zip(w) {
                *o = T::put(g.get() * T::put(v.get() * r).get());
            }
        }
    }
}

multiversioned! {
    /// `silu(gate) * up`, element by element.
    fn silu_mul_all<T>(gate: &[T], up: &[T], out: &mut [T]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            let g = g.get();
            *o = T::put(T::put(g / (1.0 + exp(-g))).get() * u.get());
        }
    }
}

multiversioned! {
    /// Softmax of each `keys`-wide row of `scores`, scaled and masked by the same row of `mask`.
    fn softmax_rows<T>(scores: &[T], mask: &[T], out: &mut [T], keys: usize, scale: f32) {
        let mut e = vec![0f32; keys];
        for ((row, m), o) in scores.chunks_exact(keys).zip(mask.chunks_exact(keys)).zip(out.chunks_exact_mut(keys)) {
            for ((e, &s), &m) in e.iter_mut().zip(row).zip(m) {
                *e = T::put(T::put(s.get() * scale).get() + m.get()).get();
            }
            let max = e.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for e in e.iter_mut() {
                *e = exp(*e - max);
            }
            let inv = 1.0 / torch_sum(&e);
            for (o, &e) in o.iter_mut().zip(&e) {
                *o = T::put(e * inv);
            }
        }
    }
}

multiversioned! {
    /// One head's rows rotated as transformers' `rotate_half` rope: row t of `x` at `t * stride`,
    /// `2 * half` wide, with row t of `cos` and `sin` (`half` wide), into row t of `out`.
    fn rope_head<T>(x: &[T], stride: usize, cos: &[T], sin: &[T], out: &mut [T], half: usize) {
        let rows = out.chunks_exact_mut(2 * half).zip(cos.chunks_exact(half).zip(sin.chunks_exact(half)));
        for (t, (o, (c, s))) in rows.enumerate() {
            let (x1, x2) = x[t * stride..t * stride + 2 * half].split_at(half);
            let (o1, o2) = o.split_at_mut(half);
            for i in 0..half {
                let (a, b, c, s) = (x1[i].get(), x2[i].get(), c[i].get(), s[i].get());
                o1[i] = T::put(T::put(a * c).get() - T::put(b * s).get());
                o2[i] = T::put(T::put(b * c).get() + T::put(a * s).get());
            }
        }
    }
}

/// A contiguous CPU tensor's values.
fn values<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> CResult<&'a [T]> {
    match l.contiguous_offsets() {
        Some((from, to)) => Ok(&s.as_slice::<T>()?[from..to]),
        None => candle_core::bail!("fused decoder op: an input is not contiguous"),
    }
}

/// Rows of `width` values split into one run of whole rows per thread.
fn rows_per_task(values: usize, width: usize) -> usize {
    let rows = values / width.max(1);
    rows.div_ceil(rayon::current_num_threads().max(1)).max(1) * width.max(1)
}

type Input<'a> = (&'a CpuStorage, &'a Layout);

/// Calls `$f::<T>($args)` for the storage's dtype: f32, bf16 or f16.
macro_rules! by_dtype {
    ($s:expr, $f:ident($($arg:expr),*)) => {
        match $s {
            CpuStorage::F32(_) => $f::<f32>($($arg),*),
            CpuStorage::BF16(_) => $f::<bf16>($($arg),*),
            CpuStorage::F16(_) => $f::<f16>($($arg),*),
            other => candle_core::bail!("fused decoder op: dtype {:?} is not f32, bf16 or f16", other.dtype()),
        }
    };
}

fn rms<T: Value>((x, lx): Input, (w, lw): Input, eps: f32) -> CResult<CpuStorage> {
    let (x, w) = (values::<T>(x, lx)?, values::<T>(w, lw)?);
    if w.is_empty() || x.len() % w.len() != 0 {
        candle_core::bail!("fused rms-norm: {} values are not rows of the weight's {}", x.len(), w.len());
    }
    let mut out = vec![T::zero(); x.len()];
    let chunk = rows_per_task(x.len(), w.len());
    out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(o, x)| rms_rows::run(x, w, o, eps));
    Ok(T::to_cpu_storage_owned(out))
}

fn silu_mul_of<T: Value>((g, lg): Input, (u, lu): Input) -> CResult<CpuStorage> {
    let (g, u) = (values::<T>(g, lg)?, values::<T>(u, lu)?);
    if g.len() != u.len() {
        candle_core::bail!("fused silu-mul: gate has {} values, up {}", g.len(), u.len());
    }
    let mut out = vec![T::zero(); g.len()];
    let chunk = rows_per_task(g.len(), 1);
    out.par_chunks_mut(chunk).zip(g.par_chunks(chunk).zip(u.par_chunks(chunk))).for_each(|(o, (g, u))| {
        silu_mul_all::run(g, u, o);
    });
    Ok(T::to_cpu_storage_owned(out))
}

/// `scores` (b, heads, len, keys) and `mask` (b, 1, len, keys): each (row, head) block of scores
/// takes its row's block of the mask.
fn softmax_of<T: Value>((s, ls): Input, (m, lm): Input, scale: f32) -> CResult<CpuStorage> {
    let (b, heads, len, keys) = ls.shape().dims4()?;
    if lm.shape().dims4()? != (b, 1, len, keys) {
        candle_core::bail!("fused softmax: mask {:?} for scores {:?}", lm.shape(), ls.shape());
    }
    let (s, m) = (values::<T>(s, ls)?, values::<T>(m, lm)?);
    let mut out = vec![T::zero(); s.len()];
    let block = len * keys;
    if block > 0 {
        out.par_chunks_mut(block).zip(s.par_chunks(block)).enumerate().for_each(|(i, (o, s))| {
            let row = i / heads;
            softmax_rows::run(s, &m[row * block..(row + 1) * block], o, keys, scale);
        });
    }
    Ok(T::to_cpu_storage_owned(out))
}

/// `x` (b, len, heads · d) into (b, heads, len, d), each head rotated by `cos` and `sin` (b, len, d/2).
fn rope_of<T: Value>((x, lx): Input, (c, lc): Input, (s, ls): Input, heads: usize) -> CResult<CpuStorage> {
    let (b, len, width) = lx.shape().dims3()?;
    let half = width / heads.max(1) / 2;
    if heads == 0 || width != heads * 2 * half || lc.shape().dims3()? != (b, len, half) || ls.shape() != lc.shape() {
        candle_core::bail!(
            "fused rope: x {:?} with {heads} heads, cos {:?}, sin {:?}",
            lx.shape(),
            lc.shape(),
            ls.shape()
        );
    }
    let (x, c, s) = (values::<T>(x, lx)?, values::<T>(c, lc)?, values::<T>(s, ls)?);
    let mut out = vec![T::zero(); x.len()];
    let block = len * 2 * half;
    if block > 0 {
        out.par_chunks_mut(block).enumerate().for_each(|(i, o)| {
            let (row, head) = (i / heads, i % heads);
            let rows = row * len * half..(row + 1) * len * half;
            let x = &x[row * len * width + head * 2 * half..];
            rope_head::run(x, width, &c[rows.clone()], &s[rows], o, half);
        });
    }
    Ok(T::to_cpu_storage_owned(out))
}

/// [`rope_heads`]' op: the number of heads.
struct RopeHeads(usize);

impl candle_core::CustomOp3 for RopeHeads {
    fn name(&self) -> &'static str {
        "fused-rope-heads"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> CResult<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() || s1.dtype() != s3.dtype() {
            candle_core::bail!("fused rope: x in {:?}, cos in {:?}, sin in {:?}", s1.dtype(), s2.dtype(), s3.dtype());
        }
        let (b, len, width) = l1.shape().dims3()?;
        let out = by_dtype!(s1, rope_of((s1, l1), (s2, l2), (s3, l3), self.0))?;
        Ok((out, Shape::from((b, self.0, len, width / self.0.max(1)))))
    }
}

/// Which fused step a [`Fused`] op runs, with its constant.
#[derive(Clone, Copy)]
enum Fused {
    RmsNorm(f32),
    SiluMul,
    Softmax(f32),
}

impl CustomOp2 for Fused {
    fn name(&self) -> &'static str {
        match self {
            Fused::RmsNorm(_) => "fused-rms-norm",
            Fused::SiluMul => "fused-silu-mul",
            Fused::Softmax(_) => "fused-masked-softmax",
        }
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> CResult<(CpuStorage, Shape)> {
        if s1.dtype() != s2.dtype() {
            candle_core::bail!("{}: inputs in {:?} and {:?}", self.name(), s1.dtype(), s2.dtype());
        }
        let (a, b) = ((s1, l1), (s2, l2));
        let out = match *self {
            Fused::RmsNorm(eps) => by_dtype!(s1, rms(a, b, eps)),
            Fused::SiluMul => by_dtype!(s1, silu_mul_of(a, b)),
            Fused::Softmax(scale) => by_dtype!(s1, softmax_of(a, b, scale)),
        }?;
        Ok((out, l1.shape().clone()))
    }
}

/// RMSNorm over the last dimension of `x` with `weight` (its width), in `x`'s dtype.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> CResult<Tensor> {
    if !x.device().is_cpu() {
        return unfused::rms_norm(x, weight, eps);
    }
    x.contiguous()?.apply_op2_no_bwd(&weight.contiguous()?, &Fused::RmsNorm(eps as f32))
}

/// `silu(gate) * up`, same shapes.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
    if !gate.device().is_cpu() {
        return unfused::silu_mul(gate, up);
    }
    gate.contiguous()?.apply_op2_no_bwd(&up.contiguous()?, &Fused::SiluMul)
}

/// Attention probabilities: the softmax over keys of `scores * scale + mask`, scores (b, heads,
/// len, keys), an additive mask (b, 1, len, keys).
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> CResult<Tensor> {
    if !scores.device().is_cpu() {
        return unfused::masked_softmax(scores, mask, scale);
    }
    scores.contiguous()?.apply_op2_no_bwd(&mask.contiguous()?, &Fused::Softmax(scale as f32))
}

/// A projection's output (b, len, heads · d) split into heads, (b, heads, len, d), each rotated as
/// transformers' rope (`x * cos + rotate_half(x) * sin`, each product and the sum rounded) by
/// `cos` and `sin` (b, len, d/2).
pub fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor, heads: usize) -> CResult<Tensor> {
    if !x.device().is_cpu() {
        return unfused::rope_heads(x, cos, sin, heads);
    }
    x.contiguous()?.apply_op3_no_bwd(&cos.contiguous()?, &sin.contiguous()?, &RopeHeads(heads))
}

/// The same steps as candle ops, rounding where transformers does: the GPU path, and the
/// reference the tests hold the fused kernels to.
pub mod unfused {
    use super::*;

    /// See [`super::rms_norm`].
    pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> CResult<Tensor> {
        let x32 = x.to_dtype(DType::F32)?;
        let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
        x32.broadcast_mul(&(var + eps)?.sqrt()?.recip()?)?.to_dtype(x.dtype())?.broadcast_mul(weight)
    }

    /// See [`super::rope_heads`].
    pub fn rope_heads(x: &Tensor, cos: &Tensor, sin: &Tensor, heads: usize) -> CResult<Tensor> {
        let (b, len, width) = x.dims3()?;
        let split = x.reshape((b, len, heads, width / heads))?.transpose(1, 2)?.contiguous()?;
        candle_nn::rotary_emb::rope(&split, cos, sin)
    }

    /// See [`super::silu_mul`].
    pub fn silu_mul(gate: &Tensor, up: &Tensor) -> CResult<Tensor> {
        candle_nn::ops::silu(&gate.to_dtype(DType::F32)?)?.to_dtype(gate.dtype())? * up
    }

    /// See [`super::masked_softmax`].
    pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> CResult<Tensor> {
        let scaled = (scores.to_dtype(DType::F32)? * scale)?.to_dtype(scores.dtype())?;
        let masked = scaled.broadcast_add(mask)?;
        candle_nn::ops::softmax_last_dim(&masked.to_dtype(DType::F32)?)?.to_dtype(scores.dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use serde_json::Value as Json;

    fn random(shape: &[usize], seed: u64, spread: f32) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-spread..spread)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn floats(t: &Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The largest |a - b| relative to the largest |b|, and how many values differ at all.
    fn compare(a: &[f32], b: &[f32]) -> (f32, usize) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale;
        (worst, a.iter().zip(b).filter(|(x, y)| x != y).count())
    }

    fn tensor(v: &Json, shape: &[usize], dtype: DType) -> Tensor {
        let v: Vec<f32> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    /// torch's softmax and transformers' eager attention probabilities, SiLU-gated product,
    /// RMSNorm and rope (scripts/fixtures/make_fused_ops.py, torch's AVX-512 kernels) are what the fused
    /// kernels compute: to the bit in bf16 and for the softmax (the same exp, SLEEF's, the same
    /// sum order and roundings), within an ulp for f32's norm and SiLU.
    #[test]
    fn kernels_give_torchs_and_transformers_values() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures/fused-ops.json");
        let json: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut report = Vec::new();
        for row in json["softmax_f32"].as_array().unwrap() {
            let width = row["width"].as_u64().unwrap() as usize;
            let x = tensor(&row["x"], &[1, 1, 6, width], DType::F32);
            let zero = Tensor::zeros((1, 1, 6, width), DType::F32, &Device::Cpu).unwrap();
            let got = floats(&masked_softmax(&x, &zero, 1.0).unwrap());
            let want = floats(&tensor(&row["out"], &[6 * width], DType::F32));
            report.push((format!("softmax f32 width {width}"), compare(&got, &want), got.len()));
        }
        for (name, dtype) in [("bf16", DType::BF16), ("f32", DType::F32)] {
            let a = &json[format!("attention_{name}")];
            let shape: Vec<usize> =
                a["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let mask_shape = [shape[0], 1, shape[2], shape[3]];
            let (s, m) = (tensor(&a["scores"], &shape, dtype), tensor(&a["mask"], &mask_shape, dtype));
            let got = floats(&masked_softmax(&s, &m, a["scale"].as_f64().unwrap()).unwrap());
            report.push((
                format!("attention {name}"),
                compare(&got, &floats(&tensor(&a["out"], &shape, dtype))),
                got.len(),
            ));
            let c = &json[format!("silu_mul_{name}")];
            let got =
                floats(&silu_mul(&tensor(&c["gate"], &[7, 100], dtype), &tensor(&c["up"], &[7, 100], dtype)).unwrap());
            report.push((
                format!("silu_mul {name}"),
                compare(&got, &floats(&tensor(&c["out"], &[700], dtype))),
                got.len(),
            ));
            let r = &json[format!("rms_norm_{name}")];
            let (x, w) = (tensor(&r["x"], &[5, 96], dtype), tensor(&r["weight"], &[96], dtype));
            let got = floats(&rms_norm(&x, &w, r["eps"].as_f64().unwrap()).unwrap());
            report.push((
                format!("rms_norm {name}"),
                compare(&got, &floats(&tensor(&r["out"], &[480], dtype))),
                got.len(),
            ));
            let r = &json[format!("rope_{name}")];
            let (b, n, heads, d) = (2, 5, 3, 16);
            let x = tensor(&r["x"], &[b, n, heads * d], dtype);
            let (cos, sin) = (tensor(&r["cos"], &[b, n, d / 2], dtype), tensor(&r["sin"], &[b, n, d / 2], dtype));
            let got = floats(&rope_heads(&x, &cos, &sin, heads).unwrap());
            report.push((format!("rope {name}"), compare(&got, &floats(&tensor(&r["out"], &[480], dtype))), got.len()));
        }
        for (what, (worst, differ), n) in &report {
            eprintln!("{what}: {differ} of {n} values differ, largest relative difference {worst:.1e}");
        }
        // In f32 two steps may end one ulp apart: torch's mean sums in another order, and its
        // SiLU takes libm's exp for the values after the last whole vector.
        let one_ulp_off = |what: &str| what == "rms_norm f32" || what == "silu_mul f32";
        let bad: Vec<_> = report
            .iter()
            .filter(|(what, (worst, differ), _)| *differ > 0 && !(one_ulp_off(what) && *worst < 2.4e-7))
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }

    /// The kernels compiled for the baseline, AVX2 and AVX-512 give the same bits (no step the
    /// compiler may reorder or contract; `mul_add` is a fused multiply-add on each).
    #[test]
    fn every_isa_build_gives_the_same_bits() {
        let (keys, rows) = (37, 40);
        let scores = floats(&random(&[rows * keys], 1, 12.0));
        let mask: Vec<f32> = (0..rows * keys).map(|i| if i % 7 == 3 { -1e30 } else { 0.0 }).collect();
        let (gate, up) = (floats(&random(&[999], 2, 30.0)), floats(&random(&[999], 3, 2.0)));
        let w = floats(&random(&[keys], 4, 1.5));
        type Kernel<'a> = &'a dyn Fn(&mut [f32]);
        let all = |v: [Kernel; 4]| -> Vec<f32> {
            let mut out = vec![0f32; rows * keys * 2 + 999 + rows * 16];
            let (a, rest) = out.split_at_mut(rows * keys);
            let (b, rest) = rest.split_at_mut(rows * keys);
            let (c, d) = rest.split_at_mut(999);
            v[0](a);
            v[1](b);
            v[2](c);
            v[3](d);
            out
        };
        // rope: 16-wide heads read at a 37-value stride, with 8-wide cos and sin rows.
        let (cos, sin) = (floats(&random(&[rows * 8], 9, 1.0)), floats(&random(&[rows * 8], 10, 1.0)));
        let base = all([
            &|o| softmax_rows::kernel(&scores, &mask, o, keys, 0.3),
            &|o| rms_rows::kernel(&scores, &w, o, 1e-6),
            &|o| silu_mul_all::kernel(&gate, &up, o),
            &|o| rope_head::kernel(&scores, keys, &cos, &sin, o, 8),
        ]);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                let avx2 = unsafe {
                    all([
                        &|o| softmax_rows::avx2(&scores, &mask, o, keys, 0.3),
                        &|o| rms_rows::avx2(&scores, &w, o, 1e-6),
                        &|o| silu_mul_all::avx2(&gate, &up, o),
                        &|o| rope_head::avx2(&scores, keys, &cos, &sin, o, 8),
                    ])
                };
                assert!(base.iter().zip(&avx2).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX2 differs");
            }
            if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") {
                // SAFETY: the CPU has every feature the functions are compiled for.
                let avx512 = unsafe {
                    all([
                        &|o| softmax_rows::avx512(&scores, &mask, o, keys, 0.3),
                        &|o| rms_rows::avx512(&scores, &w, o, 1e-6),
                        &|o| silu_mul_all::avx512(&gate, &up, o),
                        &|o| rope_head::avx512(&scores, keys, &cos, &sin, o, 8),
                    ])
                };
                assert!(base.iter().zip(&avx512).all(|(a, b)| a.to_bits() == b.to_bits()), "AVX-512 differs");
            } else {
                eprintln!("no AVX-512 on this CPU: its build is not compared");
            }
        }
    }

    /// SLEEF's exp is within one ulp of e^x over f32's range, 0 below -104, infinite above 100.
    #[test]
    fn exp_is_within_an_ulp() {
        let mut worst = 0f64;
        for i in 0..=2_000_000 {
            let x = -87.0 + 175.0 * i as f32 / 2_000_000.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            let w = want as f32;
            let ulp = (f32::from_bits(w.to_bits() + 1) - w) as f64;
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst <= 1.0, "{worst} ulp");
        assert_eq!((exp(-104.5), exp(-1e30), exp(0.0)), (0.0, 0.0, 1.0));
        assert_eq!((exp(100.5), exp(f32::INFINITY)), (f32::INFINITY, f32::INFINITY));
    }

    /// The branch-free bf16 rounding is half's (to nearest, ties to even), NaN kept.
    #[test]
    fn bf16_rounding_is_halfs() {
        for bits in (0..u32::MAX).step_by(9_973).chain([0x3f80_8000, 0x3f81_8000, 0x7f7f_ffff, 0xff80_0000]) {
            let x = f32::from_bits(bits);
            let (ours, half) = (<bf16 as Value>::put(x), bf16::from_f32(x));
            assert!(ours.to_bits() == half.to_bits() || (x.is_nan() && ours.is_nan()), "{x:e}: {ours} vs {half}");
        }
    }

    /// Off the CPU the same steps run as candle ops: they agree with the kernels within the last
    /// bit's rounding (candle's softmax takes libm's exp and divides).
    #[test]
    fn unfused_ops_agree_with_the_kernels() {
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            let (b, h, n, keys) = (2, 3, 4, 21);
            let s = random(&[b, h, n, keys], 5, 6.0).to_dtype(dtype).unwrap();
            let m: Vec<f32> = (0..b * n * keys).map(|i| if i % 5 == 1 { -1e4 } else { 0.0 }).collect();
            let m = Tensor::from_vec(m, (b, 1, n, keys), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let (g, u) =
                (random(&[6, 50], 6, 8.0).to_dtype(dtype).unwrap(), random(&[6, 50], 7, 2.0).to_dtype(dtype).unwrap());
            let w = random(&[50], 8, 2.0).to_dtype(dtype).unwrap();
            let x = random(&[2, 5, 3 * 8], 9, 3.0).to_dtype(dtype).unwrap();
            let (cos, sin) = (random(&[2, 5, 4], 10, 1.0), random(&[2, 5, 4], 11, 1.0));
            let (cos, sin) = (cos.to_dtype(dtype).unwrap(), sin.to_dtype(dtype).unwrap());
            let pairs = [
                (masked_softmax(&s, &m, 0.2), unfused::masked_softmax(&s, &m, 0.2)),
                (silu_mul(&g, &u), unfused::silu_mul(&g, &u)),
                (rms_norm(&u, &w, 1e-6), unfused::rms_norm(&u, &w, 1e-6)),
                (rope_heads(&x, &cos, &sin, 3), unfused::rope_heads(&x, &cos, &sin, 3)),
            ];
            let tolerance = if dtype == DType::F32 { 1e-6 } else { 1.0 / 256.0 };
            for (i, (fused, plain)) in pairs.into_iter().enumerate() {
                let (worst, _) = compare(&floats(&fused.unwrap()), &floats(&plain.unwrap()));
                assert!(worst <= tolerance, "{dtype:?} op {i}: {worst}");
            }
        }
    }
}
