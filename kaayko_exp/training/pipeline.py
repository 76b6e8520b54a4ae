"""The stage sequence of one training run.

``dataset → split → features → fit → evaluate → report → export`` (:data:`STAGES`,
the authoritative order, stored in each new run's manifest). The split comes
before the features so the feature spec (category levels) is built from the
training rows only. Each stage reads the previous stages' products (kept in a
:class:`Context`) and writes its own into the run directory, recorded in the
manifest. On resume, stages the manifest marks done are not run again: their
products are reloaded from the verified artifacts (the resume verifies every
artifact once, before any stage runs), and a half-finished fit continues from
its last checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from kaayko_exp import atomic
from kaayko_exp.data.support import RUN_FILE
from kaayko_exp.errors import RunDirError
from kaayko_exp.models.callbacks import FitCallback, FitCallbacks
from kaayko_exp.runs.rundir import RunDir
from kaayko_exp.training.callbacks import ProgressLog
from kaayko_exp.training.checkpoints import CheckpointWriter, RunResume
from kaayko_exp.training.interrupts import RunInterrupted, StopSignals, interruptible
from kaayko_exp.training.pruning import (
    PruningReporter,
    is_pruned,
    reporter_for,
    sweep_trial,
)
from kaayko_exp.training.objectives import directions, metric_of, objective_names, task_value
from kaayko_exp.training.validate import check_enough_data
from kaayko_exp.tracking import tracker_for

log = logging.getLogger(__name__)

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

#: The stage sequence of a run, in execution order (stored in each new run's manifest).
STAGES: tuple[str, ...] = ("dataset", "split", "features", "fit", "evaluate", "report", "export")


@dataclass
class Context:
    """In-memory products of the stages of one run."""

    cfg: DictConfig
    run: RunDir
    callbacks: FitCallbacks
    checkpoints: CheckpointWriter
    pruner: Optional[PruningReporter] = None  # only inside an Optuna sweep
    frame: Optional[pd.DataFrame] = None
    info: dict[str, Any] = field(default_factory=dict)
    spec: Any = None
    support: Any = None  # the training rows' support (kaayko_exp.data.support); None in runs that predate it
    X: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    model: Any = None
    results: dict[str, Any] = field(default_factory=dict)
    #: once the model matrix exists, ``frame`` holds only the rows of this part (what evaluate reads)
    frame_part: Optional[str] = None
    lakes: Optional[pd.Series] = None  # every row's lake (the CV folds group by it)
    session: Any = None  # backend=dask: the cluster (kaayko_exp.cluster.session.ClusterSession); None: local
    #: in a sweep process: the key of the data-preparation inputs and, when an earlier trial built them, its
    #: products (training.prepared); the three stages' details, kept for the next trial
    prep_key: Optional[str] = None
    reused: Any = None
    prep_detail: dict[str, Any] = field(default_factory=dict)
    split_codes: Optional[np.ndarray] = None
    cluster: Any = None  # backend=dask: the stages' lazy collections on it (kaayko_exp.cluster.stages)
    #: the test rows' lake, label and prediction as the evaluate stage wrote them to predictions/test.parquet,
    #: when it ran in this process (the report draws from them instead of reading the file back); else None
    test_predictions: Optional[pd.DataFrame] = None

    def part_frame(self, name: str) -> pd.DataFrame:
        """The raw rows of split part ``name`` (index 0..n-1), all columns."""
        if self.frame_part == name:
            return self.frame
        if self.frame_part is not None:
            raise RuntimeError(f"only the {self.frame_part} rows of the frame are kept, not the {name} rows")
        return self.frame.iloc[self.parts[name]].reset_index(drop=True)


# ---------------------------------------------------------------------------- dataset
#: how run_dataset hashes the frame ("frame_hash" in the dataset stage's detail; a run started before it has
#: none and was hashed row by row)
FRAME_HASH = "columns"


def _frame_hash(frame: pd.DataFrame, scheme: str = FRAME_HASH) -> str:
    """sha256 of the frame's content. ``columns``: each column's name, dtype and values (numeric buffers as
    they are, categoricals as codes plus levels, other columns through pandas' row hash), hashed in C with the
    GIL released, so it runs beside the library import of the start-up (training/prefetch.py); ``rows``: the
    former scheme (pandas' row hashes), for resuming runs that recorded it."""
    if scheme == "rows":
        return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
    digest = hashlib.sha256()
    for name, col in frame.items():
        digest.update(f"{name}\0{col.dtype}\0".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            digest.update(repr(col.cat.categories.tolist()).encode())
            values = col.cat.codes.to_numpy()
        else:
            values = col.to_numpy()
            if values.dtype.kind not in "biufcmM":  # objects, strings, nullable extension types
                values = pd.util.hash_pandas_object(col, index=False).to_numpy()
        digest.update(np.ascontiguousarray(values).view(np.uint8))
    return digest.hexdigest()


def _load_frame(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.data import load_dataset

    cfg = ctx.cfg
    frame, info = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
    ctx.frame, ctx.info = frame, info
    return info


def run_dataset(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.training import prepared

    ctx.prep_key = prepared.key_of(ctx.cfg)
    ctx.reused = prepared.get(ctx.prep_key)
    if ctx.reused is not None:  # an earlier trial of this sweep process prepared the same data
        ctx.run.manifest["data"] = copy.deepcopy(ctx.reused.data)
        log.info("dataset: %s rows from %s (prepared by an earlier trial of this sweep)",
                 f"{ctx.reused.data['rows']:,}", ctx.reused.data.get("source"))
        return {**copy.deepcopy(ctx.reused.dataset_detail), "prepared": "reused"}
    info = _load_frame(ctx)
    check_enough_data(ctx.frame, info, ctx.cfg)
    digest = _frame_hash(ctx.frame)
    ctx.run.manifest["data"] = {
        "source": info.get("source"), "path": info.get("path"), "rows": int(len(ctx.frame)),
        "fingerprint": info.get("fingerprint"), "frame_sha256": digest,
    }
    log.info("dataset: %s rows from %s", f"{len(ctx.frame):,}", info.get("source"))
    ctx.prep_detail["dataset"] = {"info": info, "frame_sha256": digest, "frame_hash": FRAME_HASH}
    return ctx.prep_detail["dataset"]


def load_dataset_stage(ctx: Context) -> None:
    _load_frame(ctx)
    detail = ctx.run.stage("dataset")["detail"]
    expected = detail.get("frame_sha256")
    if expected and _frame_hash(ctx.frame, detail.get("frame_hash", "rows")) != expected:
        raise RunDirError(
            f"{ctx.run.path}: the dataset rebuilt for this resume differs from the one the run started with "
            "(its content hash changed: the data files or the generator changed since). Resuming would mix "
            "two datasets, so it is refused. Restore the original data, or start a fresh run."
        )


# ---------------------------------------------------------------------------- split
def run_split(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.features.splits import split_rows

    path = ctx.run.path / "split" / "assignment.npy"
    if ctx.reused is not None:
        _save_codes(path, ctx.reused.split_codes)
        ctx.run.record("split", [path])
        return {**copy.deepcopy(ctx.reused.split_detail), "prepared": "reused"}
    parts = split_rows(ctx.frame, ctx.cfg.split, ctx.cfg.seed)
    codes = np.full(len(ctx.frame), -1, dtype=np.int8)
    for name, code in SPLIT_CODES.items():
        codes[np.asarray(parts[name], dtype=np.int64)] = code
    _save_codes(path, codes)
    ctx.run.record("split", [path])
    ctx.parts = {k: np.asarray(parts[k], dtype=np.int64) for k in SPLIT_CODES}
    sizes = {k: int(len(v)) for k, v in ctx.parts.items()}
    log.info("split: %s (train %s, val %s, test %s rows)", ctx.cfg.split.name,
             f"{sizes['train']:,}", f"{sizes['val']:,}", f"{sizes['test']:,}")
    ctx.split_codes = codes
    ctx.prep_detail["split"] = {"sizes": sizes, "description": parts.get("description", {})}
    return ctx.prep_detail["split"]


def _save_codes(path: Path, codes: np.ndarray) -> None:

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, codes, allow_pickle=False)

    atomic.write_with(path, write)


def load_split(ctx: Context) -> None:
    codes = np.load(ctx.run.path / "split" / "assignment.npy", allow_pickle=False)
    ctx.parts = {k: np.flatnonzero(codes == c) for k, c in SPLIT_CODES.items()}


# ---------------------------------------------------------------------------- features
def _save_features(ctx: Context, path: Path, files: Optional[dict[str, bytes]] = None) -> None:
    """Write the feature spec and the training rows' support (features/support.json) and record both; ``files``
    (run-relative path -> bytes, an earlier trial's same files) are written as they are instead of encoded."""
    if files:
        written = [atomic.write_bytes(ctx.run.path / rel, data) for rel, data in files.items()]
    else:
        written = [ctx.spec.save(path), ctx.support.save(ctx.run.path / RUN_FILE)]
    ctx.run.record("features", written)


def run_features(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.data.support import Support
    from kaayko_exp.features.spec import build_spec, feature_names

    from kaayko_exp.training import prepared

    path = ctx.run.path / "features" / "feature_spec.json"
    if ctx.reused is not None:
        r = ctx.reused
        ctx.spec, ctx.X, ctx.y, ctx.lakes, ctx.parts = r.spec, r.X, r.y, r.lakes, dict(r.parts)
        ctx.frame, ctx.frame_part = r.test_frame.copy(deep=False), "test"
        ctx.support = r.support
        _save_features(ctx, path, r.files)
        return {**copy.deepcopy(r.features_detail), "prepared": "reused"}
    # levels from the training rows only: a category seen only in validation or test lakes is unseen
    train = ctx.frame.iloc[ctx.parts["train"]]
    ctx.spec = build_spec(ctx.cfg.features, train)
    # where the training rows lie, over the columns the model reads: serving warns outside it
    ctx.support = Support.build(train, columns=ctx.spec.required_columns)
    del train
    _save_features(ctx, path)
    _matrix(ctx)
    names = feature_names(ctx.spec)
    log.info("features: %d columns (%s set), category levels from the %s training rows", len(names),
             ctx.cfg.features.name, f"{len(ctx.parts['train']):,}")
    detail = {"n_features": len(names), "names": names}
    if ctx.prep_key is not None and ctx.split_codes is not None and set(ctx.prep_detail) == {"dataset", "split"}:
        prepared.keep(ctx.prep_key, prepared.Prepared(
            data=copy.deepcopy(ctx.run.manifest["data"]), dataset_detail=copy.deepcopy(ctx.prep_detail["dataset"]),
            split_codes=ctx.split_codes, split_detail=copy.deepcopy(ctx.prep_detail["split"]), spec=ctx.spec,
            support=ctx.support, features_detail=copy.deepcopy(detail), X=ctx.X, y=ctx.y, lakes=ctx.lakes,
            test_frame=ctx.frame.copy(deep=False), parts=dict(ctx.parts),
            files={rel: (ctx.run.path / rel).read_bytes() for rel in (ctx.run.rel(path), RUN_FILE)}))
    return detail


def _matrix(ctx: Context) -> None:
    """The model matrix with the rows in part order (train, val, test), so each part is a contiguous block:
    the fit reads views of it, never a copy (the parts' indices are renumbered to match; the split's saved
    assignment keeps the frame's order). Built block by block, so the frame is never copied whole. Then only
    what later stages read stays: the test rows of the frame (evaluate) and every row's lake (CV folds)."""
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import CHUNK_ROWS, transform

    frame, parts = ctx.frame, ctx.parts
    order = np.concatenate([parts[k] for k in SPLIT_CODES])
    # the frame is read in its own order, in slices (views: no per-block copy of every column), and each block's
    # rows are put at their place in part order; rows of no part are left out
    dest = np.full(len(frame), -1, dtype=np.int64)
    dest[order] = np.arange(len(order))
    X = np.empty((len(order), ctx.spec.plan.k), dtype=np.float32)
    for start in range(0, len(frame), CHUNK_ROWS):
        block, to = transform(ctx.spec, frame.iloc[start:start + CHUNK_ROWS]), dest[start:start + CHUNK_ROWS]
        kept = to >= 0
        if kept.all():
            X[to] = block
        else:
            X[to[kept]] = block[kept]
    ctx.X = X
    ctx.y = frame[TARGET].to_numpy(dtype=np.float64)[order]
    ctx.lakes = frame["lake"].iloc[order].reset_index(drop=True)
    ctx.frame = frame.iloc[parts["test"]].reset_index(drop=True)
    ctx.frame_part = "test"
    freed = int(frame.memory_usage(deep=False).sum()) - int(ctx.frame.memory_usage(deep=False).sum())
    table = weakref.ref(frame)
    del frame
    _release_freed_memory(freed, held=table() is not None)
    bounds = np.cumsum([0] + [len(parts[k]) for k in SPLIT_CODES])
    ctx.parts = {k: np.arange(bounds[i], bounds[i + 1], dtype=np.int64) for i, k in enumerate(SPLIT_CODES)}


def part_rows(X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``X[idx]``: a view when ``idx`` is a contiguous ascending run (a part of the matrix), else a copy."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx) and (len(idx) == 1 or bool(np.all(np.diff(idx) == 1))):
        return X[int(idx[0]):int(idx[-1]) + 1]
    return X[idx]


def part_predictions(ctx: Context, name: str, positions: Optional[np.ndarray] = None) -> np.ndarray:
    """The final model's predictions (float64) on part ``name``'s rows, or on those at ``positions`` within the
    part: taken from what the fit left for its training and validation rows (``Model.fit_predictions``: the
    final fit saw exactly ``train`` and ``val``, in order) when it left them, else predicted now."""
    idx = ctx.parts[name]
    kept = getattr(ctx.model, "fit_predictions", {}).get(name)
    if kept is not None and len(kept) == len(idx):
        pred = kept if positions is None else kept[positions]
    else:
        pred = ctx.model.predict(part_rows(ctx.X, idx if positions is None else idx[positions]))
    return np.asarray(pred, dtype=np.float64)  # float64 either way (XGBoost predicts float32)


#: A finished stage's end is written to the manifest (one fsync'd write) at once when the stage is one of
#: :data:`ALWAYS_DURABLE` (a fitted model is never redone after a kill) or when the finished stages not
#: yet on disk took at least this long together; other ends ride on the next save (the next stage's end, a
#: checkpoint, the heartbeat, an interruption, the run's end), so a kill -9 in between redoes at most this much
#: work (those stages run again, as a stage killed before its end does). A sweep trial's quick stages (the
#: data its process prepared once, split, features, report, export) then cost no manifest write of their own.
DURABLE_AFTER_SECONDS = 1.0
ALWAYS_DURABLE = ("fit",)

# Below this many bytes freed, a full garbage collection is skipped: it scans every object of the process (in a
# sweep, the study's and Hydra's too: ~0.1 s a trial) to give back at most this much.
FULL_COLLECT_MIN_BYTES = 32 << 20


def _release_freed_memory(freed_bytes: int, held: bool = True) -> None:
    """Hand the table's freed pages back to the system: arrow's allocator (the cached parquet is read through
    arrow) keeps freed memory for reuse, which the fit would otherwise add its own peak on top of. The full
    collection only when the dropped table is still ``held`` (by a reference cycle: its last reference went and
    it lives on) and ``freed_bytes`` is worth it; a table that went with its last reference (the usual case)
    is freed already, and the collection would scan every object of the process (~0.08 s after the imports of
    an xgboost run) for nothing."""
    import gc
    import sys

    if held and freed_bytes >= FULL_COLLECT_MIN_BYTES:
        gc.collect()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def load_features(ctx: Context) -> None:
    from kaayko_exp.features.spec import FeatureSpec

    ctx.spec = FeatureSpec.load(ctx.run.path / "features" / "feature_spec.json")
    ctx.support = load_support(ctx.run)
    _matrix(ctx)


def load_support(run: RunDir) -> Any:
    """The features stage's support record (verified with the run's artifacts), or None for a run whose
    features stage predates it."""
    from kaayko_exp.data.support import Support

    if not any(a["path"] == RUN_FILE for a in run.stage("features")["artifacts"]):
        log.info("features: this run has no training-support record (it predates it): rows outside the "
                 "training data are not counted or flagged")
        return None
    return Support.load(run.path / RUN_FILE)


# ---------------------------------------------------------------------------- fit
def _fit_one(ctx: Context, train_idx: np.ndarray, val_idx: np.ndarray, key: str, phase: int = 0) -> Any:
    """Fit ``key`` on ``train_idx``; ``phase`` is its place in the pruning step counter (fold i: i,
    the final fit: the number of CV folds) so steps never go back, also on a resume."""
    from kaayko_exp.models import build_model

    model = build_model(ctx.cfg.model, seed=ctx.cfg.seed, n_jobs=ctx.cfg.n_jobs, n_rows=len(train_idx))
    if ctx.pruner is not None:
        ctx.pruner.begin_phase(key, phase, max(1, int(model.steps())))
    X_val = part_rows(ctx.X, val_idx) if len(val_idx) else None
    y_val = ctx.y[val_idx] if len(val_idx) else None
    return model.fit(part_rows(ctx.X, train_idx), ctx.y[train_idx], spec=ctx.spec, callbacks=ctx.callbacks,
                     X_val=X_val, y_val=y_val, key=key)


def _phase_width(ctx: Context) -> int:
    """Steps one fit owns on the pruning step counter: the planned rounds / trees of the configured model
    (the same in every fit of a run and on resume; 1 for one-shot learners and ensembles)."""
    from kaayko_exp.models import build_model

    model = build_model(ctx.cfg.model, seed=ctx.cfg.seed, n_jobs=1, n_rows=max(1, len(ctx.parts["train"])))
    return max(1, int(model.steps()))


def _objective_metric(ctx: Context) -> str:
    return metric_of(objective_names(ctx.cfg)[0])


def _cross_validate(ctx: Context) -> Optional[dict[str, Any]]:
    from kaayko_exp.evaluation.metrics import metrics
    from kaayko_exp.features.splits import cv_folds

    k = int(ctx.cfg.evaluation.cv_folds)
    if k < 2:
        return None
    pool = np.concatenate([ctx.parts["train"], ctx.parts["val"]])
    groups = ctx.lakes.to_numpy()[pool]
    detail = ctx.run.stage("fit")["detail"]
    done = {f["fold"]: f for f in detail.get("cv_folds", [])}
    inner = _fold_validation(ctx, groups)
    for i, (tr, va) in enumerate(cv_folds(groups, k, ctx.cfg.seed)):
        if i in done:
            log.info("cv: fold %d/%d already done (%s)", i + 1, k, "kept from the manifest")
            if ctx.pruner is not None:  # a resumed trial reports the folds it kept, at the same steps
                ctx.pruner.begin_phase(f"cv/fold{i}", i, _phase_width(ctx))
                ctx.pruner.end_phase(done[i]["metrics"].get(_objective_metric(ctx)))
            continue
        fit_rows, stop_rows = inner(tr, i) if inner is not None else (tr, np.empty(0, dtype=np.int64))
        log.info("cv: fold %d/%d: fitting on %s rows%s", i + 1, k, f"{len(fit_rows):,}",
                 f", early stopping on {len(stop_rows):,} rows of other lakes" if len(stop_rows) else "")
        model = _fit_one(ctx, pool[fit_rows], pool[stop_rows], key=f"cv/fold{i}", phase=i)
        m = metrics(ctx.y[pool[va]], model.predict(ctx.X[pool[va]]))
        done[i] = {"fold": i, "metrics": m, "n_train": int(len(fit_rows)), "n_val": int(len(va)),
                   **({"n_early_stopping": int(len(stop_rows))} if len(stop_rows) else {}),
                   **({"rounds": int(model.info["rounds_run"])} if "rounds_run" in model.info else {})}
        ctx.run.update_detail("fit", cv_folds=[done[j] for j in sorted(done)])
        ctx.run.drop_checkpoints(f"cv/fold{i}")
        log.info("cv: fold %d/%d rmse %.4f", i + 1, k, m["rmse"])
        if ctx.pruner is not None:  # after the fold is recorded: a pruned trial keeps its finished folds
            ctx.pruner.end_phase(m.get(_objective_metric(ctx)))
    folds = [done[j] for j in sorted(done)]
    names = folds[0]["metrics"].keys()
    summary = {
        "mean": {n: float(np.mean([f["metrics"][n] for f in folds])) for n in names},
        "std": {n: float(np.std([f["metrics"][n] for f in folds])) for n in names},
    }
    return {"k": k, "folds": folds, **summary}


def _fold_validation(ctx: Context, groups: np.ndarray) -> Optional[Callable[[np.ndarray, int], Any]]:
    """``(fold train positions, fold) -> (fit positions, early-stopping positions)`` when the model stops early
    on validation rows and the run keeps validation lakes (``split.val_fraction``): each CV fold then
    early-stops on a share of its own training lakes, as the final fit does on ``val``; else None."""
    from kaayko_exp.features.splits import fold_validation
    from kaayko_exp.models import build_model

    share = float(ctx.cfg.split.val_fraction)
    model = build_model(ctx.cfg.model, seed=ctx.cfg.seed, n_jobs=1, n_rows=max(1, len(ctx.parts["train"])))
    if share <= 0 or not model.stops_early_on_validation():
        return None
    codes = pd.factorize(pd.Series(groups))[0]
    return lambda tr, fold: fold_validation(codes, tr, share, int(ctx.cfg.seed), fold)


def run_fit(ctx: Context) -> dict[str, Any]:
    cv = _cross_validate(ctx)
    t0 = time.perf_counter()
    log.info("fit: %s on %s rows", ctx.cfg.model.name, f"{len(ctx.parts['train']):,}")
    k = int(ctx.cfg.evaluation.cv_folds)
    ctx.model = _fit_one(ctx, ctx.parts["train"], ctx.parts["val"], key="fit", phase=k if k >= 2 else 0)
    if ctx.pruner is not None:
        ctx.pruner.end_phase(_val_value(ctx))
    model_dir = ctx.run.path / "model"
    files = ctx.model.save(model_dir)
    ctx.run.record("fit", files)
    return {"cv": cv, "fit_seconds": round(time.perf_counter() - t0, 3), "model_family": ctx.model.family,
            "checkpoints_written": ctx.checkpoints.written,
            "checkpoint_seconds": round(ctx.checkpoints.seconds, 4),
            **({"pruning": {"reports": len(ctx.pruner.reported), "last_step": ctx.pruner.last_step}}
               if ctx.pruner is not None else {})}


def _val_value(ctx: Context) -> Optional[float]:
    """The final fit's objective metric on the validation rows (what a pruner compares at its last step)."""
    from kaayko_exp.evaluation.metrics import metrics

    val = ctx.parts["val"]
    if not len(val):
        return None
    return metrics(ctx.y[val], part_predictions(ctx, "val")).get(_objective_metric(ctx))


def load_fit(ctx: Context) -> None:
    from kaayko_exp.models import load_model

    ctx.model = load_model(ctx.run.path / "model", verified=True)


# ---------------------------------------------------------------------------- evaluate
def run_evaluate(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.training.evaluate_stage import evaluate_run

    results, files = evaluate_run(ctx)
    ctx.results = results
    path = ctx.run.path / "evaluate" / "results.json"
    atomic.write_json(path, results)
    ctx.run.record("evaluate", [*files, path])
    return {"objective": results["objective"]}


def load_evaluate(ctx: Context) -> None:
    import json

    ctx.results = json.loads((ctx.run.path / "evaluate" / "results.json").read_text())


# ---------------------------------------------------------------------------- report
def run_report(ctx: Context) -> dict[str, Any]:
    from kaayko_exp.evaluation.report import write_report

    files = write_report(ctx.run, ctx.cfg, ctx.results, predictions=ctx.test_predictions)
    ctx.run.record("report", files)
    return {"files": [ctx.run.rel(f) for f in files]}


# ---------------------------------------------------------------------------- export
def run_export(ctx: Context) -> dict[str, Any]:
    """The model directory: the fitted model (the fit stage's files) plus the feature spec, the safety config
    and the training support. The spec and the support are byte copies of the features stage's files (verified
    with the run's artifacts on a resume), not a second encoding of the same objects."""
    model_dir = ctx.run.path / "model"
    features = ctx.run.path / "features"
    files = [atomic.write_bytes(model_dir / "feature_spec.json", (features / "feature_spec.json").read_bytes()),
             atomic.write_json(model_dir / "safety.json", OmegaConf.to_container(ctx.cfg.safety, resolve=True))]
    if ctx.support is not None:
        files.append(atomic.write_bytes(model_dir / "support.json", (ctx.run.path / RUN_FILE).read_bytes()))
    ctx.run.record("export", files)
    ctx.run.adopt("export", "fit")  # the model files the fit stage wrote and hashed
    return {"files": [a["path"] for a in ctx.run.stage("export")["artifacts"]]}


def _noop(ctx: Context) -> None:
    return None


StageFn = Callable[[Context], Any]
STAGE_FUNCTIONS: dict[str, tuple[StageFn, StageFn]] = {
    "dataset": (run_dataset, load_dataset_stage),
    "split": (run_split, load_split),
    "features": (run_features, load_features),
    "fit": (run_fit, load_fit),
    "evaluate": (run_evaluate, load_evaluate),
    "report": (run_report, _noop),
    "export": (run_export, _noop),
}
# Stages whose products later stages need in memory (loaded on resume only when needed).
_NEEDS = {"split": {"dataset"}, "features": {"dataset", "split"}, "fit": {"features", "split"},
          "evaluate": {"features", "split", "fit"}, "report": {"evaluate"}, "export": {"features"}}


def _required(pending: list[str]) -> set[str]:
    need: set[str] = set()
    todo = [n for p in pending for n in _NEEDS.get(p, ())]
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo.extend(_NEEDS.get(n, ()))
    return need


def _check_stage_order(run: RunDir) -> None:
    """Refuse to continue a run whose manifest lists another stage sequence (an older kaayko-exp)."""
    names = tuple(run.stage_names())
    if names != STAGES and not all(run.stage_done(s) for s in names):
        raise RunDirError(
            f"{run.path} was started by a kaayko-exp with the stage order {' → '.join(names)}; this version runs "
            f"{' → '.join(STAGES)} (category levels now come from the training rows only, so the features stage "
            "follows the split). Such a run cannot be continued: start a fresh run with `python train.py` "
            "and the same overrides, or finish it with the kaayko-exp version that started it."
        )


def build_fit_callbacks(checkpoints: CheckpointWriter, stop: StopSignals,
                        pruner: Optional[PruningReporter] = None,
                        tracker: Optional[FitCallback] = None) -> list[FitCallback]:
    """The fit loop's callbacks, in call order. The checkpoint writer runs before the stop signals (a stop
    saves first); the tracker (``logger=mlflow``) sees each step before a stop or prune ends the fit; the
    pruner (inside an Optuna sweep only) goes last, so a pruned fit still has its state."""
    return [ProgressLog(), checkpoints, *([tracker] if tracker is not None else []), stop,
            *([pruner] if pruner is not None else [])]


def execute(cfg: DictConfig, run: RunDir, session: Any = None) -> float:
    """Run every stage the manifest does not mark done; return the configured objective.

    The caller has verified the run's artifacts (a fresh run has none). ``session``: the open Dask cluster of a
    ``backend=dask`` run (the runner opens it before the run directory exists), None for ``backend=local``.
    """
    stop = StopSignals()
    checkpoints = CheckpointWriter(run, cfg.checkpointing, stop_requested=stop.requested)
    trial = sweep_trial()
    pruner = reporter_for(cfg, trial)
    tracker = tracker_for(cfg, run, trial, directions(cfg))  # None unless logger=mlflow; a mirror, never a dependency
    callbacks = FitCallbacks(build_fit_callbacks(checkpoints, stop, pruner, tracker), resume=RunResume(run))
    ctx = Context(cfg=cfg, run=run, callbacks=callbacks, checkpoints=checkpoints, pruner=pruner, session=session)
    _check_stage_order(run)
    if tracker is not None:
        tracker.start(resolved_config(cfg))
    try:
        with _stage_functions(ctx) as functions:
            return _run_stages(ctx, functions, stop, pruner, tracker)
    finally:
        if tracker is not None:  # after the manifest holds the final status
            tracker.end(str(run.manifest.get("status")))


@contextlib.contextmanager
def _stage_functions(ctx: Context) -> Iterator[dict[str, tuple[StageFn, StageFn]]]:
    """The stage functions of the run's backend: :data:`STAGE_FUNCTIONS` (``backend=local``, and runs saved
    before the backend group existed), or the dask ones on the run's cluster (:mod:`kaayko_exp.cluster`)."""
    if str(OmegaConf.select(ctx.cfg, "backend.name", default="local")) != "dask":
        yield STAGE_FUNCTIONS
        return
    from kaayko_exp.cluster.stages import TrainingHooks, cluster_stages
    from kaayko_exp.training.evaluate_stage import _external, extrapolation_note
    from kaayko_exp.training.interrupts import WorkerLost
    from kaayko_exp.training.objectives import objective_block

    hooks = TrainingHooks(objective_block=objective_block, objective_metric=lambda cfg: _objective_metric(ctx),
                          external=_external, interrupted=WorkerLost, load_support=load_support,
                          extrapolation=extrapolation_note)
    with cluster_stages(ctx, STAGE_FUNCTIONS, hooks) as functions:
        yield functions


def _run_stages(ctx: Context, functions: dict[str, tuple[StageFn, StageFn]], stop: StopSignals,
                pruner: Optional[PruningReporter], tracker: Any) -> float:
    run = ctx.run
    pending = [s for s in STAGES if not run.stage_done(s)]
    for name in STAGES:
        if name not in pending and name in _required(pending):
            log.info("%s: done earlier, reloading its verified products", name)
            functions[name][1](ctx)
    current = None
    t0 = time.perf_counter()
    unsaved = 0.0  # seconds of finished stages whose end the manifest on disk does not hold yet
    try:
        with interruptible(stop):
            for name in pending:
                current = None
                stop.check()  # a stop requested between stages (polled in a sweep job)
                current, t0 = name, time.perf_counter()
                run.start_stage(name)
                detail = functions[name][0](ctx) or {}
                seconds = time.perf_counter() - t0
                unsaved += seconds
                durable = name in ALWAYS_DURABLE or unsaved >= DURABLE_AFTER_SECONDS
                run.finish_stage(name, seconds, detail, save=durable)
                unsaved = 0.0 if durable else unsaved
                if tracker is not None:
                    tracker.after_stage(name)
            current = None
    except RunInterrupted as exc:
        if current:
            run.interrupt_stage(current, time.perf_counter() - t0)
        run.set_status("interrupted", stage=current, signal=exc.signal_name)
        log.warning("interrupted during %s; resume with: python train.py resume=%s", current, run.shown)
        raise
    except BaseException as exc:
        if is_pruned(exc):  # the sweep's pruner stopped this trial: its own outcome, not a failure
            if current:
                run.interrupt_stage(current, time.perf_counter() - t0, status="pruned")
            step, value = pruner.pruned_at if pruner is not None and pruner.pruned_at else (None, None)
            run.set_status("pruned", stage=current, step=step, value=value)
            log.info("trial pruned during %s at step %s; the run directory keeps what it wrote", current, step)
            raise
        if current:
            run.interrupt_stage(current, time.perf_counter() - t0, status="failed")
        run.set_status("failed", stage=current, error=f"{type(exc).__name__}: {exc}")
        raise
    run.set_status("completed")
    return task_value(ctx.results["objective"])


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


#: Settings that never change a run's model (threads, plots, caches, the tracker, heartbeat, checkpoint retention, how often
#: a sweep trial reports): left
#: out of the config hash, so a sweep job re-run with another thread split or plots=false still matches its run.
RESULT_NEUTRAL = ("resume", "n_jobs", "plots", "cache_dir", "logger", "checkpointing.heartbeat_seconds",
                  "checkpointing.keep_last", "pruning.report_every",
                  # where a dask run computes (the worker count is recorded in the manifest; a resume on another
                  # count says so): backend.name and backend.partition_rows do change the result
                  "backend.address", "backend.scheduler_file", "backend.n_workers", "backend.threads_per_worker",
                  "backend.memory_limit", "backend.connect_timeout", "backend.dashboard_address", "backend.log_level")


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config without :data:`RESULT_NEUTRAL` settings."""
    import json

    data = resolved_config(cfg)
    for key in RESULT_NEUTRAL:
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
