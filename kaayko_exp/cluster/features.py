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
