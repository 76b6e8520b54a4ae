"""THE input policy of prediction: one table of column rules read by every path.

``Predictor.predict`` (frames, ``predict.py`` batch files), ``predict_one`` / ``predict_many``
(dicts, HTTP, ``predict.py row=``) all go through :class:`InputPlan`:

* **Rules** (:data:`RULES`, built from :mod:`kaayko_exp.data.schema`): per column its
  kind (number, whole number, 0/1 flag, category, timestamp, text), unit, plausible range
  (inclusive; out-of-range values are refused, never clipped), fixed vocabulary, and the
  columns it can be derived from. The table and its checks live in :mod:`kaayko_exp.data.validate`
  (``RULES``): frames are checked column-wise by ``coerce_column`` (the loader's own checks),
  single rows value by value by ``check_value`` - the same checks in the same order with the
  same words, so a value one path refuses the other refuses with the same message.
* **Required**: the columns the model's FeatureSpec and the safety layer read, minus
  those that can be derived. A minimal request is a ``lake`` (a catalogue name) or
  ``latitude`` + ``longitude``, a ``datetime`` (local time), and the weather fields
  (:meth:`InputPlan.describe` / ``GET /model`` list them exactly). Only the model's
  columns are needed: a batch file need not carry columns no feature reads.
* **Derived** (only to fill gaps: a column that is given wins, after its checks), with
  the code that made the training data:

  - ``latitude``, ``longitude`` from ``lake`` (:func:`kaayko_exp.data.catalogue.lake_index`;
    a paddlingOut spot at the generator's spot coordinates);
  - ``hemisphere``, ``climate_zone``, ``region``, ``regional_pattern`` from the coordinates
    (:mod:`kaayko_exp.data.geo`, as the synthetic generator);
  - ``lake_region``, ``lake_type``, ``base_lake_name`` from the catalogue entry of ``lake``,
    or of the nearest catalogue lake within ``catalogue.NEAREST_LAKE_KM`` (25 km) of the
    coordinates; farther away they cannot be derived and must be sent if the model needs them;
  - ``month``, ``day_of_year`` from ``datetime``; ``season``, ``season_intensity`` from the
    month and the lake's season calendar (``geo.season_scheme``, ``geo.SEASON_TABLE``);
  - ``estimated_wave_height_m`` and ``estimated_water_temp_c`` with
    :mod:`kaayko_exp.data.label`, from inputs at the training table's precision (float32,
    one decimal). The water temperature follows the floor policy of the run's training
    data: the synthetic generator floors it at 0 °C, the Kaayko collector's real files do
    not (``InputPlan(water_floor_at_zero=...)``; the Predictor sets it from the run's
    ``data`` choice).
* **Timestamps** are local wall-clock time: an offset suffix is dropped, never converted
  (:func:`kaayko_exp.data.validate.local_datetimes`, also used by training and features).
* **Missing values** are refused on every path, as in training data: a JSON ``null`` is
  "field X is null" (omit a derivable field instead), NaN in a frame names the column
  and the first row. Extra keys and label columns are ignored; ``lake`` and ``datetime``
  are carried to the output as given.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from kaayko_exp.data import label, schema
from kaayko_exp.data.validate import _OFFSET_RE, RULES as _ALL_RULES, UNITS, check_value, plain
from kaayko_exp.errors import PredictionInputError

_LAKE = ("lake",)
_COORDS = ("latitude", "longitude")
_SEASON_IN = ("month", "latitude", "climate_zone", "regional_pattern")
# column -> alternative input sets it can be derived from (first that is available is used).
DERIVABLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "latitude": (_LAKE,),
    "longitude": (_LAKE,),
    "hemisphere": (("latitude",),),
    "climate_zone": (("latitude",),),
    "region": (_COORDS,),
    "regional_pattern": (_COORDS,),
    "lake_region": (_LAKE, _COORDS),
    "lake_type": (_LAKE, _COORDS),
    "base_lake_name": (_LAKE, _COORDS),
    "month": (("datetime",),),
    "day_of_year": (("datetime",),),
    "season": (_SEASON_IN,),
    "season_intensity": (_SEASON_IN,),
    "estimated_wave_height_m": (("wind_kph",),),
    "estimated_water_temp_c": (("temp_c", "month", "latitude", "climate_zone", "regional_pattern",
                                "hemisphere"),),
}
DERIVE_ORDER: tuple[str, ...] = tuple(DERIVABLE)  # inputs always come earlier


# The input columns' rules: the table of kaayko_exp.data.validate (one table and one implementation of its
# checks for training data, frames, batch files and single rows), less the label columns.
RULES = {c: rule for c, rule in _ALL_RULES.items() if c not in schema.LABEL_DERIVED}


def _how(col: str) -> str:
    alts = [" + ".join(a) for a in DERIVABLE[col]]
    return "derived from " + " or ".join(alts)


# --------------------------------------------------------------------------- derivations
class _Lakes:
    """Catalogue entries of the rows (by lake name, else by nearest coordinates), computed once per call."""

    def __init__(self, cols: Mapping[str, np.ndarray]):
        from kaayko_exp.data import catalogue

        self.catalogue = catalogue
        n = len(next(iter(cols.values())))
        rows = np.full(n, -1, dtype=np.int64)
        problem = [""] * n
        if "lake" in cols:
            names = np.asarray(cols["lake"], dtype=object)
            for name in dict.fromkeys(names.tolist()):
                if not isinstance(name, str):
                    continue  # no name in this row: coordinates, if any, decide
                try:
                    idx = catalogue.lake_index(str(name))
                except LookupError as exc:
                    idx, reason = -1, str(exc)
                    for i in np.flatnonzero(names == name):
                        problem[i] = reason
                rows[names == name] = idx
        todo = rows < 0
        if todo.any() and "latitude" in cols and "longitude" in cols:
            lat = np.asarray(cols["latitude"], dtype=np.float64)[todo]
            lng = np.asarray(cols["longitude"], dtype=np.float64)[todo]
            near = catalogue.nearest_lakes(lat, lng)
            rows[todo] = near
            for i, j in zip(np.flatnonzero(todo), near):
                if j < 0:
                    problem[i] = (f"no catalogue lake lies within {catalogue.NEAREST_LAKE_KM:g} km of latitude "
                                  f"{plain(float(cols['latitude'][i]))}, longitude {plain(float(cols['longitude'][i]))}")
        self.rows, self.problem = rows, problem

    def field(self, name: str, target: str, where: Callable[[int], str]) -> np.ndarray:
        bad = self.rows < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            reason = self.problem[i] or "neither lake nor latitude/longitude was given"
            raise PredictionInputError(
                f"Cannot derive '{target}'{where(i)}: {reason}. Send a lake name from the catalogue "
                f"(kaayko_exp/data/catalogue), or latitude and longitude near one, or send '{target}' itself.")
        return self.catalogue.lake_columns()[name][self.rows]


def _derive(col: str, cols: dict[str, np.ndarray], ctx: dict, plan: "InputPlan",
            where: Callable[[int], str]) -> np.ndarray:
    from kaayko_exp.data import geo

    if col in ("latitude", "longitude", "lake_region", "lake_type", "base_lake_name"):
        if "lakes" not in ctx:
            ctx["lakes"] = _Lakes(cols)
        field = {"latitude": "lat", "longitude": "lng", "lake_region": "region", "lake_type": "type",
                 "base_lake_name": "base_lake"}[col]
        values = ctx["lakes"].field(field, col, where)
        return values.astype(np.float64) if col in _COORDS else values.astype(object)
    if col == "hemisphere":
        return geo.hemisphere(cols["latitude"])
    if col == "climate_zone":
        return geo.climate_zone(cols["latitude"])
    if col in ("region", "regional_pattern"):
        region, pattern = geo.region_and_pattern(cols["latitude"], cols["longitude"])
        return region if col == "region" else pattern
    if col in ("month", "day_of_year"):
        if "minutes" not in ctx:
            ctx["minutes"] = _wall_clock_minutes(cols["datetime"])
        minutes = ctx["minutes"]
        if col == "month":
            return (minutes.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.float64)
        days = minutes.astype("datetime64[D]") - minutes.astype("datetime64[Y]")
        return (days.astype(np.int64) + 1).astype(np.float64)
    if col in ("season", "season_intensity"):
        scheme = geo.season_scheme(cols["latitude"], np.asarray(cols["climate_zone"], dtype=object),
                                   np.asarray(cols["regional_pattern"], dtype=object))
        month = np.asarray(cols["month"], dtype=np.int64)
        table, vocab = ((geo.SEASON_TABLE, schema.SEASONS) if col == "season"
                        else (geo.INTENSITY_TABLE, schema.SEASON_INTENSITIES))
        return np.asarray(vocab, dtype=object)[table[scheme, month - 1]]
    if col == "estimated_wave_height_m":
        # the generator computes waves from the one-decimal wind before storing it as float32
        wind = label._one_decimal_float64(np.asarray(cols["wind_kph"], dtype=np.float32))
        return label.estimated_wave_height(wind)
    if col == "estimated_water_temp_c":
        water = label.estimated_water_temp(
            np.asarray(cols["temp_c"], dtype=np.float32), np.asarray(cols["month"], dtype=np.int64),
            np.asarray(cols["latitude"], dtype=np.float64), cols["climate_zone"], cols["regional_pattern"],
            cols["hemisphere"], floor_at_zero=plan.water_floor_at_zero)
        return water.astype(np.float32).astype(np.float64)  # stored as float32, like the training table
    raise KeyError(col)  # pragma: no cover - DERIVABLE and _derive list the same columns


def _to_send(col: str, avail: set[str]) -> list[str]:
    """What a caller must add to have ``col``: nothing when it is available, the column itself when it cannot be
    derived, else what its first derivation lacks (so a message names the same columns as ``describe``)."""
    if col in avail:
        return []
    if col not in DERIVABLE:
        return [col]
    return [r for i in DERIVABLE[col][0] for r in _to_send(i, avail)]


# --------------------------------------------------------------------------- the plan
class InputPlan:
    """Which columns a predictor needs, which it derives from what, and the rules to check them.

    ``needed``: the columns the FeatureSpec and the safety layer read.
    ``water_floor_at_zero``: the training data's water-temperature policy (see the module doc).
    """

    def __init__(self, needed: Iterable[str], *, water_floor_at_zero: bool = True):
        self.needed: tuple[str, ...] = tuple(dict.fromkeys(needed))
        self.water_floor_at_zero = bool(water_floor_at_zero)
        self._resolved: dict[frozenset, tuple[list[str], list[str], list[str]]] = {}
        # per column: (name, kind 0 number / 1 string / 2 other, low, high, whole numbers, vocabulary)
        self.fast: tuple[tuple[str, int, float, float, bool, Any], ...] = tuple(
            (c, 0 if RULES[c].numeric else 1 if RULES[c].kind in ("category", "text") else 2, RULES[c].low,
             RULES[c].high, RULES[c].whole, None if RULES[c].vocabulary is None else frozenset(RULES[c].vocabulary))
            for c in self.needed
        )

    def reads(self) -> tuple[str, ...]:
        """Every column an input may use: the needed ones, what they can be derived from, and the
        identifiers. A batch reader reads only these, so other columns (and gaps in them) never matter."""
        out = list(self.needed)
        for col in out:  # grows while it is walked: inputs of inputs
            for alt in DERIVABLE.get(col, ()):
                out += [c for c in alt if c not in out]
        out += [c for c in schema.ID_COLUMNS if c not in out]
        return tuple(out)

    def resolve(self, present: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """(columns to check, columns to derive in order, missing columns) for an input with ``present``."""
        key = frozenset(present)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        have = set(key)
        avail = set(key)
        for col in DERIVE_ORDER:
            if col not in avail and any(all(i in avail for i in alt) for alt in DERIVABLE[col]):
                avail.add(col)
        wanted: list[str] = []
        queue = list(self.needed)
        derive: set[str] = set()
        while queue:
            col = queue.pop(0)
            if col in wanted:
                continue
            wanted.append(col)
            if col not in have and col in avail and col in DERIVABLE:
                derive.add(col)
                for alt in DERIVABLE[col]:
                    if all(i in avail for i in alt):
                        queue += [i for i in alt if i not in wanted]
        missing = list(dict.fromkeys(r for c in self.needed for r in _to_send(c, avail)))
        check = [c for c in wanted if c in have]
        check += [c for c in schema.ID_COLUMNS if c in have and c not in check]
        if len(self._resolved) < 256:
            self._resolved[key] = (check, [c for c in DERIVE_ORDER if c in derive], missing)
        return check, [c for c in DERIVE_ORDER if c in derive], missing

    def describe(self) -> dict[str, Any]:
        """What a caller must send (``required``) and may send (``optional``: derived when absent)."""
        base = [c for c in self.needed if c not in DERIVABLE and c not in schema.ID_COLUMNS]
        trial = set(base) | {"lake", "datetime"}
        _, derived, missing = self.resolve(trial)
        uses = set(self.resolve(trial)[0])
        required = [c for c in self.needed if c in base] + [c for c in ("lake", "datetime") if c in uses]
        required += [c for c in missing if c not in required]
        optional = {c: _how(c) for c in self.needed if c in DERIVABLE}
        for c in derived:
            optional.setdefault(c, _how(c))
        notes = []
        if "lake" in required:
            notes.append("lake: a name from the catalogue (kaayko_exp/data/catalogue); instead of it, send latitude "
                         "and longitude (the lake fields then come from the nearest catalogue lake within "
                         "25 km, if any)")
        if "datetime" in required:
            notes.append("datetime: local wall-clock time of the lake, e.g. 2025-07-01 14:00 (an offset suffix is "
                         "dropped, not converted)")
        return {"required": required, "optional": optional, "notes": notes,
                "units": {c: UNITS[c] for c in required + list(optional) if c in UNITS}}


def _missing_error(plan: InputPlan, missing: list[str], where: str = "") -> PredictionInputError:
    hints = []
    if "lake" in missing:
        hints.append("send 'lake' (a catalogue name) or 'latitude' and 'longitude' to have the lake context "
                     "derived")
    if "datetime" in missing:
        hints.append("send 'datetime' (local time) to have the calendar fields derived")
    return PredictionInputError(
        f"{where}The input lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
        f"This model and its safety layer need {'them' if len(missing) > 1 else 'it'}; add "
        f"{'them' if len(missing) > 1 else 'it'} to every row"
        + (f" ({'; '.join(hints)})" if hints else "") + ". GET /model (Predictor.info()) lists what is required.")


# --------------------------------------------------------------------------- one row
def _where(row: int | None) -> str:
    return "" if row is None else f" (row {row})"


def _clean_value(col: str, value: Any, row: int | None) -> Any:
    """Check one request value against RULES[col] (kaayko_exp.data.validate.check_value); a plain float or str."""
    return check_value(col, value, error=PredictionInputError, subject=f"Field '{col}'{_where(row)}",
                       null_fix=_null_fix(col))


def _null_fix(col: str) -> str:
    return " Or omit the field (in a table: the column) to have it derived." if col in DERIVABLE else ""


def _wall_clock_minutes(values: Any) -> np.ndarray:
    """Local wall-clock ``datetime64[m]`` of timestamps, as :func:`~kaayko_exp.data.validate.local_datetimes`
    reads them: text with its offset dropped is parsed by numpy (no pandas on the single-row path); anything
    else (datetime values, other spellings) goes through ``local_datetimes`` itself."""
    values = np.asarray(values, dtype=object)
    if all(isinstance(v, str) for v in values):
        try:
            return np.array([_OFFSET_RE.sub("", v.strip()).replace(" ", "T") for v in values], dtype="datetime64[m]")
        except ValueError:
            pass
    import pandas as pd

    from kaayko_exp.data.validate import local_datetimes

    return local_datetimes(pd.Series(values, dtype=object)).to_numpy().astype("datetime64[m]")


def _validate_fast(row: dict, plan: InputPlan) -> dict[str, Any] | None:
    """The common case (every needed column present, plain values) without the general machinery.

    Anything unusual - a missing or derived column, a value of another type, out of range -
    returns None (or raises the same error as the general path) so :func:`validate_row` decides.
    """
    clean: dict[str, Any] = {}
    for col, kind, lo, hi, whole, vocab in plan.fast:
        v = row.get(col)
        t = type(v)
        if kind == 0 and (t is float or t is int) and lo <= v <= hi and (not whole or v == int(v)):
            clean[col] = float(v)
        elif kind == 1 and t is str and (vocab is None or v in vocab):
            clean[col] = v
        elif v is None:
            return None  # missing or null: the general path derives, lists or refuses it
        else:
            clean[col] = _clean_value(col, v, None)  # raises for a bad value
    for col in schema.ID_COLUMNS:
        if col not in clean and col in row:
            if row[col] is None:
                return None  # an empty identifier: the general path decides whether anything needs it
            clean[col] = _clean_value(col, row[col], None)
    return clean


def _unread_ids(plan: InputPlan, derive: list[str]) -> set[str]:
    """The identifiers (lake, datetime) that neither the model nor a derivation reads: only carried to the
    output, so a row may leave them empty (null) on every path."""
    inputs = {i for c in derive for alt in DERIVABLE[c] for i in alt}
    return {c for c in schema.ID_COLUMNS if c not in plan.needed and c not in inputs}


def validate_row(row: Any, plan: InputPlan, index: int | None = None) -> dict[str, Any]:
    """Check one request row and return a clean dict of the needed columns (derived ones filled).

    ``lake`` and ``datetime`` are kept when present (for the output); other keys are dropped.
    """
    if type(row) is dict and index is None:
        fast = _validate_fast(row, plan)
        if fast is not None:
            return fast
    if not isinstance(row, Mapping):
        raise PredictionInputError(
            f"A prediction request{_where(index)} must be a JSON object of column -> value, got "
            f"{type(row).__name__}.")
    check, derive, missing = plan.resolve(k for k in row if k in RULES)
    empty = [k for k, v in row.items() if k in RULES and (v is None or (isinstance(v, float) and math.isnan(v)))]
    unread = _unread_ids(plan, derive)  # may be empty, as in a frame's empty cell; any other null is refused
    for k in empty:
        if k not in unread:
            _clean_value(k, row[k], index)
    check = [c for c in check if c not in unread or c not in empty]
    if missing:
        raise _missing_error(plan, missing, "" if index is None else f"Row {index}: ")
    clean = {c: _clean_value(c, row[c], index) for c in check}
    if derive:
        cols = {k: np.asarray([v], dtype=object if isinstance(v, str) else np.float64) for k, v in clean.items()}
        ctx: dict = {}
        for col in derive:
            cols[col] = _derive(col, cols, ctx, plan, lambda i: _where(index))
            value = cols[col][0]
            clean[col] = value.item() if hasattr(value, "item") else value
            if RULES[col].kind in ("number", "whole"):
                clean[col] = float(clean[col])
    return clean


# --------------------------------------------------------------------------- frames
def validate_frame(frame: Any, plan: InputPlan, offset: int = 0) -> Any:
    """Vectorised checks of a DataFrame with the same rules; returns a frame with derived columns filled.

    Error messages name the field, how many rows fail and the first one (numbered from
    ``offset``, the position of the batch in the whole input). ``lake``/``datetime`` stay as given.
    """
    import pandas as pd

    from kaayko_exp.data.validate import coerce_column

    dupes = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        raise PredictionInputError(f"The input has duplicated column(s) {', '.join(dupes)}. Keep one of each.")
    check, derive, missing = plan.resolve(c for c in frame.columns if c in RULES)
    if missing:
        raise _missing_error(plan, missing)

    def where(pos: int) -> str:
        return f"row {offset + pos}"

    frame = frame.reset_index(drop=True)
    out: dict[str, Any] = {}
    unread = _unread_ids(plan, derive)
    for col in check:
        s = frame[col]
        if col in unread and s.isna().any():
            s = s.dropna()  # only an identifier here: rows may leave it empty
        coerced = coerce_column(s, col, "The input", error=PredictionInputError, null_fix=_null_fix(col),
                                where=lambda pos, s=s: where(int(frame.index.get_loc(s.index[pos]))))
        out[col] = frame[col] if col in schema.ID_COLUMNS else coerced
        if col == "datetime":
            stamps = coerced
    clean = pd.DataFrame(out, index=frame.index)
    if derive:
        cols: dict[str, Any] = {}
        for c in clean.columns:
            s = clean[c]
            if c == "datetime":
                cols[c] = stamps
            elif pd.api.types.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
                cols[c] = s.to_numpy(dtype=np.float64)
            else:
                cols[c] = s.astype(object).to_numpy()
        ctx: dict = {}
        for col in derive:
            cols[col] = _derive(col, cols, ctx, plan, lambda i: f" (row {offset + i})")
            values = cols[col]
            dtype = schema.DTYPES[col]
            clean[col] = pd.Categorical(values) if dtype == "category" else np.asarray(values).astype(dtype)
    return clean


def request_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row (e.g. ``frame.iloc[i]``) as a JSON-ready prediction request.

    Label columns and an earlier ``prediction`` are dropped, timestamps become
    ``YYYY-MM-DD HH:MM`` text and numpy scalars plain Python values.
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in schema.LABEL_DERIVED or key == "prediction":
            continue
        if hasattr(value, "strftime"):
            value = value.strftime("%Y-%m-%d %H:%M")
        elif hasattr(value, "item"):
            value = value.item()
        out[key] = value
    return out
