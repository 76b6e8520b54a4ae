"""One run mirrored in MLflow: a fit callback (stepped validation scores) and a stage observer.

The pipeline (:func:`kaayko_exp.training.pipeline.execute`) calls :meth:`RunTracker.start` before the stages,
:meth:`RunTracker.after_stage` after each, and :meth:`RunTracker.end` once the manifest holds the run's final
status; the fit loop calls the :class:`~kaayko_exp.models.callbacks.FitCallback` hooks. Every MLflow call runs
in order in the tracker's own process (:mod:`kaayko_exp.tracking.worker`, started with the run, paused
while a fit runs, shared by a sweep's trials in one process), so training neither waits for the tracker nor shares
its CPU time and GIL with MLflow's imports (only :meth:`end` waits, at most ``logger.timeout_s``). The first
fault (a server that does not answer, a locked SQLite file, a worker that died, anything) is one warning
line; the mirror stops there, the run goes on, and the manifest's ``tracking`` record says what
``python -m kaayko_exp.runs sync-tracker`` has to upload. The MLflow run id is in that record, so a resumed run
continues the same MLflow run; steps MLflow already holds are never sent again.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.tracking import mirror

log = logging.getLogger("kaayko_exp.tracking")

#: stepped scores are uploaded at most this often while a fit runs (each upload is a database write), and
#: whatever is left at the fit's end
STEP_FLUSH_S = 2.0
#: how long a process waits at its exit for its tracker process to go
CLOSE_WAIT_S = 5.0


def sync_hint(path: str) -> str:
    return f"python -m kaayko_exp.runs sync-tracker {path}"


class _Worker:
    """The parent's end of :mod:`kaayko_exp.tracking.worker`: sends commands, routes the replies."""

    def __init__(self) -> None:
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        import kaayko_exp

        root = str(Path(kaayko_exp.__file__).resolve().parent.parent)  # this very kaayko-exp, not another
        code = f"import sys; sys.path.insert(0, {root!r}); from kaayko_exp.tracking.worker import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(mine.detach())
        self.lock = threading.Lock()
        self.trackers: dict[int, "RunTracker"] = {}
        self.ids = itertools.count(1)
        threading.Thread(target=self._read, name="kaayko-tracker", daemon=True).start()
        atexit.register(self.close)

    def send(self, msg: tuple) -> None:
        with self.lock:
            self.conn.send(msg)

    def _read(self) -> None:
        while True:
            try:
                kind, tid, *rest = self.conn.recv()
            except (EOFError, OSError):
                break
            t = self.trackers.get(tid)
            if t is not None:
                t._reply(kind, rest)
        for t in list(self.trackers.values()):  # the worker is gone: every open tracker has lost its mirror
            t._reply("fault", ["the tracker process exited"])
            t._reply("done", [])

    def close(self) -> None:
        """No more commands: the worker finishes what it has and exits; waited for briefly (its work was
        waited for already, at most ``logger.timeout_s``), so it is reaped and its CPU time counted."""
        import os
        import socket

        try:  # shut the socket down, not only close this fd: the reader thread blocked in recv holds the
            # socket open, so the worker would see no end of input and the wait below would run its course
            with socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.conn.close()
        except OSError:
            pass
        try:
            self.proc.wait(CLOSE_WAIT_S)
        except Exception:
            pass


_WORKER: Optional[_Worker] = None
_WORKER_LOCK = threading.Lock()


def worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER.proc.poll() is not None:
            _WORKER = _Worker()
        return _WORKER


