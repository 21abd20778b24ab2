#!/usr/bin/env bash
# Benchmark: signalkit ask against transformers on a Qwen2-0.5B-shaped random checkpoint (hidden
# 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864, tied embeddings; vocab reduced to a
# 4,096-token BPE trained on the sample headlines, which shrinks the embedding table and
# transformers' full-vocabulary last product; signalkit computes only the answer tokens'), written
# to a temporary folder. The same prompts (one question, N headlines), the same order (shortest
# first) and batch size, f32, the same thread count; prompts/s with and without the prefix KV
# cache, side by side with the ratios, and how far signalkit's answers are from transformers'.
#   bash scripts/bench/bench-ask.sh [N_HEADLINES] [BATCH]      (default 64 headlines, batch 16)
#   bash scripts/bench/bench-ask.sh --all 32 16   # f32 and bf16: transformers, signalkit, and
#     signalkit with SIGNALKIT_ONEDNN=off, in ROUNDS (default 2) alternating rounds, each line's
#     best round, with the ratios, the kernel paths (signalkit env) and the load average
# Env: THREADS (default 2), SIGNALKIT (binary), PYTHON (a Python with torch and transformers),
# KEEP=DIR to keep the checkpoint in DIR between runs, DTYPE=bf16 (both compute in bf16; default
# f32), SIZE=1.5b (Qwen2.5-1.5B's shape, saved in shards). Prints the CPU, the load average and
# each side's peak memory (max RSS).
set -euo pipefail
cd "$(dirname "$0")/../.."
all=0; [ "${1:-}" = --all ] && { all=1; shift; }
n=${1:-64}; batch=${2:-16}; threads=${THREADS:-2}; bin=${SIGNALKIT:-target/release/signalkit}
py=${PYTHON:-.venv-fixtures/bin/python}; dtype=${DTYPE:-f32}; export DTYPE=$dtype SIZE=${SIZE:-0.5b}
[ -x "$py" ] || { echo "needs a Python with torch and transformers: PYTHON=... (or bash scripts/fixtures/make-fixtures.sh)"; exit 1; }
[ -x "$bin" ] || cargo build --release --locked
if [ -n "${KEEP:-}" ]; then dir=$KEEP; mkdir -p "$dir"; else dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT; fi
[ -f "$dir/model/config.json" ] && [ "$(($(wc -l < "$dir/headlines.csv") - 1))" -eq "$n" ] \
  || "$py" scripts/bench/bench_ask.py prepare "$dir" "$n"
rate() { sed -nE 's/.* ([0-9]+) answered in ([0-9.]+)s.*/\1 \2/p' "$1" | awk '{printf "%.2f", $1 / $2}'; }
ours() { # DTYPE MODE NAME [ENV...]: signalkit ask into $dir/store-NAME, its prompts/s on stdout
  local dt=$1 mode=$2 name=$3; shift 3
  local flag=(); [ "$mode" = whole ] && flag=(--no-prefix-cache)
  rm -rf "$dir/store-$name"
  env "$@" RAYON_NUM_THREADS=$threads "$bin" ask --model "$dir/model" --questions "$dir/questions.toml" \
    --headlines "$dir/headlines.csv" --store "$dir/store-$name" --batch-size "$batch" --dtype "$dt" "${flag[@]}" \
    > "$dir/ours-$name.txt"
  rate "$dir/ours-$name.txt"
}
if [ "$all" = 1 ]; then
  rm -f "$dir/rates.txt"
  for round in $(seq "${ROUNDS:-2}"); do
    for dt in f32 bf16; do
      TORCH_DTYPE=$dt THREADS=$threads "$py" scripts/bench/bench_ask.py torch "$dir" "$batch" > "$dir/torch-$dt.txt"
      for mode in whole cache; do
        t=$(sed -nE "s/transformers $dt $([ $mode = whole ] && echo 'whole prompts' || echo 'prefix cache'): ([0-9.]+).*/\1/p" "$dir/torch-$dt.txt")
        echo "$dt $mode transformers $t" >> "$dir/rates.txt"
        echo "$dt $mode signalkit $(ours $dt $mode $dt-$mode)" >> "$dir/rates.txt"
        echo "$dt $mode off $(ours $dt $mode off-$dt-$mode SIGNALKIT_ONEDNN=off)" >> "$dir/rates.txt"
      done
    done
  done
  echo "$n prompts, batch $batch, $threads threads, Qwen2-0.5B-shaped checkpoint; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bin" env | grep -E '^(cpu|isa|onednn|ask)'
  for dt in f32 bf16; do
    for m in whole cache; do
      "$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-$dt-$m" "$([ $dt = f32 ] && echo torch.json || echo torch-bf16.json)"
    done
  done
  for m in whole cache; do "$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-bf16-$m" torch.json; done
  "$py" - "$dir/rates.txt" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    dt, mode, who, rate = line.split()
    best[(dt, mode, who)] = max(best.get((dt, mode, who), 0.0), float(rate))
