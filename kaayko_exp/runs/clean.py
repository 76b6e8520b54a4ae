"""Deleting what finished runs no longer need, and the dataset cache.

``clean`` removes the partial checkpoints of completed runs older than an age,
leaving the newest ``keep_last`` completed runs untouched; final models, reports
and plots stay unless ``models=True``, which deletes such runs' whole directories.
``clear_cache`` empties the dataset cache (``outputs/.cache``).
"""

from __future__ import annotations

import contextlib
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
    verb = "would delete" if dry_run else "deleted"  # each line is printed once its deletion is done
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
            if not dry_run:
                shutil.rmtree(run.path)
            echo(f"{verb} {run.path}/ (whole run: model, report, plots, checkpoints; {format_bytes(size)})")
            result.deleted.append((run.path, size))
            continue
        targets = [(target, tree_bytes(target)) for target in _checkpoint_paths(run)]
        if not dry_run and (run.manifest["checkpoints"] or (run.path / CHECKPOINT_DIR).exists()):
            gone = run.drop_checkpoints("")
            shutil.rmtree(run.path / CHECKPOINT_DIR, ignore_errors=True)
            run.event("clean", deleted=gone or [CHECKPOINT_DIR])
        for target, size in targets:
            echo(f"{verb} {target} ({format_bytes(size)})")
            result.deleted.append((target, size))
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
    from kaayko_exp.data.cache import entry_lock

    verb = "would delete" if dry_run else "deleted"  # each line is printed once its deletion is done
    datasets_dir = cache_dir / DATASETS
    freed, datasets, busy = 0, 0, []
    for key, files in _dataset_entries(datasets_dir).items():
        lock = datasets_dir / f"{key}.lock"
        # deleted under the entry's own lock, the one a build holds: never under a running build's feet
        with contextlib.nullcontext(True) if dry_run else entry_lock(lock, wait=False) as held:
            if not held:
                busy.append(key)
                continue
            size = sum(tree_bytes(f) for f in files if f.exists())
            if not dry_run:
                for f in files:
                    if f != lock:
                        _delete(f)
                lock.unlink(missing_ok=True)  # last, while still held (see entry_lock)
        freed += size
        if any(f.name in (f"{key}.parquet", f"{key}.json", f"{key}.parts.json") for f in files):  # .parts: dask
            datasets += 1
            echo(f"{verb} dataset {key} ({format_bytes(size)})")
        else:
            echo(f"{verb} {len(files)} leftover file(s) of {key} ({format_bytes(size)})")
    others = [e for e in entries_of(cache_dir) if e != datasets_dir]
    for item in others:
        size = tree_bytes(item)
        if not dry_run:
            _delete(item)
        echo(f"{verb} {item} ({format_bytes(size)})")
        freed += size
    if not dry_run and datasets_dir.is_dir() and not any(datasets_dir.iterdir()):
        datasets_dir.rmdir()
    parts = [f"{datasets} cached dataset{'' if datasets == 1 else 's'}"]
    if others:
        parts.append(f"{len(others)} other item{'' if len(others) == 1 else 's'}")
    echo(f"{'would free' if dry_run else 'freed'} {freed} bytes ({format_bytes(freed)}): {', '.join(parts)}"
         + (f"; kept {len(busy)} dataset(s) in use by a running build: {', '.join(busy)}" if busy else ""))
    return freed


DATASETS = "datasets"  # the cache's layout: <cache_dir>/datasets/<key>.{parquet,json,lock} (+ .<name>.*.tmp);
# backend=dask: <key>.parts/ (one parquet file per partition) and <key>.parts.json, under the same <key>.lock


def entries_of(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []


def _dataset_entries(folder: Path) -> dict[str, list[Path]]:
    """Every file in the datasets folder grouped by the key it belongs to."""
    entries: dict[str, list[Path]] = {}
    for f in entries_of(folder):
        entries.setdefault(f.name.lstrip(".").split(".")[0], []).append(f)
    return dict(sorted(entries.items()))


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
