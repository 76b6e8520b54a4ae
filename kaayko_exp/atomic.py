"""Atomic, durable file writes and content hashes.

Every file kaayko-exp writes goes through here: a temporary file in the target's
directory, fsync, rename over the target, fsync the directory. A kill at any
instant leaves either the old file or the new one, never a torn one. Files and
directories get the modes ``open()`` and ``mkdir()`` would give them (0666 / 0777
less the umask), not ``tempfile``'s private 0600 / 0700, so teammates and services
can read what a run writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator

_CHUNK = 1 << 20


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory entry (makes a rename durable)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it into place.

    The caller writes the temporary file by any means (a library's ``save``).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_path(target.parent, f".{target.name}.", ".tmp", directory=False)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def fresh_path(parent: Path, prefix: str, suffix: str = "", *, directory: bool) -> Path:
    """Create an empty file (or directory) with an unused name in ``parent`` and return its path.

    Like ``tempfile.mkstemp``/``mkdtemp`` (exclusive creation, random name), but with the mode
    the umask gives an ordinary file or directory.
    """
    for _ in range(100):
        candidate = Path(parent) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no unused temporary name for {prefix}*{suffix} in {parent}")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Atomically create ``path`` with ``writer(tmp_path)`` (e.g. ``booster.save_model``)."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_default(obj: Any) -> Any:
    """Serialise numpy scalars/arrays and paths in JSON documents."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")
