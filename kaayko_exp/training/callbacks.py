"""The fit loop's callback hook.

Every model's ``fit`` receives a :class:`FitHooks`. Iterative learners (XGBoost
rounds, forest trees, histgb iterations) call :meth:`FitHooks.step` after each
chunk of work; the pipeline's implementation logs progress, writes checkpoints
and reports intermediate validation scores (an Optuna sweeper can prune there).
On resume, :meth:`FitHooks.restore` hands the model its last partial state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional


class FitHooks:
    """Default hooks: no checkpoints, no progress. Subclassed by the pipeline and tests."""

    #: checkpoint every N rounds / trees (0: never inside a fit)
    every: int = 0

    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        """``(directory, done)`` of the newest state saved under ``key``, or ``None`` to start fresh."""
        return None

    def step(
        self,
        key: str,
        done: int,
        total: int,
        *,
        save: Optional[Callable[[Path], None]] = None,
        score: Optional[float] = None,
        final: bool = False,
    ) -> None:
        """Report progress of fit ``key``: ``done`` of ``total`` rounds/trees finished.

        ``save(directory)`` writes the partial state into an empty directory; the
        hooks decide whether to call it (every ``every`` steps, and always when
        ``final`` is true: a finished sub-fit such as an ensemble member or a CV fold
        that must never be re-fitted). ``score`` is the current validation RMSE when
        the learner tracks one; a sweeper's pruner may raise from here.
        """

    def log(self, message: str) -> None:
        """A progress line for the run log."""
