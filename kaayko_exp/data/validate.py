"""Check a loaded frame against the schema and coerce it to the schema dtypes.

Every problem is a :class:`~kaayko_exp.errors.DataError` with one paragraph that names
the origin (file), the column(s), an example bad value and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaayko_exp.data import label
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
_WATER_INPUTS = ("temp_c", "month", "latitude", "climate_zone", "regional_pattern", "hemisphere")


def _row_hint(df: pd.DataFrame, mask: np.ndarray) -> str:
    pos = int(np.flatnonzero(mask)[0])
    return f"data row {pos + 1}"


def _check_columns(df: pd.DataFrame, origin: str, require_target: bool) -> list[str]:
    optional: set[str] = set()
    if not require_target:
        optional |= set(LABEL_DERIVED)
        optional |= {c for c in DERIVED_COLUMNS}
    present = [str(c) for c in df.columns]
    missing = [c for c in COLUMNS if c not in present and c not in optional]
    # prediction inputs may carry other columns (ids, earlier predictions): they are ignored
    extra = [c for c in present if c not in COLUMNS] if require_target else []
    dupes = sorted({c for c in present if present.count(c) > 1})
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
    return [c for c in COLUMNS if c in present]


def _numeric(df: pd.DataFrame, col: str, origin: str) -> pd.Series:
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(np.int8)
    values = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        example = raw[bad].iloc[0]
        what = "the target" if col == TARGET else f"column '{col}'"
        raise DataError(
            f"{origin}: {what} must be numeric ({DTYPES[col]}) but holds non-numeric values, "
            f"e.g. {example!r} at {_row_hint(df, bad)} ({int(bad.sum())} such value(s)). "
            f"Fix or drop those rows so '{col}' contains only numbers."
        )
    missing = values.isna().to_numpy()
    if missing.any() and (col == TARGET or DTYPES[col].startswith("int")):
        what = "the target paddle_score" if col == TARGET else f"integer column '{col}'"
        raise DataError(
            f"{origin}: {what} is empty in {int(missing.sum())} row(s), first at {_row_hint(df, missing)}. "
            f"Every row needs a value there; drop or fill those rows"
            + (" (a table without scores can only be used for prediction)." if col == TARGET else ".")
        )
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, hi = RANGES.get(col, (-np.inf, np.inf))
    out = (arr < lo) | (arr > hi)
    if out.any():
        raise DataError(
            f"{origin}: column '{col}' has values outside the plausible range [{lo:g}, {hi:g}], "
            f"e.g. {arr[out][0]!r} at {_row_hint(df, out)} ({int(out.sum())} such value(s)). "
            "Check the unit of that column (the Kaayko table uses °C, km/h, mm, hPa, km) or drop those rows."
        )
    if DTYPES[col].startswith("int"):
        frac = np.abs(arr - np.round(arr)) > 1e-9
        if frac.any():
            raise DataError(
                f"{origin}: column '{col}' must hold whole numbers but has e.g. {arr[frac][0]!r} "
                f"at {_row_hint(df, frac)}. Round or fix those values."
            )
    return pd.Series(arr, index=df.index).astype(DTYPES[col])


def _datetime(df: pd.DataFrame, origin: str) -> pd.Series:
    raw = df["datetime"]
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = raw
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_localize(None)
    else:
        text = raw.astype("str")
        values = pd.to_datetime(text, errors="coerce", format="%Y-%m-%d %H:%M")
        if values.isna().any():  # other ISO-8601 spellings (seconds, 'T', offsets)
            values = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
    bad = values.isna().to_numpy()
    if bad.any():
        example = raw[bad].iloc[0]
        raise DataError(
            f"{origin}: column 'datetime' must hold local times like '2024-06-01 14:00' but has "
            f"{example!r} at {_row_hint(df, bad)} ({int(bad.sum())} such value(s)). Fix or drop those rows."
        )
    return values.astype("datetime64[ns]")


def _categorical(df: pd.DataFrame, col: str, origin: str) -> pd.Series:
    raw = df[col]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"{origin}: column '{col}' is empty in {int(missing.sum())} row(s), first at "
            f"{_row_hint(df, missing)}. Every row needs a value there; fill or drop those rows."
        )
    if isinstance(raw.dtype, pd.CategoricalDtype):
        cats = raw.cat.categories
        if not all(isinstance(c, str) for c in cats):
            raw = raw.astype("str")
    else:
        raw = raw.astype("str")
    vocab = VOCABULARIES.get(col)
    if vocab is not None:
        levels = raw.cat.categories if isinstance(raw.dtype, pd.CategoricalDtype) else pd.unique(raw)
        unknown = [v for v in levels if v not in vocab and (raw == v).any()]
        if unknown:
            bad = (raw == unknown[0]).to_numpy()
            raise DataError(
                f"{origin}: column '{col}' has the unknown value {unknown[0]!r} at {_row_hint(df, bad)}; "
                f"allowed values are {', '.join(vocab)}. Fix the spelling or drop those rows."
            )
    return raw.astype("category")


def validate_frame(df: pd.DataFrame, origin: str, *, require_target: bool = True) -> pd.DataFrame:
    """Check ``df`` against the 35-column schema and return it coerced to ``schema.DTYPES``.

    ``origin`` names where the frame came from (a file) in error messages. With
    ``require_target=False`` (prediction inputs) ``paddle_score`` and ``skill_level``
    may be absent, and the derived water-temperature / wave-height columns are
    computed when absent. Column order follows ``schema.COLUMNS``; the index is reset.
    Raises :class:`DataError` on an empty frame, missing/extra columns, a value of the
    wrong type (naming the column and an example), a missing target or implausible values.
    """
    if len(df.columns) == 0:
        raise DataError(f"{origin} is empty (no header line). Supply a file with the {len(COLUMNS)} Kaayko columns.")
    cols = _check_columns(df, origin, require_target)
    if len(df) == 0:
        raise DataError(
            f"{origin} has a header but no data rows. Remove the empty file or fill it with hourly rows."
        )
    df = df.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for col in cols:
        dtype = DTYPES[col]
        if col == "datetime":
            out[col] = _datetime(df, origin)
        elif dtype == "category":
            out[col] = _categorical(df, col, origin)
        else:
            out[col] = _numeric(df, col, origin)
    frame = pd.DataFrame(out)
    if not require_target:
        if "estimated_wave_height_m" not in frame:
            frame["estimated_wave_height_m"] = label.estimated_wave_height(frame["wind_kph"].to_numpy())
        if "estimated_water_temp_c" not in frame:
            frame["estimated_water_temp_c"] = label.estimated_water_temp(
                *(frame[c].to_numpy() for c in _WATER_INPUTS)
            ).astype(np.float32)
    return frame[[c for c in COLUMNS if c in frame]]
