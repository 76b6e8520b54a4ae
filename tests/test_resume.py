"""Kill harness: crash a run at chosen points, resume it, and get the uninterrupted answer byte for byte.

Most crash points run in-process: :class:`SimulatedCrash` (a BaseException) is raised at the point and
from then on ``RunDir.save`` writes nothing, so the run directory holds exactly what a SIGKILL at that
instant leaves (status ``running``, no ``failed`` event, the checkpoint directory a torn write leaves).
The resume runs in-process too (``runner.resume``). The real CLI covers a SIGKILL mid-fit, SIGTERM and
SIGINT (``tests/kill_train.py`` runs train.py with a callback that signals the process at a fit step).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading

import numpy as np
import pytest
from omegaconf import open_dict
from runhelpers import (
    FAST,
    cli,
    compose_train,
    held_out_predictions,
    manifest,
    train_in_process,
)

from kaayko_exp.errors import KaaykoError
from kaayko_exp.models.callbacks import FitCallback
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training import pipeline

XGB = ["model=xgboost", "model.params.n_estimators=60", "model.params.subsample=0.8",
       "model.params.colsample_bytree=0.8", "checkpointing.every=10"]
RF = ["model=random_forest", "model.params.n_estimators=30", "checkpointing.every=10"]
ARGS = {"xgb": XGB, "rf": RF}


class SimulatedCrash(BaseException):
    """A kill -9 at this instant, in-process (the pipeline records nothing for it: saves are frozen)."""


@contextlib.contextmanager
def crash_at(point: str):
    """Arm one crash point for the block; after the crash the run directory is never written again.

    ``stage-<name>-start`` / ``stage-<name>-before-done``: once the manifest marks the stage running /
    when its products are written, before the manifest marks it done. ``<key>:<done>``: right after fit step ``done`` (and its
    checkpoint). ``checkpoint-write@<key>:<done>``: the checkpoint files are written, then the process
    dies before the rename (a torn temporary directory stays). ``checkpoint-before-manifest@<key>:<done>``:
    the checkpoint directory is in place, the manifest does not list it yet. ``cv-fold-<i>``: after CV
    fold ``i`` is recorded.
    """
    state = {"crashed": False, "on_save": False}

    def crash():
        state["crashed"] = True
        raise SimulatedCrash(point)

    with pytest.MonkeyPatch.context() as mp:
        save = RunDir.save

        def frozen_save(self):
            if state["crashed"]:
                return
            if state["on_save"] and threading.current_thread() is threading.main_thread():  # not the heartbeat
                crash()
            save(self)

        mp.setattr(RunDir, "save", frozen_save)
        kind, _, where = point.rpartition("@")
        if point.startswith("stage-"):
            name, when = point[len("stage-"):].split("-", 1)
            start, finish = RunDir.start_stage, RunDir.finish_stage

            def start_then_crash(self, stage, *a, **kw):
                start(self, stage, *a, **kw)
                if (stage, when) == (name, "start"):
                    crash()

            def crash_then_finish(self, stage, *a, **kw):
                if (stage, when) == (name, "before-done"):
                    crash()
                finish(self, stage, *a, **kw)

            mp.setattr(RunDir, "start_stage", start_then_crash)
            mp.setattr(RunDir, "finish_stage", crash_then_finish)
        elif point.startswith("cv-fold-"):
            drop = RunDir.drop_checkpoints

            def drop_then_crash(self, prefix=""):
                drop(self, prefix)
                if prefix == f"cv/fold{point[len('cv-fold-'):]}":
                    crash()

            mp.setattr(RunDir, "drop_checkpoints", drop_then_crash)
        elif kind:
            key, _, done = where.rpartition(":")
            add = RunDir.add_checkpoint

            def add_checkpoint(self, k, d, total, write, **kw):
                if (k, d) == (key, int(done)):
                    if kind == "checkpoint-write":
                        inner = write

                        def write(tmp):
                            inner(tmp)
                            torn = tmp.with_name(tmp.name + "torn")
                            shutil.copytree(tmp, torn)
                            next(p for p in sorted(torn.rglob("*")) if p.is_file()).write_bytes(b"")
                            crash()
                    else:
                        state["on_save"] = True
                return add(self, k, d, total, write, **kw)

            mp.setattr(RunDir, "add_checkpoint", add_checkpoint)
        else:
            key, _, done = point.rpartition(":")

            class CrashAt(FitCallback):
                def after_step(self, k, d, total, score=None, save=None):
                    if (k, d) == (key, int(done)):
                        crash()

            build = pipeline.build_fit_callbacks
            mp.setattr(pipeline, "build_fit_callbacks", lambda *a, **kw: [*build(*a, **kw), CrashAt()])
        yield
    assert state["crashed"], f"the crash point {point} was never reached"


def resume_in_process(work, run_dir, *overrides):
    """``python train.py resume=<run_dir> [overrides]``, in this process."""
    from kaayko_exp.training.runner import resume

    args = [f"resume={run_dir}", *overrides]
    cfg = compose_train([*FAST, f"cache_dir={work / 'cache'}", *args])
    with open_dict(cfg):
        del cfg["hydra"]
    return resume(run_dir, cfg, args)


def crashed_run(work, name, args, point):
    with crash_at(point), pytest.raises(SimulatedCrash):
        train_in_process(work, args, name=name)
    run_dir = work / name
    man = manifest(run_dir)
    assert man["status"] == "running"  # the killed owner never got to say otherwise
    assert "failed" not in [e["event"] for e in man["events"]]
    return run_dir


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory shared by the module's runs (one dataset cache)."""
    return tmp_path_factory.mktemp("resume")


