"""Parity fixtures for the Signals scores in src/metrics.rs (checked by tests/metrics_parity.rs).

Every expected number comes from numerai-tools 0.7.2, the reference for how Signals pays
(DESIGN §4b). This script installs nothing; run it with numerai-tools from pip:

    python3 -m venv /tmp/nt && /tmp/nt/bin/pip install numerai-tools==0.7.2
    /tmp/nt/bin/python scripts/make_metrics_fixtures.py            # writes data/fixtures/metrics/

Writes clean_submission, churn, turnover, neutral_churn, neutral_churn_penalty, scores
(numerai_corr, neutral_correlation, alpha, generate_neutralized_weights, correlation_contribution,
neutral_contribution per era) and gate (calculate_max_churn_and_turnover,
calculate_mean_neutral_churn) .json, about 190 KB in all.

Deterministic: a fixed seed, so a rerun writes the same files (given the same numpy/pandas/scipy).
The data have ties, NaNs, partial universes, rows shuffled out of ticker order and neutralizer
frames that miss rows. Where numerai-tools raises, the expected value is null and the error is
recorded beside it; signalkit returns NaN there.

Conventions shared with the Rust test:
  * keyed inputs (churn, turnover): `ids*` and values `s*` are a pandas Series' index and values;
    null in `s*` is a NaN value that is present in the Series (it counts in its length).
  * per-row inputs (everything else): parallel arrays over one era's rows; null means the row is
    absent from that input, so the pandas object is built from that input's non-null rows. A
    neutralizer row is absent when all its columns are null; a row with some nulls is present
    with a NaN in it.
"""
import json
import os
import sys

import numpy as np
import pandas as pd
import scipy
from numerai_tools import scoring, signals, submissions

OUT = sys.argv[1] if len(sys.argv) > 1 else "data/fixtures/metrics"
rng = np.random.default_rng(20261204)


def jf(x):
    """A float for JSON: NaN/None become null."""
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else x


def jl(xs):
    return [jf(x) for x in xs]


def attempt(f):
    """(value, None) or (None, 'Error: message') when numerai-tools raises."""
    try:
        return f(), None
    except Exception as e:  # noqa: BLE001 - the error itself is the expected outcome
        return None, f"{type(e).__name__}: {e}".strip()


def ids_of(n, start=0):
    return [f"T{i:03d}" for i in range(start, start + n)]


def series(ids, values, name="s"):
    """A Series of the non-null rows (per-row convention)."""
    v = np.asarray(values, dtype=float)
    keep = ~np.isnan(v)
    return pd.Series(v[keep], index=pd.Index(np.asarray(ids)[keep], name="numerai_ticker"), name=name)


def frame(ids, columns):
    """A DataFrame of the rows where some column is non-null (per-row convention)."""
    m = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    keep = ~np.isnan(m).all(axis=1)
    names = [f"n{j}" for j in range(m.shape[1])]
    return pd.DataFrame(m[keep], index=pd.Index(np.asarray(ids)[keep], name="numerai_ticker"), columns=names)


def keyed(ids, values, name="s"):
    """A Series with every given id, NaN values kept (keyed convention)."""
    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(ids, name="numerai_ticker"), name=name)


def write(name, payload):
    payload = {
        "source": f"numerai-tools 0.7.2, numpy {np.__version__}, pandas {pd.__version__}, scipy {scipy.__version__}",
        **payload,
    }
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(payload, f, separators=(",", ":"))


def with_nan(v, share):
    v = np.array(v, dtype=float)
    v[rng.uniform(size=len(v)) < share] = np.nan
    return v


def binned_target(signal, n):
    return np.clip(np.round((0.5 + 0.2 * (0.3 * signal + rng.normal(size=n))) * 4) / 4, 0, 1)


os.makedirs(OUT, exist_ok=True)

