"""Models usable at scale (issue 11, part 4): per-tree row caps, and exact kernel SVR refused before any work.

How long each family takes at sample_size=large is measured by bench/bench_models.py, never here.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_frame
from omegaconf import OmegaConf

from kaayko_exp.features.spec import build_spec, transform
from kaayko_exp.models import build_model, member_config
from runhelpers import FAST, cli


@pytest.fixture(scope="module")
def data():
    frame = make_frame(1500, seed=5)
    spec = build_spec(OmegaConf.load("conf/features/standard.yaml"), frame)
    return spec, transform(spec, frame), frame["paddle_score"].to_numpy(np.float64)


@pytest.mark.parametrize("family", ["random_forest", "extra_trees"])
def test_a_row_cap_above_the_training_rows_grows_trees_on_all_rows(data, family):
    spec, X, y = data

    def fitted(max_samples):
        cfg = member_config(family)
        cfg.params = {**cfg.params, "n_estimators": 5, "bootstrap": True, "max_samples": max_samples}
        model = build_model(cfg, seed=7, n_jobs=1, n_rows=len(y))
        model.fit(X, y, spec=spec)
        return model

    capped = fitted(10 * len(y))  # sklearn itself refuses max_samples > rows
    assert capped.estimator.max_samples is None
    np.testing.assert_array_equal(capped.predict(X), fitted(None).predict(X))
    small = fitted(200)  # a cap below the rows is kept: each tree sees 200 bootstrap rows
    assert small.estimator.max_samples == 200
    assert max(t.tree_.n_node_samples[0] for t in small.estimator.estimators_) <= 200


def test_the_default_random_forest_grows_every_tree_on_every_row(data):
    """Issue 19: noise-free labels, so no bootstrap: the rare coverage rows reach every tree (a 50,000-row
    bootstrap at large held about a twelfth of them per tree)."""
    spec, X, y = data
    cfg = member_config("random_forest")
    cfg.params = {**cfg.params, "n_estimators": 3}
    model = build_model(cfg, seed=1, n_jobs=1, n_rows=len(y))
    model.fit(X, y, spec=spec)
    assert [t.tree_.n_node_samples[0] for t in model.estimator.estimators_] == [len(y)] * 3
    assert np.abs(model.predict(X) - y).max() == 0.0  # single-row leaves: a noise-free training row is reproduced


@pytest.mark.parametrize("family", ["extra_trees"])
def test_the_default_forests_cap_rows_per_tree_at_large(data, family):
    spec, X, y = data
    cfg = member_config(family)
    rows = 350_000  # training rows of sample_size=large (lakes split)
    cap = cfg.params.get("max_samples")
    assert cfg.params.get("bootstrap") and isinstance(cap, int) and cap < rows / 4
    cfg.params = {**cfg.params, "n_estimators": 3}
    model = build_model(cfg, seed=1, n_jobs=1, n_rows=len(y))
    model.fit(X, y, spec=spec)  # the same defaults still fit a table smaller than the cap
    assert np.sqrt(np.mean((model.predict(X) - y) ** 2)) < np.std(y)


def test_exact_kernel_svr_at_large_is_refused_before_any_data_work(tmp_path):
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    out = cli("train.py", [*FAST, "model=svm", "model.exact=true", "sample_size=large", f"cache_dir={cache}",
                           f"hydra.run.dir={run_dir}"])
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "exact kernel SVR" in out.stderr and "model.exact_hard_limit=100,000" in out.stderr
    assert "Drop model.exact" in out.stderr  # the fix
    assert "Traceback" not in out.stderr
    assert not list(cache.rglob("*.parquet"))  # no dataset was generated or read into the cache
    assert not (run_dir / "report.json").exists()


def test_the_svm_approximation_fits_on_at_most_approx_max_rows(data):
    spec, X, y = data
    cfg = member_config("svm")
    cfg.exact_max_rows, cfg.approx_components, cfg.approx_max_rows = 100, 50, 400
    model = build_model(cfg, seed=3, n_jobs=1, n_rows=len(y))
    model.fit(X, y, spec=spec)
    assert model.info["mode"] == "approx" and model.info["approx_rows"] == 400
    assert model.estimator.named_steps["kernel_map"].n_features_in_ > 0
    pred = model.predict(X)  # predicts every row, not only the sample
    assert pred.shape == y.shape
    assert np.sqrt(np.mean((pred - y) ** 2)) < np.std(y)
    again = build_model(cfg, seed=3, n_jobs=1, n_rows=len(y))
    again.fit(X, y, spec=spec)
    np.testing.assert_array_equal(again.predict(X), pred)  # the sample is drawn from the seed


def test_approx_max_rows_below_one_is_a_config_error():
    from kaayko_exp.errors import ConfigError
    from kaayko_exp.models import validate_model_config

    cfg = member_config("svm")
    cfg.approx_max_rows = 0
    with pytest.raises(ConfigError, match="approx_max_rows=0"):
        validate_model_config(cfg, 500_000)


def test_svm_predicts_in_row_blocks_like_all_at_once(data, monkeypatch):
    from kaayko_exp.models import kernel

    spec, X, y = data
    cfg = member_config("svm")
    cfg.exact_max_rows, cfg.approx_components = 100, 50
    model = build_model(cfg, seed=3, n_jobs=1, n_rows=len(y))
    model.fit(X, y, spec=spec)
    whole = model.predict(X)
    monkeypatch.setattr(kernel, "PREDICT_BLOCK", 64)  # 1,500 rows -> 24 blocks, the last one partial
    np.testing.assert_allclose(model.predict(X), whole, rtol=0, atol=1e-12)
