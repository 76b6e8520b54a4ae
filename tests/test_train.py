"""`python train.py`: every model × feature set in-process, the real CLI, and user mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runhelpers import FAST, cli, compose_train, manifest, report, train_in_process

from kaayko_exp.data.schema import LABEL_DERIVED
from kaayko_exp.runs.rundir import STAGES

MODELS = ["xgboost", "histgb", "random_forest", "extra_trees", "svm", "ridge", "ensemble", "rule"]
FEATURES = ["raw", "standard", "extended"]
SMALL_MODEL = {
    "xgboost": ["model.params.n_estimators=40"],
    "random_forest": ["model.params.n_estimators=20"],
    "extra_trees": ["model.params.n_estimators=20"],
    "histgb": ["model.params.max_iter=40"],
    "ensemble": ["model.members=[xgboost,ridge]"],
}


@pytest.mark.parametrize("features", FEATURES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_feature_set_beats_the_constant_baseline(tmp_path, model, features):
    value, run_dir = train_in_process(tmp_path, [f"model={model}", f"features={features}", *SMALL_MODEL.get(model, [])])
    rep = report(run_dir)
    m = rep["metrics"]
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    assert rep["objective"]["name"] == "val_rmse"  # sweepers get the validation score, never the test score
    assert value == pytest.approx(rep["val"]["metrics"]["rmse"])
    assert m["rmse"] < rep["baselines"]["constant_mean"]["rmse"]
    if model == "rule":
        assert m["class_accuracy"] == 1.0
    assert manifest(run_dir)["status"] == "completed"


def test_no_feature_matrix_contains_a_label_derived_column(tmp_path):
    from kaayko_exp.features.spec import FeatureSpec, feature_names

    for features in FEATURES:
        cfg = compose_train([*FAST, f"features={features}"])
        assert not LABEL_DERIVED & set(cfg.features.columns) | LABEL_DERIVED & set(cfg.features.categorical)
    _, run_dir = train_in_process(tmp_path, ["features=extended", "model=ridge"])
    spec = FeatureSpec.load(run_dir / "model" / "feature_spec.json")
    assert not LABEL_DERIVED & set(feature_names(spec))
    assert not LABEL_DERIVED & set(spec.required_columns)


def test_run_directory_holds_the_contract(tmp_path):
    _, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=30", "plots=true",
                                             "evaluation.cv_folds=2"])
    man = manifest(run_dir)
    assert [man["stages"][s]["status"] for s in STAGES] == ["done"] * len(STAGES)
    for stage in STAGES:
        for art in man["stages"][stage]["artifacts"]:
            assert (run_dir / art["path"]).is_file()
    assert {"report.json", "report.md"} <= {p.name for p in run_dir.iterdir()}
    assert len(list((run_dir / "plots").glob("*.png"))) >= 4
    rep = report(run_dir)
    assert rep["schema_version"] == 1
    assert rep["cv"]["k"] == 2 and len(rep["cv"]["folds"]) == 2
    assert not list((run_dir / "model").glob("*.pkl")) and not list((run_dir / "model").glob("*.pickle"))
    assert (run_dir / "model" / "feature_spec.json").is_file()


def test_external_test_set_is_scored(tmp_path):
    data = Path(__file__).parent / "data" / "kaayko_sample"
    _, run_dir = train_in_process(tmp_path, ["model=rule", f"evaluation.external={data}"])
    ext = report(run_dir)["external"]
    assert ext["n"] > 10_000 and ext["metrics"]["class_accuracy"] == 1.0
    assert {row["lake"] for row in ext["per_lake"]} >= {"Lake Mead", "Windermere"}


def test_cli_single_run_and_sweep(tmp_path):
    run_dir = tmp_path / "single"
    out = cli("train.py", [*FAST, "model.params.n_estimators=30", f"hydra.run.dir={run_dir}",
                           f"cache_dir={tmp_path / 'cache'}"])
    assert out.returncode == 0, out.stderr
    assert manifest(run_dir)["status"] == "completed"
    assert (run_dir / "train.log").read_text().count("evaluate") >= 1
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    sweep = tmp_path / "sweep"
    out = cli("train.py", ["-m", "model=ridge,rule", *FAST, f"hydra.sweep.dir={sweep}",
                           f"cache_dir={tmp_path / 'cache'}"])
    assert out.returncode == 0, out.stderr
    for job in ("0", "1"):
        assert manifest(sweep / job)["status"] == "completed"
    assert report(sweep / "1")["choices"]["model"] == "rule"


def test_help_lists_groups_and_examples():
    out = cli("train.py", ["--help"])
    assert out.returncode == 0
    for word in ("model:", "features:", "split:", "sample_size:", "checkpointing:", "Examples", "resume="):
        assert word in out.stdout


@pytest.mark.parametrize("args,needle", [
    (["model=nonexistent"], "model"),
    (["sample_size.rows=-5"], "sample_size.rows"),
    (["sample_size.fraction=1.5"], "fraction"),
    (["features.columns=[temp_c,paddle_score]"], "paddle_score"),
    (["features.categorical=[skill_level]"], "skill_level"),
    (["model=svm", "model.exact=true", "sample_size=complete"], "too large"),
    (["seed=abc"], "seed"),
    (["model.params.not_a_param=3"], "not_a_param"),
    (["evaluation.cv_folds=1"], "cv_folds"),
    (["data=kaayko_csv"], "data.path"),
    (["data=parquet", "data.path=/nonexistent/x.parquet"], "/nonexistent/x.parquet"),
    (["model=rule", "features.categorical=[wind_dir]"], "rule"),
])
def test_user_mistakes_exit_2_with_a_message_and_no_good_run(tmp_path, args, needle):
    run_dir = tmp_path / "bad"
    out = cli("train.py", [*FAST, f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}", *args])
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    mpath = run_dir / "manifest.json"
    assert not mpath.exists() or json.loads(mpath.read_text())["status"] != "completed"
