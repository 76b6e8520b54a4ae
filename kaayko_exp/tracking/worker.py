"""The tracker's own process: every MLflow call of a run (or of a sweep's trials) runs here, never in training.

It is a background mirror, like MLflow's async logging or wandb's syncing: the run hands it commands and
never waits for them. The process

- starts its work ``logger.live_after_s`` after it was started (default 60 s), or when the process that
  started it ends, if sooner: MLflow's import, its SQLAlchemy store set-up and the first model export (about
  3.5 CPU s) never share the CPU with a run shorter than that, and a longer run is live in MLflow from then on;
- runs at the lowest CPU priority (Linux ``SCHED_IDLE``, else ``nice 19``), so that work and the uploads use
  only cores the run leaves idle as far as the machine allows (on 2 cores a tracker working beside a run
  still slowed it by about 16 %);
- lives in a session of its own (``start_new_session``) with no terminal streams: Ctrl-C of the run does not
  reach it, and a run's exit (or a pipe reading the run's output) does not wait for it;
- finishes its queue (final metrics, artifacts, model export, the sweep's parent run) after the run returned,
  then exits. One process serves every run of the process that started it: a sweep's trials share it, and
  MLflow is imported once per sweep;
- records what it uploaded in each directory's ``tracking/state.json`` (:mod:`kaayko_exp.tracking.state`) and,
  once the run released its directory, the final record in the run's manifest (under the run's lock), so a
  tracker that dies mid-queue leaves ``sync-tracker`` an exact list of what is missing;
- retries a SQLite database that another process holds locked, for up to ``logger.timeout_s``.

Protocol (pickled tuples over a socket pair, in order). Parent -> worker: ``("open", tid, spec)`` followed by
the locked ``tracker.lock`` file (SCM_RIGHTS), ``(kind, tid, manifest, extra)`` with kind ``tags``,
``steps``, ``section``, ``done``; ``("sweep_end", 0, spec)`` followed by the sweep's lock file. Worker ->
parent, while the parent listens: ``("record", tid, values)``, ``("fault", tid, text)`` (the first fault of
a tracker; its later calls are skipped except ``done``). :mod:`kaayko_exp.tracking.run_tracker`
is the parent's side.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from kaayko_exp.tracking import mirror
from kaayko_exp.tracking import state as st

#: between retries of a command that met a locked SQLite database
RETRY_S = 0.5


def lowest_priority() -> str:
    """Put this process (its threads are created later and inherit it) at the lowest CPU priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "SCHED_IDLE"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19)
        return "nice 19"
    except OSError:
        return "normal"


def locked_database(exc: BaseException) -> bool:
    return "database is locked" in str(exc).lower()


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"


