"""The training rows' support: which inputs a model was trained on, so a prediction outside it is flagged.

Trees do not extrapolate: a combination of inputs the training rows never reach gets the score of the
nearest leaf. A :class:`Support` records where the training rows lie and says, per row, whether a new row
lies outside:

* **range**: each rule input (``temp_c``, ``wind_kph``, ``precip_mm``, ``uv``, ``cloud``) and each other
  joint input (``dew_point_c``, ``gust_kph``) against the training rows' minimum and maximum, compared at
  the table's precision (float32);
* **joint density**: for each pair of the main inputs (:data:`PAIRS`: air temperature, dew point, wind,
  gust, month), whether any training row lies within half a rule bin of the row in both (:data:`HALF_BIN`;
  for the month: the same month). Per pair a grid of training-row counts over cells half that wide is kept;
  a row is flagged when no cell within two cells of its own (in both columns) holds a training row. So a
  flagged row has no training row within half a bin, and a row that passes has one within 3/4 of a bin.

Half a bin: the label rule (:mod:`kaayko_exp.data.label`) scores air temperature in bins whose edges are
8, 12, 15, 18, 20, 25, 28, 32, 35, 38 °C (typically 3 °C wide) and wind in bins with edges 5, 15, 20, 30,
40 km/h (the narrowest 5 km/h wide); the dew point and the gust take the bin of the same unit. The
coverage of a climate is judged on the same scale.

Only the columns the model reads are checked (``columns=`` at :meth:`Support.build`: the FeatureSpec's
``required_columns``), so the check never asks a caller for more inputs. The training pipeline builds the
support from the training rows in the features stage (``features/support.json``) and exports it with the
model (``model/support.json``), hashed in the manifest like every artifact; the Predictor adds one warning
(:data:`PREFIX` ...) to every flagged row and the evaluate stage counts flagged rows per set and lake.
"""

from __future__ import annotations

import json
import math
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from kaayko_exp import atomic
from kaayko_exp.data.validate import UNITS
from kaayko_exp.errors import RunDirError

SUPPORT_FORMAT = "kaayko-support"
SUPPORT_VERSION = 1

#: Columns whose range is checked: the rule's numeric inputs, then the other joint inputs.
RANGE_COLUMNS: tuple[str, ...] = ("temp_c", "wind_kph", "precip_mm", "uv", "cloud", "dew_point_c", "gust_kph")
#: Half a rule bin per main input (see the module docstring); the month's neighbourhood is the month itself.
HALF_BIN: dict[str, float] = {"temp_c": 1.5, "dew_point_c": 1.5, "wind_kph": 2.5, "gust_kph": 2.5, "month": 0.5}
#: The pairs of main inputs whose joint density is checked, in message order ("<first> with <second>").
PAIRS: tuple[tuple[str, str], ...] = (
    ("dew_point_c", "temp_c"), ("wind_kph", "temp_c"), ("gust_kph", "temp_c"), ("gust_kph", "wind_kph"),
    ("dew_point_c", "wind_kph"), ("dew_point_c", "gust_kph"), ("temp_c", "month"), ("dew_point_c", "month"),
    ("wind_kph", "month"), ("gust_kph", "month"),
)
#: Cells per half bin on a continuous axis (the neighbourhood spans this many cells on each side).
_SPLIT = 2
#: The start of every extrapolation warning (a stable prefix that callers can look for).
PREFIX = "outside the training data: "
#: Where the features stage writes the training rows' support in a run directory (exported as model/support.json).
RUN_FILE = "features/support.json"
#: At most this many findings are spelt out in one row's warning.
MAX_FINDINGS = 3
_UNITS = {**UNITS, "month": ""}  # the input policy's units; months have none


@dataclass(frozen=True)
class Axis:
    """A grid axis: cell ``i`` holds values in ``[origin + i·width, origin + (i+1)·width)``."""

    column: str
    origin: float
    width: float
    cells: int
    reach: int  # cells on each side that lie within half a bin

    def index(self, values: np.ndarray) -> np.ndarray:
        return np.floor((values - self.origin) / self.width).astype(np.int64)


def _f32(values: Any) -> np.ndarray:
    """Values at the table's precision (float32), as float64 for arithmetic."""
    return np.asarray(values, dtype=np.float32).astype(np.float64).reshape(-1)


def _fmt(value: float, column: str) -> str:
    unit = _UNITS.get(column, "")
    text = f"{value + 0.0:g}"
    return f"{column} {text} {unit}" if unit else f"{column} {text}"


