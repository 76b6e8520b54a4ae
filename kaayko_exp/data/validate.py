"""Check a loaded frame against the schema and coerce it to the schema dtypes.

Every problem is a :class:`~kaayko_exp.errors.DataError` with one paragraph that names
the origin (file), the column(s), an example bad value and the fix.

Policies shared by training data and every prediction path (the serving input policy,
:mod:`kaayko_exp.serving.inputs`, runs its frame checks through :func:`coerce_column`):

* **Missing values are refused** in every column, training and serving alike (the
  Kaayko sample has none; a model or the safety layer cannot judge weather it does not
  see, and no path imputes).
* **Timestamps are local wall-clock time** (the lake's local time, as the collector
  wrote it). A UTC offset suffix (``+02:00``, ``Z``) is dropped, never converted:
  ``2025-07-01T14:00+02:00`` is 14:00 on every path (:func:`local_datetimes`).
* Values in messages are written plainly (``150``, ``'abc'``), never as numpy reprs.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from kaayko_exp.data.schema import (
    COLUMNS,
    DERIVED_COLUMNS,
    DTYPES,
    FIXED_VOCABULARIES,
    LABEL_DERIVED,
    RANGES,
    SKILL_LEVELS,
    TARGET,
)
from kaayko_exp.errors import DataError

# Categorical columns with a closed vocabulary.
VOCABULARIES = {**FIXED_VOCABULARIES, "skill_level": SKILL_LEVELS}
FLAG_COLUMNS = ("is_day", "will_it_rain", "will_it_snow")
# A trailing UTC offset of an ISO-8601 timestamp: dropped (local wall-clock time wins).
_OFFSET = r"(?<=:\d\d)(?:\.\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def plain(value: Any) -> str:
    """A value as a user wrote it: ``150``, ``22.5``, ``'abc'``, ``null`` - never ``np.float64(150.0)``."""
    if value is None or value is pd.NaT:
        return "null"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'JSON object' if isinstance(value, dict) else 'list'}"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.7g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, int):
        return str(value)
    text = repr(str(value)) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _data_row(pos: int) -> str:
    return f"data row {pos + 1}"


def local_datetimes(values: pd.Series) -> pd.Series:
    """Timestamps as naive local wall-clock ``datetime64[ns]`` (NaT where unreadable).

    Text like ``2025-07-01 14:00``, ``2025-07-01T14:00:00`` or ``2025-07-01T14:00+02:00``
    (the offset is dropped: 14:00), tz-aware datetimes (their wall-clock time) and naive
    datetimes are accepted. The one parser of timestamps: training data, the feature
    transform's hour and every prediction path use it.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        return values.astype("datetime64[ns]")
    text = values.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d %H:%M")
    if parsed.isna().any():  # other ISO-8601 spellings (seconds, 'T', offsets)
        redo = parsed.isna() & text.notna()
        stripped = text[redo].str.replace(_OFFSET, "", regex=True).str.replace("T", " ", regex=False)
        parsed = parsed.copy()
        parsed[redo] = pd.to_datetime(stripped, errors="coerce", format="ISO8601")
    return parsed.astype("datetime64[ns]")


def _check_columns(df: pd.DataFrame, origin: str, require_target: bool) -> list[str]:
    present = [str(c) for c in df.columns]
    dupes = sorted({c for c in present if present.count(c) > 1})
    if not require_target:  # prediction input: the serving policy decides which columns a model needs
        if dupes:
            raise DataError(f"{origin} has duplicated column(s) {', '.join(dupes)}. Keep one of each.")
        return [c for c in COLUMNS if c in present]
    missing = [c for c in COLUMNS if c not in present]
    extra = [c for c in present if c not in COLUMNS]
    if missing or extra or dupes:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s): {', '.join(extra)}")
        if dupes:
            parts.append(f"duplicated column(s): {', '.join(dupes)}")
        raise DataError(
            f"{origin} does not have the Kaayko table's columns: {'; '.join(parts)}. "
            f"The table needs exactly these {len(COLUMNS)} columns (any order): {', '.join(COLUMNS)}. "
            "Rename or drop the listed columns, or point data.path at files written by the Kaayko collector."
        )
    return list(COLUMNS)


def _numeric(raw: pd.Series, col: str, origin: str, error: type, where: Callable[[int], str]) -> pd.Series:
    what = "the target" if col == TARGET else f"column '{col}'"
    if pd.api.types.is_bool_dtype(raw.dtype):
        if col not in FLAG_COLUMNS and col != TARGET:
            raise error(f"{origin}: {what} must be numeric ({DTYPES[col]}) but holds true/false values. "
                        "Send numbers.")
        raw = raw.astype(np.int8)
    values = raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise error(
            f"{origin}: {what} must be numeric ({DTYPES[col]}) but holds non-numeric values, "
            f"e.g. {plain(raw.iloc[pos])} at {where(pos)} ({int(bad.sum())} such value(s)). "
            f"Fix or drop those rows so '{col}' contains only numbers."
        )
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(arr)
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        what = "the target paddle_score" if col == TARGET else f"column '{col}'"
        raise error(
            f"{origin}: {what} is empty in {int(missing.sum())} row(s) (null, NaN or infinite), first at "
            f"{where(pos)}. Every row needs a value there; missing values are refused on every path (training "
            "and prediction), never imputed. Fill or drop those rows"
            + (" (a table without scores can only be used for prediction)." if col == TARGET else ".")
        )
    lo, hi = RANGES.get(col, (-np.inf, np.inf))
    out = (arr < lo) | (arr > hi)
    if out.any():
        pos = int(np.flatnonzero(out)[0])
        raise error(
            f"{origin}: column '{col}' has {int(out.sum())} value(s) outside the plausible range [{lo:g}, {hi:g}], "
            f"e.g. {plain(arr[pos])} at {where(pos)}. Check the unit of that column (the Kaayko table uses °C, "
            "km/h, mm, hPa, km) or drop those rows; out-of-range values are refused, not clipped."
        )
    if DTYPES[col].startswith("int"):
        frac = np.abs(arr - np.round(arr)) > 1e-9
        if frac.any():
            pos = int(np.flatnonzero(frac)[0])
            raise error(
                f"{origin}: column '{col}' must hold whole numbers but has e.g. {plain(arr[pos])} "
                f"at {where(pos)}. Round or fix those values."
            )
    return pd.Series(arr, index=raw.index).astype(DTYPES[col])


