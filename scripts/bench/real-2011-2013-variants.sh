#!/usr/bin/env bash
# Issue 26's real-data study: every walk-forward variant on 2011-2013, compared on the same eras.
#   bash scripts/bench/real-2011-2013-variants.sh            # runs what is missing, then compares
# Needs ../shared/data/real-2011-2013 (see its README); skips, saying so, when it is absent.
# Each variant is one `signalkit run` config in this folder (4 walk-forward folds over 2012-2013,
# fold 1 trained on 2011); blends and smoothed signals are made from their outputs. Every variant
# tried is in the comparison, not only the best (compare's warning counts them).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=../shared/data/real-2011-2013
if [[ ! -f $data/targets.parquet ]]; then
  echo "SKIP: $data is absent (real data is not in the repository)"; exit 0
fi
sk=${SIGNALKIT:-target/release/signalkit}
runs=runs
variants=(frozen:real-2011-2013-wf finetuned-3:real-2011-2013-wf-ft3 finetuned-5:real-2011-2013-wf-ft5
          pca16:real-2011-2013-wf-pca16 shallow:real-2011-2013-wf-shallow)
for v in "${variants[@]}"; do
  name=${v%%:*} config=scripts/bench/${v#*:}.toml
  dir=$(grep '^out' "$config" | sed 's/.*"\.\.\/\.\.\/\(.*\)"/\1/')
  if [[ ! -f $dir/evaluate/report.json ]]; then
    echo "== run $name ($config)"; nice -n 19 "$sk" run --config "$config"
  fi
  [[ -f $dir/evaluate-smooth/report.json ]] || nice -n 19 "$sk" evaluate --predictions "$dir/model/predictions.parquet" \
    --targets "$data/targets.parquet" --smooth 0.7 --out "$dir/evaluate-smooth" >/dev/null
done
# Blends: frozen with each fine-tuned encoder, equal weights.
for ft in 3 5; do
  b=$runs/real-wf-blend-ft$ft
  if [[ ! -f $b/evaluate/report.json ]]; then
    rm -rf "$b"
    "$sk" blend $runs/real-wf-frozen $runs/real-wf-finetuned-$ft --out "$b"
    "$sk" evaluate --predictions "$b/predictions.parquet" --targets "$data/targets.parquet" --smooth 0.7 --out "$b/evaluate"
  fi
done
rm -rf $runs/real-wf-compare-all
"$sk" compare frozen=$runs/real-wf-frozen ft3=$runs/real-wf-finetuned-3 ft5=$runs/real-wf-finetuned-5 \
  pca16=$runs/real-wf-pca16 shallow=$runs/real-wf-shallow blend-ft3=$runs/real-wf-blend-ft3 \
  blend-ft5=$runs/real-wf-blend-ft5 \
  frozen-s0.7=$runs/real-wf-frozen/evaluate-smooth@smooth=0.7 ft3-s0.7=$runs/real-wf-finetuned-3/evaluate-smooth@smooth=0.7 \
  ft5-s0.7=$runs/real-wf-finetuned-5/evaluate-smooth@smooth=0.7 pca16-s0.7=$runs/real-wf-pca16/evaluate-smooth@smooth=0.7 \
  shallow-s0.7=$runs/real-wf-shallow/evaluate-smooth@smooth=0.7 blend-ft3-s0.7=$runs/real-wf-blend-ft3/evaluate@smooth=0.7 \
  blend-ft5-s0.7=$runs/real-wf-blend-ft5/evaluate@smooth=0.7 \
  --out $runs/real-wf-compare-all
