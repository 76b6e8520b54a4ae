"""Metrics against the true label, per-lake tables, baselines, permutation importance."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_frame

from kaayko_exp.evaluation.metrics import (
    baselines,
    metrics,
    per_lake,
    permutation_importance,
)


def test_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.5])
    p = np.array([1.2, 2.9, 3.0, 3.4])  # rounded: 1.0, 3.0, 3.0, 3.5
    m = metrics(y, p)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx((0.2 + 0.9 + 0 + 1.1) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((0.04 + 0.81 + 0 + 1.21) / 4))
    assert m["r2"] == pytest.approx(1 - 2.06 / np.sum((y - y.mean()) ** 2))
    assert m["class_accuracy"] == pytest.approx(2 / 4)
    assert m["within_half"] == pytest.approx(2 / 4)  # 1.0 ok, 3.0 vs 2.0 no, 3.0 ok, 3.5 vs 4.5 no
    # skill: Expert/Expert, Advanced vs Expert, Advanced/Advanced, Intermediate vs Beginner
    assert m["skill_accuracy"] == pytest.approx(2 / 4)


def test_metrics_clip_and_perfect():
    y = np.array([1.0, 5.0])
    m = metrics(y, np.array([-3.0, 9.0]))
    assert m["class_accuracy"] == 1.0 and m["rmse"] > 3
    assert metrics(y, y)["r2"] == 1.0
    assert metrics([], [])["n"] == 0


def test_per_lake_table():
    lakes = np.array(["b", "a", "b", "a", "c"])
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = np.array([1.0, 2.5, 3.0, 4.0, 4.0])
    rows = per_lake(lakes, y, p)
    assert [r["lake"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["n"] == 2 and rows[0]["mae"] == pytest.approx(0.25)
    assert rows[1]["rmse"] == 0.0 and rows[2]["mae"] == 1.0


def test_baselines_rule_is_exact_on_noise_free_labels():
    frame = make_frame(500, seed=4)
    b = baselines(frame, train_mean=3.0)
    assert b["rule"]["class_accuracy"] == 1.0 and b["rule"]["rmse"] == 0.0
    assert b["constant_mean"]["rmse"] == pytest.approx(np.sqrt(np.mean((frame["paddle_score"] - 3.0) ** 2)))


class _Linear:
    def __init__(self, w):
        self.w = np.asarray(w)
        self.calls = 0

    def predict(self, X):
        self.calls += 1
        return X @ self.w


def test_permutation_importance_ranks_the_used_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3)).astype(np.float32)
    model = _Linear([2.0, 0.0, 0.3])
    y = model.predict(X)
    imp = permutation_importance(model, X, y, ["a", "b", "c"], max_rows=500, repeats=3, seed=1)
    assert imp["a"]["mean"] > imp["c"]["mean"] > 0
    assert imp["b"]["mean"] == 0.0 and imp["b"]["std"] == 0.0
    assert model.calls == 2 + 3 * 3  # one baseline (+ the call above) and repeats per feature
    again = permutation_importance(model, X, y, ["a", "b", "c"], max_rows=500, repeats=3, seed=1)
    assert again == imp
