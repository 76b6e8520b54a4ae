"""Sweep directories for ``python -m kaayko_exp.runs list``: progress and best trial, read from ``sweep.json``.

The Optuna sweeper rewrites ``<sweep dir>/sweep.json`` after every trial (kind ``optuna-sweep``,
``schema_version`` 1): the study's directions, the wanted ``n_trials`` and each trial's number, state,
values and run directory (relative to the sweep dir, or absolute with its ``host`` when another worker of
the same study, with its own sweep directory, ran it). A trial's test metrics come from its run's
``report.json``: the objective is a validation or CV metric, the held-out test set is only reported.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

SWEEP_FILE = "sweep.json"
SWEEP_KIND = "optuna-sweep"
DONE_STATES = ("COMPLETE", "PRUNED")  # count toward n_trials


def find_sweeps(roots: Iterable[str | os.PathLike]) -> list[Path]:
    """Directories at or below ``roots`` holding a ``sweep.json`` (dot-folders skipped), sorted."""
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if SWEEP_FILE in filenames:
                found.append(Path(dirpath))
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(set(found))


def read_sweep(path: Path) -> dict[str, Any]:
    data = json.loads((Path(path) / SWEEP_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != SWEEP_KIND:
        raise ValueError(f"not an {SWEEP_KIND} manifest")
    return data


def best_trial(data: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The best COMPLETE trial of a single-objective sweep (``None`` for several directions or none done)."""
    directions = [str(d).lower() for d in data.get("directions") or ["minimize"]]
    if len(directions) != 1:
        return None
    done = [t for t in data.get("trials") or [] if t.get("state") == "COMPLETE" and t.get("values")
            and isinstance(t["values"][0], (int, float)) and math.isfinite(t["values"][0])]
    if not done:
        return None
    pick = max if directions[0] == "maximize" else min
    return pick(done, key=lambda t: t["values"][0])


def pareto_front(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The COMPLETE trials of a multi-objective sweep that no other COMPLETE trial dominates (at least as good
    in every direction and better in one), in trial order; empty for a single direction."""
    directions = [str(d).lower() for d in data.get("directions") or ["minimize"]]
    if len(directions) < 2:
        return []
    sign = [-1.0 if d == "maximize" else 1.0 for d in directions]  # every objective as "lower is better"
    done = []
    for t in data.get("trials") or []:
        vals = t.get("values") or []
        if t.get("state") == "COMPLETE" and len(vals) == len(sign) and all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            done.append((t, [s * float(v) for s, v in zip(sign, vals)]))

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [t for t, v in done if not any(dominates(w, v) for _, w in done)]


def trial_report(sweep_dir: Path, trial: dict[str, Any]) -> Optional[dict[str, Any]]:
    run_dir = trial.get("run_dir")
    if run_dir is None:
        return None
    try:
        return json.loads((Path(sweep_dir) / str(run_dir) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_location(trial: dict[str, Any]) -> str:
    """Where a trial's run lives when another worker of the study ran it: `` in <dir>`` on this host,
    `` on <host>:<dir>`` elsewhere; empty for a run inside this sweep directory."""
    run_dir, host = str(trial.get("run_dir", "")), trial.get("host")
    if host and host != socket.gethostname():
        return f" on {host}:{run_dir}"
    return f" in {run_dir}" if Path(run_dir).is_absolute() else ""


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "?"
    return f"{f:.4f}" if math.isfinite(f) else "nan"


SWEEP_HEADER = f"{'SWEEP':<12} {'PROGRESS':<40} {'BEST (VALIDATION)':<30} {'ITS TEST METRICS':<34} PATH"


def sweep_line(path: Path) -> str:
    """``sweep  k/n done (states)  best <objective>=v (trial t)  test rmse … mae …  path``."""
    try:
        data = read_sweep(path)
    except (OSError, ValueError) as exc:
        return f"{'damaged':<12} {SWEEP_FILE} unreadable ({exc})  {path}"
    trials = data.get("trials") or []
    states = Counter(str(t.get("state")) for t in trials)
    done = sum(states[s] for s in DONE_STATES)
    wanted = data.get("n_trials")
    detail = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    progress = f"{done}/{wanted if wanted is not None else '?'} done" + (f" ({detail})" if detail else "")
    best, best_text, test_text = best_trial(data), "-", "-"
    if best is not None:
        report = trial_report(path, best) or {}
        name = (report.get("objective") or {}).get("name", "value")
        best_text = f"{name}={_num(best['values'][0])} (trial {best.get('number')}{run_location(best)})"
        m = report.get("metrics") or {}
        if m:
            test_text = f"rmse {_num(m.get('rmse'))} mae {_num(m.get('mae'))}"
    elif len(data.get("directions") or []) > 1:
        front = pareto_front(data)
        best_text = f"Pareto front of {len(front)}: trials {', '.join(str(t.get('number')) for t in front)}"
    return f"{'optuna':<12} {progress:<40} {best_text:<30} {test_text:<34} {path}"


def sweep_lines(paths: list[Path]) -> list[str]:
    return [SWEEP_HEADER, *(sweep_line(p) for p in paths)]
