"""What ``logger=mlflow`` costs: a run and a sweep with and without it, and the ``--help`` start-up path.

Usage: python bench/bench_tracking.py [--quick] [--repeats N] [--trials N] [--json PATH]

Every command runs as a child process of ``train.py`` in a temporary project root (the cwd), so the default
tracking URI ``sqlite:///outputs/mlflow.db`` is a SQLite file there, created by an untimed first run. Runs: ``sample_size=medium`` XGBoost, ``logger=none`` and ``logger=mlflow`` interleaved (each repeat
alternates which goes first), median wall time of each, the difference as seconds and as a share of the
plain run. Sweep: ``-m hparams_search=xgboost hydra.sweeper.n_trials=N`` at ``sample_size=medium`` with and
without the logger; the difference per trial. Both also with ``logger.live_after_s=0`` (a tracker that works
beside the run from its first second instead of waiting for its end). Start-up: the import time of ``kaayko_exp.tracking`` and
``mlflow`` modules on ``train.py --help`` and ``train.py --cfg job logger=mlflow`` from ``python -X importtime``
(goal: none). Goal for runs and trials: at most 3 % extra wall time.

The tracker is a detached process that finishes its uploads after the run returns, so the command's wall and
CPU time are the run's own cost; reported apart, per ``logger=mlflow`` command: how long after its return
the tracker wrote its last record, and the tracker's CPU seconds (both from the ``tracking/state.json`` files
it writes). The bench waits for the tracker before the next command, so no measured run shares the machine
with a previous run's tracker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

sys.path.insert(0, str(common.ROOT))  # this checkout's kaayko_exp (the tracker's state files)

GOAL_SHARE = 0.03
RUN = ["sample_size=medium", "model=xgboost"]
#: the variants measured: no logger, the default logger (its tracker waits for the end of a run shorter than
#: logger.live_after_s), and a tracker live from the run's first second, working beside it
LOGGERS = {"none": ["logger=none"], "mlflow": ["logger=mlflow"],
           "mlflow_live": ["logger=mlflow", "logger.live_after_s=0"]}


def tracker_after(out: Path, returned: float) -> tuple[float, float]:
    """Wait for the tracker process(es) of run or sweep directory ``out`` to finish (the next command must not
    share the machine with them); returns (seconds from the command's return to the tracker's last record, the
    tracker processes' CPU seconds), from the ``tracking/state.json`` files they write."""
    from kaayko_exp.tracking import state

    dirs = [out, *sorted(p.parent.parent for p in out.glob(f"*/{state.FOLDER}/{state.STATE_FILE}"))]
    records = []
    for d in dirs:
        if not state.wait_idle(d, 900):
            raise SystemExit(f"the tracker of {d} did not finish within 15 minutes")
        rec = state.load(d)
        if rec:
            records.append(rec)
    if not records or not all(r.get("complete") for r in records):
        raise SystemExit(f"the tracker did not mirror {out} completely: {records}")
    cpu: dict[int, float] = {}
    for r in records:  # cumulative CPU of each tracker process at its record; the last is the largest
        cpu[r["pid"]] = max(cpu.get(r["pid"], 0.0), float(r.get("cpu_s") or 0.0))
    return max(0.0, max(float(r["at"]) for r in records) - returned), sum(cpu.values())


def run_once(project: Path, logger: str, args: list[str], n: int, *, sweep: bool = False) -> dict[str, float]:
    rel = f"outputs/multirun/{logger}{n}" if sweep else f"outputs/{logger}{n}"
    where = f"hydra.sweep.dir={rel}" if sweep else f"hydra.run.dir={rel}"
    cmd = common.python(str(common.ROOT / "train.py"), *(["-m"] if sweep else []), *args,
                        *LOGGERS[logger], f"cache_dir={common.ROOT / 'outputs' / '.cache'}", where)
    res = common.measure(cmd, cwd=project)
    returned = time.time()
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {res['rc']}):\n{res['tail']}")
    if logger != "none" and "MLflow logger" in res["tail"]:
        raise SystemExit(f"the tracker reported a fault:\n{res['tail']}")
    after, tracker_cpu = tracker_after(project / rel, returned) if logger != "none" else (0.0, 0.0)
    return {"wall": res["seconds"], "cpu": res["cpu_seconds"], "after": after, "tracker_cpu": tracker_cpu}


def paired(project: Path, args: list[str], repeats: int, *, sweep: bool = False) -> dict[str, dict[str, float]]:
    """Medians of each measure with each logger, the loggers interleaved."""
    times: dict[str, list[dict[str, float]]] = {k: [] for k in LOGGERS}
    names = list(LOGGERS)
    for i in range(repeats):
        for logger in names[i % len(names):] + names[:i % len(names)]:  # each variant goes first in turn
            times[logger].append(run_once(project, logger, args, i + 1, sweep=sweep))
    return {k: {m: statistics.median(t[m] for t in v) for m in v[0]} for k, v in times.items()}


