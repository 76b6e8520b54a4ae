"""Liveness of RUNNING trials: a heartbeat in each trial's system attrs, and finding the dead ones.

Optuna's own heartbeat only covers ``study.optimize``; with ask/tell the sweeper stamps its running
trials itself: ``{"host", "pid", "time" (ISO, UTC), "interval"}`` under the system attr ``heartbeat``.
A RUNNING trial is dead when its worker is on this host and its pid is gone, or its stamp is older than
three intervals (another host, or a pid reused by some other process).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import socket
import threading
from typing import Any, Dict, Iterable, List, Optional

log = logging.getLogger(__name__)

HEARTBEAT_ATTR = "heartbeat"
STALE_INTERVALS = 3


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def stamp(interval: float) -> Dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": _now().isoformat(), "interval": interval}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(frozen: Any, default_interval: float, now: Optional[_dt.datetime] = None) -> bool:
    """Whether a RUNNING trial's worker is gone."""
    now = now or _now()
    beat = frozen.system_attrs.get(HEARTBEAT_ATTR)
    if not isinstance(beat, dict):  # never stamped: judge by its start time
        started = frozen.datetime_start
        if started is None:
            return True
        if started.tzinfo is None:
            started = started.astimezone(_dt.timezone.utc)
        return (now - started).total_seconds() > STALE_INTERVALS * default_interval
    interval = float(beat.get("interval") or default_interval)
    try:
        age = (now - _dt.datetime.fromisoformat(beat["time"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return True
    if age > STALE_INTERVALS * interval:
        return True
    if beat.get("host") == socket.gethostname():
        pid = int(beat.get("pid", -1))
        return pid != os.getpid() and not _pid_alive(pid)
    return False


class Heartbeat:
    """A daemon thread stamping the sweeper's running trials every ``interval`` seconds."""

    def __init__(self, storage: Any, interval: float) -> None:
        self._storage = storage
        self._interval = interval
        self._ids: Dict[int, None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optuna5-sweeper-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._ids[trial_id] = None
        self.beat([trial_id])

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self._ids.pop(trial_id, None)

    def beat(self, ids: Iterable[int]) -> None:
        value = stamp(self._interval)
        for trial_id in ids:
            try:
                with _no_wait():  # a storage outage must not hold the beats of the other trials
                    self._storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, value)
            except Exception as exc:  # finished meanwhile, or the storage hiccuped: the next beat retries
                log.debug("heartbeat of trial id %s skipped: %s", trial_id, exc)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids: List[int] = list(self._ids)
            self.beat(ids)

    def stop(self) -> None:
        self._stop.set()


def _no_wait() -> Any:
    from hydra_plugins.optuna5_sweeper._storage import no_wait

    return no_wait()


# ---- jobs in other processes (joblib/loky workers): they follow the sweep's stop and end when it dies

PARENT_POLL_S = 0.5
PARENT_GRACE_S = 30.0
_watching: Dict[str, Any] = {}


def stop_file(sweep_pid: int) -> str:
    """Where a sweep process writes the signal that stopped it, for its jobs in other processes."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"optuna5-sweep-{socket.gethostname()}-{sweep_pid}.stop")


class EndsWithSweep:
    """The task function as the launcher gets it. A job that runs in another process than the sweep's, on its
    host (a joblib/loky worker), starts a watcher there: when the sweep is stopped by a signal the job's
    process gets the same signal (a job that handles it checkpoints and stops), and when the sweep process is
    gone (even after SIGKILL) it gets SIGTERM and is ended after ``PARENT_GRACE_S`` if still there."""

    def __init__(self, task_function: Any, sweep_pid: int) -> None:
        self.task_function = task_function
        self.sweep_pid = sweep_pid
        self.sweep_host = socket.gethostname()
        self.__name__ = getattr(task_function, "__name__", "task")

    def __call__(self, cfg: Any) -> Any:
        if os.getpid() != self.sweep_pid and socket.gethostname() == self.sweep_host:
            watch_sweep_process(self.sweep_pid)
        return self.task_function(cfg)


def _read_stop(path: str) -> Optional[int]:
    try:
        with open(path) as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def watch_sweep_process(sweep_pid: int) -> None:
    """Start (once per process) the thread that passes the sweep's stop signal on to this process and ends
    it when ``sweep_pid`` is gone."""
    if _watching.get("pid") == sweep_pid:
        return
    _watching["pid"] = sweep_pid
    parent = os.getppid()
    flag = stop_file(sweep_pid)

    def gone() -> bool:  # reparented (the usual case: the sweep spawned this worker), or the pid is gone
        return os.getppid() != parent or not _pid_alive(sweep_pid)

    def run() -> None:
        import signal
        import time

        passed_on = None
        while not gone():
            signum = _read_stop(flag)
            if signum is not None and signum != passed_on:
                passed_on = signum
                os.kill(os.getpid(), signum)
            time.sleep(PARENT_POLL_S)
        log.warning("the sweep process (pid %d) is gone: stopping this job", sweep_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(PARENT_GRACE_S)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=run, name="optuna5-sweep-watch", daemon=True).start()
