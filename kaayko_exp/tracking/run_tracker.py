"""One run mirrored in MLflow: a fit callback (stepped validation scores) and a stage observer.

The pipeline (:func:`kaayko_exp.training.pipeline.execute`) calls :meth:`RunTracker.start` before the stages,
:meth:`RunTracker.after_stage` after each, and :meth:`RunTracker.end` once the manifest holds the run's final
status; the fit loop calls the :class:`~kaayko_exp.models.callbacks.FitCallback` hooks. Every MLflow call runs
in order on one worker thread, so training never waits for the tracker (only :meth:`end` waits, at most
``logger.timeout_s``). The first fault (a server that does not answer, a locked SQLite file, anything) is one
warning line; the mirror stops there, the run goes on, and the manifest's ``tracking`` record says what
``python -m kaayko_exp.runs sync-tracker`` has to upload. The MLflow run id is in that record, so a resumed run
continues the same MLflow run; steps MLflow already holds are never sent again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from kaayko_exp.tracking import mirror

log = logging.getLogger("kaayko_exp.tracking")

#: stepped scores are uploaded at most this often while a fit runs (each upload is a database write), and
#: whatever is left at the fit's end
STEP_FLUSH_S = 2.0


def sync_hint(path: str) -> str:
    return f"python -m kaayko_exp.runs sync-tracker {path}"


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
        self._floor: dict[str, int] = {}
        self._client: Any = None
        self._queue: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._steps_due = False
        self._sent_at = -STEP_FLUSH_S
        self._lock = threading.Lock()
        self.failed: Optional[str] = None

    # ------------------------------------------------------------------ the worker
    def _submit(self, fn: Callable[[], None]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="kaayko-tracker", daemon=True)
            self._thread.start()
        self._queue.put(fn)

    def _work(self) -> None:
        while True:
            fn = self._queue.get()
            if fn is None:
                return
            if self.failed is None or getattr(fn, "always", False):
                try:
                    fn()
                except Exception as exc:  # the tracker never costs a run: one warning line, then silence
                    self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failed is not None:
            return
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        self.failed = f"{type(exc).__name__}: {first}"
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
        self._submit(lambda: self._open(config))

    def _open(self, config: dict[str, Any]) -> None:
        from kaayko_exp.tracking import client as mc
        from kaayko_exp.tracking.sweep import child_tags, parent_run

        self._client = c = mc.connect(self.uri)
        exp = mc.experiment_id(c, self.uri, self.experiment)
        rec = self.run.manifest[mirror.RECORD]
        run_id = rec.get("run_id")
        fresh = not run_id
        if run_id:
            c.update_run(run_id, status="RUNNING")
            parent = rec.get("parent_run_id")
        else:
            parent = parent_run(c, exp, self.uri, self.sweep) if self.sweep else None
            name = self.run_name or (f"trial {self.sweep['number']}" if self.sweep else self.run.shown)
            tags = {"mlflow.runName": name, **({"mlflow.parentRunId": parent} if parent else {})}
            run_id = c.create_run(exp, tags=tags, run_name=name).info.run_id
            self._record(experiment_id=exp, run_id=run_id, parent_run_id=parent)
        mc.log_params(c, run_id, mirror.params_of(config), fresh=fresh)
        extra = {**self.user_tags, **(child_tags(self.sweep) if self.sweep else {})}
        mc.set_tags(c, run_id, mirror.run_tags(self.run.path, self.run.manifest, extra))

    def after_stage(self, name: str) -> None:
        if name == "dataset":  # the data version is known now
            self._submit(lambda: self._tags())
        elif name == "fit":
            self._submit(self._send_steps)

    def _tags(self) -> None:
        from kaayko_exp.tracking import client as mc

        mc.set_tags(self._client, self._run_id(), mirror.run_tags(self.run.path, self.run.manifest, self.user_tags))

    def _run_id(self) -> str:
        return self.run.manifest[mirror.RECORD]["run_id"]

    def end(self, status: str) -> None:
        """The run ended with ``status`` (the manifest holds it): final sections, then wait for the uploads."""
        self._submit(self._send_steps)
        for section in mirror.sections(status, self.with_model):
            self._submit(lambda s=section: self._section(s, status))
        done = threading.Event()

        def marker() -> None:
            done.set()

        marker.always = True  # type: ignore[attr-defined]  (runs after a fault too)
        self._submit(marker)
        self._queue.put(None)
        if not done.wait(self.timeout) and self.failed is None:
            self.failed = f"the uploads took longer than logger.timeout_s={self.timeout:g} s"
            log.warning("MLflow logger (%s): %s; the run is complete on disk; upload the rest with: %s",
                        self.uri, self.failed, sync_hint(self.run.shown))
            self._record(complete=False, missed=self.failed)
            return
        if self.failed is None:
            self._record(complete=True, missed=None)

    def _section(self, name: str, status: str) -> None:
        from kaayko_exp.tracking.sweep import update_parent

        c, run_id, path = self._client, self._run_id(), self.run.path
        if name == "final":
            mirror.log_final(c, run_id, path)
        elif name == "files":
            mirror.log_files(c, run_id, path)
        elif name == "model":
            mirror.log_model(c, run_id, path)
        elif name == "status":
            mirror.finish(c, run_id, status, trial=self.sweep is not None)
            if self.sweep:
                update_parent(c, self.run.manifest[mirror.RECORD]["parent_run_id"], self.sweep)

    # ------------------------------------------------------------------ fit callback
    def _due(self, done: int, total: int) -> bool:
        return done % self.every == 0 or done == total

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        return None

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
            self._submit(self._send_steps)

    def after_fit(self, key: str, save: Optional[Any] = None) -> None:
        return None

    def _send_steps(self) -> None:
        with self._lock:
            self._steps_due = False
            snapshot = {k: dict(v) for k, v in self.steps.items()}
        mirror.save_steps(self.run.path, snapshot)  # for sync-tracker, also when the tracker failed
        if self.failed is None:
            mirror.log_steps(self._client, self._run_id(), snapshot, self._floor)

    _send_steps.always = True  # type: ignore[attr-defined]
