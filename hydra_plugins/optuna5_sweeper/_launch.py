"""Trials in this process, as Hydra's basic launcher runs them, for less per trial.

Hydra's ``BasicLauncher`` runs each job through ``hydra.core.utils.run_job``, which for every job sets the
Hydra config twice (each a masked copy of the ``hydra`` node), deep-copies the whole config and the Hydra
config again, configures logging three times and writes ``.hydra/{config,hydra,overrides}.yaml`` with
PyYAML's pure-Python emitter: about 50 ms a job on a busy 2-core machine, a tenth of a short pruned trial's time
outside its fit. The sweeper's configs are already fresh per job (:mod:`._compose` gives each its own copy),
so :class:`InProcessLauncher` does the same steps once each:

* the Hydra config is set once, sharing the job config's ``hydra`` node instead of a deep copy of it (Hydra
  sets it again once the job's output directory is known; here that one field is set in the shared node);
* the task's config (the job config less ``hydra``) is a pickle round trip of the job config
  (``_compose.fresh_copy``, about three times faster than ``copy.deepcopy``); the job's Hydra config is
  the one just set, not copied again;
* the three files hold the same YAML as Hydra's, emitted by libyaml (:mod:`._yaml`).

Everything else is Hydra's: the callbacks (``on_job_start``/``on_job_end``), ``hydra.job.env_set``,
``hydra.job.chdir``, the job's logging config, the ``JobReturn`` the sweeper reads.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any, List, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.optuna5_sweeper import _yaml
from hydra_plugins.optuna5_sweeper._compose import fresh_copy

log = logging.getLogger("hydra._internal.core_plugins.basic_launcher")  # the job lines read as Hydra's


def _task_copy(config: DictConfig) -> DictConfig:
    """The job config less its ``hydra`` node, as a new object (the task may change it freely). The ``hydra``
    node, most of a job config, is set aside while the rest is copied, so it is neither pickled nor unpickled;
    the job's config is whole again before this returns."""
    content = config.__dict__.get("_content")
    if not isinstance(content, dict) or "hydra" not in content:  # not a plain DictConfig: copy it all
        task = fresh_copy(config)
        with read_write(task), open_dict(task):
            task.pop("hydra", None)
        return task
    node = content.pop("hydra")
    try:
        return fresh_copy(config)
    finally:
        content["hydra"] = node


def _set_hydra_config(config: DictConfig) -> None:
    """What ``HydraConfig.set_config`` does, without its deep copy of the ``hydra`` node: Hydra's config becomes a
    root holding the job config's own (read-only) ``hydra`` node, whose parent stays the job config, as
    ``set_config`` leaves its copy's. The job config is this job's alone (:mod:`._compose`), so nothing else can
    change the node while the job runs; the deep copy cost about 5 ms a job."""
    from hydra.core.hydra_config import HydraConfig

    node = config._get_node("hydra")
    OmegaConf.set_readonly(node, True)
    holder = DictConfig(content={})
    holder.__dict__["_content"]["hydra"] = node  # not through __setitem__, which would copy and re-parent it
    HydraConfig.instance().cfg = holder