@pytest.fixture(scope="module")
def reference(work):
    """Held-out predictions of uninterrupted in-process runs."""
    return {name: held_out_predictions(train_in_process(work, args, name=f"ref-{name}")[1]).to_numpy()
            for name, args in ARGS.items()}


def assert_same_predictions(run_dir, expected):
    got = held_out_predictions(run_dir).to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert got.tobytes() == expected.tobytes()


def restores(run_dir, key="fit"):
    return [e["done"] for e in manifest(run_dir)["events"] if e["event"] == "restore" and e["key"] == key]


@pytest.mark.parametrize("model,point,restored", [
    ("xgb", "stage-dataset-start", []),
    ("xgb", "stage-split-before-done", []),
    ("xgb", "fit:35", [30]),  # between checkpoints: rounds 31-35 are redone
    ("xgb", "checkpoint-write@fit:40", [30]),  # torn checkpoint directory
    ("xgb", "checkpoint-before-manifest@fit:40", [30]),  # complete directory the manifest never listed
    ("xgb", "stage-evaluate-start", []),
    ("xgb", "stage-report-before-done", []),
    ("rf", "fit:20", [20]),
])
def test_kill_and_resume_gives_identical_predictions(work, reference, request, model, point, restored):
    name = request.node.callspec.id
    run_dir = crashed_run(work, name, ARGS[model], point)
    if point.startswith("checkpoint-"):
        listed = [c["done"] for c in manifest(run_dir)["checkpoints"] if c["key"] == "fit"]
        assert max(listed) == 30
        left = ".0000040.*torn" if point.startswith("checkpoint-write") else "0000040"
        assert list((run_dir / "checkpoints" / "fit").glob(left))  # what the kill left on disk
    resume_in_process(work, run_dir)
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert [e["event"] for e in man["events"]].count("resume") == 1
    assert restores(run_dir) == restored
    assert_same_predictions(run_dir, reference[model])


def test_sigkill_mid_fit_then_cli_resume_continues_from_the_checkpoint(tmp_path, work, reference):
    run_dir = tmp_path / "run"
    out = cli("tests/kill_train.py", ["fit:45", *FAST, *XGB, f"hydra.run.dir={run_dir}",
                                      f"cache_dir={work / 'cache'}"])
    assert out.returncode == -9, out.stderr
    assert manifest(run_dir)["status"] == "running"
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    assert manifest(run_dir)["status"] == "completed"
    assert restores(run_dir) == [40]
    assert_same_predictions(run_dir, reference["xgb"])  # the CLI run equals the in-process one
    assert (run_dir / "train.log").read_text().count("run directory:") >= 2  # appended by start and resume


