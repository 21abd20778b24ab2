#!/usr/bin/env bash
# Benchmark (issue 29): `signalkit evaluate --neutralizers --sample-weights` on v2.1-shaped
# generated files, printing wall time and peak RSS ("Maximum resident set size").
#   bash scripts/bench/bench-scale.sh [ERAS TICKERS NEUTRALIZERS]   (default 200 5200 150)
# Numerai's validation_neutralizer.parquet is about 650 eras x 5,200 tickers x 150 float32
# columns (3.99 GB). Files go to $BENCH_DIR (default /tmp/bench-scale); delete them afterwards.
# SIGNALKIT=path/to/binary compares another build (e.g. main's) on the same files.
#   bash scripts/bench/bench-scale.sh v21 [ERAS TICKERS NEUTRALIZERS HEADLINES ITERATIONS]
# runs every stage of the v2.1 pipeline instead (scripts/bench/bench-scale-v21.sh).
set -euo pipefail
[ "${1:-}" = v21 ] && { shift; exec bash "$(dirname "$0")/bench-scale-v21.sh" "$@"; }
cd "$(dirname "$0")/../.."
eras=${1:-200}; tickers=${2:-5200}; neut=${3:-150}
dir=${BENCH_DIR:-/tmp/bench-scale}; mkdir -p "$dir"
venv=${BENCH_VENV:-.venv-bench}
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check 'pyarrow>=15' numpy; }
bin=${SIGNALKIT:-target/release/signalkit}
[ -x "$bin" ] || cargo build --release --locked
if [ "$(cat "$dir/.size" 2>/dev/null)" != "$eras $tickers $neut" ]; then
  echo "generating $eras eras x $tickers tickers x $neut neutralizers in $dir"
  "$venv/bin/python" scripts/bench/bench_scale.py "$dir" "$eras" "$tickers" "$neut"
  echo "$eras $tickers $neut" > "$dir/.size"
fi
ls -l "$dir"/*.parquet
rm -rf "$dir/report"
/usr/bin/time -v "$bin" evaluate --predictions "$dir/predictions.parquet" --targets "$dir/targets.parquet" \
  --target target_chili_60 --neutralizers "$dir/neutralizers.parquet" --sample-weights "$dir/sample_weights.parquet" \
  --out "$dir/report" 2> "$dir/time.txt" | tail -n 12
grep -E "Elapsed \(wall|Maximum resident" "$dir/time.txt"
