"""The evaluate stage: held-out metrics, baselines, per-lake table, importances, external set."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaayko_exp import atomic

log = logging.getLogger(__name__)


def _scored_block(frame: pd.DataFrame, y: np.ndarray, pred: np.ndarray, train_mean: float,
                  safety_cfg: Any) -> dict[str, Any]:
    """Metrics, per-lake table, baselines and post-safety metrics for one labelled set."""
    from kaayko_exp.evaluation.metrics import baselines, metrics, per_lake
    from kaayko_exp.serving.safety import layer

    safety = layer(safety_cfg)
    applied = safety.apply_arrays(frame, pred, details=False)
    return {
        "n": int(len(y)),
        "metrics": metrics(y, pred),
        "metrics_after_safety": metrics(y, applied.paddle_score),
        "safety": safety.summary(applied),  # name, rows_changed_share, per_rule share of rows matched
        "per_lake": per_lake(frame["lake"].astype(str).to_numpy(), y, pred),
        "baselines": baselines(frame, train_mean),
    }


def _unseen_block(spec: Any, frame: pd.DataFrame, what: str) -> dict[str, Any]:
    """Rows of ``frame`` whose category levels the training rows never had; logged as a warning when any."""
    from kaayko_exp.features.spec import unseen_levels, unseen_rows

    levels = unseen_levels(spec, frame)
    rows = unseen_rows(spec, frame) if levels else 0
    if rows:
        pairs = [f"{col}={value} ({n:,})" for col, values in levels.items() for value, n in values.items()]
        shown = ", ".join(pairs[:10]) + (f", … ({len(pairs) - 10} more)" if len(pairs) > 10 else "")
        log.warning("%s rows of the %s have a category level not seen in training: %s. They are scored with "
                    "that category treated as missing (NaN code).", f"{rows:,}", what, shown)
    return {"rows": rows, "levels": levels}


def _test_set_block(run_path: Path, frame: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """What identifies the held-out rows, so tools check "same test set" instead of assuming it: the row count,
    sha256 of the split assignment array's bytes (``split/assignment.npy``), sha256 of the held-out labels as
    float64 bytes in row order, and the number of held-out lakes."""
    import hashlib

    codes = np.load(run_path / "split" / "assignment.npy", allow_pickle=False)
    labels = np.ascontiguousarray(np.asarray(y, dtype=np.float64))
    return {
        "n": int(len(labels)),
        "split_sha256": hashlib.sha256(np.ascontiguousarray(codes).tobytes()).hexdigest(),
        "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
        "lakes": int(frame["lake"].astype(str).nunique()),
    }


def _write_predictions(path: Path, frame: pd.DataFrame, pred: np.ndarray) -> Path:
    out = frame.reset_index(drop=True).copy()
    out["prediction"] = np.asarray(pred, dtype=np.float64)

    def write(tmp: Path) -> None:
        out.to_parquet(tmp, index=False)

    return atomic.write_with(path, write)


def evaluate_run(ctx: Any) -> tuple[dict[str, Any], list[Path]]:
    from kaayko_exp.evaluation.metrics import (
        metrics,
        objective_value,
        permutation_importance,
    )
    from kaayko_exp.features.spec import feature_names

    cfg, run, model = ctx.cfg, ctx.run, ctx.model
    train_idx, val_idx, test_idx = ctx.parts["train"], ctx.parts["val"], ctx.parts["test"]
    train_mean = float(np.mean(ctx.y[train_idx]))
    t0 = time.perf_counter()
    test_frame = ctx.part_frame("test")
    test_pred = model.predict(ctx.X[test_idx])
    results: dict[str, Any] = {"test": _scored_block(test_frame, ctx.y[test_idx], test_pred, train_mean, cfg.safety)}
    results["test"]["unseen_levels"] = _unseen_block(ctx.spec, test_frame, "test set")
    results["test_set"] = _test_set_block(run.path, test_frame, ctx.y[test_idx])
    log.info("evaluate: test rmse %.4f, class accuracy %.3f (%s rows)",
             results["test"]["metrics"]["rmse"], results["test"]["metrics"]["class_accuracy"], f"{len(test_idx):,}")
    if len(val_idx):
        results["val"] = {"n": int(len(val_idx)), "metrics": metrics(ctx.y[val_idx], model.predict(ctx.X[val_idx]))}
    results["train_in_sample"] = {
        "n": int(len(train_idx)),
        "metrics": metrics(ctx.y[train_idx], model.predict(ctx.X[train_idx])),
        "note": "in-sample (training rows): optimistic, never the headline",
    }
    results["cv"] = run.stage("fit")["detail"].get("cv")
    names = feature_names(ctx.spec)
    results["importance"] = {
        "model": model.feature_importance(),
        "permutation": permutation_importance(
            model, ctx.X[test_idx], ctx.y[test_idx], names, max_rows=int(cfg.evaluation.permutation_max_rows),
            repeats=int(cfg.evaluation.permutation_repeats), seed=int(cfg.seed)),
    }
    files = [_write_predictions(run.path / "predictions" / "test.parquet", test_frame, test_pred)]
    if cfg.evaluation.external:
        results["external"] = _external(ctx, cfg.evaluation.external, train_mean)
    results["objective"] = {"name": cfg.evaluation.objective}
    results["objective"]["value"] = objective_value(results, cfg.evaluation.objective)
    results["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    return results, files


def _external(ctx: Any, path: str, train_mean: float) -> dict[str, Any]:
    from kaayko_exp.data import read_table
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import transform

    frame = read_table(path, require_target=True)
    pred = ctx.model.predict(transform(ctx.spec, frame))
    block = _scored_block(frame, frame[TARGET].to_numpy(dtype=np.float64), pred, train_mean, ctx.cfg.safety)
    block["unseen_levels"] = _unseen_block(ctx.spec, frame, f"external set {path}")
    log.info("evaluate: external set %s: rmse %.4f on %s rows", path, block["metrics"]["rmse"], f"{len(frame):,}")
    return {"path": str(path), **block}
