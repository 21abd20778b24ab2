"""Benchmark data and the pandas reference for `signalkit join` (used by bench-join.sh).

  python bench_join.py gen DIR ROWS_TICKERS ROWS_FRIDAYS HEADLINES   # write targets/headlines parquet
  python bench_join.py pandas DIR                                      # the same join in pandas

The pandas join is the one people write: merge_asof(direction="backward",
allow_exact_matches=False, tolerance=30 days, by ticker) for the latest headline, and
searchsorted on a (ticker, instant) key for the 7/30-day counts.
"""
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

US_PER_DAY = 86_400_000_000
TEMPLATES = [
    f"{a} {b} {c}"
    for a in ["reports", "beats", "misses", "announces", "raises", "cuts", "delays", "confirms", "expands", "settles"]
    for b in ["quarterly earnings", "full-year guidance", "dividend", "share buyback", "debt offering",
              "merger talks", "product recall", "regulatory probe", "factory expansion", "management change"]
    for c in ["after strong demand", "amid market turmoil", "as analysts weigh in", "ahead of results",
              "in surprise move", "following review", "as shares slide", "as shares rally", "", "says CEO"]
]


def gen(out, n_tickers, n_fridays, n_headlines):
    rng = np.random.default_rng(0)
    tickers = np.array([f"T{i:05d}" for i in range(n_tickers)])
    first = np.datetime64("2015-01-02")
    fridays = first + np.arange(n_fridays) * 7
    rows = pd.DataFrame({
        "bloomberg_ticker": np.repeat(tickers, n_fridays).astype(object) + " US",
        "friday_date": np.tile(pd.to_datetime(fridays).strftime("%Y%m%d").astype(np.int64), n_tickers),
        "data_type": "train",
        "target_20d_factor_neutral": rng.choice([0, .25, .5, .75, 1], size=n_tickers * n_fridays),
    })
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), f"{out}/targets.parquet")
    lo = (first.astype("datetime64[us]").astype(np.int64)) - 30 * US_PER_DAY
    hi = fridays[-1].astype("datetime64[us]").astype(np.int64)
    t = rng.integers(lo, hi, size=n_headlines)
    t -= t % 60_000_000  # whole minutes, so cutoffs are hit exactly now and then
    which = rng.integers(0, n_tickers, size=n_headlines)
    tick = pa.array(tickers).take(pa.array(which))
    text = pc.binary_join_element_wise(tick, pa.array(TEMPLATES).take(pa.array(rng.integers(0, len(TEMPLATES), n_headlines))), " ")
    table = pa.table({
        "ticker": tick,
        "published_at": pa.array(t, type=pa.timestamp("us", tz="UTC")),
        "headline": text,
    })
    pq.write_table(table, f"{out}/headlines.parquet")


def pandas_join(d):
    t0 = time.perf_counter()
    phases = []
    mark = lambda name: phases.append((name, time.perf_counter()))
    rows = pd.read_parquet(f"{d}/targets.parquet")
    heads = pd.read_parquet(f"{d}/headlines.parquet")
    mark("read")
    heads["key"] = heads["ticker"].str.upper() + " US"
    heads = heads.drop_duplicates(["key", "published_at", "headline"])
    mark("dedup")
    rows["cutoff"] = pd.to_datetime(rows["friday_date"].astype(str), format="%Y%m%d", utc=True).astype("datetime64[us, UTC]")
    left = rows.reset_index().sort_values("cutoff", kind="stable")
    right = heads.sort_values("published_at", kind="stable")
    m = pd.merge_asof(left, right[["key", "published_at", "headline"]], left_on="cutoff", right_on="published_at",
                      left_by="bloomberg_ticker", right_by="key", direction="backward",
                      allow_exact_matches=False, tolerance=pd.Timedelta(days=30))
    m = m.sort_values("index").set_index("index")
    mark("merge_asof")
    # window counts: searchsorted on a combined (ticker code, instant) key
    cats = pd.Index(pd.unique(rows["bloomberg_ticker"]))
    hcode = cats.get_indexer(heads["key"])
    keep = hcode >= 0
    ht = heads["published_at"].dt.as_unit("us").array.asi8[keep]
    base = ht.min() - 400 * US_PER_DAY
    hkey = np.sort((hcode[keep].astype(np.int64) << 50) | (ht - base))
    rcode = cats.get_indexer(rows["bloomberg_ticker"]).astype(np.int64) << 50
    cut = rows["cutoff"].dt.as_unit("us").array.asi8 - base
    hi = np.searchsorted(hkey, rcode | cut, side="left")
    out = rows.drop(columns=["cutoff"])
    out["headline"] = m["headline"].to_numpy()
    out["headline_published_at"] = m["published_at"].to_numpy()
    out["headline_age_days"] = (m["cutoff"] - m["published_at"]).dt.total_seconds().to_numpy() / 86400
    for days in (7, 30):
        out[f"n_headlines_{days}d"] = (hi - np.searchsorted(hkey, rcode | (cut - days * US_PER_DAY), side="left")).astype(np.uint32)
    mark("counts")
    out.to_parquet(f"{d}/pandas_rows.parquet", index=False)
    mark("write")
    elapsed = time.perf_counter() - t0
    prev = t0
    for name, t in phases:
        print(f"  pandas {name}: {t - prev:.2f}s", file=sys.stderr)
        prev = t
    print(f"pandas: {elapsed:.2f}s; rows {len(out)}, with headline {out['headline'].notna().sum()}, "
          f"sum n30 {int(out['n_headlines_30d'].sum())}")


def check(d):
    a = pd.read_parquet(f"{d}/pandas_rows.parquet")
    b = pd.read_parquet(f"{d}/signalkit_rows.parquet")
    assert len(a) == len(b)
    for c in ["headline", "n_headlines_7d", "n_headlines_30d"]:
        same = (a[c].fillna("<null>").astype(str) == b[c].fillna("<null>").astype(str)).mean()
        print(f"agreement on {c}: {100 * same:.4f}%")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "pandas":
        pandas_join(sys.argv[2])
    else:
        check(sys.argv[2])
