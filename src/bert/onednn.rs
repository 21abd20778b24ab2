//! Linear layers on oneDNN's matmul, the library PyTorch runs on CPU: it picks AMX, AVX512-BF16,
//! AVX-512 or AVX2 for the CPU at run time, so one binary runs each machine's best path.
//!
//! The library is loaded at run time (`libdnnl.so.3`, oneDNN 3.x with the GNU OpenMP runtime, as
//! `scripts/setup.sh` installs it into `.tools/onednn`); without it, or with
//! `SIGNALKIT_ONEDNN=off`, the encoder keeps candle's matmul and the AVX512-BF16 kernel. oneDNN's
//! own `ONEDNN_MAX_CPU_ISA` caps the ISA it may use (the tests run each path that way).
//!
//! A layer keeps its weight in its own dtype; for each batch height it builds a matmul primitive
//! whose weight layout oneDNN chooses (`format_tag::any`), and packs the weight once per layout.
//! The encoder uses it with f32 activations (bias, GELU); `ask`'s decoder with f32 or bf16
//! activations in and out, with or without bias ([`DnnlLinear::for_decoder`]).

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::bf16::bf16_bits;

type Status = c_int;
type Handle = *mut c_void;

// Values from oneDNN 3.x's dnnl_types.h (stable across 3.x: the C API is versioned by major).
const SUCCESS: Status = 0;
const DT_BF16: c_int = 2;
const DT_F32: c_int = 3;
const TAG_ANY: c_int = 1;
const TAG_AB: c_int = 3;
const TAG_BA: c_int = 14;
const ENGINE_CPU: c_int = 1;
const STREAM_DEFAULT: c_uint = 1;
const ARG_SRC: c_int = 1;
const ARG_DST: c_int = 17;
const ARG_WEIGHTS: c_int = 33;
const ARG_BIAS: c_int = 41;
const QUERY_IMPL_INFO: c_int = 8;
const QUERY_WEIGHTS_MD: c_int = 131;
const ELTWISE_GELU_ERF: c_int = 49;
/// `DNNL_MEMORY_ALLOCATE`: the library allocates the buffer.
const ALLOCATE: Handle = usize::MAX as Handle;
/// Batch heights kept per layer before the oldest primitives are dropped.
const MAX_HEIGHTS: usize = 64;

/// The batch height (rows) a decoder projection is packed for at load: a batch of 16 prompts of
/// 16 tokens. On Zen 4, at oneDNN's AVX2, AVX-512 and AVX512-BF16 levels, every height from 1 to
/// 2,000 asked for this same layout.
const PACKED_AT_LOAD: usize = 256;

#[repr(C)]
struct ExecArg {
    arg: c_int,
    memory: Handle,
}

#[repr(C)]
struct Version {
    major: c_int,
    minor: c_int,
    patch: c_int,
    hash: *const c_char,
    cpu_runtime: c_uint,
    gpu_runtime: c_uint,
}

/// The C functions used, resolved from the loaded library.
struct Api {
    engine_create: unsafe extern "C" fn(*mut Handle, c_int, usize) -> Status,
    stream_create: unsafe extern "C" fn(*mut Handle, Handle, c_uint) -> Status,
    stream_wait: unsafe extern "C" fn(Handle) -> Status,
    md_create: unsafe extern "C" fn(*mut Handle, c_int, *const i64, c_int, c_int) -> Status,
    md_create_strided: unsafe extern "C" fn(*mut Handle, c_int, *const i64, c_int, *const i64) -> Status,
    md_destroy: unsafe extern "C" fn(Handle) -> Status,
    md_equal: unsafe extern "C" fn(Handle, Handle) -> c_int,
    matmul_pd: unsafe extern "C" fn(*mut Handle, Handle, Handle, Handle, Handle, Handle, Handle) -> Status,
    reorder_pd: unsafe extern "C" fn(*mut Handle, Handle, Handle, Handle, Handle, Handle) -> Status,
    pd_query: unsafe extern "C" fn(Handle, c_int, c_int, *mut c_void) -> Status,
    pd_query_md: unsafe extern "C" fn(Handle, c_int, c_int) -> Handle,
    pd_destroy: unsafe extern "C" fn(Handle) -> Status,
    prim_create: unsafe extern "C" fn(*mut Handle, Handle) -> Status,
    prim_execute: unsafe extern "C" fn(Handle, Handle, c_int, *const ExecArg) -> Status,
    prim_destroy: unsafe extern "C" fn(Handle) -> Status,
    mem_create: unsafe extern "C" fn(*mut Handle, Handle, Handle, Handle) -> Status,
    mem_destroy: unsafe extern "C" fn(Handle) -> Status,
    mem_md: unsafe extern "C" fn(Handle, *mut Handle) -> Status,
    attr_create: unsafe extern "C" fn(*mut Handle) -> Status,
    attr_destroy: unsafe extern "C" fn(Handle) -> Status,
    attr_set_post_ops: unsafe extern "C" fn(Handle, Handle) -> Status,
    post_ops_create: unsafe extern "C" fn(*mut Handle) -> Status,
    post_ops_append_eltwise: unsafe extern "C" fn(Handle, c_int, f32, f32) -> Status,
    post_ops_destroy: unsafe extern "C" fn(Handle) -> Status,
    version: unsafe extern "C" fn() -> *const Version,
}

/// The loaded library, its CPU engine and one stream (executions are serialised through it).
pub struct OneDnn {
    api: Api,
    engine: Handle,
    stream: Mutex<Handle>,
    path: PathBuf,
    _lib: libloading::Library,
}

// SAFETY: oneDNN engines are thread-safe; the stream is only used under its mutex.
unsafe impl Send for OneDnn {}
unsafe impl Sync for OneDnn {}

fn check(status: Status, what: &str) -> candle_core::Result<()> {
    if status == SUCCESS { Ok(()) } else { candle_core::bail!("oneDNN {what} failed (status {status})") }
}

