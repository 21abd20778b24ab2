"""v2.1-shaped synthetic files for scripts/bench/bench-scale.sh (issue 29).

  python bench_scale.py DIR ERAS TICKERS NEUTRALIZERS [UNPREDICTED_SHARE]
  python bench_scale.py v21 DIR ERAS TICKERS NEUTRALIZERS HEADLINES [TEXTS]

The second form writes Numerai's whole signals/v2.1 layout (see v21() below) plus a headlines
file, for `signalkit run` with `[numerai] dataset = "signals/v2.1"`. The first form writes:

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


WORDS = ("shares rise after strong quarter|profit warning hits stock|board approves buyback|"
         "regulator opens probe|new product launch draws praise|guidance cut on weak demand|"
         "analyst upgrades to buy|ceo steps down unexpectedly|record revenue beats estimates|"
         "dividend raised again").split("|")


def v21(out, eras, tickers, n_neut, n_headlines, n_texts=2000):
    """Numerai's signals/v2.1 files, shaped as Numerai ships them (DESIGN.md 4b):

    train.parquet, validation.parquet (the last third of the eras), live.parquet (one date a week
    after the last validation date, no targets): `numerai_ticker`, `composite_figi`, `date` (a
    date, Fridays), 21 float32 `feature_*` columns and two string ones (`feature_country`,
    `feature_exchange_code`), targets `target_factor_neutral_20`, `target_raw_return_20`,
    `target_chili_60` in [0, 1] (chili null in the last min(12, ERAS/10) eras, as a 60-day
    target is unknown there); {train,validation}_neutralizer.parquet (float32 n_000..) and
    {train,validation}_sample_weights.parquet (`sample_weight`), one row group per date; and
    headlines.parquet: `ticker` (without " US"), `published_at` (UTC), `headline` drawn from
    `n_texts` distinct texts. Deterministic (seed 29)."""
    rng = np.random.default_rng(29)
    first = dt.date(2013, 1, 4)
    names = np.array([f"T{i:05d} US" for i in range(tickers)])
    figis = np.array([f"BBG{i:09d}" for i in range(tickers)])
    countries = np.array(["US", "GB", "JP", "DE", "CA"])[rng.integers(0, 5, tickers)]
    exchanges = np.array(["XNYS", "XNAS", "XLON", "XTKS", "XETR"])[rng.integers(0, 5, tickers)]
    nums = [f"feature_{j:02d}" for j in range(21)]
    key = [("numerai_ticker", pa.string()), ("composite_figi", pa.string()), ("date", pa.date32())]
    feats = [(c, pa.float32()) for c in nums] + [("feature_country", pa.string()), ("feature_exchange_code", pa.string())]
    targets = [(t, pa.float64()) for t in ("target_factor_neutral_20", "target_raw_return_20", "target_chili_60")]
    main_schema = pa.schema(key + feats + targets)
    live_schema = pa.schema(key + feats)
    ncols = [f"n_{j:03d}" for j in range(n_neut)]
    neut_schema = pa.schema(key[::2] + [(c, pa.float32()) for c in ncols])
    sw_schema = pa.schema(key[::2] + [("sample_weight", pa.float32())])
    n_val = max(1, eras // 3)
    w = {}
    for part in ("train", "validation"):
        w[part] = pq.ParquetWriter(f"{out}/{part}.parquet", main_schema)
        w[part + "_neutralizer"] = pq.ParquetWriter(f"{out}/{part}_neutralizer.parquet", neut_schema)
        w[part + "_sample_weights"] = pq.ParquetWriter(f"{out}/{part}_sample_weights.parquet", sw_schema)
    w["live"] = pq.ParquetWriter(f"{out}/live.parquet", live_schema)
    beta = rng.standard_normal(21) * 0.05
    for e in range(eras + 1):
        date = first + dt.timedelta(days=7 * e)
        part = "live" if e == eras else ("train" if e < eras - n_val else "validation")
        dates = pa.array([date] * tickers, pa.date32())
        x = rng.standard_normal((tickers, 21), dtype=np.float32)
        x[rng.uniform(size=x.shape) < 0.02] = np.nan
        cols = [pa.array(names), pa.array(figis), dates] + [pa.array(x[:, j]) for j in range(21)]
        cols += [pa.array(countries), pa.array(exchanges)]
        if part == "live":
            w[part].write_table(pa.Table.from_arrays(cols, schema=live_schema))
            continue
        signal = np.nan_to_num(x) @ beta
        for t in range(3):
            y = np.clip(0.5 + signal + 0.1 * rng.standard_normal(tickers), 0, 1)
            if t == 2 and e >= eras - min(12, eras // 10):
                y = np.full(tickers, np.nan)
            cols.append(pa.array(y, pa.float64(), mask=np.isnan(y)))
        w[part].write_table(pa.Table.from_arrays(cols, schema=main_schema))
        neut = rng.standard_normal((tickers, n_neut), dtype=np.float32)
        w[part + "_neutralizer"].write_table(pa.Table.from_arrays(
            [pa.array(names), dates] + [pa.array(neut[:, j]) for j in range(n_neut)], schema=neut_schema))
        sw = rng.uniform(0.0, 2.0, tickers).astype(np.float32)
        w[part + "_sample_weights"].write_table(pa.Table.from_arrays([pa.array(names), dates, pa.array(sw)], schema=sw_schema))
    for x in w.values():
        x.close()
    texts = np.array([f"{WORDS[i % len(WORDS)]} ({i // len(WORDS)})" for i in range(n_texts)])
    start = np.datetime64(first - dt.timedelta(days=30), "us").astype(np.int64)
    end = np.datetime64(first + dt.timedelta(days=7 * eras), "us").astype(np.int64)
    at = np.sort(rng.integers(start, end, n_headlines))
    who = np.array([n[:-3] for n in names])[rng.integers(0, tickers, n_headlines)]
    pq.write_table(pa.table({
        "ticker": pa.array(who),
        "published_at": pa.array(at, pa.timestamp("us", tz="UTC")),
        "headline": pa.array(texts[rng.integers(0, n_texts, n_headlines)]),
    }), f"{out}/headlines.parquet")


if __name__ == "__main__":
    if sys.argv[1] == "v21":
        a = sys.argv[2:]
        v21(a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]), *(int(x) for x in a[5:6]))
    else:
        main()
