"""Compares two signalkit encode stores text by text: max |dp|, max |dcls|, min and mean CLS cosine.

  python gpu_compare.py STORE_A STORE_B    # texts in both are compared; B may hold more
"""
import glob
import sys

import numpy as np
import pyarrow.parquet as pq


def load(store, keep=None):
    """{text: (probabilities, cls)} of a store's rows, only those whose text is in `keep` if given."""
    rows = {}
    for f in sorted(glob.glob(f"{store}/*/shard-*.parquet")):
        t = pq.read_table(f)
        texts = t.column("text").to_pylist()
        idx = [i for i, text in enumerate(texts) if keep is None or text in keep]
        probs = [c for c in t.column_names if c.startswith("p_")]
        p = np.stack([t.column(c).to_numpy() for c in probs], 1)[idx] if probs else np.zeros((len(idx), 0))
        for i, pi, ci in zip(idx, p, t.column("cls").take(idx).to_pylist()):
            rows[texts[i]] = (pi, np.asarray(ci, dtype=np.float64))
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = load(sys.argv[1]), load(sys.argv[2])
    common = [t for t in a if t in b]
    if not common:
        sys.exit(f"no text in both {sys.argv[1]} and {sys.argv[2]}")
    dp = max((float(np.abs(a[t][0] - b[t][0]).max()) if a[t][0].size else 0.0) for t in common)
    dc = max(float(np.abs(a[t][1] - b[t][1]).max()) for t in common)
    cos = np.array([a[t][1] @ b[t][1] / (np.linalg.norm(a[t][1]) * np.linalg.norm(b[t][1])) for t in common])
    print(f"{len(common)} headlines: max |dp| {dp:.2e}, max |dcls| {dc:.2e}, CLS cosine min {cos.min():.6f} mean {cos.mean():.6f}")


if __name__ == "__main__":
    main()
