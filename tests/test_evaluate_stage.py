"""The evaluate stage's bounded cost: what it samples is stated, the test set is scored in full, and the
predictions file is written in chunks that line up with the held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kaayko_exp.evaluation.metrics import metrics
from runhelpers import manifest, report, train_in_process


def test_sampled_parts_are_stated_and_the_test_set_is_whole(tmp_path, monkeypatch):
    import kaayko_exp.training.evaluate_stage as stage

    monkeypatch.setattr(stage, "PREDICTION_CHUNK_ROWS", 100)  # several row groups even at sample_size=tiny
    _, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=10",
                                             "evaluation.in_sample_max_rows=300",
                                             "evaluation.permutation_max_rows=200", "evaluation.permutation_repeats=2"])
    sizes = manifest(run_dir)["stages"]["split"]["detail"]["sizes"]
    assert sizes["train"] > 300 and sizes["test"] > 200
    rep = report(run_dir)
    assert rep["train_in_sample"]["n"] == rep["train_in_sample"]["metrics"]["n"] == 300
    assert rep["train_in_sample"]["rows"] == sizes["train"] and rep["train_in_sample"]["sampled"] is True
    assert rep["sampling"]["train_in_sample"] == {"rows": 300, "of": sizes["train"]}
    assert rep["sampling"]["permutation_importance"]["rows"] == 200
    assert rep["sampling"]["permutation_importance"]["of"] == sizes["test"]
    assert rep["importance"]["permutation_rows"] == 200 and rep["importance"]["permutation_repeats"] == 2
    assert rep["metrics"]["n"] == rep["test"]["n"] == rep["test_set"]["n"] == sizes["test"]  # never sampled
    assert sum(row["n"] for row in rep["test"]["per_lake"]) == sizes["test"]
    md = (run_dir / "report.md").read_text()
    assert f"300 of {sizes['train']:,} training rows (seeded sample)" in md

    path = run_dir / "predictions" / "test.parquet"
    assert pq.ParquetFile(path).num_row_groups == -(-sizes["test"] // 100)
    held = pd.read_parquet(path)
    assert len(held) == sizes["test"]
    assert {"lake", "paddle_score", "wind_kph", "prediction"} <= set(held.columns)
    assert held["lake"].nunique() == rep["test_set"]["lakes"]
    again = metrics(held["paddle_score"].to_numpy(np.float64), held["prediction"].to_numpy(np.float64))
    assert again["n"] == sizes["test"] and again["rmse"] == pytest.approx(rep["metrics"]["rmse"], rel=1e-12)
    # each row's prediction belongs to that row's inputs, across chunk boundaries
    from kaayko_exp.features.spec import FeatureSpec, transform
    from kaayko_exp.models import load_model

    model = load_model(run_dir / "model")
    spec = FeatureSpec.load(run_dir / "model" / "feature_spec.json")
    np.testing.assert_allclose(model.predict(transform(spec, held)), held["prediction"].to_numpy(), rtol=1e-6)


def test_in_sample_max_rows_null_scores_every_training_row(tmp_path):
    _, run_dir = train_in_process(tmp_path, ["model=rule", "evaluation.in_sample_max_rows=null"])
    rep = report(run_dir)
    train_rows = manifest(run_dir)["stages"]["split"]["detail"]["sizes"]["train"]
    assert rep["train_in_sample"]["n"] == rep["train_in_sample"]["rows"] == train_rows
    assert rep["train_in_sample"]["sampled"] is False
    assert rep["sampling"]["train_in_sample"] == {"rows": train_rows, "of": train_rows}


def test_validation_and_in_sample_scores_reuse_the_fits_predictions_and_equal_fresh_ones(tmp_path, monkeypatch):
    # XGBoost's prediction cache holds the final model's predictions of the rows it was fit on and validated on:
    # the evaluate stage scores those from it (predicting only the test rows) and gets what predicting gives
    import kaayko_exp.training.evaluate_stage as stage
    from kaayko_exp.models import load_model
    from kaayko_exp.models.xgboost_model import XGBoostModel

    seen, calls, evaluate_run = {}, [], stage.evaluate_run

    def spy_evaluate(ctx):
        seen["ctx"] = ctx
        seen["evaluating"] = True
        try:
            return evaluate_run(ctx)
        finally:
            seen["evaluating"] = False

    predict = XGBoostModel.predict

    def spy_predict(self, X):
        if seen.get("evaluating"):
            calls.append(len(X))
        return predict(self, X)

    monkeypatch.setattr(stage, "evaluate_run", spy_evaluate)
    monkeypatch.setattr(XGBoostModel, "predict", spy_predict)
    _, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=15",
                                             "evaluation.in_sample_max_rows=null",
                                             "evaluation.permutation_max_rows=0"])
    ctx, sizes = seen["ctx"], manifest(run_dir)["stages"]["split"]["detail"]["sizes"]
    assert sizes["val"] > 0 and calls == [sizes["test"]]  # the test rows only: no validation or training rows
    fresh = load_model(run_dir / "model")  # a loaded model has no fit predictions: it predicts
    assert fresh.fit_predictions == {}
    rep = report(run_dir)
    val, train = ctx.parts["val"], ctx.parts["train"]
    assert rep["val"]["metrics"] == metrics(ctx.y[val], predict(fresh, ctx.X[val]))
    assert rep["train_in_sample"]["metrics"] == metrics(ctx.y[train], predict(fresh, ctx.X[train]))
    assert rep["train_in_sample"]["n"] == sizes["train"]
