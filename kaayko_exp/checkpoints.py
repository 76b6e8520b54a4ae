"""The pipeline's fit hooks: progress lines, periodic checkpoints, resume, stop requests."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .hooks import FitHooks
from .interrupts import RunInterrupted
from .rundir import RunDir, kill_point

log = logging.getLogger("kaayko_exp.fit")


class PipelineHooks(FitHooks):
    """FitHooks backed by a run directory's manifest (see ``conf/checkpointing/``)."""

    def __init__(self, run: RunDir, cfg: Any, reporter: Optional[Callable[[str, int, float], None]] = None):
        self.run = run
        self.every = max(0, int(cfg.every))
        self.keep_last = max(1, int(cfg.keep_last))
        self.reporter = reporter  # e.g. an Optuna trial's report + prune check
        self.stop_requested: Optional[int] = None
        self.in_fit = False
        self._last_log: dict[str, float] = {}
        self._last_pct: dict[str, int] = {}

    def request_stop(self, signum: int) -> None:
        self.stop_requested = signum
        log.warning("stop requested (signal %d): saving a checkpoint at the next round", signum)

    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        self.in_fit = True
        entry = self.run.latest_checkpoint(key)
        if entry is None:
            return None
        log.info("%s: resuming from checkpoint at %d/%d", key, entry["done"], entry["total"])
        self.run.event("restore", key=key, done=entry["done"])
        return self.run.path / entry["path"], int(entry["done"])

    def step(self, key: str, done: int, total: int, *, save: Optional[Callable[[Path], None]] = None,
             score: Optional[float] = None, final: bool = False) -> None:
        self.in_fit = done < total
        self._progress(key, done, total, score)
        if self.reporter is not None and score is not None:
            self.reporter(key, done, score)
        due = final or (self.every and done < total and done % self.every == 0)
        stopping = self.stop_requested is not None and done < total
        if save is not None and (due or stopping):
            self.run.add_checkpoint(key, done, total, save, final=final, keep_last=self.keep_last)
        kill_point(f"{key}:{done}")
        if stopping:
            signum, self.stop_requested = self.stop_requested, None
            self.in_fit = False
            raise RunInterrupted(signum)

    def log(self, message: str) -> None:
        log.info(message)

    def _progress(self, key: str, done: int, total: int, score: Optional[float]) -> None:
        pct = int(100 * done / max(total, 1)) // 10 * 10
        now = time.monotonic()
        if done == total or pct > self._last_pct.get(key, -1) or now - self._last_log.get(key, 0) > 30:
            self._last_pct[key], self._last_log[key] = pct, now
            extra = f" val_rmse {score:.4f}" if score is not None else ""
            log.info("%s: %d/%d (%d%%)%s", key, done, total, int(100 * done / max(total, 1)), extra)
