"""Real Kaayko data on disk: directories of ``<Lake>/<YYYY-MM>.csv``, CSV and parquet files, globs.

``read_table`` loads and validates a whole table (sorted by lake, datetime);
``iter_table_batches`` streams a large input in bounded memory; ``fingerprint``
identifies the input's content cheaply for the dataset cache.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from kaayko_exp.data.validate import validate_frame
from kaayko_exp.errors import DataError

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
_HASH_CONTENT_BELOW = 4 << 20  # files smaller than this are fingerprinted by content


def _kind(path: Path, key: str = "data.path") -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataError(
        f"{path} is neither a .csv nor a .parquet file. Point {key} at a directory of "
        "<Lake>/<YYYY-MM>.csv files, a .csv file, a .parquet file or a glob such as 'data/*.parquet'."
    )


def list_files(path: str | os.PathLike, key: str = "data.path") -> list[Path]:
    """The table files behind ``path`` (directory, file or glob), sorted; raises DataError if none.

    ``key`` names the setting the path came from in messages (``data.path`` for training, ``input`` for
    ``predict.py``)."""
    text = os.fspath(path)
    p = Path(text).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TABLE_SUFFIXES
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not files:
            raise DataError(
                f"The directory {p} contains no .csv or .parquet files. The Kaayko collector writes "
                f"<dir>/<Lake>/<YYYY-MM>.csv; point {key} at that directory."
            )
        return files
    if p.is_file():
        _kind(p, key)
        return [p]
    if glob.has_magic(text):
        files = sorted(Path(f) for f in glob.glob(os.path.expanduser(text), recursive=True) if Path(f).is_file())
        if not files:
            raise DataError(
                f"The pattern {text!r} matches no files. Check the path and quote the glob so the shell "
                f"does not expand it ({key}='data/*.parquet')."
            )
        for f in files:
            _kind(f, key)
        return files
    raise DataError(
        f"The data path {text!r} does not exist (resolved to {p.resolve()}). Check the spelling; relative "
        f"paths are relative to the directory you started from, e.g. {key}=../shared/data/kaayko_sample."
    )


def _read_file(path: Path, *, require_target: bool) -> pd.DataFrame:
    kind = _kind(path)
    try:
        if kind == "csv":
            raw = pd.read_csv(path, dtype={"lake": "str", "datetime": "str"}, low_memory=False)
        else:
            raw = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty. Remove it or replace it with a file holding the Kaayko columns.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read as {kind.upper()} ({type(exc).__name__}: {exc}). "
                        "Check that the file is complete and really is that format.") from None
    return validate_frame(raw, str(path), require_target=require_target)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate validated frames; categorical columns get the union of their categories."""
    if len(frames) == 1:
        return frames[0]
    cat_cols = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    union = {c: sorted(set().union(*(f[c].cat.categories for f in frames))) for c in cat_cols}
    aligned = [f.astype({c: pd.CategoricalDtype(union[c]) for c in cat_cols}) for f in frames]
    return pd.concat(aligned, ignore_index=True)


def read_table(path: str | os.PathLike, *, require_target: bool = True) -> pd.DataFrame:
    """Load and validate the table at ``path`` (directory of Kaayko CSVs, .csv, .parquet or glob).

    Returns the schema columns with schema dtypes, sorted by lake then datetime, index
    0..n-1. Raises :class:`DataError` with one explanatory paragraph on any problem.
    """
    files = list_files(path)
    logger.info("reading %d file(s) from %s", len(files), path)
    frames = [_read_file(f, require_target=require_target) for f in files]
    table = _concat(frames)
    table = table.sort_values(["lake", "datetime"], kind="stable").reset_index(drop=True)
    logger.info("read %d rows, %d lakes from %s", len(table), table["lake"].nunique(), path)
    return table


def iter_table_batches(path: str | os.PathLike, batch_size: int, columns: Iterable[str] | None = None,
                       key: str = "data.path") -> Iterator[pd.DataFrame]:
    """Stream the table at ``path`` in validated batches of at most ``batch_size`` rows.

    ``columns``: read (and check) only these columns where the file has them; others are
    never read, so a gap in a column the caller does not use is no error. ``key``: as in :func:`list_files`.

    Parquet files are read with ``ParquetFile.iter_batches``, CSV files in chunks, a
    directory file by file; the target is not required (prediction inputs). Memory
    stays bounded by the batch size, whatever the input size.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    wanted = None if columns is None else set(columns)
    for f in list_files(path, key):
        kind = _kind(f, key)
        if kind == "parquet":
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(f)
            except Exception as exc:  # pyarrow raises several types for damaged files
                raise DataError(f"{f} cannot be read as PARQUET ({type(exc).__name__}: {exc}). "
                                "Check that the file is complete.") from None
            start = 0
            names = None if wanted is None else [c for c in pf.schema_arrow.names if c in wanted]
            for batch in pf.iter_batches(batch_size=batch_size, columns=names):
                chunk = batch.to_pandas()
                yield validate_frame(chunk, f"{f} (rows {start + 1}-{start + len(chunk)})", require_target=False)
                start += len(chunk)
        else:
            try:
                reader = pd.read_csv(f, dtype={"lake": "str", "datetime": "str"}, chunksize=batch_size,
                                     usecols=None if wanted is None else wanted.__contains__)
                start = 0
                for chunk in reader:
                    yield validate_frame(chunk, f"{f} (rows {start + 1}-{start + len(chunk)})", require_target=False)
                    start += len(chunk)
            except pd.errors.EmptyDataError:
                raise DataError(f"{f} is empty. Remove it or replace it with a file holding the Kaayko columns.") from None


def fingerprint(path: str | os.PathLike) -> tuple[str, list[Path]]:
    """Content fingerprint of the input: sha256 over names + sizes + (content hash or mtime)."""
    files = list_files(path)
    root = Path(os.fspath(path)).expanduser()
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        try:
            name = str(f.relative_to(root)) if root.is_dir() else f.name
        except ValueError:
            name = f.name
        if st.st_size < _HASH_CONTENT_BELOW:
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
        else:
            digest = f"mtime={st.st_mtime_ns}"
        h.update(f"{name}\0{st.st_size}\0{digest}\n".encode())
    return h.hexdigest(), files