# --- clean_submission ------------------------------------------------------------------------
clean_cases = []
# No repeated tickers: which repeat numerai-tools keeps depends on numpy's unstable sort in
# remap_ids (and Numerai refuses a submission with repeated universe tickers before cleaning).
for name, n_univ, cover, extra, nan_rows in [
    ("partial_with_extras_nan", 80, 0.7, 6, 2),
    ("full_cover_ties", 50, 1.0, 0, 0),
    ("sparse", 60, 0.3, 3, 1),
]:
    universe = ids_of(n_univ)
    rng.shuffle(universe)
    chosen = [t for t in universe if rng.uniform() < cover]
    sub_ids = chosen + ids_of(extra, start=900)  # tickers outside the universe
    sub_vals = np.round(rng.uniform(0.01, 0.99, size=len(sub_ids)), 1)  # many ties
    sub_vals[:nan_rows] = np.nan
    order = rng.permutation(len(sub_ids))
    sub_ids = [sub_ids[i] for i in order]
    sub_vals = sub_vals[order]
    cleaned = submissions.clean_submission(
        universe=pd.DataFrame({"numerai_ticker": universe}),
        submission=pd.DataFrame({"numerai_ticker": sub_ids, "signal": sub_vals}),
        src_id_col="numerai_ticker",
        src_signal_col="signal",
        rank_and_fill=True,
    )
    clean_cases.append(
        {
            "name": name,
            "universe": universe,
            "ids": sub_ids,
            "signal": jl(sub_vals),
            "expected_ids": list(cleaned.index),
            "expected": jl(cleaned.values),
        }
    )
write("clean_submission.json", {"cases": clean_cases})


# --- churn and turnover (keyed) --------------------------------------------------------------
def keyed_pair(n1, n2, shift, nan_share, decimals, corr):
    ids1 = ids_of(n1)
    ids2 = ids_of(n2, start=shift)
    base = rng.normal(size=max(n1, n2 + shift) + 1)
    s1 = np.array([base[int(t[1:])] for t in ids1]) + 0.3 * rng.normal(size=n1)
    s2 = corr * np.array([base[int(t[1:])] for t in ids2]) + rng.normal(size=n2)
    s1, s2 = np.round(s1, decimals), np.round(s2, decimals)
    s1, s2 = with_nan(s1, nan_share), with_nan(s2, nan_share)
    o1, o2 = rng.permutation(n1), rng.permutation(n2)
    return [ids1[i] for i in o1], s1[o1], [ids2[i] for i in o2], s2[o2]


def cleaned_pair(n_univ, shift, corr):
    """Two weeks' cleaned submissions (rank, fill 0.5) on universes that differ by `shift` tickers."""
    u1, u2 = ids_of(n_univ), ids_of(n_univ, start=shift)
    base = rng.normal(size=n_univ + shift)
    out = []
    for universe, c in [(u1, 1.0), (u2, corr)]:
        sub = [t for t in universe if rng.uniform() < 0.85]
        vals = c * np.array([base[int(t[1:])] for t in sub]) + rng.normal(size=len(sub))
        vals = (np.round(vals, 1) - vals.min() + 0.1) / (vals.max() - vals.min() + 0.2)
        cleaned = submissions.clean_submission(
            universe=pd.DataFrame({"numerai_ticker": universe}),
            submission=pd.DataFrame({"numerai_ticker": sub, "signal": vals}),
            src_id_col="numerai_ticker",
            src_signal_col="signal",
            rank_and_fill=True,
        )
        out += [list(cleaned.index), cleaned.values]
    return out


churn_cases = []
for name, (ids1, s1, ids2, s2) in [
    ("overlap_ties_nan", keyed_pair(100, 95, 3, 0.03, 1, 0.8)),
    ("fine_values", keyed_pair(70, 70, 0, 0.0, 6, 0.3)),
    ("low_overlap", keyed_pair(100, 100, 30, 0.0, 2, 0.8)),
    ("nan_heavy", keyed_pair(60, 60, 0, 0.25, 2, 0.8)),
    ("cleaned_weeks", cleaned_pair(120, 5, 0.7)),
    ("constant", (ids_of(40), np.linspace(0.1, 0.9, 40), ids_of(40), np.full(40, 0.5))),
]:
    a, b = keyed(ids1, s1), keyed(ids2, s2)
    value, error = attempt(lambda: signals.churn(a, b))
    top_bottom = []
    for tb in [3, 10, 45]:
        v, e = attempt(lambda: signals.churn(a, b, top_bottom=tb))
        top_bottom.append({"top_bottom": tb, "expected": jf(v), "error": e})
    churn_cases.append(
        {
            "name": name,
            "ids1": list(ids1),
            "s1": jl(s1),
            "ids2": list(ids2),
            "s2": jl(s2),
            "expected": jf(value),
            "error": error,
            "top_bottom": top_bottom,
        }
    )
