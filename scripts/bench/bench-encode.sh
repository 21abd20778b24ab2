#!/usr/bin/env bash
# Benchmark: signalkit encode against PyTorch/transformers on the same 2,000 real headlines
# (../shared/data), with a BERT-base-sized FinBERT-shaped checkpoint (random weights), the same
# max length, batch size and thread count. Prints headlines/s for each, the ratio, and how far
# signalkit's outputs are from transformers'.
#   bash scripts/bench/bench-encode.sh [--device cpu|cuda] [--dtype f32|bf16|f16] [N_HEADLINES] [BATCH] [MAX_LEN]
#   bash scripts/bench/bench-encode.sh --dtype bf16 300   # signalkit in bf16, PyTorch autocast to bf16 too
#   bash scripts/bench/bench-encode.sh --all 2000   # CPU: signalkit f32 and bf16, PyTorch f32 and bf16
#     autocast, in ROUNDS (default 3) alternating rounds, each encoder's best round, with the
#     ratios and what bf16 costs in accuracy
#   SIGNALKIT=target/cuda/signalkit bash scripts/bench/bench-encode.sh --device cuda --dtype bf16 100000 256 64
#     on a GPU machine (scripts/gpu/build-cuda.sh); there PYTHON=python3 REAL=headlines.parquet
#     VOCAB=vocab.txt use the machine's own torch (scripts/gpu/gpu-measure.sh does all of it)
# Env instead of flags: DEVICE, DTYPE (signalkit), TORCH_DTYPE (PyTorch; defaults to DTYPE), THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
device=${DEVICE:-cpu}; dtype=${DTYPE:-f32}; all=0; pos=()
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --all) all=1; shift ;;
    -*) echo "unknown option $1 (--device, --dtype, --all)" >&2; exit 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
export TORCH_DTYPE=${TORCH_DTYPE:-$dtype}
n=${pos[0]:-2000}; batch=${pos[1]:-32}; max_len=${pos[2]:-64}; threads=${THREADS:-2}; bin=${SIGNALKIT:-target/release/signalkit}
dir=target/bench-encode; mkdir -p "$dir"
[ -f "${REAL:-../shared/data/real-2011-2013/headlines.parquet}" ] || { echo "needs ../shared/data/real-2011-2013 (or REAL=FILE)"; exit 1; }
py=${PYTHON:-}
if [ -z "$py" ]; then
  venv=.venv-fixtures; py=$venv/bin/python
  [ -x $py ] || SIGNALKIT_VENV_ONLY=1 bash scripts/fixtures/make-fixtures.sh
  $py -c "import pyarrow, pandas" 2>/dev/null || $venv/bin/pip install -q --disable-pip-version-check pyarrow pandas
fi
[ -x "$bin" ] || cargo build --release --locked
[ -f "$dir/model/model.safetensors" ] && [ "$(($(wc -l < "$dir/headlines.csv" 2>/dev/null || echo 0) - 1))" -eq "$n" ] || $py scripts/bench/bench_encode.py prepare "$dir" "$n"
ours() { # DTYPE STORE: signalkit encode into STORE, its summary line on stdout
  rm -rf "$2"
  RAYON_NUM_THREADS=$threads "$bin" encode --device "$device" --model "$dir/model" --headlines "$dir/headlines.csv" \
    --store "$2" --batch-size "$batch" --max-len "$max_len" --dtype "$1"
}
if [ "$all" = 1 ]; then # ROUNDS alternating rounds (default 3); each encoder's best round counts
  for round in $(seq "${ROUNDS:-3}"); do
    for dt in f32 bf16; do
      TORCH_DTYPE=$dt OUT_SUFFIX=-$dt DEVICE=$device THREADS=$threads $py scripts/bench/bench_encode.py torch "$dir" "$batch" "$max_len" >> "$dir/torch-$dt.txt.$$"
      ours $dt "$dir/store-$dt" >> "$dir/ours-$dt.txt.$$"
      SIGNALKIT_ONEDNN=off ours $dt "$dir/store-own-$dt" >> "$dir/own-$dt.txt.$$"
    done
  done
  for f in torch-f32 torch-bf16 ours-f32 ours-bf16 own-f32 own-bf16; do mv "$dir/$f.txt.$$" "$dir/$f.txt"; done
  echo "batch $batch, max_len $max_len, $threads threads, $n real headlines, BERT-base-shaped checkpoint; $(nproc) CPUs"
  "$bin" env | grep -E '^(cpu|isa|onednn|encode)'
  echo "(signalkit without oneDNN: SIGNALKIT_ONEDNN=off, candle's matmul for f32, signalkit's AVX512-BF16 kernel for bf16)"
  $py scripts/bench/bench_encode.py table "$dir"
  exit 0
fi
DEVICE=$device THREADS=$threads $py scripts/bench/bench_encode.py torch "$dir" "$batch" "$max_len" | tee "$dir/torch.txt"
ours "$dtype" "$dir/store" > "$dir/ours.txt"
cat "$dir/ours.txt"
ours=$(sed -nE 's/.*\(([0-9.]+)\/s\).*/\1/p' "$dir/ours.txt")
$py scripts/bench/bench_encode.py check "$dir" "$dir/store"
plain=$(sed -nE 's/.*\(file order\): ([0-9.]+) headlines\/s/\1/p' "$dir/torch.txt")
sorted=$(sed -nE 's/.*\(length-sorted\): ([0-9.]+) headlines\/s/\1/p' "$dir/torch.txt")
$py -c "o=$ours; p=$plain; s=$sorted; print(f'signalkit {o:.1f}/s vs pytorch {p:.1f}/s in file order ({o/p:.2f}x) and {s:.1f}/s length-sorted ({o/s:.2f}x); batch $batch, max_len $max_len, $threads threads, $device, signalkit $dtype')"
