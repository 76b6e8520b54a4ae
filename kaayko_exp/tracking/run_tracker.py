"""One run mirrored in MLflow: a fit callback (stepped validation scores) and a stage observer.

The pipeline (:func:`kaayko_exp.training.pipeline.execute`) calls :meth:`RunTracker.start` before the stages,
:meth:`RunTracker.after_stage` after each, and :meth:`RunTracker.end` once the manifest holds the run's final
status; the fit loop calls the :class:`~kaayko_exp.models.callbacks.FitCallback` hooks. Every MLflow call runs
in order in the tracker's own process (:mod:`kaayko_exp.tracking.worker`: started with the run, detached, at
the lowest CPU priority, shared by a sweep's trials in one process). The run only queues commands: it never
waits for the tracker, not even at its end; the tracker finishes the uploads after the run returned and writes
the manifest's final ``tracking`` record itself (``sync-tracker --wait`` waits for that). The first fault (a
server that does not answer, a SQLite file locked too long, a worker that died, anything) is one warning
line; the mirror stops there, the run goes on, and the record (with the tracker's ``tracking/state.json``)
says what ``python -m kaayko_exp.runs sync-tracker`` has to upload. The MLflow run id is in that record, so a
resumed run continues the same MLflow run; steps MLflow already holds are never sent again.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.runs.rundir import try_flock
from kaayko_exp.tracking import mirror, state

log = logging.getLogger("kaayko_exp.tracking")

#: stepped scores are uploaded at most this often while a fit runs (each upload is a database write), and
#: whatever is left at the fit's end
STEP_FLUSH_S = 2.0
#: how long a process waits at its exit to hand its queued commands to the tracker process (which reads them at
#: once; it does not wait for them to run)
CLOSE_WAIT_S = 5.0


def sync_hint(path: str) -> str:
    return f"python -m kaayko_exp.runs sync-tracker {path}"


class _Worker:
    """The parent's end of :mod:`kaayko_exp.tracking.worker`: queues commands (a sender thread writes them, so
    the run never blocks on a busy tracker), routes the replies. The worker is detached: nothing waits for it."""

    def __init__(self) -> None:
        import queue
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        import kaayko_exp

        root = str(Path(kaayko_exp.__file__).resolve().parent.parent)  # this very kaayko-exp, not another
        code = f"import sys; sys.path.insert(0, {root!r}); from kaayko_exp.tracking.worker import main; main()"
        # a session of its own (Ctrl-C of the run does not reach it) and no terminal streams (whoever reads the
        # run's output, a pipe or a test, does not wait for it); faults go to the run while it listens, and to
        # <dir>/tracking/tracker.log
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.conn = Connection(mine.detach())
        self.pid = self.proc.pid
        self.outbox: "queue.Queue[Optional[tuple[tuple, Optional[int]]]]" = queue.Queue()
        self.trackers: dict[int, "RunTracker"] = {}
        self.ids = itertools.count(1)
        self.broken = False
        self.sender = threading.Thread(target=self._write, name="kaayko-tracker-send", daemon=True)
        self.sender.start()
        threading.Thread(target=self._read, name="kaayko-tracker", daemon=True).start()
        atexit.register(self.close)

    def send(self, msg: tuple, fd: Optional[int] = None) -> None:
        """Queue ``msg`` (and the open file ``fd``, handed over and closed here); never blocks."""
        if self.broken:
            if fd is not None:
                os.close(fd)
            raise ConnectionError("the tracker process exited")
        self.outbox.put((msg, fd))

    def _write(self) -> None:
        from multiprocessing.reduction import send_handle

        while True:
            item = self.outbox.get()
            if item is None:
                return
            msg, fd = item
            try:
                if not self.broken:
                    self.conn.send(msg)
                    if fd is not None:
                        send_handle(self.conn, fd, self.pid)
            except (OSError, ValueError):
                self.broken = True
            finally:
                if fd is not None:
                    os.close(fd)

    def _read(self) -> None:
        while True:
            try:
                kind, tid, *rest = self.conn.recv()
            except (EOFError, OSError):
                break
            t = self.trackers.get(tid)
            if t is not None:
                t._reply(kind, rest)
        self.broken = True
        for t in list(self.trackers.values()):  # the worker is gone: every open tracker has lost its mirror
            t._reply("fault", ["the tracker process exited"])

    def close(self) -> None:
        """No more commands: hand over what is queued (the worker reads at once; at most ``CLOSE_WAIT_S``), then
        close. The worker finishes its queue after this process exits; nothing here waits for that."""
        import socket

        self.outbox.put(None)
        self.sender.join(CLOSE_WAIT_S)
        try:  # shut the socket down, not only close this fd: the reader thread blocked in recv holds the
            # socket open, so the worker would see no end of input
            with socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.conn.close()
        except OSError:
            pass


_WORKER: Optional[_Worker] = None
_WORKER_LOCK = threading.Lock()


def worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER.broken or _WORKER.proc.poll() is not None:
            _WORKER = _Worker()
        return _WORKER


def locked_handover(path: Path) -> int:
    """The directory's tracker lock file, locked here when free (a previous tracker of the same directory
    still at work: the worker waits for it), to send with the command that starts work on ``path``."""
    fd = state.open_lock(path)
    try_flock(fd)
    return fd


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
        self.live_after = float(settings.get("live_after_s", 60))
        self.run = run
        self.sweep = sweep_context(trial, directions or [])
        self.steps = mirror.load_steps(run.path)
        self._saved_steps = {k: dict(v) for k, v in self.steps.items()}
        self._worker: Optional[_Worker] = None
        self._tid = 0
        self._closed = False  # end() wrote the run's last record: the worker writes the rest itself
        self._steps_due = False
        self._sent_at = -STEP_FLUSH_S
        self._lock = threading.Lock()
        self.failed: Optional[str] = None

    # ------------------------------------------------------------------ the worker process
    def _send(self, kind: str, extra: Any = None, manifest: bool = True) -> None:
        if self._worker is None:
            return
        try:
            self._worker.send((kind, self._tid, dict(self.run.manifest) if manifest else None, extra))
        except Exception as exc:  # a worker that died: the mirror stops here
            self._fail(f"{type(exc).__name__}: {exc}")

    def _reply(self, kind: str, rest: list) -> None:
        if kind == "record":
            self._record(**rest[0])
        elif kind == "fault":
            self._fail(rest[0])

    def _fail(self, text: str) -> None:
        if self.failed is not None:
            return
        self.failed = text
        log.warning("MLflow logger (%s) failed: %s. The run goes on and stays complete on disk; upload what the "
                    "tracker missed later with: %s", self.uri, self.failed, sync_hint(self.run.shown))
        self._record(complete=False, missed=self.failed)

    def _record(self, **values: Any) -> None:
        with self._lock:
            if self._closed:  # the run has ended (it may have released its directory): the worker records it
                return
            rec = self.run.manifest.get(mirror.RECORD)
            if isinstance(rec, dict):
                self.run.set_entry(mirror.RECORD, {**rec, **values})

    # ------------------------------------------------------------------ stage observer
    def start(self, config: dict[str, Any]) -> None:
        rec = self.run.manifest.get(mirror.RECORD)
        if not isinstance(rec, dict) or rec.get("tracking_uri") != self.uri:
            rec = {"logger": "mlflow", "tracking_uri": self.uri, "experiment_id": None, "run_id": None,
                   "parent_run_id": None}
        rec = state.adopt_ids(self.run.path, self.uri, rec)
        try:
            self._worker = worker()
        except Exception as exc:
            self._worker = None
            self.run.set_entry(mirror.RECORD, {**rec, "complete": False, "missed": None, "pending": False})
            self._fail(f"{type(exc).__name__}: {exc}")
            return
        # session: this run's part of the record (a previous tracker of the directory, still at work after a
        # resume, must not write over it); tracker_pid: what ``sync-tracker --wait`` waits for
        self.run.set_entry(mirror.RECORD, {**rec, "complete": False, "missed": None, "pending": True,
                                           "session": uuid.uuid4().hex[:16], "tracker_pid": self._worker.pid})
        spec = {"uri": self.uri, "experiment": self.experiment, "run_name": self.run_name,
                "user_tags": self.user_tags, "sweep": self.sweep, "path": str(self.run.path),
                "shown": self.run.shown, "manifest": dict(self.run.manifest), "config": config,
                "with_model": self.with_model, "timeout": self.timeout,
                "live_after_s": self.live_after}
        try:
            self._tid = next(self._worker.ids)
            self._worker.trackers[self._tid] = self
            # on disk before the run can return: which process mirrors the run, and that nothing is uploaded yet
            state.save(self.run.path, state.fresh(self._worker.pid, self.uri, self.run.manifest[mirror.RECORD]))
            self._worker.send(("open", self._tid, spec), locked_handover(self.run.path))
        except Exception as exc:
            self._worker = None
            self._fail(f"{type(exc).__name__}: {exc}")

    def after_stage(self, name: str) -> None:
        if name == "dataset":  # the data version is known now
            self._send("tags")
        elif name == "fit":
            self._send_steps()

    def end(self, status: str) -> None:
        """The run ended with ``status`` (the manifest holds it): queue the final sections and return at once.
        The worker uploads them after the run and writes the manifest's final tracking record itself."""
        self._send_steps()
        for section in mirror.sections(status, self.with_model):  # they read the run directory, not the manifest
            self._send("section", (section, status), manifest=False)
        self._send("done", manifest=False)
        with self._lock:
            self._closed = True
        if self._worker is not None:
            self._worker.trackers.pop(self._tid, None)

    # ------------------------------------------------------------------ fit callback
    def _due(self, done: int, total: int) -> bool:
        return done % self.every == 0 or done == total

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        pass  # the worker runs at the lowest CPU priority: a fit that uses every core starves it, nothing to pause

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
        pass

    def _send_steps(self) -> None:
        """The scores so far in steps.json (the run directory holds them for sync-tracker, whatever becomes of
        the tracker process) and to the worker."""
        with self._lock:
            self._steps_due = False
            snapshot = {k: dict(v) for k, v in self.steps.items()}
            if snapshot != self._saved_steps:
                mirror.save_steps(self.run.path, snapshot)
                self._saved_steps = snapshot
        self._send("steps", snapshot, manifest=False)
