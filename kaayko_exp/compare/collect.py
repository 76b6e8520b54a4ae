"""Turn the user's inputs (run dirs, sweep dirs, globs) into :class:`RunRecord` s.

Reads only ``manifest.json``, ``report.json`` (through :func:`read_report`) and
``.hydra/config.yaml`` of each run, never predictions or models, so a thousand runs
take seconds. A sweep directory (one with the ``sweep.json`` from the
sweeper, or any folder of run directories) expands to its runs; the trial table adds
each trial's number, state and objective value, and trials without a run directory
still get a row with their state. A trial's row shows its real job folder (``<sweep>/<job_num>``:
the trial number, or for a trial re-queued after its worker died, the folder of the trial it
repeats). Damaged or foreign directories are listed in :attr:`Collection.skipped` with the reason,
never silently dropped; folders inside a run directory that a glob matches (``checkpoints/``,
``model/``) are not candidates at all.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from kaayko_exp.compare.records import RunRecord, TrialInfo
from kaayko_exp.errors import KaaykoError
from kaayko_exp.runs.discover import find_runs, is_run_dir
from kaayko_exp.runs.rundir import MANIFEST, RunDir, shown
from kaayko_exp.runs.sweeps import SWEEP_FILE

#: Optuna trial state -> the status shown for a trial that has no run directory
TRIAL_STATUS = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                "WAITING": "waiting"}


class CompareError(KaaykoError):
    """Inputs that give nothing to compare, or an option that does not fit them."""

    kind = "compare error"


@dataclass
class Collection:
    records: list[RunRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path as shown, reason)


def collect(inputs: Iterable[str]) -> Collection:
    """Records for every run named by ``inputs``, in input order (each run once)."""
    out = Collection()
    seen: set[Path] = set()
    for text in inputs:
        paths = [Path(text)]
        if not paths[0].exists() and glob.has_magic(text):
            paths = [Path(p) for p in sorted(glob.glob(text, recursive=True))]
            if not paths:
                out.skipped.append((text, "the pattern matches nothing"))
                continue
        for path in paths:
            if len(paths) > 1 and _inside_run(path):  # a glob's match inside a run: part of that run
                continue
            _collect_path(path, out, seen)
    return out


def _inside_run(path: Path) -> bool:
    """``path`` lies inside a run directory (``<run>/checkpoints``, ``<run>/model/…``)."""
    return any(is_run_dir(parent) for parent in path.resolve().parents)


def _collect_path(path: Path, out: Collection, seen: set[Path]) -> None:
    if not path.exists():
        out.skipped.append((str(path), "does not exist"))
        return
    if not path.is_dir():
        out.skipped.append((shown(path), "is a file, not a run or sweep directory"))
        return
    if path.resolve() in seen:  # met before, through a folder above it or another pattern
        return
    if (path / MANIFEST).exists():
        _add(read_run(path), out, seen)
        return
    if (path / SWEEP_FILE).exists():
        seen.add(path.resolve())
        _collect_sweep(path, out, seen)
        return
    if (path / ".hydra").is_dir():
        out.skipped.append((shown(path), f"has .hydra/ but no {MANIFEST}: the run died before its first stage"))
        return
    runs = find_runs([path])
    if not runs:
        out.skipped.append((shown(path), f"is not a run or sweep directory (no {MANIFEST} in it or below it)"))
        return
    sweeps: set[Path] = set()
    for run in runs:
        parent = run.parent
        if (parent / SWEEP_FILE).exists():  # a sweep below: with its trials
            if parent not in sweeps and parent.resolve() not in seen:
                sweeps.add(parent)
                seen.add(parent.resolve())
                _collect_sweep(parent, out, seen)
        else:
            _collect_path(run, out, seen)


def _add(result: RunRecord | tuple[str, str], out: Collection, seen: set[Path]) -> None:
    if isinstance(result, tuple):
        out.skipped.append(result)
    elif result.path not in seen:
        seen.add(result.path)
        out.records.append(result)


def _collect_sweep(sweep: Path, out: Collection, seen: set[Path]) -> None:
    trials, problem = read_trials(sweep)
    if problem:
        out.skipped.append((shown(sweep / SWEEP_FILE), problem))
    listed: set[Path] = set()
    # A trial re-queued after its worker died runs again in the job folder of the trial it repeats (the folder
    # is named by job number, which is the trial number except for such a re-run): the latest trial owns it.
    latest = {row["run_dir"]: row["number"] for row in sorted(trials, key=lambda r: r["number"]) if row["run_dir"]}
    for row in trials:
        folder = (sweep / row["run_dir"]).resolve() if row["run_dir"] else None
        owner = latest.get(row["run_dir"]) if row["run_dir"] else None
        info = TrialInfo(sweep_dir=sweep.resolve(), number=row["number"], state=row["state"], values=row["values"],
                         pareto=row["pareto"])
        repeats = f"re-run of trial {row['run_dir']} in its folder" if folder is not None and \
            row["run_dir"] != str(row["number"]) else None
        if folder is not None and owner == row["number"] and (folder / MANIFEST).exists():
            listed.add(folder)
            rec = read_run(folder)
            if isinstance(rec, RunRecord):
                rec.trial = info
                rec.note = rec.note or repeats
            _add(rec, out, seen)
            continue
        status = TRIAL_STATUS.get(row["state"], row["state"].lower() or "unknown")
        if folder is None:
            note = "the sweep records no job folder for this trial"
        elif owner != row["number"]:
            note = f"its folder {shown(folder)} now holds trial {owner}, which re-ran it"
        elif folder.is_dir():
            note = f"its folder {shown(folder)} has no {MANIFEST}"
        else:
            note = f"its job folder {row['run_dir']} was never created (the trial ended before its job started)"
        # a row for the trial itself: its real folder, or the sweep directory when it has none; never a made-up name
        path = folder if folder is not None and folder.is_dir() else sweep.resolve()
        out.records.append(RunRecord(path=path, shown=shown(path), status=status, trial=info, params=row["params"],
                                     note=note))
    for run in sorted(p for p in sweep.iterdir() if p.is_dir() and (p / MANIFEST).exists()):
        if run.resolve() not in listed:  # a run of the sweep the trial table does not (yet) list
            _add(read_run(run), out, seen)


def read_trials(sweep: Path) -> tuple[list[dict[str, Any]], Optional[str]]:
    """The sweeper's trials from ``sweep.json`` (read by :func:`kaayko_exp.runs.sweeps.read_sweep`):
    ``[{"number", "state", "values", "params", "run_dir", "pareto"}]`` and a problem (None when it reads cleanly)."""
    from kaayko_exp.runs.sweeps import pareto_front, read_sweep

    if not (sweep / SWEEP_FILE).exists():
        return [], None
    try:
        data = read_sweep(sweep)
        trials = data.get("trials") or []
        front = {t.get("number") for t in pareto_front(data)}
        rows = [{"number": int(t["number"]), "state": str(t.get("state") or "").upper(),
                 "values": t.get("values"), "params": dict(t.get("params") or {}),
                 "run_dir": str(t.get("run_dir") or ""), "pareto": t["number"] in front} for t in trials]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return [], f"cannot be read ({type(exc).__name__}: {exc})"
    return rows, None


# ---------------------------------------------------------------------------- one run
def read_run(path: Path) -> RunRecord | tuple[str, str]:
    """The record of one run directory, or ``(shown path, reason)`` when it is damaged or foreign."""
    from kaayko_exp.evaluation.report import REPORT_JSON, ReportError, read_report

    path = path.resolve()
    where = shown(path)
    try:
        manifest = RunDir.open(path).manifest  # the run directory's own checks: kind, schema version, fields
    except KaaykoError as exc:
        return where, str(exc)
    status = str(manifest.get("status") or "unknown")
    report = None
    if (path / REPORT_JSON).exists():
        try:
            report = read_report(path / REPORT_JSON)
        except ReportError as exc:
            return where, str(exc)
    elif status == "completed":
        return where, f"the manifest says completed but {REPORT_JSON} is missing"
    cfg = _config(path) or (report.config if report else {})
    config_block = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    choices = {str(k): str(v) for k, v in (config_block.get("choices") or (report.choices if report else {})).items()}
    rec = RunRecord(path=path, shown=where, status=status, run_id=manifest.get("run_id"), choices=choices,
                    params=flatten(cfg), model=_get(cfg, "model.name") or choices.get("model"))
    if report is not None:
        rec.metrics = dict(report.metrics)
        rec.val_metrics = dict(report.val_metrics)
        rec.cv_mean, rec.cv_std = dict(report.cv_mean), dict(report.cv_std)
        rec.objective = report.objective
        rec.train_seconds = report.total_seconds
        rec.rows = report.train_rows
        rec.test_set = report.test_set
    else:
        rec.note = f"no {REPORT_JSON} (run {status})"
        stages = manifest.get("stages") if isinstance(manifest.get("stages"), dict) else {}
        secs = [float(s["seconds"]) for s in stages.values() if isinstance(s, dict)
                and isinstance(s.get("seconds"), (int, float))]
        rec.train_seconds = round(sum(secs), 4) if secs else None
        sizes = ((stages.get("split") or {}).get("detail") or {}).get("sizes") or {}
        rec.rows = sizes.get("train") if isinstance(sizes.get("train"), int) else None
    return rec


def _config(path: Path) -> dict[str, Any]:
    """The saved, resolved config of a run (``.hydra/config.yaml``), or {} when absent or unreadable."""
    cfg_path = path / ".hydra" / "config.yaml"
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        if "${" in text:  # interpolations: let OmegaConf resolve them (slow path, rare)
            from omegaconf import OmegaConf

            doc = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
        else:
            import yaml

            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except Exception:  # noqa: BLE001 - any parse or resolution failure: fall back to the report's config
        return {}
    return doc if isinstance(doc, dict) else {}


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values (shown as JSON)."""
    out: dict[str, Any] = {}
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = v
    return out


def _get(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
