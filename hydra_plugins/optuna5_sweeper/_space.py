"""Hydra's sweep grammar -> Optuna distributions.

``choice(a,b)`` / ``a,b``        -> CategoricalDistribution
``range(start, stop, step)``     -> IntDistribution / FloatDistribution with ``step`` (stop is exclusive, as in Hydra)
``interval(lo, hi)``             -> FloatDistribution; ``int(interval(lo, hi))`` -> IntDistribution
``tag(log, interval(...))``      -> the same on a log scale
a plain value                    -> a fixed override passed to every trial
"""


import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional

from hydra_plugins.optuna5_sweeper.errors import SearchSpaceError


@dataclass
class SearchSpace:
    distributions: Dict[str, Any] = field(default_factory=dict)  # key -> optuna distribution
    fixed: Dict[str, str] = field(default_factory=dict)  # key -> its whole override text, passed unchanged


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _range_distribution(key: str, sweep: Any) -> Any:
    from optuna.distributions import (  # noqa: F401
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    start, stop, step = sweep.start, sweep.stop, sweep.step
    if "log" in sweep.tags:
        raise SearchSpaceError(
            f"'{key}': tag(log, range(...)) is not supported, Optuna has no stepped log scale. "
            f"Use tag(log, interval({start}, {stop})) or int(tag(log, interval(...))) instead."
        )
    if sweep.shuffle:
        raise SearchSpaceError(f"'{key}': shuffle(range(...)) has no meaning for Optuna; drop shuffle().")
    if step == 0:
        raise SearchSpaceError(f"'{key}': range({start}, {stop}, step=0) has a zero step. Use a non-zero step.")
    if all(_is_int(v) for v in (start, stop, step)):
        values = list(range(start, stop, step))
        if not values:
            raise _empty(key, start, stop, step)
        return IntDistribution(min(values), max(values), step=abs(step))
    # floats: count the values exactly (Decimal of their shortest repr), Hydra's stop is exclusive
    d_start, d_stop, d_step = (Decimal(repr(float(v))) for v in (start, stop, step))
    n = math.ceil((d_stop - d_start) / d_step)
    if n <= 0:
        raise _empty(key, start, stop, step)
    last = d_start + (n - 1) * d_step
    low, high = sorted((float(d_start), float(last)))
    return FloatDistribution(low, high, step=float(abs(d_step)))


def _empty(key: str, start: Any, stop: Any, step: Any) -> SearchSpaceError:
    return SearchSpaceError(
        f"'{key}': range({start}, {stop}, step={step}) is empty (the stop is exclusive, as in Python's range). "
        f"Give a stop past the start in the step's direction, e.g. range({start}, {start + 3 * step}, step={step})."
    )


def _interval_distribution(key: str, sweep: Any) -> Any:
    from optuna.distributions import (  # noqa: F401
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    lo, hi = sweep.start, sweep.end
    log = "log" in sweep.tags
    if lo > hi:
        raise SearchSpaceError(f"'{key}': interval({lo}, {hi}) is empty: its start is above its end. Swap them.")
    if log and lo <= 0:
        raise SearchSpaceError(
            f"'{key}': tag(log, interval({lo}, {hi})) needs a start above 0 for a log scale. "
            "Raise the start or drop tag(log, ...)."
        )
    if _is_int(lo) and _is_int(hi):
        return IntDistribution(lo, hi, log=log)
    return FloatDistribution(float(lo), float(hi), log=log)


def _choice_distribution(key: str, sweep: Any) -> Any:
    from optuna.distributions import (  # noqa: F401
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    choices = list(sweep.list)
    if not choices:
        raise SearchSpaceError(f"'{key}': choice() has no options. List at least one.")
    for c in choices:
        if not (c is None or isinstance(c, (bool, int, float, str))):
            raise SearchSpaceError(
                f"'{key}': choice option {c!r} is a {type(c).__name__}; Optuna categoricals take "
                "numbers, strings, booleans or null. Quote it as a string."
            )
    return CategoricalDistribution(choices)


def _parse(text: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(text)
    except HydraException as exc:  # a syntax error (HydraException) or a bad value (OverrideParseException)
        raise SearchSpaceError(f"'{text}' is not a valid override or sweep expression: {exc}") from None


def distribution_of(key: str, value: Any) -> Optional[Any]:
    """The distribution of a parsed override value; None for a plain (fixed) value."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    if isinstance(value, RangeSweep):
        return _range_distribution(key, value)
    if isinstance(value, IntervalSweep):
        return _interval_distribution(key, value)
    if isinstance(value, ChoiceSweep):
        return _choice_distribution(key, value)
    return None


def parse_override(text: str) -> Optional[Any]:
    """``'key=expression'`` -> its distribution (None for a fixed value)."""
    override = _parse(text)
    return distribution_of(override.get_key_element(), override.value())


def build_space(params: Optional[Mapping[str, Any]], arguments: List[str]) -> SearchSpace:
    """The search space from ``hydra.sweeper.params`` then the command line (the command line wins)."""
    space = SearchSpace()
    texts = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    for text in texts:
        override = _parse(text)
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        dist = distribution_of(key, override.value()) if "=" in text else None
        if dist is None:
            space.fixed[key] = text
        else:
            space.distributions[key] = dist
    return space


def grid_of(space: SearchSpace) -> Dict[str, List[Any]]:
    """GridSampler's grid: every choice and every stepped range value; a continuous interval cannot be gridded."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    grid: Dict[str, List[Any]] = {}
    for key, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            grid[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            n = int(round((dist.high - dist.low) / dist.step)) + 1
            grid[key] = [float(Decimal(repr(dist.low)) + i * Decimal(repr(dist.step))) for i in range(n)]
        else:
            raise SearchSpaceError(
                f"sampler=grid cannot enumerate '{key}' ({type(dist).__name__}, continuous). "
                "Use choice(...) or range(...) for it, or another sampler."
            )
    return grid
