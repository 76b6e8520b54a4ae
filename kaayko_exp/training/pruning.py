"""Pruning inside an Optuna sweep: the fit callback that reports to the job's trial.

A job launched by the ``optuna`` sweeper (``hydra_plugins/optuna5_sweeper``) finds its
trial with :func:`sweep_trial`; outside such a sweep there is none and nothing here runs.
:class:`PruningReporter` reports the validation score to the trial on ONE monotone step
counter per trial: the fit is a sequence of phases (CV fold 0 … k-1, then the final fit),
phase ``i`` owns the steps ``i * S + 1 … (i + 1) * S`` where ``S`` is the planned rounds /
trees of one fit rounded up to a power of ten (300 rounds: S = 1000), so round ``r`` of
phase ``i`` is step ``i * S + r`` in every trial whose step count falls in the same decade,
also on a resume. The score is reported every ``pruning.report_every`` rounds and at each
phase's end (step ``(i + 1) * S``: fold ``i``'s held-out value, the final fit's validation value). When the trial's
pruner says so it raises ``optuna.TrialPruned``; the pipeline records the run as ``pruned``
and lets the exception leave the task, which the sweeper records as a PRUNED trial.

The reported value is the validation RMSE while a fit runs (what the learners track) when
the objective is an RMSE (``val_rmse``, ``cv_rmse``); for other objectives only the phase
ends are reported, with the objective's own metric, so values and the study's direction agree.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any, Optional, Protocol

from kaayko_exp.errors import ConfigError
from kaayko_exp.models.callbacks import FitCallback, Saver

log = logging.getLogger("kaayko_exp.fit")


class TrialLike(Protocol):
    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


def sweep_trial() -> Optional[Any]:
    """The running Optuna trial of this job, or ``None`` outside a sweep of the ``optuna`` sweeper
    (or when the sweeper plugin is not installed)."""
    try:
        from hydra_plugins.optuna5_sweeper.trial import current_trial
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "hydra_plugins" or exc.name.startswith("hydra_plugins.optuna5_sweeper")):
            return None
        raise
    return current_trial()


def is_pruned(exc: BaseException) -> bool:
    """Whether ``exc`` is ``optuna.TrialPruned`` (without importing optuna when nothing loaded it)."""
    mod = sys.modules.get("optuna.exceptions")
    return mod is not None and isinstance(exc, mod.TrialPruned)


def pruned_error(message: str) -> BaseException:
    from optuna import TrialPruned

    return TrialPruned(message)


def report_every(cfg: Any) -> int:
    """``pruning.report_every`` (10 for runs saved before the key existed); refused below 1."""
    from omegaconf import OmegaConf

    every = OmegaConf.select(cfg, "pruning.report_every", default=10)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(
            f"pruning.report_every={every!r} must be a whole number >= 1 (the trial reports its validation score "
            "every that many boosting rounds / trees). Use e.g. pruning.report_every=10."
        )
    return every


def phase_stride(width: int) -> int:
    """Steps one phase owns: ``width`` rounded up to a power of ten (1, 10, 100, 1000, …)."""
    stride = 1
    while stride < int(width):
        stride *= 10
    return stride


class PruningReporter(FitCallback):
    """Reports the validation score to ``trial`` (anything with ``report(value, step)`` and
    ``should_prune()``) and raises ``optuna.TrialPruned`` when the trial should be pruned.

    The pipeline calls :meth:`begin_phase` before each top-level fit (CV folds, the final fit) and
    :meth:`end_phase` with the phase's validation value; sub-fits (ensemble members) are not reported.
    """

    def __init__(self, trial: TrialLike, report_every: int = 10, in_fit_scores: bool = True):
        self.trial = trial
        self.every = self.interval = max(1, int(report_every))
        self.in_fit_scores = in_fit_scores  # report the learners' val RMSE while fitting (RMSE objectives)
        self.phase_key: Optional[str] = None
        self.offset = 0
        self.stride = 1
        self.last_step = 0
        self.reported: list[tuple[int, float]] = []
        self.pruned_at: Optional[tuple[int, float]] = None

    # -------------------------------------------------------------- phases (called by the pipeline)
    def begin_phase(self, key: str, index: int, width: int) -> None:
        """Phase ``index`` (0-based) is the fit ``key`` of ``width`` planned steps."""
        self.phase_key = key
        self.stride = phase_stride(width)
        self.offset = int(index) * self.stride

    def end_phase(self, value: Optional[float]) -> None:
        """The phase finished with validation value ``value``: report it at the phase's last step."""
        if value is not None:
            self._report(self.offset + self.stride, float(value))
        self.phase_key = None

    # -------------------------------------------------------------- the fit callback
    def wants_score(self, key: str, done: int, total: int) -> bool:
        return key == self.phase_key and self.in_fit_scores and (done % self.every == 0 or done >= total)

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        if key != self.phase_key or score is None or not self.in_fit_scores:
            return
        if done % self.every == 0 or done >= total:
            self._report(self.offset + min(int(done), self.stride), float(score))

    def _report(self, step: int, value: float) -> None:
        if step <= self.last_step or not math.isfinite(value):
            return  # steps never go back (a value at an earlier or equal step is dropped)
        self.trial.report(value, step)
        self.last_step = step
        self.reported.append((step, value))
        if self.trial.should_prune():
            self.pruned_at = (step, value)
            log.info("pruned by the sweep's pruner at step %d (value %.4f)", step, value)
            raise pruned_error(f"pruned at step {step} (value {value:.6g})")


def reporter_for(cfg: Any, trial: Optional[Any]) -> Optional[PruningReporter]:
    """The reporter for a run with objective ``cfg.evaluation.objective``, or ``None`` without a trial."""
    if trial is None:
        return None
    from kaayko_exp.training.objectives import metric_of, objective_names

    metric = metric_of(objective_names(cfg)[0])
    return PruningReporter(trial, report_every(cfg), in_fit_scores=(metric == "rmse"))
