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
import re
from dataclasses import dataclass
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
_OFFSET_RE = re.compile(_OFFSET)


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


# --------------------------------------------------------------------------- the column rules
UNITS: dict[str, str] = {
    "temp_c": "°C", "wind_kph": "km/h", "humidity": "%", "cloud": "%", "uv": "index", "precip_mm": "mm",
    "pressure_mb": "hPa", "dew_point_c": "°C", "feelslike_c": "°C", "gust_kph": "km/h", "vis_km": "km",
    "estimated_water_temp_c": "°C", "estimated_wave_height_m": "m", "latitude": "degrees",
    "longitude": "degrees", "datetime": "local time YYYY-MM-DD HH:MM",
}


@dataclass(frozen=True)
class Rule:
    """How one column is checked: the one table read by the frame checks (:func:`coerce_column`: training
    data, prediction frames and batch files) and the value checks (:func:`check_value`: prediction rows)."""

    column: str
    kind: str  # number | whole | flag (0/1) | category (fixed vocabulary) | text | datetime
    unit: str | None
    low: float
    high: float
    vocabulary: tuple[str, ...] | None

    @property
    def numeric(self) -> bool:
        return self.kind in ("number", "whole", "flag")

    @property
    def whole(self) -> bool:
        """Whole numbers only (integer columns, and the 0/1 flags)."""
        return self.kind in ("whole", "flag")


def _kind(col: str) -> str:
    if col == "datetime":
        return "datetime"
    if col in FLAG_COLUMNS:
        return "flag"
    if DTYPES[col] == "category":
        return "category" if col in VOCABULARIES else "text"
    return "whole" if DTYPES[col].startswith("int") else "number"


RULES: dict[str, Rule] = {c: Rule(c, _kind(c), UNITS.get(c), *RANGES.get(c, (-math.inf, math.inf)),
                                  VOCABULARIES.get(c)) for c in COLUMNS}

# What each check tells the user to do (the same on every path).
_FIX = {
    "null": "Every row needs a value there: missing values are refused on every path (training and prediction), "
            "never imputed.",
    "number": "Send plain numbers (no quotes); fix or drop those rows.",
    "finite": "Send finite numbers; fix or drop those rows.",
    "range": "Check the unit and the value (the Kaayko table uses °C, km/h, mm, hPa, km); out-of-range values are "
             "refused, not clipped.",
    "whole": "Send whole numbers (0 or 1 for a flag); round or fix those values.",
    "text": "Send the names as strings.",
    "vocabulary": "Fix the spelling or drop those rows.",
    "datetime": "Send the lake's local time as text, e.g. 2025-07-01 14:00.",
}


def _got(value: Any) -> str:
    return f"text {plain(value)}" if isinstance(value, str) else plain(value)


def _problem(rule: Rule, check: str, value: Any) -> str:
    """The one wording of a failed check (``value``: the first offending value)."""
    if check == "null":
        return "is null"
    if check == "number":
        return f"must be a number, got {_got(value)}"
    if check == "finite":
        return f"must be a finite number, got {plain(value)}"
    if check == "range":
        unit = f" {rule.unit}" if rule.unit else ""
        return f"is {plain(value)}, outside the plausible range {rule.low:g} to {rule.high:g}{unit}"
    if check == "whole":
        return f"must be a whole number, got {plain(value)}"
    if check == "text":
        return f"must be text, got {_got(value)}"
    if check == "vocabulary":
        return f"is {plain(value)}, not one of {', '.join(rule.vocabulary or ())}"
    return f"is {plain(value)}, not a local time like '2025-07-01 14:00'"  # datetime


def is_local_time(text: str) -> bool:
    """Whether ``text`` is a timestamp :func:`local_datetimes` reads (numpy first: no pandas for one value)."""
    core = _OFFSET_RE.sub("", text.strip()).replace(" ", "T")
    try:
        np.datetime64(core, "m")
        return True
    except ValueError:
        return not pd.isna(local_datetimes(pd.Series([text], dtype=object)).iloc[0])


def check_value(col: str, value: Any, *, error: type, subject: str, null_fix: str = "") -> Any:
    """Check one value against ``RULES[col]`` (the checks of :func:`coerce_column`, in the same order, with the
    same words); return it as a plain float or str. ``subject`` starts the message (e.g. ``Field 'uv'``)."""
    rule = RULES[col]

    def fail(check: str, shown: Any = value) -> None:
        raise error(f"{subject} {_problem(rule, check, shown)}. {_FIX[check]}{null_fix if check == 'null' else ''}")

    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        fail("null")
    if rule.numeric:
        if isinstance(value, (bool, np.bool_)):
            if rule.kind != "flag":
                fail("number")
            number = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
        else:
            fail("number")
        if math.isnan(number):
            fail("null")
        if math.isinf(number):
            fail("finite", number)
        if not rule.low <= number <= rule.high:
            fail("range", number)
        if rule.whole and not number.is_integer():
            fail("whole", number)
        return number
    if rule.kind == "datetime":
        if not (isinstance(value, str) and is_local_time(value)):
            fail("datetime")
        return value
    if not isinstance(value, str):
        fail("text")
    if rule.vocabulary is not None and value not in rule.vocabulary:
        fail("vocabulary")
    return value


