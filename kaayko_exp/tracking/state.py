"""What the tracker process has uploaded for one directory, on disk, so nothing depends on it staying alive.

The tracker process outlives the run that started it (:mod:`kaayko_exp.tracking.worker`): it finishes its
queue after the run returns. Two files under ``<run or sweep dir>/tracking/`` say how far it got:

- ``state.json`` (written atomically after every step): the MLflow run id, the sections uploaded, whether it
  is finished, the tracker's pid and CPU seconds. ``sync-tracker`` reads it, so a tracker that died mid-queue
  (SIGKILL, a reboot) leaves a record of what is still missing;
- ``tracker.lock``: flock-ed by the tracker for as long as it works on the directory (the kernel drops it when
  the process dies). The run takes it and hands the locked file over to the tracker with its first command,
  so there is no moment between the run's return and the tracker's start where the lock looks free.
  :func:`wait_idle` (``sync-tracker --wait``) waits for it and for the tracker process the manifest's
  pending record names.

Light module: no MLflow, imported by the run's side.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

from kaayko_exp import atomic
from kaayko_exp.runs.rundir import try_flock

FOLDER = "tracking"
STATE_FILE = "state.json"
LOCK_FILE = "tracker.lock"
#: how often a waiter polls the tracker's lock
POLL_S = 0.1


def state_path(path: Path) -> Path:
    return Path(path) / FOLDER / STATE_FILE


def lock_path(path: Path) -> Path:
    return Path(path) / FOLDER / LOCK_FILE


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(state_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(path: Path, state: dict[str, Any]) -> None:
    atomic.write_json(state_path(path), state)


def fresh(pid: int, uri: str, record: dict[str, Any]) -> dict[str, Any]:
    """The state of a run whose tracker process ``pid`` has uploaded nothing yet (``record``: the manifest's)."""
    return {"pid": pid, "session": record.get("session"), "tracking_uri": uri, "run_id": record.get("run_id"),
            "experiment_id": record.get("experiment_id"), "parent_run_id": record.get("parent_run_id"),
            "sections": [], "finished": False, "complete": False, "missed": None}


IDS = ("experiment_id", "run_id", "parent_run_id")


def adopt_ids(path: Path, uri: str, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the MLflow ids a previous tracker of ``path`` recorded in its state file (for the same
    ``uri``) when the manifest lacks them: a run that ended before its tracker created the MLflow run, then
    resumed, continues that MLflow run."""
    if record.get("run_id"):
        return record
    prev = load(path)
    if prev.get("tracking_uri") != uri or not prev.get("run_id"):
        return record
    return {**record, **{k: prev.get(k) for k in IDS}}


def open_lock(path: Path) -> int:
    """An fd of the directory's tracker lock file (created), not locked yet."""
    where = lock_path(path)
    where.parent.mkdir(parents=True, exist_ok=True)
    return os.open(where, os.O_RDWR | os.O_CREAT, 0o644)


def busy(path: Path) -> bool:
    """Whether a tracker process is working on ``path`` now."""
    if not lock_path(path).is_file():
        return False
    fd = os.open(lock_path(path), os.O_RDONLY)
    try:
        return not try_flock(fd)
    finally:
        os.close(fd)


def alive(pid: Any) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    import psutil

    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _pending_record(path: Path) -> dict[str, Any]:
    from kaayko_exp.runs.rundir import MANIFEST

    try:
        rec = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8")).get("tracking")
    except (OSError, ValueError, AttributeError):
        return {}
    return rec if isinstance(rec, dict) and rec.get("pending") else {}


def settled(path: Path) -> bool:
    """No tracker works on ``path`` now, and none is due to: the manifest's record is final, or the tracker
    process named in it is gone. (A resumed run's tracker waits for the previous one of the same directory and
    takes the lock after it: the lock alone would look free for a moment in between.)"""
    if busy(path):
        return False
    return not alive(_pending_record(path).get("tracker_pid"))


def wait_idle(path: Path, timeout_s: Optional[float] = None) -> bool:
    """Wait until :func:`settled` (polled, at most ``timeout_s``; None: no limit); False on timeout."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not settled(path):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True
