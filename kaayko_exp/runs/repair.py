"""Repairing a damaged run so ``python train.py resume=<dir>`` rebuilds what is broken.

A stage with a missing or altered artifact (size or sha256 differs from the
manifest) is marked pending again together with every later stage; checkpoints
with bad files are forgotten (their directories removed); the run's status
becomes ``interrupted`` and a ``repair`` event is recorded. Files are never
deleted other than broken checkpoints: final models and reports stay in place
and are simply rewritten by the resume. A missing or unreadable manifest cannot
be repaired: it is the only record of what the run did.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.errors import KaaykoError, RunDirError
from kaayko_exp.runs.rundir import MANIFEST, RunDir
from kaayko_exp.runs.show import owner_alive

# Keys a pending stage must not carry over (timing of the previous, now void, execution).
_STALE_KEYS = ("started", "finished", "seconds", "seconds_before")


@dataclass
class RepairResult:
    bad_artifacts: list[tuple[str, str]] = field(default_factory=list)  # (path, problem)
    reset_stages: list[str] = field(default_factory=list)
    dropped_checkpoints: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.reset_stages or self.dropped_checkpoints)


def artifact_problem(run: RunDir, art: dict[str, Any]) -> Optional[str]:
    """Why an artifact is unusable (``missing``, ``truncated or extended``, ``modified``), or None."""
    try:
        run.verify_file(art)
    except RunDirError as exc:
        text = str(exc)
        if "is missing" in text:
            return "missing"
        return "truncated or extended" if "truncated" in text else "modified (sha256 mismatch)"
    return None


def open_for_repair(path: Path) -> RunDir:
    path = Path(path)
    mpath = path / MANIFEST
    if path.is_dir() and not mpath.is_file():
        raise RunDirError(
            f"{path} cannot be repaired: it has no {MANIFEST}, the only record of what the run did and which "
            "files are trustworthy. Start a fresh run with `python train.py` (the old directory is left as it is; "
            "delete it when you no longer need it)."
        )
    try:
        return RunDir.open(path)
    except KaaykoError as exc:
        if "not valid JSON" in str(exc) or "not a kaayko-exp run manifest" in str(exc) or "lacks the fields" in str(exc):
            raise RunDirError(
                f"{path} cannot be repaired: its {MANIFEST} is unreadable (not valid JSON or not a kaayko-exp "
                "manifest), so nothing records which stages finished or which files to trust. Start a fresh run "
                "with `python train.py` (the old directory is left as it is)."
            ) from None
        raise


def repair_run(path: Path, *, dry_run: bool = False) -> RepairResult:
    """Mark stages with bad artifacts (and all later stages) pending; forget bad checkpoints.

    A real repair holds the run's OS lock throughout, so a resume cannot start halfway through it.
    """
    run = open_for_repair(path)
    if dry_run:
        _refuse_if_live(run, locked=run.locked_elsewhere())
        return _repair(run, dry_run=True)
    if not run.try_lock():
        _refuse_if_live(run, locked=True)
    try:  # the lock is held: the owner record is what the last owner wrote
        _refuse_if_live(run, locked=False)
        return _repair(run, dry_run=False)
    finally:
        run.release()


def _refuse_if_live(run: RunDir, *, locked: bool) -> None:
    m = run.manifest
    if locked or (m.get("status") == "running" and owner_alive(m)):
        owner = m.get("owner") or {}
        raise RunDirError(
            f"{run.shown} is being written by a live process (pid {owner.get('pid')} on {owner.get('host')}); "
            "repairing it now would race with that process. Stop it first (Ctrl-C saves a checkpoint), then repair."
        )


def _repair(run: RunDir, *, dry_run: bool) -> RepairResult:
    m = run.manifest
    result = RepairResult()
    first_bad: Optional[int] = None
    stages = run.stage_names()
    seen: set[str] = set()  # a file several stages record (fit's model is also export's) is reported once
    for i, name in enumerate(stages):
        for art in run.stage(name).get("artifacts") or []:
            problem = artifact_problem(run, art)
            if problem:
                if art["path"] not in seen:
                    result.bad_artifacts.append((art["path"], problem))
                    seen.add(art["path"])
                first_bad = i if first_bad is None else first_bad
    if first_bad is not None:
        result.reset_stages = [s for s in stages[first_bad:] if run.stage(s).get("status") != "pending"
                               or run.stage(s).get("artifacts")]
    bad_cps = []
    for cp in m.get("checkpoints") or []:
        problems = [(a["path"], artifact_problem(run, a)) for a in cp.get("artifacts") or []]
        problems = [(p, why) for p, why in problems if why]
        if problems or not cp.get("artifacts"):
            bad_cps.append(cp)
            result.bad_artifacts += problems or [(cp.get("path", "?"), "checkpoint without files")]
    result.dropped_checkpoints = [cp.get("path", "?") for cp in bad_cps]
    if dry_run or not result.changed:
        return result
    for name in result.reset_stages:
        st = run.stage(name)
        st["status"] = "pending"
        st["artifacts"] = []
        for key in _STALE_KEYS:
            st.pop(key, None)
    ids = {id(cp) for cp in bad_cps}
    m["checkpoints"] = [cp for cp in m["checkpoints"] if id(cp) not in ids]
    m["status"] = "interrupted"
    run.event("repair", reset_stages=result.reset_stages, dropped_checkpoints=result.dropped_checkpoints,
              bad_artifacts=[f"{p}: {why}" for p, why in result.bad_artifacts])
    for cp in bad_cps:  # after the manifest stops pointing at them
        target = run.path / cp.get("path", "")
        if target != run.path and target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
    return result