def _axis(column: str, lo: float, hi: float) -> Axis:
    if column == "month":
        return Axis(column, 1.0, 1.0, 12, 0)
    width = HALF_BIN[column] / _SPLIT
    origin = math.floor(lo / width) * width
    return Axis(column, origin, width, int(math.floor((hi - origin) / width)) + 1, _SPLIT)


def _dilate(occupied: np.ndarray, ra: int, rb: int) -> np.ndarray:
    """True where an occupied cell lies within ``ra`` cells on the first axis and ``rb`` on the second."""
    na, nb = occupied.shape
    padded = np.zeros((na + 2 * ra, nb + 2 * rb), dtype=bool)
    padded[ra:ra + na, rb:rb + nb] = occupied
    out = np.zeros_like(occupied)
    for da in range(2 * ra + 1):
        for db in range(2 * rb + 1):
            out |= padded[da:da + na, db:db + nb]
    return out


def support_columns(available: Iterable[str], columns: Optional[Iterable[str]] = None) -> list[str]:
    """The columns a support is built over: the rule inputs and grid axes among ``available`` (and ``columns``)."""
    have = set(available)
    if columns is not None:
        have &= set(columns)
    return [c for c in dict.fromkeys([*RANGE_COLUMNS, *HALF_BIN]) if c in have]


def extent(frame: Any, columns: Iterable[str]) -> dict[str, tuple[float, float]]:
    """(min, max) of each column of ``frame`` at the table's precision; empty for a frame without rows."""
    if not len(frame):
        return {}
    return {c: (float(v.min()), float(v.max())) for c in columns for v in [_f32(frame[c])]}


def pair_counts(frame: Any, axes: Mapping[str, Axis]) -> dict[tuple[str, str], np.ndarray]:
    """Training rows of ``frame`` per cell of each pair's grid over ``axes`` (sums over partitions add up)."""
    pairs = {}
    for a, b in PAIRS:
        if a in axes and b in axes:
            ia, ib = axes[a].index(_f32(frame[a])), axes[b].index(_f32(frame[b]))
            ok = (ia >= 0) & (ia < axes[a].cells) & (ib >= 0) & (ib < axes[b].cells)  # month outside 1-12
            flat = np.bincount(ia[ok] * axes[b].cells + ib[ok], minlength=axes[a].cells * axes[b].cells)
            pairs[(a, b)] = flat.reshape(axes[a].cells, axes[b].cells)
    return pairs


