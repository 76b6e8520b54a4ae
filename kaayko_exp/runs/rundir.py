"""The run directory and its checkpoint manifest.

``manifest.json`` is the single source of truth for a run's state: status
(``running``, ``completed``, ``failed``, ``interrupted``, ``pruned``),
owner (pid, host, heartbeat), config hash and group choices, package versions,
each stage's status, timings and sha256-hashed artifacts, partial checkpoints and
an event list. It is rewritten atomically after every change, so a kill at any
instant leaves the previous or the next state. Every artifact is verified against
its hash before it is used.

The owning process holds an ``fcntl.flock`` on ``.owner.lock`` for as long as it runs
(the kernel drops it when the process dies), so at most one process writes a run.
``RunDir.path`` is absolute; :func:`shown` gives the form to print in hints.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

from kaayko_exp import atomic
from kaayko_exp.errors import RunDirError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIND = "kaayko-exp-run"
MANIFEST = "manifest.json"
LOCK_FILE = ".owner.lock"  # flock-ed by the process that owns the run, for as long as it runs
CHECKPOINT_DIR = "checkpoints"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose formats a run depends on (a copy: looked up once a process,
    not for every trial of a sweep)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("kaayko-exp", "xgboost", "scikit-learn", "skops", "numpy", "pandas", "pyarrow",
                 "hydra-core", "omegaconf", "optuna"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    if versions["kaayko-exp"] == "unknown":  # running from a source tree that is not installed
        from kaayko_exp import __version__

        versions["kaayko-exp"] = __version__
    return versions


def _process_start(pid: int) -> Optional[float]:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def shown(path: str | os.PathLike) -> str:
    """``path`` as a user types it here: relative to the working directory when below it, else absolute."""
    full = Path(path).resolve()
    try:
        return full.relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(full)


def try_flock(fd: int) -> bool:
    """Take an exclusive flock on ``fd`` without waiting; False when another open file holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: the manifest's owner record is the only guard
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


SAVED_CONFIG = ".hydra/config.yaml"  # the config Hydra saved at the start; a resume reloads it
# What a start writes into its directory: a directory holding one of them belongs to an earlier start.
_STARTED = (MANIFEST, ".hydra", "multirun.yaml")


def occupied(path: str | os.PathLike) -> Optional[RunDirError]:
    """The refusal for starting a new run in ``path`` when an earlier start (a run, Hydra's saved
    config, a sweep) already wrote there; None when the directory is free (or absent)."""
    path = Path(path).expanduser()
    found = [name for name in _STARTED if (path / name).exists()]
    if not found:
        return None
    if MANIFEST in found:
        return RunDirError(
            f"{shown(path)} already holds a run (it has a {MANIFEST}), so a new run cannot start there. To "
            f"finish it run `python train.py resume={shown(path)}`; to start another run choose "
            "a new directory (e.g. leave hydra.run.dir at its default)."
        )
    return RunDirError(
        f"{shown(path)} already holds {' and '.join(found)} from an earlier start, which a new run would "
        "overwrite, so it is refused. Choose a new directory (e.g. leave hydra.run.dir at "
        "its default), or remove that one if it holds nothing you need."
    )


def _damaged(path: Path, problem: str) -> RunDirError:
    return RunDirError(
        f"{shown(path)} is not a usable run directory: {problem} Nothing was changed. If the run's results matter, "
        "restore manifest.json from a backup; otherwise start a fresh run with `python train.py` "
        "(the old directory is left as it is)."
    )


