"""``python -m kaayko_exp.runs sync-tracker <run or sweep dir>``: upload what a tracker missed.

Reads only the run directories (the source of truth) and sends MLflow whatever it does not hold yet, with the
same idempotent sections a live run uses (:mod:`kaayko_exp.tracking.mirror`): a run never mirrored gets its
MLflow run (a sweep trial nested under its sweep's parent), a half-mirrored one is completed, a complete one
is left alone. A run's tracker process goes on uploading after the run returns: ``--wait`` waits for it
(:func:`kaayko_exp.tracking.state.wait_idle`) and then sends only what it did not (its ``tracking/state.json``
lists the sections it finished); without ``--wait`` a directory still being uploaded is skipped with that hint.
The runs CLI hands this command over by name (this package sits above ``runs``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.errors import KaaykoError
from kaayko_exp.runs.rundir import try_flock
from kaayko_exp.tracking import mirror, state
from kaayko_exp.tracking.sweep import SWEEP_FILE

DEFAULT_URI = "sqlite:///outputs/mlflow.db"
DEFAULT_EXPERIMENT = "kaayko-exp"
TERMINAL = ("completed", "pruned", "interrupted", "failed")


class TrackerError(KaaykoError):
    kind = "tracker error"


def _logger_of(run_path: Path) -> dict[str, Any]:
    try:
        return dict((mirror.saved_config(run_path) or {}).get("logger") or {})
    except Exception:  # an old run without the key, or no saved config: the defaults
        return {}


def _sweep_ctx(sweep_dir: Path, number: int) -> dict[str, Any]:
    import hashlib

    from omegaconf import OmegaConf

    from kaayko_exp.tracking.sweep import _describe

    multirun = sweep_dir / "multirun.yaml"
    hydra = OmegaConf.load(multirun).get("hydra") if multirun.is_file() else None
    sweeper = hydra.get("sweeper") if hydra is not None else None
    name = (sweeper.get("study_name") if sweeper is not None else None) or \
        (str(hydra.job.name) if hydra is not None and hydra.get("job") else "train")
    ctx = _describe(sweeper, sweep_dir, str(name))
    ctx.update(number=number, params={})
    ctx["key"] = hashlib.sha256(f"{ctx['storage']}\n{ctx['study_name']}".encode()).hexdigest()[:32]
    return ctx


def _wait(path: Path, wait: bool, shown_as: str) -> Optional[str]:
    """None when no tracker process works on ``path`` (after waiting for it with ``wait``), else a line."""
    if wait:
        state.wait_idle(path)
        return None
    if not state.settled(path):
        pid = state.load(path).get("pid")
        return (f"{shown_as}: its tracker process (pid {pid}) is still uploading; skipped. Wait for it (and upload "
                f"what it missed) with: python -m kaayko_exp.runs sync-tracker {shown_as} --wait")
    return None


def sync_run(path: Path, uri: Optional[str] = None, experiment: Optional[str] = None,
             sweep_dir: Optional[Path] = None, wait: bool = False) -> str:
    """Mirror one run directory; returns a line saying what was done. ``wait``: for its tracker process first."""
    from kaayko_exp.runs.rundir import RunDir, shown

    if (busy := _wait(path, wait, shown(path))) is not None:
        return busy
    run = RunDir.open(path)
    if run.locked_elsewhere():
        return f"{run.shown}: still running in another process; skipped (its own tracker is mirroring it)"
    fd = state.open_lock(run.path)
    try:
        if not try_flock(fd):  # a tracker started on it since
            return _wait(path, False, run.shown) or f"{run.shown}: busy; skipped"
        return _sync_locked(run, uri, experiment, sweep_dir)
    finally:
        os.close(fd)


def _sync_locked(run: Any, uri: Optional[str], experiment: Optional[str], sweep_dir: Optional[Path]) -> str:
    from kaayko_exp.tracking import client as mc
    from kaayko_exp.tracking.sweep import child_tags, parent_run

    rec = dict(run.manifest.get(mirror.RECORD) or {})
    done = state.load(run.path)
    if done.get("tracking_uri") == rec.get("tracking_uri") and done.get("run_id") and \
            (not rec.get("run_id") or rec.get("run_id") == done.get("run_id")):
        # the tracker process got further than the manifest says (it died, or could not write the manifest)
        rec.update({k: done.get(k) for k in ("run_id", "experiment_id", "parent_run_id")},
                   complete=bool(done.get("finished") and done.get("complete")
                                 and done.get("session") == rec.get("session")))
        if done.get("session") != rec.get("session"):  # a previous run's tracker: its sections are not this run's
            done = {}
    else:
        done = {}
    settings = _logger_of(run.path)
    uri = uri or rec.get("tracking_uri") or (settings.get("tracking_uri") if settings.get("name") == "mlflow"
                                                else None) or DEFAULT_URI
    if rec.get("complete") and rec.get("tracking_uri") == uri:
        if not (run.manifest.get(mirror.RECORD) or {}).get("complete"):
            run.set_entry(mirror.RECORD, {**rec, "missed": None, "pending": False})
        return f"{run.shown}: already complete in MLflow (run {rec.get('run_id')})"
    if rec.get("tracking_uri") != uri:  # another tracker: a new MLflow run there
        rec, done = {}, {}
    client = mc.connect(uri)
    exp = mc.experiment_id(client, uri, experiment or settings.get("experiment_name") or DEFAULT_EXPERIMENT)
    ctx = None
    if sweep_dir is not None:
        number = int(run.path.name) if run.path.name.isdigit() else -1
        ctx = _sweep_ctx(sweep_dir, number)
    run_id, parent = rec.get("run_id"), rec.get("parent_run_id")
    if run_id:
        try:
            client.get_run(run_id)
        except Exception:
            run_id, done = None, {}
    if not run_id:
        parent = parent_run(client, exp, uri, ctx) if ctx else None
        name = f"trial {ctx['number']}" if ctx else run.shown
        run_id = client.create_run(exp, tags={"mlflow.runName": name, **({"mlflow.parentRunId": parent}
                                                                          if parent else {})},
                                   run_name=name).info.run_id
    record = {"logger": "mlflow", "tracking_uri": uri, "experiment_id": exp, "run_id": run_id,
              "parent_run_id": parent, "complete": False, "missed": None, "pending": False}
    run.set_entry(mirror.RECORD, record)
    mc.log_params(client, run_id, mirror.params_of(mirror.saved_config(run.path)))
    mc.set_tags(client, run_id, mirror.run_tags(run.path, run.manifest, {**dict(settings.get("tags") or {}),
                                                                        **(child_tags(ctx) if ctx else {})}))
    mirror.log_steps(client, run_id, mirror.load_steps(run.path), {})
    status = str(run.manifest.get("status"))
    if status in TERMINAL:
        uploaded = set(done.get("sections") or ())  # by the tracker process, recorded as each finished
        for section in mirror.sections(status, bool(settings.get("log_model", True))):
            if section not in uploaded:
                mirror.log_section(client, run_id, run.path, section, status, parent, ctx)
    run.set_entry(mirror.RECORD, {**record, "complete": status in TERMINAL})
    state.save(run.path, {"pid": os.getpid(), "tracking_uri": uri, "run_id": run_id, "experiment_id": exp,
                          "parent_run_id": parent, "sections": list(mirror.sections(status, True)),
                          "finished": True, "complete": status in TERMINAL, "missed": None})
    return f"{run.shown}: synced to {uri} (MLflow run {run_id}, {status})"


def _trial_dirs(sweep_dir: Path) -> list[Path]:
    from kaayko_exp.runs.rundir import MANIFEST

    return sorted((p.parent for p in sweep_dir.glob(f"*/{MANIFEST}")),
                  key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def sync(path: Path, uri: Optional[str] = None, experiment: Optional[str] = None, wait: bool = False) -> list[str]:
    """Sync a run directory, or every trial of a sweep directory (then end the sweep's parent run). ``wait``:
    first wait for the tracker processes still uploading them."""
    from kaayko_exp.runs.rundir import MANIFEST, shown

    path = Path(path)
    if (path / MANIFEST).is_file():
        return [_guarded(lambda: sync_run(path, uri, experiment, wait=wait), uri)]
    trials = _trial_dirs(path) if path.is_dir() else []
    if not trials:
        raise TrackerError(
            f"{path} is neither a run directory nor a sweep directory holding runs. Pass a run "
            "(outputs/<date>/<time>) or a sweep (outputs/multirun/<date>/<time>); `python -m kaayko_exp.runs list` "
            "lists them."
        )
    lines = [_guarded(lambda t=t: sync_run(t, uri, experiment, sweep_dir=path.resolve(), wait=wait), uri)
             for t in trials]
    if (busy := _wait(path, wait, shown(path))) is not None:  # the tracker still ending the parent run
        return [*lines, busy]
    saved = json.loads((path / SWEEP_FILE).read_text(encoding="utf-8")) if (path / SWEEP_FILE).is_file() else {}
    if saved.get("parent_run_id") and state.load(path).get("complete") and all("already complete" in line
                                                                                 for line in lines):
        lines.append(f"{shown(path)}: sweep parent run {saved['parent_run_id']} already ended")
    elif saved.get("parent_run_id"):
        from kaayko_exp.tracking import client as mc

        client = mc.connect(saved["tracking_uri"])
        client.set_terminated(saved["parent_run_id"], "FINISHED")
        lines.append(f"{shown(path)}: sweep parent run {saved['parent_run_id']} ended")
    return lines


def _guarded(fn: Any, uri: Optional[str]) -> str:
    try:
        return fn()
    except KaaykoError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        where = uri or "the run's tracking URI"
        raise TrackerError(
            f"the tracker at {where} did not take the upload ({type(exc).__name__}: "
            f"{first}). Nothing in the run directory changed except its tracking record. Start the tracking server "
            "or free the database file, then run the same sync-tracker command again: it sends only what is missing."
        ) from None


def main(path: Path, uri: Optional[str] = None, experiment: Optional[str] = None, wait: bool = False) -> int:
    for line in sync(path, uri, experiment, wait):
        print(line, flush=True)
    return 0
