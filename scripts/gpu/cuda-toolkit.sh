#!/usr/bin/env bash
# Build-side CUDA 13.0 toolchain from PyPI wheels (no GPU, no system CUDA needed).
# Usage: eval "$(bash scripts/gpu/cuda-toolkit.sh PREFIX)"   -> prints the env exports
# Used by scripts/gpu/build-cuda.sh; details in docs/operations.md (CUDA builds).
set -euo pipefail
PREFIX=${1:?usage: cuda-toolkit.sh PREFIX}
CU=$PREFIX/nvidia/cu13
if [ ! -x "$CU/nvvm/bin/cicc" ]; then
  rm -rf "$PREFIX"
  # ONE pip call: a second `pip install --target` silently skips the existing nvidia/ dir
  python3 -m pip install -q --no-deps --target "$PREFIX" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35 >&2
fi
# unversioned names for the linker (-lcublas etc.)
cd "$CU/lib"
for l in cublas cublasLt cudart nvrtc; do ln -sf lib$l.so.13 lib$l.so; done
ln -sf libcurand.so.10 libcurand.so
# link-time stub of the driver library (soname libcuda.so.1; the real one is used at run time)
mkdir -p stubs
SYS=$(ls -d ~/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | tail -1)
[ -n "$SYS" ] || { echo "run 'cargo fetch' in the project first (need cudarc sources for the stub's symbol list)" >&2; exit 1; }
grep -oP '^pub unsafe fn \Kcu\w+(?=\()' "$SYS" | sort -u > stubs/syms.txt
sed 's/.*/int &(void){return 999;}/' stubs/syms.txt > stubs/libcuda_stub.c
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o stubs/libcuda.so stubs/libcuda_stub.c
cat <<EOT
export CUDA_HOME=$CU
export PATH=$CU/bin:\$PATH
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export CUDAFORGE_THREADS=\${CUDAFORGE_THREADS:-2}
EOT
