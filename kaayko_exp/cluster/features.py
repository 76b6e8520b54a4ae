"""The FeatureSpec fitted on training partitions and applied per partition with the local code."""

from __future__ import annotations

from typing import Any


def fit_spec(train_ddf: Any, cfg: Any) -> Any:
    """The FeatureSpec of ``cfg.features`` with category levels from ``train_ddf``'s rows."""
    raise NotImplementedError


def transform(ddf: Any, spec: Any) -> tuple[Any, Any]:
    """``(X, y)`` per partition with ``kaayko_exp.features.spec.transform``: see the package docstring."""
    raise NotImplementedError
