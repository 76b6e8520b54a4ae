"""A verified, content-addressed dataset cache (parquet + sha256 sidecar).

An entry is ``<cache_dir>/datasets/<key>.parquet`` plus ``<key>.json`` recording its
sha256, size and rows. A hit re-hashes the parquet and compares; a mismatch or an
unreadable file is logged as a warning and the entry rebuilt. Builders of the same
key serialise on an ``fcntl`` lock file, and every file is written to a temporary
name and renamed into place (:mod:`kaayko_exp.atomic`), so concurrent runs never see
or produce a torn entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from kaayko_exp import atomic
from kaayko_exp.data.schema import COLUMNS, DTYPES

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


def content_key(parts: dict[str, Any]) -> str:
    """Stable key of a JSON-serialisable description of a dataset."""
    text = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextlib.contextmanager
def entry_lock(lock_path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the ``fcntl`` lock of one cache entry; yields True while held.

    With ``wait=False`` it yields False at once (holding nothing) when another process
    holds it. ``clear-cache`` deletes a lock file while holding it; a process that opened
    the old file meanwhile notices (the path no longer names the file it locked) and
    locks the new one instead, so two holders never coexist.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: atomic renames still protect entries
        yield True
        return
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _conform(df: pd.DataFrame) -> pd.DataFrame:
    """Schema dtypes after a parquet round trip (index reset, columns in order)."""
    df = df[list(COLUMNS)].reset_index(drop=True)
    wrong = {c: DTYPES[c] for c in COLUMNS if str(df[c].dtype) != DTYPES[c]}
    return df.astype(wrong) if wrong else df


def entry_paths(cache_dir: str | os.PathLike, key: str) -> tuple[Path, Path]:
    base = Path(cache_dir) / "datasets"
    return base / f"{key}.parquet", base / f"{key}.json"


def _read_entry(data_path: Path, meta_path: Path) -> tuple[pd.DataFrame, str] | None:
    """The verified entry, or None when absent; raises ValueError when damaged."""
    if not data_path.exists() or not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    digest = atomic.sha256_file(data_path)
    if digest != meta.get("sha256"):
        raise ValueError(f"sha256 {digest[:12]}… does not match the recorded {str(meta.get('sha256'))[:12]}…")
    import pyarrow.parquet as pq

    # arrow's buffers are released column by column as pandas takes them over: the peak is ~one copy of the table
    df = pq.read_table(data_path).to_pandas(self_destruct=True, split_blocks=True)
    if len(df) != meta.get("rows"):
        raise ValueError(f"{len(df)} rows, recorded {meta.get('rows')}")
    return _conform(df), digest


def get_or_build(cache_dir: str | os.PathLike, key: str, build: Callable[[], pd.DataFrame],
                 describe: dict[str, Any] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset for ``key``: read and verified from the cache, or built and stored.

    Returns ``(frame, info)`` with info ``{"key", "path", "sha256", "hit"}``.
    """
    data_path, meta_path = entry_paths(cache_dir, key)
    with entry_lock(data_path.with_suffix(".lock")):
        try:
            found = _read_entry(data_path, meta_path)
        except Exception as exc:  # damaged entry of any kind: never trusted
            logger.warning("dataset cache entry %s is damaged (%s); rebuilding it", data_path, exc)
            found = None
        if found is not None:
            df, digest = found
            logger.info("dataset read from cache %s (%d rows)", data_path, len(df))
            return df, {"key": key, "path": str(data_path), "sha256": digest, "hit": True}
        logger.info("building dataset (cache key %s)", key)
        started = time.perf_counter()
        df = build()
        atomic.write_with(data_path, lambda tmp: df.to_parquet(tmp, index=False))
        digest = atomic.sha256_file(data_path)
        atomic.write_json(meta_path, {
            "sha256": digest, "bytes": data_path.stat().st_size, "rows": len(df),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "describe": describe or {},
        })
        logger.info("dataset built in %.1f s and cached at %s", time.perf_counter() - started, data_path)
        return df, {"key": key, "path": str(data_path), "sha256": digest, "hit": False}
