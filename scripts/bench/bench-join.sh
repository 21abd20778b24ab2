#!/usr/bin/env bash
# Benchmark: `signalkit join` against pandas merge_asof doing the same strict-cutoff join, on the
# same generated parquet files (default 5,000 tickers x 400 Fridays = 2M rows, 5M headlines).
# Both are timed end to end: read parquet, join, write parquet. Prints both times and the ratio.
#   bash scripts/bench/bench-join.sh [TICKERS FRIDAYS HEADLINES]
set -euo pipefail
cd "$(dirname "$0")/../.."
tickers=${1:-5000}; fridays=${2:-400}; heads=${3:-5000000}
dir=${BENCH_DIR:-target/bench-join}; mkdir -p "$dir"
venv=.venv-bench
[ -x $venv/bin/python ] || { python3 -m venv $venv && $venv/bin/pip install -q --disable-pip-version-check 'pandas>=2.2' 'pyarrow>=15' numpy; }
[ -x target/release/signalkit ] || cargo build --release --locked
if [ ! -f "$dir/headlines.parquet" ] || [ "$(cat "$dir/.size" 2>/dev/null)" != "$tickers $fridays $heads" ]; then
  echo "generating $((tickers * fridays)) rows and $heads headlines in $dir"
  $venv/bin/python scripts/bench/bench_join.py gen "$dir" "$tickers" "$fridays" "$heads"
  echo "$tickers $fridays $heads" > "$dir/.size"
fi
cat "$dir"/*.parquet > /dev/null  # warm the page cache for both
s0=$(date +%s%N)
target/release/signalkit join --targets "$dir/targets.parquet" --headlines "$dir/headlines.parquet" --out "$dir/signalkit_rows.parquet"
ours_ms=$(( ($(date +%s%N) - s0) / 1000000 ))
pandas_out=$($venv/bin/python scripts/bench/bench_join.py pandas "$dir")
echo "$pandas_out"
theirs=$(sed -E 's/pandas: ([0-9.]+)s.*/\1/' <<< "$pandas_out")
$venv/bin/python scripts/bench/bench_join.py check "$dir"
$venv/bin/python -c "o=$ours_ms/1000; t=$theirs; print(f'signalkit {o:.2f}s, pandas {t:.2f}s: signalkit is {t/o:.1f}x faster (same input, same machine, end to end)')"
