"""Reference numbers for the Rust tests, computed with the Python tools Numerai users run.

  data/fixtures/metrics.json  numerai-tools' numerai_corr, feature-neutral corr and feature
                              exposure per era, plus mean/std/sharpe/max drawdown, on fixed
                              random data with ties and NaNs.
  data/fixtures/lightgbm.json Python lightgbm's predictions (same version and parameters as
                              signalkit's train) on a small fixed data set.

Run through scripts/make-reference.sh (it makes the venv). Deterministic: same output each run.
"""
import json
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
from numerai_tools import scoring

out_dir = sys.argv[1] if len(sys.argv) > 1 else "data/fixtures"
rng = np.random.default_rng(20261121)


def nan_to_none(xs):
    return [None if (x is None or (isinstance(x, float) and np.isnan(x))) else float(x) for x in xs]


# --- metrics -----------------------------------------------------------------------------
eras, preds, targets, f1, f2, f3 = [], [], [], [], [], []
per_era, fnc, exposure = [], [], []
for k, era in enumerate([20130104, 20130111, 20130118, 20130125, 20130201, 20130208, 20130215]):
    n = 150 + 20 * k
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    c = np.round(rng.uniform(size=n), 1)  # a feature with many ties
    t = np.clip(np.round((0.5 + 0.2 * (0.3 * a + rng.normal(size=n))) * 4) / 4, 0, 1)
    p = np.round(0.4 * a + 0.2 * b + rng.normal(size=n), 1)  # ties in predictions
    p[rng.uniform(size=n) < 0.05] = np.nan
    t[rng.uniform(size=n) < 0.05] = np.nan
    idx = pd.RangeIndex(n)
    ps, ts = pd.Series(p, index=idx, name="prediction"), pd.Series(t, index=idx, name="target")
    per_era.append(float(scoring.numerai_corr(ps.to_frame(), ts).iloc[0]))
    feats = pd.DataFrame({"f1": a, "f2": b, "f3": c}, index=idx)
    keep = ~ps.isna()
    fnc.append(float(scoring.feature_neutral_corr(ps[keep].to_frame(), feats[keep], ts[keep]).iloc[0]))
    exposure.append(float(scoring.max_feature_correlation(ps[keep], feats[keep])[1]))
    eras += [era] * n
    preds += list(p)
    targets += list(t)
    f1 += list(a)
    f2 += list(b)
    f3 += list(c)

s = pd.Series(per_era)
cum = s.cumsum()
summary = {
    "mean": float(s.mean()),
    "std": float(s.std(ddof=0)),
    "sharpe": float(scoring.sharpe_ratio(s)),
    "max_drawdown": float((cum.cummax() - cum).max()),
    "share_positive": float((s > 0).mean()),
    "eras": len(s),
}
metrics = {
    "source": f"numerai-tools (scoring.py), numpy {np.__version__}, pandas {pd.__version__}",
    "era": eras,
    "prediction": nan_to_none(preds),
    "target": nan_to_none(targets),
    "features": {"f1": f1, "f2": f2, "f3": f3},
    "expected": {"per_era_corr": per_era, "fnc": fnc, "exposure": exposure, "summary": summary},
}
with open(f"{out_dir}/metrics.json", "w") as f:
    json.dump(metrics, f)

# --- lightgbm ----------------------------------------------------------------------------
n, k = 800, 6
X = rng.normal(size=(n, k)).astype(np.float32)
X[rng.uniform(size=(n, k)) < 0.05] = np.nan
y = (0.5 + 0.1 * np.nan_to_num(X[:, 0]) - 0.05 * np.nan_to_num(X[:, 1]) ** 2 + 0.1 * rng.normal(size=n))
y = np.clip(np.round(y * 4) / 4, 0, 1).astype(np.float32)
params = {
    "objective": "regression",
    "num_iterations": 60,
    "learning_rate": 0.05,
    "max_depth": 5,
    "num_leaves": 31,
    "feature_fraction": 0.5,
    "seed": 0,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}
train_rows = 600
booster = lgb.train(params, lgb.Dataset(X[:train_rows], y[:train_rows]))
pred = booster.predict(X[train_rows:])
fixture = {
    "source": f"lightgbm {lgb.__version__} (Python)",
    "params": params,
    "n_features": k,
    "train_rows": train_rows,
    "x": nan_to_none(X.reshape(-1).astype(np.float64)),
    "y": [float(v) for v in y],
    "prediction": [float(v) for v in pred],
}
with open(f"{out_dir}/lightgbm.json", "w") as f:
    json.dump(fixture, f)
print(f"wrote {out_dir}/metrics.json ({len(eras)} rows, {len(per_era)} eras) and {out_dir}/lightgbm.json")