/// Where to look for `libdnnl.so.3`: `SIGNALKIT_ONEDNN` (a file), the project's `.tools/onednn`
/// beside the binary or the source tree, then the system's library path.
fn candidates() -> Vec<PathBuf> {
    if let Ok(p) = std::env::var("SIGNALKIT_ONEDNN") {
        return vec![PathBuf::from(p)];
    }
    let lib = Path::new(".tools/onednn/lib/libdnnl.so.3");
    let mut roots: Vec<PathBuf> = std::env::current_exe()
        .ok()
        .map(|exe| exe.ancestors().skip(1).take(4).map(Path::to_path_buf).collect())
        .unwrap_or_default();
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut found: Vec<PathBuf> = roots.iter().map(|r| r.join(lib)).filter(|p| p.is_file()).collect();
    found.push(PathBuf::from("libdnnl.so.3"));
    found
}

/// The library, loaded once; `None` when it is switched off or cannot be loaded.
pub fn library() -> Option<&'static OneDnn> {
    static LIB: OnceLock<Option<OneDnn>> = OnceLock::new();
    LIB.get_or_init(|| {
        if std::env::var("SIGNALKIT_ONEDNN").is_ok_and(|v| v == "off") {
            return None;
        }
        candidates().into_iter().find_map(|p| OneDnn::open(&p).ok())
    })
    .as_ref()
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {
        // SAFETY: the symbol is a oneDNN 3.x C function with the signature of the field it fills.
        *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }?
    };
}

impl OneDnn {
    fn open(path: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        // SAFETY: loading oneDNN runs only its own initialisers.
        let lib = unsafe { libloading::Library::new(path) }?;
        let api = Api {
            engine_create: sym!(lib, "dnnl_engine_create"),
            stream_create: sym!(lib, "dnnl_stream_create"),
            stream_wait: sym!(lib, "dnnl_stream_wait"),
            md_create: sym!(lib, "dnnl_memory_desc_create_with_tag"),
            md_create_strided: sym!(lib, "dnnl_memory_desc_create_with_strides"),
            md_destroy: sym!(lib, "dnnl_memory_desc_destroy"),
            md_equal: sym!(lib, "dnnl_memory_desc_equal"),
            matmul_pd: sym!(lib, "dnnl_matmul_primitive_desc_create"),
            reorder_pd: sym!(lib, "dnnl_reorder_primitive_desc_create"),
            pd_query: sym!(lib, "dnnl_primitive_desc_query"),
            pd_query_md: sym!(lib, "dnnl_primitive_desc_query_md"),
            pd_destroy: sym!(lib, "dnnl_primitive_desc_destroy"),
            prim_create: sym!(lib, "dnnl_primitive_create"),
            prim_execute: sym!(lib, "dnnl_primitive_execute"),
            prim_destroy: sym!(lib, "dnnl_primitive_destroy"),
            mem_create: sym!(lib, "dnnl_memory_create"),
            mem_destroy: sym!(lib, "dnnl_memory_destroy"),
            mem_md: sym!(lib, "dnnl_memory_get_memory_desc"),
            attr_create: sym!(lib, "dnnl_primitive_attr_create"),
            attr_destroy: sym!(lib, "dnnl_primitive_attr_destroy"),
            attr_set_post_ops: sym!(lib, "dnnl_primitive_attr_set_post_ops"),
            post_ops_create: sym!(lib, "dnnl_post_ops_create"),
            post_ops_append_eltwise: sym!(lib, "dnnl_post_ops_append_eltwise"),
            post_ops_destroy: sym!(lib, "dnnl_post_ops_destroy"),
            version: sym!(lib, "dnnl_version"),
        };
        let (mut engine, mut stream) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: out-pointers to locals; the engine outlives the stream (both live with `self`).
        unsafe {
            check((api.engine_create)(&mut engine, ENGINE_CPU, 0), "engine")?;
            check((api.stream_create)(&mut stream, engine, STREAM_DEFAULT), "stream")?;
        }
        Ok(OneDnn { api, engine, stream: Mutex::new(stream), path: path.to_path_buf(), _lib: lib })
    }

    /// "oneDNN 3.2.0 (path)".
    pub fn describe(&self) -> String {
        // SAFETY: dnnl_version returns a pointer to a static struct.
        let v = unsafe { &*(self.api.version)() };
        format!("oneDNN {}.{}.{} ({})", v.major, v.minor, v.patch, self.path.display())
    }

    fn md(&self, dims: [i64; 2], dt: c_int, tag: c_int) -> candle_core::Result<Md<'_>> {
        let mut h = std::ptr::null_mut();
        // SAFETY: `dims` holds the two dimensions read.
        check(unsafe { (self.api.md_create)(&mut h, 2, dims.as_ptr(), dt, tag) }, "memory descriptor")?;
        Ok(Md { dnnl: self, h })
    }

    /// An f32 descriptor of a (rows × cols) matrix read through `strides` (in elements).
    fn md_strided(&self, dims: [usize; 2], strides: [usize; 2]) -> candle_core::Result<Md<'_>> {
        let (dims, strides) = (dims.map(|d| d as i64), strides.map(|s| s as i64));
        let mut h = std::ptr::null_mut();
        // SAFETY: `dims` and `strides` hold the two values read each.
        let made = unsafe { (self.api.md_create_strided)(&mut h, 2, dims.as_ptr(), DT_F32, strides.as_ptr()) };
        check(made, "memory descriptor")?;
        Ok(Md { dnnl: self, h })
    }

    /// A memory over `data` (not owned: it must outlive the execution) or allocated (`ALLOCATE`).
    fn memory(&self, md: Handle, data: Handle) -> candle_core::Result<Mem<'_>> {
        let mut h = std::ptr::null_mut();
        // SAFETY: `md` is a live descriptor; `data` is large enough for it or ALLOCATE.
        check(unsafe { (self.api.mem_create)(&mut h, md, self.engine, data) }, "memory")?;
        Ok(Mem { dnnl: self, h })
    }

    /// Runs `prim` with `args` on the stream and waits for it.
    fn execute(&self, prim: Handle, args: &[ExecArg]) -> candle_core::Result<()> {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the primitive and memories are live; the stream is held under its lock.
        unsafe {
            check((self.api.prim_execute)(prim, *stream, args.len() as c_int, args.as_ptr()), "matmul")?;
            check((self.api.stream_wait)(*stream), "stream wait")
        }
    }

    /// The implementation oneDNN picks for a (rows × k) · (k × n) matmul in `dtype`, e.g.
    /// "brg:avx512_core_amx": what `signalkit env` prints.
    pub fn matmul_impl(&self, rows: usize, k: usize, n: usize, bf16: bool) -> candle_core::Result<String> {
        let kind = Kind { bf16, bf16_out: false, bias: true, gelu: false };
        let plan = Plan::new(self, Shape2 { rows, k, n }, kind)?;
        Ok(plan.impl_name())
    }
}

