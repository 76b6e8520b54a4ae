"""The post-model safety layer: score adjustments and warnings for hazards.

The label rule (and therefore the model) ignores hazards such as gusts, cold water,
fog or high UV. The original production system lowered the model's score for them
after prediction; this module reproduces that layer with every threshold taken from
the ``safety`` config group (``conf/safety/kaayko.yaml``; ``off`` disables it).

Semantics (shared by the vectorised and the single-row path):

* A *check* looks at one column, or at ``column - minus`` (gust minus wind). Its
  steps are tried in order and the FIRST matching step applies, so list the most
  severe step first (``> 35`` before ``> 29.5``).
* Compared values are first rounded to 4 decimals, so a float32 value read from
  parquet (``25.2`` stored as ``25.2000008``) and the same value sent as JSON give the
  same answer at a threshold.
* ``safety_score = clip(round_half(raw_score + sum of rule deltas), 1, 5)``; with
  no matching rule it equals the model's ``paddle_score``.
* ``warnings`` are the messages of the matching warning steps, in config order.
* Missing values (NaN) never match a step; the prediction layer refuses rows with
  missing values in the columns the layer needs before this runs.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from kaayko_exp.data.label import round_to_half
from kaayko_exp.errors import ConfigError, PredictionInputError

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_DECIMALS = 4


@dataclass(frozen=True)
class Step:
    op: str
    value: float
    delta: float
    message: str


@dataclass(frozen=True)
class Check:
    name: str
    column: str
    minus: str | None
    steps: tuple[Step, ...]


def _plain(cfg: Any) -> dict:
    """A SafetyConfig / DictConfig / mapping as a plain dict."""
    if cfg is None:
        return {"name": "off", "enabled": False, "rules": {}, "warnings": {}}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
        if hasattr(cfg, "__dataclass_fields__"):
            return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ConfigError(f"safety config must be a mapping, got {type(cfg).__name__}.")


def _checks(kind: str, spec: Any, need_delta: bool) -> tuple[Check, ...]:
    if not spec:
        return ()
    if not isinstance(spec, Mapping):
        raise ConfigError(f"safety.{kind} must be a mapping of name -> check, got {type(spec).__name__}.")
    out = []
    for name, body in spec.items():
        where = f"safety.{kind}.{name}"
        if not isinstance(body, Mapping) or not body.get("column"):
            raise ConfigError(f"{where} needs a 'column' and a list of 'steps' (see conf/safety/kaayko.yaml).")
        steps = []
        for i, st in enumerate(body.get("steps") or []):
            op = st.get("op")
            if op not in _OPS:
                raise ConfigError(f"{where}.steps[{i}].op is {op!r}; use one of {', '.join(_OPS)}.")
            try:
                value = float(st.get("value"))
                delta = float(st.get("delta", 0.0) or 0.0)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.steps[{i}] needs numeric 'value' and 'delta'.") from None
            if not math.isfinite(value) or not math.isfinite(delta):
                raise ConfigError(f"{where}.steps[{i}] has a non-finite value or delta.")
            if need_delta and delta * 2 != round(delta * 2):
                raise ConfigError(f"{where}.steps[{i}].delta is {delta}; deltas must be multiples of 0.5.")
            steps.append(Step(op, value, delta, str(st.get("message") or "")))
        if not steps:
            raise ConfigError(f"{where} has no steps.")
        out.append(Check(str(name), str(body["column"]), body.get("minus") or None, tuple(steps)))
    return tuple(out)


class SafetyLayer:
    """A compiled, validated safety config; apply it to frames or to one row."""

    def __init__(self, cfg: Any = None):
        plain = _plain(cfg)
        self.config = plain
        self.name = str(plain.get("name", "custom"))
        self.enabled = bool(plain.get("enabled", True))
        self.rules = _checks("rules", plain.get("rules"), True) if self.enabled else ()
        self.warnings = _checks("warnings", plain.get("warnings"), False) if self.enabled else ()
        cols: list[str] = []
        for chk in self.rules + self.warnings:
            for c in (chk.column, chk.minus):
                if c and c not in cols:
                    cols.append(c)
        self.columns: tuple[str, ...] = tuple(cols)
        # mixed-radix encoding of the warning step matched by each check (0 = none)
        self._radix = [len(w.steps) + 1 for w in self.warnings]
        self._combo_cache: dict[int, tuple[str, ...]] = {}

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """The config in the structure of conf/safety/kaayko.yaml (what a run saves as model/safety.json)."""
        return _plain(self.config)

    # ---------------------------------------------------------------- vectorised
    def _values(self, frame: Mapping[str, Any], chk: Check) -> np.ndarray:
        try:
            v = np.asarray(frame[chk.column], dtype=np.float64)
            if chk.minus:
                v = v - np.asarray(frame[chk.minus], dtype=np.float64)
        except KeyError as exc:
            raise PredictionInputError(
                f"The safety layer '{self.name}' needs the column {exc.args[0]!r}, which the input lacks. "
                "Add it, or score without the safety layer (safety=off)."
            ) from None
        return np.round(v, _DECIMALS)

    def deltas(self, frame: Mapping[str, Any], n: int) -> np.ndarray:
        total = np.zeros(n, dtype=np.float64)
        for chk in self.rules:
            v = self._values(frame, chk)
            conds = [_OPS[s.op](v, s.value) for s in chk.steps]
            total += np.select(conds, [s.delta for s in chk.steps], 0.0)
        return total

    def warning_codes(self, frame: Mapping[str, Any], n: int) -> np.ndarray:
        """One int per row encoding which warning step each check matched (0: no warnings)."""
        code = np.zeros(n, dtype=np.int64)
        for chk, radix in zip(self.warnings, self._radix):
            v = self._values(frame, chk)
            conds = [_OPS[s.op](v, s.value) for s in chk.steps]
            idx = np.select(conds, np.arange(1, len(chk.steps) + 1), 0)
            code = code * radix + idx
        return code

    def messages(self, code: int) -> tuple[str, ...]:
        """The warning texts of one code from :meth:`warning_codes`."""
        hit = self._combo_cache.get(code)
        if hit is None:
            idx, rest = [], int(code)
            for radix in reversed(self._radix):
                rest, i = divmod(rest, radix)
                idx.append(i)
            idx.reverse()
            hit = tuple(chk.steps[i - 1].message for chk, i in zip(self.warnings, idx) if i)
            self._combo_cache[code] = hit
        return hit

    def apply(self, frame: Mapping[str, Any], scores: Any) -> tuple[np.ndarray, list[list[str]]]:
        """Vectorised: (safety scores on the 0.5 grid, warnings per row) for raw model scores."""
        safe, lists = self.apply_arrays(frame, scores)
        return safe, lists.tolist()

    def apply_arrays(self, frame: Mapping[str, Any], scores: Any) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`apply`, with the warnings as an object array (see :meth:`warning_lists`)."""
        raw = np.asarray(scores, dtype=np.float64)
        n = raw.shape[0]
        if not self.enabled:
            empty = np.empty(1, dtype=object)
            empty[0] = []
            return round_to_half(raw), empty[np.zeros(n, dtype=np.intp)]
        return round_to_half(raw + self.deltas(frame, n)), self.warning_lists(frame, n)

    def warning_lists(self, frame: Mapping[str, Any], n: int) -> np.ndarray:
        """Object array of one warning list per row; rows with the same warnings share one list.

        Sharing keeps a million rows cheap (no million list allocations): treat the lists
        as read-only.
        """
        codes = self.warning_codes(frame, n)
        present = np.flatnonzero(np.bincount(codes)) if n else np.zeros(0, dtype=np.int64)
        lists = np.empty(len(present), dtype=object)
        for i, c in enumerate(present.tolist()):
            lists[i] = list(self.messages(c))
        return lists[np.searchsorted(present, codes)] if n else lists

    # ---------------------------------------------------------------- one row
    def apply_one(self, row: Mapping[str, Any], raw_score: float) -> tuple[float, list[str], list[str]]:
        """Single row, no numpy per rule: (safety score, warnings, reasons for the adjustments).

        Gives exactly what :meth:`apply` gives for the same row (tested).
        """
        if not self.enabled:
            return _half(raw_score), [], []
        try:
            vals = {c: float(row[c]) for c in self.columns}
        except KeyError as exc:
            raise PredictionInputError(
                f"The safety layer '{self.name}' needs the column {exc.args[0]!r}, which the input lacks. "
                "Add it, or score without the safety layer (safety=off)."
            ) from None
        checks = self.rules + self.warnings
        raw_vals = [vals[c.column] - vals[c.minus] if c.minus else vals[c.column] for c in checks]
        rounded = np.round(np.asarray(raw_vals, dtype=np.float64), _DECIMALS).tolist()
        total, reasons, warnings = 0.0, [], []
        n_rules = len(self.rules)
        for i, (chk, v) in enumerate(zip(checks, rounded)):
            for st in chk.steps:
                if _OPS[st.op](v, st.value):
                    if i < n_rules:
                        total += st.delta
                        if st.delta:
                            reasons.append(f"{st.message or chk.name} ({st.delta:+g})")
                    elif st.message:
                        warnings.append(st.message)
                    break
        return _half(raw_score + total), warnings, reasons


