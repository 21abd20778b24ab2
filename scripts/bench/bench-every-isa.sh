#!/usr/bin/env bash
# Issue 30's question on one machine: is each of encode, ask and fine-tune at PyTorch's speed on
# every x86-64 CPU? Runs the three side-by-side benchmarks (signalkit and PyTorch in one run each)
# once per ISA level this CPU can stand in for, capping both sides alike:
#   native       what the CPU has (AMX where present, else AVX512-BF16, AVX-512 or AVX2)
#   AVX512_CORE  AVX-512 without bf16 instructions (ONEDNN_MAX_CPU_ISA=AVX512_CORE for both
#                sides' oneDNN, SIGNALKIT_CPU_BF16=off for signalkit's own bf16 kernel)
#   AVX2         an AVX2-only CPU (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2 for
#                PyTorch's own kernels, SIGNALKIT_CPU_BF16=off)
# ONEDNN_MAX_CPU_ISA also caps ask's own kernels (norms, rope, softmax, SiLU: src/ask/fused.rs).
# What the caps do not reach: candle's element-wise code and the gemm crate (used for attention
# products and where oneDNN is absent) still pick AVX-512 at run time, so the AVX2 line flatters
# signalkit somewhat on an AVX-512 CPU; a real AVX2-only CPU is the final word.
#   bash scripts/bench/bench-every-isa.sh [ISA...]      # default: native AVX512_CORE AVX2
# Env: ROUNDS (alternating rounds of encode/ask, default 1), N_ENCODE (600), N_ASK (32),
# N_FINETUNE (400), and each benchmark's own (THREADS, SIGNALKIT, PYTHON, BASELINE for fine-tune).
# Prints the CPU model and load average, then each benchmark's own lines (kernel paths included).
set -euo pipefail
cd "$(dirname "$0")/../.."
isas=("$@"); [ ${#isas[@]} -gt 0 ] || isas=(native AVX512_CORE AVX2)
bin=${SIGNALKIT:-target/release/signalkit}
[ -x "$bin" ] || cargo build --release --locked
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for isa in "${isas[@]}"; do
  caps=()
  case $isa in
    native) ;;
    AVX2) caps=(ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 SIGNALKIT_CPU_BF16=off) ;;
    *) caps=(ONEDNN_MAX_CPU_ISA="$isa" SIGNALKIT_CPU_BF16=off) ;;
  esac
  echo; echo "===== $isa ${caps[*]:-(no caps)}"
  echo "--- fine-tune"
  env "${caps[@]}" bash scripts/bench/bench-finetune.sh "${N_FINETUNE:-400}" 16 64 2
  echo "--- encode"
  env "${caps[@]}" ROUNDS="${ROUNDS:-1}" bash scripts/bench/bench-encode.sh --all "${N_ENCODE:-600}"
  echo "--- ask"
  env "${caps[@]}" ROUNDS="${ROUNDS:-1}" KEEP="${KEEP:-target/bench-ask-keep}" bash scripts/bench/bench-ask.sh --all "${N_ASK:-32}" 16
done
echo; echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
