"""Metrics against the true label, per-lake tables, baselines, permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    # mean 2.625; squares 2.640625 + 0.390625 + 0.140625 + 3.515625 = 6.6875
    assert m["r2"] == pytest.approx(1 - 2.06 / 6.6875)
    assert m["class_accuracy"] == pytest.approx(2 / 4)
    assert m["within_half"] == pytest.approx(2 / 4)  # |error| 0.2 yes, 0.9 no, 0 yes, 1.1 no
    # skill: Expert/Expert, Advanced vs Expert, Advanced/Advanced, Intermediate vs Beginner
    assert m["skill_accuracy"] == pytest.approx(2 / 4)


def test_within_half_is_the_raw_error_not_the_rounded_one():
    y = np.array([2.0, 2.0, 3.0, 4.0, 1.0])
    p = np.array([2.6, 2.4, 3.5, 3.45, 1.74])
    # raw |error|:     0.6    0.4   0.5  0.55   0.74  -> within 0.5: no, yes, yes, no, no
    # rounded |error|: 0.5    0.5   0.5  0.5    0.5   -> all five would count if rounded first
    m = metrics(y, p)
    assert m["within_half"] == pytest.approx(2 / 5)
    assert m["class_accuracy"] == 0.0  # no rounded prediction equals its label


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


def test_per_lake_matches_metrics_on_each_lake_for_a_categorical_column():
    rng = np.random.default_rng(5)
    names = np.array(["Lake Zed", "alpha", "Bravo", "lake 10", "lake 9"])
    lakes = pd.Categorical(names[rng.integers(0, 5, size=3000)], categories=[*names, "never used"])
    y = rng.integers(2, 11, size=3000) / 2.0
    p = y + rng.normal(scale=0.4, size=3000)
    p[:40] = y[:40]  # a few exact rows
    rows = per_lake(pd.Series(lakes), y, p)
    assert [r["lake"] for r in rows] == sorted(names.tolist())  # observed lakes only, by name
    for row in rows:
        mask = np.asarray(lakes) == row["lake"]
        expected = metrics(y[mask], p[mask])
        assert row["n"] == expected["n"] == int(mask.sum())
        for key in ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy"):
            assert row[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key


def test_per_lake_one_row_lake_has_no_r2():
    rows = per_lake(["a", "b", "b"], [1.0, 2.0, 3.0], [1.5, 2.0, 3.0])
    assert rows[0]["n"] == 1 and rows[0]["mae"] == 0.5 and np.isnan(rows[0]["r2"])
    assert rows[1]["r2"] == 1.0


# Five rows scored by hand with the published rule (kaayko_exp/data/label.py):
#   3 + temp + wind + rain + monsoon + season + zone + uv + cloud, rounded to 0.5, clipped to 1–5.
HAND_ROWS = pd.DataFrame({
    "temp_c":       [22.0, 10.0, 17.0, 30.0, 26.0],
    "wind_kph":     [10.0, 25.0, 3.0, 18.0, 12.0],
    "precip_mm":    [0.0, 2.0, 0.5, 0.0, 0.0],
    "uv":           [5.0, 9.0, 2.0, 8.0, 4.0],
    "cloud":        [10.0, 90.0, 50.0, 30.0, 50.0],
    "season":       ["summer", "winter", "winter", "monsoon", "summer"],
    "climate_zone": ["temperate", "polar", "tropical", "equatorial", "subtropical"],
})
# 3+1+0.5+0.5+0.2+0.2 = 5.4 -> 5.0 (clip) | 3-1-0.5-0.5-0.5-0.2 = 0.3 -> 1.0 (clip)
# 3+0.3 (tropical winter) = 3.3 -> 3.5     | 3+0.5 (dry)+0.1 (equatorial) = 3.6 -> 3.5
# 3+0.5+0.5+0.5+0.2 = 4.7 -> 4.5
HAND_RULE = [5.0, 1.0, 3.5, 3.5, 4.5]


def test_baselines_by_hand_on_labels_the_rule_did_not_make():
    frame = HAND_ROWS.assign(paddle_score=[5.0, 1.0, 3.0, 3.5, 2.5])  # rows 3 and 5 disagree with the rule
    b = baselines(frame, train_mean=3.0)
    rule = b["rule"]  # errors against the rule's 5.0, 1.0, 3.5, 3.5, 4.5: 0, 0, +0.5, 0, +2.0
    assert rule["n"] == 5
    assert rule["class_accuracy"] == pytest.approx(3 / 5)
    assert rule["mae"] == pytest.approx(2.5 / 5)
    assert rule["rmse"] == pytest.approx(np.sqrt(4.25 / 5))
    assert rule["within_half"] == pytest.approx(4 / 5)
    const = b["constant_mean"]  # errors of 3.0: -2, +2, 0, -0.5, +0.5
    assert const["mae"] == pytest.approx(5.0 / 5)
    assert const["rmse"] == pytest.approx(np.sqrt(8.5 / 5))
    assert const["class_accuracy"] == pytest.approx(1 / 5)
    exact = baselines(HAND_ROWS.assign(paddle_score=HAND_RULE), train_mean=3.0)["rule"]
    assert exact["rmse"] == 0.0 and exact["class_accuracy"] == 1.0


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
    assert model.calls == 1 + 2  # the call above, one baseline, one batch holding the 9 permuted copies
    again = permutation_importance(model, X, y, ["a", "b", "c"], max_rows=500, repeats=3, seed=1)
    assert again == imp


def test_permutation_importance_batches_bound_the_rows_per_call(monkeypatch):
    import kaayko_exp.evaluation.metrics as metrics_module

    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    model = _Linear([1.0, -0.5, 0.2])
    y = model.predict(X)
    whole = permutation_importance(model, X, y, ["a", "b", "c"], max_rows=400, repeats=2, seed=7)
    seen: list[int] = []

    class _Counting(_Linear):
        def predict(self, X):
            seen.append(len(X))
            return super().predict(X)

    monkeypatch.setattr(metrics_module, "PERMUTATION_BATCH_ROWS", 800)  # two permuted copies of 400 rows per call
    small = permutation_importance(_Counting([1.0, -0.5, 0.2]), X, y, ["a", "b", "c"], max_rows=400, repeats=2,
                                   seed=7)
    # baseline, then the 6 shuffles two at a time: each predicts the rows its shuffle moves (a shuffle's fixed
    # points keep their value and their prediction), so a call holds at most two copies of 400 rows
    assert seen[0] == 400 and len(seen) == 4 and all(790 <= n <= 800 for n in seen[1:])
    for name in "abc":
        assert small[name]["mean"] == pytest.approx(whole[name]["mean"], rel=1e-12)
        assert small[name]["std"] == pytest.approx(whole[name]["std"], rel=1e-12, abs=1e-15)


def test_permutation_importance_predicts_only_the_rows_a_shuffle_changes_with_the_same_result():
    """A binary and a constant column: a shuffle leaves many (all) of their rows as they were, so those rows are
    not predicted again; the drops equal those of predicting every row of every shuffled copy."""
    rng = np.random.default_rng(5)
    n, m, repeats, seed = 3000, 600, 3, 11
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), np.full(n, 7.0),
                         np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n))]).astype(np.float32)
    w = np.array([1.0, 0.8, 0.5, 0.0])

    class _Model:
        rows = 0

        def predict(self, A):
            _Model.rows += len(A)
            return np.nan_to_num(A, nan=-1.0) @ w

    y = _Model().predict(X) + rng.normal(scale=0.1, size=n)
    _Model.rows = 0
    imp = permutation_importance(_Model(), X, y, ["x", "bit", "const", "gappy"], max_rows=m, repeats=repeats,
                                 seed=seed)
    # the reference: the same seeded rows and shuffles, every row of every shuffled copy predicted
    r = np.random.default_rng([seed, 0x9E])
    rows = np.sort(r.choice(n, size=m, replace=False))
    Xs, ys = X[rows], y[rows]
    score = lambda A: float(np.sqrt(np.mean((np.nan_to_num(A, nan=-1.0) @ w - ys) ** 2)))  # noqa: E731
    for j, name in enumerate(["x", "bit", "const", "gappy"]):
        drops = []
        for _ in range(repeats):
            A = Xs.copy()
            A[:, j] = Xs[r.permutation(m), j]
            drops.append(score(A) - score(Xs))
        assert imp[name]["mean"] == pytest.approx(np.mean(drops), abs=1e-12)
        assert imp[name]["std"] == pytest.approx(np.std(drops), abs=1e-12)
    assert imp["const"]["mean"] == 0.0
    # the baseline's m rows, ~all rows of the x shuffles, ~half of the bit ones, none of the constant column's,
    # ~91 % of the gappy column's (NaN to NaN, 9 % of the rows, is no change); every row would be 7,800
    assert _Model.rows < m + repeats * m * (1 + 0.6 + 0 + 0.95)


def test_a_part_of_the_matrix_is_read_as_a_view_other_rows_as_a_copy():
    import numpy as np

    from kaayko_exp.training.pipeline import part_rows

    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    block = part_rows(X, np.arange(3, 7))
    assert np.shares_memory(block, X) and np.array_equal(block, X[3:7])
    for idx in (np.array([1, 2, 4]), np.array([5, 4, 3, 2]), np.array([0, 0, 1])):
        rows = part_rows(X, idx)
        assert not np.shares_memory(rows, X) and np.array_equal(rows, X[idx])


def test_the_model_matrix_holds_the_parts_rows_in_part_order_whatever_the_block_size(monkeypatch):
    # the features stage reads the frame in slices and puts each row at its place in part order (train, val,
    # test); rows of no part are left out
    from types import SimpleNamespace

    from conftest import make_frame
    from omegaconf import OmegaConf

    import kaayko_exp.features.spec as spec_module
    from kaayko_exp.features.spec import build_spec, transform
    from kaayko_exp.training.pipeline import _matrix

    frame = make_frame(700, seed=4)
    rng = np.random.default_rng(1)
    rows = rng.permutation(len(frame))
    parts = {"train": np.sort(rows[:400]), "val": rows[400:480], "test": np.sort(rows[480:650])}  # 50 in none
    spec = build_spec(OmegaConf.load("conf/features/standard.yaml"), frame.iloc[parts["train"]])
    expected = transform(spec, frame.iloc[np.concatenate(list(parts.values()))])
    for block in (97, 700, 5000):
        monkeypatch.setattr(spec_module, "CHUNK_ROWS", block)
        ctx = SimpleNamespace(frame=frame, parts=dict(parts), spec=spec)
        _matrix(ctx)
        assert np.array_equal(ctx.X, expected, equal_nan=True)
        assert [len(v) for v in ctx.parts.values()] == [400, 80, 170] and ctx.parts["val"][0] == 400
        assert ctx.lakes.tolist() == frame["lake"].iloc[np.concatenate(list(parts.values()))].tolist()
        assert len(ctx.frame) == 170 and ctx.frame_part == "test"
