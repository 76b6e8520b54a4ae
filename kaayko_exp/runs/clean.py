"""Deleting what finished runs no longer need, and the dataset cache.

``clean`` removes the partial checkpoints of completed runs older than an age,
leaving the newest ``keep_last`` completed runs untouched; final models, reports
and plots stay unless ``models=True``, which deletes such runs' whole directories.
``clear_cache`` empties the dataset cache (``outputs/.cache``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from kaayko_exp.errors import KaaykoError, RunDirError
from kaayko_exp.runs.discover import (
    age_seconds,
    find_runs,
    finished_at,
    format_age,
    format_bytes,
    tree_bytes,
)
from kaayko_exp.runs.rundir import CHECKPOINT_DIR, MANIFEST, RunDir


@dataclass
class CleanResult:
    deleted: list[tuple[Path, int]] = field(default_factory=list)  # (path, bytes)
    kept: list[Path] = field(default_factory=list)  # completed runs kept by keep_last
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (run, why)

    @property
    def freed(self) -> int:
        return sum(b for _, b in self.deleted)


def clean_runs(roots: Iterable[Path], *, older_than: float, keep_last: int, dry_run: bool = False,
               models: bool = False, echo: Callable[[str], None] = print) -> CleanResult:
    """Delete partial checkpoints (or, with ``models``, whole run directories) of old completed runs."""
    result = CleanResult()
    completed: list[RunDir] = []
    for path in find_runs(roots):
        try:
            run = RunDir.open(path)
        except KaaykoError:
            result.skipped.append((path, "damaged (see `runs list`)"))
            continue
        if run.manifest.get("status") == "completed":
            completed.append(run)
        else:
            result.skipped.append((path, f"status {run.manifest.get('status')}: only completed runs are cleaned"))
    completed.sort(key=lambda r: (finished_at(r.manifest).timestamp() if finished_at(r.manifest) else 0.0),
                   reverse=True)
    verb = "would delete" if dry_run else "delete"
    for i, run in enumerate(completed):
        age = age_seconds(run.manifest)
        if i < keep_last:
            result.kept.append(run.path)
            continue
        if age is None or age < older_than:
            result.skipped.append((run.path, f"finished {format_age(age)} ago"))
            continue
        if models:
            size = tree_bytes(run.path)
            echo(f"{verb} {run.path}/ (whole run: model, report, plots, checkpoints; {format_bytes(size)})")
            result.deleted.append((run.path, size))
            if not dry_run:
                shutil.rmtree(run.path)
            continue
        for target in _checkpoint_paths(run):
            size = tree_bytes(target)
            echo(f"{verb} {target} ({format_bytes(size)})")
            result.deleted.append((target, size))
        if not dry_run and (run.manifest["checkpoints"] or (run.path / CHECKPOINT_DIR).exists()):
            gone = run.drop_checkpoints("")
            shutil.rmtree(run.path / CHECKPOINT_DIR, ignore_errors=True)
            run.event("clean", deleted=gone or [CHECKPOINT_DIR])
    total = format_bytes(result.freed)
    echo(f"{'would free' if dry_run else 'freed'} {total} in {len(result.deleted)} item(s); "
         f"kept the newest {len(result.kept)} completed run(s) untouched"
         + (" (dry run: nothing was deleted)" if dry_run else ""))
    return result


def _checkpoint_paths(run: RunDir) -> list[Path]:
    """Checkpoint directories recorded in the manifest, plus leftovers (e.g. temp dirs from a kill)."""
    recorded = [run.path / c["path"] for c in run.manifest["checkpoints"]]
    base = run.path / CHECKPOINT_DIR
    extra: list[Path] = []
    if base.is_dir():
        inside = {p.resolve() for p in recorded}
        for key_dir in sorted(base.iterdir()):
            children = sorted(key_dir.iterdir()) if key_dir.is_dir() else [key_dir]
            extra += [c for c in children if c.resolve() not in inside]
    return sorted({p for p in recorded + extra if p.exists()})


def clear_cache(cache_dir: Path, *, dry_run: bool = False, echo: Callable[[str], None] = print) -> int:
    """Delete every entry in the dataset cache; return the bytes freed (or that would be)."""
    cache_dir = Path(cache_dir)
    if not cache_dir.exists():
        echo(f"{cache_dir}: no cache there; nothing to delete.")
        return 0
    if not cache_dir.is_dir():
        raise RunDirError(f"--cache-dir {cache_dir} is a file, not a cache directory. Pass the cache folder "
                          "(default outputs/.cache, or the cache_dir= your runs used).")
    entries = sorted(cache_dir.iterdir())
    runs = [e for e in entries if e.is_dir() and ((e / MANIFEST).exists() or (e / ".hydra").is_dir()
                                                     or any(True for _ in e.glob(f"*/{MANIFEST}")))]
    if runs or (cache_dir / MANIFEST).exists():
        raise RunDirError(
            f"--cache-dir {cache_dir} holds run directories (e.g. {(runs or [cache_dir])[0]}), so it is not a "
            "dataset cache and nothing was deleted. Pass the cache folder itself (default outputs/.cache); "
            "to delete old runs use `python -m kaayko_exp.runs clean --models`."
        )
    freed = 0
    verb = "would delete" if dry_run else "delete"
    for entry in entries:
        size = tree_bytes(entry)
        echo(f"{verb} {entry} ({format_bytes(size)})")
        freed += size
        if not dry_run:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    echo(f"{'would free' if dry_run else 'freed'} {freed} bytes ({format_bytes(freed)}) in {len(entries)} "
         f"cache entr{'y' if len(entries) == 1 else 'ies'}")
    return freed
