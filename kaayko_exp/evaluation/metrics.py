"""Metrics against the true label, per-lake tables, baselines and permutation importance."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kaayko_exp.data.label import paddle_score_rule, round_to_half, skill_level

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
    """One row per lake: ``{"lake", **metrics}``, sorted by lake name."""
    lake = np.asarray(lakes, dtype=object).astype(str)
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    codes, names = pd.factorize(lake, sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    rows = []
    for g, name in enumerate(names):  # one iteration per lake
        idx = order[bounds[g]:bounds[g + 1]]
        rows.append({"lake": str(name), **metrics(y[idx], p[idx])})
    return rows


def baselines(test_frame: pd.DataFrame, train_mean: float) -> dict[str, dict[str, float]]:
    """Reference scores on the same rows: the published label rule and the training-set mean."""
    from kaayko_exp.data.schema import TARGET

    y = test_frame[TARGET].to_numpy(dtype=np.float64)
    return {
        "rule": metrics(y, paddle_score_rule(test_frame)),
        "constant_mean": metrics(y, np.full(len(y), float(train_mean))),
    }


def permutation_importance(model: Any, X: np.ndarray, y: Any, names: Sequence[str], *, max_rows: int = 5000,
                           repeats: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """Increase of RMSE when one feature's column is shuffled, on at most ``max_rows`` rows.

    Returns ``{name: {"mean", "std"}}`` over ``repeats`` shuffles (seeded).
    """
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.float64)
    if X.shape[1] != len(names):
        raise ValueError(f"X has {X.shape[1]} columns but {len(names)} names were given")
    if len(y) == 0 or repeats < 1:
        return {name: {"mean": float("nan"), "std": float("nan")} for name in names}
    rng = np.random.default_rng([int(seed), 0x9E])
    rows = np.sort(rng.choice(len(y), size=min(int(max_rows), len(y)), replace=False))
    Xs, ys = np.ascontiguousarray(X[rows]), y[rows]
    base = float(np.sqrt(np.mean((np.asarray(model.predict(Xs), dtype=np.float64) - ys) ** 2)))
    out: dict[str, dict[str, float]] = {}
    work = Xs.copy()
    for j, name in enumerate(names):
        drops = []
        for _ in range(int(repeats)):
            work[:, j] = Xs[rng.permutation(len(ys)), j]
            rmse = float(np.sqrt(np.mean((np.asarray(model.predict(work), dtype=np.float64) - ys) ** 2)))
            drops.append(rmse - base)
        work[:, j] = Xs[:, j]
        out[name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return out


def objective_value(results: dict[str, Any], name: str) -> float:
    """``<set>_<metric>`` (e.g. ``test_rmse``, ``cv_rmse``, ``val_mae``) from evaluation results."""
    where, _, metric = name.partition("_")
    block = results.get("cv") if where == "cv" else results.get(where)
    values = (block or {}).get("mean" if where == "cv" else "metrics", {})
    return float(values[metric])
