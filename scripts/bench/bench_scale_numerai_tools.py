"""numerai-tools' per-date loop beside `signalkit evaluate` (issue 29, bench-scale-v21.sh).

  python bench_scale_numerai_tools.py PREDICTIONS TARGETS NEUTRALIZERS WEIGHTS REPORT_JSON TARGET

As Numerai's example notebook scores a validation backtest: for each date signalkit scored
(REPORT_JSON's payout.as_paid.per_era), read that date's neutralizer and sample-weight rows with a
parquet filter, clean the submission over them (`clean_submission(rank_and_fill=True)`), and take
numerai-tools `alpha` and `neutral_correlation`. Prints the loop's seconds and the largest
difference from signalkit's per-era values.
"""
import datetime as dt
import json
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from numerai_tools import scoring, submissions

preds_path, targets_path, neut_path, w_path, report_path, target = sys.argv[1:7]
start = time.time()
report = json.load(open(report_path))
paid = {e["era"]: e for e in report["payout"]["as_paid"]["per_era"]}
preds = pd.read_parquet(preds_path)
tick = "numerai_ticker"
pcol = "prediction" if "prediction" in preds else "signal"
targets = pd.read_parquet(targets_path, columns=[tick, "date", target])
for df in (preds, targets):
    d = df["date"]
    df["era"] = d.astype(int) if pd.api.types.is_integer_dtype(d) else pd.to_datetime(d).dt.strftime("%Y%m%d").astype(int)
worst, eras = 0.0, 0
for era in sorted(paid):
    day = dt.datetime.strptime(str(era), "%Y%m%d").date()
    neut = pq.read_table(neut_path, filters=[("date", "=", day)]).to_pandas().set_index(tick).drop(columns="date")
    w = pq.read_table(w_path, filters=[("date", "=", day)]).to_pandas().set_index(tick)["sample_weight"]
    p = preds[preds.era == era]
    cleaned = submissions.clean_submission(
        universe=pd.DataFrame({tick: neut.index}), submission=p[[tick, pcol]].rename(columns={pcol: "signal"}),
        src_id_col=tick, src_signal_col="signal", rank_and_fill=True).to_frame("p")
    t = targets[targets.era == era].set_index(tick)[target].reindex(neut.index)
    ok = t.notna()
    a = scoring.alpha(cleaned[ok], neut[ok].astype(float), w[ok].astype(float), t[ok]).iloc[0]
    nc = scoring.neutral_correlation(cleaned[ok], neut[ok].astype(float), t[ok]).iloc[0]
    ours = paid[era]
    for theirs, mine in ((a, ours.get("alpha")), (nc, ours.get("neutral_corr"))):
        if mine is None or not np.isfinite(theirs):
            continue
        worst = max(worst, abs(float(theirs) - mine))
    eras += 1
print(f"numerai-tools per-date loop: {eras} eras in {time.time() - start:.1f} s; "
      f"max |alpha, neutral_corr difference| vs signalkit = {worst:.3g}")