@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_marks_interrupted_and_saves_a_checkpoint(tmp_path, work, reference, sig, code):
    run_dir = tmp_path / "run"
    out = cli("tests/kill_train.py", [f"fit:23@{sig}", *FAST, *XGB, f"hydra.run.dir={run_dir}",
                                      f"cache_dir={work / 'cache'}"])
    assert out.returncode == code, out.stderr
    man = manifest(run_dir)
    assert man["status"] == "interrupted"
    assert man["stages"]["fit"]["status"] == "interrupted"
    assert max(c["done"] for c in man["checkpoints"] if c["key"] == "fit") == 24
    resume_in_process(work, run_dir)
    assert restores(run_dir) == [24]
    assert_same_predictions(run_dir, reference["xgb"])


def test_resume_refuses_result_changing_overrides_and_accepts_harmless_ones(work):
    run_dir = crashed_run(work, "overrides", XGB, "fit:35")
    out = cli("train.py", [f"resume={run_dir}", "model.params.max_depth=3", "seed=7"])
    assert out.returncode == 2
    assert "model.params.max_depth" in out.stderr and "seed" in out.stderr
    assert manifest(run_dir)["status"] == "running"
    resume_in_process(work, run_dir, "n_jobs=1")
    assert manifest(run_dir)["status"] == "completed"


def test_resuming_a_completed_run_changes_nothing(work, capsys):
    _, run_dir = train_in_process(work, ["model=ridge"], name="completed")
    before = (run_dir / "manifest.json").read_bytes()
    capsys.readouterr()
    resume_in_process(work, run_dir)
    assert "already complete" in capsys.readouterr().out
    assert (run_dir / "manifest.json").read_bytes() == before


def _contents(run_dir):
    """Every file of a run directory but its log (a refused resume logs why)."""
    if not run_dir.exists():
        return {}
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != "train.log"}


@pytest.fixture(scope="module")
def unfinished_run(work):
    """A run killed just before its report: fit and evaluate artifacts are on disk and hashed."""
    return crashed_run(work, "unfinished", ["model=ridge"], "stage-report-start")


@pytest.mark.parametrize("damage,needle,via_cli", [
    ("truncate-model", "truncated", True),
    ("flip-byte", "sha256", False),
    ("no-manifest", "no manifest.json", False),
    ("bad-json", "not valid JSON", False),
    ("not-a-run", "no such run directory", True),
    ("other-version", "package versions", False),
])
def test_damaged_run_directories_are_refused_clearly(tmp_path, work, unfinished_run, damage, needle, via_cli):
    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    model_file = next(p for p in (run_dir / "model").iterdir() if p.is_file())
    if damage == "truncate-model":
        model_file.write_bytes(model_file.read_bytes()[:10])
    elif damage == "flip-byte":
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model_file.write_bytes(bytes(data))
    elif damage == "no-manifest":
        (run_dir / "manifest.json").unlink()
    elif damage == "bad-json":
        (run_dir / "manifest.json").write_text("{oops")
    elif damage == "other-version":
        man = json.loads((run_dir / "manifest.json").read_text())
        man["package"]["xgboost"] = "0.90"
        (run_dir / "manifest.json").write_text(json.dumps(man))
    elif damage == "not-a-run":
        run_dir = tmp_path / "missing"
    before = _contents(run_dir)
    if via_cli:
        out = cli("train.py", [f"resume={run_dir}"])
        assert out.returncode == 2, out.stderr
        assert needle in out.stderr and "Traceback" not in out.stderr
    else:  # a KaaykoError: train.py prints its paragraph and exits 2
        with pytest.raises(KaaykoError, match=needle):
            resume_in_process(work, run_dir)
    assert _contents(run_dir) == before  # a refused resume changes nothing


