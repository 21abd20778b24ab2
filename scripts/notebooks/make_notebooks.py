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
for name, book in [("oos_performance", oos), ("features", feat)]:
    with open(f"notebooks/{name}.ipynb", "w") as f:
        json.dump(book, f, indent=1)
        f.write("\n")
