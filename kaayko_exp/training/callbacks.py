"""Progress lines for the run log: one fit callback, its interval independent of checkpointing.

The other fit callbacks live beside their subjects: checkpoints in
:mod:`kaayko_exp.training.checkpoints`, stop signals in
:mod:`kaayko_exp.training.interrupts`; the pipeline builds the list
(:func:`kaayko_exp.training.pipeline.build_fit_callbacks`). The interface is
:mod:`kaayko_exp.models.callbacks`.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

from kaayko_exp.models.callbacks import FitCallback, Saver

log = logging.getLogger("kaayko_exp.fit")


def progress_marks(total: int) -> set[int]:
    """Steps at which a progress line is due: every ~10 % and the last."""
    return {max(1, math.ceil(total * k / 10)) for k in range(1, 11)} | {total}


class ProgressLog(FitCallback):
    """Logs ``<key>: <unit> <done>/<total> [val_rmse …]`` (``fit: round 50/300 val_rmse 0.0894``) every ``every`` steps (0: every ~10 %) and at the end.

    A chunked learner reports at its chunk ends; a line is written at the first report at or past each
    due step. ``every`` is only a wish for chunked learners when positive (it sets ``interval``).
    """

    def __init__(self, every: int = 0, logger: logging.Logger = log):
        self.every = max(0, int(every))
        self.interval = self.every
        self.logger = logger
        self._due: dict[str, set[int]] = {}
        self._last: dict[str, tuple[int, int, Optional[float], bool]] = {}  # key -> done, total, score, logged
        self._unit: dict[str, str] = {}

    def _marks(self, total: int) -> set[int]:
        if self.every:
            return set(range(self.every, total + 1, self.every)) | {total}
        return progress_marks(total)

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        self._due[key] = self._marks(total)
        self._unit[key] = unit
        self._last.pop(key, None)

    def wants_score(self, key: str, done: int, total: int) -> bool:
        return any(m <= done for m in self._due.setdefault(key, self._marks(total)))

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        due = self._due.setdefault(key, self._marks(total))
        passed = {m for m in due if m <= done}
        if passed:
            due -= passed
            self._line(key, done, total, score)
        self._last[key] = (done, total, score, bool(passed))

    def after_fit(self, key: str, save: Optional[Saver] = None) -> None:
        last = self._last.pop(key, None)
        if last is not None and not last[3]:  # stopped early, between due steps
            self._line(key, *last[:3])
        self._due.pop(key, None)

    def _line(self, key: str, done: int, total: int, score: Optional[float]) -> None:
        self.logger.info("%s: %s %d/%d%s", key, self._unit.get(key, "step"), done, total,
                         "" if score is None else f" val_rmse {score:.4f}")
