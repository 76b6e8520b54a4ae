"""Rendering runs for people: one ``list`` line per run, and ``status`` (the manifest in words)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from kaayko_exp.errors import KaaykoError
from kaayko_exp.runs.discover import age_seconds, format_age
from kaayko_exp.runs.rundir import RunDir


def owner_alive(manifest: dict[str, Any]) -> bool:
    """Whether the run's recorded owner still runs (a remote owner: judged by its own heartbeat interval)."""
    owner = manifest.get("owner")
    return bool(owner) and RunDir.owner_alive(owner)


#: Manifest statuses: ``pruned`` is a sweep trial stopped by the sweep's pruner (its own outcome, not a failure).


def shown_status(manifest: dict[str, Any]) -> str:
    """The manifest status (running, completed, failed, interrupted or pruned), with ``running`` turned into ``stale`` when its owner
    process is gone."""
    status = str(manifest.get("status"))
    if status == "running" and not owner_alive(manifest):
        return "stale"
    return status


def progress(manifest: dict[str, Any]) -> str:
    """``done`` for a completed run, else the first unfinished stage (with fit progress when known)."""
    stages = manifest.get("stages") or {}
    if manifest.get("status") == "completed":
        return "done"
    for name in stages:  # manifest order is execution order
        st = stages.get(name) or {}
        if st.get("status") == "done":
            continue
        text = name if st.get("status") in (None, "pending") else f"{name} {st.get('status')}"
        if name == "fit":
            cp = latest_checkpoint(manifest)
            if cp:
                key = "" if cp["key"] == "fit" else f" {cp['key']}"
                text += f"{key} {cp['done']}/{cp['total']}"
        return text
    return "all stages done"


def latest_checkpoint(manifest: dict[str, Any]) -> Optional[dict[str, Any]]:
    cps = [c for c in manifest.get("checkpoints") or [] if isinstance(c, dict) and "done" in c]
    if not cps:
        return None
    main = [c for c in cps if c.get("key") == "fit"]
    pool = main or cps
    return max(pool, key=lambda c: (str(c.get("time", "")), int(c.get("done", 0))))


def key_metric(run_path: Path, manifest: dict[str, Any]) -> str:
    """``<objective>=<value>`` from report.json, else test RMSE, else the evaluate stage's objective."""
    report = run_path / "report.json"
    if report.is_file():
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            obj = data.get("objective") or {}
            if obj.get("value") is not None:
                return f"{obj.get('name')}={_num(obj['value'])}"
            rmse = (data.get("metrics") or {}).get("rmse")
            if rmse is not None:
                return f"test_rmse={_num(rmse)}"
        except (OSError, ValueError, AttributeError):
            return "report unreadable"
    obj = ((manifest.get("stages") or {}).get("evaluate") or {}).get("detail", {}).get("objective") or {}
    if isinstance(obj, dict) and obj.get("value") is not None:
        return f"{obj.get('name')}={_num(obj['value'])}"
    return "-"


def _num(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{v:.4f}" if math.isfinite(v) else "nan"


def sample_text(manifest: dict[str, Any]) -> str:
    choice = (manifest.get("config") or {}).get("choices", {}).get("sample_size", "?")
    rows = (manifest.get("data") or {}).get("rows")
    return f"{choice} ({rows:,} rows)" if isinstance(rows, int) else str(choice)


COLUMNS = ("STATUS", "MODEL", "SAMPLE", "PROGRESS", "METRIC", "AGE")


def list_cells(path: Path) -> tuple[str, ...] | str:
    """The ``list`` cells of a run directory (see :data:`COLUMNS`); a damaged one is ``damaged: <why>``."""
    try:
        run = RunDir.open(path)
    except KaaykoError as exc:
        return _damage_reason(path, str(exc))
    m = run.manifest
    model = (m.get("config") or {}).get("choices", {}).get("model", "?")
    return (shown_status(m), str(model), sample_text(m), progress(m), key_metric(path, m),
            format_age(age_seconds(m)))


def _table(rows: list[tuple[tuple[str, ...] | str, Path]]) -> list[str]:
    """Aligned lines: each column as wide as its widest cell (the age right-aligned), then the path."""
    cells = [c for c, _ in rows if not isinstance(c, str)]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(COLUMNS)]

    def line(values: tuple[str, ...], path: str) -> str:
        text = " ".join(v.rjust(w) if i == len(COLUMNS) - 1 else v.ljust(w)
                        for i, (v, w) in enumerate(zip(values, widths)))
        return f"{text}  {path}"

    return [line(COLUMNS, "PATH"), *(f"{c}  {p}" if isinstance(c, str) else line(c, str(p)) for c, p in rows)]


def _damage_reason(path: Path, message: str) -> str:
    if not (path / "manifest.json").exists():
        return "damaged: no manifest.json (died before its first manifest write?)"
    marker = "not a usable run directory: "
    if marker in message:
        return "damaged: " + message.split(marker, 1)[1].split(" Nothing was changed")[0]
    return "damaged: " + message.split(". ")[0]