/// A memory descriptor, destroyed on drop.
struct Md<'a> {
    dnnl: &'a OneDnn,
    h: Handle,
}

impl Drop for Md<'_> {
    fn drop(&mut self) {
        // SAFETY: created by md_create and destroyed once.
        unsafe { (self.dnnl.api.md_destroy)(self.h) };
    }
}

/// A memory object, destroyed on drop (a user buffer it wraps is not freed).
struct Mem<'a> {
    dnnl: &'a OneDnn,
    h: Handle,
}

impl Drop for Mem<'_> {
    fn drop(&mut self) {
        // SAFETY: created by mem_create and destroyed once.
        unsafe { (self.dnnl.api.mem_destroy)(self.h) };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape2 {
    rows: usize,
    k: usize,
    n: usize,
}

/// What a matmul computes besides the product: its dtypes, bias and post-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    /// Inputs and weight in bf16 (products summed in f32), else f32.
    bf16: bool,
    /// The output rounded once to bf16 (after the bias), else f32.
    bf16_out: bool,
    bias: bool,
    gelu: bool,
}

impl Kind {
    fn src_dt(self) -> c_int {
        if self.bf16 { DT_BF16 } else { DT_F32 }
    }

    fn dst_dt(self) -> c_int {
        if self.bf16_out { DT_BF16 } else { DT_F32 }
    }
}

/// One matmul primitive for one batch height, and its descriptor (for the weight layout).
struct Plan<'a> {
    dnnl: &'a OneDnn,
    pd: Handle,
    prim: Handle,
}

// SAFETY: primitives are executed under the library's stream lock only.
unsafe impl Send for Plan<'_> {}

impl Drop for Plan<'_> {
    fn drop(&mut self) {
        // SAFETY: both were created by this plan and are destroyed once.
        unsafe {
            (self.dnnl.api.prim_destroy)(self.prim);
            (self.dnnl.api.pd_destroy)(self.pd);
        }
    }
}

impl<'a> Plan<'a> {
    fn new(dnnl: &'a OneDnn, s: Shape2, kind: Kind) -> candle_core::Result<Self> {
        let (rows, k, n) = (s.rows as i64, s.k as i64, s.n as i64);
        let src = dnnl.md([rows, k], kind.src_dt(), TAG_AB)?;
        let weights = dnnl.md([k, n], kind.src_dt(), TAG_ANY)?;
        let bias = if kind.bias { Some(dnnl.md([1, n], DT_F32, TAG_AB)?) } else { None };
        let dst = dnnl.md([rows, n], kind.dst_dt(), TAG_AB)?;
        let attr = Attr::new(dnnl, kind.gelu)?;
        Self::of(dnnl, [&src, &weights, &dst], bias.as_ref(), &attr)
    }

    /// The matmul of `src`, `weights` and `dst` descriptors (and a bias, when given).
    fn of(dnnl: &'a OneDnn, mds: [&Md; 3], bias: Option<&Md>, attr: &Attr) -> candle_core::Result<Self> {
        let [src, weights, dst] = mds;
        let (mut pd, mut prim) = (std::ptr::null_mut(), std::ptr::null_mut());
        let bias_h = bias.map_or(std::ptr::null_mut(), |b| b.h);
        // SAFETY: every descriptor is live for the call (a null bias: none); out-pointers to locals.
        unsafe {
            check(
                (dnnl.api.matmul_pd)(&mut pd, dnnl.engine, src.h, weights.h, bias_h, dst.h, attr.h),
                "matmul descriptor",
            )?;
            if let Err(e) = check((dnnl.api.prim_create)(&mut prim, pd), "matmul primitive") {
                (dnnl.api.pd_destroy)(pd);
                return Err(e);
            }
        }
        Ok(Plan { dnnl, pd, prim })
    }

    fn impl_name(&self) -> String {
        let mut name: *const c_char = std::ptr::null();
        // SAFETY: the query writes a pointer to a string owned by the descriptor.
        let ok =
            unsafe { (self.dnnl.api.pd_query)(self.pd, QUERY_IMPL_INFO, 0, (&mut name as *mut *const c_char).cast()) };
        if ok != SUCCESS || name.is_null() {
            return "unknown".into();
        }
        // SAFETY: a NUL-terminated string owned by the live descriptor, copied out.
        unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
    }

    /// The weight layout this primitive wants (owned by the descriptor).
    fn weights_md(&self) -> Handle {
        // SAFETY: the descriptor is live; the returned md is owned by it.
        unsafe { (self.dnnl.api.pd_query_md)(self.pd, QUERY_WEIGHTS_MD, 0) }
    }
}

/// Primitive attributes: a GELU (erf) post-op or none.
struct Attr<'a> {
    dnnl: &'a OneDnn,
    h: Handle,
}

