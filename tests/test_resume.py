"""Kill harness: SIGKILL `train.py` at chosen points, resume, and get the uninterrupted answer byte for byte."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from runhelpers import FAST, cli, held_out_predictions, manifest

XGB = ["model=xgboost", "model.params.n_estimators=60", "model.params.subsample=0.8",
       "model.params.colsample_bytree=0.8", "checkpointing.every=10"]
RF = ["model=random_forest", "model.params.n_estimators=30", "checkpointing.every=10"]


def _train(tmp_path, name, args, kill_at=None):
    run_dir = tmp_path / name
    env = {"KAAYKO_KILL_AT": kill_at} if kill_at else {}
    out = cli("train.py", [*FAST, *args, f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}"], env=env)
    return run_dir, out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    refs = {}
    for name, args in (("xgb", XGB), ("rf", RF)):
        run_dir, out = _train(tmp, name, args)
        assert out.returncode == 0, out.stderr
        refs[name] = held_out_predictions(run_dir).to_numpy()
    return refs


@pytest.mark.parametrize("model,kill_at", [
    ("xgb", "stage-dataset-start"),
    ("xgb", "stage-split-before-done"),
    ("xgb", "fit:35"),               # between checkpoints: rounds 31-35 are redone
    ("xgb", "checkpoint-write"),     # torn checkpoint directory
    ("xgb", "checkpoint-before-manifest"),
    ("xgb", "stage-evaluate-start"),
    ("xgb", "stage-report-before-done"),
    ("rf", "fit:20"),
])
def test_kill_and_resume_gives_identical_predictions(tmp_path, reference, model, kill_at):
    args = XGB if model == "xgb" else RF
    run_dir, out = _train(tmp_path, "run", args, kill_at=kill_at)
    assert out.returncode == -9, out.stderr
    assert manifest(run_dir)["status"] == "running"  # the killed owner never got to say otherwise
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert [e["event"] for e in man["events"]].count("resume") == 1
    np.testing.assert_array_equal(held_out_predictions(run_dir).to_numpy(), reference[model])
    assert held_out_predictions(run_dir).to_numpy().tobytes() == reference[model].tobytes()
    log = (run_dir / "train.log").read_text()
    assert log.count("run directory:") >= 2  # appended by the first start and the resume


def test_mid_fit_resume_continues_from_the_checkpoint(tmp_path):
    run_dir, out = _train(tmp_path, "run", XGB, kill_at="fit:45")
    assert out.returncode == -9
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    restores = [e for e in manifest(run_dir)["events"] if e["event"] == "restore"]
    assert restores and restores[0]["done"] == 40


@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_marks_interrupted_and_saves_a_checkpoint(tmp_path, reference, sig, code):
    run_dir, out = _train(tmp_path, "run", XGB, kill_at=f"fit:23@{sig}")
    assert out.returncode == code, out.stderr
    man = manifest(run_dir)
    assert man["status"] == "interrupted"
    assert man["stages"]["fit"]["status"] == "interrupted"
    assert max(c["done"] for c in man["checkpoints"] if c["key"] == "fit") == 24
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(held_out_predictions(run_dir).to_numpy(), reference["xgb"])


def test_resume_refuses_result_changing_overrides_and_accepts_harmless_ones(tmp_path):
    run_dir, out = _train(tmp_path, "run", XGB, kill_at="fit:35")
    out = cli("train.py", [f"resume={run_dir}", "model.params.max_depth=3", "seed=7"])
    assert out.returncode == 2
    assert "model.params.max_depth" in out.stderr and "seed" in out.stderr
    assert manifest(run_dir)["status"] == "running"
    out = cli("train.py", [f"resume={run_dir}", "n_jobs=1"])
    assert out.returncode == 0, out.stderr


def test_resuming_a_completed_run_changes_nothing(tmp_path):
    run_dir, out = _train(tmp_path, "run", ["model=ridge"])
    assert out.returncode == 0
    before = (run_dir / "manifest.json").read_bytes()
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0
    assert "already complete" in out.stdout
    assert (run_dir / "manifest.json").read_bytes() == before


def _contents(run_dir):
    """Every file of a run directory but its log (a refused resume logs why)."""
    if not run_dir.exists():
        return {}
    return {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != "train.log"}


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory):
    """A run killed just before its report: fit and evaluate artifacts are on disk and hashed."""
    tmp = tmp_path_factory.mktemp("unfinished")
    run_dir, out = _train(tmp, "run", ["model=ridge"], kill_at="stage-report-start")
    assert out.returncode == -9
    return run_dir


@pytest.mark.parametrize("damage,needle", [
    ("truncate-model", "truncated"),
    ("flip-byte", "sha256"),
    ("no-manifest", "no manifest.json"),
    ("bad-json", "not valid JSON"),
    ("not-a-run", "no such run directory"),
    ("other-version", "package versions"),
])
def test_damaged_run_directories_are_refused_clearly(tmp_path, unfinished_run, damage, needle):
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
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert _contents(run_dir) == before  # a refused resume changes nothing


def test_completed_cv_folds_are_never_refit(tmp_path):
    args = ["model=ridge", "evaluation.cv_folds=3"]
    run_dir, out = _train(tmp_path, "run", args, kill_at="cv-fold-1")
    assert out.returncode == -9
    folds_before = manifest(run_dir)["stages"]["fit"]["detail"]["cv_folds"]
    assert [f["fold"] for f in folds_before] == [0, 1]
    out = cli("train.py", [f"resume={run_dir}"])
    assert out.returncode == 0, out.stderr
    cv = json.loads((run_dir / "report.json").read_text())["cv"]
    assert [f["fold"] for f in cv["folds"]] == [0, 1, 2]
    assert cv["folds"][:2] == folds_before
    log = (run_dir / "train.log").read_text()
    assert log.count("cv: fold 1/3: fitting") == 1 and log.count("cv: fold 2/3: fitting") == 1
    assert "fold 1/3 already done" in log and "fold 2/3 already done" in log
