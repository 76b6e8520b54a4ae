"""Job side: the Optuna trial of the running job, for intermediate reports and pruning.

    from hydra_plugins.optuna5_sweeper.trial import current_trial

    trial = current_trial()          # None outside a sweep run by this sweeper
    if trial is not None:
        trial.report(score, step)
        if trial.should_prune():
            raise optuna.TrialPruned()

The job never tells the trial its result; the sweeper does, from the task's return value
(``optuna.TrialPruned`` raised out of the task marks the trial PRUNED).
"""

from __future__ import annotations

from typing import Any, Optional

JOB_NUM_ATTR = "job_num"
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
    storage = open_storage(spec)
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
            return optuna.Trial(study, frozen._trial_id)
    return None
