#!/usr/bin/env bash
# Benchmark (issue 29): every stage of the Signals v2.1 pipeline on v2.1-shaped generated files
# (scripts/bench/bench_scale.py v21), one process per stage under /usr/bin/time -v, printing wall
# time and peak RSS per stage; then evaluate beside numerai-tools' per-date loop on the same files
# (scripts/bench/bench_scale_numerai_tools.py: time and max difference per era).
#   bash scripts/bench/bench-scale-v21.sh [ERAS TICKERS NEUTRALIZERS HEADLINES ITERATIONS]
#   (default 650 6000 150 10000000 300: Numerai's scale; pass fewer eras on a small machine)
# Files go to $BENCH_DIR (default /tmp/bench-scale-v21); delete them afterwards. Needs a venv with
# numerai-tools and pyarrow ($NT_VENV, default .venv-bench-nt, created when missing).
# Train uses all 23 Numerai features (the two strings, feature_country and feature_exchange_code,
# as LightGBM categorical features) plus the news features.
set -euo pipefail
cd "$(dirname "$0")/../.."
eras=${1:-650}; tickers=${2:-6000}; neut=${3:-150}; heads=${4:-10000000}; iters=${5:-300}
dir=${BENCH_DIR:-/tmp/bench-scale-v21}/$eras-$tickers-$neut-$heads; mkdir -p "$dir"
. scripts/bench/numerai-tools-env.sh
if [ ! -f "$dir/.done" ]; then
  echo "generating $eras eras x $tickers tickers x $neut neutralizers, $heads headlines in $dir"
  "$py" scripts/bench/bench_scale.py v21 "$dir" "$eras" "$tickers" "$neut" "$heads"
  touch "$dir/.done"
fi
ls -l "$dir"/*.parquet
table="$dir/stages.md"
echo "| stage | wall s | peak RSS GB |" > "$table"; echo "|---|---|---|" >> "$table"
stage() {  # stage NAME COMMAND...: runs it under /usr/bin/time -v, appends a row
  local name=$1; shift
  /usr/bin/time -v "$@" > "$dir/$name.out" 2> "$dir/$name.time" || { tail -n 20 "$dir/$name.time"; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$dir/$name.time")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.2f", $2/1048576}' "$dir/$name.time")
  echo "| $name | $wall | $rss |" | tee -a "$table"
}
rm -rf "$dir/run"; mkdir -p "$dir/run"; r="$dir/run"
# The dataset stage of `run` ([numerai] dataset = "signals/v2.1"): train + validation + live
# into one keyed table with data_type. Timed here with pyarrow doing the same concatenation;
# `signalkit run` does it in src/numerai/dataset.rs.
stage dataset "$py" - "$dir" "$r/numerai.parquet" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
parts = []
for kind in ("train", "validation", "live"):
    t = pq.read_table(f"{sys.argv[1]}/{kind}.parquet")
    parts.append(t.append_column("data_type", pa.array([kind] * t.num_rows)))
pq.write_table(pa.concat_tables(parts, promote_options="default"), sys.argv[2])
PY
stage join "$bin" join --targets "$r/numerai.parquet" --headlines "$dir/headlines.parquet" --out "$r/rows.parquet"
stage encode "$bin" encode --model data/fixtures/tiny-finbert --headlines "$dir/headlines.parquet" --store "$r/store"
stage features "$bin" features --rows "$r/rows.parquet" --store "$r/store" --out "$r/features.parquet"
"$py" - "$r/features.parquet" "$r/train.toml" <<'PY'
import sys, pyarrow as pa, pyarrow.parquet as pq
s = pq.read_schema(sys.argv[1])
pre = ("p_", "sentiment", "cls_", "pc_", "feature_", "n_headlines_")
num = lambda t: pa.types.is_floating(t) or pa.types.is_integer(t)
view = getattr(pa.types, "is_string_view", lambda t: False)  # pyarrow >= 16; polars writes string_view
text = lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or view(t) or pa.types.is_dictionary(t)
names = [f.name for f in s if f.name.startswith(pre) and (num(f.type) or (f.name.startswith("feature_") and text(f.type)))]
open(sys.argv[2], "w").write("[train]\ntarget = 'target_chili_60'\nembargo_eras = 12\nfeatures = %r\n" % names)
PY
stage train "$bin" train --features "$r/features.parquet" --config "$r/train.toml" --num-iterations "$iters" --out "$r/model"
stage evaluate "$bin" evaluate --predictions "$r/model/predictions.parquet" --targets "$r/features.parquet" \
  --target target_chili_60 --model "$r/model" --neutralizers "$dir/validation_neutralizer.parquet" \
  --sample-weights "$dir/validation_sample_weights.parquet" --out "$r/evaluate"
stage predict "$bin" predict --model "$r/model" --features "$r/features.parquet" --out "$r/signal.csv"
stage numerai-tools "$py" scripts/bench/bench_scale_numerai_tools.py "$r/model/predictions.parquet" \
  "$r/features.parquet" "$dir/validation_neutralizer.parquet" "$dir/validation_sample_weights.parquet" \
  "$r/evaluate/report.json" target_chili_60
cat "$dir/numerai-tools.out"
echo; cat "$table"
