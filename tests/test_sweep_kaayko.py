"""The Kaayko side of Optuna sweeps (issue 9): studies in conf/hparams_search/, sweep jobs that reuse or resume
their run directory, the thread split, ``resume=<sweep dir>``, sweeps in ``runs list``."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import optuna
import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import OmegaConf, open_dict

from kaayko_exp.cli import resume_argv, task
from kaayko_exp.errors import RunDirError
from kaayko_exp.models.callbacks import FitCallback
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training import pipeline
from kaayko_exp.training.interrupts import RunInterrupted
from kaayko_exp.training.runner import rerun_in_sweep, sweep_threads
from tests.runhelpers import CONF, FAST, compose_train, manifest, train_in_process

STUDIES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))


def test_the_three_ready_studies_exist():
    assert STUDIES == ["histgb", "random_forest", "xgboost"]


def _endpoints(sweep):
    if isinstance(sweep, ChoiceSweep):
        return list(sweep.list)
    if isinstance(sweep, IntervalSweep):
        return [sweep.start, sweep.end]
    if isinstance(sweep, RangeSweep):
        return [sweep.start]
    raise AssertionError(f"not a search space: {sweep!r}")


@pytest.mark.parametrize("study", STUDIES)
def test_a_study_optimises_a_validation_metric_over_parameters_the_model_accepts(study):
    from kaayko_exp.models import validate_model_config

    raw = OmegaConf.load(CONF / "hparams_search" / f"{study}.yaml")
    objective = raw.evaluation.objective
    assert objective.split("_", 1)[0] in ("val", "cv")  # never test_ / external_
    assert raw.hydra.sweeper.direction == ("maximize" if objective.endswith(("r2", "accuracy", "within_half"))
                                           else "minimize")
    assert raw.hydra.sweeper.sampler.seed is not None  # reproducible studies
    assert "override /hydra/sweeper" in str(OmegaConf.to_container(raw.defaults))
    cfg = compose_train([f"model={study}"])
    parser = OverridesParser.create()
    for key, text in raw.hydra.sweeper.params.items():
        override = parser.parse_override(f"{key}={text}")
        assert override.is_sweep_override(), key
        assert OmegaConf.select(cfg, key, default="<unset>") != "<unset>", f"{key} is not in the {study} config"
        for value in _endpoints(override.value()):  # each end of the space is a valid model config
            model = OmegaConf.create(OmegaConf.to_container(cfg.model))
            OmegaConf.update(model, key.removeprefix("model."), value)
            validate_model_config(model, 10_000)


@pytest.mark.parametrize("study", STUDIES)
def test_a_study_composes_with_the_optuna_sweeper(study):
    pytest.importorskip("hydra_plugins.optuna5_sweeper", reason="the optuna sweeper plugin (issue 9a) is not here")
    cfg = compose_train([f"hparams_search={study}"])
    assert cfg.hydra.runtime.choices["hydra/sweeper"] == "optuna"
    assert cfg.hydra.runtime.choices["model"] == study
    assert cfg.evaluation.objective.startswith(("val_", "cv_"))
    assert cfg.hydra.sweeper.direction == "minimize"
    assert set(cfg.hydra.sweeper.params) and all(k.startswith("model.params.") for k in cfg.hydra.sweeper.params)


# ---------------------------------------------------------------------------- sweep jobs and their run dirs
def _cfg(work: Path, overrides: list[str]):
    cfg = compose_train([*FAST, f"cache_dir={work / 'cache'}", *overrides])
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


XGB = ["model=xgboost", "model.params.n_estimators=40", "checkpointing.every=10"]


def test_a_completed_trial_run_is_reused_not_retrained(tmp_path):
    value, run_dir = train_in_process(tmp_path, XGB)
    before = manifest(run_dir)
    again = rerun_in_sweep(run_dir, _cfg(tmp_path, [*XGB, "plots=true", "n_jobs=2"]), XGB)  # neutral changes
    assert again == value
    assert manifest(run_dir)["events"] == before["events"]  # no start, no resume: nothing ran


def test_a_trial_run_of_another_config_is_refused(tmp_path):
    _, run_dir = train_in_process(tmp_path, XGB)
    with pytest.raises(RunDirError, match="another configuration"):
        rerun_in_sweep(run_dir, _cfg(tmp_path, [*XGB, "model.params.max_depth=3"]), XGB)


def test_an_unfinished_trial_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    reference, _ = train_in_process(tmp_path, XGB, name="reference")

    class StopAt(FitCallback):
        def after_step(self, key, done, total, score=None, save=None):
            if done == 20:
                raise RunInterrupted(signal.SIGTERM)

    build = pipeline.build_fit_callbacks
    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "build_fit_callbacks", lambda *a, **kw: [*build(*a, **kw), StopAt()])
        with pytest.raises(SystemExit):
            train_in_process(tmp_path, XGB)
    run_dir = tmp_path / "run"
    assert manifest(run_dir)["status"] == "interrupted"
    value = rerun_in_sweep(run_dir, _cfg(tmp_path, XGB), XGB)
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert [e["done"] for e in man["events"] if e["event"] == "restore"] == [20]
    assert value == reference


def test_a_pruned_trial_run_is_pruned_again_without_training(tmp_path, monkeypatch):
    class Prune:
        def report(self, value, step):
            pass

        def should_prune(self):
            return True

    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "sweep_trial", lambda: Prune())
        with pytest.raises(optuna.TrialPruned):
            train_in_process(tmp_path, XGB)
    run_dir = tmp_path / "run"
    events = manifest(run_dir)["events"]
    with pytest.raises(optuna.TrialPruned):
        rerun_in_sweep(run_dir, _cfg(tmp_path, XGB), XGB)
    assert manifest(run_dir)["events"] == events


def test_trial_pruned_leaves_the_task_function():
    @task
    def job(cfg):
        raise optuna.TrialPruned("pruned at step 3")

    with pytest.raises(optuna.TrialPruned):
        job(OmegaConf.create({}))


@pytest.mark.parametrize("n_jobs,parallel,launcher,cores,expected", [
    (-1, 4, "joblib", 16, 4),
    (-1, 3, "joblib", 8, 2),
    (-1, 32, "joblib", 8, 1),        # never below one thread
    (-1, 4, "basic", 16, None),      # the basic launcher runs one trial at a time
    (-1, 1, "joblib", 16, None),
    (6, 4, "joblib", 16, None),      # an explicit thread count is kept
    (-1, 2, "submitit_local", 16, 8),
])
def test_parallel_trials_share_the_cores(n_jobs, parallel, launcher, cores, expected):
    assert sweep_threads(n_jobs, parallel, launcher, cores) == expected


# ---------------------------------------------------------------------------- resume=<sweep dir>
def _sweep_dir(root: Path) -> Path:
    sweep = root / "outputs" / "multirun" / "2026-01-02" / "03-04-05"
    sweep.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {
        "hydra": ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=12", "hydra.mode=MULTIRUN",
                  "hydra.sweep.dir=outputs/multirun/2026-01-02/03-04-05"],
        "task": ["sample_size=tiny", "model.params.max_depth=int(interval(3,10))"],
    }}}), sweep / "multirun.yaml")
    return sweep


def test_resume_of_a_sweep_dir_relaunches_the_multirun_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_dir(tmp_path)
    argv = resume_argv(["train.py", "resume=outputs/multirun/2026-01-02/03-04-05"])
    assert argv == ["train.py", "--multirun", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=12",
                    "sample_size=tiny", "model.params.max_depth=int(interval(3,10))",
                    f"hydra.sweep.dir={sweep.resolve()}"]


def test_overrides_given_on_a_sweep_resume_win_over_the_saved_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _sweep_dir(tmp_path)
    argv = resume_argv(["train.py", "-m", "resume=outputs/multirun/2026-01-02/03-04-05/",
                        "hydra.sweeper.n_trials=20"])
    assert argv == ["train.py", "--multirun", "hydra/sweeper=optuna", "sample_size=tiny",
                    "model.params.max_depth=int(interval(3,10))", "hydra.sweeper.n_trials=20",
                    f"hydra.sweep.dir={sweep.resolve()}"]


def test_resume_of_a_plain_run_dir_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "2026-01-02" / "03-04-05"
    RunDir.create(run, stages=["fit"], config_hash="h", choices={}, overrides=[])
    argv = resume_argv(["train.py", "resume=outputs/2026-01-02/03-04-05"])
    assert argv == ["train.py", "resume=outputs/2026-01-02/03-04-05", f"hydra.run.dir={run.resolve()}",
                    "hydra.output_subdir=null"]


# ---------------------------------------------------------------------------- runs list
def _trial(number, state, value, run_dir):
    return {"number": number, "job_num": number, "state": state, "values": None if value is None else [value],
            "params": {"model.params.max_depth": 3 + number}, "run_dir": run_dir, "steps": 3, "duration_s": 1.5}


def test_runs_list_shows_a_sweep_with_progress_best_value_and_its_test_metrics(tmp_path, capsys):
    from kaayko_exp.runs.cli import main

    sweep = tmp_path / "multirun" / "2026-01-02" / "03-04-05"
    for job, rmse in ((0, 0.61), (2, 0.52)):
        (sweep / str(job)).mkdir(parents=True)
        (sweep / str(job) / "report.json").write_text(json.dumps(
            {"objective": {"name": "val_rmse"}, "metrics": {"rmse": rmse, "mae": rmse / 2}}))
    (sweep / "sweep.json").write_text(json.dumps({
        "kind": "optuna-sweep", "schema_version": 1, "storage": "optuna.journal", "study_name": "train",
        "directions": ["minimize"], "n_trials": 10,
        "trials": [_trial(0, "COMPLETE", 0.5, "0"), _trial(1, "PRUNED", None, "1"),
                   _trial(2, "COMPLETE", 0.4, "2"), _trial(3, "FAIL", None, "3"), _trial(4, "RUNNING", None, "4")],
    }))
    assert main(["list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.endswith(str(sweep)))
    assert "3/10 done" in line  # COMPLETE and PRUNED count, FAIL and RUNNING do not
    assert "2 complete" in line and "1 pruned" in line and "1 fail" in line and "1 running" in line
    assert "val_rmse=0.4000 (trial 2)" in line
    assert "rmse 0.5200 mae 0.2600" in line  # the best trial's held-out test metrics, from its report.json


def test_runs_list_shows_a_pruned_run(tmp_path, capsys, monkeypatch):
    from kaayko_exp.runs.cli import main

    class Prune:
        def report(self, value, step):
            pass

        def should_prune(self):
            return True

    monkeypatch.setattr(pipeline, "sweep_trial", lambda: Prune())
    with pytest.raises(optuna.TrialPruned):
        train_in_process(tmp_path, XGB)
    assert main(["list", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("pruned ")


# ---------------------------------------------------------------------------- real sweeps (train.py -m)
def _sweep(tmp_path: Path, args: list[str]):
    from tests.runhelpers import cli

    pytest.importorskip("hydra_plugins.optuna5_sweeper", reason="the optuna sweeper plugin (issue 9a) is not here")
    sweep = tmp_path / "sweep"
    proc = cli("train.py", ["-m", *args, "sample_size=tiny", "n_jobs=1", "plots=false", "model.params.n_estimators=30",
                            "evaluation.permutation_repeats=1", f"cache_dir={tmp_path / 'cache'}",
                            f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, json.loads((sweep / "sweep.json").read_text())


def test_the_xgboost_study_runs_and_runs_list_shows_its_best_trial_with_test_metrics(tmp_path, capsys):
    from kaayko_exp.runs.cli import main

    sweep, data = _sweep(tmp_path, ["hparams_search=xgboost", "hydra.sweeper.n_trials=3"])
    assert [t["state"] for t in data["trials"]] == ["COMPLETE"] * 3
    best = min(data["trials"], key=lambda t: t["values"][0])
    rep = json.loads((sweep / best["run_dir"] / "report.json").read_text())
    assert rep["objective"]["name"] == "val_rmse" and rep["objective"]["value"] == pytest.approx(best["values"][0])
    for t in data["trials"]:  # 30 rounds, reports every 10 and at the phase end (step 100)
        assert manifest(sweep / t["run_dir"])["stages"]["fit"]["detail"]["pruning"] == {"reports": 4, "last_step": 100}
    # issue 16 item 10: the later trials reuse the first one's prepared data (same inputs, same process), and
    # each run directory still holds and records the same split and feature spec, and the same data block
    first, *later = [manifest(sweep / t["run_dir"]) for t in sorted(data["trials"], key=lambda t: t["number"])]
    prepared = ("dataset", "split", "features")
    assert all("prepared" not in first["stages"][s]["detail"] for s in prepared)
    for man in later:
        assert [man["stages"][s]["detail"].get("prepared") for s in prepared] == ["reused"] * 3
        assert man["data"] == first["data"]
        for s in prepared:
            assert man["stages"][s]["artifacts"] == first["stages"][s]["artifacts"]
            assert {k: v for k, v in man["stages"][s]["detail"].items() if k != "prepared"} == \
                first["stages"][s]["detail"]
    assert main(["list", str(sweep)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert f"val_rmse={best['values'][0]:.4f} (trial {best['number']})" in line
    assert f"rmse {rep['metrics']['rmse']:.4f}" in line


def test_a_real_pruner_stops_the_jobs_and_their_runs_say_pruned(tmp_path):
    # a threshold of 0 prunes every trial at its first report (a validation RMSE is > 0)
    sweep, data = _sweep(tmp_path, ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                                    "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,upper:0.0}",
                                    "model.params.max_depth=int(interval(3,6))", "checkpointing.every=5"])
    assert [t["state"] for t in data["trials"]] == ["PRUNED", "PRUNED"]
    for t in data["trials"]:
        man = manifest(sweep / t["run_dir"])
        assert man["status"] == "pruned"
        assert [e["step"] for e in man["events"] if e["event"] == "pruned"] == [10]
        assert max(c["done"] for c in man["checkpoints"]) == 10  # no round after the pruning decision


def test_runs_list_names_where_a_best_trial_run_by_another_worker_lives(tmp_path, capsys):
    # issue 16 item 11: two workers of one study, each with its own sweep directory; the best trial ran in B's
    import socket

    from kaayko_exp.runs.cli import main

    a, b = tmp_path / "a" / "sweep", tmp_path / "b" / "sweep"
    (a / "0").mkdir(parents=True)
    (b / "1").mkdir(parents=True)
    (b / "1" / "report.json").write_text(json.dumps({"objective": {"name": "val_rmse"},
                                                      "metrics": {"rmse": 0.31, "mae": 0.2}}))
    here = socket.gethostname()
    for sweep, rows in ((a, [_trial(0, "COMPLETE", 0.5, "0") | {"host": here},
                             _trial(1, "COMPLETE", 0.3, str(b / "1")) | {"host": here}]),
                        (b, [_trial(0, "COMPLETE", 0.5, "/remote/a/sweep/0") | {"host": "gpu7"},
                             _trial(1, "COMPLETE", 0.3, "1") | {"host": here}])):
        (sweep / "sweep.json").write_text(json.dumps({
            "kind": "optuna-sweep", "schema_version": 1, "storage": "postgresql://db/optuna", "study_name": "t",
            "directions": ["minimize"], "n_trials": 2, "trials": rows}))
    assert main(["list", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    line_a = next(ln for ln in lines if ln.endswith(str(a)))
    assert f"val_rmse=0.3000 (trial 1 in {b / '1'})" in line_a and "rmse 0.3100" in line_a
    line_b = next(ln for ln in lines if ln.endswith(str(b)))
    assert "val_rmse=0.3000 (trial 1)" in line_b


def test_the_forest_studys_bootstrap_shares_fit_whatever_the_family_default():
    """The random_forest study samples max_samples (a bootstrap share); the family's default has no bootstrap
    (issue 19), so the study must turn it on, or every trial fails in sklearn."""
    from conftest import make_frame

    from kaayko_exp.features.spec import build_spec, transform
    from kaayko_exp.models import build_model

    cfg = compose_train(["hparams_search=random_forest"])
    frame = make_frame(400, seed=2)
    spec = build_spec(cfg.features, frame)
    for share in (0.3, 1.0):
        model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model))
        model_cfg.params.max_samples = share
        model_cfg.params.n_estimators = 3
        model = build_model(model_cfg, seed=1, n_jobs=1, n_rows=len(frame))
        model.fit(transform(spec, frame), frame["paddle_score"].to_numpy(np.float64), spec=spec)
