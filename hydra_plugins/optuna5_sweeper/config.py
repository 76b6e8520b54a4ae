"""Config schema of the ``optuna`` sweeper (group ``hydra/sweeper``) and its sampler/pruner options.

Field names follow the published hydra-optuna-sweeper so study files written for it keep working
(after dropping the sweeper's own ``_target_`` line). ``sampler`` and ``pruner`` are config groups
(``hydra/sweeper/sampler=random``, ``hydra/sweeper/pruner=median``) and also accept a bare name
(``hydra.sweeper.pruner=hyperband``).
"""


from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

# ---- samplers (``_target_`` names an optuna.samplers class; the other fields are its keyword arguments:
# every constructor argument that is a plain value; callables and strategy objects are left out).
# ``independent_sampler`` is a sampler name or config. A seeded sampler draws each trial from
# (seed, trial number), so resumed sweeps and cooperating workers never replay draws (_seeding.py).


@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    consider_prior: Optional[bool] = None  # null fields are left to optuna's defaults
    prior_weight: Optional[float] = None
    consider_magic_clip: Optional[bool] = None
    consider_endpoints: Optional[bool] = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: Optional[bool] = None
    group: bool = False
    warn_independent_sampling: Optional[bool] = None
    constant_liar: bool = True  # keeps parallel trials apart


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConfig:
    _target_: str = "optuna.samplers.CmaEsSampler"
    x0: Optional[Dict[str, Any]] = None
    sigma0: Optional[float] = None
    seed: Optional[int] = None
    n_startup_trials: int = 1
    independent_sampler: Optional[Any] = None
    warn_independent_sampling: bool = True
    restart_strategy: Optional[str] = None
    popsize: Optional[int] = None
    inc_popsize: int = -1
    consider_pruned_trials: bool = False
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False


@dataclass
class QMCSamplerConfig:
    _target_: str = "optuna.samplers.QMCSampler"
    qmc_type: str = "sobol"
    scramble: bool = False
    seed: Optional[int] = None
    independent_sampler: Optional[Any] = None
    warn_independent_sampling: bool = True
    warn_asynchronous_seeding: bool = True


@dataclass
class NSGAIISamplerConfig:
    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50
    mutation_prob: Optional[float] = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    seed: Optional[int] = None


@dataclass
class GridSamplerConfig:
    """The grid is built from the search space (choices and ranges); ``interval`` cannot be gridded."""

    _target_: str = "optuna.samplers.GridSampler"
    seed: Optional[int] = None


@dataclass
class GPSamplerConfig:
    """Gaussian-process sampler; needs its optional dependencies (torch, scipy)."""

    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    independent_sampler: Optional[Any] = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    warn_independent_sampling: bool = True


# ---- pruners


@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConfig:
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class WilcoxonPrunerConfig:
    """For steps that are CV folds (same fold index = same step across trials)."""

    _target_: str = "optuna.pruners.WilcoxonPruner"
    p_threshold: float = 0.1
    n_startup_steps: int = 2


@dataclass
class PatientPrunerConfig:
    """``wrapped_pruner``: a pruner name or config, or null for plain early stopping."""

    _target_: str = "optuna.pruners.PatientPruner"
    wrapped_pruner: Any = None
    patience: int = 3
    min_delta: float = 0.0


@dataclass
class ThresholdPrunerConfig:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: Optional[float] = None
    upper: Optional[float] = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class ProjectionPrunerConfig:
    """The project's own pruner (_projection.py): judges a trial by its projected final value, fair to slow
    learners."""

    _target_: str = "hydra_plugins.optuna5_sweeper._projection.ProjectionPruner"
    n_startup_trials: int = 4
    n_warmup_steps: int = 0
    interval_steps: int = 1
    horizon: Optional[int] = None  # the fit's last step; null: the finished trials' last report before their final
    rank: int = 1
    margin: float = 0.0
    slow_factor: Optional[float] = None  # null: cost is not considered
    slow_gain: float = 0.05
    ratio_quantile: float = 1.0  # which finished trial's gain ratio projects: 1.0 the largest, 0.5 the median


SAMPLERS: Dict[str, Any] = {
    "tpe": TPESamplerConfig, "random": RandomSamplerConfig, "cmaes": CmaEsSamplerConfig,
    "qmc": QMCSamplerConfig, "nsgaii": NSGAIISamplerConfig, "grid": GridSamplerConfig, "gp": GPSamplerConfig,
}
PRUNERS: Dict[str, Any] = {
    "nop": NopPrunerConfig, "none": NopPrunerConfig, "median": MedianPrunerConfig,
    "percentile": PercentilePrunerConfig, "hyperband": HyperbandPrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig, "wilcoxon": WilcoxonPrunerConfig,
    "patient": PatientPrunerConfig, "threshold": ThresholdPrunerConfig, "projection": ProjectionPrunerConfig,
}

_DEFAULTS = ["_self_", {"sampler": "tpe"}, {"pruner": "nop"}]


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.optuna5_sweeper.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # sampler/pruner configs reach the sweeper as configs, built by it
    defaults: List[Any] = field(default_factory=lambda: list(_DEFAULTS))

    sampler: Any = None  # a sampler config (group hydra/sweeper/sampler) or a bare name: tpe, random, ...
    # minimize | maximize | a list of them (a Pareto front); null: minimize, unless the application fills it in
    # before the sweep (e.g. a Hydra callback's on_multirun_start deriving it from the objective it returns)
    direction: Any = None
    # null: optuna JournalStorage in <sweep dir>/optuna.journal; a path ending in .journal/.log: a journal
    # file there; any RDB URL (postgresql://..., sqlite:///...) is handed to optuna unchanged
    storage: Optional[Any] = None
    study_name: Optional[str] = None  # null: hydra.job.name
    n_trials: int = 20  # TOTAL wanted in the study: COMPLETE + PRUNED (a resumed study runs only the rest)
    n_jobs: int = 1  # trials at a time (through the launcher; the in-process basic launcher runs one)
    # a sweep stops once more than max_failure_rate * n_trials of its trials FAILED (pruned trials never count)
    max_failure_rate: float = 0.25
    pruner: Any = None  # a pruner config (group hydra/sweeper/pruner) or a bare name: median, hyperband, ...
    params: Optional[Dict[str, Any]] = None  # path -> sweep expression, as on the command line
    custom_search_space: Optional[str] = None  # "module.function" called with (cfg, trial) for each trial
    heartbeat_interval: float = 30.0  # seconds between liveness stamps of running trials
    write_plots: bool = True  # Optuna's matplotlib plots in <sweep dir>/plots at the end of a sweep
    # a database storage: seconds a lost connection (server restart, network) is retried with backoff before
    # the sweep stops; a job's pruning reports that fail meanwhile are kept and sent later
    storage_retry_s: float = 60.0


def _open(node: Any) -> Any:
    """A typed but open node: its fields keep their types, and a study file may still merge a block written
    for another sampler/pruner over it (``pruner: {_target_: optuna.pruners.MedianPruner, ...}`` over the
    default ``nop``, as lightning-hydra-template files do for the sampler). The sweeper then drops fields of
    other known samplers/pruners and refuses unknown ones (``_study._accepted``)."""
    cfg = OmegaConf.structured(node)
    OmegaConf.set_struct(cfg, False)
    return cfg


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="optuna5_sweeper")
    for name, node in SAMPLERS.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=_open(node), provider="optuna5_sweeper")
    for name, node in PRUNERS.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=_open(node), provider="optuna5_sweeper")


register()
