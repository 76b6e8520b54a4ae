"""The fit loop's callback interface: how a model's training loop reports to whoever watches it.

A model's ``fit`` takes a list of :class:`FitCallback` objects (in the manner of
XGBoost's ``TrainingCallback`` or Lightning's callbacks), each with one job:
progress lines, checkpoints, stop signals, and later a pruner. Iterative learners
(XGBoost rounds, forest trees, histgb iterations) call ``after_step`` after each
round or chunk; one-shot learners report a single step. Where a fit resumes from
is a separate small object, a :class:`ResumeSource`.

Every hook may raise to stop the fit (a stop signal raises ``RunInterrupted``, a
pruner would raise its own exception). The concrete callbacks live in
``kaayko_exp.training``; this module knows nothing about run directories.

Calls, for a fit with key ``key`` (``fit``, ``cv/fold2``, ``fit/xgboost`` for an
ensemble member)::

    before_fit(key, total, unit)                # unit: what a step is (round, tree, iteration, step)
    after_step(key, done, total, score, save)   # done = 1..total (or fewer: early stopping)
    after_fit(key, save)                        # only when the fit finished

Extension point, a pruner: one more callback whose ``after_step`` reads ``score``
(the validation RMSE after ``done`` steps), keeps its own global step count across
sub-fits, reports it to the sweeper and raises to prune.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol

#: writes a (partial or finished) model state into an empty directory
Saver = Callable[[Path], None]


class FitCallback:
    """One observer of a fit loop. Subclasses override the hooks they need; the defaults do nothing."""

    #: report at least every ``interval`` steps (0: no wish). Learners that work in chunks (forests, histgb)
    #: grow chunks of the greatest common divisor of their callbacks' intervals; chunking never changes the model.
    interval: int = 0

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        """A fit of ``total`` steps starts; ``unit`` names a step (``round``, ``tree``, ``iteration``, or
        ``step`` for one-shot learners, which report a single step)."""

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        """``done`` of ``total`` steps are finished.

        ``score``: the validation RMSE now, when the learner tracks one. ``save(directory)``: writes
        the partial state a resumed fit continues from (``None`` when the step cannot be resumed from).
        """

    def wants_score(self, key: str, done: int, total: int) -> bool:
        """Whether this callback reads ``score`` at step ``done`` (a learner may skip scoring its validation
        rows at steps nobody reads; early stopping and the last step are always scored)."""
        return False

    def after_fit(self, key: str, save: Optional[Saver] = None) -> None:
        """The fit finished. ``save`` is given for a sub-fit of a composite model (an ensemble member)
        that must never be fitted again: it writes the finished model, which a checkpoint callback keeps."""


class ResumeSource(Protocol):
    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        """``(directory, done)`` of the newest saved state of fit ``key``, or ``None`` to start fresh."""


class FitCallbacks:
    """What a model's fit loop talks to: its callbacks, called in order, and where to resume from."""

    def __init__(self, callbacks: Iterable[FitCallback] = (), resume: Optional[ResumeSource] = None):
        self.callbacks = list(callbacks)
        self.resume = resume

    @classmethod
    def of(cls, callbacks: "FitCallbacks | Iterable[FitCallback] | None",
           resume: Optional[ResumeSource] = None) -> "FitCallbacks":
        if isinstance(callbacks, FitCallbacks):
            if resume is not None:
                return cls(callbacks.callbacks, resume)
            return callbacks
        return cls(callbacks or (), resume)

    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        return None if self.resume is None else self.resume.restore(key)

    def chunk(self, total: int) -> int:
        """Steps per chunk for chunked learners: the gcd of the callbacks' intervals (``total`` when none asks)."""
        wanted = [int(c.interval) for c in self.callbacks if int(getattr(c, "interval", 0) or 0) > 0]
        return max(1, min(total, math.gcd(*wanted))) if wanted else max(1, total)

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        for c in self.callbacks:
            c.before_fit(key, total, unit)

    def wants_score(self, key: str, done: int, total: int) -> bool:
        return any(c.wants_score(key, done, total) for c in self.callbacks)

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        for c in self.callbacks:
            c.after_step(key, done, total, score, save)

    def after_fit(self, key: str, save: Optional[Saver] = None) -> None:
        for c in self.callbacks:
            c.after_fit(key, save)