class Support:
    """Ranges and pairwise occupancy of the training rows; checks frames and single rows against them."""

    def __init__(self, rows: int, ranges: Mapping[str, tuple[float, float]], axes: Mapping[str, Axis],
                 pairs: Mapping[tuple[str, str], np.ndarray]):
        self.rows = int(rows)
        self.ranges = {c: (float(lo), float(hi)) for c, (lo, hi) in ranges.items()}
        self.axes = dict(axes)
        self.counts = {p: np.asarray(c, dtype=np.int64) for p, c in pairs.items()}
        self.columns = tuple(dict.fromkeys([*self.ranges, *self.axes]))
        # the lookup tables: a flat bool per cell, True where a training row lies within half a bin
        self._supported = {p: _dilate(c > 0, self.axes[p[0]].reach, self.axes[p[1]].reach).reshape(-1)
                           for p, c in self.counts.items()}
        # the one-row path's tables as plain Python values
        self._ranges_one = [(c, lo, hi) for c, (lo, hi) in self.ranges.items()]
        self._axes_one = [(c, x.origin, x.width) for c, x in self.axes.items()]
        self._one = [(a, b, self.axes[a].cells, self.axes[b].cells, self._supported[(a, b)].tolist())
                     for a, b in self.counts]

    # ------------------------------------------------------------------ building and files
    @classmethod
    def build(cls, frame: Any, columns: Optional[Iterable[str]] = None) -> "Support":
        """The support of the rows of ``frame`` (the TRAINING rows), over ``columns`` (default: all it has)."""
        used = support_columns(frame.columns if hasattr(frame, "columns") else frame.keys(), columns)
        return cls.from_extent(len(frame), extent(frame, used), lambda axes: pair_counts(frame, axes))

    @classmethod
    def from_extent(cls, rows: int, extents: Mapping[str, tuple[float, float]],
                    counts_of: Any) -> "Support":
        """The support from the training rows' count, each column's (min, max) and ``counts_of(axes)``, the
        pairs' cell counts over the axes those extents give (one frame, or the sum over a table's partitions)."""
        ranges = {c: e for c, e in extents.items() if c in RANGE_COLUMNS and rows}
        axes = {c: _axis(c, lo, hi) for c, (lo, hi) in extents.items() if c in HALF_BIN and rows}
        return cls(rows, ranges, axes, counts_of(axes) if rows else {})

    @staticmethod
    def add_summaries(parts: Iterable[Mapping[str, Any]], rows: int) -> dict[str, Any]:
        """One :meth:`summary` from those of a table's partitions (``rows``: the table's rows)."""
        out: dict[str, Any] = {"rows": 0, "share": 0.0, "checks": {}, "per_lake": {}}
        for part in parts:
            out["rows"] += int(part["rows"])
            for key in ("checks", "per_lake"):
                for name, n in (part.get(key) or {}).items():
                    out[key][name] = out[key].get(name, 0) + int(n)
        out["share"] = out["rows"] / rows if rows else 0.0
        out["checks"] = {k: v for k, v in out["checks"].items() if v}
        out["per_lake"] = dict(sorted(out["per_lake"].items()))
        return out

    def to_dict(self) -> dict[str, Any]:
        out_pairs = []
        for (a, b), counts in self.counts.items():
            flat = counts.reshape(-1)
            cells = np.flatnonzero(flat)
            out_pairs.append({"columns": [a, b], "cells": cells.tolist(), "counts": flat[cells].tolist()})
        return {"format": SUPPORT_FORMAT, "version": SUPPORT_VERSION, "rows": self.rows,
                "ranges": {c: list(r) for c, r in self.ranges.items()},
                "axes": {c: {"origin": x.origin, "width": x.width, "cells": x.cells, "reach": x.reach}
                         for c, x in self.axes.items()},
                "pairs": out_pairs}

    @classmethod
    def from_dict(cls, data: Any, where: str = "support.json") -> "Support":
        def bad(what: str) -> RunDirError:
            return RunDirError(f"{where} is not a training-support record this kaayko-exp reads ({what}). "
                               "Retrain the run, or restore the file the run wrote.")

        if not isinstance(data, Mapping) or data.get("format") != SUPPORT_FORMAT:
            raise bad("its 'format' field is missing or wrong")
        if data.get("version") != SUPPORT_VERSION:
            raise bad(f"version {data.get('version')!r}, this installation reads {SUPPORT_VERSION}")
        try:
            ranges = {str(c): (float(r[0]), float(r[1])) for c, r in data["ranges"].items()}
            axes = {str(c): Axis(str(c), float(x["origin"]), float(x["width"]), int(x["cells"]), int(x["reach"]))
                    for c, x in data["axes"].items()}
            pairs = {}
            for p in data["pairs"]:
                a, b = (str(c) for c in p["columns"])
                size = axes[a].cells * axes[b].cells
                flat = np.zeros(size, dtype=np.int64)
                cells = np.asarray(p["cells"], dtype=np.int64)
                if cells.size and (cells.min() < 0 or cells.max() >= size):
                    raise ValueError(f"a cell of {a} × {b} lies outside its grid")
                flat[cells] = np.asarray(p["counts"], dtype=np.int64)
                pairs[(a, b)] = flat.reshape(axes[a].cells, axes[b].cells)
            if any(x.width <= 0 or x.cells < 1 or x.reach < 0 for x in axes.values()):
                raise ValueError("an axis has no cells")
            return cls(int(data["rows"]), ranges, axes, pairs)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise bad(f"malformed: {exc}") from None

    def save(self, path: str | Path) -> Path:
        """Write the support as compact JSON, atomically: no indentation, so Python's C encoder writes it (an
        indented dump goes through the pure-Python encoder, one cell number per line: at sample_size=large
        1.5 MB in ~60 ms of CPU, against 0.5 MB in ~12 ms), and the run hashes, copies and reads less."""
        return atomic.write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Support":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"Cannot read the training-support record {path}: {exc}. Retrain the run, or "
                              "restore the file it wrote.") from exc
        return cls.from_dict(data, str(path))

    # ------------------------------------------------------------------ frames
    def check(self, frame: Any) -> dict[str, np.ndarray]:
        """Per check (``"<column> range"``, ``"<a> × <b>"``) a bool mask of the rows of ``frame`` it flags.

        A pair is not reported for a row whose value of either column is already outside its range."""
        values = {c: _f32(frame[c]) for c in self.columns}
        out: dict[str, np.ndarray] = {}
        outside: dict[str, np.ndarray] = {}
        for c, (lo, hi) in self.ranges.items():
            outside[c] = (values[c] < lo) | (values[c] > hi)
            out[f"{c} range"] = outside[c]
        idx = {c: x.index(values[c]) for c, x in self.axes.items()}
        for (a, b), table in self._supported.items():
            xa, xb = self.axes[a], self.axes[b]
            ia, ib = idx[a], idx[b]
            inside = (ia >= 0) & (ia < xa.cells) & (ib >= 0) & (ib < xb.cells)
            hit = np.zeros(len(ia), dtype=bool)
            hit[inside] = table[ia[inside] * xb.cells + ib[inside]]
            miss = ~hit
            for c in (a, b):
                if c in outside:
                    miss &= ~outside[c]
            out[f"{a} × {b}"] = miss
        return out

    def flagged(self, frame: Any) -> np.ndarray:
        """True for the rows of ``frame`` outside the training rows' support."""
        n = len(frame[self.columns[0]]) if self.columns else len(frame)
        masks = self.check(frame)
        return np.logical_or.reduce(list(masks.values())) if masks else np.zeros(n, dtype=bool)

    def warnings(self, frame: Any) -> tuple[np.ndarray, list[str]]:
        """``(positions of the flagged rows, one warning text per flagged row)``."""
        masks = self.check(frame)
        if not masks:
            return np.zeros(0, dtype=np.int64), []
        rows = np.flatnonzero(np.logical_or.reduce(list(masks.values())))
        if not len(rows):
            return rows, []
        values = {c: _f32(frame[c])[rows] for c in self.columns}
        hits = [(name, m[rows]) for name, m in masks.items() if m[rows].any()]
        texts = []
        for k in range(len(rows)):
            texts.append(self._text([self._finding(name, {c: v[k] for c, v in values.items()})
                                     for name, m in hits if m[k]]))
        return rows, texts

    def summary(self, frame: Any, lakes: Any = None) -> dict[str, Any]:
        """Counts for a report: ``{"rows", "share", "checks": {check: rows}, "per_lake": {lake: rows}}``."""
        masks = self.check(frame)
        n = len(next(iter(masks.values()))) if masks else len(frame)
        flagged = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(n, dtype=bool)
        out: dict[str, Any] = {"rows": int(flagged.sum()), "share": float(flagged.mean()) if n else 0.0,
                               "checks": {name: int(m.sum()) for name, m in masks.items() if m.any()}}
        if lakes is not None:  # per lake name, sorted; a categorical column is counted by its codes, not per-row text
            from kaayko_exp.data.schema import lake_codes

            codes, names = lake_codes(lakes)
            per_lake: dict[str, int] = {}
            for lake, c in zip(names, np.bincount(codes, weights=flagged, minlength=len(names)).tolist()):
                per_lake[lake] = per_lake.get(lake, 0) + int(c)  # two levels may read the same as text
            out["per_lake"] = per_lake
        return out

    # ------------------------------------------------------------------ one row
    def row_warning(self, row: Mapping[str, Any]) -> Optional[str]:
        """The warning for one row (a mapping of column -> number), or None inside the support.

        The same findings as :meth:`warnings` gives for that row in a frame, without numpy per value."""
        values = dict(zip(self.columns, array("f", [row[c] for c in self.columns]).tolist()))  # float32, as frames
        cell = {c: math.floor((values[c] - o) / w) for c, o, w in self._axes_one}
        findings = [f"{c} range" for c, lo, hi in self._ranges_one if not lo <= values[c] <= hi]
        for a, b, na, nb, table in self._one:
            ia, ib = cell[a], cell[b]
            if not (0 <= ia < na and 0 <= ib < nb and table[ia * nb + ib]):
                findings.append(f"{a} × {b}")
        if not findings:
            return None
        outside = {name[:-6] for name in findings if name.endswith(" range")}
        if outside:  # a pair is not reported for a value already outside its range (as in check())
            findings = [f for f in findings if f.endswith(" range") or not (set(f.split(" × ")) & outside)]
        return self._text([self._finding(name, values) for name in findings])

    # ------------------------------------------------------------------ texts
    def _finding(self, name: str, values: Mapping[str, float]) -> str:
        if name.endswith(" range"):
            c = name[:-len(" range")]
            lo, hi = self.ranges[c]
            side = "below" if values[c] < lo else "above"
            unit = _UNITS.get(c, "")
            return (f"{_fmt(values[c], c)}: {side} the training rows' range ({lo:g} to {hi:g}"
                    + (f" {unit})" if unit else ")"))
        a, b = name.split(" × ")
        return f"{_fmt(values[a], a)} with {_fmt(values[b], b)}: no training rows within half a bin"

    @staticmethod
    def _text(findings: list[str]) -> str:
        shown = findings[:MAX_FINDINGS]
        more = len(findings) - len(shown)
        return PREFIX + "; ".join(shown) + (f"; and {more} more" if more else "")

    def describe(self) -> dict[str, Any]:
        """What the support covers (for ``GET /model``)."""
        return {"rows": self.rows, "ranges": {c: list(r) for c, r in self.ranges.items()},
                "pairs": [f"{a} × {b}" for a, b in self.counts]}
