"""Study plumbing shared by the sweeper and the job side: storage, study name, sampler, pruner."""

from __future__ import annotations

import importlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

from hydra_plugins.optuna5_sweeper.errors import SweepConfigError

log = logging.getLogger(__name__)

JOURNAL_NAME = "optuna.journal"
_JOURNAL_SUFFIXES = (".journal", ".log", ".jsonl")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def hide_password(url: str) -> str:
    """A storage URL with its password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))


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


def open_storage(spec: str, retry_s: Optional[float] = None) -> Any:
    """One storage object per process and spec (journal storages are thread-safe). A database storage retries
    transient errors for ``retry_s`` seconds (``_storage``)."""
    if spec not in _STORAGES:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        if "://" in spec:
            _STORAGES[spec] = _rdb_storage(spec, retry_s)
        else:
            Path(spec).parent.mkdir(parents=True, exist_ok=True)
            _STORAGES[spec] = JournalStorage(JournalFileBackend(spec))
    return _STORAGES[spec]


# Key of the PostgreSQL advisory lock that serialises the creation of Optuna's tables.
_SCHEMA_LOCK = 0x0B7A5E


def _rdb_storage(spec: str, retry_s: Optional[float]) -> Any:
    """A retrying Optuna RDBStorage. On PostgreSQL the first connection of each worker holds an advisory lock
    while Optuna creates its tables: workers starting together on an empty database would otherwise
    race to create them and all but one die with a unique-constraint violation."""
    from hydra_plugins.optuna5_sweeper._storage import DEFAULT_RETRY_S, is_transient, rdb_storage, unavailable

    retry_s = DEFAULT_RETRY_S if retry_s is None else float(retry_s)
    if not spec.startswith(("postgresql", "postgres:")):
        return rdb_storage(spec, retry_s)
    import sqlalchemy

    engine = sqlalchemy.create_engine(spec)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"SELECT pg_advisory_lock({_SCHEMA_LOCK})"))
            try:
                return rdb_storage(spec, retry_s)
            finally:
                conn.execute(sqlalchemy.text(f"SELECT pg_advisory_unlock({_SCHEMA_LOCK})"))
    except Exception as exc:
        if is_transient(exc):
            raise unavailable(spec, exc, 0.0) from None
        raise
    finally:
        engine.dispose()


def directions_of(direction: Any) -> List[str]:
    """``hydra.sweeper.direction`` as a list of names; null (not given) is Optuna's default, minimize."""
    direction = _plain(direction)
    if direction is None:
        return ["minimize"]
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
    if isinstance(node, dict) and "_target_" not in node:
        raise SweepConfigError(
            f"hydra.sweeper.{what} has fields ({', '.join(map(str, node))}) but no {what} to set them on. Choose "
            f"the {what} as a config group, then set its fields: hydra/sweeper/{what}=NAME "
            f"hydra.sweeper.{what}.FIELD=VALUE (NAME one of {', '.join(sorted(table))})."
        )
    if not isinstance(node, dict):
        raise SweepConfigError(
            f"hydra.sweeper.{what} must be a {what} name ({', '.join(sorted(table))}) or a config with _target_."
        )
    kwargs = {k: v for k, v in node.items() if k != "_target_" and v is not None}
    module_name, _, cls_name = str(node["_target_"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError):
        raise SweepConfigError(f"hydra.sweeper.{what}._target_={node['_target_']} cannot be imported.") from None
    return cls, _accepted(cls, kwargs, table, what)


_WARNED: set = set()


def _accepted(cls: Any, kwargs: Dict[str, Any], table: Dict[str, Any], what: str) -> Dict[str, Any]:
    """The kwargs ``cls`` takes. Fields of another known sampler/pruner are dropped (left by a preset written
    for another choice, e.g. a study file's median-pruner fields under hydra/sweeper/pruner=threshold);
    anything else is a mistake."""
    import dataclasses
    import inspect

    params = inspect.signature(cls).parameters  # a class without its own __init__ (NopPruner) takes nothing
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    known = {f.name for conf in table.values() for f in dataclasses.fields(conf)}
    out = {}
    for key, value in kwargs.items():
        if key in params:
            out[key] = value
        elif key in known:
            if (what, cls.__name__, key) in _WARNED:  # once per process (the job side builds the pruner too)
                continue
            _WARNED.add((what, cls.__name__, key))
            log.warning("hydra.sweeper.%s.%s=%r is not a setting of %s; ignored", what, key, value, cls.__name__)
        else:
            accepted = sorted(params)
            raise SweepConfigError(
                f"hydra.sweeper.{what}.{key} is not a setting of {cls.__name__}; its settings are: "
                f"{', '.join(accepted)}."
            )
    return out


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
    """The sampler of a setting. A seeded one is rebuilt for every trial with a seed derived from (seed, trial
    number), so a resumed sweep or a second worker never replays earlier trials' draws (see ``_seeding``)."""
    import optuna

    from hydra_plugins.optuna5_sweeper.config import SAMPLERS

    if node is None:
        return optuna.samplers.TPESampler(constant_liar=True)
    cls, kwargs = _target_kwargs(node, SAMPLERS, "sampler")
    if cls is optuna.samplers.GridSampler:
        kwargs["search_space"] = grid
        cls = _grid_sampler_class()
    independent = kwargs.pop("independent_sampler", None)
    seed = kwargs.get("seed")

    def build(seed_now: Optional[int]) -> Any:
        extra = {} if seed is None else {"seed": seed_now}
        if independent is not None:
            extra["independent_sampler"] = _independent(independent, seed_now)
        return cls(**{**kwargs, **extra})

    try:
        # QMC's seed fixes its scrambled sequence, whose position lives in the study: it must stay the same
        if seed is None or issubclass(cls, optuna.samplers.QMCSampler):
            return build(seed)
        from hydra_plugins.optuna5_sweeper._seeding import PerTrialSeededSampler

        return PerTrialSeededSampler(build, int(seed))
    except ImportError as exc:
        raise SweepConfigError(
            f"hydra.sweeper.sampler ({cls.__name__}) needs an optional dependency that is not installed: {exc}. "
            "Install it or choose another sampler (tpe, random, cmaes, qmc, nsgaii, grid)."
        ) from None
    except (TypeError, ValueError) as exc:
        raise SweepConfigError(f"hydra.sweeper.sampler ({cls.__name__}) is misconfigured: {exc}") from None


def _independent(node: Any, seed: Optional[int]) -> Any:
    """``independent_sampler`` (a sampler name or config) of cmaes/qmc/gp; seeded like its parent when unseeded."""
    from hydra_plugins.optuna5_sweeper.config import SAMPLERS

    cls, kwargs = _target_kwargs(node, SAMPLERS, "sampler")
    import inspect

    if seed is not None and "seed" in inspect.signature(cls.__init__).parameters:
        kwargs["seed"] = seed
    return cls(**kwargs)


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
