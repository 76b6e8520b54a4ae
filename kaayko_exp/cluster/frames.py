"""The run's table on the workers: synthetic rows generated per partition, parquet read per piece.

Every partition is built by a worker and lands in the content-addressed dataset cache as one file of a
partitioned parquet dataset (:mod:`kaayko_exp.cluster.parts`); the dask DataFrame then reads those files, one
partition each. The client sees names, row counts and hashes, never the rows:

* ``data=synthetic``: partition ``p`` holds rows ``[p·R, (p+1)·R)`` of the addressable table (a sample: the
  same seeded positions as the local path, cut into runs of R), made by ``data.synthetic.generate_rows``, so
  its rows equal the local path's rows for the same seed and size. ``data.total_rows`` may exceed
  the complete table (e.g. 12000000): nothing on the client grows with it.
* ``data=parquet``: the files' footers (column names, row groups) are read on the workers; pieces of whole
  row groups of about R rows (several small files share one piece) are read with pyarrow, only the schema's
  columns, and checked file by file with ``data.validate.validate_frame``, the local rules and messages,
  naming the file and its row.
* ``data=kaayko_csv`` and ``data=mixed`` (directories of small CSV files): loaded as on the local path and
  split into partitions.

R is ``backend.partition_rows``. Row order: the synthetic table's (lake, time), parquet files in name order.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaayko_exp.data.sampling import cfg_get
from kaayko_exp.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _partition_rows(cfg: Any) -> int:
    from kaayko_exp.cluster.session import check_backend

    backend = cfg_get(cfg, "backend")
    check_backend(backend)
    return int(cfg_get(backend, "partition_rows", 250_000))


def _cache_dir(cfg: Any) -> Path:
    """Absolute, so the workers (another working directory, another machine) find the same files."""
    return Path(os.fspath(cfg_get(cfg, "cache_dir", "outputs/.cache"))).expanduser().resolve()


def _runs(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


# ---------------------------------------------------------------------------- synthetic
def _synthetic(cfg: Any, rows_per_part: int) -> tuple[list[tuple], dict[str, Any], dict[str, Any]]:
    from kaayko_exp.data import _sample_info, synthetic_plan, synthetic_positions

    sample_cfg, seed = cfg.sample_size, int(cfg.seed)
    describe, complete, k, fraction = synthetic_plan(cfg.data, sample_cfg, seed)
    total, lakes, noise, coverage, version = (describe[key] for key in ("total_rows", "lakes", "label_noise",
                                                                        "coverage", "generator_version"))
    params = {"seed": seed, "total_rows": total, "n_lakes": lakes, "label_noise": noise, "coverage_per_cell": coverage}
    if k == complete:  # runs of the complete table: nothing but two numbers per partition
        pieces = [("synthetic", params, (lo, hi)) for lo, hi in _runs(complete, rows_per_part)]
    else:  # the local path's seeded positions (k integers on the client, never rows), cut into runs
        positions = synthetic_positions(describe, complete)
        pieces = [("synthetic", params, positions[lo:hi]) for lo, hi in _runs(k, rows_per_part)]
    info = {"source": "synthetic", "path": None, "source_rows": complete, "seed": seed,
            "sample": _sample_info(sample_cfg, fraction, k), "generator_version": version, "label_noise": noise,
            "coverage": coverage, "global_share": describe.get("global_share")}
    return pieces, describe, info


def _generate(params: dict[str, Any], rows: Any) -> pd.DataFrame:
    from kaayko_exp.data.synthetic import generate_rows

    index = np.arange(*rows, dtype=np.int64) if isinstance(rows, tuple) else rows
    return generate_rows(index, **params)


# ---------------------------------------------------------------------------- parquet
def _footer(path: str) -> tuple[list[str], list[int]]:
    """(column names, rows of each row group) of one parquet file; its column check as on the local path."""
    import pyarrow.parquet as pq

    from kaayko_exp.data.validate import check_table_columns, validate_frame

    try:
        meta = pq.ParquetFile(path).metadata
        names = list(meta.schema.to_arrow_schema().names)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"{path} cannot be read as PARQUET ({type(exc).__name__}: {exc}). "
                        "Check that the file is complete and really is that format.") from None
    names = [n for n in names if n != "__index_level_0__"]  # a pandas index written with the frame
    if meta.num_rows == 0:
        validate_frame(pd.DataFrame(columns=names), path)  # names the columns, else "a header but no data rows"
    check_table_columns(names, path)
    return names, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _parquet_pieces(files: list[str], groups: list[list[int]], rows_per_part: int) -> list[list[tuple]]:
    """Whole row groups, in file order, gathered into pieces of about ``rows_per_part`` rows; each piece is a
    list of ``(file, row group indices, first row in the file, first row in the table, rows)``."""
    pieces: list[list[tuple]] = []
    current: list[tuple] = []
    size = table_row = 0
    for path, sizes in zip(files, groups):
        file_row, chosen, at_file, at_table = 0, [], 0, 0
        for g, n in enumerate(sizes):
            if not chosen:
                at_file, at_table = file_row, table_row
            chosen.append(g)
            file_row, table_row, size = file_row + n, table_row + n, size + n
            if size >= rows_per_part:
                current.append((path, chosen, at_file, at_table, table_row - at_table))
                pieces.append(current)
                current, chosen, size = [], [], 0
        if chosen:
            current.append((path, chosen, at_file, at_table, table_row - at_table))
    if current:
        pieces.append(current)
    return pieces


def _read_piece(piece: list[tuple], keep: Any = None) -> pd.DataFrame:
    """The validated rows of one piece (``keep``: positions within the piece, for a sample)."""
    import pyarrow.parquet as pq

    from kaayko_exp.data.schema import COLUMNS
    from kaayko_exp.data.sources import _concat
    from kaayko_exp.data.validate import validate_frame

    frames = []
    for path, row_groups, first_row, _, _ in piece:
        try:
            table = pq.ParquetFile(path).read_row_groups(row_groups, columns=list(COLUMNS))
        except Exception as exc:
            raise DataError(f"{path} cannot be read as PARQUET ({type(exc).__name__}: {exc}). "
                            "Check that the file is complete.") from None
        frames.append(validate_frame(table.to_pandas(), path, first_row=first_row))
    frame = _concat(frames)
    if keep is not None:
        frame = frame.iloc[keep].reset_index(drop=True)
    return frame


def _parquet(cfg: Any, client: Any, rows_per_part: int) -> tuple[list[tuple], dict[str, Any], dict[str, Any]]:
    from kaayko_exp.data import _loader_digest, _sample_info
    from kaayko_exp.data.sampling import resolve_rows, sample_positions
    from kaayko_exp.data.sources import fingerprint

    path = cfg_get(cfg.data, "path")
    if path in (None, "", "???"):
        raise ConfigError("data=parquet needs data.path: the parquet file, directory or glob to load. Add it to "
                          "the command line, e.g. data=parquet data.path='data/*.parquet'.")
    path = os.fspath(path)
    fp, files = fingerprint(path)
    csv = [str(f) for f in files if f.suffix.lower() == ".csv"]
    if csv:
        raise DataError(
            f"backend=dask reads parquet files, and data.path={path} holds {len(csv)} CSV file(s) (e.g. {csv[0]}). "
            "Convert them to parquet, point data.path at the parquet files only, or use backend=local."
        )
    names = [os.path.abspath(f) for f in files]  # the workers may run in another directory
    footers = client.gather(client.map(_footer, names, pure=False))
    groups = [g for _, g in footers]
    n = int(sum(sum(g) for g in groups))
    source = f"{path} ({len(files)} file(s))"
    if n == 0:
        raise DataError(f"{source} holds no rows. Point data.path at files with hourly Kaayko rows.")
    k, fraction = resolve_rows(cfg.sample_size, n, source=source)
    resolved = path if any(ch in path for ch in "*?[") else str(Path(path).expanduser().resolve())
    describe = {"source": "parquet", "path": resolved, "fingerprint": fp, "loader": _loader_digest()}
    layout = _parquet_pieces(names, groups, rows_per_part)
    if k == n:
        pieces = [("parquet", piece, None) for piece in layout]
    else:
        describe.update({"rows": k, "seed": int(cfg.seed)})
        positions = sample_positions(n, k, int(cfg.seed))
        pieces = []
        for piece in layout:
            lo, hi = piece[0][3], piece[-1][3] + piece[-1][4]
            keep = positions[np.searchsorted(positions, lo):np.searchsorted(positions, hi)] - lo
            if len(keep):
                pieces.append(("parquet", piece, keep))
    info = {"source": "parquet", "path": path, "source_rows": n, "fingerprint": fp, "seed": int(cfg.seed),
            "sample": _sample_info(cfg.sample_size, fraction, k), "generator_version": None, "files": len(files)}
    return pieces, describe, info


# ---------------------------------------------------------------------------- the partitions
def build_piece(piece: tuple) -> pd.DataFrame:
    """The rows of one partition, on a worker (a piece as :func:`load_frame` plans it)."""
    kind, what, rows = piece
    if kind == "synthetic":
        return _generate(what, rows)
    return _read_piece(what, rows)


def _local(cfg: Any, rows_per_part: int) -> tuple[Any, dict[str, Any]]:
    """kaayko_csv and mixed: small directories of CSV files, loaded as on the local path."""
    import dask.dataframe as dd

    from kaayko_exp.data import load_dataset

    frame, info = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg_get(cfg, "cache_dir"))
    ddf = dd.from_pandas(frame, chunksize=rows_per_part, sort=True)
    sizes = [hi - lo for lo, hi in zip(ddf.divisions[:-1], (*ddf.divisions[1:-1], len(frame)))]
    info = {**info, "partitions": {"count": ddf.npartitions, "rows": sizes},
            "content_sha256": (info.get("cache") or {}).get("sha256")}
    return ddf, info


def load_frame(cfg: Any, client: Any) -> tuple[Any, dict[str, Any]]:
    """``(ddf, info)``: the validated table as a dask DataFrame whose partitions live on the workers; see the
    package docstring (kaayko_exp/cluster/__init__.py) for both."""
    from kaayko_exp.cluster import parts
    from kaayko_exp.data import SOURCES, cache

    source = str(cfg_get(cfg.data, "source", "synthetic"))
    if source not in SOURCES:
        raise ConfigError(f"data.source={source!r} is not known; choose one of {', '.join(SOURCES)}.")
    rows_per_part = _partition_rows(cfg)
    if source in ("kaayko_csv", "mixed"):
        ddf, info = _local(cfg, rows_per_part)
    else:
        if source == "synthetic":
            pieces, describe, info = _synthetic(cfg, rows_per_part)
        else:
            pieces, describe, info = _parquet(cfg, client, rows_per_part)
        key = cache.content_key({**describe, "layout": "parts", "partition_rows": rows_per_part})
        entry = parts.get_or_build(client, _cache_dir(cfg), key, pieces, build_piece, describe)
        ddf = parts.read_frame(entry)
        info = {**info, "rows": entry["rows"], "cache": entry["cache"], "content_sha256": entry["sha256"],
                "partitions": {"count": len(entry["parts"]), "rows": [p["rows"] for p in entry["parts"]]}}
    log.info("dataset: %s, %s of %s rows in %d partitions on the cluster", source, f"{info['rows']:,}",
             f"{info['source_rows']:,}", info["partitions"]["count"])
    return ddf, info
