"""What a run returns to a sweeper: the objective metric(s), their direction, and the checks on them.

``evaluation.objective`` names one metric (``val_rmse``) or a list of them (``[val_rmse, val_mae]``, one per
direction of a multi-objective study); ``optimized_metric``, lightning-hydra-template's top-level name for
the same setting, is accepted as an alias. Each metric knows whether lower or higher is better
(:data:`METRIC_DIRECTIONS`), so a sweep's ``direction`` can be derived or checked before any trial runs
(:mod:`kaayko_exp.training.sweep_check`). Light: imported on the way to every run and by the sweep check.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import ListConfig, OmegaConf

from kaayko_exp.errors import ConfigError

log = logging.getLogger(__name__)

OBJECTIVE_SETS = ("val", "cv", "test", "external")
#: every metric an objective can name, with the direction a sweeper must optimise it in
METRIC_DIRECTIONS = {
    "mae": "minimize", "rmse": "minimize",
    "r2": "maximize", "class_accuracy": "maximize", "within_half": "maximize", "skill_accuracy": "maximize",
}
OBJECTIVE_METRICS = tuple(METRIC_DIRECTIONS)
# Held-out sets a sweeper must never select on: they are reported only.
REPORTED_ONLY = ("test", "external")
#: ``evaluation.objective``'s default (the schema's): an ``optimized_metric`` replaces it
DEFAULT_OBJECTIVE = "val_rmse"
ALIAS = "optimized_metric"


def _as_list(value: Any) -> list[str]:
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _text(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"[{','.join(names)}]"


def objective_names(cfg: Any) -> list[str]:
    """The run's objective metric names, in order (one per sweep direction).

    ``optimized_metric`` (lightning-hydra-template) stands for ``evaluation.objective`` when it is set and
    ``evaluation.objective`` is left at its default; given both with different values, ConfigError."""
    names = _as_list(OmegaConf.select(cfg, "evaluation.objective", default=DEFAULT_OBJECTIVE))
    alias = OmegaConf.select(cfg, ALIAS, default=None)
    if alias is None:
        return names
    aliased = _as_list(alias)
    if names != aliased and names != [DEFAULT_OBJECTIVE]:
        raise ConfigError(
            f"{ALIAS}={_text(aliased)} and evaluation.objective={_text(names)} disagree. {ALIAS} is "
            "lightning-hydra-template's name for evaluation.objective, so they name the same setting: keep one "
            f"(e.g. drop {ALIAS} from the file, or set evaluation.objective={_text(aliased)})."
        )
    return aliased


def note_alias(cfg: Any) -> None:
    """Log once per call site that ``optimized_metric`` stood for ``evaluation.objective``."""
    alias = OmegaConf.select(cfg, ALIAS, default=None)
    if alias is not None:
        log.info("%s=%s (lightning-hydra-template's key) is used as evaluation.objective", ALIAS,
                 _text(objective_names(cfg)))


def is_multi(cfg: Any) -> bool:
    return len(objective_names(cfg)) > 1


def metric_of(name: str) -> str:
    """``val_class_accuracy`` -> ``class_accuracy``."""
    return name.partition("_")[2]


def direction_of(name: str) -> str:
    """``minimize`` or ``maximize`` for an objective name (``val_rmse``: minimize)."""
    return METRIC_DIRECTIONS[metric_of(name)]


def directions(cfg: Any) -> list[str]:
    return [direction_of(n) for n in objective_names(cfg)]


def check_objective(cfg: Any, *, swept: frozenset[str] = frozenset()) -> None:
    """Each objective is ``<val|cv>_<metric>`` and the run can compute it. ``swept``: keys a sweep varies,
    whose value in ``cfg`` is not the one a trial gets (their combination checks are left to the trial)."""
    names = objective_names(cfg)
    if not names:
        raise ConfigError("evaluation.objective=[] names no metric; give one (val_rmse) or a list ([val_rmse,val_mae]).")
    if len(set(names)) < len(names):
        raise ConfigError(f"evaluation.objective={_text(names)} names a metric twice; give each once.")
    ev, sp = cfg.evaluation, cfg.split
    for name in names:
        where, _, metric = name.partition("_")
        if where not in OBJECTIVE_SETS or metric not in OBJECTIVE_METRICS:
            raise ConfigError(
                f"evaluation.objective={name} is not <set>_<metric>; sets: val, cv; "
                f"metrics: {', '.join(OBJECTIVE_METRICS)} (e.g. val_rmse, cv_mae; a list for several directions: "
                "[val_rmse,val_mae])."
            )
        if where in REPORTED_ONLY:
            raise ConfigError(
                f"evaluation.objective={name} would let a sweeper choose settings by their {where} score, "
                f"and the {where} set would no longer give a fair estimate: the test set is reported, never "
                f"optimised. Use val_{metric} (the default; the validation lakes of split.val_fraction) or "
                f"cv_{metric} with evaluation.cv_folds=5. report.json still shows every {where} metric."
            )
        if where == "cv" and ev.cv_folds < 2 and "evaluation.cv_folds" not in swept:
            raise ConfigError(f"evaluation.objective={name} needs cross-validation: add evaluation.cv_folds=5.")
        if where == "val" and sp.val_fraction == 0 and "split.val_fraction" not in swept:
            raise ConfigError(
                f"evaluation.objective={name} needs a validation set, but split.val_fraction=0: set "
                f"split.val_fraction=0.1, or use cross-validation (evaluation.cv_folds=5 "
                f"evaluation.objective=cv_{metric})."
            )


def check_directions(cfg: Any, given: Any) -> list[str]:
    """The sweep's directions for ``cfg``'s objectives: derived when ``given`` is None, else ``given`` checked
    against them (ConfigError naming the fix on a mismatch)."""
    names = objective_names(cfg)
    wanted = [direction_of(n) for n in names]
    if given is None:
        return wanted
    have = [str(getattr(d, "name", d)).lower() for d in _as_list(given)]
    if len(have) != len(names):
        raise ConfigError(
            f"hydra.sweeper.direction={_text(have)} has {len(have)} direction(s) but evaluation.objective="
            f"{_text(names)} names {len(names)} metric(s): give one direction per objective, e.g. "
            f"'hydra.sweeper.direction={_text(wanted)}' (or leave hydra.sweeper.direction out: it is derived "
            "from the objective)."
        )
    wrong = [(n, h, w) for n, h, w in zip(names, have, wanted) if h != w]
    if wrong:
        what = "; ".join(f"for {n} {'lower' if w == 'minimize' else 'higher'} is better, so it needs {w}, not {h}"
                         for n, h, w in wrong)
        raise ConfigError(
            f"hydra.sweeper.direction={_text(have)} does not match evaluation.objective={_text(names)}: {what}. "
            "The sweep would keep the worst trials and prune the good ones. Set "
            f"'hydra.sweeper.direction={_text(wanted)}', or leave hydra.sweeper.direction out: it is derived from "
            "the objective."
        )
    return have


def objective_block(cfg: Any, results: dict[str, Any]) -> dict[str, Any]:
    """``results["objective"]`` (and report.json's): the first objective's ``name`` and ``value`` (what every
    reader shows), plus ``names`` and ``values`` in order when there are several."""
    from kaayko_exp.evaluation.metrics import objective_value

    names = objective_names(cfg)
    values = [objective_value(results, n) for n in names]
    block: dict[str, Any] = {"name": names[0], "value": values[0]}
    if len(names) > 1:
        block.update(names=names, values=values)
    return block


def task_value(block: dict[str, Any]) -> Any:
    """What the task returns to a sweeper from an objective block: a float, or a list for several objectives
    (None values, e.g. from a damaged report, become NaN so the sweeper fails that trial)."""
    def num(v: Any) -> float:
        return float("nan") if v is None else float(v)

    if "values" in block:
        return [num(v) for v in block["values"]]
    return num(block.get("value"))
