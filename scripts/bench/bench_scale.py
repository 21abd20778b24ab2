"""v2.1-shaped synthetic files for scripts/bench/bench-scale.sh (issue 29).

  python bench_scale.py DIR ERAS TICKERS NEUTRALIZERS [UNPREDICTED_SHARE]

Writes, like Numerai's signals/v2.1 files: `numerai_ticker` (string), `date` (a date, Fridays),
one row group per date.
  neutralizers.parquet   float32 columns n_000.. (one per neutralizer)
  sample_weights.parquet one float32 column `sample_weight`
  targets.parquet        `target_chili_60` in [0, 1]
  predictions.parquet    `prediction`, for (1 - UNPREDICTED_SHARE) of each era's tickers
"""
import datetime as dt
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    out, eras, tickers, n_neut = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    unpredicted = float(sys.argv[5]) if len(sys.argv) > 5 else 0.1
    rng = np.random.default_rng(29)
    names = np.array([f"T{i:05d} US" for i in range(tickers)])
    first = dt.date(2013, 1, 4)
    cols = [f"n_{j:03d}" for j in range(n_neut)]
    neut_schema = pa.schema([("numerai_ticker", pa.string()), ("date", pa.date32())] + [(c, pa.float32()) for c in cols])
    key = [("numerai_ticker", pa.string()), ("date", pa.date32())]
    writers = {
        "neutralizers": pq.ParquetWriter(f"{out}/neutralizers.parquet", neut_schema),
        "sample_weights": pq.ParquetWriter(f"{out}/sample_weights.parquet", pa.schema(key + [("sample_weight", pa.float32())])),
        "targets": pq.ParquetWriter(f"{out}/targets.parquet", pa.schema(key + [("target_chili_60", pa.float64())])),
        "predictions": pq.ParquetWriter(f"{out}/predictions.parquet", pa.schema(key + [("prediction", pa.float64())])),
    }
    for e in range(eras):
        date = first + dt.timedelta(days=7 * e)
        dates = pa.array([date] * tickers, pa.date32())
        tick = pa.array(names)
        neut = rng.standard_normal((tickers, n_neut), dtype=np.float32)
        writers["neutralizers"].write_table(
            pa.Table.from_arrays([tick, dates] + [pa.array(neut[:, j]) for j in range(n_neut)], schema=neut_schema))
        w = rng.uniform(0.0, 2.0, tickers).astype(np.float32)
        writers["sample_weights"].write_table(pa.table({"numerai_ticker": tick, "date": dates, "sample_weight": w}))
        signal = rng.standard_normal(tickers)
        target = np.clip(0.5 + 0.1 * (0.1 * signal + rng.standard_normal(tickers)), 0, 1)
        writers["targets"].write_table(pa.table({"numerai_ticker": tick, "date": dates, "target_chili_60": target}))
        keep = rng.uniform(size=tickers) >= unpredicted
        pred = pa.table({"numerai_ticker": tick, "date": dates, "prediction": signal + 0.5 * rng.standard_normal(tickers)})
        writers["predictions"].write_table(pred.filter(pa.array(keep)))
    for w in writers.values():
        w.close()


if __name__ == "__main__":
    main()
