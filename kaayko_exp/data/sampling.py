"""Sample sizes: turn a ``sample_size`` config into a row count and pick seeded rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from kaayko_exp.errors import ConfigError


def cfg_get(cfg: Any, name: str, default: Any = None) -> Any:
    """Attribute of a dataclass or DictConfig; a missing (``???``) value reads as ``default``."""
    if cfg is None:
        return default
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            if name not in cfg or OmegaConf.is_missing(cfg, name):
                return default
            return cfg[name]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return getattr(cfg, name, default)


def resolve_rows(sample_cfg: Any, source_rows: int, *, source: str = "the source") -> tuple[int, float]:
    """Rows to draw and the effective fraction: ``rows`` wins over ``fraction``.

    Raises :class:`ConfigError` for a fraction outside (0, 1], rows ≤ 0, neither set,
    or more rows than the source has.
    """
    name = cfg_get(sample_cfg, "name", "custom")
    rows = cfg_get(sample_cfg, "rows")
    fraction = cfg_get(sample_cfg, "fraction")
    if rows is not None:
        if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows <= 0:
            raise ConfigError(
                f"sample_size.rows={rows!r} is not a positive whole number. "
                "Use e.g. sample_size.rows=5000, or pick a preset such as sample_size=small."
            )
        if rows > source_rows:
            raise ConfigError(
                f"sample_size asks for {rows:,} rows (sample_size={name}) but {source} has only "
                f"{source_rows:,} rows. Use sample_size=complete, a smaller sample_size.rows, or a bigger source."
            )
        return int(rows), int(rows) / source_rows
    if fraction is None:
        raise ConfigError(
            f"sample_size={name} sets neither 'fraction' nor 'rows'. Set one, e.g. "
            "sample_size.fraction=0.02 or sample_size.rows=5000 (or use a preset: tiny, small, medium, large, complete)."
        )
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ConfigError(f"sample_size.fraction={fraction!r} is not a number; use a value in (0, 1].") from None
    if not (0.0 < fraction <= 1.0):
        raise ConfigError(
            f"sample_size.fraction={fraction!r} is outside (0, 1]. It is the share of the source to use: "
            "0.002 is 0.2 %, 1.0 is the complete table; for an exact count use sample_size.rows=N."
        )
    k = max(1, int(round(fraction * source_rows)))
    return min(k, source_rows), fraction


def sample_positions(source_rows: int, k: int, seed: int, *, stream: int = 0) -> np.ndarray:
    """``k`` distinct row positions out of ``source_rows``, seeded and sorted (O(k) for small k); ``stream``
    (> 0) draws independently of stream 0 for the same seed."""
    if k >= source_rows:
        return np.arange(source_rows, dtype=np.int64)
    gen = np.random.default_rng([int(seed), 0x5A3B1E] + ([int(stream)] if stream else []))
    picked = gen.choice(source_rows, size=k, replace=False, shuffle=False)
    return np.sort(np.asarray(picked, dtype=np.int64))


def stratified_positions(source_rows: int, k: int, seed: int, tail_rows: int, tail_share: float | None) -> np.ndarray:
    """``k`` positions of which ``tail_share`` × k (as many as there are, at most) lie in the last ``tail_rows``
    rows and the rest before them, each part a seeded uniform draw; ``tail_share`` None: one uniform draw over
    all rows (:func:`sample_positions`). The synthetic table's tail is its global coverage component."""
    if tail_share is None or k >= source_rows or tail_rows <= 0:
        return sample_positions(source_rows, k, seed)
    head_rows = source_rows - tail_rows
    in_tail = min(tail_rows, max(int(round(float(tail_share) * k)), k - head_rows))
    head = sample_positions(head_rows, k - in_tail, seed)
    tail = head_rows + sample_positions(tail_rows, in_tail, seed, stream=1)
    return np.concatenate([head, tail])
