"""The FeatureSpec fitted on training partitions and applied per partition with the local code.

``fit_spec`` reduces the category levels that occur in the training partitions (each partition's
``features.spec.observed_levels``, united) and builds the spec with ``features.spec.spec_from_levels``, the
function ``build_spec`` uses on a local frame: the same rows give the same spec. ``transform`` maps
``features.spec.transform`` (the code serving runs) over the partitions, so serving parity holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _levels(part: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    from kaayko_exp.features.spec import observed_levels

    found = observed_levels(part, columns)
    return pd.DataFrame({"column": [c for c, levels in found.items() for _ in levels],
                         "level": [v for levels in found.values() for v in levels]}, dtype=object)


def fit_spec(train_ddf: Any, cfg: Any) -> Any:
    """The FeatureSpec of ``cfg.features`` with category levels from ``train_ddf``'s rows (the training part)."""
    from kaayko_exp.features.spec import categorical_sources, spec_from_levels

    columns = [c for c in categorical_sources(cfg.features) if c in train_ddf.columns]
    levels: dict[str, list[str]] = {}
    if columns:
        meta = pd.DataFrame({"column": pd.Series(dtype=object), "level": pd.Series(dtype=object)})
        found = train_ddf[columns].map_partitions(_levels, columns, meta=meta).drop_duplicates().compute()
        for column, level in zip(found["column"], found["level"]):
            levels.setdefault(column, []).append(level)
    return spec_from_levels(cfg.features, list(train_ddf.columns), levels)


def _rows_and_extent(part: pd.DataFrame, columns: list[str]) -> tuple[int, dict[str, tuple[float, float]]]:
    from kaayko_exp.data.support import extent

    return len(part), extent(part, columns)


def _sum_counts(parts: list[dict]) -> dict:
    out: dict = {}
    for counts in parts:
        for pair, c in counts.items():
            out[pair] = out[pair] + c if pair in out else c
    return out


def fit_support(train_ddf: Any, columns: Any, client: Any) -> Any:
    """The training rows' support (``data.support.Support``) as the local path builds it from the whole
    training part: each column's extent reduced over the training partitions, then the pairs' cell counts
    summed over them (two passes; only the small per-partition results reach the client)."""
    import dask

    from kaayko_exp.data.support import Support, pair_counts, support_columns

    used = support_columns(train_ddf.columns, columns)
    parts = train_ddf[used].to_delayed()
    found = client.compute([dask.delayed(_rows_and_extent)(p, used) for p in parts], sync=True)
    rows = sum(n for n, _ in found)
    extents: dict[str, tuple[float, float]] = {}
    for _, ext in found:
        for c, (lo, hi) in ext.items():
            extents[c] = (min(lo, extents[c][0]), max(hi, extents[c][1])) if c in extents else (lo, hi)

    def counts_of(axes: Any) -> dict:
        return _sum_counts(client.compute([dask.delayed(pair_counts)(p, axes) for p in parts], sync=True))

    return Support.from_extent(rows, extents, counts_of)


def _matrix(part: pd.DataFrame, spec: Any, names: list[str]) -> pd.DataFrame:
    from kaayko_exp.features.spec import transform as local_transform

    return pd.DataFrame(local_transform(spec, part), columns=names, index=part.index)


def transform(ddf: Any, spec: Any) -> tuple[Any, Any]:
    """``(X, y)``: X a float32 dask DataFrame (the spec's feature names) built per partition by
    ``features.spec.transform``; y the float64 ``paddle_score`` with the same partitions and index."""
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import feature_names

    names = feature_names(spec)
    meta = pd.DataFrame({n: pd.Series(dtype=np.float32) for n in names})
    needed = [c for c in ddf.columns if c in set(spec.required_columns)]  # only these columns are read
    X = ddf[needed].map_partitions(_matrix, spec, names, meta=meta)
    y = ddf[TARGET].astype(np.float64)
    return X, y
