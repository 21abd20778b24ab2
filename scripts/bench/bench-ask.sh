#!/usr/bin/env bash
# Benchmark: signalkit ask against transformers on a Qwen2-0.5B-shaped random checkpoint (hidden
# 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864, tied embeddings; vocab reduced to a
# 4,096-token BPE trained on the sample headlines, which only shrinks the embedding table), written
# to a temporary folder. The same prompts (one question, N headlines), the same order (shortest
# first) and batch size, f32, the same thread count; prompts/s with and without the prefix KV
# cache, side by side with the ratios, and how far signalkit's answers are from transformers'.
#   bash scripts/bench/bench-ask.sh [N_HEADLINES] [BATCH]      (default 64 headlines, batch 16)
# Env: THREADS (default 2), SIGNALKIT (binary), PYTHON (a Python with torch and transformers),
# KEEP=DIR to keep the checkpoint in DIR between runs, DTYPE=bf16 (both compute in bf16; default
# f32), SIZE=1.5b (Qwen2.5-1.5B's shape, saved in shards). Prints the CPU, the load average and
# each side's peak memory (max RSS).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-64}; batch=${2:-16}; threads=${THREADS:-2}; bin=${SIGNALKIT:-target/release/signalkit}
py=${PYTHON:-.venv-fixtures/bin/python}; dtype=${DTYPE:-f32}; export DTYPE=$dtype SIZE=${SIZE:-0.5b}
[ -x "$py" ] || { echo "needs a Python with torch and transformers: PYTHON=... (or bash scripts/fixtures/make-fixtures.sh)"; exit 1; }
[ -x "$bin" ] || cargo build --release --locked
if [ -n "${KEEP:-}" ]; then dir=$KEEP; mkdir -p "$dir"; else dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT; fi
[ -f "$dir/model/config.json" ] && [ "$(($(wc -l < "$dir/headlines.csv") - 1))" -eq "$n" ] \
  || "$py" scripts/bench/bench_ask.py prepare "$dir" "$n"
THREADS=$threads "$py" scripts/bench/bench_ask.py torch "$dir" "$batch" | tee "$dir/torch.txt"
rate() { sed -nE 's/.* ([0-9]+) answered in ([0-9.]+)s.*/\1 \2/p' "$1" | awk '{printf "%.2f", $1 / $2}'; }
for mode in cache whole; do
  flag=(); [ $mode = whole ] && flag=(--no-prefix-cache)
  rm -rf "$dir/store-$mode"
  RAYON_NUM_THREADS=$threads /usr/bin/time -f "signalkit peak memory ($mode): %M KiB" -o "$dir/mem-$mode.txt" \
    "$bin" ask --model "$dir/model" --questions "$dir/questions.toml" --headlines "$dir/headlines.csv" \
    --store "$dir/store-$mode" --batch-size "$batch" --dtype "$dtype" "${flag[@]}" > "$dir/ours-$mode.txt"
  awk '/peak memory/ {printf "%s %s %.2f GiB\n", $1, $2" "$3" "$4, $5 / 1024 / 1024}' "$dir/mem-$mode.txt"
done
"$bin" env | sed -n 2p; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
"$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-cache"
"$py" scripts/bench/bench_ask.py check "$dir" "$dir/store-whole"
t_whole=$(sed -nE 's/transformers whole prompts: ([0-9.]+).*/\1/p' "$dir/torch.txt")
t_cache=$(sed -nE 's/transformers prefix cache: ([0-9.]+).*/\1/p' "$dir/torch.txt")
o_whole=$(rate "$dir/ours-whole.txt"); o_cache=$(rate "$dir/ours-cache.txt")
"$py" - <<PY
ow, oc, tw, tc = $o_whole, $o_cache, $t_whole, $t_cache
print(f"{'prompts/s':<14}{'signalkit':>10}{'transformers':>14}{'ratio':>8}")
print(f"{'whole prompts':<14}{ow:>10.2f}{tw:>14.2f}{ow / tw:>7.2f}x")
print(f"{'prefix cache':<14}{oc:>10.2f}{tc:>14.2f}{oc / tc:>7.2f}x")
print(f"prefix cache speed-up: signalkit {oc / ow:.2f}x, transformers {tc / tw:.2f}x; $n prompts, batch $batch, $threads threads, $dtype, $SIZE, cpu")
PY
