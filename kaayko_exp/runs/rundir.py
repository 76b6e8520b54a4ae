"""The run directory and its checkpoint manifest.

``manifest.json`` is the single source of truth for a run's state: status,
owner (pid, host, heartbeat), config hash and group choices, package versions,
each stage's status, timings and sha256-hashed artifacts, partial checkpoints and
an event list. It is rewritten atomically after every change, so a kill at any
instant leaves the previous or the next state. Every artifact is verified against
its hash before it is used.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

from kaayko_exp import atomic
from kaayko_exp.errors import RunDirError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIND = "kaayko-exp-run"
MANIFEST = "manifest.json"
STAGES: tuple[str, ...] = ("dataset", "features", "split", "fit", "evaluate", "report", "export")
CHECKPOINT_DIR = "checkpoints"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose formats a run depends on."""
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


def _damaged(path: Path, problem: str) -> RunDirError:
    return RunDirError(
        f"{path} is not a usable run directory: {problem} Nothing was changed. If the run's results matter, "
        "restore manifest.json from a backup; otherwise start a fresh run with `python train.py` "
        "(the old directory is left as it is)."
    )


class RunDir:
    """A run directory: its path and its manifest, with atomic updates."""

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self._lock = threading.RLock()
        self._heartbeat: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        config_hash: str,
        choices: dict[str, str],
        overrides: list[str],
    ) -> "RunDir":
        path = Path(path)
        if (path / MANIFEST).exists():
            raise RunDirError(
                f"{path} already holds a run (it has a {MANIFEST}). To finish it run "
                f"`python train.py resume={path}`; to start another run choose a new directory "
                "(e.g. leave hydra.run.dir at its default)."
            )
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
            "config": {"hash": config_hash, "choices": dict(choices), "overrides": list(overrides)},
            "data": {},
            "stages": {s: {"status": "pending", "artifacts": [], "detail": {}} for s in STAGES},
            "checkpoints": [],
            "events": [],
        }
        run = cls(path, manifest)
        run.save()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        import json

        path = Path(path)
        if not path.is_dir():
            raise RunDirError(
                f"Run directory {path} does not exist. Pass the path of a run under outputs/ "
                "(list them with `python -m kaayko_exp.runs list`)."
            )
        mpath = path / MANIFEST
        if not mpath.exists():
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
                f"{path} was written with manifest schema version {version}; this kaayko-exp reads version "
                f"{SCHEMA_VERSION}. Use the kaayko-exp version that wrote it, or start a fresh run."
            )
        missing = [k for k in ("run_id", "status", "stages", "events", "checkpoints") if k not in manifest]
        if missing:
            raise _damaged(path, f"its {MANIFEST} lacks the fields {', '.join(missing)}.")
        return cls(path, manifest)

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        with self._lock:
            self.manifest["updated"] = now_iso()
            atomic.write_json(self.path / MANIFEST, self.manifest)

    def event(self, name: str, **detail: Any) -> None:
        with self._lock:
            self.manifest["events"].append({"time": now_iso(), "event": name, **detail})
            self.save()

    def set_status(self, status: str, **detail: Any) -> None:
        with self._lock:
            self.manifest["status"] = status
            self.event(status, **detail)

    # ------------------------------------------------------------------ ownership
    def claim(self, heartbeat_seconds: float = 10.0) -> None:
        """Make this process the run's owner; refuse when another live process owns it."""
        owner = self.manifest.get("owner")
        if owner and self.manifest.get("status") == "running" and self.owner_alive(owner, heartbeat_seconds):
            raise RunDirError(
                f"{self.path} is being written by another live process (pid {owner.get('pid')} on "
                f"{owner.get('host')}, last heartbeat {owner.get('heartbeat')}). Wait for it to finish or stop "
                "it (Ctrl-C saves a checkpoint), then resume."
            )
        with self._lock:
            self.manifest["owner"] = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "process_start": _process_start(os.getpid()),
                "heartbeat": now_iso(),
            }
            self.manifest["status"] = "running"
            self.save()
        self._start_heartbeat(heartbeat_seconds)

    @staticmethod
    def owner_alive(owner: dict[str, Any], heartbeat_seconds: float) -> bool:
        """Whether ``owner`` (a manifest's owner record) is another process that is still running:
        same host: its pid exists with the recorded start time; other host: a recent heartbeat."""
        if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            return False
        if owner.get("host") == socket.gethostname():
            started = _process_start(int(owner.get("pid", -1)))
            return started is not None and abs(started - float(owner.get("process_start") or 0)) < 1.0
        try:
            beat = _dt.datetime.fromisoformat(owner["heartbeat"])
        except (KeyError, TypeError, ValueError):
            return False
        age = (_dt.datetime.now(_dt.timezone.utc) - beat).total_seconds()
        return age < 3 * heartbeat_seconds

    def _start_heartbeat(self, seconds: float) -> None:
        if seconds <= 0 or self._heartbeat is not None:
            return

        def beat() -> None:
            while not self._stop.wait(seconds):
                with self._lock:
                    if self.manifest.get("owner"):
                        self.manifest["owner"]["heartbeat"] = now_iso()
                        self.save()

        self._heartbeat = threading.Thread(target=beat, name="kaayko-heartbeat", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        """Stop the heartbeat (the owner record stays as the last writer's)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None

    # ------------------------------------------------------------------ stages
    def stage(self, name: str) -> dict[str, Any]:
        return self.manifest["stages"][name]

    def stage_done(self, name: str) -> bool:
        return self.stage(name)["status"] == "done"

    def start_stage(self, name: str) -> None:
        with self._lock:
            st = self.stage(name)
            st["status"] = "running"
            st.setdefault("started", now_iso())
            self.save()

    def finish_stage(self, name: str, seconds: float, detail: Optional[dict[str, Any]] = None) -> None:
        with self._lock:
            st = self.stage(name)
            st["status"] = "done"
            st["finished"] = now_iso()
            st["seconds"] = round(st.get("seconds_before", 0.0) + seconds, 4)
            st.pop("seconds_before", None)
            if detail:
                st["detail"].update(detail)
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
            self.save()

    def adopt(self, stage: str, source: str) -> None:
        """Record ``source``'s artifacts under ``stage`` too, reusing their hashes (no re-read)."""
        with self._lock:
            arts = {a["path"]: a for a in self.stage(stage)["artifacts"]}
            arts.update({a["path"]: dict(a) for a in self.stage(source)["artifacts"]})
            self.stage(stage)["artifacts"] = sorted(arts.values(), key=lambda a: a["path"])
            self.save()

    def artifacts(self, stages: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
        names = STAGES if stages is None else tuple(stages)
        return [a for s in names for a in self.stage(s)["artifacts"]]

    def verify(self, stages: Optional[Iterable[str]] = None) -> None:
        """Check every recorded artifact of ``stages`` (default all) against its sha256."""
        for art in self.artifacts(stages):
            self.verify_file(art)

    def verify_file(self, art: dict[str, Any]) -> Path:
        p = self.path / art["path"]
        if not p.is_file():
            raise RunDirError(
                f"{self.path}: the artifact {art['path']} recorded in the manifest is missing. Nothing was "
                f"changed. Restore the file, or repair the run with `python -m kaayko_exp.runs repair {self.path}` "
                "(which marks the stages that made it as not done, so a resume rebuilds them), or start fresh."
            )
        size = p.stat().st_size
        if size != art["bytes"] or atomic.sha256_file(p) != art["sha256"]:
            what = "truncated or extended" if size != art["bytes"] else "modified (sha256 mismatch)"
            raise RunDirError(
                f"{self.path}: the artifact {art['path']} was {what} since the run wrote it "
                f"(expected {art['bytes']} bytes, sha256 {art['sha256'][:12]}…). It will not be used. "
                f"Restore it, or run `python -m kaayko_exp.runs repair {self.path}` to mark the stages that "
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
        """Write a checkpoint directory atomically with ``write(tmpdir)`` and record it."""
        base = self.path / CHECKPOINT_DIR / _safe_key(key)
        base.mkdir(parents=True, exist_ok=True)
        target = base / f"{done:07d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{done:07d}.", dir=base))
        try:
            write(tmp)
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
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
        for c in drop:  # deleted only after the manifest stops pointing at them
            shutil.rmtree(self.path / c["path"], ignore_errors=True)
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

