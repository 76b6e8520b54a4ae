"""What ``logger=mlflow`` costs: a run and a sweep with and without it, and the ``--help`` start-up path.

Usage: python bench/bench_tracking.py [--quick] [--repeats N] [--trials N] [--json PATH]

Every command runs as a child process of ``train.py`` in a temporary project root (the cwd), so the default
tracking URI ``sqlite:///outputs/mlflow.db`` is a SQLite file there, created by an untimed first run. Runs: ``sample_size=medium`` XGBoost, ``logger=none`` and ``logger=mlflow`` interleaved (each repeat
alternates which goes first), median wall time of each, the difference as seconds and as a share of the
plain run. Sweep: ``-m hparams_search=xgboost hydra.sweeper.n_trials=N`` at ``sample_size=medium`` with and
without the logger; the difference per trial. Start-up: the import time of ``kaayko_exp.tracking`` and
``mlflow`` modules on ``train.py --help`` and ``train.py --cfg job logger=mlflow`` from ``python -X importtime``
(goal: none). Goal for runs and trials: at most 3 % extra wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL_SHARE = 0.03
RUN = ["sample_size=medium", "model=xgboost"]


def run_once(project: Path, logger: str, args: list[str], n: int, *, sweep: bool = False) -> float:
    where = f"hydra.sweep.dir=outputs/multirun/{logger}{n}" if sweep else f"hydra.run.dir=outputs/{logger}{n}"
    cmd = common.python(str(common.ROOT / "train.py"), *(["-m"] if sweep else []), *args,
                        f"logger={logger}", f"cache_dir={common.ROOT / 'outputs' / '.cache'}", where)
    res = common.measure(cmd, cwd=project)
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {res['rc']}):\n{res['tail']}")
    if logger == "mlflow" and "MLflow logger" in res["tail"]:
        raise SystemExit(f"the tracker reported a fault:\n{res['tail']}")
    return res["seconds"], res["cpu_seconds"]


def paired(project: Path, args: list[str], repeats: int, *, sweep: bool = False) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds with each logger, the loggers interleaved."""
    times: dict[str, list[tuple[float, float]]] = {"none": [], "mlflow": []}
    for i in range(repeats):
        for logger in (("none", "mlflow") if i % 2 == 0 else ("mlflow", "none")):
            times[logger].append(run_once(project, logger, args, i + 1, sweep=sweep))
    return {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}


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
        for logger in ("none", "mlflow"):
            run_once(project, logger, base, 0)
        run = paired(project, base, repeats)
        sweep = paired(project, [*base, "hparams_search=xgboost", f"hydra.sweeper.n_trials={trials}"], 1, sweep=True)
    rows, notes = [], []

    def row(what: str, n: int, none: tuple[float, float], mlflow: tuple[float, float]) -> list[str]:
        wall, cpu = (mlflow[0] - none[0]) / n, (mlflow[1] - none[1]) / n
        share = wall / (none[0] / n)
        return [what, f"{none[0] / n:.2f}", f"{mlflow[0] / n:.2f}", f"{wall:+.2f}", f"{share * 100:+.1f} %",
                f"{none[1] / n:.2f} → {mlflow[1] / n:.2f} ({cpu / (none[1] / n) * 100:+.1f} %)",
                common.goal(share <= GOAL_SHARE)]

    rows.append(row(f"one run ({' '.join(base)})", 1, run["none"], run["mlflow"]))
    rows.append(row(f"sweep of {trials} trials (hparams_search=xgboost), per trial", trials, sweep["none"],
                    sweep["mlflow"]))
    for label, cmd in (("train.py --help", ["--help"]), ("train.py --cfg job logger=mlflow",
                                                         ["--cfg", "job", "logger=mlflow"])):
        ms, names = import_ms(cmd)
        rows.append([f"{label}: import of kaayko_exp.tracking / mlflow", "", "", f"{ms / 1000:+.3f}", "",
                     ", ".join(names) or "none imported", common.goal(not any(n.startswith("mlflow") for n in names))])
    notes.append(f"Runs: median of {repeats} interleaved pairs; sweep: one of each. The tracker's calls run in a "
                 "tracker process of its own, started when the config is checked and paused during the fit; a run waits "
                 "for it only at its end (report, manifest and model upload). CPU s: the command's user + system "
                 "time, the tracker process's included, which other load on a shared machine disturbs far less than "
                 f"the wall time. Load average at the end: {os.getloadavg()[0]:.1f}.")
    section = common.section(
        "MLflow logger overhead",
        ["what", "logger=none s", "logger=mlflow s", "extra s", "extra share", "CPU s (extra)",
         "goal ≤ 3 % (start-up: no mlflow)"],
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
