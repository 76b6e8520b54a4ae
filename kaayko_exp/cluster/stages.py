"""The stage sequence of a ``backend=dask`` run: the local stages' products, made on a Dask cluster.

:func:`cluster_stages` opens the cluster for the run (:func:`kaayko_exp.cluster.session.open_cluster`), records
the backend in the manifest (address kind, workers, threads, memory limit, partitions; a resume on another
worker count says so and records it), and hands the pipeline the stage functions below, which keep the table on
the workers: dataset (:mod:`.frames`), split (:mod:`.split`), features (:mod:`.features`), fit
(:mod:`.fit`, xgboost.dask), evaluate (:mod:`.evaluate`). Report and export are the local ones: they read only
what the stages wrote. A worker killed for exceeding its memory stops the run with one paragraph naming
``backend.memory_limit`` and the partition size.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from kaayko_exp import atomic
from kaayko_exp.errors import ConfigError, KaaykoError, RunDirError

log = logging.getLogger(__name__)


class WorkerMemoryError(KaaykoError):
    """Workers were killed for exceeding their memory limit."""

    kind = "dask worker out of memory"


@dataclass
class TrainingHooks:
    """What the dask stages take from the training package (which sits above this one): the objective, the
    external-set block, and the exception that stops a run as interrupted."""

    objective_block: Callable[[Any, dict[str, Any]], dict[str, Any]]  # (cfg, results) -> results["objective"]
    objective_metric: Callable[[Any], str]  # cfg -> the metric the pruner compares (rmse, mae, ...)
    external: Callable[[Any, str, float], dict[str, Any]]  # (ctx, path, train mean) -> the external block
    interrupted: Callable[[str], BaseException]  # message -> raised when a worker leaves mid-fit
    load_support: Callable[[Any], Any]  # run -> its verified training-support record, None for older runs
    extrapolation: Callable[[Any, int, str], Any]  # (support summary, rows, what) -> the block, logged


@dataclass
class ClusterState:
    """What the dask stages keep between them (the collections are lazy; the client holds no rows)."""

    session: Any
    hooks: Any = None  # TrainingHooks
    ddf: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)  # train / val / test dask DataFrames
    xy: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # train / val: (X, y)
    sizes: dict[str, int] = field(default_factory=dict)
    split_sha256: Optional[str] = None
    _train_mean: Optional[float] = None

    @property
    def client(self) -> Any:
        return self.session.client

    def train_mean(self) -> float:
        if self._train_mean is None:
            from kaayko_exp.data.schema import TARGET

            self._train_mean = float(self.parts["train"][TARGET].mean().compute())
        return self._train_mean

    def partitions(self) -> dict[str, Any]:
        block = dict(self.info.get("partitions") or {})
        count = block.get("count") or (self.ddf.npartitions if self.ddf is not None else None)
        rows = block.get("rows") or []
        return {"count": count, "max_rows": max(rows) if rows else None}

    def backend_block(self) -> dict[str, Any]:
        info = self.session.info
        return {"name": "dask", "address_kind": info.get("address_kind"), "workers": info.get("workers"),
                "threads_per_worker": info.get("threads_per_worker"), "memory_limit": info.get("memory_limit"),
                "partitions": self.partitions()}

    def memory_note(self) -> str:
        p = self.partitions()
        limit = self.session.info.get("memory_limit")
        return (f"backend.memory_limit is {_size(limit)} per worker; the table has {p['count']} partitions of up to "
                f"{p['max_rows'] or '?'} rows")


def _size(value: Any) -> str:
    if not value:
        return "unlimited"
    try:
        from dask.utils import format_bytes

        return format_bytes(int(value))
    except (TypeError, ValueError):
        return str(value)


def _state(ctx: Any) -> ClusterState:
    return ctx.cluster


def _api(module: str, name: str) -> Any:
    """The data side's function ``kaayko_exp.cluster.<module>.<name>`` (imported when a stage runs)."""
    import importlib

    return getattr(importlib.import_module(f"kaayko_exp.cluster.{module}"), name)


# ---------------------------------------------------------------------------- dataset
def _load(ctx: Any) -> dict[str, Any]:
    st = _state(ctx)
    st.ddf, st.info = _api("frames", "load_frame")(ctx.cfg, st.client)
    if ctx.run.manifest.get("backend") is not None:
        ctx.run.manifest["backend"]["partitions"] = st.partitions()
    return st.info


