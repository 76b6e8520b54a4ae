"""Start-up paths import no ML library (issue 11, part 3): behaviour checked with ``python -X importtime``.

Timing against a minimal Hydra app lives in bench/bench_startup.py, never here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runhelpers import ROOT

#: packages that must stay off the --help / --cfg job paths
HEAVY = {"xgboost", "sklearn", "scipy", "numpy", "pandas", "pyarrow", "optuna", "matplotlib", "skops",
         "threadpoolctl", "sqlalchemy", "waitress", "dask", "distributed"}


def imported_packages(args: list[str]) -> set[str]:
    """Top-level packages a ``python -X importtime <args>`` run from the repository root imports."""
    out = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "HYDRA_FULL_ERROR": "0"}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "hydra" in names  # the parse found the import lines
    return names


@pytest.mark.parametrize("args", [
    ["train.py", "--help"],
    ["train.py", "--cfg", "job"],
    ["train.py", "model=svm", "sample_size=large", "--cfg", "job"],
    ["train.py", "backend=dask", "backend.n_workers=4", "--cfg", "job"],
    ["predict.py", "backend=dask", "--cfg", "job"],
    ["predict.py", "--help"],
])
def test_entry_points_import_no_ml_library(args):
    assert imported_packages(args) & HEAVY == set()


def test_hydra_plugin_discovery_leaves_optuna_unimported():
    # Hydra imports every module under hydra_plugins/ on start; the Optuna sweeper must defer optuna itself.
    code = ("import sys\n"
            "from hydra.core.plugins import Plugins\n"
            "from hydra.plugins.sweeper import Sweeper\n"
            "names = [c.__name__ for c in Plugins.instance().discover(Sweeper)]\n"
            "assert 'OptunaSweeper' in names, names\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert set(out.stdout.split()) & HEAVY == set()
