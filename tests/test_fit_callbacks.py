"""The fit loop's callbacks: progress lines, checkpoints and stop signals, each with its own job."""

from __future__ import annotations

import re
import signal

import numpy as np
import pytest
from conftest import make_frame
from omegaconf import OmegaConf

from kaayko_exp.features.spec import build_spec, transform
from kaayko_exp.models import build_model, member_config
from kaayko_exp.models.callbacks import FitCallback
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training.callbacks import ProgressLog
from kaayko_exp.training.checkpoints import CheckpointWriter, RunResume
from kaayko_exp.training.interrupts import RunInterrupted, StopSignals
from kaayko_exp.training.pipeline import STAGES


@pytest.fixture(scope="module")
def data():
    frame = make_frame(1200, seed=5)
    spec = build_spec(OmegaConf.load("conf/features/standard.yaml"), frame)
    X, y = transform(spec, frame), frame["paddle_score"].to_numpy(np.float64)
    return {"spec": spec, "X": X[:1000], "y": y[:1000], "Xv": X[1000:], "yv": y[1000:]}


def model(name, **params):
    cfg = member_config(name)
    cfg.params = {**cfg.params, **params}
    return build_model(cfg, seed=3, n_jobs=1, n_rows=1000)


def fit(m, data, callbacks, resume=None, key="fit"):
    return m.fit(data["X"], data["y"], spec=data["spec"], callbacks=callbacks, resume=resume,
                 X_val=data["Xv"], y_val=data["yv"], key=key)


def run_dir(tmp_path, name="run"):
    return RunDir.create(tmp_path / name, stages=STAGES, config_hash="x", choices={}, overrides=[])


def writer(run, every, **kw):
    return CheckpointWriter(run, OmegaConf.create({"every": every, "keep_last": 100}), **kw)


def checkpoint_steps(run, key="fit"):
    return sorted(c["done"] for c in run.manifest["checkpoints"] if c["key"] == key)


class Steps(FitCallback):
    def __init__(self):
        self.seen = []

    def after_step(self, key, done, total, score=None, save=None):
        self.seen.append((key, done))


def progress_steps(caplog, unit="round"):
    """Steps of the ``<key>: <unit> <done>/<total>`` progress lines (each must name the learner's unit)."""
    lines = [r.getMessage() for r in caplog.records if r.name == "kaayko_exp.fit"]
    found = [re.match(r"^[\w/]+: (\w+) (\d+)/\d+", line) for line in lines]
    assert all(m is not None and m.group(1) == unit for m in found), lines
    return [int(m.group(2)) for m in found]


@pytest.mark.parametrize("every", [0, 7, 15])
def test_progress_lines_do_not_depend_on_the_checkpoint_interval(data, tmp_path, caplog, every):
    caplog.set_level("INFO", logger="kaayko_exp.fit")
    run = run_dir(tmp_path)
    fit(model("xgboost", n_estimators=40, max_depth=3), data, [ProgressLog(), writer(run, every)])
    assert progress_steps(caplog) == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]  # every 10 %
    assert checkpoint_steps(run) == ([] if every == 0 else list(range(every, 40, every)))
    assert all("val_rmse" in r.getMessage() for r in caplog.records)


def test_progress_every_n_steps_and_a_line_for_an_early_stop(data, caplog):
    caplog.set_level("INFO", logger="kaayko_exp.fit")
    fit(model("xgboost", n_estimators=30, max_depth=3), data, [ProgressLog(every=12)])
    assert progress_steps(caplog) == [12, 24, 30]
    caplog.clear()
    stopper = model("xgboost", n_estimators=400, max_depth=6, learning_rate=0.9, early_stopping_rounds=2)
    fit(stopper, data, [ProgressLog(every=1000)])
    rounds = stopper.info["rounds_run"]
    assert rounds < 400 and progress_steps(caplog) == [rounds]  # the step it stopped at is logged


def test_chunked_learners_report_at_every_callbacks_interval(data, tmp_path):
    steps, run = Steps(), run_dir(tmp_path)
    fit(model("random_forest", n_estimators=24), data, [ProgressLog(every=4), writer(run, 6), steps])
    assert steps.seen == [("fit", d) for d in range(2, 25, 2)]  # gcd(4, 6) trees per chunk
    assert checkpoint_steps(run) == [6, 12, 18]


def test_a_stop_request_saves_the_next_step_then_stops(data, tmp_path):
    run, stop = run_dir(tmp_path), StopSignals()

    class SignalAt(FitCallback):  # what the SIGTERM handler does while a fit runs
        def after_step(self, key, done, total, score=None, save=None):
            if done == 12:
                assert stop.in_fit
                stop.request(signal.SIGTERM)

    with pytest.raises(RunInterrupted) as info:
        fit(model("xgboost", n_estimators=40, max_depth=3), data,
            [writer(run, 10, stop_requested=stop.requested), stop, SignalAt()])
    assert info.value.signal_name == "SIGTERM" and not stop.in_fit and not stop.requested()
    assert checkpoint_steps(run) == [10, 13]
    reference = fit(model("xgboost", n_estimators=40, max_depth=3), data, [])
    resumed = fit(model("xgboost", n_estimators=40, max_depth=3), data, [Steps()], resume=RunResume(run))
    assert [e["done"] for e in run.manifest["events"] if e["event"] == "restore"] == [13]
    assert np.array_equal(resumed.predict(data["Xv"]), reference.predict(data["Xv"]))


def test_finished_ensemble_members_are_kept_and_never_refit(data, tmp_path):
    cfg = member_config("ensemble")
    cfg.members = ["ridge", "xgboost"]
    cfg.params = {"xgboost": {"n_estimators": 20, "max_depth": 3}}

    def ensemble():
        return build_model(cfg, seed=3, n_jobs=1, n_rows=1000)

    run = run_dir(tmp_path)
    first = fit(ensemble(), data, [writer(run, 0)])
    kept = {c["key"]: (c["done"], c["final"]) for c in run.manifest["checkpoints"]}
    assert kept == {"fit/ridge": (1, True), "fit/xgboost": (20, True)}
    steps = Steps()
    again = fit(ensemble(), data, [steps], resume=RunResume(run))
    assert steps.seen == []  # both members reloaded
    assert np.array_equal(again.predict(data["Xv"]), first.predict(data["Xv"]))
