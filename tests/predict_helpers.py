"""One tiny trained run shared by the prediction tests (trained once per pytest session)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

_CACHE: dict[str, Path] = {}

# small but real: synthetic data, xgboost, the kaayko safety layer
TRAIN_OVERRIDES = ["model=xgboost", "model.params.n_estimators=30", "checkpointing=off"]


def trained_run(tmp_path_factory) -> Path:
    """A completed run directory (do not modify it: use :func:`copy_run`)."""
    if "run" not in _CACHE:
        from runhelpers import train_in_process

        base = tmp_path_factory.mktemp("predict_run")
        _, run_dir = train_in_process(base, TRAIN_OVERRIDES, name="run")
        _CACHE["run"] = run_dir
    return _CACHE["run"]


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
    out = {}
    for k, v in frame.iloc[i].items():
        if k in ("prediction", "paddle_score", "skill_level"):
            continue
        if hasattr(v, "strftime"):
            v = v.strftime("%Y-%m-%d %H:%M")
        elif hasattr(v, "item"):
            v = v.item()
        out[k] = v
    return out
