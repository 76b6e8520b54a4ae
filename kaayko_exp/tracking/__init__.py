"""Mirrors of runs and sweeps in an experiment tracker (``logger=mlflow``); never a dependency of training.

A tracker is one more fit callback (the validation score per round as stepped metrics) and an observer of
the stage sequence (params and tags at the start, final metrics, artifacts and the model at the end); see
:mod:`kaayko_exp.tracking.run_tracker`. Its calls run in a detached, lowest-priority tracker process
(:mod:`kaayko_exp.tracking.worker`) that finishes them after the run returns, recording its progress on disk
(:mod:`kaayko_exp.tracking.state`); every fault is caught: one warning line, the run goes on, and
``python -m kaayko_exp.runs sync-tracker <dir>``
(:mod:`kaayko_exp.tracking.sync`) uploads what was missed later. Sweeps become a parent run with the
trials nested (:mod:`kaayko_exp.tracking.sweep`).

This package imports MLflow only when ``logger=mlflow`` is chosen: keep module-level imports light.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from kaayko_exp.tracking.settings import check_logger, logger_on

__all__ = ["check_logger", "logger_on", "prestart", "tracker_for"]


def tracker_for(cfg: Any, run: Any, trial: Optional[Any] = None, directions: Sequence[str] = ()) -> Optional[Any]:
    """The run's tracker (a fit callback and stage observer), or None with ``logger=none``. ``directions``: the
    objective's (``minimize`` / ``maximize``; a sweep's parent run picks its best trial by them)."""
    if not logger_on(cfg):
        return None
    from kaayko_exp.tracking.run_tracker import RunTracker

    return RunTracker(cfg, run, trial, list(directions))


def prestart(cfg: Any) -> None:
    """Start the tracker's process now (``logger=mlflow``), so MLflow's imports overlap the run's own start-up;
    a failure here is left for the run's tracker to report."""
    if not logger_on(cfg):
        return
    try:
        from kaayko_exp.tracking.run_tracker import worker

        worker()
    except Exception:
        pass