write("churn.json", {"cases": churn_cases})

turnover_cases = []
for name, (ids1, s1, ids2, s2) in [
    ("overlap_nan", keyed_pair(100, 95, 3, 0.03, 4, 0.8)),
    ("low_overlap", keyed_pair(50, 50, 20, 0.0, 4, 0.8)),
]:
    v, e = attempt(lambda: signals.turnover(keyed(ids1, s1), keyed(ids2, s2)))
    turnover_cases.append(
        {"name": name, "ids1": list(ids1), "s1": jl(s1), "ids2": list(ids2), "s2": jl(s2), "expected": jf(v), "error": e}
    )


# --- neutralizers and sample weights for per-row scores -------------------------------------
def neutralizer_columns(n, k, rank_deficient=False):
    cols = [np.round(rng.normal(size=n) / np.sqrt(n), 5) for _ in range(k)]
    sector = rng.integers(0, 3, size=n)
    cols.append(np.round((sector == 0).astype(float) / np.sqrt(n), 5))  # a one-hot sector column, full of ties
    if rank_deficient:
        cols.append(2.0 * cols[0])  # exactly collinear: lstsq's rcond drops it
    return cols


def drop_rows(columns, share):
    """Blank out whole rows (absent from the neutralizer frame)."""
    n = len(columns[0])
    gone = rng.uniform(size=n) < share
    return [np.where(gone, np.nan, c) for c in columns]


# --- neutral_churn -------------------------------------------------------------------------
def neutral_churn_side(universe_n, start, cover, neutral_missing, base, constant=False):
    """One era on the union of its signal's and its neutralizer frame's rows."""
    ids = ids_of(universe_n, start=start)
    n = len(ids)
    sig = np.array([base[int(t[1:])] for t in ids]) + rng.normal(size=n)
    sig = np.round((sig - sig.min() + 0.1) / (sig.max() - sig.min() + 0.2), 2)
    if constant:
        sig = np.full(n, 0.5)
    sig[rng.uniform(size=n) > cover] = np.nan  # rows the signal lacks
    cols = drop_rows(neutralizer_columns(n, 3), neutral_missing)
    order = rng.permutation(n)
    return [ids[i] for i in order], sig[order], [c[order] for c in cols]


nc_cases = []
base = rng.normal(size=400)
for name, side1, side2 in [
    ("full_universe", (70, 0, 1.0, 0.0), (70, 4, 1.0, 0.0)),
    ("partial_signal_missing_neutralizer_rows", (80, 0, 0.96, 0.04), (80, 2, 0.97, 0.03)),
    ("neutralizers_miss_too_many", (50, 0, 1.0, 0.35), (50, 0, 1.0, 0.0)),
    ("constant_signal", (40, 0, 1.0, 0.0, True), (40, 0, 1.0, 0.0)),
]:
    ids1, s1, n1 = neutral_churn_side(*side1[:4], base, *side1[4:])
    ids2, s2, n2 = neutral_churn_side(*side2[:4], base, *side2[4:])
    v, e = attempt(
        lambda: signals.neutral_churn(series(ids1, s1), series(ids2, s2), frame(ids1, n1), frame(ids2, n2))
    )
    nc_cases.append(
        {
            "name": name,
            "ids1": ids1,
            "s1": jl(s1),
            "neutralizers1": [jl(c) for c in n1],
            "ids2": ids2,
            "s2": jl(s2),
            "neutralizers2": [jl(c) for c in n2],
            "expected": jf(v),
            "error": e,
        }
    )