class RunDir:
    """A run directory: its path and its manifest, with atomic updates."""

    def __init__(self, path: str | os.PathLike, manifest: dict[str, Any]):
        # absolute once, here: artifact paths are joined to it and hints are printed from it (see shown())
        self.path = Path(path).expanduser().resolve()
        self.manifest = manifest
        self._lock = threading.RLock()
        self._lock_fd: Optional[int] = None
        self._heartbeat: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        stages: Iterable[str],
        config_hash: str,
        choices: dict[str, str],
        overrides: list[str],
        saved_config_hash: Optional[str] = None,
    ) -> "RunDir":
        """A new run in ``path``. ``config_hash`` is the composed config's; ``saved_config_hash`` the same
        hash of the config file a resume will reload (:data:`SAVED_CONFIG`), verified before it is used."""
        path = Path(path).expanduser().resolve()
        if (path / MANIFEST).exists():
            raise occupied(path)  # type: ignore[misc]
        path.mkdir(parents=True, exist_ok=True)
        ts = now_iso()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "run_id": _run_id(path),
            "status": "running",
            "created": ts,
            "updated": ts,
            "owner": None,
            "package": package_versions(),
            "config": {"hash": config_hash, "saved_hash": saved_config_hash, "choices": dict(choices),
                       "overrides": list(overrides)},
            "data": {},
            "stages": {s: {"status": "pending", "artifacts": [], "detail": {}} for s in stages},
            "checkpoints": [],
            "events": [],
        }
        run = cls(path, manifest)
        run.save()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        given = path
        path = Path(path).expanduser().resolve()
        if not path.is_dir():
            raise RunDirError(
                f"Run directory {given} does not exist. Pass the path of a run under outputs/ "
                "(list them with `python -m kaayko_exp.runs list`)."
            )
        return cls(path, cls._read_manifest(path))

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        import json

        mpath = path / MANIFEST
        if not mpath.exists():
            run = next((p for p in path.parents if (p / MANIFEST).is_file()), None)
            if run is not None:
                raise RunDirError(
                    f"{shown(path)} is a folder inside the run {shown(run)}, not a run directory. Nothing was "
                    f"changed. Pass the run directory itself: {shown(run)}."
                )
            inner = sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
            if inner:
                raise RunDirError(
                    f"{shown(path)} holds runs but is not one itself. Nothing was changed. Pass one of them, e.g. "
                    f"{shown(inner[-1])} (list them with `python -m kaayko_exp.runs list {shown(path)}`)."
                )
            hint = " It has a .hydra/ folder, so it may be a run that died before its first manifest write." \
                if (path / ".hydra").is_dir() else ""
            raise _damaged(path, f"it has no {MANIFEST}.{hint}")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _damaged(path, f"its {MANIFEST} is not valid JSON ({exc}).") from None
        if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
            raise _damaged(path, f"its {MANIFEST} is not a kaayko-exp run manifest.")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RunDirError(
                f"{shown(path)} was written with manifest schema version {version}; this kaayko-exp reads version "
                f"{SCHEMA_VERSION}. Use the kaayko-exp version that wrote it, or start a fresh run."
            )
        missing = [k for k in ("run_id", "status", "stages", "events", "checkpoints") if k not in manifest]
        if missing:
            raise _damaged(path, f"its {MANIFEST} lacks the fields {', '.join(missing)}.")
        return manifest

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        with self._lock:
            self.manifest["updated"] = now_iso()
            atomic.write_json(self.path / MANIFEST, self.manifest)

    def event(self, name: str, **detail: Any) -> None:
        with self._lock:
            self.manifest["events"].append({"time": now_iso(), "event": name, **detail})
            self.save()

    def set_entry(self, key: str, value: Any) -> None:
        """Set a top-level manifest entry (``tracking``: the tracker's record) and save, under the manifest's lock
        (another thread may be saving it)."""
        with self._lock:
            self.manifest[key] = value
            self.save()

    def set_status(self, status: str, **detail: Any) -> None:
        with self._lock:
            self.manifest["status"] = status
            self.event(status, **detail)

    # ------------------------------------------------------------------ ownership
    @property
    def shown(self) -> str:
        """The run's path as a user types it from here (relative when below the working directory)."""
        return shown(self.path)

    def _busy(self, owner: Optional[dict[str, Any]]) -> RunDirError:
        who = ""
        if owner:
            who = (f" (pid {owner.get('pid')} on {owner.get('host')}, last heartbeat {owner.get('heartbeat')})")
        return RunDirError(
            f"{self.shown} is being written by another live process{who}. Wait for it to finish or stop it "
            "(Ctrl-C saves a checkpoint), then resume."
        )

    def lock(self) -> None:
        """Take the run's OS lock (``flock`` on ``.owner.lock``) for this process, or refuse at once.

        Held until :meth:`release`; the kernel drops it when the process dies, so a killed
        owner never blocks a resume. The manifest is re-read once the lock is held, so
        decisions are made on what the previous owner last wrote.
        """
        if not self.try_lock():
            raise self._busy(self._read_manifest(self.path).get("owner"))

    def try_lock(self) -> bool:
        """:meth:`lock` without the error: False when another open file holds the lock."""
        if self._lock_fd is not None:
            return True
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        if not try_flock(fd):
            os.close(fd)
            return False
        self._lock_fd = fd
        try:
            self.manifest = self._read_manifest(self.path)
        except BaseException:
            self._unlock()
            raise
        return True

    def locked_elsewhere(self) -> bool:
        """Whether another open file (another process, or another RunDir here) holds the run's lock."""
        if self._lock_fd is not None:
            return False
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            return not try_flock(fd)
        finally:
            os.close(fd)  # closing drops the probe's lock, if it took one

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def claim(self, heartbeat_seconds: float = 10.0, event: Optional[dict[str, Any]] = None) -> None:
        """Make this process the run's owner; refuse when another live process owns it. ``event``
        (``{"event": name, **detail}``) is appended to the events in the same manifest write.

        The OS lock decides on this host (and on file systems that share flock); the
        owner record (pid and start time, or heartbeat age for another host) covers the rest.
        """
        self.lock()
        owner = self.manifest.get("owner")
        if owner and self.manifest.get("status") == "running" and self.owner_alive(owner, heartbeat_seconds):
            self._unlock()
            raise self._busy(owner)
        with self._lock:
            self.manifest["owner"] = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "process_start": _process_start(os.getpid()),
                "heartbeat": now_iso(),
                "heartbeat_seconds": heartbeat_seconds,
            }
            self.manifest["status"] = "running"
            if event is not None:
                self.manifest["events"].append({"time": now_iso(), **event})
            self.save()
        self._start_heartbeat(heartbeat_seconds)

    @staticmethod
    def owner_alive(owner: dict[str, Any], heartbeat_seconds: float = 10.0) -> bool:
        """Whether ``owner`` (a manifest's owner record) is another process that is still running:
        same host: its pid exists with the recorded start time; other host: a heartbeat younger than
        three of the owner's own intervals (``heartbeat_seconds`` only when the record lacks one)."""
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            return False
        if owner.get("host") == socket.gethostname():
            started = _process_start(int(owner.get("pid", -1)))
            return started is not None and abs(started - float(owner.get("process_start") or 0)) < 1.0
        try:
            beat = _dt.datetime.fromisoformat(owner["heartbeat"])
        except (KeyError, TypeError, ValueError):
            return False
        interval = owner.get("heartbeat_seconds")
        interval = float(interval) if isinstance(interval, (int, float)) else heartbeat_seconds
        age = (_dt.datetime.now(_dt.timezone.utc) - beat).total_seconds()
        return age < 3 * interval

    def _start_heartbeat(self, seconds: float) -> None:
        if seconds <= 0 or self._heartbeat is not None:
            return
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(seconds):
                with self._lock:
                    if self.manifest.get("owner"):
                        self.manifest["owner"]["heartbeat"] = now_iso()
                        self.save()

        self._heartbeat = threading.Thread(target=beat, name="kaayko-heartbeat", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        """Stop the heartbeat and drop the OS lock (the owner record stays as the last writer's)."""
        self._stop_heartbeat()
        self._unlock()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None

    def manifest_bytes(self) -> bytes:
        """The manifest file as it is on disk now."""
        return (self.path / MANIFEST).read_bytes()

    def undo_claim(self, before: bytes) -> bool:
        """Put the manifest back as ``before`` (:meth:`manifest_bytes` read before :meth:`claim`) when nothing but
        the claim changed it: the same stages (their artifacts too) and checkpoints (a resume refused by a check
        of what the run already holds writes nothing). Returns whether it did; the heartbeat stops either way and
        the lock stays until :meth:`release`."""
        self._stop_heartbeat()
        with self._lock:
            old = json.loads(before)
            if any(old.get(k) != self.manifest.get(k) for k in ("stages", "checkpoints")):
                return False
            atomic.write_bytes(self.path / MANIFEST, before)
            self.manifest = old
            return True

    # ------------------------------------------------------------------ stages
    def stage_names(self) -> list[str]:
        """The run's stages in execution order, as stored in its manifest at creation."""
        return list(self.manifest["stages"])

    def stage(self, name: str) -> dict[str, Any]:
        return self.manifest["stages"][name]

    def stage_done(self, name: str) -> bool:
        return self.stage(name)["status"] == "done"

    def start_stage(self, name: str) -> None:
        """Mark ``name`` running in memory; the stage's next save (an artifact, a checkpoint, its end or its
        interruption) writes it. Not saved here: a stage killed before any save reads as pending, which resumes
        exactly like running (both run again), and a trial saves one fsync'd manifest less per stage."""
        with self._lock:
            st = self.stage(name)
            st["status"] = "running"
            st.setdefault("started", now_iso())

    def finish_stage(self, name: str, seconds: float, detail: Optional[dict[str, Any]] = None, *,
                     save: bool = True) -> None:
        """Mark ``name`` done; ``save=False`` leaves the write to the manifest's next save (the caller bounds
        what a kill in between would redo: the stage runs again, as one killed before its end does)."""
        with self._lock:
            st = self.stage(name)
            st["status"] = "done"
            st["finished"] = now_iso()
            st["seconds"] = round(st.get("seconds_before", 0.0) + seconds, 4)
            st.pop("seconds_before", None)
            if detail:
                st["detail"].update(detail)
            if save:
                self.save()

    def interrupt_stage(self, name: str, seconds: float, status: str = "interrupted") -> None:
        with self._lock:
            st = self.stage(name)
            if st["status"] == "running":
                st["status"] = status
                st["seconds_before"] = round(st.get("seconds_before", 0.0) + seconds, 4)
            self.save()

    def update_detail(self, name: str, **detail: Any) -> None:
        with self._lock:
            self.stage(name)["detail"].update(detail)
            self.save()

    # ------------------------------------------------------------------ artifacts
    def rel(self, path: str | os.PathLike) -> str:
        return Path(path).resolve().relative_to(self.path.resolve()).as_posix()

    def record(self, stage: str, paths: Iterable[str | os.PathLike]) -> None:
        """Hash files (already written atomically) and record them as ``stage`` artifacts."""
        with self._lock:
            arts = {a["path"]: a for a in self.stage(stage)["artifacts"]}
            for p in paths:
                p = Path(p)
                if not p.is_absolute():
                    p = self.path / p
                arts[self.rel(p)] = {"path": self.rel(p), "sha256": atomic.sha256_file(p), "bytes": p.stat().st_size}
            self.stage(stage)["artifacts"] = sorted(arts.values(), key=lambda a: a["path"])
            self._save_unless_running(stage)

    def adopt(self, stage: str, source: str) -> None:
        """Record ``source``'s artifacts under ``stage`` too, reusing their hashes (no re-read)."""
        with self._lock:
            arts = {a["path"]: a for a in self.stage(stage)["artifacts"]}
            arts.update({a["path"]: dict(a) for a in self.stage(source)["artifacts"]})
            self.stage(stage)["artifacts"] = sorted(arts.values(), key=lambda a: a["path"])
            self._save_unless_running(stage)

    def _save_unless_running(self, stage: str) -> None:
        """Save the manifest, unless ``stage`` is running: its end (:meth:`finish_stage`) or its interruption
        (:meth:`interrupt_stage`, on every way out of the pipeline's stage loop) writes the same manifest, hashes
        included, moments later, so a trial saves one fsync'd manifest less per stage. A kill -9 in between
        leaves the stage unfinished, which reruns it and rewrites its artifacts, as a kill before the artifact
        landed does."""
        if self.stage(stage)["status"] != "running":
            self.save()

    def artifacts(self, stages: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
        names = self.stage_names() if stages is None else tuple(stages)
        return [a for s in names for a in self.stage(s)["artifacts"]]

    def verify(self, stages: Optional[Iterable[str]] = None) -> None:
        """Check every recorded artifact of ``stages`` (default all) against its sha256."""
        for art in self.artifacts(stages):
            self.verify_file(art)

    def verify_file(self, art: dict[str, Any]) -> Path:
        p = self.path / art["path"]
        if not p.is_file():
            raise RunDirError(
                f"{self.shown}: the artifact {art['path']} recorded in the manifest is missing. Nothing was "
                f"changed. Restore the file, or repair the run with `python -m kaayko_exp.runs repair {self.shown}` "
                "(which marks the stages that made it as not done, so a resume rebuilds them), or start fresh."
            )
        size = p.stat().st_size
        if size != art["bytes"] or atomic.sha256_file(p) != art["sha256"]:
            what = "truncated or extended" if size != art["bytes"] else "modified (sha256 mismatch)"
            raise RunDirError(
                f"{self.shown}: the artifact {art['path']} was {what} since the run wrote it "
                f"(expected {art['bytes']} bytes, sha256 {art['sha256'][:12]}…). It will not be used. "
                f"Restore it, or run `python -m kaayko_exp.runs repair {self.shown}` to mark the stages that "
                "made it as not done so a resume rebuilds them, or start a fresh run."
            )
        return p

    # ------------------------------------------------------------------ checkpoints
    def latest_checkpoint(self, key: str) -> Optional[dict[str, Any]]:
        entries = [c for c in self.manifest["checkpoints"] if c["key"] == key]
        if not entries:
            return None
        best = max(entries, key=lambda c: c["done"])
        for art in best["artifacts"]:
            self.verify_file(art)
        return best

    def add_checkpoint(
        self, key: str, done: int, total: int, write: Any, *, final: bool = False, keep_last: int = 2
    ) -> Path:
        """Write a checkpoint directory atomically with ``write(tmpdir)`` and record it.

        A directory the manifest may point at is never overwritten: when ``<done>`` exists
        already (a rewrite of the same step, or a leftover of a kill) the new one gets a fresh
        name, the manifest switches to it in one write, and only then is the old one deleted.
        """
        base = self.path / CHECKPOINT_DIR / _safe_key(key)
        base.mkdir(parents=True, exist_ok=True)
        name = f"{done:07d}"
        target, n = base / name, 0
        while target.exists():
            n += 1
            target = base / f"{name}.{n}"
        tmp = atomic.fresh_path(base, f".{name}.", directory=True)
        try:
            write(tmp)
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
            os.rename(tmp, target)  # target does not exist: an atomic rename, nothing is replaced
            atomic.fsync_dir(base)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        arts = [
            {"path": self.rel(f), "sha256": atomic.sha256_file(f), "bytes": f.stat().st_size}
            for f in sorted(target.rglob("*")) if f.is_file()
        ]
        with self._lock:
            cps = [c for c in self.manifest["checkpoints"] if not (c["key"] == key and c["done"] == done)]
            cps.append({"key": key, "done": done, "total": total, "final": final, "time": now_iso(),
                        "path": self.rel(target), "artifacts": arts})
            entries = sorted((c for c in cps if c["key"] == key), key=lambda c: c["done"])
            drop = [c for c in entries[: max(0, len(entries) - max(1, keep_last))] if not c.get("final")]
            self.manifest["checkpoints"] = [c for c in cps if not any(c is d for d in drop)]
            self.save()  # one manifest write records the new state and forgets the pruned ones
            kept = {c["path"] for c in self.manifest["checkpoints"]}
        # deleted only after the manifest stops pointing at them: pruned ones, and earlier copies of this step
        stale = [self.path / c["path"] for c in drop]
        stale += [p for p in base.iterdir() if (p.name == name or p.name.startswith(f"{name}."))
                  and self.rel(p) not in kept]
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        return target

    def drop_checkpoints(self, prefix: str = "") -> list[str]:
        """Forget and delete partial checkpoints whose key starts with ``prefix``; return their paths."""
        with self._lock:
            gone = [c for c in self.manifest["checkpoints"] if c["key"].startswith(prefix)]
            self.manifest["checkpoints"] = [c for c in self.manifest["checkpoints"] if c not in gone]
            self.save()
        for c in gone:
            shutil.rmtree(self.path / c["path"], ignore_errors=True)
        return [c["path"] for c in gone]


def _safe_key(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key.replace("/", "__"))


def _run_id(path: Path) -> str:
    parts = path.resolve().parts
    return "_".join(parts[-2:]) if len(parts) >= 2 else path.name