impl<'a> Attr<'a> {
    fn new(dnnl: &'a OneDnn, gelu: bool) -> candle_core::Result<Self> {
        if !gelu {
            return Ok(Attr { dnnl, h: std::ptr::null_mut() });
        }
        let (mut attr, mut ops) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: out-pointers to locals; the attribute copies the post-ops, which are then freed.
        unsafe {
            check((dnnl.api.attr_create)(&mut attr), "attributes")?;
            check((dnnl.api.post_ops_create)(&mut ops), "post-ops")?;
            let appended = (dnnl.api.post_ops_append_eltwise)(ops, ELTWISE_GELU_ERF, 0.0, 0.0);
            let set = (dnnl.api.attr_set_post_ops)(attr, ops);
            (dnnl.api.post_ops_destroy)(ops);
            check(appended, "GELU post-op")?;
            check(set, "post-ops")?;
        }
        Ok(Attr { dnnl, h: attr })
    }
}

impl Drop for Attr<'_> {
    fn drop(&mut self) {
        if !self.h.is_null() {
            // SAFETY: created by attr_create and destroyed once.
            unsafe { (self.dnnl.api.attr_destroy)(self.h) };
        }
    }
}

/// The weight in the compute dtype, plain (`ba`: candle's (out, in) row-major), for packing: the
/// model's own tensor where it has that dtype already, so loading holds no second copy (a GGUF's
/// dequantised weights, or a 7B model's 14 GB in bf16, would otherwise be held twice).
struct PlainWeight(Tensor);

impl PlainWeight {
    fn new(weight: &Tensor, bf16: bool) -> candle_core::Result<Self> {
        let dtype = if bf16 { candle_core::DType::BF16 } else { candle_core::DType::F32 };
        Ok(PlainWeight(weight.to_dtype(dtype)?.contiguous()?))
    }

    /// The first value's address; valid while `self` lives (nothing writes an inference weight).
    fn ptr(&self) -> candle_core::Result<Handle> {
        let (storage, layout) = self.0.storage_and_layout();
        let at = layout.start_offset();
        match &*storage {
            candle_core::Storage::Cpu(CpuStorage::F32(v)) => Ok(v[at..].as_ptr() as Handle),
            candle_core::Storage::Cpu(CpuStorage::BF16(v)) => Ok(v[at..].as_ptr() as Handle),
            _ => candle_core::bail!("onednn-linear: the weight is not an f32 or bf16 CPU tensor"),
        }
    }
}

/// A weight packed into one oneDNN layout, and that layout (the descriptor the memory owns).
struct Packed {
    md: Handle,
    mem: Mem<'static>,
}

/// `y = x Wᵀ + b` (optionally followed by GELU, or without bias) on oneDNN: f32 in and out,
/// computed in f32 or (inputs and weight rounded to bf16, products summed in f32) in bf16, as
/// PyTorch's autocast; or bf16 in and out (the sum with its bias rounded once, as torch's bf16
/// addmm).
pub struct DnnlLinear {
    dnnl: &'static OneDnn,
    k: usize,
    n: usize,
    kind: Kind,
    bias: Option<Vec<f32>>,
    state: Mutex<State>,
}

/// Primitives by batch height, and the weight packed for each layout they asked for. The plain
/// weight is kept only until the first layout is packed: later layouts are reordered from that
/// one, so a model's weights are held once, not twice (a 7B model in bf16 is 14 GB).
#[derive(Default)]
struct State {
    plain: Option<PlainWeight>,
    plans: HashMap<usize, (Plan<'static>, usize)>,
    packed: Vec<Packed>,
}

// SAFETY: all oneDNN objects are used under `state`'s mutex and the library's stream lock.
unsafe impl Send for DnnlLinear {}
unsafe impl Sync for DnnlLinear {}

impl std::fmt::Debug for DnnlLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DnnlLinear({}x{}, {:?})", self.n, self.k, self.kind)
    }
}

impl DnnlLinear {
    /// The layer for an f32 candle weight (out, in) and bias (out), or `None` when oneDNN is not
    /// loaded, the model computes in another dtype (f16), or [`chosen`] prefers another kernel.
    pub fn new(weight: &Tensor, bias: &Tensor, bf16: bool) -> candle_core::Result<Option<Self>> {
        let Some(dnnl) = library() else { return Ok(None) };
        let (n, k) = weight.dims2()?;
        if weight.dtype() != candle_core::DType::F32 || chosen(dnnl, k, n, bf16).is_none() {
            return Ok(None);
        }
        Self::build(dnnl, weight, Some(bias), bf16).map(Some)
    }

