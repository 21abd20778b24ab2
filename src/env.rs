//! `signalkit env`: what this machine is and which kernels each stage runs on it — what a user
//! pastes into a report about speed.

use crate::bert;

/// The report, one `key: value` per line.
pub fn report() -> String {
    let mut lines = vec![
        format!("signalkit: {}", env!("CARGO_PKG_VERSION")),
        format!("cpu: {}", cpu_model().unwrap_or_else(|| "unknown (no /proc/cpuinfo)".into())),
        format!("isa: {}", isa_flags()),
        format!("cores: {}", std::thread::available_parallelism().map_or(0, |n| n.get())),
        format!("threads: rayon {}, OpenMP {}", threads("RAYON_NUM_THREADS"), threads("OMP_NUM_THREADS")),
    ];
    lines.push(match bert::onednn::library() {
        Some(dnnl) => format!("onednn: {}", dnnl.describe()),
        None => {
            "onednn: not loaded (bash scripts/setup.sh installs it; SIGNALKIT_ONEDNN=PATH names one, =off skips it)"
                .into()
        }
    });
    if let Ok(cap) = std::env::var("ONEDNN_MAX_CPU_ISA") {
        lines.push(format!("onednn isa cap: {cap} (ONEDNN_MAX_CPU_ISA)"));
    }
    lines.push(format!("encode f32: {}", bert::linear_path(false)));
    lines.push(format!("encode bf16: {}", bert::linear_path(true)));
    let ask = format!(
        "projections, --gguf weights dequantised alike; norms, rope, softmax and SiLU on signalkit's {} kernels; \
         attention products and the answer tokens' logits on candle",
        match crate::ask::fused::level() {
            crate::ask::fused::Level::Avx512 => "AVX-512",
            crate::ask::fused::Level::Avx2 => "AVX2",
            crate::ask::fused::Level::Base => "baseline",
        }
    );
    lines.push(format!("ask f32: {} ({ask})", crate::ask::padded::linear_path(false)));
    lines.push(format!("ask bf16: {} ({ask})", crate::ask::padded::linear_path(true)));
    lines.push(format!("finetune: {}", bert::train_linear::path()));
    lines.join("\n")
}

/// The CPU's model name with its family/model/stepping numbers (a VM may show only "AMD EPYC";
/// family 25 model 17 is then Zen 4), as /proc/cpuinfo gives them.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |key: &str| {
        let line = info.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key))?;
        Some(line.split_once(':')?.1.trim().to_string())
    };
    let numbers = ["cpu family", "model", "stepping"].map(|k| field(k).unwrap_or_else(|| "?".into()));
    Some(format!("{} (family {}, model {}, stepping {})", field("model name")?, numbers[0], numbers[1], numbers[2]))
}

/// The vector and matrix extensions the kernels care about, present or absent.
fn isa_flags() -> String {
    let flags: Vec<String> = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find(|l| l.starts_with("flags")).map(str::to_string))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let wanted =
        ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"];
    let have: Vec<&str> = wanted.iter().copied().filter(|w| flags.iter().any(|f| f == w)).collect();
    let missing: Vec<&str> = wanted.iter().copied().filter(|w| !have.contains(w)).collect();
    if flags.is_empty() {
        return "unknown (no /proc/cpuinfo)".into();
    }
    format!("{} (absent: {})", have.join(" "), if missing.is_empty() { "none".into() } else { missing.join(" ") })
}

/// A thread-count variable's value, or that it is unset (both pools then use every core).
fn threads(var: &str) -> String {
    std::env::var(var).map_or_else(|_| format!("all cores ({var} unset)"), |n| format!("{n} ({var})"))
}
