"""`python train.py`: every model × feature set in-process, the real CLI, and user mistakes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import make_frame
from runhelpers import (
    FAST,
    cli,
    compose_train,
    held_out_predictions,
    manifest,
    report,
    train_in_process,
)

from kaayko_exp.data.schema import LABEL_DERIVED
from kaayko_exp.training.pipeline import STAGES

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
    # 24 in-process trainings: FAST keeps them tiny (sample_size=tiny: 3,000 rows) and SMALL_MODEL keeps fits short
    value, run_dir = train_in_process(tmp_path, [f"model={model}", f"features={features}", *SMALL_MODEL.get(model, [])])
    rep = report(run_dir)
    assert rep["data"]["rows"] == 3000
    m = rep["metrics"]
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))
    assert rep["objective"]["name"] == "val_rmse"  # sweepers get the validation score, never the test score
    assert value == pytest.approx(rep["val"]["metrics"]["rmse"])
    assert m["rmse"] < rep["baselines"]["constant_mean"]["rmse"]
    assert manifest(run_dir)["status"] == "completed"


def test_rule_model_is_the_rule_baseline_and_no_oracle_on_noisy_labels(tmp_path):
    _, run_dir = train_in_process(tmp_path, ["model=rule", "data.label_noise=0.5"])
    rep = report(run_dir)
    rule = rep["baselines"]["rule"]
    assert rep["rule_baseline_by_construction"] is False
    assert 0.0 < rule["class_accuracy"] < 0.9 and rule["rmse"] > 0.2  # noise of std 0.5 before rounding
    # the rule model, reading its inputs back out of the feature matrix, scores exactly like the rule itself
    for key in ("mae", "rmse", "class_accuracy", "within_half", "skill_accuracy"):
        assert rep["metrics"][key] == pytest.approx(rule[key], abs=1e-12)
    assert "by construction" not in (run_dir / "report.md").read_text()


def test_category_levels_seen_only_in_test_lakes_stay_out_of_the_spec(tmp_path):
    from kaayko_exp.data.schema import RANGES
    from kaayko_exp.features.spec import FeatureSpec

    frame = make_frame(2400, seed=11)
    for col, (lo, hi) in RANGES.items():  # the loader refuses the few implausible values make_frame can draw
        frame[col] = frame[col].clip(lo, hi)
    frame["lake_type"] = "type of " + frame["lake"].astype(str)  # every lake has a level of its own
    path = tmp_path / "lakes.parquet"
    frame.to_parquet(path, index=False)
    _, run_dir = train_in_process(tmp_path, ["data=parquet", f"data.path={path}", "sample_size=complete",
                                             "split=lakes", "model=ridge"])
    rep = report(run_dir)
    desc = rep["split"]["description"]
    assert desc["test_lakes"] and desc["val_lakes"]
    train_lakes = set(frame["lake"]) - set(desc["test_lakes"]) - set(desc["val_lakes"])
    spec = FeatureSpec.load(run_dir / "model" / "feature_spec.json")
    levels = next(f["levels"] for f in spec.features if f["name"] == "lake_type")
    assert levels == sorted(f"type of {lake}" for lake in train_lakes)
    unseen = rep["test"]["unseen_levels"]
    per_lake = frame["lake"].value_counts()
    assert unseen["rows"] == rep["test"]["n"] == sum(per_lake[lake] for lake in desc["test_lakes"])
    assert unseen["levels"]["lake_type"] == {f"type of {lake}": per_lake[lake] for lake in desc["test_lakes"]}
    log = (run_dir / "report.md").read_text()
    assert f"**{unseen['rows']:,} rows have a category level not seen in training**" in log


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
    assert list(man["stages"]) == list(STAGES) == ["dataset", "split", "features", "fit", "evaluate", "report",
                                                   "export"]
    assert [man["stages"][s]["status"] for s in STAGES] == ["done"] * len(STAGES)
    for stage in STAGES:
        for art in man["stages"][stage]["artifacts"]:
            assert (run_dir / art["path"]).is_file()
    assert {"report.json", "report.md"} <= {p.name for p in run_dir.iterdir()}
    assert len(list((run_dir / "plots").glob("*.png"))) >= 4
    rep = report(run_dir)
    assert rep["schema_version"] == 1
    assert rep["cv"]["k"] == 2 and len(rep["cv"]["folds"]) == 2
    # noise-free synthetic labels are the rule's own output: the report says so beside the rule baseline
    assert rep["rule_baseline_by_construction"] is True
    assert "equals the labels by construction" in (run_dir / "report.md").read_text()
    assert not list((run_dir / "model").glob("*.pkl")) and not list((run_dir / "model").glob("*.pickle"))
    assert (run_dir / "model" / "feature_spec.json").is_file()


def test_cv_folds_early_stop_as_the_final_fit_does(tmp_path, monkeypatch):
    """early_stopping_rounds with CV (issue 16, item 5): every fold stops early on validation lakes of its own
    training part, as the final fit does on split.val_fraction's lakes; the fold is scored on its held-out lakes."""
    from kaayko_exp.models.callbacks import FitCallback
    from kaayko_exp.training import pipeline

    class Rounds(FitCallback):
        def __init__(self):
            self.last, self.scored = {}, set()

        def after_step(self, key, done, total, score=None, save=None):
            self.last[key] = (done, total)
            if score is not None:
                self.scored.add(key)

    rounds = Rounds()
    build = pipeline.build_fit_callbacks
    monkeypatch.setattr(pipeline, "build_fit_callbacks", lambda *a, **kw: [*build(*a, **kw), rounds])
    _, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=200",
                                             "model.params.learning_rate=0.6", "model.params.early_stopping_rounds=3",
                                             "evaluation.cv_folds=2"])
    assert set(rounds.last) == {"cv/fold0", "cv/fold1", "fit"}
    for key, (done, total) in rounds.last.items():
        assert total == 200 and done < 200, key  # every fit stopped early
        assert key in rounds.scored, key
    folds = report(run_dir)["cv"]["folds"]
    assert [f["rounds"] for f in folds] == [rounds.last["cv/fold0"][0], rounds.last["cv/fold1"][0]]
    assert all(f["n_early_stopping"] > 0 for f in folds)


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


