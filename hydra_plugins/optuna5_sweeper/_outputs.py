"""What a sweep leaves in its sweep directory, each file rewritten atomically after every trial (on a thread of its
own during the sweep; the last write, after the loop, in the sweep's thread).

sweep.json (trials -> run dirs), trials.csv, optimization_results.yaml, sweep_report.md; plots/ at the end.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra_plugins.optuna5_sweeper._study import hide_password

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, rename over ``path``, fsync the directory.

    The file gets the mode the umask gives an ordinary file (readable by others under umask 022)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # exclusive creation like tempfile.mkstemp, but with 0666 less the umask rather than 0600
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
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


RUN_AT_ATTR = "run_at"  # user attr of a trial: {"host", "sweep_dir"} of the worker that launched its job


def run_at(sweep_dir: Path) -> Dict[str, str]:
    """Where this worker runs its jobs: host name and absolute sweep directory (a fresh dict)."""
    return dict(_run_at(str(sweep_dir), os.getcwd()))


@functools.lru_cache(maxsize=8)
def _run_at(sweep_dir: str, cwd: str) -> tuple:  # once per sweep directory, not once per trial row and render
    return ("host", socket.gethostname()), ("sweep_dir", str(Path(sweep_dir).resolve()))


def run_location(frozen: Any, sweep_dir: Path) -> tuple:
    """(run_dir, host) of a trial's job: its job number relative to ``sweep_dir`` when this worker's sweep
    directory on this host holds it, else the absolute directory on the host that ran it."""
    job_num = frozen.user_attrs.get("job_num", frozen.number)
    where = frozen.user_attrs.get(RUN_AT_ATTR)
    here = run_at(sweep_dir)
    if not isinstance(where, dict) or where == here:
        return str(job_num), here["host"]
    return str(Path(str(where.get("sweep_dir"))) / str(job_num)), str(where.get("host"))


def trial_row(frozen: Any, sweep_dir: Path) -> Dict[str, Any]:
    job_num = frozen.user_attrs.get("job_num", frozen.number)
    duration = frozen.duration.total_seconds() if frozen.duration is not None else None
    run_dir, host = run_location(frozen, sweep_dir)
    return {
        "number": frozen.number,
        "job_num": job_num,
        "state": frozen.state.name,
        "values": [_num(v) for v in frozen.values] if frozen.values is not None else None,
        "params": {k: _num(v) for k, v in frozen.params.items()},
        "run_dir": run_dir,
        "host": host,
        "steps": len(frozen.intermediate_values),
        "duration_s": round(duration, 3) if duration is not None else None,
        "failure": frozen.system_attrs.get("failure") if frozen.state.name == "FAIL" else None,
    }


def _sweep_json(storage: str, study_name: str, directions: Sequence[str], n_trials: int,
                rows: List[Dict[str, Any]]) -> bytes:
    doc = {"kind": "optuna-sweep", "schema_version": SCHEMA_VERSION, "storage": hide_password(storage),
           "study_name": study_name, "host": socket.gethostname(), "directions": list(directions),
           "n_trials": n_trials, "trials": rows}
    return (json.dumps(doc, indent=2) + "\n").encode()


def _trials_csv(rows: List[Dict[str, Any]]) -> bytes:
    names: List[str] = []
    for row in rows:
        names += [k for k in row["params"] if k not in names]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "values", *[f"params_{n}" for n in names], "steps", "duration_s", "run_dir",
                "failure"])
    for row in rows:
        values = "" if row["values"] is None else ";".join(repr(v) for v in row["values"])
        w.writerow([row["number"], row["state"], values, *[row["params"].get(n, "") for n in names],
                    row["steps"], "" if row["duration_s"] is None else row["duration_s"], row["run_dir"],
                    row["failure"] or ""])
    return buf.getvalue().encode()


def _dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[int]) -> bool:
    pairs = [(s * x, s * y) for x, y, s in zip(a, b, signs)]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def summary_of(trials: Sequence[Any], study_name: str, directions: Sequence[str],
               sweep_dir: Path) -> Optional[Dict[str, Any]]:
    """The best trial (or the Pareto front) of a snapshot of the study's trials, None before the first COMPLETE."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None]
    if not done:
        return None
    signs = [1 if d == "minimize" else -1 for d in directions]
    if len(directions) == 1:
        best = min(done, key=lambda t: (signs[0] * t.values[0], t.number))
        run_dir, host = run_location(best, sweep_dir)
        return {"name": study_name, "directions": list(directions), "best_params": dict(best.params),
                "best_value": best.values[0], "best_trial_number": best.number, "best_run_dir": run_dir,
                "best_run_host": host}
    front = [t for t in done if not any(_dominates(o.values, t.values, signs) for o in done)]
    solutions = []
    for t in front:
        run_dir, host = run_location(t, sweep_dir)
        solutions.append({"number": t.number, "params": dict(t.params), "values": list(t.values),
                          "run_dir": run_dir, "host": host})
    return {"name": study_name, "directions": list(directions), "solutions": solutions}


