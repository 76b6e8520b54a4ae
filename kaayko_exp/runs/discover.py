"""Finding run directories, reading their manifests, ages and sizes."""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from kaayko_exp.errors import RunDirError
from kaayko_exp.runs.rundir import MANIFEST

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """Seconds in an age such as ``7d``, ``12h``, ``30m`` (also ``45s``, ``2w``)."""
    match = _AGE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not an age; write a number and a unit: 7d, 12h, 30m (s, m, h, d, w)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def is_run_dir(path: Path) -> bool:
    """A directory that holds a manifest, or Hydra's ``.hydra/`` (a run that may have died early)."""
    return (path / MANIFEST).exists() or (path / ".hydra").is_dir()


def find_runs(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories at or below ``roots`` (sweeps included), sorted by path (:func:`natural_key`: trial
    ``2`` before ``10``).

    Directories whose name starts with a dot (``outputs/.cache``) are not searched,
    nor is anything inside a run directory.
    """
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise RunDirError(
                f"{root} is not a directory. Pass a run directory or a folder of runs (default: outputs/)."
            )
        if is_run_dir(root):
            found.add(root)
            continue
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if here != root and is_run_dir(here):
                found.add(here)
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found, key=natural_key)


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key of a path that orders numbered folders by number: ``.../2`` before ``.../10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in Path(path).parts)


def parse_time(text: Any) -> Optional[_dt.datetime]:
    try:
        value = _dt.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def finished_at(manifest: dict[str, Any]) -> Optional[_dt.datetime]:
    """When a completed run completed (its last ``completed`` event), else its last update."""
    if manifest.get("status") == "completed":
        for ev in reversed(manifest.get("events") or []):
            if ev.get("event") == "completed":
                return parse_time(ev.get("time"))
    return parse_time(manifest.get("updated"))


def age_seconds(manifest: dict[str, Any], now: Optional[_dt.datetime] = None) -> Optional[float]:
    when = finished_at(manifest)
    if when is None:
        return None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return max(0.0, (now - when).total_seconds())


def format_age(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file below a directory."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
