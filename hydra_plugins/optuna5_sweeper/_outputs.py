"""What a sweep leaves in its sweep directory, each file rewritten atomically after every trial.

sweep.json (trials -> run dirs), trials.csv, optimization_results.yaml, sweep_report.md; plots/ at the end.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, rename over ``path``, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def trial_row(frozen: Any, sweep_dir: Path) -> Dict[str, Any]:
    job_num = frozen.user_attrs.get("job_num", frozen.number)
    duration = frozen.duration.total_seconds() if frozen.duration is not None else None
    return {
        "number": frozen.number,
        "job_num": job_num,
        "state": frozen.state.name,
        "values": [_num(v) for v in frozen.values] if frozen.values is not None else None,
        "params": {k: _num(v) for k, v in frozen.params.items()},
        "run_dir": str(job_num),
        "steps": len(frozen.intermediate_values),
        "duration_s": round(duration, 3) if duration is not None else None,
    }


def write_sweep_json(sweep_dir: Path, storage: str, study_name: str, directions: Sequence[str], n_trials: int,
                     rows: List[Dict[str, Any]]) -> None:
    doc = {"kind": "optuna-sweep", "schema_version": SCHEMA_VERSION, "storage": storage, "study_name": study_name,
           "directions": list(directions), "n_trials": n_trials, "trials": rows}
    atomic_write(sweep_dir / "sweep.json", (json.dumps(doc, indent=2) + "\n").encode())


def write_trials_csv(sweep_dir: Path, rows: List[Dict[str, Any]]) -> None:
    names: List[str] = []
    for row in rows:
        names += [k for k in row["params"] if k not in names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "values", *[f"params_{n}" for n in names], "steps", "duration_s", "run_dir"])
    for row in rows:
        values = "" if row["values"] is None else ";".join(repr(v) for v in row["values"])
        w.writerow([row["number"], row["state"], values, *[row["params"].get(n, "") for n in names],
                    row["steps"], "" if row["duration_s"] is None else row["duration_s"], row["run_dir"]])
    atomic_write(sweep_dir / "trials.csv", buf.getvalue().encode())


def best_summary(study: Any, directions: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The best trial (or the Pareto front), None before the first COMPLETE trial."""
    import optuna

    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return None
    if len(directions) == 1:
        best = study.best_trial
        return {"name": study.study_name, "directions": list(directions), "best_params": dict(best.params),
                "best_value": best.value, "best_trial_number": best.number,
                "best_run_dir": str(best.user_attrs.get("job_num", best.number))}
    front = [{"number": t.number, "params": dict(t.params), "values": list(t.values),
              "run_dir": str(t.user_attrs.get("job_num", t.number))} for t in study.best_trials]
    return {"name": study.study_name, "directions": list(directions), "solutions": front}


def write_results_yaml(sweep_dir: Path, summary: Optional[Dict[str, Any]]) -> None:
    from omegaconf import OmegaConf

    if summary is None:
        return
    text = OmegaConf.to_yaml(OmegaConf.create(summary))
    atomic_write(sweep_dir / "optimization_results.yaml", text.encode())


def write_report(sweep_dir: Path, study_name: str, directions: Sequence[str], n_trials: int,
                 rows: List[Dict[str, Any]], summary: Optional[Dict[str, Any]], plots: Sequence[str]) -> None:
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    lines = [f"# Sweep `{study_name}`", "",
             f"Directions: {', '.join(directions)}. Wanted: {n_trials} COMPLETE+PRUNED trials. "
             f"States: {', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none yet'}.", ""]
    if summary and "best_value" in summary:
        lines += [f"Best value **{summary['best_value']}** (trial {summary['best_trial_number']}, "
                  f"run dir `{summary['best_run_dir']}`), params `{summary['best_params']}`.", ""]
    elif summary:
        lines += [f"Pareto front: {len(summary['solutions'])} trial(s): "
                  f"{', '.join(str(s['number']) for s in summary['solutions'])}.", ""]
    lines += ["| trial | state | values | steps | duration (s) | run dir | params |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['number']} | {row['state']} | {row['values']} | {row['steps']} | "
                     f"{row['duration_s']} | {row['run_dir']} | {row['params']} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    atomic_write(sweep_dir / "sweep_report.md", ("\n".join(lines) + "\n").encode())


_PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "intermediate_values", "slice")


def write_plots(sweep_dir: Path, study: Any, directions: Sequence[str]) -> List[str]:
    """Optuna's matplotlib plots under plots/; a plot that cannot be drawn (too few trials) is skipped."""
    import warnings

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    written: List[str] = []
    target = None
    if len(directions) > 1:
        def target(t: Any) -> float:
            return t.values[0]
    for name in _PLOTS:
        try:
            # Optuna's experimental-API warnings, and matplotlib's "Tight layout not applied" when a plot's legend
            # (one entry per trial) is taller than the figure: drawn at savefig, and bbox_inches="tight" keeps it
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn = getattr(ovm, f"plot_{name}")
                kwargs = {} if name == "intermediate_values" or target is None else {"target": target}
                ax = fn(study, **kwargs)
                fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                buf = io.BytesIO()
                fig.savefig(buf, format="png", bbox_inches="tight")
            plt.close(fig)
            atomic_write(sweep_dir / "plots" / f"{name}.png", buf.getvalue())
            written.append(f"plots/{name}.png")
        except Exception as exc:  # too few trials, one-parameter space, no intermediate values ...
            log.info("plot %s skipped: %s", name, exc)
            plt.close("all")
    return written
