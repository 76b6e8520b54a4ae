"""How often the comparison's 95 % intervals and "significant" flags fire between equally good runs.

Usage: python bench/bench_compare_intervals.py [MATRICES]   (default 100; about 30 s of CPU)

Simulates win-rate matrices of 10 equally good runs on 20 held-out lakes (the size of the default test
set) under three kinds of per-lake error: a lake difficulty shared by all runs times log-normal run
noise, plus normal noise, plus Student-t(3) noise. Prints, per setting, the share of pairs whose 95 %
interval excludes 0 (nominal 5 %) for the intervals the comparison shows (Hodges–Lehmann signed-rank;
the mean's Student-t interval, the default, and its BCa bootstrap, ``--interval bca``, both through
``mean_interval`` as the tool computes them) and for the percentile bootstrap it does not offer, and the
share of matrices with at least one "significant" pair: raw, Holm and Benjamini–Hochberg (nominal 5 %).
The t and BCa columns are the measurement behind ``--interval``'s default (``INTERVAL_MEASURED``).
"""

from __future__ import annotations

import sys

import numpy as np

from kaayko_exp.compare.stats import (bootstrap_interval, hodges_lehmann, mean_interval, pair_differences,
                                      significant_pairs)

LAKES, RUNS = 20, 10


def lake_mae(rng: np.random.Generator, kind: str) -> np.ndarray:
    lake = rng.gamma(2.0, 0.02, size=(LAKES, 1))
    if kind == "lognormal x lake":
        return lake * np.exp(rng.normal(0.0, 0.15, size=(LAKES, RUNS)))
    if kind == "normal + lake":
        return lake + rng.normal(0.0, 0.005, size=(LAKES, RUNS))
    return lake + 0.005 * rng.standard_t(3, size=(LAKES, RUNS))


def main(matrices: int) -> None:
    print(f"{matrices} matrices of {RUNS} equal runs on {LAKES} lakes; share excluding 0 / with a significant pair")
    print(f"{'setting':<18} {'HL':>6} {'t':>6} {'BCa':>6} {'perc':>6} | {'raw':>6} {'Holm':>6} {'BH':>6}")
    for kind in ("lognormal x lake", "normal + lake", "t3 + lake"):
        rng = np.random.default_rng(0)
        out = dict.fromkeys(("HL", "t", "BCa", "percentile", "raw", "holm", "bh"), 0)
        pairs = 0
        for _ in range(matrices):
            mae = lake_mae(rng, kind)
            _, _, d = pair_differences(mae)
            pairs += len(d)
            for name, (low, high) in (("HL", hodges_lehmann(d)[1:]), ("t", mean_interval(d, method="t")),
                                      ("BCa", mean_interval(d, method="bca")),
                                      ("percentile", bootstrap_interval(d, kind="percentile"))):
                out[name] += int(np.sum((low > 0) | (high < 0)))
            raw, _, holm = significant_pairs(mae, adjust="holm")
            out["raw"] += bool(np.any(raw < 0.05))
            out["holm"] += bool(np.any(holm))
            out["bh"] += bool(np.any(significant_pairs(mae, adjust="bh")[2]))
        shares = [out[k] / pairs for k in ("HL", "t", "BCa", "percentile")]
        shares += [out[k] / matrices for k in ("raw", "holm", "bh")]
        print(f"{kind:<18} " + " ".join(f"{s:6.1%}" for s in shares[:4]) + " | "
              + " ".join(f"{s:6.1%}" for s in shares[4:]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
