"""Lake / spot / time splits of a dask DataFrame from a small (lake, month) -> part table."""

from __future__ import annotations

from typing import Any


def split_frame(ddf: Any, cfg: Any) -> dict[str, Any]:
    """``{"train", "val", "test": ddf, "table": DataFrame, "description": dict}``: see the package docstring."""
    raise NotImplementedError