write("neutral_churn.json", {"cases": nc_cases})


# turnover as the gate takes it: between two weeks' neutralized, centred, normalized weights of
# cleaned submissions (the weights are the inputs here; generate_neutralized_weights is checked
# on its own below).
for name, shift in [("cleaned_weeks_weights", 4), ("cleaned_weeks_weights_shifted", 12)]:
    u1, s1, u2, s2 = cleaned_pair(90, shift, 0.6)
    ws = []
    for u, sv in [(u1, s1), (u2, s2)]:
        cols = neutralizer_columns(len(u), 3)
        nz = pd.DataFrame(np.column_stack(cols), index=pd.Index(u, name="numerai_ticker"))
        sw = pd.Series(np.full(len(u), 1.0 / len(u)), index=nz.index)
        w = scoring.generate_neutralized_weights(keyed(u, sv).to_frame(), nz, sw, center_and_normalize=True)["s"]
        ws.append(w.round(9))  # rounded inputs keep the file small
    v, e = attempt(lambda: signals.turnover(ws[0], ws[1]))
    turnover_cases.append(
        {"name": name, "ids1": u1, "s1": jl(ws[0].values), "ids2": u2, "s2": jl(ws[1].values), "expected": jf(v), "error": e}
    )
write("turnover.json", {"cases": turnover_cases})

# --- neutral_churn_penalty -------------------------------------------------------------------
penalty_cases = []
for x, th, sc in [
    (0.0, 0.1, 10.0),
    (0.05, 0.1, 10.0),
    (0.1, 0.1, 10.0),
    (0.1000001, 0.1, 10.0),
    (0.15, 0.1, 10.0),
    (0.3, 0.1, 10.0),
    (1.2, 0.1, 10.0),
    (2.0, 0.1, 10.0),
    (0.5, 0.3, 4.0),
    (1.9, 0.0, 1000.0),
    (-0.1, 0.1, 10.0),
    (2.5, 0.1, 10.0),
    (0.5, 0.1, 0.0),
    (0.5, 2.5, 10.0),
]:
    v, e = attempt(lambda: signals.neutral_churn_penalty(x, threshold=th, scaling_factor=sc))
    penalty_cases.append({"neutral_churn": x, "threshold": th, "scaling_factor": sc, "expected": jf(v), "error": e})
write("neutral_churn_penalty.json", {"cases": penalty_cases})


