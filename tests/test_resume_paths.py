"""Resume as the README writes it (`resume=outputs/<date>/<time>`, relative to the project root), the
settings a resume keeps, and two resumes of one run started at once.

Each real-CLI test runs in its own temporary "project root" (the cwd); train.py is the checkout's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runhelpers import FAST, ROOT, cli, compose_train, held_out_predictions, manifest

XGB = ["model=xgboost", "model.params.n_estimators=60", "model.params.subsample=0.8",
       "model.params.colsample_bytree=0.8", "checkpointing.every=10"]
RUN = "outputs/2025-06-01/12-00-00"


def _train(project: Path, run: str, cache: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    args = [*FAST, *XGB, f"hydra.run.dir={run}", f"cache_dir={cache}"]
    if kill_at:  # tests/kill_train.py: train.py with a fit callback that signals the process at that step
        return cli("tests/kill_train.py", [kill_at, *args], cwd=project)
    return cli("train.py", args, cwd=project)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run's held-out predictions, and a run SIGKILLed mid-fit (after checkpoint 30)."""
    project = tmp_path_factory.mktemp("project")
    cache = tmp_path_factory.mktemp("cache")
    out = _train(project, "outputs/ref", cache)
    assert out.returncode == 0, out.stderr
    out = _train(project, RUN, cache, kill_at="fit:35")
    assert out.returncode == -9, out.stderr
    return held_out_predictions(project / "outputs" / "ref").to_numpy(), project / RUN


def _project_with(killed: Path, project: Path) -> Path:
    shutil.copytree(killed, project / RUN)
    return project / RUN


def test_the_status_hint_pasted_from_the_project_root_finishes_the_run(runs, tmp_path):
    reference, killed = runs
    run_dir = _project_with(killed, tmp_path)
    status = subprocess.run([sys.executable, "-m", "kaayko_exp.runs", "status", RUN], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert status.returncode == 0, status.stderr
    hint = status.stdout.strip().splitlines()[-1]
    assert hint == f"next: python train.py resume={RUN}"
    command = shlex.split(hint.removeprefix("next: "))
    assert command[:2] == ["python", "train.py"]
    out = cli("train.py", command[2:], cwd=tmp_path)  # the checkout's train.py, the hint's arguments
    assert out.returncode == 0, out.stderr
    man = manifest(run_dir)
    assert man["status"] == "completed"
    assert all(not a["path"].startswith("outputs/") for s in man["stages"].values() for a in s["artifacts"])
    assert held_out_predictions(run_dir).to_numpy().tobytes() == reference.tobytes()
    # the run's saved settings, not today's defaults: its cache dir, no plots
    assert not (tmp_path / "outputs" / ".cache").exists()
    assert json.loads((run_dir / "report.json").read_text())["plots"] == []
    assert not (run_dir / "plots").exists()


def test_of_two_resumes_started_at_once_exactly_one_proceeds(runs, tmp_path):
    reference, killed = runs
    run_dir = _project_with(killed, tmp_path)
    log = open(tmp_path / "first.log", "w")
    # the first resume stops itself (SIGSTOP) mid-fit, owning the run; the test continues it later
    first = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kill_train.py"), "fit:40@SIGSTOP", f"resume={RUN}"],
                             cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), (tmp_path / "first.log").read_text()
        before = (run_dir / "manifest.json").read_bytes()
        assert manifest(run_dir)["owner"]["pid"] == first.pid

        second = cli("train.py", [f"resume={RUN}"], cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert "is being written by another live process" in second.stderr and "Traceback" not in second.stderr
        assert (run_dir / "manifest.json").read_bytes() == before  # the refused resume wrote nothing

        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        log.close()
    man = manifest(run_dir)
    assert man["status"] == "completed" and [e["event"] for e in man["events"]].count("resume") == 1
    assert held_out_predictions(run_dir).to_numpy().tobytes() == reference.tobytes()


def test_a_resume_keeps_the_runs_settings_unless_the_command_line_names_them(tmp_path):
    from omegaconf import open_dict

    from kaayko_exp.training.runner import resume_config

    def composed(overrides):
        cfg = compose_train(overrides)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    saved = composed(["n_jobs=1", "plots=false", f"cache_dir={tmp_path}", "checkpointing=frequent"])
    today = composed([f"resume={tmp_path}"])
    assert (today.n_jobs, today.plots, today.cache_dir) == (-1, True, "outputs/.cache")  # the defaults differ
    cfg = resume_config(saved, today, [f"resume={tmp_path}"], tmp_path)
    assert (cfg.n_jobs, cfg.plots, cfg.cache_dir) == (1, False, str(tmp_path))
    assert (cfg.checkpointing.heartbeat_seconds, cfg.checkpointing.keep_last) == (5, 3)
    assert cfg.resume == str(tmp_path)

    given = ["resume=x", "n_jobs=4", "checkpointing.keep_last=7"]
    cfg = resume_config(saved, composed(given), given, tmp_path)
    assert (cfg.n_jobs, cfg.plots, cfg.cache_dir, cfg.checkpointing.keep_last) == (4, False, str(tmp_path), 7)
    assert cfg.checkpointing.every == saved.checkpointing.every == 10