def test_resume_after_a_stop_between_split_and_features_builds_the_same_spec(tmp_path, monkeypatch):
    from omegaconf import open_dict

    from kaayko_exp.training.runner import resume

    args = ["model=ridge"]
    _, ref = train_in_process(tmp_path, args, name="ref")
    from kaayko_exp.runs.rundir import RunDir
    from kaayko_exp.training.interrupts import RunInterrupted

    start_stage = RunDir.start_stage

    def ctrl_c_at_features(self, name):  # Ctrl-C just as the features stage starts
        start_stage(self, name)
        if name == "features":
            raise RunInterrupted(signal.SIGINT)

    monkeypatch.setattr(RunDir, "start_stage", ctrl_c_at_features)
    with pytest.raises(SystemExit) as stopped:
        train_in_process(tmp_path, args, name="run")
    monkeypatch.undo()
    run_dir = tmp_path / "run"
    assert stopped.value.code == 130
    stages = manifest(run_dir)["stages"]
    assert [stages[s]["status"] for s in ("dataset", "split", "features")] == ["done", "done", "interrupted"]
    cfg = compose_train([*FAST, f"cache_dir={tmp_path / 'cache'}", *args])
    with open_dict(cfg):
        del cfg["hydra"]
    resume(run_dir, cfg, [])  # reloads the split, then builds the spec from its training rows
    assert manifest(run_dir)["status"] == "completed"
    spec = "model/feature_spec.json"
    assert (run_dir / spec).read_bytes() == (ref / spec).read_bytes()
    assert held_out_predictions(run_dir).to_numpy().tobytes() == held_out_predictions(ref).to_numpy().tobytes()


def test_a_run_with_another_stage_order_is_not_continued(tmp_path):
    from kaayko_exp.errors import RunDirError
    from kaayko_exp.runs.rundir import RunDir
    from kaayko_exp.training.pipeline import execute

    old = ("dataset", "features", "split", "fit", "evaluate", "report", "export")
    run = RunDir.create(tmp_path / "old", stages=old, config_hash="h", choices={}, overrides=[])
    assert run.stage_names() == list(old)
    cfg = compose_train([*FAST, f"cache_dir={tmp_path / 'cache'}"])
    with pytest.raises(RunDirError, match="dataset → features → split.*start a fresh run"):
        execute(cfg, run)
    assert all(run.stage(s)["status"] == "pending" for s in old)


def test_full_garbage_collection_only_when_the_freed_table_is_worth_it(tmp_path, monkeypatch):
    # a full gc scans every object of the process (in a sweep: the study's and Hydra's too), so it runs only when
    # the table dropped after the features stage is big and still held by a reference cycle; the arrow pool is
    # released either way
    import gc
    import weakref

    from kaayko_exp.training import pipeline

    calls = []
    real = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *a, **k: calls.append(a) or real(*a, **k))
    train_in_process(tmp_path, ["model=rule"], name="small")  # tiny: ~0.3 MB freed
    assert calls == []
    monkeypatch.setattr(pipeline, "FULL_COLLECT_MIN_BYTES", 1)
    train_in_process(tmp_path, ["model=rule"], name="big")
    assert calls == []  # the table went with its last reference: nothing left for a collection to find
    # a table that outlives its last reference (held by a reference cycle) is collected
    import kaayko_exp.data as data

    load, cycles = data.load_dataset, []

    def load_in_a_cycle(*args, **kwargs):
        frame, info = load(*args, **kwargs)
        cycle = [frame]
        cycle.append(cycle)
        cycles.append(weakref.ref(frame))
        return frame, info

    monkeypatch.setattr(data, "load_dataset", load_in_a_cycle)
    gc.disable()  # no automatic collection meanwhile: the cycle still holds the table when the stage drops it
    try:
        train_in_process(tmp_path, ["model=rule"], name="cycle")
    finally:
        gc.enable()
    assert calls == [()] and cycles[0]() is None