# --- per-era scores: neutral_correlation, alpha, weights, contributions, numerai_corr ---------
def era_case(name, n, pred_nan, target_nan, meta_nan, neutral_missing, weight_missing, *, raw_target=False,
             rank_deficient=False, constant_pred=False, constant_meta=False, partial_nan_row=False, cleaned=False):
    ids = ids_of(n)
    signal = rng.normal(size=n)
    pred = np.round(0.5 * signal + rng.normal(size=n), 1)  # ties
    meta = np.round(0.6 * signal + rng.normal(size=n), 4)
    target = np.round(0.02 * signal + 0.05 * rng.normal(size=n), 5) if raw_target else binned_target(signal, n)
    cols = drop_rows(neutralizer_columns(n, 3, rank_deficient), neutral_missing)
    if partial_nan_row:
        present = np.where(~np.isnan(cols[0]))[0]
        cols[1][present[0]] = np.nan
    weight = rng.uniform(0.2, 1.0, size=n)
    weight = np.round(weight / weight.sum(), 6)
    weight[rng.uniform(size=n) < weight_missing] = np.nan
    pred, meta, target = with_nan(pred, pred_nan), with_nan(meta, meta_nan), with_nan(target, target_nan)
    if constant_pred:
        pred = np.where(np.isnan(pred), np.nan, 0.5)
    if constant_meta:
        meta = np.where(np.isnan(meta), np.nan, 0.3)
    if cleaned:  # the submission as Numerai scores it: on the neutralizer universe, ranked, 0.5-filled
        universe = [t for t, c in zip(ids, cols[0]) if not np.isnan(c)]
        sub = series(ids, pred)
        cl = submissions.clean_submission(
            universe=pd.DataFrame({"numerai_ticker": universe}),
            submission=sub.rename("signal").reset_index(),
            src_id_col="numerai_ticker",
            src_signal_col="signal",
            rank_and_fill=True,
        )
        pred = np.array([cl.get(t, np.nan) for t in ids])
    order = rng.permutation(n)
    ids = [ids[i] for i in order]
    pred, meta, target, weight = pred[order], meta[order], target[order], weight[order]
    cols = [c[order] for c in cols]

    p, m, t = series(ids, pred, "p").to_frame(), series(ids, meta, "m"), series(ids, target, "t")
    nz, w = frame(ids, cols), series(ids, weight, "w")
    expected, errors = {}, {}

    def record(key, f, parallel=False):
        v, e = attempt(f)
        if parallel and v is not None:
            v = jl(v.reindex(ids).values)
        elif v is not None:
            v = jf(v)
        expected[key] = v
        if e:
            errors[key] = e

    record("numerai_corr", lambda: scoring.numerai_corr(p, t).iloc[0])
    record("neutral_correlation", lambda: scoring.neutral_correlation(p, nz, t).iloc[0])
    record("alpha", lambda: scoring.alpha(p, nz, w, t).iloc[0])
    # generate_neutralized_weights ranks its input without sorting it first (rank asserts a sorted
    # index), so it is given sorted frames; the other functions sort for themselves.
    ps, nzs, ws = p.sort_index(), nz.sort_index(), w.sort_index()
    record("neutralized_weights", lambda: scoring.generate_neutralized_weights(ps, nzs, ws)["p"], parallel=True)
    record(
        "neutralized_weights_centered",
        lambda: scoring.generate_neutralized_weights(ps, nzs, ws, center_and_normalize=True)["p"],
        parallel=True,
    )
    record("correlation_contribution", lambda: scoring.correlation_contribution(p, m, t).iloc[0])
    record("neutral_contribution", lambda: scoring.neutral_contribution(p, m, nz, t).iloc[0])
    return {
        "name": name,
        "ids": ids,
        "prediction": jl(pred),
        "meta_model": jl(meta),
        "target": jl(target),
        "sample_weight": jl(weight),
        "neutralizers": [jl(c) for c in cols],
        "expected": expected,
        "errors": errors,
    }


score_cases = [
    era_case("complete", 100, 0.0, 0.0, 0.0, 0.0, 0.0),
    era_case("nan_preds_targets_meta", 120, 0.06, 0.06, 0.05, 0.0, 0.0),
    era_case("missing_neutralizer_rows", 120, 0.03, 0.03, 0.03, 0.07, 0.0),
    era_case("neutralizer_row_with_a_nan", 80, 0.03, 0.03, 0.0, 0.04, 0.0, partial_nan_row=True),
    era_case("missing_weight_rows", 90, 0.0, 0.04, 0.0, 0.0, 0.06),
    era_case("too_many_missing", 80, 0.15, 0.1, 0.1, 0.1, 0.1),
    era_case("raw_target_rank_deficient", 100, 0.04, 0.03, 0.04, 0.0, 0.0, raw_target=True, rank_deficient=True),
    era_case("cleaned_on_neutralizer_universe", 120, 0.12, 0.05, 0.03, 0.06, 0.0, cleaned=True),
    era_case("constant_predictions", 40, 0.0, 0.0, 0.0, 0.0, 0.0, constant_pred=True),
    era_case("constant_meta_model", 40, 0.0, 0.0, 0.0, 0.0, 0.0, constant_meta=True),
]
write("scores.json", {"cases": score_cases})


