"""Inputs for scripts/bench/bench-evaluate.sh beside the v2.1-shaped files of bench_scale.py v21.

  python bench_evaluate_inputs.py DIR [UNPREDICTED_SHARE]

Writes into DIR, from DIR/train.parquet and DIR/validation.parquet:
  features.parquet     train + validation stacked (the keyed table `signalkit run` hands evaluate:
                       Numerai's features and targets, `data_type`, plus 32 float32 `cls_*` columns,
                       4 `p_*` columns and a `headline` string column, as the features stage adds)
  predictions.parquet  `prediction` for (1 - UNPREDICTED_SHARE) of each validation era's tickers,
                       with `split` = validation (so no model card is needed)
Deterministic (seed 29).
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
unpredicted = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
rng = np.random.default_rng(29)
writer = None
preds = []
for part in ("train", "validation"):
    f = pq.ParquetFile(f"{out}/{part}.parquet")
    for g in range(f.num_row_groups):
        t = f.read_row_group(g)
        n = t.num_rows
        t = t.append_column("data_type", pa.array([part] * n))
        for j in range(32):
            t = t.append_column(f"cls_{j:02d}", pa.array(rng.standard_normal(n, dtype=np.float32)))
        for j in range(4):
            t = t.append_column(f"p_{j}", pa.array(rng.uniform(size=n).astype(np.float32)))
        t = t.append_column("headline", pa.array(np.where(rng.uniform(size=n) < 0.5, "some headline text", None)))
        writer = writer or pq.ParquetWriter(f"{out}/features.parquet", t.schema)
        writer.write_table(t)
        if part == "validation":
            x = np.nan_to_num(np.stack([t.column(f"feature_{j:02d}").to_numpy(zero_copy_only=False) for j in range(21)], 1))
            signal = x @ rng.standard_normal(21) * 0.05 + 0.5 * rng.standard_normal(n)
            keep = rng.uniform(size=n) >= unpredicted
            p = pa.table({"numerai_ticker": t.column("numerai_ticker"), "date": t.column("date"),
                          "prediction": pa.array(signal), "split": pa.array(["validation"] * n)})
            preds.append(p.filter(pa.array(keep)))
writer.close()
pq.write_table(pa.concat_tables(preds), f"{out}/predictions.parquet")