def best_summary(study: Any, directions: Sequence[str], sweep_dir: Path) -> Optional[Dict[str, Any]]:
    return summary_of(study.get_trials(deepcopy=False), study.study_name, directions, sweep_dir)


def _results_yaml(summary: Dict[str, Any]) -> bytes:
    from hydra_plugins.optuna5_sweeper import _yaml

    return _yaml.dump(summary).encode()


def _report(study_name: str, directions: Sequence[str], n_trials: int, rows: List[Dict[str, Any]],
            summary: Optional[Dict[str, Any]], plots: Sequence[str]) -> bytes:
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    lines = [f"# Sweep `{study_name}`", "",
             f"Directions: {', '.join(directions)}. Wanted: {n_trials} COMPLETE+PRUNED trials. "
             f"States: {', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none yet'}.", ""]
    if summary and "best_value" in summary:
        lines += [f"Best value **{summary['best_value']}** (trial {summary['best_trial_number']}, "
                  f"run dir `{summary['best_run_dir']}` on {summary['best_run_host']}), "
                  f"params `{summary['best_params']}`.", ""]
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
    return ("\n".join(lines) + "\n").encode()


OUTPUT_FILES = ("sweep.json", "trials.csv", "optimization_results.yaml", "sweep_report.md")


def render_outputs(sweep_dir: Path, storage: str, study_name: str, directions: Sequence[str], n_trials: int,
                   trials: Sequence[Any], plots: Sequence[str] = ()) -> Tuple[Dict[str, bytes], Optional[dict]]:
    """The four sweep files' contents (name -> bytes) from ONE snapshot of the study's trials, so they always
    describe the same trials, and the snapshot's best summary."""
    rows = [trial_row(t, sweep_dir) for t in trials if t.state.name != "WAITING"]
    summary = summary_of(trials, study_name, directions, sweep_dir)
    files = {"sweep.json": _sweep_json(storage, study_name, directions, n_trials, rows),
             "trials.csv": _trials_csv(rows),
             "sweep_report.md": _report(study_name, directions, n_trials, rows, summary, plots)}
    if summary is not None:
        files["optimization_results.yaml"] = _results_yaml(summary)
    return files, summary


def write_files(sweep_dir: Path, files: Dict[str, bytes]) -> None:
    """Replace each of ``files`` (rendered together by render_outputs) atomically."""
    for name, data in files.items():
        atomic_write(sweep_dir / name, data)


class BackgroundWriter:
    """Writes rendered sweep files on a thread of its own, so a trial's files (fsync'd, ~50 ms) do not hold up
    the next trial. Only the newest pending set is written: one submitted while another waits replaces it
    (both are whole snapshots, the newer describes more). ``close()`` writes what is pending and stops."""

    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = sweep_dir
        self._pending: Optional[Dict[str, bytes]] = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="optuna5-sweep-outputs", daemon=True)
        self._thread.start()

    def submit(self, files: Dict[str, bytes]) -> None:
        with self._cond:
            self._pending = files
            self._cond.notify_all()

    def close(self) -> None:
        """Write what is pending, then stop the thread (afterwards writes are the caller's, in its thread)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                files, self._pending = self._pending, None
                if files is None:
                    return
            try:
                write_files(self.sweep_dir, files)
            except OSError as exc:
                log.warning("sweep outputs not written: %s", exc)


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