def import_ms(args: list[str]) -> tuple[float, list[str]]:
    """Milliseconds of self import time of kaayko_exp.tracking* and mlflow* modules, and their names."""
    out = subprocess.run(common.python("-X", "importtime", "train.py", *args), cwd=common.ROOT, env=common.env(),
                         capture_output=True, text=True)
    total, names = 0.0, []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        name = parts[-1].strip()
        if name.startswith(("kaayko_exp.tracking", "mlflow")):
            total += float(parts[0].split(":")[1]) / 1000
            names.append(name)
    return total, names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sample, 1 repeat, 2 trials (shows the script works)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved pairs of runs (default 3)")
    ap.add_argument("--trials", type=int, default=None, help="trials per sweep (default 4)")
    ap.add_argument("--json", default=None, help="write the result sections here (for bench/run_all.py)")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    trials = args.trials or (2 if args.quick else 4)
    base = ["sample_size=tiny", "model=xgboost"] if args.quick else RUN
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as d:
        # one project root for every command: an untimed first run of each logger warms the dataset cache and
        # .pyc files and creates the MLflow database, as a user's first run does
        project = Path(d)
        for logger in LOGGERS:
            run_once(project, logger, base, 0)
        run = paired(project, base, repeats)
        sweep = paired(project, [*base, "hparams_search=xgboost", f"hydra.sweeper.n_trials={trials}"], 1, sweep=True)
    rows, notes = [], []

    def row(what: str, n: int, none: dict[str, float], mlflow: dict[str, float]) -> list[str]:
        wall, cpu = (mlflow["wall"] - none["wall"]) / n, (mlflow["cpu"] - none["cpu"]) / n
        share = wall / (none["wall"] / n)
        return [what, f"{none['wall'] / n:.2f}", f"{mlflow['wall'] / n:.2f}", f"{wall:+.2f}", f"{share * 100:+.1f} %",
                f"{none['cpu'] / n:.2f} → {mlflow['cpu'] / n:.2f} ({cpu / (none['cpu'] / n) * 100:+.1f} %)",
                f"{mlflow['after']:.2f} (all {n})" if n > 1 else f"{mlflow['after']:.2f}",
                f"{mlflow['tracker_cpu'] / n:.2f}", common.goal(share <= GOAL_SHARE)]

    rows.append(row(f"one run ({' '.join(base)})", 1, run["none"], run["mlflow"]))
    rows.append(row(f"sweep of {trials} trials (hparams_search=xgboost), per trial", trials, sweep["none"],
                    sweep["mlflow"]))
    rows.append(row("one run, logger.live_after_s=0 (tracker working beside the run)", 1, run["none"],
                    run["mlflow_live"]))
    rows.append(row(f"sweep of {trials} trials, logger.live_after_s=0, per trial", trials, sweep["none"],
                    sweep["mlflow_live"]))
    for label, cmd in (("train.py --help", ["--help"]), ("train.py --cfg job logger=mlflow",
                                                         ["--cfg", "job", "logger=mlflow"])):
        ms, names = import_ms(cmd)
        rows.append([f"{label}: import of kaayko_exp.tracking / mlflow", "", "", f"{ms / 1000:+.3f}", "",
                     ", ".join(names) or "none imported", "", "", common.goal(not any(n.startswith("mlflow") for n in names))])
    notes.append(f"Runs: median of {repeats} interleaved rounds of the three variants; sweep: one of each. The "
                 "tracker's calls run in a detached tracker process, started when the config is checked (a sweep: "
                 "once, shared by its trials), which begins its work logger.live_after_s (default 60 s) later or when "
                 "the run (the sweep) ends, if sooner, and then runs at the lowest CPU priority (SCHED_IDLE); the run "
                 "queues its uploads and never waits for them. CPU s: "
                 "the command's own user + system time (the detached tracker's is not in it). 'tracker done after "
                 "return': seconds from the command's return to the tracker's last record (its final metrics, "
                 "artifacts, model export; a sweep: the parent run's end); 'tracker CPU': its process's CPU seconds "
                 "per run / trial, from its tracking/state.json. The bench waits for the tracker before the next "
                 f"command. Load average at the end: {os.getloadavg()[0]:.1f}.")
    section = common.section(
        "MLflow logger overhead",
        ["what", "logger=none s", "logger=mlflow s", "extra s", "extra share", "CPU s (extra)",
         "tracker done after return s", "tracker CPU s", "goal ≤ 3 % (start-up: no mlflow)"],
        rows,
        intro=("`python bench/bench_tracking.py`: `train.py` with `logger=none` and `logger=mlflow` (default URI "
               "`sqlite:///outputs/mlflow.db`, created by an untimed first run) in a temporary project root, as child "
               "processes; start-up imports from `python -X importtime`."),
        notes=notes)
    for r in rows:
        print(" | ".join(str(c) for c in r))
    for n in notes:
        print("note:", n)
    common.write_results(args.json, [section])


if __name__ == "__main__":
    main()
