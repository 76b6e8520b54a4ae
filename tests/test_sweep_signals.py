"""Ctrl-C / SIGTERM sent to a real ``python train.py -m`` sweep (issue 16, item 6), and a config error inside
one trial (item 7).

The trial runs in a worker thread of the sweep process, where no signal handler runs: the sweeper's main
thread catches the signal and the run's stop callback polls its flag, so the trial checkpoints and stops at
its next round, its run says ``interrupted``, the study trial is FAIL and queued again, the sweep prints one
line and exits 128 + the signal. ``resume=<sweep dir>`` then continues that trial from its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train.py")
SWEEP = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=1", "hydra.sweeper.write_plots=false",
         "sample_size=tiny", "model.params.n_estimators=600", "plots=false", "hydra.sweep.dir=sweep",
         "model.params.max_depth=choice(3)", "evaluation.permutation_repeats=1"]
ROUND = re.compile(r"fit: round (\d+)/600")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _wait_for(condition, what: str, proc: subprocess.Popen, deadline_s: float = 120.0):
    end = time.monotonic() + deadline_s
    while True:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _rounds(log: Path) -> list[int]:
    try:
        return [int(m) for m in ROUND.findall(log.read_text())]
    except OSError:
        return []


def _study(sweep: Path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(sweep / "optuna.journal")))
    return optuna.load_study(study_name="train", storage=storage)


@pytest.mark.parametrize("sig", [
    signal.SIGINT,
    pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_a_sweep_checkpoints_the_trial_exits_and_the_resume_reruns_it(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, TRAIN, *SWEEP], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        log = tmp_path / "sweep" / "0" / "train.log"
        _wait_for(lambda: _rounds(log), "a boosting round in the trial's train.log", proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    name = signal.Signals(sig).name
    assert proc.returncode == 128 + sig, out[-3000:] + err[-3000:]
    assert "Traceback" not in out + err
    # stderr: Optuna's own "[I ...] A new study created" record, then the one line of the stop
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[I ")]
    assert len(lines) == 1 and lines[0].startswith(f"sweep stopped by {name}"), err
    assert "hydra.sweep.dir=" in lines[0]

    run = tmp_path / "sweep" / "0"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    fit_cps = [c for c in manifest["checkpoints"] if c.get("key") == "fit"]
    assert fit_cps, manifest["checkpoints"]
    stopped_at = max(c["done"] for c in fit_cps)
    assert stopped_at < 600  # stopped at a round, not after all of them
    assert max(_rounds(run / "train.log")) <= stopped_at  # no round logged after the checkpoint

    study = _study(tmp_path / "sweep")
    first = study.trials[0]
    assert first.state.name == "FAIL" and first.system_attrs["failure"] == f"interrupted by {name}"
    queued = [t for t in study.trials if t.state.name == "WAITING"]
    assert len(queued) == 1 and queued[0].system_attrs["fixed_params"] == first.params
    rows = (tmp_path / "sweep" / "trials.csv").read_text().splitlines()
    assert rows[1].startswith("0,FAIL,") and rows[1].endswith(f"interrupted by {name}")

    resumed = subprocess.run([sys.executable, TRAIN, "resume=sweep"], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = _study(tmp_path / "sweep").trials
    rerun = [t for t in trials if t.user_attrs.get("requeued_from") == first.number]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE" and rerun[0].user_attrs["job_num"] == 0
    assert [t.state.name for t in trials].count("COMPLETE") == 1
    log_text = (run / "train.log").read_text()
    assert "resuming it from its checkpoint" in log_text
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    # the fit continued from the checkpoint: no round at or before it was logged again after the resume
    after = log_text.split("resuming it from its checkpoint", 1)[1]
    assert all(int(r) > stopped_at for r in ROUND.findall(after))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN, *args], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=300)


GRID = ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "model.params.subsample=choice(0.5,1.5)",
        "model.params.max_depth=choice(3,4)", "sample_size=tiny", "model.params.n_estimators=20", "plots=false",
        "hydra.sweeper.write_plots=false", "hydra.sweep.dir=sweep"]
BAD = "model.params.subsample=1.5 must be a share in (0, 1]"


def test_a_config_error_inside_a_trial_fails_that_trial_and_the_sweep_goes_on(tmp_path):
    # issue 16 item 7: the README's grid with one invalid value; 2 of 4 points fail, max_failure_rate allows 2
    r = _run(tmp_path, *GRID, "hydra.sweeper.max_failure_rate=0.5")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    trials = _study(tmp_path / "sweep").trials
    by_state = {s: [t for t in trials if t.state.name == s] for s in ("COMPLETE", "FAIL")}
    assert len(trials) == 4 and len(by_state["COMPLETE"]) == 2 and len(by_state["FAIL"]) == 2
    assert {t.params["model.params.subsample"] for t in by_state["FAIL"]} == {1.5}
    assert all(BAD in t.system_attrs["failure"] for t in by_state["FAIL"])
    import csv

    rows = list(csv.DictReader((tmp_path / "sweep" / "trials.csv").open()))
    assert [BAD in row["failure"] for row in rows] == [t.state.name == "FAIL" for t in trials]


@pytest.mark.slow
def test_config_errors_inside_trials_count_toward_max_failure_rate(tmp_path):
    r = _run(tmp_path, *GRID, "hydra.sweeper.max_failure_rate=0.25")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "2 trial(s) failed (max_failure_rate=0.25 of n_trials=4 allows 1)" in r.stderr and BAD in r.stderr
