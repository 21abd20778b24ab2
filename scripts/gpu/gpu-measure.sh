#!/usr/bin/env bash
# GPU-machine side of the CUDA measurements (issue 6); needs no Rust, only the image's python3
# with torch, transformers and pyarrow. Each device call carries one part from scripts/gpu/gpu-pack.sh;
# parts are kept outside the repo copy until all are in, then everything runs and the results go
# to $OUT/gpu-report.md (and $OUT/gpu-run.log):
#   1. f32 parity, CUDA vs CPU, tiny FinBERT fixture on data/sample (goal: within 1e-4);
#   2. all-MiniLM-L6-v2 real weights on real headlines: CUDA f32 vs CPU f32, CUDA bf16 and f16 vs
#      CUDA f32 (max |dcls|, min and mean CLS cosine);
#   3. scripts/bench/bench-encode.sh on cuda, BERT-base FinBERT-shaped random weights, N real-length
#      headlines: signalkit f32/bf16/f16 vs PyTorch fp32 and bf16/f16 autocast, same batches and
#      max length (max |dp| of each against PyTorch in the same precision).
#   N=100000 BATCH=256 MAX_LEN=64 MINILM_N=20000 bash scripts/gpu/gpu-measure.sh
# A dry run of the whole flow on a CPU machine (small N; "cuda" stands for the CPU there):
#   BINARY=target/release/signalkit bash scripts/gpu/gpu-pack.sh
#   DEVICE=cpu N=300 MINILM_N=300 BATCH=32 GPU_KEEP=/tmp/gpu-dry bash scripts/gpu/gpu-measure.sh  # once per part
set -euo pipefail
cd "$(dirname "$0")/../.."
keep=${GPU_KEEP:-/root/signalkit-gpu}
out=${OUT:-$keep/out}
mkdir -p "$keep" "$out"
for p in .gpu/part-*; do [ -f "$p" ] && cp "$p" "$keep/"; done
first=$(ls "$keep"/part-* 2>/dev/null | head -1 || true)
[ -n "$first" ] || { echo "no parts: run scripts/gpu/gpu-pack.sh here, then carry .gpu/part-1-of-N" >&2; exit 1; }
total=${first##*-of-}
have=$(ls "$keep"/part-*-of-"$total" | wc -l)
if [ "$have" -lt "$total" ]; then
  echo "have $have of $total parts in $keep: carry the next one now (the machine stays warm 30 s)"
  exit 0
fi
stage=$keep/stage
if [ ! -x "$stage/signalkit" ]; then
  mkdir -p "$stage"
  unxz() { if command -v xz >/dev/null; then xz -d; else "${PYTHON:-python3}" -c \
    'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)'; fi; }
  for i in $(seq 1 "$total"); do cat "$keep/part-$i-of-$total"; done | unxz | tar -x -C "$stage"
fi
exec > >(tee "$out/gpu-run.log") 2>&1
N=${N:-100000}; BATCH=${BATCH:-256}; MAX_LEN=${MAX_LEN:-64}; MINILM_N=${MINILM_N:-20000}; dev=${DEVICE:-cuda}
PY=${PYTHON:-python3}
sk=$stage/signalkit
work=$keep/work; rm -rf "$work"; mkdir -p "$work"
if [ "$dev" = cpu ]; then
  echo "dry run on the CPU ($(nproc) cores)" | tee "$work/gpu.txt"
else
  source scripts/gpu/run-on-gpu.sh  # LD_LIBRARY_PATH: PyTorch's CUDA 13 libraries and the driver's
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$work/gpu.txt"
fi
if ldd "$sk" | grep -q 'libgomp.so.1 => not found'; then export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$stage/lib; fi
ldd "$sk" | grep -E 'cuda|cublas|curand|nvrtc|gomp|not found' || true
compare=scripts/gpu/gpu_compare.py

echo "== 1. f32 parity on the fixture (data/sample headlines)"
fixture=(--model data/fixtures/tiny-finbert --headlines data/sample/headlines.csv --max-len 64 --batch-size "$BATCH")
"$sk" encode --device cpu "${fixture[@]}" --store "$work/fixture-cpu"
"$sk" encode --device "$dev" "${fixture[@]}" --store "$work/fixture-$dev-test"
$PY $compare "$work/fixture-cpu" "$work/fixture-$dev-test" | tee "$work/parity-fixture.txt"

echo "== 2. all-MiniLM-L6-v2 (real weights) on $MINILM_N real headlines"
$PY - "$stage/headlines.parquet" "$MINILM_N" "$work/minilm.csv" <<'PY'
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pandas().drop_duplicates("headline")
t.sample(n=min(int(sys.argv[2]), len(t)), random_state=0)[["ticker", "published_date", "headline"]].to_csv(sys.argv[3], index=False)
PY
head -2001 "$work/minilm.csv" > "$work/minilm-2k.csv"
"$sk" encode --device cpu --model "$stage/minilm" --headlines "$work/minilm-2k.csv" --store "$work/minilm-cpu"
for dt in f32 bf16 f16; do
  "$sk" encode --device "$dev" --dtype "$dt" --model "$stage/minilm" --headlines "$work/minilm.csv" \
    --store "$work/minilm-cuda-$dt" --batch-size "$BATCH"
done
$PY $compare "$work/minilm-cpu" "$work/minilm-cuda-f32" | tee "$work/parity-minilm-f32.txt"
for dt in bf16 f16; do
  $PY $compare "$work/minilm-cuda-f32" "$work/minilm-cuda-$dt" | tee "$work/parity-minilm-$dt.txt"
done

echo "== 3. throughput: $N headlines, batch $BATCH, max_len $MAX_LEN"
for dt in f32 bf16 f16; do
  PYTHON=$PY REAL=$stage/headlines.parquet VOCAB=$stage/minilm/vocab.txt THREADS=$(nproc) \
    SIGNALKIT=$sk bash scripts/bench/bench-encode.sh --device "$dev" --dtype "$dt" "$N" "$BATCH" "$MAX_LEN" \
    | tee "$work/bench-$dt.txt"
done

{
  echo "# signalkit on $(cat "$work/gpu.txt")"
  echo
  echo "## f32 parity, CUDA vs CPU, tiny FinBERT fixture (goal: within 1e-4)"; cat "$work/parity-fixture.txt"
  echo
  echo "## all-MiniLM-L6-v2 real weights, real headlines"
  echo "CUDA f32 vs CPU f32: $(cat "$work/parity-minilm-f32.txt")"
  echo
  echo "CUDA bf16 vs CUDA f32: $(cat "$work/parity-minilm-bf16.txt")"
  echo
  echo "CUDA f16 vs CUDA f32: $(cat "$work/parity-minilm-f16.txt")"
  echo
  echo "## throughput (scripts/bench/bench-encode.sh, BERT-base FinBERT-shaped, $N headlines, batch $BATCH, max_len $MAX_LEN)"
  for dt in f32 bf16 f16; do grep -E '^(pytorch|encode:|outputs:|signalkit)' "$work/bench-$dt.txt"; echo; done
} > "$out/gpu-report.md"
cat "$out/gpu-report.md"
