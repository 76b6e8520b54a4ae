"""MLflow's scoring protocol (``POST /invocations``), read into the rows our ``/predict`` scores.

What ``mlflow models serve`` accepts, so that a client written for it works against ``predict.py
serve.port=...`` unchanged (MLflow itself is not needed to serve):

* ``Content-Type: application/json`` with exactly one of
  ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (``index`` is ignored),
  ``{"dataframe_records": [{...}, ...]}``, ``{"instances": [{...}, ...]}`` and
  ``{"inputs": [{...}, ...]}``; ``instances`` and ``inputs`` may also be columns,
  ``{"col": [v1, v2], ...}`` (all of one length), or one row of scalars. ``params`` is accepted and
  ignored (the model takes none), as other keys are by MLflow.
* ``Content-Type: text/csv`` (UTF-8): a header line and one line per row, as ``DataFrame.to_csv(index=False)``
  writes it; an empty cell is a missing value and is refused like a JSON ``null``.

The answer is ``{"predictions": [...]}``, one record per row with our output columns, and errors are MLflow's
``{"error_code": ..., "message": ...}`` (see :mod:`kaayko_exp.serving.http`). The values are checked by the
one input policy afterwards, exactly as on ``/predict``.
"""

from __future__ import annotations

import io
from typing import Any

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"


class FormatError(ValueError):
    """A body that is not one of the protocol's forms (HTTP 400, ``BAD_REQUEST``)."""


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``text/csv; charset=utf-8`` -> (``text/csv``, ``{"charset": "utf-8"}``)."""
    mime, *params = [part.strip() for part in (content_type or "").split(";")]
    pairs = dict(p.partition("=")[::2] for p in params if p)
    return mime.lower(), {k.strip().lower(): v.strip().strip('"') for k, v in pairs.items()}


def _records(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(f"'{key}' must be a list of row objects, got {type(value).__name__}.")
    return value


def _columns(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``{"col": [v1, v2], ...}`` -> rows; all scalars -> one row."""
    lists = {k: v for k, v in value.items() if isinstance(v, list)}
    if not lists:
        return [value]
    if len(lists) != len(value):
        scalar = next(k for k in value if k not in lists)
        raise FormatError(f"'{key}' mixes columns (lists) and single values ('{scalar}'); give every column as a "
                          "list of the same length, or a list of row objects.")
    lengths = {len(v) for v in lists.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in lists.items())
        raise FormatError(f"The columns of '{key}' differ in length ({sizes}); every column needs one value per row.")
    n = lengths.pop()
    return [{k: v[i] for k, v in lists.items()} for i in range(n)]


def _split(value: Any) -> list[Any]:
    if not isinstance(value, dict) or "data" not in value:
        raise FormatError("'dataframe_split' must be an object with 'columns' and 'data' (a list of rows, each a "
                          "list of values in the order of 'columns'), as DataFrame.to_dict(orient='split') gives.")
    columns, data = value.get("columns"), value["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise FormatError("'dataframe_split' needs 'columns': the list of column names (e.g. \"temp_c\").")
    if not isinstance(data, list):
        raise FormatError(f"'dataframe_split.data' must be a list of rows, got {type(data).__name__}.")
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise FormatError(f"Row {i} of 'dataframe_split.data' has {got}; each row is a list of {len(columns)} "
                              "values, one per column.")
        rows.append(dict(zip(columns, row)))
    return rows


def rows_from_json(payload: Any) -> list[Any]:
    """The rows of a JSON request in one of :data:`FORMATS`."""
    if not isinstance(payload, dict):
        raise FormatError(f"The body must be a JSON object with one of the keys {', '.join(FORMATS)}, got a "
                          f"{type(payload).__name__}. POST a bare row or list of rows to /predict instead.")
    keys = [k for k in FORMATS if k in payload]
    if len(keys) != 1:
        given = ", ".join(map(repr, payload)) or "none"
        raise FormatError(f"The body must have exactly one of the keys {', '.join(FORMATS)} (given: {given}), "
                          "e.g. {\"dataframe_records\": [{\"lake\": \"Lake Mead\", \"datetime\": \"2025-07-01 14:00\", "
                          "...}]}.")
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return _split(value)
    if key in ("instances", "inputs") and isinstance(value, dict):
        return _columns(value, key)
    return _records(value, key)


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """The rows of a CSV body (header line first); empty cells become missing values (refused later)."""
    import pandas as pd

    if not text.strip():
        raise FormatError("The CSV body is empty: send a header line with the column names and one line per row.")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={"lake": object, "datetime": object})
    except (ValueError, pd.errors.ParserError) as exc:
        raise FormatError(f"The body is not valid CSV ({' '.join(str(exc).split())}). Send a header line and one "
                          "line per row, as DataFrame.to_csv(index=False) writes it.") from None
    return frame.to_dict(orient="records")
