"""A finished plain ``python train.py`` run exits without the interpreter's teardown, and loses nothing by it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runhelpers import ROOT

#: train.py run as __main__ under a marker whose finaliser runs only in the interpreter's teardown, and an
#: atexit handler (registered before the run, so it would run after the run's own handlers)
WRAPPER = """
import atexit, runpy, sys
class Marker:
    def __del__(self):
        sys.stdout.write("TEARDOWN\\n")
        sys.stdout.flush()
marker = Marker()
atexit.register(lambda: print("ATEXIT", flush=True))
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _train(args):
    return subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"}, timeout=300)


def test_a_finished_run_skips_the_teardown_but_runs_atexit_and_flushes_everything(tmp_path):
    run = tmp_path / "run"
    out = _train(["model=rule", "sample_size=tiny", "plots=false", f"cache_dir={tmp_path / 'cache'}",
                  f"hydra.run.dir={run}"])
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "TEARDOWN" not in lines  # the objects were not destroyed one by one
    assert lines[-1] == "ATEXIT" and f"run directory: {run}" in lines  # handlers ran, stdout was flushed
    assert json.loads((run / "manifest.json").read_text())["status"] == "completed"
    log = (run / "train.log").read_text().splitlines()  # the last record, the results table, reached the file
    assert any("results (" in line for line in log[-5:]) and log[-1].startswith("baseline: constant_mean")


def test_a_refused_run_exits_the_ordinary_way(tmp_path):
    out = _train(["model=rule", "sample_size=tiny", "seed=-1", f"cache_dir={tmp_path / 'cache'}",
                  f"hydra.run.dir={tmp_path / 'run'}"])
    assert out.returncode == 2 and "seed=-1" in out.stderr
    assert "TEARDOWN" in out.stdout.splitlines() and "ATEXIT" in out.stdout.splitlines()


#: train.py as __main__ with os._exit reporting that it was called (a sweep's process leaves no object whose
#: finaliser would show the teardown: the marker above cannot tell there)
EXIT_WRAPPER = """
import atexit, os, runpy, sys
_exit = os._exit
def reporting_exit(code):
    sys.stdout.write("NO TEARDOWN\\n")
    sys.stdout.flush()
    _exit(code)
os._exit = reporting_exit
atexit.register(lambda: print("ATEXIT", flush=True))
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _sweep(args):
    return subprocess.run([sys.executable, "-c", EXIT_WRAPPER, "-m", "hparams_search=xgboost",
                           "hydra.sweeper.n_trials=2", "sample_size=tiny", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "HYDRA_FULL_ERROR": "0"}, timeout=300)


def test_a_finished_in_process_sweep_skips_the_teardown_and_keeps_its_files(tmp_path):
    sweep = tmp_path / "sweep"
    out = _sweep(["model.params.n_estimators=5", "plots=false", "hydra.sweeper.write_plots=false",
                  f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[-2:] == ["ATEXIT", "NO TEARDOWN"]  # handlers ran first, then os._exit
    trials = json.loads((sweep / "sweep.json").read_text())["trials"]  # the sweeper's last files were written
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    assert (sweep / "optimization_results.yaml").is_file()
    for t in trials:
        assert json.loads((sweep / t["run_dir"] / "manifest.json").read_text())["status"] == "completed"


def test_a_failed_sweep_exits_the_ordinary_way(tmp_path):
    out = _sweep(["seed=-1", f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert out.returncode != 0
    assert "ATEXIT" in out.stdout.splitlines() and "NO TEARDOWN" not in out.stdout
