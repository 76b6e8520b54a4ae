"""Metrics against the true label, per-lake tables, baselines and permutation importance."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kaayko_exp.data.label import paddle_score_rule, round_to_half, skill_level
from kaayko_exp.data.schema import lake_codes

logger = logging.getLogger(__name__)

METRIC_NAMES = ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy", "n")


def metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE, R², class accuracy, within_half, skill accuracy and n. Empty input gives NaN metrics, n = 0.

    ``class_accuracy``: the prediction rounded to the 0.5 grid and clipped to 1–5 equals the label.
    ``within_half``: the raw (unrounded) prediction is within 0.5 of the label, |y_pred − y| ≤ 0.5.
    ``skill_accuracy``: the rounded prediction falls in the label's skill level.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values, y_pred {p.size}")
    n = int(y.size)
    if n == 0:
        return {name: (0 if name == "n" else float("nan")) for name in METRIC_NAMES}
    err = p - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    cls = round_to_half(p)
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(ss_res / n)),
        "r2": float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan"),
        "class_accuracy": float(np.mean(cls == y)),
        "within_half": float(np.mean(np.abs(err) <= 0.5)),
        "skill_accuracy": float(np.mean(skill_level(cls) == skill_level(y))),
        "n": n,
    }


def per_lake(lakes: Any, y_true: Any, y_pred: Any) -> list[dict[str, Any]]:
    """One row per lake: ``{"lake", **metrics}``, sorted by lake name.

    Vectorised: every metric is a per-lake sum (``np.bincount`` with weights), so the cost is a few passes over
    the rows whatever the number of lakes. Same definitions as :func:`metrics`."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values, y_pred {p.size}")
    codes, names = lake_codes(lakes)
    if len(codes) != len(y):
        raise ValueError(f"{len(codes)} lakes for {len(y)} labels")
    k = len(names)
    if k == 0:
        return []

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=k)

    n = np.bincount(codes, minlength=k).astype(np.float64)
    err = p - y
    abs_err = np.abs(err)
    cls = round_to_half(p)
    sse = total(err * err)
    mean_y = total(y) / n
    centred = y - mean_y[codes]
    sst = total(centred * centred)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.nan)
    table = {
        "mae": total(abs_err) / n,
        "rmse": np.sqrt(sse / n),
        "r2": r2,
        "class_accuracy": total((cls == y).astype(np.float64)) / n,
        "within_half": total((abs_err <= 0.5).astype(np.float64)) / n,
        "skill_accuracy": total((skill_level(cls) == skill_level(y)).astype(np.float64)) / n,
    }
    return [{"lake": name, **{m: float(table[m][g]) for m in METRIC_NAMES if m != "n"}, "n": int(n[g])}
            for g, name in enumerate(names)]


def baselines(test_frame: pd.DataFrame, train_mean: float) -> dict[str, dict[str, float]]:
    """Reference scores on the same rows: the published label rule and the training-set mean."""
    from kaayko_exp.data.schema import TARGET

    y = test_frame[TARGET].to_numpy(dtype=np.float64)
    return {
        "rule": metrics(y, paddle_score_rule(test_frame)),
        "constant_mean": metrics(y, np.full(len(y), float(train_mean))),
    }


#: Rows predicted in one call while scoring permuted copies (bounds the stacked matrix: ~14 MB at 35 float32).
PERMUTATION_BATCH_ROWS = 100_000


def permutation_rows(n_rows: int, max_rows: int) -> int:
    """How many rows permutation importance scores: all ``n_rows`` up to ``max_rows``."""
    return int(min(max(int(max_rows), 0), int(n_rows)))


def permutation_importance(model: Any, X: np.ndarray, y: Any, names: Sequence[str], *, max_rows: int = 1000,
                           repeats: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """Increase of RMSE when one feature's column is shuffled, on a seeded sample of at most ``max_rows`` rows
    (:func:`permutation_rows`).

    Returns ``{name: {"mean", "std"}}`` over ``repeats`` shuffles (seeded). Only the rows a shuffle changes are
    predicted again (a row whose shuffled value equals its own, as with binary and categorical features, keeps
    its unshuffled prediction: about a fifth of the rows of the standard features); those rows of all
    (feature, repeat) shuffles are stacked and predicted in batches of up to :data:`PERMUTATION_BATCH_ROWS`
    rows, so a model is called a few times, not once per feature and repeat.
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.float64)
    if X.shape[1] != len(names):
        raise ValueError(f"X has {X.shape[1]} columns but {len(names)} names were given")
    m = permutation_rows(len(y), max_rows)
    if m == 0 or repeats < 1:
        return {name: {"mean": float("nan"), "std": float("nan")} for name in names}
    rng = np.random.default_rng([int(seed), 0x9E])
    rows = np.sort(rng.choice(len(y), size=m, replace=False))
    Xs, ys = np.ascontiguousarray(X[rows]), y[rows]
    base_pred = np.asarray(model.predict(Xs), dtype=np.float64)
    base = float(np.sqrt(np.mean((base_pred - ys) ** 2)))
    # (feature, repeat) jobs in the order the shuffles are drawn, so a seed gives the same shuffles as before;
    # each job keeps the rows its shuffle changes (NaN to NaN is no change) and their shuffled values
    jobs = []
    for j in range(len(names)):
        for _ in range(int(repeats)):
            perm = rng.permutation(m)
            old, new = Xs[:, j], Xs[perm, j]
            changed = np.flatnonzero(~((new == old) | (np.isnan(new) & np.isnan(old))) if new.dtype.kind == "f"
                                     else new != old)
            jobs.append((j, changed, new[changed]))
    drops = np.empty(len(jobs), dtype=np.float64)
    start = 0
    while start < len(jobs):  # batches of whole jobs, up to PERMUTATION_BATCH_ROWS changed rows (at least one job)
        stop, size = start + 1, len(jobs[start][1])
        while stop < len(jobs) and size + len(jobs[stop][1]) <= PERMUTATION_BATCH_ROWS:
            size += len(jobs[stop][1])
            stop += 1
        stacked = np.concatenate([Xs[changed] for _, changed, _ in jobs[start:stop]]) if size else Xs[:0]
        at = 0
        for j, changed, values in jobs[start:stop]:
            stacked[at:at + len(changed), j] = values
            at += len(changed)
        pred = np.asarray(model.predict(stacked), dtype=np.float64) if size else np.zeros(0)
        at = 0
        for k, (_, changed, _) in enumerate(jobs[start:stop], start):
            full = base_pred.copy()
            full[changed] = pred[at:at + len(changed)]
            at += len(changed)
            drops[k] = np.sqrt(np.mean((full - ys) ** 2)) - base
        start = stop
    drops = drops.reshape(len(names), int(repeats))
    return {name: {"mean": float(np.mean(drops[j])), "std": float(np.std(drops[j]))} for j, name in enumerate(names)}


def objective_value(results: dict[str, Any], name: str) -> float:
    """``<set>_<metric>`` (e.g. ``test_rmse``, ``cv_rmse``, ``val_mae``) from evaluation results."""
    where, _, metric = name.partition("_")
    block = results.get("cv") if where == "cv" else results.get(where)
    values = (block or {}).get("mean" if where == "cv" else "metrics", {})
    return float(values[metric])