def list_lines(paths: list[Path]) -> list[str]:
    """The header and one line per run, in :func:`~kaayko_exp.runs.discover.natural_key` order (trial ``2``
    before ``10``), every column as wide as its widest cell."""
    from kaayko_exp.runs.discover import natural_key

    return _table([(list_cells(p), p) for p in sorted(paths, key=natural_key)])


# ---------------------------------------------------------------------------- status
def status_text(run: RunDir) -> str:
    """The manifest in words: status and owner, choices, stages, checkpoints, events."""
    m = run.manifest
    lines = [f"run {m.get('run_id')}  ({run.shown})"]
    status = shown_status(m)
    owner = m.get("owner") or {}
    who = ""
    if owner:
        alive = "alive" if owner_alive(m) else "not running"
        who = (f"; owner pid {owner.get('pid')} on {owner.get('host')}, last heartbeat {owner.get('heartbeat')} "
               f"({alive})")
    lines.append(f"status: {m.get('status')}" + (" (its process is gone: resume it)" if status == "stale" else "")
                 + who)
    lines.append(f"created {m.get('created')}, updated {m.get('updated')} ({format_age(age_seconds(m))} ago)")
    cfg = m.get("config") or {}
    choices = cfg.get("choices") or {}
    lines.append("choices: " + (", ".join(f"{k}={v}" for k, v in sorted(choices.items())) or "(none)"))
    if cfg.get("overrides"):
        lines.append("overrides: " + " ".join(cfg["overrides"]))
    data = m.get("data") or {}
    if data:
        rows = data.get("rows")
        lines.append(f"data: {data.get('source')}" + (f", {rows:,} rows" if isinstance(rows, int) else "")
                     + (f", fingerprint {str(data.get('fingerprint'))[:16]}" if data.get("fingerprint") else ""))
    lines.append(f"metric: {key_metric(run.path, m)}")
    tracking = m.get("tracking") or {}
    if tracking:  # logger=mlflow: where the run is mirrored, and whether the mirror is whole
        state = "complete" if tracking.get("complete") else (
            "in progress" if m.get("status") == "running" and not tracking.get("missed") else
            "uploading after the run (or its tracker process stopped); wait for it and upload what is missing "
            f"with: python -m kaayko_exp.runs sync-tracker {run.shown} --wait"
            if tracking.get("pending") and not tracking.get("missed") else
            f"incomplete ({tracking.get('missed') or 'ended early'}); upload the rest with: "
            f"python -m kaayko_exp.runs sync-tracker {run.shown}")
        lines.append(f"tracker: {tracking.get('logger')} run {tracking.get('run_id')} at "
                     f"{tracking.get('tracking_uri')}, {state}")
    lines.append("stages:")
    for name in m.get("stages") or {}:
        st = (m.get("stages") or {}).get(name) or {}
        secs = st.get("seconds", st.get("seconds_before"))
        secs_text = f"{float(secs):8.2f} s" if secs is not None else f"{'-':>8}  "
        n = len(st.get("artifacts") or [])
        extra = _stage_extra(name, st.get("detail") or {})
        lines.append(f"  {name:<9} {str(st.get('status')):<12} {secs_text}  {n} artifact{'s' if n != 1 else ''}"
                     + (f"  {extra}" if extra else ""))
    cps = m.get("checkpoints") or []
    lines.append(f"checkpoints: {len(cps) or 'none'}")
    for c in sorted(cps, key=lambda c: (str(c.get("key")), int(c.get("done", 0)))):
        final = " final" if c.get("final") else ""
        lines.append(f"  {c.get('key'):<14} {c.get('done')}/{c.get('total')}{final}  {c.get('path')}")
    events = m.get("events") or []
    lines.append(f"events: {len(events)}")
    for ev in events:
        detail = ", ".join(f"{k}={v}" for k, v in ev.items() if k not in ("time", "event"))
        lines.append(f"  {ev.get('time')}  {ev.get('event')}" + (f"  {detail}" if detail else ""))
    hint = _next_step(run, status)
    if hint:
        lines.append(f"next: {hint}")
    return "\n".join(lines)


def _stage_extra(name: str, detail: dict[str, Any]) -> str:
    if name == "split" and detail.get("sizes"):
        return "sizes " + ", ".join(f"{k} {v:,}" for k, v in detail["sizes"].items())
    if name == "fit":
        parts = []
        if detail.get("cv_folds"):
            parts.append(f"cv folds done: {len(detail['cv_folds'])}")
        if detail.get("model_family"):
            parts.append(f"family {detail['model_family']}")
        return ", ".join(parts)
    if name == "evaluate" and isinstance(detail.get("objective"), dict):
        obj = detail["objective"]
        return f"{obj.get('name')}={_num(obj.get('value'))}"
    return ""


def _next_step(run: RunDir, status: str) -> Optional[str]:
    if status in ("interrupted", "failed", "stale"):
        return f"python train.py resume={run.shown}"
    if status == "pruned":
        return (f"the sweep's pruner stopped this trial; to train it to the end anyway: "
                f"python train.py resume={run.shown}")
    return None

