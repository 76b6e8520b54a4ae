"""The run's table on the workers: synthetic rows generated per partition, parquet read per piece."""

from __future__ import annotations

from typing import Any


def load_frame(cfg: Any, client: Any) -> tuple[Any, dict[str, Any]]:
    """``(ddf, info)``: see the package docstring (kaayko_exp/cluster/__init__.py)."""
    raise NotImplementedError