class _Column:
    """Raises the first failed check of one column of a frame, naming its first row and how many fail."""

    def __init__(self, col: str, origin: str, error: type, where: Callable[[int], str], null_fix: str = ""):
        self.rule, self.origin, self.error, self.where, self.null_fix = RULES[col], origin, error, where, null_fix

    def fail_if(self, check: str, bad: np.ndarray, values: Any) -> None:
        if not bad.any():
            return
        pos = int(np.flatnonzero(bad)[0])
        n = int(bad.sum())
        shown = values[pos] if isinstance(values, np.ndarray) else values.iloc[pos]
        raise self.error(
            f"{self.origin}: column '{self.rule.column}' {_problem(self.rule, check, shown)} at {self.where(pos)} "
            f"({n} such value{'s' if n > 1 else ''}). {_FIX[check]}{self.null_fix if check == 'null' else ''}"
            + (" A table without scores can only be used for prediction." if self.rule.column == TARGET else ""))


def _numeric(raw: pd.Series, c: _Column) -> pd.Series:
    rule = c.rule
    c.fail_if("null", raw.isna().to_numpy(), raw)
    if pd.api.types.is_bool_dtype(raw.dtype):
        c.fail_if("number", np.full(len(raw), rule.kind != "flag"), raw)
        raw = raw.astype(np.int8)
    if pd.api.types.is_numeric_dtype(raw.dtype) and not isinstance(raw.dtype, pd.CategoricalDtype):
        arr = raw.to_numpy(dtype=np.float64)
    else:  # text, objects, categories: only numbers (and true/false in a flag) pass
        obj = raw.to_numpy(dtype=object)
        flag = rule.kind == "flag"
        ok = np.fromiter((isinstance(v, (int, float, np.integer, np.floating)) and
                          (flag or not isinstance(v, (bool, np.bool_))) for v in obj), dtype=bool, count=len(obj))
        if not ok.all():
            # name text that is no number at all before numbers written as text (a CSV column with one bad value)
            text = np.fromiter((isinstance(v, str) for v in obj), dtype=bool, count=len(obj))
            junk = text & pd.to_numeric(pd.Series(obj), errors="coerce").isna().to_numpy()
            c.fail_if("number", junk if junk.any() else ~ok, obj)
        arr = np.asarray([float(v) for v in obj], dtype=np.float64)
    c.fail_if("null", np.isnan(arr), arr)
    c.fail_if("finite", np.isinf(arr), arr)
    c.fail_if("range", (arr < rule.low) | (arr > rule.high), arr)
    if rule.whole:
        c.fail_if("whole", arr != np.round(arr), arr)
    return pd.Series(arr, index=raw.index).astype(DTYPES[rule.column])


def _datetime(raw: pd.Series, c: _Column) -> pd.Series:
    c.fail_if("null", raw.isna().to_numpy(), raw)
    values = local_datetimes(raw)
    c.fail_if("datetime", values.isna().to_numpy(), raw)
    return values


def _categorical(raw: pd.Series, c: _Column) -> pd.Series:
    c.fail_if("null", raw.isna().to_numpy(), raw)
    if isinstance(raw.dtype, pd.CategoricalDtype):
        if not all(isinstance(v, str) for v in raw.cat.categories):
            raw = raw.astype(object)
    if not isinstance(raw.dtype, pd.CategoricalDtype):
        if raw.dtype == object:
            c.fail_if("text", ~np.fromiter((type(v) is str for v in raw.to_numpy()), dtype=bool, count=len(raw)), raw)
        elif not pd.api.types.is_string_dtype(raw.dtype):
            c.fail_if("text", np.ones(len(raw), dtype=bool), raw)
    vocab = c.rule.vocabulary
    if vocab is not None:
        levels = raw.cat.categories if isinstance(raw.dtype, pd.CategoricalDtype) else pd.unique(raw)
        unknown = [v for v in levels if v not in vocab]
        if unknown:
            c.fail_if("vocabulary", raw.isin(unknown).to_numpy(), raw)
    return raw.astype("category")


def coerce_column(raw: pd.Series, col: str, origin: str, *, error: type = DataError,
                  where: Callable[[int], str] = _data_row, null_fix: str = "") -> pd.Series:
    """Check one schema column against ``RULES[col]`` (missing values, type, range, whole numbers, vocabulary)
    and coerce it to its dtype.

    The one vectorised implementation of the column rules (training data, prediction frames and batch files);
    :func:`check_value` runs the same checks, in the same order and with the same words, on one value.
    ``error`` is the exception class raised; ``where(pos)`` names the row at position ``pos`` in messages;
    ``null_fix`` is added to the message about a missing value.
    """
    checks = _Column(col, origin, error, where, null_fix)
    kind = RULES[col].kind
    if kind == "datetime":
        return _datetime(raw, checks)
    if kind in ("category", "text"):
        return _categorical(raw, checks)
    return _numeric(raw, checks)


def check_table_columns(columns: list[str], origin: str) -> None:
    """The column checks of :func:`validate_frame` (training data) on a file's column names alone (a parquet
    footer): missing, unexpected or duplicated columns raise the same :class:`DataError`."""
    _check_columns(pd.DataFrame(columns=list(columns)), origin, True)


def validate_frame(df: pd.DataFrame, origin: str, *, require_target: bool = True,
                   first_row: int = 0) -> pd.DataFrame:
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
    implausible values. ``first_row``: the position of ``df``'s first row in its file, so a piece of a file
    names the file's row ("data row 1001" for the first row of the second 1000-row piece).
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
    where = _data_row if not first_row else (lambda pos: _data_row(pos + first_row))
    frame = pd.DataFrame({col: df[col] if col in passed else coerce_column(df[col], col, origin, where=where)
                          for col in cols})
    return frame[[c for c in COLUMNS if c in frame]]


__all__ = ["RULES", "Rule", "UNITS", "check_table_columns", "check_value", "coerce_column", "is_local_time", "local_datetimes", "plain", "validate_frame", "VOCABULARIES",
           "LABEL_DERIVED", "DERIVED_COLUMNS"]
