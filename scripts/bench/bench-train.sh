#!/usr/bin/env bash
# Benchmark: `signalkit train` against Python lightgbm (same LightGBM version, same parameters,
# same rows) on a generated feature table (default 300,000 rows x 780 f32 features), side by side
# in one run. Prints training seconds (Dataset construction + boosting) and peak RSS of each.
#   bash scripts/bench/bench-train.sh [ROWS FEATURES ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-300000}; k=${2:-780}; iters=${3:-300}
dir=${BENCH_DIR:-target/bench-train}; mkdir -p "$dir"
[ -x .venv-ref/bin/python ] || bash scripts/fixtures/make-reference.sh
[ -x target/release/signalkit ] || cargo build --release --locked
if [ ! -f "$dir/features.parquet" ] || [ "$(cat "$dir/.size" 2>/dev/null)" != "$rows $k" ]; then
  .venv-ref/bin/python scripts/bench/bench_train.py gen "$dir" "$rows" "$k"
  echo "$rows $k" > "$dir/.size"
fi
cat "$dir/features.parquet" > /dev/null
/usr/bin/time -f '%M' -o "$dir/ours.rss" target/release/signalkit train --features "$dir/features.parquet" \
  --out "$dir/model" --num-iterations "$iters" | tee "$dir/ours.log"
ours=$(.venv-ref/bin/python -c "import json; print(json.load(open('$dir/model/model.json'))['train_seconds'])")
# Python gets exactly the parameters signalkit used (from its model card).
.venv-ref/bin/python -c "import json; json.dump(json.load(open('$dir/model/model.json'))['params'], open('$dir/params.json', 'w'))"
theirs_line=$(.venv-ref/bin/python scripts/bench/bench_train.py python "$dir" "$iters")
echo "$theirs_line"
theirs=$(sed -E 's/.*: ([0-9.]+)s training.*/\1/' <<< "$theirs_line")
.venv-ref/bin/python -c "
o=$ours; t=$theirs; rss=$(cat "$dir/ours.rss")/1024; m=$rows*$k*4/2**20
print(f'signalkit {o:.2f}s vs python {t:.2f}s training: ratio {o/t:.2f}x (goal <= 1.1x); signalkit peak RSS {rss:.0f} MiB (one f32 matrix = {m:.0f} MiB)')"
