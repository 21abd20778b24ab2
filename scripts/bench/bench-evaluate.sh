#!/usr/bin/env bash
# Benchmark (issue 29): `signalkit evaluate` beside numerai-tools' per-date loop on the same
# v2.1-shaped files, one after the other in one run, printing wall time, CPU time, peak RSS
# (/usr/bin/time -v), the ratios, and the largest per-era difference between the two.
#   bash scripts/bench/bench-evaluate.sh [ERAS TICKERS NEUTRALIZERS]   (default 150 6000 150)
# Files: bench_scale.py v21 (Numerai's signals/v2.1 layout; the validation third of the eras is
# scored, on target_factor_neutral_20) and bench_evaluate_inputs.py (predictions for 90 % of each
# validation era's tickers, and the feature table `signalkit run` hands evaluate). Two ways of
# calling evaluate:
#   cli: --targets validation.parquet --neutralizers --sample-weights (the payout inputs only)
#   run: as `signalkit run` calls it: the whole feature table (train + validation, 57 numeric
#        feature columns) as --targets and --features, plus the neutralizers and sample weights
# and numerai-tools' loop as Numerai's example notebook scores a validation backtest
# (bench_scale_numerai_tools.py: per date a parquet-filtered read of the neutralizers and sample
# weights, clean_submission(rank_and_fill=True), alpha, neutral_correlation).
# $BENCH_DIR (default /tmp/bench-evaluate) holds the files; delete them afterwards. $NT_VENV
# (default .venv-bench-nt) is a venv with numerai-tools and pyarrow, created when missing.
# SIGNALKIT_BEFORE=path/to/binary also times another build (e.g. main's) on the same files.
set -euo pipefail
cd "$(dirname "$0")/../.."
eras=${1:-150}; tickers=${2:-6000}; neut=${3:-150}
dir=${BENCH_DIR:-/tmp/bench-evaluate}/$eras-$tickers-$neut; mkdir -p "$dir"
. scripts/bench/numerai-tools-env.sh
if [ ! -f "$dir/.done" ]; then
  echo "generating $eras eras x $tickers tickers x $neut neutralizers in $dir"
  "$py" scripts/bench/bench_scale.py v21 "$dir" "$eras" "$tickers" "$neut" 1000
  "$py" scripts/bench/bench_evaluate_inputs.py "$dir"
  touch "$dir/.done"
fi
target=target_factor_neutral_20
"$bin" env | grep -E '^(cpu|cores)'
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
table="$dir/evaluate.md"
echo "| run | wall s | CPU s (user+sys) | peak RSS GB |" > "$table"; echo "|---|---|---|---|" >> "$table"
timed() {  # timed NAME COMMAND...: runs it under /usr/bin/time -v, appends a row
  local name=$1; shift
  /usr/bin/time -v "$@" > "$dir/$name.out" 2> "$dir/$name.time" || { tail -n 20 "$dir/$name.time"; exit 1; }
  awk -F': ' -v n="$name" '
    /Elapsed \(wall/ {k=split($2,t,":"); w=0; for(i=1;i<=k;i++) w=w*60+t[i]}
    /User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2/1048576}
    END {printf "| %s | %.1f | %.1f | %.2f |\n", n, w, u+s, r}' "$dir/$name.time" | tee -a "$table"
}
evaluate() {  # evaluate NAME BINARY MODE
  local out="$dir/report-$1"; rm -rf "$out"
  local inputs=(--targets "$dir/validation.parquet")
  [ "$3" = run ] && inputs=(--targets "$dir/features.parquet" --features "$dir/features.parquet")
  timed "$1" "$2" evaluate --predictions "$dir/predictions.parquet" "${inputs[@]}" --target "$target" \
    --neutralizers "$dir/validation_neutralizer.parquet" --sample-weights "$dir/validation_sample_weights.parquet" --out "$out"
}
evaluate "signalkit-cli" "$bin" cli
evaluate "signalkit-run" "$bin" run
if [ -n "${SIGNALKIT_BEFORE:-}" ]; then
  evaluate "before-cli" "$SIGNALKIT_BEFORE" cli
  evaluate "before-run" "$SIGNALKIT_BEFORE" run
fi
timed numerai-tools "$py" scripts/bench/bench_scale_numerai_tools.py "$dir/predictions.parquet" "$dir/validation.parquet" \
  "$dir/validation_neutralizer.parquet" "$dir/validation_sample_weights.parquet" "$dir/report-signalkit-cli/report.json" "$target"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$dir/numerai-tools.out"
awk -F' *[|] *' '$2 ~ /^(signalkit|before|numerai)/ {w[$2]=$3; c[$2]=$4}
  END {for (k in w) if (k != "numerai-tools") printf "%s: %.1fx numerai-tools by wall time, %.1fx by CPU time\n", k, w["numerai-tools"]/w[k], c["numerai-tools"]/c[k]}' "$table" | sort