print(f"{'prompts/s (best round)':<34}{'whole prompts':>14}{'ratio':>7}{'prefix cache':>14}{'ratio':>7}")
for dt in ("f32", "bf16"):
    for who, label in (("transformers", f"transformers {dt}"), ("signalkit", f"signalkit {dt}, oneDNN"),
                       ("off", f"signalkit {dt}, SIGNALKIT_ONEDNN=off")):
        cells = ""
        for mode in ("whole", "cache"):
            r, t = best[(dt, mode, who)], best[(dt, mode, "transformers")]
            cells += f"{r:>14.2f}{r / t:>6.2f}x"
        print(f"{label:<34}{cells}")
PY
  exit 0
fi
THREADS=$threads "$py" scripts/bench/bench_ask.py torch "$dir" "$batch" | tee "$dir/torch.txt"
for mode in cache whole; do
  flag=(); [ $mode = whole ] && flag=(--no-prefix-cache)
  rm -rf "$dir/store-$mode"
  RAYON_NUM_THREADS=$threads /usr/bin/time -f "signalkit peak memory ($mode): %M KiB" -o "$dir/mem-$mode.txt" \
    "$bin" ask --model "$dir/model" --questions "$dir/questions.toml" --headlines "$dir/headlines.csv" \
    --store "$dir/store-$mode" --batch-size "$batch" --dtype "$dtype" "${flag[@]}" > "$dir/ours-$mode.txt"
  awk '/peak memory/ {printf "%s %s %.2f GiB\n", $1, $2" "$3" "$4, $5 / 1024 / 1024}' "$dir/mem-$mode.txt"
done
"$bin" env | sed -n 2p; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
ref=$([ "$dtype" = f32 ] && echo torch.json || echo "torch-$dtype.json")
"$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-cache" "$ref"
"$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-whole" "$ref"
t_whole=$(sed -nE "s/transformers $dtype whole prompts: ([0-9.]+).*/\1/p" "$dir/torch.txt")
t_cache=$(sed -nE "s/transformers $dtype prefix cache: ([0-9.]+).*/\1/p" "$dir/torch.txt")
o_whole=$(rate "$dir/ours-whole.txt"); o_cache=$(rate "$dir/ours-cache.txt")
"$py" - <<PY
ow, oc, tw, tc = $o_whole, $o_cache, $t_whole, $t_cache
print(f"{'prompts/s':<14}{'signalkit':>10}{'transformers':>14}{'ratio':>8}")
print(f"{'whole prompts':<14}{ow:>10.2f}{tw:>14.2f}{ow / tw:>7.2f}x")
print(f"{'prefix cache':<14}{oc:>10.2f}{tc:>14.2f}{oc / tc:>7.2f}x")
print(f"prefix cache speed-up: signalkit {oc / ow:.2f}x, transformers {tc / tw:.2f}x; $n prompts, batch $batch, $threads threads, $dtype, $SIZE, cpu")
PY
