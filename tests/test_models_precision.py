"""Issue 19, goal 3: model defaults precise on the label rule's step function (exact cuts, no sampling noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from kaayko_exp.data.label import paddle_score_rule
from kaayko_exp.errors import ConfigError
from kaayko_exp.features.spec import build_spec, transform
from kaayko_exp.models import build_model, load_model, member_config, validate_model_config


def _temperature_sweep() -> tuple[pd.DataFrame, np.ndarray]:
    """Every 0.1 °C from -30 to 45 (751 values, three times over: more than histgb's 255 bins), the other rule
    inputs fixed: the label is the rule's temperature step function (cuts at 8, 12, 15, 18, 20, 25, ... °C)."""
    temp = np.tile(np.round(np.arange(-300, 451) / 10.0, 1), 3)
    n = len(temp)
    frame = pd.DataFrame({"temp_c": temp, "wind_kph": np.full(n, 10.0), "precip_mm": np.zeros(n),
                          "uv": np.full(n, 3.0), "cloud": np.full(n, 50), "season": ["spring"] * n,
                          "climate_zone": ["temperate"] * n})
    return frame, paddle_score_rule(frame)


def _fit_histgb(frame, y, **params):
    spec = build_spec(OmegaConf.load("conf/features/rule.yaml"), frame)
    cfg = member_config("histgb")
    # one deep-enough tree per step, full steps: the fit is exact wherever the cuts can be split on
    cfg.params = {**cfg.params, "max_iter": 3, "learning_rate": 1.0, "min_samples_leaf": 1, **params}
    model = build_model(cfg, seed=0, n_jobs=1, n_rows=len(y))
    return spec, model.fit(transform(spec, frame), y, spec=spec)


def test_the_default_histgb_splits_the_rules_temperature_cuts_exactly(tmp_path):
    frame, y = _temperature_sweep()
    spec, model = _fit_histgb(frame, y)
    X = transform(spec, frame)
    np.testing.assert_allclose(model.predict(X), y, rtol=0, atol=1e-9)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X), model.predict(X))  # windows saved
    # sklearn's quantile bins (about 0.3 °C wide here) straddle some of the cuts: mixed leaves
    _, plain = _fit_histgb(frame, y, fine_bins=False)
    assert np.abs(plain.predict(X) - y).max() > 0.1


def test_fine_bins_refuses_per_column_constraints():
    cfg = member_config("histgb")
    cfg.params = {**cfg.params, "fine_bins": True, "monotonic_cst": [0, 0, 0, -1, -1, 0, 0]}
    with pytest.raises(ConfigError, match="fine_bins"):
        validate_model_config(cfg, 1000)
    cfg.params = {**cfg.params, "fine_bins": "yes", "monotonic_cst": None}
    with pytest.raises(ConfigError, match="true or false"):
        validate_model_config(cfg, 1000)


def test_the_default_xgboost_samples_neither_rows_nor_features():
    """Noise-free labels: row and feature sampling only add noise, so the default fit does not depend on the seed."""
    from conftest import make_frame

    frame = make_frame(800, seed=2)
    spec = build_spec(OmegaConf.load("conf/features/rule.yaml"), frame)
    X, y = transform(spec, frame), frame["paddle_score"].to_numpy(np.float64)
    cfg = member_config("xgboost")
    cfg.params = {**cfg.params, "n_estimators": 20}

    def predictions(seed):
        return build_model(cfg, seed=seed, n_jobs=1, n_rows=len(y)).fit(X, y, spec=spec).predict(X)

    np.testing.assert_array_equal(predictions(1), predictions(2))


def test_the_default_xgboost_splits_the_rules_temperature_cuts_exactly():
    """Every 0.025 °C from -30 to 45 (3,001 values): xgboost's quantile bins must not straddle the rule's cuts
    (1,024 bins are ~0.075 °C wide here and mix the rows either side of 8, 12, 15, ... °C in one bin)."""
    temp = np.tile(np.round(np.arange(-1200, 1801) / 40.0, 3), 2)
    n = len(temp)
    frame = pd.DataFrame({"temp_c": temp, "wind_kph": np.full(n, 10.0), "precip_mm": np.zeros(n),
                          "uv": np.full(n, 3.0), "cloud": np.full(n, 50), "season": ["spring"] * n,
                          "climate_zone": ["temperate"] * n})
    y = paddle_score_rule(frame)
    spec = build_spec(OmegaConf.load("conf/features/rule.yaml"), frame)
    X = transform(spec, frame)
    cfg = member_config("xgboost")
    cfg.params = {**cfg.params, "n_estimators": 5, "learning_rate": 1.0}  # full steps: exact wherever cuts are split
    model = build_model(cfg, seed=0, n_jobs=1, n_rows=len(y)).fit(X, y, spec=spec)
    np.testing.assert_allclose(model.predict(X), y, rtol=0, atol=1e-3)


def test_the_default_random_forest_scores_a_row_as_most_of_its_trees_do(tmp_path):
    """Noise-free labels: where a minority of trees split a sparse region on another input, the forest's score
    is the majority's (median of the trees), not pulled off the rule's 0.5 grid by the minority (the mean)."""
    from conftest import make_frame

    frame = make_frame(3000, seed=3)
    spec = build_spec(OmegaConf.load("conf/features/rule.yaml"), frame)
    X, y = transform(spec, frame), frame["paddle_score"].to_numpy(np.float64)
    cfg = member_config("random_forest")
    cfg.params = {**cfg.params, "n_estimators": 9}
    model = build_model(cfg, seed=0, n_jobs=1, n_rows=2000).fit(X[:2000], y[:2000], spec=spec)
    X_new = X[2000:]
    per_tree = np.stack([tree.predict(np.asarray(X_new, dtype=np.float32)) for tree in model.estimator.estimators_])
    top = np.sort(per_tree, axis=0)[4]  # the 5th of 9 trees' scores: at least 5 trees score at most / least this
    split = (per_tree != per_tree[0]).any(axis=0)
    assert split.sum() > 20  # the trees disagree on unseen rows
    predicted = model.predict(X_new)
    np.testing.assert_array_equal(predicted[split], top[split])
    assert np.isin(predicted * 2, np.arange(2, 11)).all()  # on the rule's 0.5 grid
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(X_new), predicted)  # aggregate saved


def test_forest_aggregate_is_mean_or_median():
    cfg = member_config("random_forest")
    for how in ("mean", "median"):
        cfg.params = {**cfg.params, "aggregate": how}
        validate_model_config(cfg, 1000)
    cfg.params = {**cfg.params, "aggregate": "mode"}
    with pytest.raises(ConfigError, match="aggregate='mode' must be one of mean, median"):
        validate_model_config(cfg, 1000)
