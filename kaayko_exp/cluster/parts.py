"""The dataset cache as a partitioned parquet dataset, built and verified by the workers.

An entry is ``<cache_dir>/datasets/<key>.parts/part-NNNNN.parquet`` (one file per partition) plus
``<key>.parts.json``, written last, recording each file's rows, bytes and sha256 and the entry's content
hash (sha256 over the parts' hashes). As with the local cache (:mod:`kaayko_exp.data.cache`, whose key,
lock and atomic writes this reuses): a hit is verified first (the workers re-hash their files), a damaged or
incomplete entry is logged and rebuilt, never trusted, and builders of one key serialise on its lock.
The cache directory must be one the workers see at the same path (a shared filesystem on a remote cluster).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from kaayko_exp import atomic

log = logging.getLogger(__name__)


def entry_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    base = Path(cache_dir) / "datasets"
    return base / f"{key}.parts", base / f"{key}.parts.json"


def _write_part(piece: Any, build: Callable[[Any], pd.DataFrame], path: str) -> dict[str, Any]:
    """On a worker: build one partition and write it atomically; its rows, bytes and sha256."""
    frame = build(piece)
    atomic.write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return {"file": Path(path).name, "rows": int(len(frame)), "bytes": Path(path).stat().st_size,
            "sha256": atomic.sha256_file(path)}


def _content_hash(parts: list[dict[str, Any]]) -> str:
    return hashlib.sha256("\n".join(p["sha256"] for p in parts).encode()).hexdigest()


def _verify(client: Any, directory: Path, meta_path: Path) -> dict[str, Any] | None:
    """The recorded entry when every part still hashes to its record; None when absent; ValueError if damaged."""
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    parts = meta["parts"]
    paths = [str(directory / p["file"]) for p in parts]
    digests = client.gather(client.map(_hash_or_none, paths, pure=False))
    bad = [p["file"] for p, d in zip(parts, digests) if d != p["sha256"]]
    if bad:
        raise ValueError(f"{len(bad)} part file(s) missing or changed, e.g. {bad[0]}")
    if _content_hash(parts) != meta.get("sha256"):
        raise ValueError("the recorded content hash does not match the parts")
    return meta


def _hash_or_none(path: str) -> str | None:
    try:
        return atomic.sha256_file(path)
    except OSError:
        return None


def get_or_build(client: Any, cache_dir: Path, key: str, pieces: list[Any], build: Callable[[Any], pd.DataFrame],
                 describe: dict[str, Any]) -> dict[str, Any]:
    """The verified entry for ``key``, built on the workers from ``pieces`` (``build(piece)`` -> one partition's
    frame) when absent or damaged. Returns the entry's record plus ``dir`` and ``cache`` ({key, path, sha256,
    hit}), as the local cache's info."""
    from distributed import as_completed

    from kaayko_exp.data.cache import entry_lock

    directory, meta_path = entry_paths(cache_dir, key)
    with entry_lock(directory.with_name(f"{key}.lock")):  # the lock `runs clear-cache` takes too
        try:
            meta = _verify(client, directory, meta_path)
        except Exception as exc:  # a damaged entry of any kind: never trusted
            log.warning("dataset cache entry %s is damaged (%s); rebuilding it", directory, exc)
            meta = None
        hit = meta is not None
        if meta is None:
            started = time.perf_counter()
            log.info("building dataset on the cluster: %d partitions (cache key %s)", len(pieces), key)
            directory.mkdir(parents=True, exist_ok=True)
            names = [str(directory / f"part-{i:05d}.parquet") for i in range(len(pieces))]
            futures = client.map(_write_part, pieces, [build] * len(pieces), names, pure=False)
            order = {f.key: i for i, f in enumerate(futures)}
            parts: list[Any] = [None] * len(pieces)
            step = max(1, len(pieces) // 10)
            try:
                for done, future in enumerate(as_completed(futures, loop=client.loop), 1):
                    parts[order[future.key]] = future.result()
                    if done % step == 0 or done == len(pieces):
                        log.info("dataset: %d / %d partitions written", done, len(pieces))
            finally:
                for future in futures:
                    future.cancel()
            meta = {"sha256": _content_hash(parts), "rows": sum(p["rows"] for p in parts), "parts": parts,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "describe": describe}
            atomic.write_json(meta_path, meta)
            log.info("dataset built in %.1f s and cached at %s", time.perf_counter() - started, directory)
        else:
            log.info("dataset read from cache %s (%d rows, %d partitions)", directory, meta["rows"],
                     len(meta["parts"]))
    return {**meta, "dir": str(directory),
            "cache": {"key": key, "path": str(directory), "sha256": meta["sha256"], "hit": hit}}


def read_part(part: tuple[str, int], columns: list[str] | None = None) -> pd.DataFrame:
    """One cached partition (``(path, first row)``) with the schema dtypes and the rows' table positions as the
    index; only ``columns`` are read (dask projects a selection such as ``ddf[["lake", "datetime"]]`` into this
    keyword, so a stage reads the columns it uses)."""
    import pyarrow.parquet as pq

    from kaayko_exp.data.schema import COLUMNS, DTYPES

    path, start = part
    columns = list(COLUMNS) if columns is None else list(columns)
    frame = pq.read_table(path, columns=columns).to_pandas()
    wrong = {c: DTYPES[c] for c in columns if str(frame[c].dtype) != DTYPES[c]}
    frame = frame.astype(wrong) if wrong else frame
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def empty_frame() -> pd.DataFrame:
    """The schema as dask's ``meta``: no rows, the schema dtypes, categories unknown."""
    from dask.dataframe.utils import clear_known_categories

    from kaayko_exp.data.schema import COLUMNS, DTYPES

    return clear_known_categories(pd.DataFrame({c: pd.Series(dtype=DTYPES[c]) for c in COLUMNS}))


def read_frame(entry: dict[str, Any]) -> Any:
    """The entry as a dask DataFrame: one partition per part file, index = position in the table (so the
    divisions, and with them every partition's rows, are known)."""
    import dask.dataframe as dd

    starts, total = [], 0
    for p in entry["parts"]:
        starts.append(total)
        total += p["rows"]
    paths = [str(Path(entry["dir"]) / p["file"]) for p in entry["parts"]]
    divisions = (*starts, total - 1)
    return dd.from_map(read_part, list(zip(paths, starts)), meta=empty_frame(), divisions=divisions,
                       enforce_metadata=False, label="kaayko-dataset")
