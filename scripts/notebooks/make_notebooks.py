import json, sys

# A cell is ("markdown" | "code" | "figure", source). "figure" is a code cell that draws with
# matplotlib: it is tagged "figure" and scripts/notebooks/run-notebooks.sh fails unless its executed copy
# holds at least one image/png output (figures are shown inline, never saved by a forced backend).
def nb(cells):
    out = []
    for kind, src in cells:
        tags = ["figure"] if kind == "figure" else []
        kind = "code" if kind == "figure" else kind
        c = {"cell_type": kind, "id": f"cell-{len(out)}", "metadata": {"tags": tags} if tags else {},
             "source": src.strip("\n").splitlines(keepends=True)}
        if kind == "code":
            c.update({"execution_count": None, "outputs": []})
        out.append(c)
    return {"cells": out, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}

setup = '''
import json, os
from pathlib import Path

# Figures are drawn inline (PNG in the cell output), in Jupyter and under scripts/notebooks/run-notebooks.sh.
%matplotlib inline
import matplotlib.pyplot as plt
import polars as pl

# The run folder written by `signalkit run` (override with SIGNALKIT_RUN=/path/to/run).
RUN = Path(os.environ.get("SIGNALKIT_RUN", "../runs/sample"))
assert (RUN / "evaluate" / "report.json").exists(), f"{RUN}: run `signalkit run` first"
'''

oos = nb([
    ("markdown", "# Out-of-sample performance of a signalkit run\n\nReads `evaluate/report.json` and `model/model.json` from a run folder: per-era and cumulative `numerai_corr` on the validation eras only (after the embargo), and the in-sample numbers for comparison."),
    ("code", setup),
    ("code", '''
report = json.loads((RUN / "evaluate" / "report.json").read_text())
card = json.loads((RUN / "model" / "model.json").read_text())
split = card["split"]
print(f"train eras {len(split['train'])}, embargo {len(split['embargo'])}, validation {len(split['validation'])}")
print("scored:", report["scored"])
pl.DataFrame([{"score": "numerai_corr (OOS)", **report["summary"]}]
             + ([{"score": "feature-neutral (OOS)", **report["feature_neutral"]}] if report.get("feature_neutral") else [])
             + ([{"score": "train (in sample)", **report["in_sample"]}] if report.get("in_sample") else []))
'''),
    ("figure", '''
per_era = pl.DataFrame(report["per_era"]).with_columns(
    pl.col("era").cast(pl.Utf8).str.strptime(pl.Date, "%Y%m%d").alias("date"))
fig, (a, b) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
a.bar(per_era["date"], per_era["corr"], width=5,
      color=["tab:green" if c > 0 else "tab:red" for c in per_era["corr"]])
a.axhline(0, color="black", lw=0.5); a.set_ylabel("numerai_corr per era")
b.plot(per_era["date"], per_era["corr"].cum_sum()); b.set_ylabel("cumulative numerai_corr")
fig.suptitle("Validation eras (out of sample)"); fig.tight_layout()
plt.show()
'''),
    ("code", '''
# Rolling 8-era mean: is the edge stable, or one lucky stretch?
per_era.with_columns(pl.col("corr").rolling_mean(8).alias("rolling_8")).tail(10)
'''),
])

