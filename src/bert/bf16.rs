//! bf16 linear layers for CPUs with AVX512-BF16 (`vdpbf16ps`): the weight is rounded to bf16 and
//! packed once at load, each call rounds its f32 input to bf16, and products are summed in f32 —
//! the arithmetic of PyTorch's bf16 autocast on CPU (oneDNN), with f32 in and f32 out.
//!
//! Layout: output columns are grouped in panels of 32 (two registers of 16 f32). For panel `p`
//! and input pair `q` the packed weight holds 32 u32s, lane `c` = (W[32p+c][2q], W[32p+c][2q+1])
//! as two bf16s, which is what `vdpbf16ps` multiplies against a broadcast pair of input values.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Output columns per panel (two zmm registers of f32).
const PANEL: usize = 32;
/// Input rows per micro-kernel call.
const MR: usize = 8;
/// Most input rows one thread handles at once (its rows and one weight panel stay in L2).
const MAX_ROWS_PER_TASK: usize = 64;

/// True when this CPU runs the bf16 kernel (AVX-512F and AVX512-BF16), unless
/// `SIGNALKIT_CPU_BF16=off` asks to run as on a CPU without them.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !std::env::var("SIGNALKIT_CPU_BF16").is_ok_and(|v| v == "off")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rounds an f32 to the nearest bf16, ties to even (as `vcvtneps2bf16` does), as raw bits.
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// `y = x Wᵀ + b` with W held in bf16, packed for the AVX512-BF16 kernel.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    out_features: usize,
    in_features: usize,
    pairs: usize,
    panels: usize,
    weight: Vec<u32>,
    bias: Vec<f32>,
    gelu: bool,
}

impl PackedLinear {
    /// Packs a row-major (out_features, in_features) f32 weight and its optional bias.
    pub fn pack(weight: &[f32], out_features: usize, in_features: usize, bias: Option<&[f32]>) -> Self {
        assert_eq!(weight.len(), out_features * in_features, "weight shape");
        let pairs = in_features.div_ceil(2);
        let panels = out_features.div_ceil(PANEL);
        let at = |n: usize, k: usize| {
            if n < out_features && k < in_features { bf16_bits(weight[n * in_features + k]) as u32 } else { 0 }
        };
        let mut packed = vec![0u32; panels * pairs * PANEL];
        packed.par_iter_mut().enumerate().for_each(|(i, v)| {
            let (p, q, c) = (i / (pairs * PANEL), (i / PANEL) % pairs, i % PANEL);
            let n = p * PANEL + c;
            *v = at(n, 2 * q) | (at(n, 2 * q + 1) << 16);
        });
        let mut b = vec![0f32; panels * PANEL];
        if let Some(bias) = bias {
            b[..out_features].copy_from_slice(bias);
        }
        PackedLinear { out_features, in_features, pairs, panels, weight: packed, bias: b, gelu: false }
    }