def _half(x: float) -> float:
    """Scalar :func:`round_to_half` (numpy's round also rounds halves to even)."""
    return min(5.0, max(1.0, round(float(x) * 2.0) / 2.0))


def layer(cfg: Any) -> SafetyLayer:
    """A :class:`SafetyLayer` from a SafetyConfig, DictConfig, dict or an existing layer."""
    return cfg if isinstance(cfg, SafetyLayer) else SafetyLayer(cfg)


def apply_safety(frame: Mapping[str, Any], scores: Any, cfg: Any) -> tuple[np.ndarray, list[list[str]]]:
    """Apply the safety layer ``cfg`` to raw model ``scores`` of the rows in ``frame``.

    Returns ``(safety_scores, warnings)``: float64 scores on the 0.5 grid clipped to
    1-5, and one list of warning texts per row. ``frame`` is a DataFrame or a mapping
    of column -> array holding the columns the layer reads (``SafetyLayer.columns``).
    """
    return layer(cfg).apply(frame, scores)


def safety_config_dict(cfg: Any) -> dict:
    """The validated safety config as plain JSON-able data (a run's ``model/safety.json``)."""
    return layer(cfg).to_dict()


def required_columns(cfg: Any) -> Sequence[str]:
    """Columns the safety layer reads."""
    return layer(cfg).columns