feat = nb([
    ("markdown", "# Features of a signalkit run\n\nFeature importance from `importance/importance.json`, and how the headline sentiment features are distributed in each target bin of the feature table (`features.parquet`)."),
    ("code", setup),
    ("figure", '''
imp = pl.DataFrame(json.loads((RUN / "importance" / "importance.json").read_text()))
top = imp.sort("gain", descending=True).head(20)
fig, ax = plt.subplots(figsize=(9, 6))
ax.barh(top["feature"][::-1], top["gain_share"][::-1]); ax.set_xlabel("share of total gain")
ax.set_title("Top 20 features by gain"); fig.tight_layout()
plt.show()
top.select("feature", "gain_share", "splits", "corr_mean", "corr_sharpe")
'''),
    ("code", '''
card = json.loads((RUN / "model" / "model.json").read_text())
target = card["target"]
features = pl.read_parquet(RUN / "features.parquet")
sent_cols = [c for c in features.columns if c.startswith("sentiment") or c.startswith("p_")]
print(f"{features.height} rows; target {target}; sentiment features: {sent_cols}")
features.group_by(target).agg([pl.col(c).mean().alias(c) for c in sent_cols] + [pl.len().alias("rows")]).sort(target)
'''),
    ("figure", '''
# Distribution of each sentiment feature per target bin (rows with a headline only).
cols = [c for c in ["sentiment", "sentiment_decayed", "sentiment_mean_30d"] if c in features.columns] or sent_cols[:3]
bins = sorted(v for v in features[target].unique().to_list() if v is not None)
fig, axes = plt.subplots(1, len(cols), figsize=(5 * len(cols), 4), squeeze=False)
for ax, c in zip(axes[0], cols):
    data = [features.filter((pl.col(target) == b) & pl.col(c).is_not_null())[c].to_numpy() for b in bins]
    ax.boxplot(data, showfliers=False); ax.set_xticks(range(1, len(bins) + 1), [str(b) for b in bins])
    ax.set_xlabel(target); ax.set_title(c)
fig.tight_layout()
plt.show()
'''),
])
# The notebooks below call the signalkit binary (SIGNALKIT=/path/to/signalkit, default the release
# build) for what it computes exactly (evaluate, compare), and read what it writes.
tool = '''
import subprocess
SIGNALKIT = os.environ.get("SIGNALKIT", "../target/release/signalkit")

def signalkit(*args):
    """Runs the signalkit binary; what it prints is returned, its errors raised."""
    r = subprocess.run([SIGNALKIT, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"signalkit {' '.join(map(str, args))}:\\n{r.stderr}")
    return (r.stdout + r.stderr).strip()
'''

compare = nb([
    ("markdown", """# Compare two runs: is the difference more than noise?

`signalkit compare` scores runs on the eras they share and pairs them era by era. This notebook runs
it on two run folders and shows what it found: each run's mean and sharpe with block-bootstrap
intervals, the per-era difference of the pair, and its cumulative sum against the band that noise
alone would draw.

Set `SIGNALKIT_COMPARE="name=folder,name=folder"` (run folders or `evaluate --out` folders);
the default compares the sample run with a variant that replaces the 32 [CLS] columns by 8
principal components (`scripts/notebooks/run-notebooks.sh` makes both)."""),
    ("code", setup + tool),
    ("code", '''
pairs = os.environ.get("SIGNALKIT_COMPARE", f"sample={RUN},pca8={RUN}-pca8")
runs = [p.split("=", 1) for p in pairs.split(",")]
for name, path in runs:
    assert Path(path).exists(), f"{path}: make this run first (scripts/notebooks/run-notebooks.sh makes the default pair)"
OUT = RUN / "notebooks" / "compare"
print(signalkit("compare", *[f"{n}={p}" for n, p in runs], "--out", OUT))
cmp = json.loads((OUT / "compare.json").read_text())
pl.DataFrame(cmp["runs"]).select("name", "mean", "mean_interval", "sharpe", "sharpe_interval", "share_positive", "max_drawdown")
'''),
    ("markdown", """**How to read the runs table.** `mean_interval` and `sharpe_interval` are 95 % block-bootstrap
intervals (blocks of 4 eras, because a 20-day target overlaps the next 3 weekly eras). An interval
that contains 0 is a run that has not shown an edge on these eras, whatever its mean."""),
    ("code", '''
pl.DataFrame(cmp["pairs"]).select("a", "b", "eras", "mean", "standard_error", "t", "p_adjusted", "share_b_better", "distinguishable")
'''),
    ("figure", '''
import numpy as np
a, b = cmp["pairs"][0]["a"], cmp["pairs"][0]["b"]
ia, ib = [r["name"] for r in cmp["runs"]].index(a), [r["name"] for r in cmp["runs"]].index(b)
eras = [str(e["era"]) for e in cmp["per_era"]]
diff = np.array([e["corr"][ib] - e["corr"][ia] for e in cmp["per_era"]])
k = np.arange(1, len(diff) + 1)
band = 1.96 * diff.std(ddof=1) * np.sqrt(k)   # where a cumulative sum of pure noise stays 95 % of the time
fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
top.bar(k, diff, color=["tab:green" if d > 0 else "tab:red" for d in diff])
top.axhline(0, color="black", lw=0.5); top.set_ylabel(f"{b} − {a}, per era")
bottom.plot(k, diff.cumsum(), label=f"cumulative {b} − {a}")
bottom.fill_between(k, -band, band, color="grey", alpha=0.2, label="±1.96·σ·√k (noise, independent eras)")
bottom.axhline(0, color="black", lw=0.5); bottom.set_ylabel("cumulative difference"); bottom.legend()
bottom.set_xticks(k[::max(1, len(k) // 8)], [eras[i - 1] for i in k[::max(1, len(k) // 8)]])
fig.suptitle(f"{b} vs {a} on {len(diff)} shared eras"); fig.tight_layout()
plt.show()
'''),
    ("code", '''
# Neighbouring eras share 3 of their 4 target weeks, so their differences are correlated and the
# t above (which treats eras as independent) overstates the evidence. A rough correction: the
# effective number of eras under a lag-1 autocorrelation rho is n (1 - rho) / (1 + rho).
rho = float(np.corrcoef(diff[:-1], diff[1:])[0, 1]) if len(diff) > 2 else float("nan")
n_eff = len(diff) * (1 - rho) / (1 + rho) if rho == rho and rho > 0 else len(diff)
t_eff = diff.mean() / (diff.std(ddof=1) / np.sqrt(n_eff))
print(f"lag-1 autocorrelation of the difference {rho:+.2f}: effective eras {n_eff:.0f} of {len(diff)}, t {t_eff:+.2f}")
'''),
    ("markdown", """**How to read the pair.** `mean` is the average per-era difference (b − a), `standard_error`
its noise, `t` their ratio. `p_adjusted` multiplies the p-value by the number of pairs
(Bonferroni), and `distinguishable` is true only below 0.05 after it. In the figure, a cumulative
difference that stays inside the grey band is what two equal models would also draw; one that leaves
it and keeps going is a lead. If the autocorrelation line shows a positive rho, prefer its t.
Every variant you tried on these eras counts, shown or not: trying ten and keeping the best makes
its lead look larger than it is (`compare` warns with the count it was given)."""),
])