def run_dataset(ctx: Any) -> dict[str, Any]:
    st = _state(ctx)
    info = _load(ctx)
    rows = int(sum((info.get("partitions") or {}).get("rows") or []) or len(st.ddf))
    ctx.run.manifest["data"] = {
        "source": info.get("source"), "path": info.get("path"), "rows": rows,
        "fingerprint": info.get("fingerprint"), "frame_sha256": info.get("content_sha256"),
        "partitions": st.partitions(),
    }
    log.info("dataset: %s rows from %s in %s partitions on the workers", f"{rows:,}", info.get("source"),
             st.partitions()["count"])
    kept = {k: v for k, v in info.items() if k != "partitions"}
    return {"info": kept, "frame_sha256": info.get("content_sha256"), "partitions": st.partitions()}


def load_dataset_stage(ctx: Any) -> None:
    info = _load(ctx)
    expected = ctx.run.stage("dataset")["detail"].get("frame_sha256")
    if expected and info.get("content_sha256") != expected:
        raise RunDirError(
            f"{ctx.run.path}: the dataset rebuilt for this resume differs from the one the run started with "
            "(its content hash changed: the data files, the generator or backend.partition_rows changed since). "
            "Resuming would mix two datasets, so it is refused. Restore the original data, or start a fresh run."
        )


# ---------------------------------------------------------------------------- split
def _split(ctx: Any) -> dict[str, Any]:
    import dask

    st = _state(ctx)
    out = _api("split", "split_frame")(st.ddf, ctx.cfg)
    st.parts = {k: out[k] for k in ("train", "val", "test")}
    table = out.get("table")
    if table is not None:
        import pandas as pd

        st.split_sha256 = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()).hexdigest()
    counts = dask.compute(*(st.parts[k].shape[0] for k in ("train", "val", "test")))
    st.sizes = dict(zip(("train", "val", "test"), (int(c) for c in counts)))
    if st.split_sha256 is None:
        st.split_sha256 = hashlib.sha256(repr(sorted(st.sizes.items())).encode()).hexdigest()
    return out


def run_split(ctx: Any) -> dict[str, Any]:
    out = _split(ctx)
    st = _state(ctx)
    files = []
    table = out.get("table")
    if table is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = ctx.run.path / "split" / "table.parquet"
        atomic.write_with(path, lambda tmp: pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp))
        files.append(path)
    ctx.run.record("split", files)
    log.info("split: %s (train %s, val %s, test %s rows)", ctx.cfg.split.name, *(f"{st.sizes[k]:,}" for k in
                                                                                  ("train", "val", "test")))
    if not st.sizes["train"] or not st.sizes["test"]:
        raise ConfigError(f"split={ctx.cfg.split.name} left {st.sizes['train']:,} training and {st.sizes['test']:,} "
                          "test rows; a run needs both. Use a larger sample_size or another split.")
    return {"sizes": dict(st.sizes), "description": out.get("description", {}), "table_sha256": st.split_sha256}


def load_split(ctx: Any) -> None:
    _split(ctx)


# ---------------------------------------------------------------------------- features
def _matrices(ctx: Any) -> None:
    st = _state(ctx)
    transform = _api("features", "transform")
    st.xy = {k: transform(st.parts[k], ctx.spec) for k in ("train", "val")}


def run_features(ctx: Any) -> dict[str, Any]:
    from kaayko_exp.features.spec import feature_names

    from kaayko_exp.data.support import RUN_FILE

    st = _state(ctx)
    ctx.spec = _api("features", "fit_spec")(st.parts["train"], ctx.cfg)
    path = ctx.run.path / "features" / "feature_spec.json"
    ctx.spec.save(path)
    # where the training rows lie, over the columns the model reads: serving warns outside it
    ctx.support = _api("features", "fit_support")(st.parts["train"], ctx.spec.required_columns, st.client)
    ctx.run.record("features", [path, ctx.support.save(ctx.run.path / RUN_FILE)])
    _matrices(ctx)
    names = feature_names(ctx.spec)
    log.info("features: %d columns (%s set), category levels from the %s training rows (on the workers)",
             len(names), ctx.cfg.features.name, f"{st.sizes['train']:,}")
    return {"n_features": len(names), "names": names}


def load_features(ctx: Any) -> None:
    from kaayko_exp.features.spec import FeatureSpec

    ctx.spec = FeatureSpec.load(ctx.run.path / "features" / "feature_spec.json")
    ctx.support = _state(ctx).hooks.load_support(ctx.run)
    _matrices(ctx)