    /// A decoder projection (`ask`) for a candle weight (out, in) and optional bias in the model's
    /// dtype: f32 in and out for f32, bf16 in and out for bf16. `None` when oneDNN is not loaded,
    /// the weight is not on the CPU, the dtype is another (f16), or [`decoder_kernel`] finds no
    /// kernel worth taking (then candle's matmul is faster).
    pub fn for_decoder(weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Option<Self>> {
        let Some(dnnl) = library() else { return Ok(None) };
        let (n, k) = weight.dims2()?;
        let bf16 = match weight.dtype() {
            candle_core::DType::F32 => false,
            candle_core::DType::BF16 => true,
            _ => return Ok(None),
        };
        if !weight.device().is_cpu() || decoder_kernel(dnnl, k, n, bf16).is_none() {
            return Ok(None);
        }
        let layer = Self::build(dnnl, weight, bias, bf16)?;
        let layer = DnnlLinear { kind: Kind { bf16_out: bf16, ..layer.kind }, ..layer };
        // Packed at load: the first batch pays no reorder, and the model's own tensor is let go
        // layer by layer as the model loads (a height that asks for another layout later gets it
        // reordered from this one).
        layer.plan_for(&mut layer.state.lock().unwrap_or_else(|e| e.into_inner()), PACKED_AT_LOAD)?;
        Ok(Some(layer))
    }

    /// The layer on oneDNN whichever kernel it picks (the tests use it on every ISA path).
    fn build(dnnl: &'static OneDnn, weight: &Tensor, bias: Option<&Tensor>, bf16: bool) -> candle_core::Result<Self> {
        let (n, k) = weight.dims2()?;
        let weight = PlainWeight::new(weight, bf16)?;
        let bias = bias.map(|b| b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()).transpose()?;
        let kind = Kind { bf16, bf16_out: false, bias: bias.is_some(), gelu: false };
        let state = Mutex::new(State { plain: Some(weight), ..State::default() });
        Ok(DnnlLinear { dnnl, k, n, kind, bias, state })
    }

    /// The same layer followed by GELU (erf form, BERT's `gelu`), fused into the matmul.
    pub fn with_gelu(self) -> Self {
        DnnlLinear { kind: Kind { gelu: true, ..self.kind }, ..self }
    }

    /// Multiplies `rows` rows at `src` (k wide, in the compute dtype) into `dst` (n wide, in the
    /// output dtype); both buffers must hold that many rows.
    fn matmul(&self, src: Handle, rows: usize, dst: Handle) -> candle_core::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let slot = self.plan_for(&mut state, rows)?;
        let plan = &state.plans[&rows].0;
        let (r, k, n) = (rows as i64, self.k as i64, self.n as i64);
        let (src_md, dst_md) =
            (self.dnnl.md([r, k], self.kind.src_dt(), TAG_AB)?, self.dnnl.md([r, n], self.kind.dst_dt(), TAG_AB)?);
        let src = self.dnnl.memory(src_md.h, src)?;
        let dst = self.dnnl.memory(dst_md.h, dst)?;
        let bias_md = self.dnnl.md([1, n], DT_F32, TAG_AB)?;
        let bias = match &self.bias {
            Some(b) => Some(self.dnnl.memory(bias_md.h, b.as_ptr() as Handle)?),
            None => None,
        };
        let mut args = vec![
            ExecArg { arg: ARG_SRC, memory: src.h },
            ExecArg { arg: ARG_WEIGHTS, memory: state.packed[slot].mem.h },
            ExecArg { arg: ARG_DST, memory: dst.h },
        ];
        args.extend(bias.as_ref().map(|b| ExecArg { arg: ARG_BIAS, memory: b.h }));
        self.dnnl.execute(plan.prim, &args)
    }

    /// f32 rows in; out in f32 (rounded to bf16 first when computing in bf16).
    fn forward_f32(&self, x: &[f32], rows: usize) -> candle_core::Result<CpuStorage> {
        if self.kind.bf16_out {
            candle_core::bail!("onednn-linear: this layer takes {} input, got f32", self.input_dtype())
        }
        let mut out = vec![0f32; rows * self.n];
        let src: Vec<u16>;
        let src_ptr = if self.kind.bf16 {
            src = x.par_iter().map(|&v| bf16_bits(v)).collect();
            src.as_ptr() as Handle
        } else {
            x.as_ptr() as Handle
        };
        if rows > 0 {
            self.matmul(src_ptr, rows, out.as_mut_ptr() as Handle)?;
        }
        Ok(CpuStorage::F32(out))
    }

    /// bf16 rows in, bf16 out (bf16 layers of the decoder); `T` is candle's bf16 type.
    fn forward_bf16<T: candle_core::WithDType>(&self, x: &[T], rows: usize) -> candle_core::Result<Vec<T>> {
        if !self.kind.bf16_out || T::DTYPE != candle_core::DType::BF16 {
            candle_core::bail!("onednn-linear: this layer takes {} input, got {:?}", self.input_dtype(), T::DTYPE)
        }
        let mut out = vec![T::from_f64(0.0); rows * self.n];
        if rows > 0 {
            self.matmul(x.as_ptr() as Handle, rows, out.as_mut_ptr() as Handle)?;
        }
        Ok(out)
    }

    fn input_dtype(&self) -> &'static str {
        if self.kind.bf16_out { "bf16" } else { "f32" }
    }

    /// Makes sure a primitive for `rows` exists and its weight layout is packed; returns the
    /// index of the packed weight.
    fn plan_for(&self, state: &mut State, rows: usize) -> candle_core::Result<usize> {
        if let Some((_, slot)) = state.plans.get(&rows) {
            return Ok(*slot);
        }
        if state.plans.len() >= MAX_HEIGHTS {
            state.plans.clear();
        }
        let plan = Plan::new(self.dnnl, Shape2 { rows, k: self.k, n: self.n }, self.kind)?;
        let want = plan.weights_md();
        // SAFETY: both descriptors are live.
        let found = state.packed.iter().position(|p| unsafe { (self.dnnl.api.md_equal)(p.md, want) } != 0);
        let slot = match found {
            Some(i) => i,
            None => {
                let packed = self.pack(state, want)?;
                state.packed.push(packed);
                state.plain = None;
                state.packed.len() - 1
            }
        };
        state.plans.insert(rows, (plan, slot));
        Ok(slot)
    }

    /// Reorders the weight into the layout `want` (the descriptor is copied by the memory): from
    /// the plain weight, or once that is dropped, from the first packed layout.
    fn pack(&self, state: &State, want: Handle) -> candle_core::Result<Packed> {
        let dnnl = self.dnnl;
        let plain_md;
        let plain;
        let (from_md, from) = match (&state.plain, state.packed.first()) {
            (Some(w), _) => {
                plain_md = dnnl.md([self.k as i64, self.n as i64], self.kind.src_dt(), TAG_BA)?;
                plain = dnnl.memory(plain_md.h, w.ptr()?)?;
                (plain_md.h, plain.h)
            }
            (None, Some(first)) => (first.md, first.mem.h),
            (None, None) => candle_core::bail!("onednn-linear: the weight is neither plain nor packed"),
        };
        let packed = dnnl.memory(want, ALLOCATE)?;
        let (mut pd, mut prim) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: descriptors and memories are live; the reorder is destroyed after it ran.
        unsafe {
            check(
                (dnnl.api.reorder_pd)(&mut pd, from_md, dnnl.engine, want, dnnl.engine, std::ptr::null_mut()),
                "weight reorder",
            )?;
            check((dnnl.api.prim_create)(&mut prim, pd), "weight reorder")?;
            let args = [ExecArg { arg: ARG_SRC, memory: from }, ExecArg { arg: ARG_DST, memory: packed.h }];
            let ran = dnnl.execute(prim, &args);
            (dnnl.api.prim_destroy)(prim);
            (dnnl.api.pd_destroy)(pd);
            ran?;
        }
        let mut md = std::ptr::null_mut();
        // SAFETY: the memory is live; the descriptor returned is owned by it.
        check(unsafe { (dnnl.api.mem_md)(packed.h, &mut md) }, "memory descriptor query")?;
        Ok(Packed { md, mem: packed })
    }
}