smoothing = nb([
    ("markdown", """# Choose a smoothing weight: corr against churn

Numerai sets the stake to zero when a submission's churn (1 − the Spearman correlation with an earlier
submission) reaches 0.15 against any of the last five. Blending this week's predictions with last
week's smoothed ones (`predict --smooth A`: A × last week + (1 − A) × this week, by rank) lowers churn
and can cost corr. This notebook scores the run's out-of-sample predictions at several weights with
`signalkit evaluate --smooth` and draws the frontier."""),
    ("code", setup + tool),
    ("code", '''
OUT = RUN / "notebooks" / "smoothing"
weights = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
print(signalkit("evaluate", "--predictions", RUN / "model" / "predictions.parquet",
                "--targets", RUN / "features.parquet", "--model", RUN / "model",
                "--smooth", ",".join(map(str, weights)), "--out", OUT))
rep = json.loads((OUT / "report.json").read_text())
def row(a, summary, churn):
    n = summary["eras"]
    return {"A": a, "corr_mean": summary["mean"], "corr_se": summary["std"] / n ** 0.5 if n > 1 else None,
            "sharpe": summary["sharpe"], "churn_vs_week_before": churn["mean"],
            "eras_over_0.15_vs_any_of_5_before": churn["eras_over_limit"], "eras": n}
table = pl.DataFrame([row(0.0, rep["summary"], rep["churn"])]
                     + [row(s["weight"], s["summary"], s["churn"]) for s in rep["smoothing"]])
table
'''),
    ("figure", '''
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
left.errorbar(table["churn_vs_week_before"], table["corr_mean"], yerr=table["corr_se"], fmt="o-", capsize=3)
for a, x, y in table.select("A", "churn_vs_week_before", "corr_mean").iter_rows():
    left.annotate(f"A={a:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
left.axvline(0.15, color="tab:red", ls="--", lw=1, label="0.15 (stake set to zero at or over)")
left.set_xlabel("churn mean, vs the week before"); left.set_ylabel("numerai_corr mean ± 1 s.e. (OOS)")
left.set_title("corr against churn"); left.legend()
right.bar([f"{a:g}" for a in table["A"]], table["eras_over_0.15_vs_any_of_5_before"])
right.set_xlabel("A (0 = raw)"); right.set_ylabel("eras at or over 0.15 vs any of the 5 before")
right.set_title(f"eras whose stake would be zero (of {table['eras'][0]})")
fig.tight_layout()
plt.show()
'''),
    ("code", '''
# The smallest weight whose eras all stay under the limit, and its corr beside the raw one.
ok = table.filter(pl.col("eras_over_0.15_vs_any_of_5_before") == 0)
if ok.height == 0:
    print("no weight keeps every era under 0.15: try weights closer to 1, or a steadier model")
else:
    best, raw = ok.sort("A").row(0, named=True), table.row(0, named=True)
    print(f"A = {best['A']:g}: corr {best['corr_mean']:+.4f} (raw {raw['corr_mean']:+.4f}, s.e. ≈ {raw['corr_se']:.4f}), "
          f"churn {best['churn_vs_week_before']:.3f} (raw {raw['churn_vs_week_before']:.3f})")
'''),
    ("markdown", """**How to read it.** Two churn columns, two comparisons: `churn_vs_week_before` compares each
era with the one before; `eras_over_0.15_vs_any_of_5_before` counts eras whose churn against *any* of
the five before reaches 0.15, which is what Numerai checks. Pick the smallest A whose bar is 0, then
check that its corr is within about one standard error of the raw corr: differences smaller than that
are noise on this many eras, not a cost or a gain. Choosing A on the validation eras is itself a
choice made on them; confirm it on later eras (`train --walk-forward`) before trusting the corr."""),
])

