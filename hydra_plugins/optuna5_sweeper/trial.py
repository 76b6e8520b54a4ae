"""Job side: the Optuna trial of the running job, for intermediate reports and pruning.

    from hydra_plugins.optuna5_sweeper.trial import current_trial

    trial = current_trial()          # None outside a sweep run by this sweeper
    if trial is not None:
        trial.report(score, step)
        if trial.should_prune():
            raise optuna.TrialPruned()

The job never tells the trial its result; the sweeper does, from the task's return value
(``optuna.TrialPruned`` raised out of the task marks the trial PRUNED).

Stopping: on SIGINT/SIGTERM the sweeper (in the main thread) asks every running job to stop. Jobs run by
``hydra/launcher=basic`` run in the sweep process's worker threads, where no signal handler runs, so a job
polls :func:`stop_requested` at its steps, saves what it needs and ends by raising (or ``sys.exit``); the
sweeper then marks the trial FAIL and queues its parameters again, so the next sweep in the same directory
continues it. A job that ignores the request simply finishes and is told as usual.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

log = logging.getLogger(__name__)

JOB_NUM_ATTR = "job_num"
_STOP: dict = {"signum": None}
_SWEEPER_TARGET = "hydra_plugins.optuna5_sweeper.optuna_sweeper.OptunaSweeper"


def current_trial() -> Optional[Any]:
    """The RUNNING ``optuna.Trial`` whose ``job_num`` is this job's ``hydra.job.num``, or None.

    None also for a study with several directions: Optuna cannot report or prune those.
    """
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
    except ValueError:
        return None
    sweeper = hc.get("sweeper")
    if sweeper is None or sweeper.get("_target_") != _SWEEPER_TARGET:
        return None
    job_num = hc.job.get("num")
    if job_num is None:
        return None
    import optuna

    from hydra_plugins.optuna5_sweeper._logs import route_optuna_logs
    from hydra_plugins.optuna5_sweeper._study import make_pruner, open_storage, resolve

    route_optuna_logs()  # a joblib worker is a fresh process: Optuna's warnings in the job's log format

    spec, study_name = resolve(hc)
    storage = open_storage(spec, sweeper.get("storage_retry_s"))
    try:
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(sweeper.get("pruner")),
                                  sampler=optuna.samplers.RandomSampler())
    except KeyError:
        return None
    if len(study.directions) > 1:
        return None
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for frozen in running:
        if frozen.user_attrs.get(JOB_NUM_ATTR) == int(job_num):
            return ReportingTrial(optuna.Trial(study, frozen._trial_id))
    return None


class ReportingTrial:
    """An ``optuna.Trial`` whose ``report`` and ``should_prune`` never stop a job for a lost database
    connection: a report that cannot be delivered is kept and sent with the next one, and ``should_prune``
    answers False until the storage answers again. Everything else is the trial's own."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial
        self._pending: list = []  # (value, step) not delivered yet

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def _deliver(self) -> bool:
        from hydra_plugins.optuna5_sweeper._storage import is_transient, no_wait

        while self._pending:
            value, step = self._pending[0]
            try:
                with no_wait():
                    self._trial.report(value, step)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("trial %d: report of step %s not delivered (%s); kept for the next report",
                            self._trial.number, step, type(exc).__name__)
                return False
            self._pending.pop(0)
        return True

    def report(self, value: float, step: int) -> None:
        self._pending.append((value, step))
        self._deliver()

    def should_prune(self) -> bool:
        from hydra_plugins.optuna5_sweeper._storage import is_transient, no_wait

        if not self._deliver():
            return False
        try:
            with no_wait():
                return bool(self._trial.should_prune())
        except Exception as exc:
            if not is_transient(exc):
                raise
            return False


def stop_requested() -> Optional[int]:
    """The signal number (SIGINT 2, SIGTERM 15) that asked this sweep process to stop, or None."""
    return _STOP["signum"]


def _set_stop(signum: Optional[int]) -> None:
    """The sweeper's side of :func:`stop_requested` (None clears it)."""
    _STOP["signum"] = signum
