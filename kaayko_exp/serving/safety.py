"""The post-model safety layer: score adjustments (with reasons) and warnings for hazards.

Every threshold comes from the ``safety`` config group: ``conf/safety/kaayko.yaml``
(the default: only hazards the label rule does not already price),
``kaayko_original.yaml`` (the original production thresholds) or ``off``.

Semantics (shared by the vectorised and the single-row path):

* A *check* looks at one column, or at ``column - minus`` (gust minus wind). Its
  steps are tried in order and the FIRST matching step applies, so list the most
  severe step first (``> 50`` before ``> 40``). ``when`` gates a check: it applies
  only on rows where every condition holds.
* Compared values are first rounded to 4 decimals, so a float32 value read from
  parquet (``25.2`` stored as ``25.2000008``) and the same value sent as JSON give the
  same answer at a threshold.
* ``model_score = round_half(raw_score)`` (0.5 grid, clipped 1-5);
  ``paddle_score = clip(model_score + sum of the matching rules' deltas, 1, 5)``, so
  the listed adjustments add up to the change (up to the clip); with no matching rule
  ``paddle_score == model_score``.
* ``adjustments``: one ``{"rule", "delta", "reason"}`` per matching rule, in config
  order; the reason names the value and the threshold (``"gust 45 km/h > 40 km/h"``).
* ``warnings``: the messages of the matching warning steps, in config order.
* Missing values (NaN) never match a step or a gate; the prediction layer refuses rows
  with missing values in the columns the layer needs before this runs.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from kaayko_exp.data.label import round_to_half
from kaayko_exp.errors import ConfigError, PredictionInputError

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_SYMBOL = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}
_DECIMALS = 4


@dataclass(frozen=True)
class Step:
    op: str
    value: float
    delta: float
    message: str


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: float
    label: str
    unit: str


@dataclass(frozen=True)
class Check:
    name: str
    column: str
    minus: str | None
    label: str
    unit: str
    when: tuple[Condition, ...]
    steps: tuple[Step, ...]


class SafetyResult(NamedTuple):
    """The layer applied to a batch (arrays aligned with the input rows)."""

    model_score: np.ndarray  # float64, 0.5 grid, 1-5
    paddle_score: np.ndarray  # float64, model_score + adjustments, clipped 1-5
    adjustments: np.ndarray | None  # object: one list of {"rule", "delta", "reason"} per row (rows with equal
    #                                  adjustments share one list: treat them as read-only)
    warnings: np.ndarray | None  # object: one list of texts per row (rows with equal warnings share one list)
    matched: dict[str, np.ndarray]  # rule -> bool mask of the rows it adjusted


class RowSafety(NamedTuple):
    """The layer applied to one row."""

    model_score: float
    paddle_score: float
    adjustments: list[dict[str, Any]]
    warnings: list[str]


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


def _number(where: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {raw!r}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where} must be finite, got {raw!r}.")
    return value


def _op(where: str, op: Any) -> str:
    if op not in _OPS:
        raise ConfigError(f"{where}.op is {op!r}; use one of {', '.join(_OPS)}.")
    return op


def _conditions(where: str, spec: Any) -> tuple[Condition, ...]:
    out = []
    for i, c in enumerate(spec or []):
        at = f"{where}.when[{i}]"
        if not isinstance(c, Mapping) or not c.get("column"):
            raise ConfigError(f"{at} needs a 'column', an 'op' and a 'value' (see conf/safety/kaayko.yaml).")
        out.append(Condition(str(c["column"]), _op(at, c.get("op", ">=")), _number(f"{at}.value", c.get("value")),
                             str(c.get("label") or c["column"]), str(c.get("unit") or "")))
    return tuple(out)


def _checks(kind: str, spec: Any, is_rule: bool) -> tuple[Check, ...]:
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
            at = f"{where}.steps[{i}]"
            op = _op(at, st.get("op"))
            value = _number(f"{at}.value", st.get("value"))
            delta = _number(f"{at}.delta", st.get("delta", 0.0) or 0.0)
            if is_rule and delta * 2 != round(delta * 2):
                raise ConfigError(f"{at}.delta is {delta}; deltas must be multiples of 0.5.")
            steps.append(Step(op, value, delta, str(st.get("message") or "")))
        if not steps:
            raise ConfigError(f"{where} has no steps.")
        column, minus = str(body["column"]), body.get("minus") or None
        label = body.get("label") or (f"{column} - {minus}" if minus else column)
        out.append(Check(str(name), column, minus, str(label), str(body.get("unit") or ""),
                         _conditions(where, body.get("when")), tuple(steps)))
    return tuple(out)


def _fmt(x: float) -> str:
    return f"{x + 0.0:g}"


def _with_unit(x: float, unit: str) -> str:
    return f"{_fmt(x)} {unit}" if unit else _fmt(x)


def _reason(chk: Check, step: Step, value: float, gate_values: Sequence[float]) -> str:
    """``"gust 45 km/h > 40 km/h"``, plus the gate: ``"... with air 22 °C ≥ 15 °C"``."""
    text = f"{chk.label} {_with_unit(value, chk.unit)} {_SYMBOL[step.op]} {_with_unit(step.value, chk.unit)}"
    gates = [f"{c.label} {_with_unit(v, c.unit)} {_SYMBOL[c.op]} {_with_unit(c.value, c.unit)}"
             for c, v in zip(chk.when, gate_values)]
    return text + (" with " + " and ".join(gates) if gates else "")


def format_adjustment(adj: Mapping[str, Any]) -> str:
    """One adjustment as people read it everywhere: ``gusts −0.5 (gust 45 km/h > 40 km/h)``."""
    delta = float(adj["delta"])
    sign = "−" if delta < 0 else "+"
    return f"{adj['rule']} {sign}{_fmt(abs(delta))} ({adj['reason']})"


def _groups(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with equal values in every column: (position of each group's first row, group code per row)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        values, code = np.unique(col, return_inverse=True)
        _, key = np.unique(key * len(values) + code.reshape(-1), return_inverse=True)
    _, first, key = np.unique(key, return_index=True, return_inverse=True)
    return first, key.reshape(-1)


def _shared_empty(n: int) -> np.ndarray:
    empty = np.empty(1, dtype=object)
    empty[0] = []
    return empty[np.zeros(n, dtype=np.intp)]


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
            for c in (chk.column, chk.minus, *(w.column for w in chk.when)):
                if c and c not in cols:
                    cols.append(c)
        self.columns: tuple[str, ...] = tuple(cols)
        # mixed-radix encoding of the warning step matched by each check (0 = none)
        self._radix = [len(w.steps) + 1 for w in self.warnings]
        self._combo_cache: dict[int, tuple[str, ...]] = {}
        self._checks = self.rules + self.warnings

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """The config in the structure of conf/safety/kaayko.yaml (what a run saves as model/safety.json)."""
        return _plain(self.config)

    # ---------------------------------------------------------------- vectorised
    def _column(self, frame: Mapping[str, Any], name: str) -> np.ndarray:
        try:
            return np.asarray(frame[name], dtype=np.float64)
        except KeyError:
            raise PredictionInputError(
                f"The safety layer '{self.name}' needs the column {name!r}, which the input lacks. "
                "Add it, or score without the safety layer (safety=off)."
            ) from None

    def _values(self, frame: Mapping[str, Any], chk: Check) -> np.ndarray:
        v = self._column(frame, chk.column)
        if chk.minus:
            v = v - self._column(frame, chk.minus)
        return np.round(v, _DECIMALS)

    def _step_index(self, frame: Mapping[str, Any], chk: Check, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, 1-based index of the first matching step per row, 0 where none or the gate fails)."""
        v = self._values(frame, chk)
        idx = np.select([_OPS[s.op](v, s.value) for s in chk.steps], np.arange(1, len(chk.steps) + 1), 0)
        for c in chk.when:
            gate = _OPS[c.op](np.round(self._column(frame, c.column), _DECIMALS), c.value)
            idx = np.where(gate, idx, 0)
        return v, np.asarray(idx, dtype=np.int64).reshape(n)

    def warning_codes(self, frame: Mapping[str, Any], n: int) -> np.ndarray:
        """One int per row encoding which warning step each check matched (0: no warnings)."""
        code = np.zeros(n, dtype=np.int64)
        for chk, radix in zip(self.warnings, self._radix):
            code = code * radix + self._step_index(frame, chk, n)[1]
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
            hit = tuple(m for chk, i in zip(self.warnings, idx) if i and (m := chk.steps[i - 1].message))
            self._combo_cache[code] = hit
        return hit

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

    def apply_arrays(self, frame: Mapping[str, Any], scores: Any, *, details: bool = True) -> SafetyResult:
        """Vectorised: the layer applied to the raw model ``scores`` of the rows in ``frame``.

        ``details=False`` (evaluation) skips the per-row adjustment and warning lists
        (``None`` in the result): scores and per-rule masks only.
        """
        raw = np.asarray(scores, dtype=np.float64).reshape(-1)
        n = raw.shape[0]
        model = round_to_half(raw)
        if not self.enabled:
            empty = _shared_empty(n) if details else None
            return SafetyResult(model, model.copy(), empty, empty, {})
        total = np.zeros(n, dtype=np.float64)
        matched: dict[str, np.ndarray] = {}
        hits = []  # (check, values, step index, gate values) of rules that matched somewhere
        for chk in self.rules:
            v, idx = self._step_index(frame, chk, n)
            deltas = np.asarray([0.0, *(s.delta for s in chk.steps)])
            d = deltas[idx]
            total += d
            matched[chk.name] = d != 0
            if details and matched[chk.name].any():
                gates = [np.round(self._column(frame, c.column), _DECIMALS) for c in chk.when]
                hits.append((chk, v, idx, gates))
        adjustments = _shared_empty(n)
        if hits:
            self._fill_adjustments(adjustments, hits, matched)
        paddle = np.clip(model + total, 1.0, 5.0)
        if not details:
            return SafetyResult(model, paddle, None, None, matched)
        return SafetyResult(model, paddle, adjustments, self.warning_lists(frame, n), matched)

    @staticmethod
    def _fill_adjustments(adjustments: np.ndarray, hits: list, matched: dict[str, np.ndarray]) -> None:
        """Fill the lists of the adjusted rows. A reason is formatted once per distinct (step, compared value,
        gate values) of its rule, and rows with the same adjustments share one list."""
        adjusted = np.flatnonzero(np.logical_or.reduce([matched[c.name] for c, *_ in hits]))
        row_key = np.zeros(len(adjusted), dtype=np.int64)
        per_rule = []  # (rule's group code per adjusted row, its adjustment dict per group, or None: not applied)
        for chk, v, idx, gates in hits:
            on = matched[chk.name][adjusted]  # a matching step with a non-zero delta
            k = np.where(on, idx[adjusted], 0)
            first, code = _groups([k, *(np.where(on, x[adjusted], 0.0) for x in (v, *gates))])
            items: list[Any] = []
            for i in adjusted[first].tolist():
                step = chk.steps[int(idx[i]) - 1] if matched[chk.name][i] else None
                items.append(None if step is None else {
                    "rule": chk.name, "delta": step.delta,
                    "reason": _reason(chk, step, float(v[i]), [float(g[i]) for g in gates])})
            per_rule.append((code, items))
            _, row_key = np.unique(row_key * len(items) + code, return_inverse=True)
        _, first, row_key = np.unique(row_key, return_index=True, return_inverse=True)
        lists = np.empty(len(first), dtype=object)
        for u, j in enumerate(first.tolist()):
            lists[u] = [dict(items[int(code[j])]) for code, items in per_rule if items[int(code[j])] is not None]
        adjustments[adjusted] = lists[row_key.reshape(-1)]

    def summary(self, result: SafetyResult) -> dict[str, Any]:
        """``{"name", "rows_changed_share", "per_rule": {rule: share of rows it adjusted}}`` for a report."""
        n = len(result.model_score)

        def share(mask: np.ndarray) -> float:
            return float(np.mean(mask)) if n else 0.0

        return {
            "name": self.name,
            "rows_changed_share": share(result.paddle_score != result.model_score),
            "per_rule": {chk.name: share(result.matched.get(chk.name, np.zeros(n, dtype=bool)))
                         for chk in self.rules},
        }

    # ---------------------------------------------------------------- one row
    def apply_one(self, row: Mapping[str, Any], raw_score: float) -> RowSafety:
        """Single row, no numpy per rule: exactly what :meth:`apply_arrays` gives for it (tested)."""
        model = _half(raw_score)
        if not self.enabled:
            return RowSafety(model, model, [], [])
        checks = self._checks
        try:
            vals = {c: float(row[c]) for c in self.columns}
        except KeyError as exc:
            raise PredictionInputError(
                f"The safety layer '{self.name}' needs the column {exc.args[0]!r}, which the input lacks. "
                "Add it, or score without the safety layer (safety=off)."
            ) from None
        rounded = {c: _round4(v) for c, v in vals.items()}
        compared = [_round4(vals[c.column] - vals[c.minus]) if c.minus else rounded[c.column] for c in checks]
        total, adjustments, warnings = 0.0, [], []
        n_rules = len(self.rules)
        for i, (chk, v) in enumerate(zip(checks, compared)):
            if chk.when:
                gates = [rounded[c.column] for c in chk.when]
                if not all(_OPS[c.op](g, c.value) for c, g in zip(chk.when, gates)):
                    continue
            else:
                gates = []
            for st in chk.steps:
                if _OPS[st.op](v, st.value):
                    if i < n_rules:
                        if st.delta:
                            total += st.delta
                            adjustments.append({"rule": chk.name, "delta": st.delta,
                                                "reason": _reason(chk, st, v, gates)})
                    elif st.message:
                        warnings.append(st.message)
                    break
        return RowSafety(model, min(5.0, max(1.0, model + total)), adjustments, warnings)


