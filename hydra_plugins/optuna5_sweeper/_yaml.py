"""OmegaConf's YAML, emitted by libyaml.

``OmegaConf.to_yaml`` dumps with PyYAML's pure-Python emitter: ~10 ms for a run's config, three times a sweep
job (Hydra's ``.hydra`` files) plus the sweep's results file per trial. :func:`dump` gives the same YAML (block
style, keys in order, OmegaConf's quoting of strings that would read back as numbers or booleans) through
PyYAML's libyaml emitter when PyYAML has it, about three times faster. Long strings may wrap at other points;
they read back the same (tests/test_sweeper_launch.py).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _dumper() -> Any:
    """PyYAML's libyaml dumper with OmegaConf's string representation, or OmegaConf's own without libyaml."""
    import yaml
    from omegaconf._utils import OmegaConfDumper, get_omega_conf_dumper

    base = getattr(yaml, "CDumper", None)
    if base is None:
        return get_omega_conf_dumper()
    dumper = type("OmegaConfCDumper", (base,), {})
    dumper.add_representer(str, OmegaConfDumper.str_representer)
    return dumper


def dump(container: Any) -> str:
    """YAML of a plain container (dicts, lists, scalars) as ``OmegaConf.to_yaml`` writes it."""
    import yaml

    return yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=_dumper())


def to_yaml(cfg: Any) -> str:
    """``OmegaConf.to_yaml(cfg)`` (interpolations kept, enums as names)."""
    from omegaconf import OmegaConf

    return dump(OmegaConf.to_container(cfg, enum_to_str=True))
