"""Helpers for tests that train: in-process composition and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

import kaayko_exp.config  # noqa: F401  (registers the config schemas)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
FAST = ["sample_size=tiny", "n_jobs=1", "plots=false", "evaluation.permutation_repeats=1", "evaluation.permutation_max_rows=500"]


def compose_train(overrides: list[str]):
    """The composed train config (with its hydra node) for ``overrides``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def train_in_process(tmp_path: Path, overrides: list[str], name: str = "run"):
    """Train like ``python train.py`` but in this process; returns (objective, run dir)."""
    from kaayko_exp.training.runner import start

    cfg = compose_train([*FAST, f"cache_dir={tmp_path / 'cache'}", *overrides])
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra/") and "@" not in k and v}
    with open_dict(cfg):
        del cfg["hydra"]
    run_dir = tmp_path / name
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    value = start(cfg, run_dir, choices, overrides)
    return value, run_dir


def cli(script: str, args: list[str], *, env: dict | None = None, cwd: Path | None = None, input: str | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python <script> args`` from the repo root."""
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=full_env, input=input, timeout=timeout)


def report(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "report.json").read_text())


def manifest(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "manifest.json").read_text())


def held_out_predictions(run_dir: Path) -> pd.Series:
    return pd.read_parquet(Path(run_dir) / "predictions" / "test.parquet")["prediction"]


def stop_group(proc: subprocess.Popen) -> None:
    """End a server started with ``start_new_session=True`` and its workers: SIGTERM to its process group, SIGKILL
    after 30 s."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