# ---------------------------------------------------------------------------- fit
def run_fit(ctx: Any) -> dict[str, Any]:
    from kaayko_exp.cluster.fit import fit_xgboost

    st = _state(ctx)
    t0 = time.perf_counter()
    log.info("fit: %s on %s rows with xgboost.dask (%s workers)", ctx.cfg.model.name, f"{st.sizes['train']:,}",
             st.session.info.get("workers"))
    ctx.model = fit_xgboost(ctx, st)
    if ctx.pruner is not None:
        ctx.pruner.end_phase(_val_value(ctx, st))
    files = ctx.model.save(ctx.run.path / "model")
    ctx.run.record("fit", files)
    return {"cv": None, "fit_seconds": round(time.perf_counter() - t0, 3), "model_family": ctx.model.family,
            "checkpoints_written": ctx.checkpoints.written,
            "checkpoint_seconds": round(ctx.checkpoints.seconds, 4),
            "backend": st.backend_block(),
            **({"pruning": {"reports": len(ctx.pruner.reported), "last_step": ctx.pruner.last_step}}
               if ctx.pruner is not None else {})}


def _val_value(ctx: Any, st: ClusterState) -> Optional[float]:
    from kaayko_exp.cluster.evaluate import reduce_block, score

    if not st.sizes.get("val"):
        return None
    block = reduce_block(score(st.client, st.parts["val"], ctx.model, ctx.spec, None, 0.0), "validation set",
                         safety=False)
    return block["metrics"].get(st.hooks.objective_metric(ctx.cfg))


# ---------------------------------------------------------------------------- evaluate
def run_evaluate(ctx: Any) -> dict[str, Any]:
    from kaayko_exp.cluster.evaluate import evaluate

    results, files = evaluate(ctx, _state(ctx))
    ctx.results = results
    path = ctx.run.path / "evaluate" / "results.json"
    atomic.write_json(path, results)
    ctx.run.record("evaluate", [*files, path])
    return {"objective": results["objective"]}


def stage_functions(local: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """The dask run's stage functions: ``(run, load)`` per stage, report and export from ``local``."""
    return {
        "dataset": (run_dataset, load_dataset_stage),
        "split": (run_split, load_split),
        "features": (run_features, load_features),
        "fit": (run_fit, local["fit"][1]),
        "evaluate": (run_evaluate, local["evaluate"][1]),
        "report": local["report"],
        "export": local["export"],
    }


# ---------------------------------------------------------------------------- the cluster of a run
def check_config(cfg: Any) -> None:
    """What ``backend=dask`` cannot run, refused before any work."""
    from kaayko_exp.cluster.fit import check_family

    check_family(cfg)
    if int(cfg.evaluation.cv_folds) >= 2:
        raise ConfigError(
            f"evaluation.cv_folds={cfg.evaluation.cv_folds} is not available on backend=dask (each fold would be "
            "another distributed fit). Drop evaluation.cv_folds for the dask run, or cross-validate with "
            "backend=local on a sample."
        )


def _record_backend(run: Any, st: ClusterState) -> None:
    """The manifest's ``backend`` block; a resume on another worker count says so and records it."""
    block = st.backend_block()
    before = run.manifest.get("backend")
    if before and before.get("workers") != block["workers"]:
        log.warning("this resume runs on %s Dask worker(s); the run so far used %s. XGBoost's distributed "
                    "results depend on the worker count and partitioning, so the model may differ slightly from "
                    "an uninterrupted run; recorded in the manifest.", block["workers"], before.get("workers"))
        run.event("backend_changed", workers_before=before.get("workers"), workers_now=block["workers"])
        block["history"] = [*before.get("history", []), {k: v for k, v in before.items() if k != "history"}]
    run.manifest["backend"] = block
    run.save()


def _killed_by_memory(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "KilledWorker" or "KilledWorker" in str(exc)


@contextlib.contextmanager
def cluster_stages(ctx: Any, local: dict[str, tuple[Any, Any]],
                   hooks: TrainingHooks) -> Iterator[dict[str, tuple[Any, Any]]]:
    """Record the run's cluster and yield the dask stage functions (see the module docstring)."""
    check_config(ctx.cfg)
    with contextlib.ExitStack() as stack:
        session = ctx.session
        if session is None:  # the runner opens it before the run directory exists; else open it here
            from kaayko_exp.cluster.session import open_cluster

            session = stack.enter_context(open_cluster(ctx.cfg.backend))
        st = ClusterState(session=session, hooks=hooks)
        ctx.cluster = st
        _record_backend(ctx.run, st)
        try:
            yield stage_functions(local)
        except BaseException as exc:
            if _killed_by_memory(exc):
                try:
                    what = " ".join(str(exc).split())[:200]
                except Exception:  # KilledWorker's own str() needs scheduler objects
                    what = type(exc).__name__
                raise WorkerMemoryError(
                    f"Dask workers were killed while computing ({what}): most likely a "
                    f"task needed more memory than a worker may use. {st.memory_note()}. Raise "
                    "backend.memory_limit (or use fewer, larger workers), or lower backend.partition_rows so each "
                    "partition needs less. The run keeps its last checkpoint: continue with "
                    f"python train.py resume={ctx.run.shown}."
                ) from None
            raise