def test_completed_cv_folds_are_never_refit(work, caplog):
    caplog.set_level("INFO")
    run_dir = crashed_run(work, "cv", ["model=ridge", "evaluation.cv_folds=3"], "cv-fold-1")
    folds_before = manifest(run_dir)["stages"]["fit"]["detail"]["cv_folds"]
    assert [f["fold"] for f in folds_before] == [0, 1]
    resume_in_process(work, run_dir)
    cv = json.loads((run_dir / "report.json").read_text())["cv"]
    assert [f["fold"] for f in cv["folds"]] == [0, 1, 2]
    assert cv["folds"][:2] == folds_before
    log = caplog.text
    assert log.count("cv: fold 1/3: fitting") == 1 and log.count("cv: fold 2/3: fitting") == 1
    assert "fold 1/3 already done" in log and "fold 2/3 already done" in log


@pytest.mark.parametrize("overrides", [
    [f"model={m}"] for m in ("xgboost", "histgb", "random_forest", "extra_trees", "ridge", "svm", "rule", "ensemble")
] + [[f"hparams_search={h}"] for h in ("xgboost", "histgb", "random_forest")] + [
    ["experiment=quick", "data=kaayko_csv", "data.path=tests/data/kaayko_sample", "model.params.learning_rate=1e-3"],
])
def test_the_saved_config_round_trips_to_the_hash_a_start_records_without_reading_it(overrides):
    # a start records the composed config's hash as the saved file's (runner._saved_config_hash does not parse
    # the YAML Hydra just wrote from it); that holds only if the YAML round trip keeps every value
    from omegaconf import OmegaConf

    cfg = compose_train(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    assert pipeline.config_hash(OmegaConf.create(OmegaConf.to_yaml(cfg))) == pipeline.config_hash(cfg)


def test_a_start_does_not_read_back_the_config_hydra_saved_and_a_resume_verifies_it(work, monkeypatch):
    from omegaconf import OmegaConf

    loaded = []
    real = OmegaConf.load
    monkeypatch.setattr(OmegaConf, "load", lambda f, *a, **k: (loaded.append(str(f)), real(f, *a, **k))[1])
    _, run_dir = train_in_process(work, ["model=rule"], name="saved-hash")
    assert not [f for f in loaded if f.endswith("config.yaml")]
    recorded = manifest(run_dir)["config"]
    assert recorded["saved_hash"] == pipeline.config_hash(real(run_dir / ".hydra" / "config.yaml"))
    from kaayko_exp.training.runner import _load_saved_config

    _load_saved_config(RunDir.open(run_dir))  # a resume's check accepts it


def _dataset_detail(run_dir, edit):
    """Edit the dataset stage's detail in a run's manifest (as a run recorded by another version would hold)."""
    man = json.loads((run_dir / "manifest.json").read_text())
    edit(man["stages"]["dataset"]["detail"])
    (run_dir / "manifest.json").write_text(json.dumps(man))


def test_a_resume_on_a_dataset_with_another_content_hash_is_refused(tmp_path, work, unfinished_run):
    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    _dataset_detail(run_dir, lambda d: d.update(frame_sha256="0" * 64))
    before = _contents(run_dir)
    with pytest.raises(KaaykoError, match="differs from the one the run started with"):
        resume_in_process(work, run_dir)
    assert _contents(run_dir) == before


def test_a_run_that_recorded_the_former_row_hash_still_resumes(tmp_path, work, unfinished_run):
    """Runs started before the column hash recorded pandas' row hashes (no "frame_hash" key): a resume checks
    the dataset that way, so an unchanged dataset is accepted."""
    import hashlib

    import pandas as pd

    from kaayko_exp.data import load_dataset

    run_dir = tmp_path / "run"
    shutil.copytree(unfinished_run, run_dir)
    cfg = compose_train([*FAST, f"cache_dir={work / 'cache'}", "model=ridge"])
    frame, _ = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
    row_hash = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    assert manifest(run_dir)["stages"]["dataset"]["detail"]["frame_sha256"] != row_hash  # the new scheme

    def to_former(detail):
        detail.pop("frame_hash")
        detail["frame_sha256"] = row_hash

    _dataset_detail(run_dir, to_former)
    resume_in_process(work, run_dir)
    assert manifest(run_dir)["status"] == "completed"