class RunTracker:
    """The hooks of :class:`kaayko_exp.models.callbacks.FitCallback` (duck-typed: this package sits beside
    the models, not on them) plus the stage observer's ``start``, ``after_stage`` and ``end``."""

    def __init__(self, cfg: Any, run: Any, trial: Optional[Any] = None, directions: Optional[list] = None) -> None:
        from omegaconf import OmegaConf

        from kaayko_exp.tracking.sweep import sweep_context

        settings = OmegaConf.to_container(cfg.logger, resolve=True)
        self.uri: str = settings["tracking_uri"]
        self.experiment: str = settings["experiment_name"]
        self.run_name: Optional[str] = settings.get("run_name")
        self.every = int(settings.get("log_every") or 10)
        self.interval = self.every
        self.with_model = bool(settings.get("log_model", True))
        self.user_tags: dict[str, Any] = dict(settings.get("tags") or {})
        self.timeout = float(settings.get("timeout_s") or 60)
        self.run = run
        self.sweep = sweep_context(trial, directions or [])
        self.steps = mirror.load_steps(run.path)
        self._worker: Optional[_Worker] = None
        self._tid = 0
        self._done = threading.Event()
        self._steps_due = False
        self._sent_at = -STEP_FLUSH_S
        self._lock = threading.Lock()
        self.failed: Optional[str] = None

    # ------------------------------------------------------------------ the worker process
    def _send(self, kind: str, extra: Any = None) -> None:
        if self._worker is None:
            return
        try:
            self._worker.send((kind, self._tid, dict(self.run.manifest), extra))
        except Exception as exc:  # a worker that died or a value it cannot take: the mirror stops here
            self._fail(f"{type(exc).__name__}: {exc}")
            self._done.set()

    def _reply(self, kind: str, rest: list) -> None:
        if kind == "record":
            self._record(**rest[0])
        elif kind == "fault":
            self._fail(rest[0])
        elif kind == "done":
            self._done.set()

    def _fail(self, text: str) -> None:
        if self.failed is not None:
            return
        self.failed = text
        log.warning("MLflow logger (%s) failed: %s. The run goes on and stays complete on disk; upload what the "
                    "tracker missed later with: %s", self.uri, self.failed, sync_hint(self.run.shown))
        self._record(complete=False, missed=self.failed)

    def _record(self, **values: Any) -> None:
        rec = self.run.manifest.get(mirror.RECORD)
        if isinstance(rec, dict):
            self.run.set_entry(mirror.RECORD, {**rec, **values})

    # ------------------------------------------------------------------ stage observer
    def start(self, config: dict[str, Any]) -> None:
        rec = self.run.manifest.get(mirror.RECORD)
        if not isinstance(rec, dict) or rec.get("tracking_uri") != self.uri:
            rec = {"logger": "mlflow", "tracking_uri": self.uri, "experiment_id": None, "run_id": None,
                   "parent_run_id": None}
        self.run.set_entry(mirror.RECORD, {**rec, "complete": False, "missed": None})
        spec = {"uri": self.uri, "experiment": self.experiment, "run_name": self.run_name,
                "user_tags": self.user_tags, "sweep": self.sweep, "path": str(self.run.path),
                "shown": self.run.shown, "manifest": dict(self.run.manifest), "config": config,
                "with_model": self.with_model}
        try:
            self._worker = worker()
            self._tid = next(self._worker.ids)
            self._worker.trackers[self._tid] = self
            self._worker.send(("open", self._tid, spec))
        except Exception as exc:
            self._worker = None
            self._fail(f"{type(exc).__name__}: {exc}")

    def after_stage(self, name: str) -> None:
        if name == "dataset":  # the data version is known now
            self._send("tags")
        elif name == "fit":
            self._send_steps()

    def end(self, status: str) -> None:
        """The run ended with ``status`` (the manifest holds it): final sections, then wait for the uploads."""
        self._send_steps()
        for section in mirror.sections(status, self.with_model):
            self._send("section", (section, status))
        self._send("done")
        if self._worker is None:  # no worker ever started: keep the scores for sync-tracker here
            with self._lock:
                mirror.save_steps(self.run.path, {k: dict(v) for k, v in self.steps.items()})
            return
        finished = self._done.wait(self.timeout)
        self._worker.trackers.pop(self._tid, None)
        if not finished and self.failed is None:
            self.failed = f"the uploads took longer than logger.timeout_s={self.timeout:g} s"
            log.warning("MLflow logger (%s): %s; the run is complete on disk; upload the rest with: %s",
                        self.uri, self.failed, sync_hint(self.run.shown))
            self._record(complete=False, missed=self.failed)
            return
        if self.failed is None:
            self._record(complete=True, missed=None)

    # ------------------------------------------------------------------ fit callback
    def _due(self, done: int, total: int) -> bool:
        return done % self.every == 0 or done == total

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        self._pause("pause")  # a fit uses every core: the tracker's imports and uploads wait

    def _pause(self, kind: str) -> None:
        if self._worker is not None:
            try:
                self._worker.send((kind, self._tid))
            except Exception:
                pass

    def wants_score(self, key: str, done: int, total: int) -> bool:
        return self._due(done, total)

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Any] = None) -> None:
        if score is None or not self._due(done, total):
            return
        now = time.monotonic()
        with self._lock:
            self.steps.setdefault(key, {})[int(done)] = float(score)
            send = not self._steps_due and now - self._sent_at >= STEP_FLUSH_S
            if send:
                self._steps_due, self._sent_at = True, now
        if send:  # at most one upload per STEP_FLUSH_S; the rest goes with the next one or at the fit's end
            self._send_steps()

    def after_fit(self, key: str, save: Optional[Any] = None) -> None:
        self._pause("resume")

    def _send_steps(self) -> None:
        """The scores so far to the worker (which saves steps.json for sync-tracker, also after a fault)."""
        with self._lock:
            self._steps_due = False
            snapshot = {k: dict(v) for k, v in self.steps.items()}
        self._send("steps", snapshot)
