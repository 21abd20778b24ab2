#!/usr/bin/env bash
# Builds a CUDA-enabled signalkit (candle's CUDA backend, `--features cuda`) on a Linux x86-64
# machine with no GPU and no system CUDA toolkit: NVIDIA's CUDA 13.0 toolkit wheels from PyPI go to
# .tools/cuda, the driver library is a link-time stub (the GPU machine's real libcuda is used at
# run time). Result: target/cuda/signalkit. The CPU binary (target/release/signalkit) is rebuilt
# afterwards from the artifacts already in target/ (a relink), so tests and the main job keep it.
#   bash scripts/gpu/build-cuda.sh                   # H100/H200 (compute capability 9.0)
#   CUDA_COMPUTE_CAP=89 bash scripts/gpu/build-cuda.sh  # another GPU generation
# On the GPU machine: scripts/gpu/run-on-gpu.sh target/cuda/signalkit encode --device cuda ...
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v cargo >/dev/null || { echo "cargo not found: run scripts/setup.sh first" >&2; exit 1; }
cargo fetch --locked >/dev/null
eval "$(bash scripts/gpu/cuda-toolkit.sh "$PWD/.tools/cuda")"
echo "[build-cuda] CUDA_HOME=$CUDA_HOME, compute capability $CUDA_COMPUTE_CAP (a cold build takes ~20-40 min on 2 cores)" >&2
LIBRARY_PATH="$CUDA_HOME/lib:$CUDA_HOME/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}" \
  cargo build --release --locked --features cuda
mkdir -p target/cuda
cp target/release/signalkit target/cuda/signalkit
echo "[build-cuda] restoring the CPU binary" >&2
env -u CUDA_HOME -u CUDA_COMPUTE_CAP -u CUDAFORGE_THREADS cargo build --release --locked
echo "[build-cuda] done: target/cuda/signalkit needs libcuda.so.1 (driver >= 580), libcudart.so.13," \
  "libcublas.so.13, libcublasLt.so.13, libcurand.so.10 at run time (scripts/gpu/run-on-gpu.sh finds PyTorch's)" >&2
ldd target/cuda/signalkit | grep -E 'cuda|cublas|curand|not found' >&2 || true