def note(path: Path, text: str) -> None:
    """One line in ``<dir>/tracking/tracker.log`` (where a fault shows when the run has returned already)."""
    try:
        where = Path(path) / st.FOLDER / "tracker.log"
        where.parent.mkdir(parents=True, exist_ok=True)
        with open(where, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
    except OSError:
        pass


def retrying(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()``, again while the SQLite database is locked by another process (at most ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except Exception as exc:
            if not locked_database(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(RETRY_S)


class _Tracker:
    """One run's mirror inside the worker."""

    def __init__(self, send: Callable[[tuple], None], tid: int, spec: dict[str, Any], lock_fd: int,
                 woke: Optional[dict[str, Any]] = None) -> None:
        self.send, self.tid, self.lock_fd = send, tid, lock_fd
        self.uri, self.experiment = spec["uri"], spec["experiment"]
        self.run_name, self.user_tags, self.sweep = spec["run_name"], spec["user_tags"], spec["sweep"]
        self.path, self.shown = Path(spec["path"]), spec["shown"]
        self.timeout = float(spec.get("timeout") or 60)
        self.manifest: dict[str, Any] = spec["manifest"]
        self.client: Any = None
        self.floor: dict[str, int] = {}
        self.failed: Optional[str] = None
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # taken by the run already; else a previous tracker of this dir ends first
        rec = self.manifest[mirror.RECORD] = st.adopt_ids(self.path, self.uri, self.manifest[mirror.RECORD])
        self.state: dict[str, Any] = {**st.fresh(os.getpid(), self.uri, rec), **(woke or {})}
        self._save()

    def _save(self, **values: Any) -> None:
        self.state.update(values, cpu_s=round(time.process_time(), 3), at=time.time())
        st.save(self.path, self.state)

    def _record(self, **values: Any) -> None:
        self.manifest[mirror.RECORD] = {**self.manifest[mirror.RECORD], **values}
        self._save(**{k: v for k, v in values.items() if k in self.state})
        self.send(("record", self.tid, values))

    def _run_id(self) -> str:
        return self.manifest[mirror.RECORD]["run_id"]

    def open(self, config: dict[str, Any]) -> None:
        from kaayko_exp.tracking import client as mc
        from kaayko_exp.tracking.sweep import child_tags, parent_run

        self.client = c = self.client or mc.connect(self.uri)
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
        if not self.failed:
            mirror.log_steps(self.client, self._run_id(), snapshot, self.floor)

    def section(self, args: tuple[str, str]) -> None:
        name, status = args
        mirror.log_section(self.client, self._run_id(), self.path, name, status,
                           self.manifest[mirror.RECORD].get("parent_run_id"), self.sweep)
        self._save(sections=[*self.state["sections"], name])

    def handle(self, kind: str, manifest: Optional[dict[str, Any]], extra: Any) -> None:
        if manifest is not None:  # the run's manifest as it is now, with this worker's own record updates kept
            self.manifest = {**manifest, mirror.RECORD: self.manifest[mirror.RECORD]}
        if kind == "done":
            self.finish()
            return
        if self.failed:
            return
        try:
            retrying(lambda: getattr(self, kind)(extra), self.timeout if self.uri.startswith("sqlite:") else 0)
        except Exception as exc:  # the tracker never costs a run: one warning line
            if not self.failed:
                self.failed = one_line(exc)
                self._save(missed=self.failed)
                note(self.path, f"MLflow logger ({self.uri}) failed: {self.failed}. Upload what the tracker missed "
                                f"with: python -m kaayko_exp.runs sync-tracker {self.shown}")
                self.send(("fault", self.tid, self.failed))

    def finish(self) -> None:
        """The run has ended and stopped writing its tracking record: write the final one (state file, then
        the manifest under the run's own lock once the run released it), then let go of the directory."""
        complete = self.failed is None
        self._save(finished=True, complete=complete, missed=self.failed)
        final = {k: self.state[k] for k in ("run_id", "experiment_id", "parent_run_id")}
        final.update(complete=complete, missed=self.failed, pending=False)
        try:
            self._write_manifest(final)
        finally:
            os.close(self.lock_fd)

    def _write_manifest(self, values: dict[str, Any]) -> None:
        from kaayko_exp.runs.rundir import RunDir

        deadline = time.monotonic() + self.timeout
        try:
            run = RunDir.open(self.path)
            while not run.try_lock():  # the run still holds it for a moment, or a resume took it: poll
                if time.monotonic() >= deadline:
                    note(self.path, "the run's manifest stayed locked; its tracking record is in "
                                    f"{st.FOLDER}/{st.STATE_FILE} (sync-tracker reads it)")
                    return
                time.sleep(st.POLL_S)
            try:
                rec = run.manifest.get(mirror.RECORD)
                if isinstance(rec, dict) and rec.get("session") == self.state["session"]:  # not a newer run's
                    run.set_entry(mirror.RECORD, {**rec, **values})
            finally:
                run.release()
        except Exception as exc:
            note(self.path, f"could not write the manifest's tracking record: {one_line(exc)}")


def sweep_end(spec: dict[str, Any], lock_fd: int) -> None:
    """The sweep's parent run gets its final counts and best trial, and ends."""
    import json

    from kaayko_exp.tracking import client as mc
    from kaayko_exp.tracking.sweep import SWEEP_FILE, update_parent

    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        try:  # read now, not when the sweep ended: the trials' commands (queued before) created the parent
            saved = json.loads((Path(spec["sweep_dir"]) / SWEEP_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # no trial reached the tracker: sync-tracker uploads the sweep later
        spec["uri"] = saved["tracking_uri"]
        client = mc.connect(spec["uri"])

        def end() -> None:
            update_parent(client, saved["parent_run_id"], spec["ctx"])
            client.set_terminated(saved["parent_run_id"], "FINISHED")

        retrying(end, float(spec.get("timeout") or 60) if spec["uri"].startswith("sqlite:") else 0)
        st.save(Path(spec["sweep_dir"]), {"pid": os.getpid(), "finished": True, "complete": True,
                                          "cpu_s": round(time.process_time(), 3), "at": time.time()})
    except Exception as exc:
        note(Path(spec["sweep_dir"]), f"MLflow logger ({spec['uri']}) could not end the sweep's parent run: "
                                      f"{one_line(exc)}; upload later with: python -m kaayko_exp.runs sync-tracker "
                                      f"{spec['sweep_dir']}")
    finally:
        os.close(lock_fd)


#: what the tracker needs, imported as soon as the worker starts (before the run's first command is served)
WARM = ("sqlalchemy", "alembic", "mlflow", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store",
        "mlflow.pyfunc", "kaayko_exp.export.mlflow_model")


def warm() -> None:
    import importlib

    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # a real fault shows up, with its message, at the call that needs the module
            return


def serve(conn: Any) -> None:
    """Read commands as they come (the run never blocks on a full socket) and run them in order, in one thread."""
    from multiprocessing.reduction import recv_handle

    started = time.monotonic()
    trackers: dict[int, _Tracker] = {}
    jobs: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue()
    listening = [True]

    def send(msg: tuple) -> None:
        if listening[0]:
            try:
                conn.send(msg)
            except OSError:  # the run has exited: its directory holds what it needs (state file, manifest)
                listening[0] = False

    # the jobs wait until the process that started this worker ends (end of input) or its first run has gone
    # on for ``live_after_s``: a shorter run never shares the CPU with MLflow's import, store set-up and uploads
    live = threading.Event()
    timer: list[threading.Timer] = []
    woke: dict[str, Any] = {}  # when and why the jobs started (each run's tracking/state.json shows it)
    waking = threading.Lock()

    def wake(because: str) -> None:
        with waking:
            if not live.is_set():
                woke.update(live_at=time.time(), live_because=because)
                live.set()

    def run_jobs() -> None:
        live.wait()
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                pass

    def command(msg: tuple, fd: Optional[int]) -> None:
        kind, tid = msg[0], msg[1]
        if kind == "open":
            spec = msg[2]
            try:
                trackers[tid] = t = _Tracker(send, tid, spec, fd, woke)  # type: ignore[arg-type]
            except Exception:
                os.close(fd)  # type: ignore[arg-type]
                raise
            t.handle("open", None, spec["config"])
        elif kind == "sweep_end":
            sweep_end(msg[2], fd)  # type: ignore[arg-type]
        elif tid in trackers:
            trackers[tid].handle(kind, msg[2], msg[3])
            if kind == "done":
                trackers.pop(tid, None)

    worker = threading.Thread(target=run_jobs, name="kaayko-tracker-jobs")
    worker.start()
    jobs.put(warm)
    while True:
        try:
            msg = conn.recv()
            fd = recv_handle(conn) if msg[0] in ("open", "sweep_end") else None
        except (EOFError, OSError):
            break
        if msg[0] == "open" and not timer:  # the first run's setting counts (a sweep's trials share one)
            delay = float(msg[2].get("live_after_s", 0)) - (time.monotonic() - started)
            timer.append(threading.Timer(max(0.0, delay), wake, args=("live_after_s",)))
            timer[0].daemon = True
            timer[0].start()
        jobs.put(lambda m=msg, f=fd: command(m, f))
    wake("the run ended")
    listening[0] = False
    jobs.put(None)
    worker.join()


def main() -> None:
    import socket
    from multiprocessing.connection import Connection

    lowest_priority()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no background thread phoning home
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(Connection(sock.detach()))
    # Every command has run to its end. Exit now: MLflow's and SQLAlchemy's exit handlers and threads would
    # hold the process for seconds.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