own = nb([
    ("markdown", """# Build your own model on signalkit's features

`features.parquet` holds every row of the run with its target, the news features and the model
card's split. This notebook fits a ridge regression on the training eras only, predicts the
validation eras, scores the predictions with `signalkit evaluate` (Numerai's formula, out-of-sample
eras only) and compares them with the run's LightGBM on the same eras with `signalkit compare`.
Replace the ridge with any model you like; keep the split."""),
    ("code", setup + tool),
    ("code", '''
import numpy as np
card = json.loads((RUN / "model" / "model.json").read_text())
target, features_used, split = card["target"], card["features"], card["split"]
table = pl.read_parquet(RUN / "features.parquet")
train = table.filter(pl.col("friday_date").is_in(split["train"]) & pl.col(target).is_not_null())
valid = table.filter(pl.col("friday_date").is_in(split["validation"]))
print(f"{len(features_used)} features; train {train.height} rows in {len(split['train'])} eras, "
      f"embargo {len(split['embargo'])} eras left out, validation {valid.height} rows in {len(split['validation'])} eras")
'''),
    ("code", '''
# Standardise with the training eras' statistics only (missing values become the training mean),
# then ridge regression in closed form.
X = train.select(features_used).to_numpy().astype(float)
mu, sd = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
sd[~(sd > 0)] = 1.0
def prepare(frame):
    Z = (frame.select(features_used).to_numpy().astype(float) - mu) / sd
    return np.nan_to_num(Z, nan=0.0)
Z, y = prepare(train), train[target].to_numpy().astype(float)
lam = 0.1 * len(Z)
w = np.linalg.solve(Z.T @ Z + lam * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
pred = valid.select("bloomberg_ticker", "friday_date").with_columns(
    pl.lit("validation").alias("split"), pl.Series("prediction", prepare(valid) @ w))
OUT = RUN / "notebooks" / "own_model"
OUT.mkdir(parents=True, exist_ok=True)
pred.write_parquet(OUT / "predictions.parquet")
pred.head()
'''),
    ("code", '''
print(signalkit("evaluate", "--predictions", OUT / "predictions.parquet", "--targets", RUN / "features.parquet",
                "--target", target, "--out", OUT / "evaluate"))
print(signalkit("compare", f"lightgbm={RUN}", f"ridge={OUT / 'evaluate'}", "--out", OUT / "compare"))
'''),
    ("figure", '''
cmp = json.loads((OUT / "compare" / "compare.json").read_text())
names = [r["name"] for r in cmp["runs"]]
per_era = np.array([e["corr"] for e in cmp["per_era"]])
fig, ax = plt.subplots(figsize=(11, 4))
for i, n in enumerate(names):
    ax.plot(per_era[:, i].cumsum(), label=n)
ax.axhline(0, color="black", lw=0.5); ax.set_xlabel("shared validation era"); ax.set_ylabel("cumulative numerai_corr")
ax.legend(); ax.set_title("your model vs the run's LightGBM, out of sample")
plt.show()
'''),
    ("markdown", """**How to read it.** Both models are scored on the same validation eras, after the embargo, by
the same formula; the compare line above says whether their difference is more than noise. Keep the
split: every choice (features, ridge strength, a different model) made by looking at the validation
eras is one more variant tried on them, and the best of many looks better than it will be live.
To submit your model's predictions, write them for the live era as a signal file (ticker,
signal in (0, 1)) and check it with `signalkit submit --dry-run`."""),
])

for name, book in [("oos_performance", oos), ("features", feat), ("compare_runs", compare),
                   ("smoothing", smoothing), ("own_model", own)]:
    with open(f"notebooks/{name}.ipynb", "w") as f:
        json.dump(book, f, indent=1)
        f.write("\n")
