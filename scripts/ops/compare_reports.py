"""Side by side: two `signalkit evaluate` report.json files scored on the same eras.

  python compare_reports.py NAME_A REPORT_A NAME_B REPORT_B

Prints mean, std, sharpe and share of positive eras of numerai_corr for each, over all scored
eras and over the eras where A's predictions are not constant (eras with news), and the paired
per-era difference B - A with its standard error (mean / (std / sqrt(n))).
"""
import json
import math
import sys


def stats(xs, ddof=0):
    """Mean, std (population, as signalkit's report), sharpe, share of positive values."""
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - ddof)) if n > ddof else float("nan")
    return m, sd, m / sd if sd > 0 else float("nan"), sum(x > 0 for x in xs) / n


def main(na, pa, nb, pb):
    a, b = json.load(open(pa)), json.load(open(pb))
    ea = {e["era"]: e["corr"] for e in a["per_era"]}
    eb = {e["era"]: e["corr"] for e in b["per_era"]}
    if sorted(ea) != sorted(eb):
        sys.exit(f"different eras scored: {len(ea)} vs {len(eb)}")
    news = sorted(e for e in ea if ea[e] != 0.0 or eb[e] != 0.0)
    print("| numerai_corr, out of sample | eras | mean | std | sharpe | positive eras |")
    print("|---|---|---|---|---|---|")
    for label, eras in [("all scored eras", sorted(ea)), ("eras with news", news)]:
        for name, per in [(na, ea), (nb, eb)]:
            m, sd, sh, pos = stats([per[e] for e in eras])
            print(f"| {name}, {label} | {len(eras)} | {m:.4f} | {sd:.4f} | {sh:.2f} | {pos:.0%} |")
    d = [eb[e] - ea[e] for e in news]
    m, sd, _, pos = stats(d, ddof=1)
    se = sd / math.sqrt(len(d))
    t = m / se if se > 0 else float("nan")
    print(f"\npaired difference {nb} - {na} over {len(d)} eras with news: mean {m:+.4f}, std {sd:.4f}, "
          f"standard error {se:.4f} (t = {t:+.2f}), {nb} better in {pos:.0%} of them")


if __name__ == "__main__":
    main(*sys.argv[1:5])
