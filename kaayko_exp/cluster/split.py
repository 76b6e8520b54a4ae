"""Lake / spot / time splits of a dask DataFrame from a small (lake, month) -> part table.

Every split kind decides by lake and by calendar month alone (whole lakes held out; the latest months held
out), so ``features.splits.split_rows`` run on the table of distinct (lake, month) pairs, one row each, makes
the same decisions as on every row: the same test, validation and training lakes and the same cutoff month.
The workers receive that table and label their rows by a lookup; the rows of each part are those the local
path puts there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: part codes, as the local pipeline's (kaayko_exp/training/pipeline.py SPLIT_CODES)
PARTS = {"train": 0, "val": 1, "test": 2}


def _periods(datetimes: pd.Series) -> np.ndarray:
    """year * 12 + month - 1 of each timestamp (vectorised through numpy's month unit)."""
    months = np.asarray(datetimes.to_numpy(), dtype="datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    return months + 1970 * 12


def _lake_codes(lake: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(code of each row, lake names as text): :func:`kaayko_exp.data.schema.lake_codes`."""
    from kaayko_exp.data.schema import lake_codes

    codes, names = lake_codes(lake)
    return codes, pd.Index(names, dtype=object)


def _pairs(part: pd.DataFrame) -> pd.DataFrame:
    """The distinct (lake, month) pairs of one partition and their rows."""
    codes, names = _lake_codes(part["lake"])
    found = pd.DataFrame({"code": codes, "period": _periods(part["datetime"])})
    found = found.groupby(["code", "period"], sort=False).size().rename("rows").reset_index()
    return pd.DataFrame({"lake": names.to_numpy(object)[found["code"].to_numpy()],
                         "period": found["period"].to_numpy(np.int64), "rows": found["rows"].to_numpy(np.int64)})


def _label(part: pd.DataFrame, table: pd.DataFrame) -> pd.Series:
    """Each row's part code, looked up in the (lake, month) table (a dense lake x month array)."""
    lakes = pd.Index(pd.unique(table["lake"].to_numpy(object)))
    first = int(table["period"].min())
    dense = np.full((len(lakes), int(table["period"].max()) - first + 1), -1, dtype=np.int8)
    dense[lakes.get_indexer(table["lake"].to_numpy(object)), table["period"].to_numpy(np.int64) - first] = \
        table["part"].to_numpy(np.int8)
    codes, names = _lake_codes(part["lake"])
    row_lake = lakes.get_indexer(names)[codes] if len(codes) else codes
    month = _periods(part["datetime"]) - first
    inside = (row_lake >= 0) & (month >= 0) & (month < dense.shape[1])
    labels = dense[np.where(inside, row_lake, 0), np.where(inside, month, 0)]
    if not inside.all() or (labels < 0).any():  # cannot happen for rows of the table the split was made from
        raise RuntimeError("a row's (lake, month) is missing from the split table")
    return pd.Series(labels, index=part.index, name="part")


def split_table(ddf: Any, cfg: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The (lake, month) -> part table of ``cfg.split`` over ``ddf``'s rows (columns lake, period, rows, part;
    one pass over the ``lake`` and ``datetime`` columns) and ``split_rows``' description with the row counts."""
    from kaayko_exp.features.splits import split_rows

    meta = pd.DataFrame({"lake": pd.Series(dtype=object), "period": pd.Series(dtype=np.int64),
                         "rows": pd.Series(dtype=np.int64)})
    found = ddf[["lake", "datetime"]].map_partitions(_pairs, meta=meta).compute()
    pairs = found.groupby(["lake", "period"], sort=True)["rows"].sum().reset_index()
    pairs["lake"] = pairs["lake"].astype(object)
    months = pairs["period"].to_numpy(np.int64)
    stand_in = pd.DataFrame({"lake": pairs["lake"],  # one row per pair: the first hour of its month
                             "datetime": pd.to_datetime({"year": months // 12, "month": months % 12 + 1, "day": 1})})
    parts = split_rows(stand_in, cfg.split, int(cfg.seed))
    codes = np.full(len(pairs), -1, dtype=np.int8)
    for name, code in PARTS.items():
        codes[parts[name]] = code
    table = pairs.assign(part=codes)
    rows = table.groupby("part")["rows"].sum()
    description = {**parts["description"], "rows": {name: int(rows.get(code, 0)) for name, code in PARTS.items()}}
    return table, description


def split_frame(ddf: Any, cfg: Any) -> dict[str, Any]:
    """``{"train", "val", "test": ddf, "table": DataFrame, "description": dict}``: see the package docstring.

    Raises what ``split_rows`` raises (ConfigError / DataError) for a split the data cannot make."""
    import dask

    table, description = split_table(ddf, cfg)
    shipped = dask.delayed(table[["lake", "period", "part"]], pure=True)  # one copy in the graph, however many partitions read it
    part = ddf.map_partitions(_label, shipped, meta=pd.Series(dtype=np.int8, name="part"))
    out: dict[str, Any] = {name: ddf[part == code] for name, code in PARTS.items()}
    out.update(table=table, description=description)
    return out
