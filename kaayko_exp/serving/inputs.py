"""Validation of prediction input: one request row (a dict) or a frame of rows.

Policy (the same for the Python API, ``predict.py`` and HTTP):

* **Required columns** are the FeatureSpec's ``required_columns`` plus the columns
  the safety layer reads. Missing ones are refused with one
  :class:`~kaayko_exp.errors.PredictionInputError` that lists them all by name.
* **Derived columns** (``estimated_water_temp_c``, ``estimated_wave_height_m``) may
  be omitted: they are recomputed with :mod:`kaayko_exp.data.label` - the code the
  synthetic generator and the training data use - from their inputs (wind for the
  wave height; air temperature, month, latitude, climate zone, regional pattern and
  hemisphere for the water temperature), which then become required. A derived value
  that is sent is used as sent (after the range check).
* **Other columns** (extra keys, the target, ``skill_level``) are ignored; ``lake`` and
  ``datetime`` are carried to the output when present.
* **Types**: numeric columns take numbers (JSON ``true``/``false`` only for the 0/1
  flags); integer columns (humidity, cloud, month, ...) take whole numbers;
  categorical columns take strings, and the fixed vocabularies (wind_dir, season,
  season_intensity, hemisphere, climate_zone, regional_pattern) take only their
  known levels. ``null``/NaN counts as missing.
* **Ranges**: every numeric value must lie inside ``schema.RANGES`` (inclusive), e.g.
  humidity 0-100, wind >= 0; anything else is refused naming the field and value.
  Nothing is clipped or imputed silently.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from kaayko_exp.data import label, schema
from kaayko_exp.errors import PredictionInputError

VOCABULARIES = schema.FIXED_VOCABULARIES
FLAG_COLUMNS = ("is_day", "will_it_rain", "will_it_snow")
INT_COLUMNS = frozenset(c for c, d in schema.DTYPES.items() if d.startswith("int"))
NUMERIC = frozenset(schema.NUMERIC_COLUMNS)
CATEGORICAL = frozenset(schema.CATEGORICAL_COLUMNS)
# Inputs of each derived column (the arguments of its kaayko_exp.data.label function).
DERIVED_INPUTS: dict[str, tuple[str, ...]] = {
    "estimated_wave_height_m": ("wind_kph",),
    "estimated_water_temp_c": (
        "temp_c", "month", "latitude", "climate_zone", "regional_pattern", "hemisphere",
    ),
}
# The synthetic generator floors water at 0 °C (label.estimated_water_temp's default).
WATER_FLOOR_AT_ZERO = True


def derive_wave_height(frame: Mapping[str, Any]) -> np.ndarray:
    return label.estimated_wave_height(frame["wind_kph"])


def derive_water_temp(frame: Mapping[str, Any]) -> np.ndarray:
    return label.estimated_water_temp(
        frame["temp_c"], frame["month"], frame["latitude"], frame["climate_zone"],
        frame["regional_pattern"], frame["hemisphere"], floor_at_zero=WATER_FLOOR_AT_ZERO,
    )


DERIVERS = {"estimated_wave_height_m": derive_wave_height, "estimated_water_temp_c": derive_water_temp}


def _fmt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(row: int | None) -> str:
    return "" if row is None else f" (row {row})"


def _missing_error(missing: Sequence[str], derived_hint: Iterable[str] = ()) -> PredictionInputError:
    hint = ""
    derived = sorted(set(derived_hint))
    if derived:
        hint = (f" ({', '.join(derived)} can be omitted: they are recomputed from their inputs,"
                " which are then needed.)")
    return PredictionInputError(
        f"The input lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
        f"This model and its safety layer need them; add them to every row.{hint}"
    )


class InputPlan:
    """Which columns a predictor needs from the caller, and which it derives.

    ``needed`` are the columns the FeatureSpec and the safety layer read. Given the
    columns an input actually has, :meth:`resolve` tells which derived columns to
    compute and which columns the caller must still supply.
    """

    def __init__(self, needed: Iterable[str]):
        self.needed: tuple[str, ...] = tuple(dict.fromkeys(needed))
        # per column: (name, kind 0 numeric / 1 categorical / 2 other, low, high, whole numbers, vocabulary)
        self.fast: tuple[tuple[str, int, float, float, bool, Any], ...] = tuple(
            (c, 0 if c in NUMERIC else 1 if c in CATEGORICAL else 2,
             *schema.RANGES.get(c, (-math.inf, math.inf)), c in INT_COLUMNS,
             frozenset(VOCABULARIES[c]) if c in VOCABULARIES else None)
            for c in self.needed
        )

    def resolve(self, present: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
        """(columns to check, derived columns to compute, missing columns)."""
        have = set(present)
        to_derive = [c for c in DERIVED_COLUMNS_ORDER if c in self.needed and c not in have]
        check = [c for c in self.needed if c in have]
        wanted = [c for c in self.needed if c not in DERIVERS or c in have]
        for d in to_derive:
            wanted += [c for c in DERIVED_INPUTS[d] if c not in wanted]
        missing = [c for c in wanted if c not in have]
        check += [c for c in wanted if c in have and c not in check]
        return check, to_derive, missing


DERIVED_COLUMNS_ORDER = tuple(schema.DERIVED_COLUMNS)


# ------------------------------------------------------------------------ one row
def _clean_value(col: str, value: Any, row: int | None) -> Any:
    """Type- and range-check one request value; return it as a plain float/str."""
    if col in NUMERIC:
        if isinstance(value, bool):
            if col not in FLAG_COLUMNS:
                raise PredictionInputError(
                    f"Field '{col}'{_where(row)} must be a number, got {_fmt(value)}. Send a plain number.")
            value = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            value = float(value)
        else:
            raise PredictionInputError(
                f"Field '{col}'{_where(row)} must be a number, got {type(value).__name__} {_fmt(value)}. "
                "Send a plain JSON number (no quotes).")
        if not math.isfinite(value):
            raise PredictionInputError(f"Field '{col}'{_where(row)} must be a finite number, got {_fmt(value)}.")
        lo_hi = schema.RANGES.get(col)
        if lo_hi is not None and not (lo_hi[0] <= value <= lo_hi[1]):
            raise PredictionInputError(
                f"Field '{col}'{_where(row)} is {value:g}, outside the plausible range {lo_hi[0]:g} to "
                f"{lo_hi[1]:g}. Check the unit and the value; out-of-range values are refused, not clipped.")
        if col in INT_COLUMNS and not value.is_integer():
            raise PredictionInputError(
                f"Field '{col}'{_where(row)} must be a whole number, got {value:g}.")
        return value
    if col == "datetime":
        if not isinstance(value, str):
            raise PredictionInputError(
                f"Field 'datetime'{_where(row)} must be a string like \"2025-07-01 14:00\", got {_fmt(value)}.")
        try:
            np.datetime64(value.strip().replace(" ", "T"), "m")
        except ValueError:
            raise PredictionInputError(
                f"Field 'datetime'{_where(row)} is {_fmt(value)}, not a local time like \"2025-07-01 14:00\".") \
                from None
        return value
    if not isinstance(value, str):
        raise PredictionInputError(
            f"Field '{col}'{_where(row)} must be a string, got {type(value).__name__} {_fmt(value)}.")
    vocab = VOCABULARIES.get(col)
    if vocab is not None and value not in vocab:
        raise PredictionInputError(
            f"Field '{col}'{_where(row)} is {_fmt(value)}, not one of {', '.join(vocab)}.")
    return value


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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
            return None  # missing: the general path derives or lists it
        else:
            clean[col] = _clean_value(col, v, None)  # raises for a bad value
    for col in schema.ID_COLUMNS:
        if col not in clean:
            v = row.get(col)
            if v is not None and not _absent(v):
                clean[col] = _clean_value(col, v, None)
    return clean


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
    present = [k for k, v in row.items() if not _absent(v)]
    check, to_derive, missing = plan.resolve(present)
    if missing:
        err = _missing_error(missing, [d for d in DERIVERS if d in plan.needed])
        if index is not None:
            err = PredictionInputError(f"Row {index}: {err}")
        raise err
    clean = {c: _clean_value(c, row[c], index) for c in check}
    for c in schema.ID_COLUMNS:
        if c not in clean and c in row and not _absent(row[c]):
            clean[c] = _clean_value(c, row[c], index)
    for d in to_derive:
        clean[d] = float(DERIVERS[d]({k: np.asarray([v]) for k, v in clean.items()
                                      if k in DERIVED_INPUTS[d]})[0])
    return clean


# ------------------------------------------------------------------------ frames
def validate_frame(frame: Any, plan: InputPlan, offset: int = 0) -> Any:
    """Vectorised checks of a DataFrame; returns a frame with derived columns filled.

    Error messages name the field, how many rows fail and the first one
    (numbered from ``offset``, the position of the batch in the whole input).
    """
    import pandas as pd

    present = [c for c in frame.columns]
    check, to_derive, missing = plan.resolve(present)
    if missing:
        raise _missing_error(missing, [d for d in DERIVERS if d in plan.needed])
    out = frame
    replaced: dict[str, Any] = {}
    for col in check:
        s = frame[col]
        if col in NUMERIC:
            if not (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)):
                if pd.api.types.is_bool_dtype(s.dtype) and col in FLAG_COLUMNS:
                    num = s.astype("float64")
                else:
                    num = pd.to_numeric(s, errors="coerce")
                    bad = num.isna() & s.notna()
                    if bad.any():
                        i = int(np.flatnonzero(bad.to_numpy())[0])
                        raise PredictionInputError(
                            f"Column '{col}' must be numeric; {int(bad.sum())} row(s) are not, the first is row "
                            f"{offset + i} with {_fmt(s.iloc[i])}.")
                replaced[col] = num
                s = num
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
            nan = ~np.isfinite(values)
            if nan.any():
                i = int(np.flatnonzero(nan)[0])
                raise PredictionInputError(
                    f"Column '{col}' has {int(nan.sum())} missing or non-finite value(s), the first at row "
                    f"{offset + i}. Fill or drop those rows; the model does not impute.")
            lo_hi = schema.RANGES.get(col)
            if lo_hi is not None:
                bad = (values < lo_hi[0]) | (values > lo_hi[1])
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise PredictionInputError(
                        f"Column '{col}' has {int(bad.sum())} value(s) outside the plausible range {lo_hi[0]:g} to "
                        f"{lo_hi[1]:g}; the first is {values[i]:g} at row {offset + i}. Out-of-range values are "
                        "refused, not clipped.")
            if col in INT_COLUMNS and not pd.api.types.is_integer_dtype(s.dtype):
                frac = values != np.round(values)
                if frac.any():
                    i = int(np.flatnonzero(frac)[0])
                    raise PredictionInputError(
                        f"Column '{col}' must hold whole numbers; row {offset + i} has {values[i]:g}.")
        elif col == "datetime":
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                parsed = pd.to_datetime(s.astype("string"), errors="coerce", format="ISO8601")
                bad = parsed.isna().to_numpy()
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise PredictionInputError(
                        f"Column 'datetime' has {int(bad.sum())} missing or unreadable value(s), the first at row "
                        f"{offset + i} ({_fmt(s.iloc[i])}); use local times like \"2025-07-01 14:00\".")
            elif s.isna().any():
                i = int(np.flatnonzero(s.isna().to_numpy())[0])
                raise PredictionInputError(f"Column 'datetime' is missing at row {offset + i}.")
        else:
            na = s.isna().to_numpy()
            if na.any():
                i = int(np.flatnonzero(na)[0])
                raise PredictionInputError(
                    f"Column '{col}' has {int(na.sum())} missing value(s), the first at row {offset + i}.")
            vocab = VOCABULARIES.get(col)
            if vocab is not None:
                levels = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else pd.unique(s)
                unknown = [v for v in levels if v not in vocab]
                if isinstance(s.dtype, pd.CategoricalDtype):  # unused levels do not count
                    used = set(s.cat.remove_unused_categories().cat.categories)
                    unknown = [v for v in unknown if v in used]
                if unknown:
                    i = int(np.flatnonzero(s.isin(unknown).to_numpy())[0])
                    raise PredictionInputError(
                        f"Column '{col}' has the unknown value {_fmt(unknown[0])} (first at row {offset + i}); "
                        f"allowed: {', '.join(vocab)}.")
    if replaced or to_derive:
        out = frame.copy(deep=False)
        for col, s in replaced.items():
            out[col] = s
        for d in to_derive:
            out[d] = DERIVERS[d](out)
    return out


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
