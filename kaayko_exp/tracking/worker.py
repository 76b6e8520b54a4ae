"""The tracker's own process: every MLflow call of a run (or of a sweep's trials) runs here, not in training.

Importing MLflow and its SQLAlchemy store costs about 3 CPU s, and a thread in the run would hold the GIL
for most of it: in a process of its own (started when the run starts, paused while a fit runs) that work overlaps
the run's stages on another core. One worker serves every tracker of its parent process (a sweep's trials
in one process share it, and MLflow is imported once). :mod:`kaayko_exp.tracking.run_tracker` is the
parent's side.

Protocol (pickled tuples over a socket pair, in order). Parent -> worker: ``("open", tid, spec)``,
``(kind, tid, manifest, extra)`` with kind ``tags``, ``steps``, ``section``, ``done``. Worker -> parent:
``("record", tid, values)`` (manifest record updates), ``("fault", tid, text)`` (the first fault of a
tracker; its later calls are skipped except steps.json and ``done``), ``("done", tid)``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from kaayko_exp.tracking import mirror

#: the priority (nice) of the work done while a run trains. 0: measured with 19, on a loaded machine the
#: imports were starved and the run's end waited for them (an unprivileged thread cannot raise it again);
#: the run is protected by the pause around its fit instead
NICE = 0


class _Tracker:
    """One run's mirror inside the worker."""

    def __init__(self, send: Any, tid: int, spec: dict[str, Any]) -> None:
        self.send, self.tid = send, tid
        self.uri, self.experiment = spec["uri"], spec["experiment"]
        self.run_name, self.user_tags, self.sweep = spec["run_name"], spec["user_tags"], spec["sweep"]
        self.path, self.shown = Path(spec["path"]), spec["shown"]
        self.manifest: dict[str, Any] = spec["manifest"]
        self.client: Any = None
        self.floor: dict[str, int] = {}
        self.failed = False

    def _record(self, **values: Any) -> None:
        self.manifest[mirror.RECORD] = {**self.manifest[mirror.RECORD], **values}
        self.send(("record", self.tid, values))

    def _run_id(self) -> str:
        return self.manifest[mirror.RECORD]["run_id"]

    def open(self, config: dict[str, Any]) -> None:
        from kaayko_exp.tracking import client as mc
        from kaayko_exp.tracking.sweep import child_tags, parent_run

        self.client = c = mc.connect(self.uri)
        exp = mc.experiment_id(c, self.uri, self.experiment)
        rec = self.manifest[mirror.RECORD]
        run_id = rec.get("run_id")
        fresh = not run_id
        if run_id:
            c.update_run(run_id, status="RUNNING")
        else:
            parent = parent_run(c, exp, self.uri, self.sweep) if self.sweep else None
            name = self.run_name or (f"trial {self.sweep['number']}" if self.sweep else self.shown)
            tags = {"mlflow.runName": name, **({"mlflow.parentRunId": parent} if parent else {})}
            run_id = c.create_run(exp, tags=tags, run_name=name).info.run_id
            self._record(experiment_id=exp, run_id=run_id, parent_run_id=parent)
        mc.log_params(c, run_id, mirror.params_of(config), fresh=fresh)
        extra = {**self.user_tags, **(child_tags(self.sweep) if self.sweep else {})}
        mc.set_tags(c, run_id, mirror.run_tags(self.path, self.manifest, extra))

    def tags(self, _: Any) -> None:
        from kaayko_exp.tracking import client as mc

        mc.set_tags(self.client, self._run_id(), mirror.run_tags(self.path, self.manifest, self.user_tags))

    def steps(self, snapshot: dict[str, dict[int, float]]) -> None:
        mirror.save_steps(self.path, snapshot)  # for sync-tracker, also when the tracker failed
        if not self.failed:
            mirror.log_steps(self.client, self._run_id(), snapshot, self.floor)

    def section(self, args: tuple[str, str]) -> None:
        name, status = args
        mirror.log_section(self.client, self._run_id(), self.path, name, status,
                           self.manifest[mirror.RECORD].get("parent_run_id"), self.sweep)

    def handle(self, kind: str, manifest: Optional[dict[str, Any]], extra: Any) -> None:
        if manifest is not None:  # the run's manifest as it is now, with this worker's own record updates kept
            self.manifest = {**manifest, mirror.RECORD: self.manifest[mirror.RECORD]}
        if kind == "done":
            self.send(("done", self.tid))
            return
        if self.failed and kind != "steps":
            return
        try:
            getattr(self, kind)(extra)
        except Exception as exc:  # the tracker never costs a run: the parent prints one warning line
            if not self.failed:
                self.failed = True
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                self.send(("fault", self.tid, f"{type(exc).__name__}: {first}"))


#: what the tracker needs, imported as soon as the worker starts (before the run's first command), one module
#: at a time so that a pause (the run's fit, which uses every core) waits at most one import
WARM = ("sqlalchemy", "alembic", "mlflow", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store",
        "mlflow.pyfunc", "kaayko_exp.export.mlflow_model")


def warm(go: threading.Event) -> None:
    import importlib

    for name in WARM:
        go.wait()
        try:
            importlib.import_module(name)
        except Exception:  # a real fault shows up, with its message, at the call that needs the module
            return


class _Lane:
    """A thread that runs jobs in order, at its own priority (Linux: nice is per thread)."""

    def __init__(self, nice: int) -> None:
        self.jobs: "queue.Queue[Callable[[], None]]" = queue.Queue()
        threading.Thread(target=self._run, args=(nice,), daemon=True).start()

    def _run(self, nice: int) -> None:
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except (AttributeError, OSError):
                pass
        while True:
            job = self.jobs.get()
            try:
                job()
            finally:
                self.jobs.task_done()


def serve(conn: Any) -> None:
    """Run the commands in order: while a run trains (open, tags, steps) in the low lane, which waits while a
    fit runs; from its end on (sections, done: the run waits for them) in the high lane, never paused."""
    trackers: dict[int, _Tracker] = {}
    lanes = {"low": _Lane(NICE), "high": _Lane(0)}
    current = "low"
    go = threading.Event()  # cleared while a run's fit runs (``pause`` .. ``resume``): the low lane waits
    go.set()
    paused = 0
    lanes["low"].jobs.put(lambda: warm(go))

    def job(msg: tuple) -> None:
        kind, tid = msg[0], msg[1]
        if kind not in ("section", "done"):
            go.wait()
        if kind == "open":
            spec = msg[2]
            trackers[tid] = t = _Tracker(conn.send, tid, spec)
            t.handle("open", None, spec["config"])
        elif tid in trackers:
            trackers[tid].handle(kind, msg[2], msg[3])
            if kind == "done":
                trackers.pop(tid, None)

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg[0] in ("pause", "resume"):
            paused = max(0, paused + (1 if msg[0] == "pause" else -1))
            go.clear() if paused else go.set()
            continue
        lane = "high" if msg[0] in ("section", "done") else "low"
        if lane == "high":  # a run waits for these: nothing holds the low lane back now
            paused = 0
            go.set()
        if lane != current:  # keep the order: the other lane finishes first
            lanes[current].jobs.join()
            current = lane
        lanes[lane].jobs.put(lambda m=msg: job(m))
    lanes[current].jobs.join()


def main() -> None:
    import socket
    from multiprocessing.connection import Connection

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no background thread phoning home
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(Connection(sock.detach()))
    # Every command has run to its end (serve joined its lanes). Exit now: MLflow's and SQLAlchemy's exit
    # handlers and threads would hold the process (and the run waiting to reap it) for seconds.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
