"""The evaluate stage: held-out metrics, baselines, per-lake table, importances, external set.

Cost is bounded so it stays seconds next to the fit:

* the held-out test (and validation) metrics, baselines, safety layer and per-lake table use ALL held-out rows;
* in-sample (training-row) scoring uses a seeded sample of at most ``evaluation.in_sample_max_rows`` training
  rows (``null``: all of them); permutation importance a seeded sample of at most
  ``evaluation.permutation_max_rows`` test rows. Both sizes are in ``results["sampling"]`` (and report.json);
* only the columns it reads are taken from the run's frame (:func:`evaluation_columns`); the predictions file
  is written in row chunks straight from the frame, never from a copy of the whole test table.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

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
        "per_lake": per_lake(frame["lake"], y, pred),
        "baselines": baselines(frame, train_mean),
    }


def _unseen_block(spec: Any, frame: pd.DataFrame, what: str) -> dict[str, Any]:
    """Rows of ``frame`` whose category levels the training rows never had; logged as a warning when any."""
    from kaayko_exp.features.spec import unseen

    levels, rows = unseen(spec, frame)
    if rows:
        pairs = [f"{col}={value} ({n:,})" for col, values in levels.items() for value, n in values.items()]
        shown = ", ".join(pairs[:10]) + (f", … ({len(pairs) - 10} more)" if len(pairs) > 10 else "")
        log.warning("%s rows of the %s have a category level not seen in training: %s. They are scored with "
                    "that category treated as missing (NaN code).", f"{rows:,}", what, shown)
    return {"rows": rows, "levels": levels}


def _support_block(support: Any, frame: pd.DataFrame, what: str) -> Any:
    """Rows of ``frame`` outside the training rows' support (counted overall, per check and per lake), or None
    for a run without a support record; logged as a warning when any."""
    if support is None:
        return None
    return extrapolation_note(support.summary(frame, frame["lake"]), len(frame), what)


def extrapolation_note(block: Any, rows: int, what: str) -> Any:
    """``block`` (a support summary of ``rows`` rows, or None), logged as a warning when it flags any row."""
    if block and block["rows"]:
        log.warning("%s of %s rows of the %s lie outside the training rows' support (%s)", f"{block['rows']:,}",
                    f"{rows:,}", what, ", ".join(f"{k}: {v:,}" for k, v in block["checks"].items()))
    return block


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
        "lakes": int(frame["lake"].nunique()),
    }


#: Columns the label rule reads (the rule baseline), see kaayko_exp/data/label.py.
RULE_COLUMNS = ("temp_c", "wind_kph", "precip_mm", "uv", "cloud", "season", "climate_zone")
#: Rows per chunk when writing predictions/test.parquet (bounds the copy the writer holds).
PREDICTION_CHUNK_ROWS = 250_000
#: Default of ``evaluation.in_sample_max_rows`` for configs that predate it.
IN_SAMPLE_MAX_ROWS = 50_000


def evaluation_columns(spec: Any, safety_cfg: Any, available: Any, support_columns: Any = ()) -> list[str]:
    """The frame columns the evaluate stage reads (besides writing the predictions file): ``lake``, the label,
    the safety layer's columns, the label rule's columns (baseline), the categorical feature sources
    (unseen-level check) and the training support's columns; only those present in ``available``."""
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.serving.safety import required_columns

    cats = [f["source"] for f in getattr(spec, "features", []) if f.get("kind") == "categorical"]
    wanted = dict.fromkeys(["lake", TARGET, *required_columns(safety_cfg), *RULE_COLUMNS, *cats, *support_columns])
    have = set(available)
    return [c for c in wanted if c in have]


def _write_predictions(path: Path, frame: pd.DataFrame, rows: np.ndarray, pred: np.ndarray) -> Path:
    """``frame``'s ``rows`` (every column it holds) plus ``prediction`` as parquet, written in chunks of
    :data:`PREDICTION_CHUNK_ROWS` rows straight from ``frame`` (one row group per chunk)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pred = np.asarray(pred, dtype=np.float64)

    def part(lo: int, hi: int) -> pa.Table:
        chunk = frame.iloc[rows[lo:hi]].reset_index(drop=True)
        chunk["prediction"] = pred[lo:hi]
        return pa.Table.from_pandas(chunk, preserve_index=False)

    def write(tmp: Path) -> None:
        first = part(0, min(len(rows), PREDICTION_CHUNK_ROWS))
        with pq.ParquetWriter(tmp, first.schema) as writer:
            writer.write_table(first)
            del first
            for lo in range(PREDICTION_CHUNK_ROWS, len(rows), PREDICTION_CHUNK_ROWS):
                writer.write_table(part(lo, min(len(rows), lo + PREDICTION_CHUNK_ROWS)))

    return atomic.write_with(path, write)


def _report_columns(frame: pd.DataFrame, pred: np.ndarray) -> pd.DataFrame:
    """The predictions file's ``lake``, label and ``prediction`` columns with the values it holds (what the
    report's figures read)."""
    from kaayko_exp.data.schema import TARGET

    return frame[["lake", TARGET]].reset_index(drop=True).assign(prediction=np.asarray(pred, dtype=np.float64))


def _sample(n: int, limit: Any, seed: int, salt: int) -> Optional[np.ndarray]:
    """Positions of at most ``limit`` of ``n`` rows (seeded, ascending); None (all of them) when ``limit`` is None
    or at least ``n``."""
    if limit is None or n <= int(limit):
        return None
    rng = np.random.default_rng([int(seed), salt])
    return np.sort(rng.choice(n, size=max(int(limit), 0), replace=False))


