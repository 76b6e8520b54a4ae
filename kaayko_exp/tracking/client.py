"""MLflow calls, each idempotent, so a live run and a later ``sync-tracker`` share them.

Everything here imports MLflow: import this module only when ``logger=mlflow`` is chosen. Nothing here
catches errors; the callers (:mod:`kaayko_exp.tracking.run_tracker`, :mod:`kaayko_exp.tracking.sync`) do.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

#: MLflow's limits: params per batch, metrics per batch, characters of a param value
MAX_PARAMS, MAX_METRICS, MAX_VALUE = 100, 1000, 6000
TAG_PREFIX = "kaayko."


def connect(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``: HTTP without retries (a dead server costs seconds, not minutes), a
    SQLite file's folder created, MLflow's own INFO lines (database set-up) kept out of the run's log."""
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient  # MLflow sets its loggers' levels on import: quiet them after

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def artifact_root(uri: str) -> Optional[str]:
    """Where a new experiment keeps artifacts: beside a SQLite file (``outputs/mlartifacts``), else the
    server's choice (None)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlartifacts").as_uri()
    return None


def experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of experiment ``name``, created when missing (another process may create it at the same time)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(uri))
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as ``{"model.params.max_depth": "6", ...}`` (lists as their text)."""
    out: dict[str, str] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        if not data and prefix:
            out[prefix[:-1]] = "{}"
        return out
    text = "None" if data is None else str(data)
    out[prefix[:-1]] = text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."
    return out


def log_params(client: Any, run_id: str, params: Mapping[str, str], fresh: bool = False) -> None:
    """Log the params the run does not have yet (params never change; a resumed run's harmless overrides,
    such as ``n_jobs``, keep their first value). ``fresh``: the run was just created and has none."""
    from mlflow.entities import Param

    have = {} if fresh else client.get_run(run_id).data.params
    todo = [Param(k, v) for k, v in params.items() if k not in have]
    for i in range(0, len(todo), MAX_PARAMS):
        client.log_batch(run_id, params=todo[i:i + MAX_PARAMS])


def set_tags(client: Any, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:MAX_VALUE]) for k, v in tags.items() if v is not None]
    for i in range(0, len(items), MAX_PARAMS):
        client.log_batch(run_id, tags=items[i:i + MAX_PARAMS])


def log_metrics(client: Any, run_id: str, rows: Iterable[tuple[str, float, int, int]]) -> None:
    """``rows``: (key, value, step, timestamp in ms)."""
    from mlflow.entities import Metric

    items = [Metric(k, float(v), int(ts), int(step)) for k, v, step, ts in rows]
    for i in range(0, len(items), MAX_METRICS):
        client.log_batch(run_id, metrics=items[i:i + MAX_METRICS])


def last_steps(client: Any, run_id: str, keys: Iterable[str]) -> dict[str, int]:
    """The highest step MLflow holds for each metric key (absent keys: -1)."""
    return {k: max((m.step for m in client.get_metric_history(run_id, k)), default=-1) for k in keys}


def logged_metric_keys(client: Any, run_id: str) -> set[str]:
    return set(client.get_run(run_id).data.metrics)


def artifact_names(client: Any, run_id: str, path: Optional[str] = None) -> set[str]:
    return {Path(f.path).name for f in client.list_artifacts(run_id, path)}


def upload(client: Any, run_id: str, files: Iterable[Path], folder: Optional[str] = None,
           replace: Iterable[str] = ()) -> None:
    """Upload the files the run's artifacts lack (those named in ``replace`` always: they change)."""
    have = artifact_names(client, run_id, folder)
    again = set(replace)
    for path in files:
        if path.is_file() and (path.name not in have or path.name in again):
            client.log_artifact(run_id, str(path), folder)


def upload_dir(client: Any, run_id: str, folder: Path, name: str) -> None:
    if folder.is_dir() and name not in artifact_names(client, run_id):
        client.log_artifacts(run_id, str(folder), name)


_COMMITS: dict[Path, Optional[str]] = {}


def git_commit(cwd: Path) -> Optional[str]:
    """HEAD of the git checkout ``cwd`` is in (once per process and folder), or None."""
    if cwd not in _COMMITS:
        _COMMITS[cwd] = _git_head(cwd)
    return _COMMITS[cwd]


def _git_head(cwd: Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now_ms() -> int:
    return int(time.time() * 1000)