    /// Packs a candle weight (out, in) and bias (out) into a bf16 layer.
    pub fn from_tensors(weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Self> {
        let (n, k) = weight.dims2()?;
        let w = weight.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let b = bias.map(|b| b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()).transpose()?;
        Ok(Self::pack(&w, n, k, b.as_deref()))
    }

    /// The same layer followed by GELU (erf form, as BERT's `gelu`), applied to each output as it is stored.
    pub fn with_gelu(self) -> Self {
        PackedLinear { gelu: true, ..self }
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Multiplies `rows` rows of `x` (row-major, in_features wide) into `out` (out_features wide).
    pub fn matmul(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        // SAFETY: MaybeUninit<f32> has f32's layout, and only initialised floats are written.
        let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
        self.matmul_into(x, rows, out)
    }

    /// [`Self::matmul`] into memory not yet initialised; every element is written.
    fn matmul_into(&self, x: &[f32], rows: usize, out: &mut [MaybeUninit<f32>]) {
        assert!(supported(), "PackedLinear needs AVX512-BF16");
        assert_eq!(x.len(), rows * self.in_features, "input shape");
        assert_eq!(out.len(), rows * self.out_features, "output shape");
        let a = self.round_input(x, rows);
        let per_task =
            rows.div_ceil(2 * rayon::current_num_threads()).next_multiple_of(MR).clamp(MR, MAX_ROWS_PER_TASK);
        out.par_chunks_mut(per_task * self.out_features).enumerate().for_each(|(t, chunk)| {
            let first = t * per_task;
            let n = chunk.len() / self.out_features;
            self.block(&a[first * self.pairs..(first + n) * self.pairs], n, chunk);
        });
    }

    /// The input rounded to bf16 pairs, one row of `pairs` u32s per input row.
    fn round_input(&self, x: &[f32], rows: usize) -> Vec<u32> {
        let mut a = vec![0u32; rows * self.pairs];
        a.par_chunks_mut(self.pairs).zip(x.par_chunks(self.in_features)).for_each(|(dst, src)| {
            // SAFETY: `supported()` was checked by the caller.
            unsafe { kernel::round_row(src, dst) }
        });
        a
    }

    /// One task: every panel for `rows` consecutive rows.
    fn block(&self, a: &[u32], rows: usize, out: &mut [MaybeUninit<f32>]) {
        for p in 0..self.panels {
            let w = &self.weight[p * self.pairs * PANEL..(p + 1) * self.pairs * PANEL];
            let cols = (self.out_features - p * PANEL).min(PANEL);
            let bias = &self.bias[p * PANEL..(p + 1) * PANEL];
            for r0 in (0..rows).step_by(MR) {
                let tile = Tile {
                    a: &a[r0 * self.pairs..],
                    pairs: self.pairs,
                    w,
                    bias,
                    out: &mut out[r0 * self.out_features + p * PANEL..],
                    ld: self.out_features,
                    cols,
                    gelu: self.gelu,
                };
                // SAFETY: `supported()` was checked by `matmul`.
                unsafe { tile.run((rows - r0).min(MR)) }
            }
        }
    }
}

/// candle custom op: applies a [`PackedLinear`] to an f32 tensor of shape (..., in_features).
impl CustomOp1 for PackedLinear {
    fn name(&self) -> &'static str {
        "bf16-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("bf16-linear takes f32 input, got {:?}", storage.dtype())
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("bf16-linear takes a contiguous input")
        };
        let dims = layout.shape().dims();
        if dims.last() != Some(&self.in_features) {
            candle_core::bail!("bf16-linear expects {} input features, got shape {dims:?}", self.in_features)
        }
        let rows = (end - start) / self.in_features;
        let mut out = Vec::with_capacity(rows * self.out_features);
        self.matmul_into(&data[start..end], rows, out.spare_capacity_mut());
        // SAFETY: `matmul` wrote every element of its output.
        unsafe { out.set_len(rows * self.out_features) };
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = self.out_features;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// Up to MR rows of input against one 32-column weight panel, and where its outputs go.
struct Tile<'a> {
    a: &'a [u32],
    pairs: usize,
    w: &'a [u32],
    bias: &'a [f32],
    out: &'a mut [MaybeUninit<f32>],
    ld: usize,
    cols: usize,
    gelu: bool,
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use std::arch::x86_64::*;

    use super::{MR, PANEL, Tile, bf16_bits};

    /// Rounds one f32 row to bf16 pairs (zero-padded to an even length).
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    pub(super) unsafe fn round_row(src: &[f32], dst: &mut [u32]) {
        let full = src.len() / 16;
        for i in 0..full {
            // SAFETY: 16 floats in bounds are read and 8 u32s (16 bf16) in bounds are written.
            unsafe {
                let v = _mm512_loadu_ps(src.as_ptr().add(16 * i));
                let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(dst.as_mut_ptr().add(8 * i) as *mut __m256i, h);
            }
        }
        for k in 16 * full..src.len() {
            let bits = bf16_bits(src[k]) as u32;
            dst[k / 2] |= if k % 2 == 0 { bits } else { bits << 16 };
        }
    }

    impl Tile<'_> {
        /// Runs the tile for `rows` (1..=MR) rows.
        pub(super) unsafe fn run(self, rows: usize) {
            // SAFETY: forwarded from the caller (the CPU has AVX512-BF16).
            unsafe {
                match rows {
                    8 => self.rows::<8>(),
                    7 => self.rows::<7>(),
                    6 => self.rows::<6>(),
                    5 => self.rows::<5>(),
                    4 => self.rows::<4>(),
                    3 => self.rows::<3>(),
                    2 => self.rows::<2>(),
                    _ => self.rows::<1>(),
                }
            }
        }

        #[target_feature(enable = "avx512f,avx512bf16")]
        unsafe fn rows<const R: usize>(self) {
            const { assert!(R <= MR) };
            assert!(self.a.len() >= (R - 1) * self.pairs + self.pairs && self.w.len() >= self.pairs * PANEL);
            assert!(self.out.len() >= (R - 1) * self.ld + self.cols && self.bias.len() >= PANEL);
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            let (a, w) = (self.a.as_ptr(), self.w.as_ptr());
            for q in 0..self.pairs {
                // SAFETY: the asserts above bound every index read.
                unsafe {
                    let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.add(q * PANEL) as *const _));
                    let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(w.add(q * PANEL + 16) as *const _));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r * self.pairs + q) as i32));
                        acc[0] = _mm512_dpbf16_ps(acc[0], x, w0);
                        acc[1] = _mm512_dpbf16_ps(acc[1], x, w1);
                    }
                }
            }
            let mask = |from: usize| -> __mmask16 {
                let n = self.cols.saturating_sub(from).min(16);
                ((1u32 << n) - 1) as __mmask16
            };
            // SAFETY: the bias holds PANEL values; stores are masked to `cols` within the row.
            unsafe {
                let (b0, b1) = (_mm512_loadu_ps(self.bias.as_ptr()), _mm512_loadu_ps(self.bias.as_ptr().add(16)));
                for (r, acc) in acc.iter().enumerate() {
                    let o = self.out.as_mut_ptr().add(r * self.ld) as *mut f32;
                    let (mut y0, mut y1) = (_mm512_add_ps(acc[0], b0), _mm512_add_ps(acc[1], b1));
                    if self.gelu {
                        (y0, y1) = (gelu(y0), gelu(y1));
                    }
                    _mm512_mask_storeu_ps(o, mask(0), y0);
                    _mm512_mask_storeu_ps(o.add(16), mask(16), y1);
                }
            }
        }
    }

    /// `exp(v)` to about 2 ulp: 2ⁿ by `vscalefps` times a degree-6 polynomial on the remainder.
    #[target_feature(enable = "avx512f")]
    fn exp(v: __m512) -> __m512 {
        let v = _mm512_max_ps(v, _mm512_set1_ps(-104.0));
        let n = _mm512_roundscale_ps::<0>(_mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::LOG2_E)));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), v);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        let p = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0]
            .iter()
            .fold(_mm512_setzero_ps(), |acc, &c| _mm512_fmadd_ps(acc, r, _mm512_set1_ps(c)));
        _mm512_scalef_ps(p, n)
    }

    /// GELU, `x/2 · (1 + erf(x/√2))`, with erf by Abramowitz & Stegun 7.1.26 (error < 1.5e-7).
    #[target_feature(enable = "avx512f")]
    pub(super) fn gelu(x: __m512) -> __m512 {
        let z = _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
        let one = _mm512_set1_ps(1.0);
        let t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.327_591_1), one));
        let poly = [1.061_405_4, -1.453_152, 1.421_413_8, -0.284_496_74, 0.254_829_6]
            .iter()
            .fold(_mm512_setzero_ps(), |acc, &c| _mm512_fmadd_ps(acc, t, _mm512_set1_ps(c)));
        let tail = _mm512_mul_ps(_mm512_mul_ps(poly, t), exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z))));
        let erf_abs = _mm512_sub_ps(one, tail);
        let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
        let erf = _mm512_mask_sub_ps(erf_abs, neg, _mm512_setzero_ps(), erf_abs);
        _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5)), _mm512_add_ps(one, erf))
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod kernel {
    use super::Tile;

    pub(super) unsafe fn round_row(_: &[f32], _: &mut [u32]) {
        unreachable!("bf16 kernel on a non-x86 CPU")
    }
    impl Tile<'_> {
        pub(super) unsafe fn run(self, _: usize) {
            unreachable!("bf16 kernel on a non-x86 CPU")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], rows: usize, n: usize, k: usize) -> Vec<f32> {
        let r = |v: f32| f32::from_bits((bf16_bits(v) as u32) << 16) as f64;
        (0..rows * n)
            .map(|i| {
                let (row, col) = (i / n, i % n);
                let dot: f64 = (0..k).map(|j| r(x[row * k + j]) * r(w[col * k + j])).sum();
                (dot + b[col] as f64) as f32
            })
            .collect()
    }

    #[test]
    fn kernel_equals_bf16_rounded_product_on_awkward_shapes() {
        if !supported() {
            eprintln!("SKIPPED: this CPU has no AVX512-BF16; the bf16 kernel is not run here");
            return;
        }
        for &(rows, n, k) in &[(1, 1, 1), (3, 5, 7), (9, 33, 17), (17, 64, 32), (130, 70, 45)] {
            let x: Vec<f32> = (0..rows * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0).collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
            let layer = PackedLinear::pack(&w, n, k, Some(&b));
            let mut out = vec![f32::NAN; rows * n];
            layer.matmul(&x, rows, &mut out);
            let want = reference(&x, &w, &b, rows, n, k);
            for (i, (o, e)) in out.iter().zip(&want).enumerate() {
                assert!((o - e).abs() <= 1e-4 * (1.0 + e.abs()), "({rows},{n},{k}) at {i}: {o} vs {e}");
            }
        }
    }

    #[test]
    fn fused_gelu_matches_erf_gelu() {
        if !supported() {
            eprintln!("SKIPPED: this CPU has no AVX512-BF16; the bf16 kernel is not run here");
            return;
        }
        let (rows, n, k) = (5, 40, 1);
        let x: Vec<f32> = (0..rows).map(|i| i as f32).collect();
        let w: Vec<f32> = (0..n).map(|j| (j as f32 - 20.0) / 4.0).collect();
        let layer = PackedLinear::pack(&w, n, k, None).with_gelu();
        let mut out = vec![0f32; rows * n];
        layer.matmul(&x, rows, &mut out);
        let plain = reference(&x, &w, &vec![0.0; n], rows, n, k);
        for (o, v) in out.iter().zip(plain) {
            let want = 0.5 * v as f64 * (1.0 + statrs::function::erf::erf(v as f64 / std::f64::consts::SQRT_2));
            assert!((*o as f64 - want).abs() < 2e-6 * (1.0 + want.abs()), "gelu({v}) = {o}, want {want}");
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even stays
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, odd rounds up
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// GFLOP/s of the bf16 kernel vs candle's f32 matmul on BERT-base shapes (batch 32 × 64
    /// tokens): `cargo test --release --lib bf16::speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bert_base_shapes() {
        let rows = 2048;
        for &(n, k) in &[(768, 768), (2304, 768), (3072, 768), (768, 3072)] {
            let x = Tensor::randn(0f32, 1.0, (rows, k), &candle_core::Device::Cpu).unwrap();
            let w = Tensor::randn(0f32, 0.05, (n, k), &candle_core::Device::Cpu).unwrap();
            let layer = PackedLinear::from_tensors(&w, None).unwrap();
            let flops = 2.0 * (rows * n * k) as f64;
            let time = |f: &dyn Fn()| {
                f();
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    f();
                }
                t.elapsed().as_secs_f64() / 5.0
            };
            let wt = w.t().unwrap();
            let f32s = time(&|| drop(x.matmul(&wt).unwrap()));
            let bf16 = time(&|| drop(x.apply_op1_no_bwd(&layer).unwrap()));
            eprintln!(
                "({rows}x{k}) x ({k}x{n}): f32 {:.0} GFLOP/s, bf16 {:.0} GFLOP/s ({:.2}x)",
                flops / f32s / 1e9,
                flops / bf16 / 1e9,
                f32s / bf16
            );
        }
    }
}
