"""Checks on a sweep before it starts: a Hydra callback (``hydra.callbacks`` in conf/train.yaml).

Hydra calls :meth:`SweepCheck.on_multirun_start` with the composed config before it builds the sweeper, so a
sweep that could only fail or mislead stops here with one paragraph and exit status 2, before any directory,
study or trial exists:

* a sweeper ``_target_`` that cannot be imported (lightning-hydra-template files name the published
  hydra-optuna-sweeper's class, which this project replaces with ``hydra/sweeper=optuna``);
* an objective a sweep must not select on (``test_*``, ``external_*``) or cannot compute;
* a ``hydra.sweeper.direction`` that contradicts the objective (``val_class_accuracy`` minimised). A sweeper
  whose ``direction`` is null gets the direction(s) the objective metrics need, with a note in the log.

The sweeper plugin knows nothing of this: it reads ``hydra.sweeper.direction`` as any Hydra sweeper would.
Keep this module light (Hydra instantiates its callbacks on every start).
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

OUR_SWEEPER = "hydra_plugins.optuna5_sweeper.optuna_sweeper.OptunaSweeper"


def swept_keys(cfg: DictConfig) -> frozenset[str]:
    """Config keys a sweep varies (sweep overrides on the command line and ``hydra.sweeper.params``): the
    composed config holds their base value, not the trials' values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {str(k) for k in (OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {})}
    task = OmegaConf.select(cfg, "hydra.overrides.task", default=None) or []
    try:
        parsed = OverridesParser.create().parse_overrides([str(o) for o in task])
    except Exception:  # Hydra parsed them already; a parse failure here only makes the check less precise
        parsed = []
    keys |= {o.key_or_group for o in parsed if o.is_sweep_override()}
    return frozenset(keys)


def check_sweeper_target(cfg: DictConfig) -> None:
    from kaayko_exp.errors import ConfigError

    target = OmegaConf.select(cfg, "hydra.sweeper._target_", default=None)
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}
    if choices.get("hydra/sweeper") != "optuna" or target == OUR_SWEEPER:
        return
    raise ConfigError(
        f"hydra.sweeper._target_={target} replaces the sweeper that hydra/sweeper=optuna chose. A study file written for lightning-hydra-template "
        "names the published hydra-optuna-sweeper there; kaayko-exp ships its own Optuna 5 sweeper, chosen by "
        "`override /hydra/sweeper: optuna` in the file's defaults. Delete the `_target_:` line under "
        "hydra.sweeper (the sampler's and pruner's `_target_` lines stay); README \"Hyperparameter sweeps\" lists "
        "what such a file needs."
    )


def check_sweep(cfg: DictConfig) -> None:
    """Refuse (ConfigError) what cannot sweep; fill a null ``hydra.sweeper.direction`` from the objective."""
    from kaayko_exp.training.objectives import check_directions, check_objective, note_alias, objective_names

    from kaayko_exp.tracking import check_logger

    check_sweeper_target(cfg)
    check_logger(cfg)
    check_objective(cfg, swept=swept_keys(cfg))
    note_alias(cfg)
    sweeper = OmegaConf.select(cfg, "hydra.sweeper", default=None)
    if not isinstance(sweeper, DictConfig) or "direction" not in sweeper:
        return  # a sweeper without directions (basic: a grid of runs)
    given = sweeper.get("direction")
    directions = check_directions(cfg, given)
    if given is None:
        value: Any = directions[0] if len(directions) == 1 else directions
        with read_write(sweeper), open_dict(sweeper):
            sweeper.direction = value
        log.info("hydra.sweeper.direction=%s, derived from evaluation.objective=%s", value,
                 ",".join(objective_names(cfg)))


class SweepCheck(Callback):
    """``on_multirun_start``: :func:`check_sweep`; a user mistake ends the command (one paragraph, exit 2)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from kaayko_exp.errors import exit_on_user_error

        exit_on_user_error(check_sweep, config)
