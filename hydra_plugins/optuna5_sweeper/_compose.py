"""Each trial's job config without recomposing it: compose once per set of config-group choices, then apply the
trial's value overrides.

Hydra's launchers call ``config_loader.load_sweep_config(master, overrides)`` for every job, which rebuilds the
defaults tree, reloads and merges every config file and deep-copies the result: about a third of a trial that
does little work. A sweep's trials differ in values (``model.params.max_depth=5``) far more often than in
config-group choices (``model=histgb``). :class:`CachingConfigLoader` wraps the loader the launcher is given: it
composes the config once for each distinct set of group (and ``hydra.*``) overrides (kept pickled: unpickling a config is about
three times faster than ``copy.deepcopy``, which walks it node by node in Python) and, per job, copies that
config and applies the value overrides the same way Hydra does after composing (``_apply_overrides_to_config``,
in command-line order, on the struct config), then records the job's overrides in ``hydra.overrides.task`` and
``hydra.job.override_dirname`` as Hydra would. The result equals a full composition (tests/test_sweeper_compose.py).
"""

from __future__ import annotations

import copy
import pickle
import threading
from typing import Any, Dict, List, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict


#: Most parsed override strings kept (a long sweep's sampled values differ in every job).
_MAX_PARSED = 4096


class CachingConfigLoader:
    """A ``ConfigLoader`` that delegates everything to ``inner`` except ``load_sweep_config``, which it memoises
    per set of config-group overrides. Picklable (the joblib launcher ships it to its workers with the cache)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._bases: Dict[Tuple[str, ...], Any] = {}  # composed configs, pickled where they can be
        self._groups: Dict[str, bool] = {}
        self._parsed: Dict[str, Any] = {}
        self._parser: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # everything else: the wrapped loader's
        if name.startswith("__") or name in ("inner", "_bases", "_groups", "_parsed", "_parser", "_lock"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __getstate__(self) -> Dict[str, Any]:
        return {"inner": self.inner, "_bases": dict(self._bases), "_groups": dict(self._groups)}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._parsed = {}
        self._parser = None
        self._lock = threading.Lock()

    def _is_group(self, key: str) -> bool:
        if key not in self._groups:
            self._groups[key] = bool(self.inner.repository.group_exists(key))
        return self._groups[key]

    def _parse(self, override: str) -> Any:
        """``override`` parsed by Hydra's grammar, once per string: a sweep's fixed overrides (the study file,
        ``sample_size=...``) come with every job, and each parse runs Hydra's ANTLR parser. Parsed overrides are
        only read afterwards (by this loader and by Hydra's ``_apply_overrides_to_config``)."""
        parsed = self._parsed.get(override)
        if parsed is None:
            if self._parser is None:  # one parser for the sweep (creating one is half the cost of a parse)
                from hydra.core.override_parser.overrides_parser import OverridesParser

                self._parser = OverridesParser.create()
            parsed = self._parser.parse_overrides(overrides=[override])[0]
            if len(self._parsed) < _MAX_PARSED:
                self._parsed[override] = parsed
        return parsed

    def _split(self, overrides: Sequence[str]) -> Tuple[List[str], List[Any], List[Any]]:
        """(overrides that shape the defaults list, parsed value overrides, all parsed task overrides)."""
        parsed = [self._parse(o) for o in overrides]
        shaping, values, task = [], [], []
        for o in parsed:
            if o.is_sweep_override():  # let Hydra word the error
                shaping.append(o.input_line)
                continue
            if not o.is_hydra_override():
                task.append(o)
            if o.is_hydra_override() or o.package is not None or self._is_group(o.key_or_group):
                shaping.append(o.input_line)
            else:
                values.append(o)
        return shaping, values, task

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: List[str]) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        with self._lock:
            shaping, values, task = self._split(sweep_overrides)
            key = tuple(shaping)
            base = self._bases.get(key)
            if base is None:
                base = _frozen(self.inner.load_sweep_config(master_config, list(shaping)))
                self._bases[key] = base
        cfg = _thawed(base)  # a fresh copy for this job
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            dirname = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def wrap(hydra_context: Any) -> Any:
    """``hydra_context`` with its config loader wrapped (once) in a :class:`CachingConfigLoader`."""
    from hydra.types import HydraContext

    if isinstance(hydra_context.config_loader, CachingConfigLoader):
        return hydra_context
    return HydraContext(config_loader=CachingConfigLoader(hydra_context.config_loader),
                        callbacks=hydra_context.callbacks)


def _frozen(cfg: DictConfig) -> Any:
    """The composed config pickled, or the config itself where pickle cannot name one of its structured-config
    classes (a launcher plugin's dataclass that Hydra's plugin discovery imported twice): then each job gets a
    deep copy instead."""
    try:
        return pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cfg


def _thawed(frozen: Any) -> Any:
    """A new config from what :func:`_frozen` gave (unpickled in this process: never read from a file)."""
    return pickle.loads(frozen) if isinstance(frozen, bytes) else copy.deepcopy(frozen)


def fresh_copy(cfg: DictConfig) -> DictConfig:
    """A deep copy of ``cfg`` through pickle (about three times faster than ``copy.deepcopy``), or a deep copy
    where pickle cannot name one of its classes."""
    return _thawed(_frozen(cfg))