def _in_sample_block(ctx: Any, train_idx: np.ndarray) -> dict[str, Any]:
    """Metrics on (a seeded sample of) the training rows, with the predictions the fit left for them when it
    did (:func:`~kaayko_exp.training.pipeline.part_predictions`)."""
    from kaayko_exp.evaluation.metrics import metrics
    from kaayko_exp.training.pipeline import part_predictions

    limit = OmegaConf.select(ctx.cfg, "evaluation.in_sample_max_rows", default=IN_SAMPLE_MAX_ROWS)
    positions = _sample(len(train_idx), limit, int(ctx.cfg.seed), 0x75)
    rows = train_idx if positions is None else train_idx[positions]
    sampled = len(rows) < len(train_idx)
    return {
        "n": int(len(rows)),
        "rows": int(len(train_idx)),
        "sampled": sampled,
        "metrics": metrics(ctx.y[rows], part_predictions(ctx, "train", positions)),
        "note": "in-sample (training rows): optimistic, never the headline"
                + (f"; a seeded sample of {len(rows):,} of the {len(train_idx):,} training rows" if sampled else ""),
    }


def evaluate_run(ctx: Any) -> tuple[dict[str, Any], list[Path]]:
    from kaayko_exp.evaluation.metrics import metrics, permutation_importance, permutation_rows
    from kaayko_exp.training.objectives import objective_block
    from kaayko_exp.training.pipeline import part_predictions, part_rows
    from kaayko_exp.features.spec import feature_names

    cfg, run, model = ctx.cfg, ctx.run, ctx.model
    train_idx, val_idx, test_idx = ctx.parts["train"], ctx.parts["val"], ctx.parts["test"]
    train_mean = float(np.mean(ctx.y[train_idx]))
    t0 = time.perf_counter()
    parts: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        parts[name] = round(now - since, 3)
        return now

    t = t0
    raw_test = ctx.part_frame("test")  # the raw test rows, in the order of test_idx
    support = getattr(ctx, "support", None)
    test_frame = raw_test[evaluation_columns(ctx.spec, cfg.safety, raw_test.columns,
                                             support.columns if support is not None else ())]
    y_test = ctx.y[test_idx]
    X_test = part_rows(ctx.X, test_idx)  # the test rows' block of the matrix (a view)
    test_pred = model.predict(X_test)
    t = lap("test_predict", t)
    results: dict[str, Any] = {"test": _scored_block(test_frame, y_test, test_pred, train_mean, cfg.safety)}
    results["test"]["unseen_levels"] = _unseen_block(ctx.spec, test_frame, "test set")
    results["test"]["extrapolation"] = _support_block(support, test_frame, "test set")
    results["test_set"] = _test_set_block(run.path, test_frame, y_test)
    del test_frame
    t = lap("test_metrics", t)
    log.info("evaluate: test rmse %.4f, class accuracy %.3f (%s rows)",
             results["test"]["metrics"]["rmse"], results["test"]["metrics"]["class_accuracy"], f"{len(test_idx):,}")
    if len(val_idx):
        val_pred = part_predictions(ctx, "val")
        results["val"] = {"n": int(len(val_idx)), "metrics": metrics(ctx.y[val_idx], val_pred)}
    t = lap("val", t)
    results["train_in_sample"] = _in_sample_block(ctx, train_idx)
    t = lap("train_in_sample", t)
    results["cv"] = run.stage("fit")["detail"].get("cv")
    names = feature_names(ctx.spec)
    max_rows, repeats = int(cfg.evaluation.permutation_max_rows), int(cfg.evaluation.permutation_repeats)
    results["importance"] = {
        "model": model.feature_importance(),
        "permutation": permutation_importance(model, X_test, y_test, names, max_rows=max_rows,
                                              repeats=repeats, seed=int(cfg.seed)),
        "permutation_rows": permutation_rows(len(test_idx), max_rows),
        "permutation_repeats": repeats,
    }
    del X_test
    t = lap("permutation_importance", t)
    files = [_write_predictions(run.path / "predictions" / "test.parquet", raw_test,
                                    np.arange(len(raw_test)), test_pred)]
    ctx.test_predictions = _report_columns(raw_test, test_pred)
    t = lap("predictions_file", t)
    results["sampling"] = {
        "train_in_sample": {"rows": results["train_in_sample"]["n"], "of": int(len(train_idx))},
        "permutation_importance": {"rows": results["importance"]["permutation_rows"], "of": int(len(test_idx)),
                                   "repeats": repeats, "seed": int(cfg.seed)},
    }
    if cfg.evaluation.external:
        results["external"] = _external(ctx, cfg.evaluation.external, train_mean)
        t = lap("external", t)
    results["objective"] = objective_block(cfg, results)
    results["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    results["evaluate_parts_seconds"] = parts
    return results, files


def _external(ctx: Any, path: str, train_mean: float) -> dict[str, Any]:
    from kaayko_exp.data import read_table
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import transform

    frame = read_table(path, require_target=True)
    pred = ctx.model.predict(transform(ctx.spec, frame))
    block = _scored_block(frame, frame[TARGET].to_numpy(dtype=np.float64), pred, train_mean, ctx.cfg.safety)
    block["unseen_levels"] = _unseen_block(ctx.spec, frame, f"external set {path}")
    block["extrapolation"] = _support_block(getattr(ctx, "support", None), frame, f"external set {path}")
    log.info("evaluate: external set %s: rmse %.4f on %s rows", path, block["metrics"]["rmse"], f"{len(frame):,}")
    return {"path": str(path), **block}
