"""Tidy up after a start that a user mistake stopped before it produced anything.

Hydra creates the run directory, ``.hydra/`` and ``train.log`` before the task
runs, so a config error found afterwards, or a data error in the first stages,
would leave a directory that ``runs list`` shows as damaged or as a ``failed``
run whose resume can only fail again (its config is frozen). :func:`tidy` removes
exactly the files such a start is known to have written — never anything else, and
never for a resume — and the directory itself when it is then empty.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.runs.rundir import MANIFEST

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
# Stages whose products are rebuilt from the config in seconds: a run that failed in them has nothing to keep.
CHEAP_STAGES = ("dataset", "features", "split")


def _log_handlers(out_dir: Path) -> dict[Path, logging.FileHandler]:
    """The job's log files directly inside ``out_dir`` (Hydra's file handlers, e.g. train.log)."""
    found = {}
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            path = Path(handler.baseFilename).resolve()
            if path.parent == out_dir:
                found[path] = handler
    return found


def _nothing_to_keep(manifest: dict[str, Any]) -> Optional[list[str]]:
    """Run-relative artifact paths of a failed run that stopped in a cheap stage, or None to keep it."""
    if manifest.get("status") != "failed" or manifest.get("checkpoints"):
        return None
    stages = manifest.get("stages") or {}
    paths = []
    for name, stage in stages.items():
        if name not in CHEAP_STAGES and (stage.get("status") != "pending" or stage.get("artifacts")):
            return None
        paths += [str(a.get("path")) for a in stage.get("artifacts") or []]
    return paths


def _remove(paths: list[Path], out_dir: Path, handlers: dict[Path, logging.FileHandler]) -> None:
    for handler in handlers.values():
        handler.close()
        logging.getLogger().removeHandler(handler)
    for p in paths:
        p.unlink(missing_ok=True)
    dirs = sorted({p.parent for p in paths if p.parent != out_dir}, key=lambda d: len(d.parts), reverse=True)
    # then the run directory and the parents Hydra made for it (outputs/<date>) while they are empty, up to the
    # working directory: a refused start leaves not even an empty folder
    cwd = Path.cwd().resolve()
    parents = [d for d in out_dir.parents if cwd in d.parents]
    for d in [*dirs, out_dir, *parents]:
        try:
            d.rmdir()  # only when empty
        except OSError:
            if d in parents:
                break


def tidy(out_dir: Path, hydra_subdir: Optional[str]) -> Optional[str]:
    """Remove what a failed fresh start wrote in ``out_dir``; return a note for the user, or None.

    ``hydra_subdir`` is Hydra's ``output_subdir`` for this start (None: Hydra wrote no
    config files, as on a resume, so nothing here is known to be new).
    """
    out_dir = Path(out_dir).resolve()
    if hydra_subdir is None or out_dir == Path.cwd().resolve() or not out_dir.is_dir():
        return None
    handlers = _log_handlers(out_dir)
    ours = [*handlers, *(out_dir / hydra_subdir / name for name in HYDRA_FILES)]
    manifest_path = out_dir / MANIFEST
    if not manifest_path.exists():  # stopped before the run existed: only Hydra's files are here
        _remove([p for p in ours if p.exists()], out_dir, handlers)
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    artifacts = _nothing_to_keep(manifest)
    if artifacts is None:
        return None
    known = {p.resolve() for p in [*ours, manifest_path, *(out_dir / a for a in artifacts)]}
    present = [p for p in out_dir.rglob("*") if p.is_file() or p.is_symlink()]
    strays = [p for p in present if p.resolve() not in known and not (p.parent == out_dir and p.suffix == ".lock")]
    if strays:
        return None
    _remove(present, out_dir, handlers)
    return f"The run directory {out_dir} held no results, so it was removed."