# --- the churn gate: calculate_max_churn_and_turnover, calculate_mean_neutral_churn -----------
# Eras share one list; a case names its current era and previous eras by position. A universe is
# the sample weights' tickers; neutralizer columns are parallel to it (null rows: absent).
def gate_era(start, n_univ, live, base, noise, neutral_missing=0.0, values=None):
    universe = ids_of(n_univ, start=start)
    rng.shuffle(universe)
    cols = drop_rows([np.round(rng.normal(size=n_univ) / np.sqrt(n_univ), 3) for _ in range(2)], neutral_missing)
    sw = np.round(rng.uniform(0.5, 1.5, size=n_univ) / n_univ, 5)
    sub = universe[:live] + ids_of(2, start=900)  # two tickers outside the universe
    if values is None:
        raw = np.array([base[int(t[1:])] for t in sub]) + noise * rng.normal(size=len(sub))
        values = np.round((raw - raw.min() + 0.05) / (raw.max() - raw.min() + 0.1), 3)
    return {"ids": sub, "signal": list(values), "universe": universe, "sample_weights": list(sw), "neutralizers": cols}


def gate_objects(era):
    sub = pd.Series(era["signal"], index=pd.Index(era["ids"], name="numerai_ticker"), name="signal")
    sw = pd.Series(era["sample_weights"], index=pd.Index(era["universe"], name="numerai_ticker"), name="weight")
    return sub, frame(era["universe"], era["neutralizers"]), sw


gate_base = rng.normal(size=1000)
gate_eras = [gate_era(0, 106, 102, gate_base, 0.3)]
gate_eras += [gate_era(k, 106, 102, gate_base, 0.3 + 0.2 * k, neutral_missing=0.04 * (k == 2)) for k in (1, 2, 3, 4)]
gate_eras.append(gate_era(40, 106, 102, gate_base, 0.3))  # 5: universe moved on, too little overlap
shuffled = list(rng.permutation(gate_eras[0]["signal"]))
gate_eras.append(gate_era(0, 106, 102, gate_base, 0.3, values=shuffled))  # 6: a shuffled copy of era 0
gate_eras[6]["ids"] = gate_eras[0]["ids"]
gate_eras.append(gate_era(0, 106, 60, gate_base, 0.3))  # 7: too few tickers: refused
gate_eras.append(gate_era(1, 106, 102, gate_base, 0.3, neutral_missing=0.3))  # 8: neutralizers miss 30 %
gate_cases = []
for name, current, previous in [
    ("five_weeks", 0, [1, 2, 3, 4, 5]),
    ("shuffled_copy", 0, [1, 6]),
    ("nothing_comparable", 0, [5]),
    ("no_previous", 0, []),
    ("refused_previous", 0, [1, 7]),
    ("refused_current", 7, [1]),
    ("neutralizers_miss_too_many", 0, [8]),
]:
    cur = gate_objects(gate_eras[current])
    prev = {str(k): gate_objects(gate_eras[k]) for k in previous}
    args = (*cur, {k: v[0] for k, v in prev.items()}, {k: v[1] for k, v in prev.items()}, {k: v[2] for k, v in prev.items()})
    ct, e1 = attempt(lambda: signals.calculate_max_churn_and_turnover(*args))
    mnc, e2 = attempt(lambda: signals.calculate_mean_neutral_churn(*args))
    gate_cases.append(
        {
            "name": name,
            "current": current,
            "previous": previous,
            "max_churn": jf(ct[0]) if ct else None,
            "max_turnover": jf(ct[1]) if ct else None,
            "max_error": e1,
            "mean_neutral_churn": jf(mnc),
            "mean_error": e2,
        }
    )
for era in gate_eras:
    era["signal"] = jl(era["signal"])
    era["neutralizers"] = [jl(c) for c in era["neutralizers"]]
write("gate.json", {"eras": gate_eras, "cases": gate_cases})
for c in gate_cases:
    print(c)

total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files to {OUT} ({total / 1024:.0f} KiB)")
for c in score_cases:
    print(c["name"], {k: (v if not isinstance(v, list) else "[..]") for k, v in c["expected"].items()}, c["errors"])
for c in churn_cases + turnover_cases + nc_cases:
    print(c["name"], c["expected"], c["error"], [(x["top_bottom"], x["expected"], x["error"]) for x in c.get("top_bottom", [])])
