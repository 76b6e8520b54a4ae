"""Study plumbing shared by the sweeper and the job side: storage, study name, sampler, pruner."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from hydra_plugins.optuna5_sweeper.errors import SweepConfigError

JOURNAL_NAME = "optuna.journal"
_JOURNAL_SUFFIXES = (".journal", ".log", ".jsonl")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def storage_spec(storage: Any, sweep_dir: str, cwd: str) -> str:
    """The storage as a string: an RDB URL unchanged, or the absolute path of a journal file."""
    storage = _plain(storage)
    if storage is None or storage == "":
        path = Path(sweep_dir)
        return str((path if path.is_absolute() else Path(cwd) / path) / JOURNAL_NAME)
    if not isinstance(storage, str):
        raise SweepConfigError(
            f"hydra.sweeper.storage={storage!r} is not a storage: give null (a journal file in the sweep "
            "directory), a journal file path ending in .journal, or a database URL such as postgresql://..."
        )
    if "://" in storage:
        return storage
    if storage.startswith("journal:"):
        storage = storage[len("journal:"):]
    path = Path(storage).expanduser()
    if not storage.endswith(_JOURNAL_SUFFIXES):
        raise SweepConfigError(
            f"hydra.sweeper.storage={storage} is neither a database URL (postgresql://..., sqlite:///...) nor a "
            "journal file (a path ending in .journal). Use one of those, or null for <sweep dir>/optuna.journal."
        )
    return str(path if path.is_absolute() else Path(cwd) / path)


_STORAGES: Dict[str, Any] = {}


def open_storage(spec: str) -> Any:
    """One storage object per process and spec (journal storages are thread-safe)."""
    if spec not in _STORAGES:
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        if "://" in spec:
            _STORAGES[spec] = optuna.storages.RDBStorage(spec)
        else:
            Path(spec).parent.mkdir(parents=True, exist_ok=True)
            _STORAGES[spec] = JournalStorage(JournalFileBackend(spec))
    return _STORAGES[spec]


def directions_of(direction: Any) -> List[str]:
    direction = _plain(direction)
    items = direction if isinstance(direction, (list, tuple)) else [direction]
    out = []
    for d in items:
        name = getattr(d, "name", d)
        name = str(name).lower()
        if name not in ("minimize", "maximize"):
            raise SweepConfigError(
                f"hydra.sweeper.direction={direction!r}: each direction must be minimize or maximize "
                "(a list of them for several objectives)."
            )
        out.append(name)
    if not out:
        raise SweepConfigError("hydra.sweeper.direction is an empty list; give minimize, maximize or a list of them.")
    return out


def _target_kwargs(node: Any, table: Dict[str, Any], what: str) -> tuple:
    """(class, kwargs) of a sampler/pruner setting: a bare name or a config with ``_target_``."""
    node = _plain(node)
    if isinstance(node, str):
        if node not in table:
            raise SweepConfigError(
                f"hydra.sweeper.{what}={node} is not a known {what}; choose one of {', '.join(sorted(table))}."
            )
        node = _plain(OmegaConf.structured(table[node]))
    if not isinstance(node, dict) or "_target_" not in node:
        raise SweepConfigError(
            f"hydra.sweeper.{what} must be a {what} name ({', '.join(sorted(table))}) or a config with _target_."
        )
    kwargs = {k: v for k, v in node.items() if k != "_target_" and v is not None}
    module_name, _, cls_name = str(node["_target_"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError):
        raise SweepConfigError(f"hydra.sweeper.{what}._target_={node['_target_']} cannot be imported.") from None
    return cls, kwargs


def make_pruner(node: Any) -> Any:
    import optuna

    from hydra_plugins.optuna5_sweeper.config import PRUNERS

    if node is None:
        return optuna.pruners.NopPruner()
    cls, kwargs = _target_kwargs(node, PRUNERS, "pruner")
    if cls is optuna.pruners.PatientPruner:
        wrapped = kwargs.pop("wrapped_pruner", None)
        kwargs["wrapped_pruner"] = make_pruner(wrapped) if wrapped is not None else None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(f"hydra.sweeper.pruner ({cls.__name__}) is misconfigured: {exc}") from None


def make_sampler(node: Any, grid: Optional[Dict[str, List[Any]]] = None) -> Any:
    import optuna

    from hydra_plugins.optuna5_sweeper.config import SAMPLERS

    if node is None:
        return optuna.samplers.TPESampler(constant_liar=True)
    cls, kwargs = _target_kwargs(node, SAMPLERS, "sampler")
    if cls is optuna.samplers.GridSampler:
        kwargs["search_space"] = grid
        cls = _grid_sampler_class()
    try:
        return cls(**kwargs)
    except ImportError as exc:
        raise SweepConfigError(
            f"hydra.sweeper.sampler ({cls.__name__}) needs an optional dependency that is not installed: {exc}. "
            "Install it or choose another sampler (tpe, random, cmaes, qmc, nsgaii, grid)."
        ) from None
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(f"hydra.sweeper.sampler ({cls.__name__}) is misconfigured: {exc}") from None


def _grid_sampler_class() -> Any:
    """GridSampler without its ``study.stop()`` (only legal inside ``optimize``; the sweeper caps n_trials)."""
    import optuna

    class SweepGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return SweepGridSampler


def is_grid(node: Any) -> bool:
    node = _plain(node)
    return node == "grid" or (isinstance(node, dict) and str(node.get("_target_", "")).endswith("GridSampler"))


def study_name_of(sweeper_cfg: Any, job_name: str) -> str:
    return str(sweeper_cfg.get("study_name") or job_name)


def resolve(hydra_cfg: DictConfig, cwd: Optional[str] = None) -> tuple:
    """(storage spec, study name) for a Hydra config node ``hydra`` (the sweeper's and the job's agree)."""
    sweeper = hydra_cfg.sweeper
    cwd = cwd or OmegaConf.select(hydra_cfg, "runtime.cwd", default=None) or os.getcwd()
    spec = storage_spec(sweeper.get("storage"), str(hydra_cfg.sweep.dir), cwd)
    return spec, study_name_of(sweeper, str(hydra_cfg.job.name))