def _round4(x: float) -> float:
    """Scalar ``np.round(x, 4)``: numpy scales by 10**4, rounds half to even (as ``round``) and scales back."""
    y = x * 1e4
    if y != y or y in (math.inf, -math.inf):
        return y / 1e4
    return round(y) / 1e4


def _half(x: float) -> float:
    """Scalar :func:`round_to_half` (numpy's round also rounds halves to even)."""
    return min(5.0, max(1.0, round(float(x) * 2.0) / 2.0))


def layer(cfg: Any) -> SafetyLayer:
    """A :class:`SafetyLayer` from a SafetyConfig, DictConfig, dict or an existing layer."""
    return cfg if isinstance(cfg, SafetyLayer) else SafetyLayer(cfg)


def apply_safety(frame: Mapping[str, Any], scores: Any, cfg: Any) -> SafetyResult:
    """Apply the safety layer ``cfg`` to raw model ``scores`` of the rows in ``frame``.

    ``frame`` is a DataFrame or a mapping of column -> array holding the columns the
    layer reads (``SafetyLayer.columns``).
    """
    return layer(cfg).apply_arrays(frame, scores)


def safety_config_dict(cfg: Any) -> dict:
    """The validated safety config as plain JSON-able data (a run's ``model/safety.json``)."""
    return layer(cfg).to_dict()


def required_columns(cfg: Any) -> Sequence[str]:
    """Columns the safety layer reads."""
    return layer(cfg).columns
