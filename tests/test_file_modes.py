"""Files and directories kaayko-exp writes get the modes the umask gives (0644 / 0755 under umask 022),
so a teammate, a dashboard or a web server running as another user can read runs, sweeps and reports."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from runhelpers import ROOT, cli

from hydra_plugins.optuna5_sweeper._outputs import atomic_write
from kaayko_exp import atomic


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                     (0o002, 0o664, 0o775)], ids=["022", "077", "002"])
def test_the_atomic_writers_respect_the_umask(tmp_path, mask, file_mode, dir_mode):
    with umask(mask):
        written = [atomic.write_bytes(tmp_path / "a.bin", b"x"), atomic.write_json(tmp_path / "b.json", {"a": 1}),
                   atomic.write_with(tmp_path / "c.txt", lambda tmp: tmp.write_text("c"))]
        atomic_write(tmp_path / "sweep" / "trials.csv", b"number\n")  # the sweeper plugin's own writer
        written.append(tmp_path / "sweep" / "trials.csv")
        made_dir = atomic.fresh_path(tmp_path, ".ckpt.", directory=True)
    assert {p.name: _mode(p) for p in written} == {p.name: file_mode for p in written}
    assert _mode(made_dir) == dir_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.bin", "b.json", "c.txt", "sweep", made_dir.name])


def test_a_sweep_its_runs_the_cache_and_the_comparison_report_are_readable_by_others(tmp_path):
    """A real sweep (checkpoints, models, reports, the four sweep outputs, multirun.yaml), its dataset cache and
    compare's HTML report, all written under umask 022: no file is private to its owner."""
    sweep, cache, report = tmp_path / "sweep", tmp_path / "cache", tmp_path / "report"
    with umask(0o022):  # inherited by the child processes
        out = cli("train.py", ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                               "model.params.max_depth=int(interval(3,6))", "sample_size=tiny", "n_jobs=1",
                               "plots=false", "model.params.n_estimators=20", "checkpointing.every=5",
                               "evaluation.permutation_repeats=1", f"cache_dir={cache}", f"hydra.sweep.dir={sweep}"],
                  cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        compare = subprocess.run([sys.executable, "-m", "kaayko_exp.compare", str(sweep), "--report", str(report)],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=300,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert compare.returncode == 0, compare.stderr[-3000:]
    files = [p for root in (sweep, cache, report) for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"multirun.yaml", "sweep.json", "trials.csv", "optimization_results.yaml", "manifest.json",
            "report.json", "model.json", "comparison.html"} <= names
    assert any(p.suffix == ".parquet" for p in cache.rglob("*")) and any("checkpoints" in p.parts for p in files)
    private = sorted(f"{oct(_mode(p))} {p.relative_to(tmp_path)}" for p in files if _mode(p) != 0o644)
    assert private == []
    dirs = [p for root in (sweep, cache, report) for p in root.rglob("*") if p.is_dir()]
    assert sorted(f"{oct(_mode(p))} {p.relative_to(tmp_path)}" for p in dirs if _mode(p) != 0o755) == []
