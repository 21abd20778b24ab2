#!/usr/bin/env bash
# Benchmark: one linear layer on BERT-base shapes (2,048 rows), GFLOP/s of signalkit's AVX512-BF16
# kernel and candle's f32 matmul (a Rust test), then PyTorch f32 and bf16 autocast (oneDNN), one
# after the other in one run, the same thread count. Needs a CPU with AVX512-BF16 for the bf16 row.
#   bash scripts/bench/bench-linear.sh        # THREADS (2), PYTHON (.venv-fixtures/bin/python)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${THREADS:-2}; py=${PYTHON:-.venv-fixtures/bin/python}
[ -x "$py" ] || SIGNALKIT_VENV_ONLY=1 bash scripts/fixtures/make-fixtures.sh
RAYON_NUM_THREADS=$threads cargo test --release --locked --lib bert::bf16::speed -- --ignored --nocapture 2>&1 | grep GFLOP
THREADS=$threads $py scripts/bench/bench_linear.py
