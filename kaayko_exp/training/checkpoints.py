"""Fit checkpoints in the run directory: the writer (a fit callback) and the resume source.

:class:`CheckpointWriter` saves a fit's partial state every ``checkpointing.every``
steps, at once when a stop was requested, and the finished model of every sub-fit
(ensemble members), which is never fitted again. :class:`RunResume` hands a
resumed fit the newest verified state the manifest records.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from kaayko_exp.models.callbacks import FitCallback, Saver
from kaayko_exp.runs.rundir import RunDir

log = logging.getLogger("kaayko_exp.fit")


class CheckpointWriter(FitCallback):
    """Checkpoints of fits into ``run`` (see ``conf/checkpointing/``)."""

    def __init__(self, run: RunDir, cfg: Any, stop_requested: Callable[[], bool] = lambda: False):
        self.run = run
        self.every = self.interval = max(0, int(cfg.every))
        self.keep_last = max(1, int(cfg.keep_last))
        self.stop_requested = stop_requested
        self.written = 0
        self.seconds = 0.0  # time spent writing checkpoints (reported in the fit stage)
        self._totals: dict[str, int] = {}

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        self._totals[key] = int(total)

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        if save is None or done >= total:
            return
        if (self.every and done % self.every == 0) or self.stop_requested():
            self._write(key, done, total, save, final=False)

    def after_fit(self, key: str, save: Optional[Saver] = None) -> None:
        total = self._totals.pop(key, 1)
        if save is not None:
            self._write(key, total, total, save, final=True)

    def _write(self, key: str, done: int, total: int, save: Saver, *, final: bool) -> None:
        t0 = time.perf_counter()
        self.run.add_checkpoint(key, done, total, save, final=final, keep_last=self.keep_last)
        self.written += 1
        self.seconds += time.perf_counter() - t0


class RunResume:
    """The resume source of a run: the newest checkpoint of a fit key, verified against its hashes."""

    def __init__(self, run: RunDir):
        self.run = run

    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        entry = self.run.latest_checkpoint(key)
        if entry is None:
            return None
        log.info("%s: resuming from checkpoint at %d/%d", key, entry["done"], entry["total"])
        self.run.event("restore", key=key, done=entry["done"])
        return self.run.path / entry["path"], int(entry["done"])