/// oneDNN's kernel for a (rows × k) · (k × n) matmul when the encoder should use it, else `None`.
/// f32: whenever oneDNN has a JIT kernel (not its reference loops): on Zen 4 it measured 1.8×
/// candle's matmul (docs/benchmarks.md). bf16: only with AMX tiles, or where signalkit's
/// AVX512-BF16 kernel cannot run; on AVX512-BF16 without AMX that kernel measured as fast as
/// oneDNN 3.2's (1.06×, Zen 4), so it is kept there.
pub fn chosen(dnnl: &OneDnn, k: usize, n: usize, bf16: bool) -> Option<String> {
    let name = jit_kernel(dnnl, k, n, bf16)?;
    let wanted = !bf16 || name.contains("amx") || !super::bf16::supported();
    wanted.then_some(name)
}

/// oneDNN's kernel for `ask`'s projections, `None` where candle's matmul is faster: f32 whenever
/// oneDNN has a JIT kernel; bf16 only with bf16 instructions (AVX512-BF16 or AMX: a `brg:`
/// kernel). Without them oneDNN 3.2 emulates bf16 (`gemm:jit:bf16`), and capped to AVX-512 that
/// ran at 0.68× candle's bf16 matmul (bench-every-isa.sh, AMD EPYC Zen 4, docs/benchmarks.md).
pub fn decoder_kernel(dnnl: &OneDnn, k: usize, n: usize, bf16: bool) -> Option<String> {
    jit_kernel(dnnl, k, n, bf16).filter(|name| !bf16 || name.starts_with("brg:"))
}

/// oneDNN's JIT kernel for a (256 × k) · (k × n) matmul in f32 or bf16, `None` where it has
/// only reference loops (or none). Found once per (k, n, dtype) per process (a throwaway
/// primitive each), then cached: a model's layers share a few shapes.
pub fn jit_kernel(dnnl: &OneDnn, k: usize, n: usize, bf16: bool) -> Option<String> {
    static FOUND: OnceLock<Choices> = OnceLock::new();
    FOUND
        .get_or_init(Choices::default)
        .get_or((k, n, bf16), || dnnl.matmul_impl(256, k, n, bf16).ok().filter(|name| !name.starts_with("ref")))
}

/// Kernel choices by (k, n, bf16).
#[derive(Default)]
struct Choices(Mutex<HashMap<(usize, usize, bool), Option<String>>>);

impl Choices {
    /// The choice for `key`, found by `find` the first time only.
    fn get_or(&self, key: (usize, usize, bool), find: impl FnOnce() -> Option<String>) -> Option<String> {
        if let Some(hit) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return hit.clone();
        }
        let found = find();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, found.clone());
        found
    }
}

/// A 2-D f32 operand read in place: (rows, cols) and the steps, in elements, from one row and
/// from one column to the next. A transposed matrix is the same buffer with the steps swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct View {
    /// Rows and columns.
    pub dims: [usize; 2],
    /// Elements between rows, and between columns.
    pub strides: [usize; 2],
}

impl View {
    /// A row-major (rows × cols) matrix; with `transposed`, the transpose of one stored (cols × rows).
    pub fn of(rows: usize, cols: usize, transposed: bool) -> Self {
        let strides = if transposed { [1, rows] } else { [cols, 1] };
        View { dims: [rows, cols], strides }
    }

    /// Elements a buffer needs to hold the view.
    fn span(self) -> usize {
        if self.dims.contains(&0) {
            return 0;
        }
        (self.dims[0] - 1) * self.strides[0] + (self.dims[1] - 1) * self.strides[1] + 1
    }
}

/// Primitives of [`product`] by (a, b, bias): a training step repeats a few shapes, and the
/// operands (weights that change every step) are read in place, never packed.
type Products = Mutex<HashMap<(View, View, bool), Plan<'static>>>;

/// `dst = a · b (+ bias)` in f32, `dst` row-major (a's rows × b's columns), `a` and `b` read
/// through their views (transposes cost no copy): the matmuls of training's forward and backward.
pub fn product(
    dnnl: &'static OneDnn,
    a: (&[f32], View),
    b: (&[f32], View),
    bias: Option<&[f32]>,
    dst: &mut [f32],
) -> candle_core::Result<()> {
    let ((a, va), (b, vb)) = (a, b);
    let [m, k] = va.dims;
    let n = vb.dims[1];
    if vb.dims[0] != k || a.len() < va.span() || b.len() < vb.span() || dst.len() != m * n {
        candle_core::bail!("onednn product: operands {va:?} ({}) and {vb:?} ({}) into {}", a.len(), b.len(), dst.len())
    }
    if bias.is_some_and(|b| b.len() != n) {
        candle_core::bail!("onednn product: a bias of {} for {n} columns", bias.map_or(0, <[f32]>::len))
    }
    if m * n == 0 {
        return Ok(());
    }
    if k == 0 {
        dst.chunks_mut(n).for_each(|row| row.copy_from_slice(bias.unwrap_or(&vec![0.0; n])));
        return Ok(());
    }
    static PLANS: OnceLock<Products> = OnceLock::new();
    let mut plans = PLANS.get_or_init(Products::default).lock().unwrap_or_else(|e| e.into_inner());
    if plans.len() >= 4 * MAX_HEIGHTS {
        plans.clear();
    }
    let key = (va, vb, bias.is_some());
    let (src_md, w_md, dst_md) = (
        dnnl.md_strided(va.dims, va.strides)?,
        dnnl.md_strided(vb.dims, vb.strides)?,
        dnnl.md_strided([m, n], [n, 1])?,
    );
    let bias_md = dnnl.md([1, n as i64], DT_F32, TAG_AB)?;
    let prim = match plans.entry(key) {
        std::collections::hash_map::Entry::Occupied(found) => found.into_mut().prim,
        std::collections::hash_map::Entry::Vacant(slot) => {
            let bias_md = bias.is_some().then_some(&bias_md);
            slot.insert(Plan::of(dnnl, [&src_md, &w_md, &dst_md], bias_md, &Attr::new(dnnl, false)?)?).prim
        }
    };
    let mems = [
        (ARG_SRC, dnnl.memory(src_md.h, a.as_ptr() as Handle)?),
        (ARG_WEIGHTS, dnnl.memory(w_md.h, b.as_ptr() as Handle)?),
        (ARG_DST, dnnl.memory(dst_md.h, dst.as_mut_ptr() as Handle)?),
    ];
    let bias = bias.map(|b| dnnl.memory(bias_md.h, b.as_ptr() as Handle)).transpose()?;
    let mut args: Vec<ExecArg> = mems.iter().map(|(arg, m)| ExecArg { arg: *arg, memory: m.h }).collect();
    args.extend(bias.as_ref().map(|b| ExecArg { arg: ARG_BIAS, memory: b.h }));
    dnnl.execute(prim, &args)
}

