"""The pipeline's fit hooks: progress lines (written by the models), periodic checkpoints, resume, stop requests."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from kaayko_exp.runs.rundir import RunDir, kill_point
from kaayko_exp.training.callbacks import FitHooks
from kaayko_exp.training.interrupts import RunInterrupted

log = logging.getLogger("kaayko_exp.fit")


class PipelineHooks(FitHooks):
    """FitHooks backed by a run directory's manifest (see ``conf/checkpointing/``)."""

    def __init__(self, run: RunDir, cfg: Any):
        self.run = run
        self.every = max(0, int(cfg.every))
        self.keep_last = max(1, int(cfg.keep_last))
        self.stop_requested: Optional[int] = None
        self.in_fit = False
        self.checkpoints_written = 0
        self.checkpoint_seconds = 0.0  # time spent writing checkpoints (reported in the fit stage)

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
        due = final or (self.every and done < total and done % self.every == 0)
        stopping = self.stop_requested is not None and done < total
        if save is not None and (due or stopping):
            t0 = time.perf_counter()
            self.run.add_checkpoint(key, done, total, save, final=final, keep_last=self.keep_last)
            self.checkpoints_written += 1
            self.checkpoint_seconds += time.perf_counter() - t0
        kill_point(f"{key}:{done}")
        if stopping:
            signum, self.stop_requested = self.stop_requested, None
            self.in_fit = False
            raise RunInterrupted(signum)

    def log(self, message: str) -> None:
        log.info(message)
