"""One tiny trained run shared by the prediction tests (trained once per pytest session)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from kaayko_exp.serving.inputs import request_from_row

_CACHE: dict[str, Path] = {}
CONF = Path(__file__).resolve().parents[1] / "conf"
FAST = ["sample_size=tiny", "plots=false", "evaluation.permutation_repeats=1", "evaluation.permutation_max_rows=500"]

# small but real: synthetic data, xgboost, the kaayko safety layer
TRAIN_OVERRIDES = ["model=xgboost", "model.params.n_estimators=30", "checkpointing=off"]


def trained_run(tmp_path_factory) -> Path:
    """A completed run directory (do not modify it: use :func:`copy_run`)."""
    if "run" not in _CACHE:
        base = tmp_path_factory.mktemp("predict_run")
        _CACHE["run"] = train(base, TRAIN_OVERRIDES)
    return _CACHE["run"]


# Shared fixtures: import them into a test module (`from predict_helpers import predictor, run_dir`).

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(run_dir):
    from kaayko_exp import Predictor

    return Predictor.load(run_dir)


def train(base: Path, overrides: list[str]) -> Path:
    """Train in this process exactly as ``python train.py`` would; return the run directory."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict, read_write

    import kaayko_exp.config  # noqa: F401  (registers the schemas)
    from kaayko_exp.training.runner import start

    overrides = [*FAST, f"cache_dir={base / 'cache'}", *overrides]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and v}
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    run_dir = base / "run"
    start(cfg, run_dir, choices, overrides)
    return run_dir


def copy_run(run_dir: Path, dest: Path) -> Path:
    target = dest / "copy"
    shutil.copytree(run_dir, target)
    return target


def held_out(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(run_dir) / "predictions" / "test.parquet")


def edit_manifest(run_dir: Path, edit) -> None:
    path = Path(run_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def row_dict(frame: pd.DataFrame, i: int) -> dict:
    """Row ``i`` as a JSON-like request dict (plain Python values, datetime as text)."""
    return request_from_row(frame.iloc[i])


@contextmanager
def served(run_dir: Path):
    """``python predict.py run=<run_dir> serve.port=0`` as a child process; yields the port it serves on."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(root / "predict.py"), f"run={run_dir}", "serve.port=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=120)
        assert "Serving run" in line, line
        yield int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
