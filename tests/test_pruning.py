"""Pruning from the fit loop (issue 9, job side): a fake trial stands in for the Optuna sweeper's trial."""

from __future__ import annotations

import signal

import optuna
import pytest

from kaayko_exp.models.callbacks import FitCallback
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training import pipeline, pruning
from kaayko_exp.training.interrupts import RunInterrupted
from tests.runhelpers import manifest, report, train_in_process


class FakeTrial:
    """Records reports; says prune once a report at or past ``prune_at`` arrived."""

    def __init__(self, prune_at: int | None = None):
        self.prune_at = prune_at
        self.reports: list[tuple[int, float]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune_at is not None and self.reports[-1][0] >= self.prune_at


class CountRounds(FitCallback):
    def __init__(self):
        self.rounds: dict[str, int] = {}

    def after_step(self, key, done, total, score=None, save=None):
        self.rounds[key] = done


@pytest.fixture
def in_sweep(monkeypatch):
    """Make the pipeline see ``trial`` as its sweep trial and count the rounds each fit ran."""
    counter = CountRounds()
    build = pipeline.build_fit_callbacks
    monkeypatch.setattr(pipeline, "build_fit_callbacks", lambda *a, **kw: [counter, *build(*a, **kw)])

    def use(trial):
        monkeypatch.setattr(pipeline, "sweep_trial", lambda: trial)
        return counter

    return use


XGB = ["model=xgboost", "model.params.n_estimators=100", "checkpointing.every=5"]


def test_a_pruned_fit_stops_at_once_and_the_run_says_pruned(tmp_path, in_sweep):
    trial = FakeTrial(prune_at=30)
    counter = in_sweep(trial)
    with pytest.raises(optuna.TrialPruned):
        train_in_process(tmp_path, [*XGB, "pruning.report_every=10"])
    run_dir = tmp_path / "run"
    assert counter.rounds == {"fit": 30}  # no round after the pruning decision
    assert [s for s, _ in trial.reports] == [10, 20, 30]  # report_every, not checkpointing.every
    man = manifest(run_dir)
    assert man["status"] == "pruned"
    assert man["stages"]["fit"]["status"] == "pruned"
    assert man["stages"]["evaluate"]["status"] == "pending"
    event = [e for e in man["events"] if e["event"] == "pruned"]
    assert len(event) == 1 and event[0]["step"] == 30 and event[0]["stage"] == "fit"
    assert not any(e["event"] == "failed" for e in man["events"])
    assert max(c["done"] for c in man["checkpoints"] if c["key"] == "fit") == 30  # its state is kept
    assert RunDir.open(run_dir).try_lock()  # the run was released


def test_steps_are_monotone_across_cv_folds_and_the_final_fit(tmp_path, in_sweep):
    trial = FakeTrial()
    in_sweep(trial)
    value, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=20",
                                                 "evaluation.cv_folds=2", "pruning.report_every=10"])
    rep = report(run_dir)
    steps = [s for s, _ in trial.reports]
    # 20 rounds -> each phase owns 100 steps: fold ends at 100 and 200, the final fit's rounds at 210, 220,
    # its validation value at 300
    assert steps == [100, 200, 210, 220, 300]
    values = [v for _, v in trial.reports]
    assert values[:2] == pytest.approx([f["metrics"]["rmse"] for f in rep["cv"]["folds"]])
    assert values[-1] == pytest.approx(rep["val"]["metrics"]["rmse"]) == pytest.approx(value)
    assert manifest(run_dir)["status"] == "completed"


def test_a_non_rmse_objective_reports_its_own_metric_at_phase_ends_only(tmp_path, in_sweep):
    trial = FakeTrial()
    in_sweep(trial)
    value, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=20",
                                                 "evaluation.objective=val_r2", "pruning.report_every=5"])
    assert trial.reports == [(100, pytest.approx(report(run_dir)["val"]["metrics"]["r2"]))]
    assert trial.reports[0][1] == pytest.approx(value)


def test_a_chunked_learner_is_pruned_at_its_chunk_end(tmp_path, in_sweep):
    trial = FakeTrial(prune_at=20)
    counter = in_sweep(trial)
    with pytest.raises(optuna.TrialPruned):
        train_in_process(tmp_path, ["model=random_forest", "model.params.n_estimators=60", "checkpointing.every=0",
                                    "pruning.report_every=10"])
    assert counter.rounds == {"fit": 20}
    assert [s for s, _ in trial.reports] == [10, 20]


def test_outside_a_sweep_there_is_no_reporter(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "hydra_plugins.optuna5_sweeper.trial", None)
    assert pruning.sweep_trial() is None
    value, run_dir = train_in_process(tmp_path, ["model=xgboost", "model.params.n_estimators=10"])
    assert "pruning" not in manifest(run_dir)["stages"]["fit"]["detail"]


def test_the_callback_alone_drops_steps_that_go_back_and_skips_sub_fits():
    trial = FakeTrial()
    rep = pruning.PruningReporter(trial, report_every=2)
    rep.begin_phase("fit", 0, 6)
    rep.after_step("fit/xgboost", 2, 6, 0.9)  # an ensemble member: not the phase's own fit
    rep.after_step("fit", 1, 6, 0.8)
    rep.after_step("fit", 2, 6, 0.7)
    rep.after_step("fit", 4, 6, float("nan"))
    rep.after_step("fit", 6, 6, 0.5)
    rep.end_phase(0.5)
    rep.begin_phase("fit", 0, 6)  # a phase that would go back: nothing reported
    rep.after_step("fit", 2, 6, 0.4)
    assert trial.reports == [(2, 0.7), (6, 0.5), (10, 0.5)]


@pytest.mark.parametrize("bad", [0, -3])
def test_report_every_below_one_is_a_config_error(tmp_path, bad):
    from kaayko_exp.errors import ConfigError

    with pytest.raises(ConfigError, match="pruning.report_every"):
        train_in_process(tmp_path, ["model=xgboost", f"pruning.report_every={bad}"])
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_a_stop_signal_still_wins_over_the_pruner(tmp_path, in_sweep, monkeypatch):
    """Ctrl-C during a sweep trial is an interruption (resumable), not a pruning."""
    trial = FakeTrial(prune_at=10_000)
    in_sweep(trial)

    class Stop(FitCallback):
        def after_step(self, key, done, total, score=None, save=None):
            if done == 15:
                raise RunInterrupted(signal.SIGTERM)

    build = pipeline.build_fit_callbacks
    monkeypatch.setattr(pipeline, "build_fit_callbacks", lambda *a, **kw: [*build(*a, **kw), Stop()])
    with pytest.raises(SystemExit):
        train_in_process(tmp_path, XGB)
    assert manifest(tmp_path / "run")["status"] == "interrupted"
