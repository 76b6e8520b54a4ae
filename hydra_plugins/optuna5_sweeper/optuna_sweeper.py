"""The Hydra ``Sweeper`` of ``hydra/sweeper=optuna`` (the logic lives in ``_impl``)."""

from __future__ import annotations

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.optuna5_sweeper import config as _config  # noqa: F401  (registers the schema)


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: Any, direction: Any, storage: Optional[Any], study_name: Optional[str],
                 n_trials: int, n_jobs: int, max_failure_rate: float, pruner: Any = None,
                 params: Optional[DictConfig] = None, custom_search_space: Optional[str] = None,
                 heartbeat_interval: float = 30.0, write_plots: bool = True, storage_retry_s: float = 60.0) -> None:
        from hydra_plugins.optuna5_sweeper._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(sampler, direction, storage, study_name, n_trials, n_jobs,
                                         max_failure_rate, pruner, params, custom_search_space,
                                         heartbeat_interval, write_plots, storage_retry_s)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.sweeper.sweep(arguments)