def _datetime(raw: pd.Series, origin: str, error: type, where: Callable[[int], str]) -> pd.Series:
    values = local_datetimes(raw)
    bad = values.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise error(
            f"{origin}: column 'datetime' must hold local times like '2024-06-01 14:00' but has "
            f"{plain(raw.iloc[pos])} at {where(pos)} ({int(bad.sum())} such value(s)). Fix or drop those rows."
        )
    return values


def _categorical(raw: pd.Series, col: str, origin: str, error: type, where: Callable[[int], str]) -> pd.Series:
    missing = raw.isna().to_numpy()
    if missing.any():
        raise error(
            f"{origin}: column '{col}' is empty (null) in {int(missing.sum())} row(s), first at "
            f"{where(int(np.flatnonzero(missing)[0]))}. Every row needs a value there; fill or drop those rows."
        )
    if isinstance(raw.dtype, pd.CategoricalDtype):
        if not all(isinstance(c, str) for c in raw.cat.categories):
            raw = raw.astype("str")
    else:
        if not (pd.api.types.is_string_dtype(raw.dtype) or raw.dtype == object):
            raise error(f"{origin}: column '{col}' must hold text (e.g. category names) but holds "
                        f"{raw.dtype} values such as {plain(raw.iloc[0])}. Send the names as strings.")
        nonstr = (np.zeros(len(raw), dtype=bool) if raw.dtype != object
                  else ~np.fromiter((type(v) is str for v in raw.to_numpy()), dtype=bool, count=len(raw)))
        if nonstr.any():
            pos = int(np.flatnonzero(nonstr)[0])
            raise error(f"{origin}: column '{col}' must hold text but has {plain(raw.iloc[pos])} at "
                        f"{where(pos)}. Send the names as strings.")
    vocab = VOCABULARIES.get(col)
    if vocab is not None:
        levels = raw.cat.categories if isinstance(raw.dtype, pd.CategoricalDtype) else pd.unique(raw)
        unknown = [v for v in levels if v not in vocab and (raw == v).any()]
        if unknown:
            bad = (raw == unknown[0]).to_numpy()
            raise error(
                f"{origin}: column '{col}' has the unknown value {plain(unknown[0])} at "
                f"{where(int(np.flatnonzero(bad)[0]))}; allowed values are {', '.join(vocab)}. Fix the spelling "
                "or drop those rows."
            )
    return raw.astype("category")


def coerce_column(raw: pd.Series, col: str, origin: str, *, error: type = DataError,
                  where: Callable[[int], str] = _data_row) -> pd.Series:
    """Check one schema column (type, missing values, range, vocabulary) and coerce it to its dtype.

    The one vectorised implementation of the column rules of ``schema`` (used for training
    data and for prediction frames). ``error`` is the exception class raised; ``where(pos)``
    names the row at position ``pos`` in messages.
    """
    dtype = DTYPES[col]
    if col == "datetime":
        return _datetime(raw, origin, error, where)
    if dtype == "category":
        return _categorical(raw, col, origin, error, where)
    return _numeric(raw, col, origin, error, where)


def validate_frame(df: pd.DataFrame, origin: str, *, require_target: bool = True) -> pd.DataFrame:
    """Check ``df`` against the 35-column schema and return it coerced to ``schema.DTYPES``.

    ``origin`` names where the frame came from (a file) in error messages. With
    ``require_target=False`` (prediction inputs) no column is required: the schema
    columns present are checked and coerced, others dropped; which columns a model
    needs, and which are derived (lake context, calendar, water temperature, waves), is
    the serving input policy's job (:mod:`kaayko_exp.serving.inputs`), so a batch file
    needs only the model's columns; ``lake`` and ``datetime`` pass unchanged (the
    serving policy checks them and carries them to the output as given). Column order follows ``schema.COLUMNS``; the index
    is reset. Raises :class:`DataError` on an empty frame, missing/extra columns, a value
    of the wrong type (naming the column and an example), a missing value or
    implausible values.
    """
    if len(df.columns) == 0:
        raise DataError(f"{origin} is empty (no header line). Supply a file with the {len(COLUMNS)} Kaayko columns.")
    cols = _check_columns(df, origin, require_target)
    if len(df) == 0:
        raise DataError(
            f"{origin} has a header but no data rows. Remove the empty file or fill it with hourly rows."
        )
    df = df.reset_index(drop=True)
    # prediction inputs: the identifiers (lake, datetime) pass as given; the serving policy checks them
    passed = ("lake", "datetime") if not require_target else ()
    frame = pd.DataFrame({col: df[col] if col in passed else coerce_column(df[col], col, origin) for col in cols})
    return frame[[c for c in COLUMNS if c in frame]]


__all__ = ["coerce_column", "local_datetimes", "plain", "validate_frame", "VOCABULARIES",
           "LABEL_DERIVED", "DERIVED_COLUMNS"]