def _save(cfg: Any, name: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(_yaml.to_yaml(cfg), encoding="utf-8")


def run_job(hydra_context: Any, task_function: Any, config: DictConfig) -> Any:
    """Run one sweep job in this process: what ``hydra.core.utils.run_job`` does for a sweep job (output
    directory ``hydra.sweep.dir``/``hydra.sweep.subdir``), with one Hydra-config set and one copy."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobRuntime, JobStatus, _flush_loggers, configure_log, env_override

    callbacks = hydra_context.callbacks
    old_cwd = os.getcwd()
    previous = HydraConfig.instance().cfg
    _set_hydra_config(config)  # first: the directories may refer to it (${hydra:job.num})
    output_dir = os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                              str(OmegaConf.select(config, "hydra.sweep.subdir")))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    chdir = False
    try:
        ret = JobReturn()
        ret.cfg = task_cfg = _task_copy(config)
        ret.hydra_cfg = hydra_cfg = HydraConfig.instance().cfg  # set for this job alone: no second copy
        ret.overrides = OmegaConf.to_container(config.hydra.overrides.task)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        chdir = bool(hydra_cfg.hydra.job.chdir)  # null means False from Hydra 1.2 on (this project: 1.3)
        if chdir:
            os.chdir(output_dir)
            ret.working_dir = output_dir
        else:
            ret.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            subdir = Path(config.hydra.runtime.output_dir) / str(config.hydra.output_subdir)
            _save(task_cfg, "config.yaml", subdir)
            _save(hydra_cfg, "hydra.yaml", subdir)
            _save(config.hydra.overrides.task, "overrides.yaml", subdir)
        with env_override(hydra_cfg.hydra.job.env_set):
            callbacks.on_job_start(config=config, task_function=task_function)
            try:
                ret.return_value = task_function(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as exc:
                ret.return_value = exc
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        _flush_loggers()
        callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = previous
        if chdir:
            os.chdir(old_cwd)


#: The collector's thresholds while a sweep runs: full collections after 100 collections of the middle
#: generation instead of 10. A trial's short-lived objects are collected young as before; what reaches the old
#: generation lives as long as the sweep (or its trial), so rescanning it ten times as often finds nothing.
SWEEP_GC_FULL_AFTER = 100
_saved_thresholds: List[tuple] = []


def settle_memory() -> None:
    """Collect garbage, then move what survives into the collector's permanent generation (``gc.freeze``).
    A sweep process holds its modules, composed configs and study for its whole life; frozen, they are no longer
    rescanned by every full collection during the trials (a 20-trial sweep of 3-round trials at ``medium``: five
    full collections of 10-100 ms each, 0.33 s of collector time in all; 0.19 s frozen, 0.10 s frozen and with
    :data:`SWEEP_GC_FULL_AFTER`). The sweep calls this before its first trial and once after it (whose imports,
    the training modules and XGBoost, also live as long), and :func:`release_memory` at its end. Objects frozen
    here are still freed when their last reference goes; only reference cycles among them wait for
    :func:`release_memory`."""
    gc.collect()
    gc.freeze()
    if not _saved_thresholds:
        young, middle, _ = thresholds = gc.get_threshold()
        _saved_thresholds.append(thresholds)
        gc.set_threshold(young, middle, SWEEP_GC_FULL_AFTER)


def release_memory() -> None:
    """Undo :func:`settle_memory`: the frozen objects are collected as usual again and the collector's thresholds
    are restored (a sweep run in a longer-lived process, e.g. a test, leaves nothing changed behind)."""
    gc.unfreeze()
    if _saved_thresholds:
        gc.set_threshold(*_saved_thresholds.pop())


class InProcessLauncher:
    """Hydra's basic launcher (which it wraps: its config, context and task) with :func:`run_job` per job."""

    def __init__(self, basic: Any) -> None:
        self.basic = basic
        self.ready = False  # Hydra's globals and logging set up for the sweep

    def __getattr__(self, name: str) -> Any:
        if name in ("basic", "ready"):
            raise AttributeError(name)
        return getattr(self.basic, name)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[Any]:
        from hydra.core.utils import configure_log, filter_overrides, setup_globals

        basic = self.basic
        if not self.ready:  # later launches find both as the previous one left them (the job's end restores it)
            setup_globals()
            configure_log(basic.config.hydra.hydra_logging, basic.config.hydra.verbose)
            Path(str(basic.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            self.ready = True
        runs = []
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_config = basic.hydra_context.config_loader.load_sweep_config(basic.config, list(overrides))
            with open_dict(job_config):
                job_config.hydra.job.id = idx
                job_config.hydra.job.num = idx
            try:
                runs.append(run_job(basic.hydra_context, basic.task_function, job_config))
            finally:  # the sweep's own logging again, also after a job that broke the launcher
                configure_log(basic.config.hydra.hydra_logging, basic.config.hydra.verbose)
        return runs