/// The implementation oneDNN picks for [`product`] of views `a` and `b` (no bias), e.g.
/// "gemm:jit": what `signalkit env` prints for fine-tuning.
pub fn product_impl(dnnl: &OneDnn, a: View, b: View) -> candle_core::Result<String> {
    let (src, w) = (dnnl.md_strided(a.dims, a.strides)?, dnnl.md_strided(b.dims, b.strides)?);
    let dst = dnnl.md_strided([a.dims[0], b.dims[1]], [b.dims[1], 1])?;
    Ok(Plan::of(dnnl, [&src, &w, &dst], None, &Attr::new(dnnl, false)?)?.impl_name())
}

/// candle custom op: applies a [`DnnlLinear`] to an f32 tensor of shape (..., k).
impl CustomOp1 for DnnlLinear {
    fn name(&self) -> &'static str {
        "onednn-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("onednn-linear takes a contiguous input")
        };
        let dims = layout.shape().dims();
        if dims.last() != Some(&self.k) {
            candle_core::bail!("onednn-linear expects {} input features, got shape {dims:?}", self.k)
        }
        let rows = (end - start) / self.k;
        let out = match storage {
            CpuStorage::F32(data) => self.forward_f32(&data[start..end], rows)?,
            CpuStorage::BF16(data) => CpuStorage::BF16(self.forward_bf16(&data[start..end], rows)?),
            other => candle_core::bail!("onednn-linear takes f32 or bf16 input, got {:?}", other.dtype()),
        };
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("non-empty") = self.n;
        Ok((out, Shape::from(shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};

    /// oneDNN, or a visible skip when it is not installed (`bash scripts/setup.sh` installs it).
    fn dnnl_or_skip() -> Option<&'static OneDnn> {
        let lib = library();
        if lib.is_none() {
            let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/onednn/lib/libdnnl.so.3");
            assert!(!installed.is_file(), "{} is installed but did not load", installed.display());
            eprintln!("SKIPPED: oneDNN is not installed (bash scripts/setup.sh installs it)");
        }
        lib
    }

    fn random(shape: (usize, usize), seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..shape.0 * shape.1).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn f32_and_bf16_match_candle_for_every_height_with_and_without_gelu() {
        let Some(dnnl) = dnnl_or_skip() else { return };
        let path = |bf16| dnnl.matmul_impl(256, 96, 80, bf16).unwrap_or_else(|e| e.to_string());
        eprintln!("{}: f32 {}, bf16 {}", dnnl.describe(), path(false), path(true));
        let (n, k) = (80, 96);
        let (w, b) = (random((n, k), 1), random((1, n), 2).squeeze(0).unwrap());
        let exact = candle_nn::Linear::new(w.clone(), Some(b.clone()));
        // bf16 reference: inputs and weight rounded to bf16, products summed in f32.
        let round =
            |t: &Tensor| t.to_dtype(candle_core::DType::BF16).unwrap().to_dtype(candle_core::DType::F32).unwrap();
        let rounded = candle_nn::Linear::new(round(&w), Some(b.clone()));
        for bf16 in [false, true] {
            for gelu in [false, true] {
                let Some(mut layer) = dnnl
                    .matmul_impl(256, k, n, bf16)
                    .ok()
                    .map(|_| DnnlLinear::build(dnnl, &w, Some(&b), bf16).unwrap())
                else {
                    assert!(bf16, "oneDNN has a JIT f32 matmul on every x86-64 CPU");
                    eprintln!("no JIT bf16 matmul on this ISA: the encoder keeps its own bf16 path or f32");
                    continue;
                };
                if gelu {
                    layer = layer.with_gelu();
                }
                for (i, rows) in [1, 7, 64, 300, 1, 64].into_iter().enumerate() {
                    if i == 4 {
                        // The plain weight is gone once packed; a layout packed later is reordered
                        // from the packed one: replace the first by such a copy and go on.
                        let mut state = layer.state.lock().unwrap();
                        assert!(state.plain.is_none(), "the plain weight is dropped once packed");
                        state.packed[0] = layer.pack(&state, state.packed[0].md).unwrap();
                    }
                    let x = random((rows, k), rows as u64);
                    let got = x.apply_op1_no_bwd(&layer).unwrap();
                    let mut want = if bf16 { rounded.forward(&round(&x)).unwrap() } else { exact.forward(&x).unwrap() };
                    if gelu {
                        want = want.gelu_erf().unwrap();
                    }
                    let d = max_diff(&got, &want);
                    assert!(d < 1e-4, "bf16 {bf16} gelu {gelu} rows {rows}: max |diff| {d}");
                }
            }
        }
    }

    /// A weight already in the compute dtype is the model's own tensor, not a copy (a GGUF's
    /// dequantised weights were held twice while loading: 2.92 GB for 1.44 GB of f32).
    #[test]
    fn a_weight_in_the_compute_dtype_is_shared_not_copied() {
        let Some(dnnl) = dnnl_or_skip() else { return };
        let w = random((80, 96), 3);
        let b = random((1, 80), 4).squeeze(0).unwrap();
        for (weight, bf16) in [(w.clone(), false), (w.to_dtype(candle_core::DType::BF16).unwrap(), true)] {
            let layer = DnnlLinear::build(dnnl, &weight, Some(&b), bf16).unwrap();
            let state = layer.state.lock().unwrap();
            let held = state.plain.as_ref().unwrap().ptr().unwrap();
            assert_eq!(held, PlainWeight(weight.clone()).ptr().unwrap(), "bf16 {bf16}: the weight was copied");
        }
    }

    /// The same check with oneDNN capped to each ISA (`ONEDNN_MAX_CPU_ISA`, read once per
    /// process, so each runs in a child): the AVX2, AVX-512 and AVX512-BF16 kernels on one machine,
    /// and AMX where the CPU has it.
    #[test]
    fn every_isa_path_matches_candle() {
        if dnnl_or_skip().is_none() || std::env::var_os("ONEDNN_MAX_CPU_ISA").is_some() {
            return;
        }
        for isa in ["AVX2", "AVX512_CORE", "AVX512_CORE_BF16", "AVX512_CORE_AMX"] {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "bert::onednn::tests::f32_and_bf16_match_candle_for_every_height_with_and_without_gelu",
                    "bert::onednn::tests::decoder_layers_match_candle_in_f32_and_bf16_with_and_without_bias",
                ])
                .args(["--nocapture", "--test-threads=1"])
                .env("ONEDNN_MAX_CPU_ISA", isa)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
            let paths = text.lines().find(|l| l.contains("f32 ")).unwrap_or("no kernel line").to_string();
            eprintln!("ONEDNN_MAX_CPU_ISA={isa}: {paths}");
            assert!(out.status.success() && text.contains("2 passed"), "{isa}:\n{text}");
        }
    }

    /// `ask`'s projections: f32 in and out, or bf16 in and out (rounded once after the bias, as
    /// torch's bf16 addmm), with and without bias, against candle's f32 product of the same values.
    #[test]
    fn decoder_layers_match_candle_in_f32_and_bf16_with_and_without_bias() {
        let Some(_) = dnnl_or_skip() else { return };
        let (n, k) = (80, 96);
        let bf16 = candle_core::DType::BF16;
        for dtype in [candle_core::DType::F32, bf16] {
            let (w, b) = (random((n, k), 3).to_dtype(dtype).unwrap(), random((1, n), 4).squeeze(0).unwrap());
            for bias in [None, Some(&b)] {
                let Some(layer) =
                    DnnlLinear::for_decoder(&w, bias.map(|b| b.to_dtype(dtype).unwrap()).as_ref()).unwrap()
                else {
                    assert!(dtype == bf16, "oneDNN has a JIT f32 matmul on every x86-64 CPU");
                    eprintln!("no JIT bf16 matmul on this ISA: ask keeps candle's bf16 matmul");
                    continue;
                };
                let f32 = |t: &Tensor| t.to_dtype(candle_core::DType::F32).unwrap();
                let b32 = bias.map(|b| f32(&b.to_dtype(dtype).unwrap()));
                let exact = candle_nn::Linear::new(f32(&w), b32);
                for rows in [1, 7, 64, 1] {
                    let x = random((rows, k), 10 + rows as u64).to_dtype(dtype).unwrap();
                    let got = x.apply_op1_no_bwd(&layer).unwrap();
                    assert_eq!(got.dtype(), dtype);
                    let want = exact.forward(&f32(&x)).unwrap();
                    // bf16 out: within the one rounding of the f32 sum (half an ulp, 2^-9 relative).
                    let d = max_diff(&f32(&got), &want);
                    let scale = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                    let tolerance = if dtype == bf16 { scale / 256.0 } else { 1e-4 };
                    assert!(d < tolerance, "{dtype:?} bias {} rows {rows}: max |diff| {d}", bias.is_some());
                }
                let other =
                    random((2, k), 5).to_dtype(if dtype == bf16 { candle_core::DType::F32 } else { bf16 }).unwrap();
                let e = other.apply_op1_no_bwd(&layer).unwrap_err().to_string();
                assert!(e.contains("this layer takes"), "{e}");
            }
        }
    }

    #[test]
    fn kernel_choices_are_found_once_per_shape_and_dtype() {
        let choices = Choices::default();
        let calls = std::cell::Cell::new(0);
        let find = |name: &str| {
            calls.set(calls.get() + 1);
            Some(name.to_string())
        };
        assert_eq!(choices.get_or((896, 4864, false), || find("a")).as_deref(), Some("a"));
        assert_eq!(choices.get_or((896, 4864, false), || find("b")).as_deref(), Some("a"));
        assert_eq!(choices.get_or((896, 4864, true), || find("c")).as_deref(), Some("c"));
        assert_eq!(choices.get_or((4864, 896, false), || None), None);
        assert_eq!(choices.get_or((4864, 896, false), || find("d")), None);
        assert_eq!(calls.get(), 2);
        if let Some(dnnl) = dnnl_or_skip() {
            assert_eq!(jit_kernel(dnnl, 768, 3072, false), jit_kernel(dnnl, 768, 3072, false));
        }
    }

    #[test]
    fn an_empty_batch_gives_an_empty_output() {
        let Some(dnnl) = dnnl_or_skip() else { return };
        let (w, b) = (random((8, 16), 1), random((1, 8), 2).squeeze(0).unwrap());
        let layer = DnnlLinear::build(dnnl, &w, Some(&b), false).unwrap();
        let x = Tensor::zeros((0, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(x.apply_op1_no_bwd(&layer).unwrap().dims(), &[0, 8]);
    }
}
