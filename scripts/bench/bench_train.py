"""Helper for scripts/bench/bench-train.sh.

  gen DIR ROWS FEATURES   write DIR/features.parquet: f32 features, weekly eras, binned target
  python DIR ITERS        train Python lightgbm with signalkit's default parameters on the train
                          eras; print seconds (Dataset + training, as signalkit's card reports)
                          and peak RSS
"""
import json
import resource
import sys
import time

import numpy as np


def gen(d, rows, k):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    eras = 150
    per = rows // eras
    rows = per * eras
    fridays = np.repeat(np.arange(eras), per)
    dates = (np.datetime64("2019-01-04") + fridays * np.timedelta64(7, "D")).astype("datetime64[D]")
    x = rng.standard_normal((rows, k), dtype=np.float32)
    signal = 0.3 * x[:, 0] + 0.2 * x[:, 1] * x[:, 2] + rng.standard_normal(rows).astype(np.float32)
    ranks = signal.argsort().argsort() / rows
    target = np.clip(np.floor(ranks * 5) / 4, 0, 1)
    cols = {
        "bloomberg_ticker": pa.array([f"T{i % per:05d} US" for i in range(rows)]),
        "friday_date": pa.array([int(str(d).replace("-", "")) for d in dates], pa.int64()),
        "data_type": pa.array(np.where(fridays < 120, "train", "validation")),
        "target_20d_factor_neutral": pa.array(target),
    }
    for j in range(k):
        cols[f"cls_{j:03d}"] = pa.array(x[:, j])
    pq.write_table(pa.table(cols), f"{d}/features.parquet", compression="zstd")
    print(f"wrote {d}/features.parquet: {rows} rows x {k} f32 features")


def python(d, iters):
    import lightgbm as lgb
    import pyarrow.parquet as pq

    t = pq.read_table(f"{d}/features.parquet")
    train = np.asarray(t.column("data_type").to_numpy(zero_copy_only=False) == "train")
    names = [c for c in t.column_names if c.startswith("cls_")]
    x = np.column_stack([t.column(c).to_numpy() for c in names]).astype(np.float32, copy=False)[train]
    y = t.column("target_20d_factor_neutral").to_numpy()[train].astype(np.float32)
    del t
    params = json.load(open(f"{d}/params.json"))
    params["num_iterations"] = int(iters)
    start = time.perf_counter()
    booster = lgb.train(params, lgb.Dataset(x, y))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"python lightgbm {lgb.__version__}: {seconds:.2f}s training ({booster.num_trees()} trees), peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    {"gen": lambda: gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])), "python": lambda: python(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
