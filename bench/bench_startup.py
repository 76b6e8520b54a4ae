"""Start-up: ``train.py --help`` / ``--cfg job`` and ``predict.py --help`` against a minimal Hydra app.

Usage: python bench/bench_startup.py [--quick] [--repeats N] [--json PATH]

The minimal app is a ``@hydra.main`` that does nothing, over the same ``conf/`` tree (it registers the same
config schemas, which ``conf/train.yaml`` and ``conf/predict.yaml`` start from). Every command runs as a child
process, the cases interleaved (each repeat rotates their order), and the table shows the median wall time of
each and the ratio entry point / minimal app. A separate ``python -X importtime`` run of each command lists the
heavy libraries it imported. Goal: ratio ≤ 1.2 and no ML library on these paths.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

#: top-level packages that must stay off the start-up path (ML, data and plotting libraries)
HEAVY = ("xgboost", "sklearn", "scipy", "numpy", "pandas", "pyarrow", "optuna", "matplotlib", "skops", "joblib",
         "threadpoolctl", "sqlalchemy", "waitress", "polars", "torch")
GOAL_RATIO = 1.2

MINIMAL_APP = '''import hydra

import kaayko_exp.config  # noqa: F401  (the schemas conf/{config}.yaml starts from)


@hydra.main(version_base="1.3", config_path={conf!r}, config_name={config!r})
def main(cfg) -> None:
    pass


if __name__ == "__main__":
    main()
'''


def heavy_imports(cmd: list[str]) -> list[str]:
    """Top-level packages in ``HEAVY`` that ``cmd`` (a python command) imports, from ``-X importtime``."""
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=common.ROOT, env=common.env(),
                         capture_output=True, text=True)
    found = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip().split(".")[0]
            if name in HEAVY:
                found.add(name)
    return sorted(found)


def cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(label, command, label of its minimal-app baseline or '' for a baseline)."""
    apps = {}
    for config in ("train", "predict"):
        path = tmp / f"minimal_{config}.py"
        path.write_text(MINIMAL_APP.format(conf=str(common.ROOT / "conf"), config=config), encoding="utf-8")
        apps[config] = str(path)
    return [
        ("minimal app (train conf) --help", common.python(apps["train"], "--help"), ""),
        ("train.py --help", common.python("train.py", "--help"), "minimal app (train conf) --help"),
        ("minimal app (train conf) --cfg job", common.python(apps["train"], "--cfg", "job"), ""),
        ("train.py --cfg job", common.python("train.py", "--cfg", "job"), "minimal app (train conf) --cfg job"),
        ("minimal app (predict conf) --help", common.python(apps["predict"], "--help"), ""),
        ("predict.py --help", common.python("predict.py", "--help"), "minimal app (predict conf) --help"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats (shows the script works)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats of every command (default 11)")
    ap.add_argument("--json", default=None, help="write the result sections here (for bench/run_all.py)")
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 11)
    with tempfile.TemporaryDirectory() as d:
        todo = cases(Path(d))
        times: dict[str, list[float]] = {label: [] for label, _, _ in todo}
        for label, cmd, _ in todo:  # warm the file cache and .pyc files once, untimed
            common.measure(cmd)
        for i in range(repeats):
            shift = i % len(todo)
            for label, cmd, _ in todo[shift:] + todo[:shift]:
                res = common.measure(cmd)
                if res["rc"] != 0:
                    raise SystemExit(f"{label} failed (exit {res['rc']}):\n{res['tail']}")
                times[label].append(res["seconds"])
        heavy = {label: heavy_imports(cmd) for label, cmd, _ in todo}
    med = {label: statistics.median(t) for label, t in times.items()}
    rows, notes = [], []
    for label, _, base in todo:
        if not base:
            continue
        ratio = med[label] / med[base]
        ok = ratio <= GOAL_RATIO and not heavy[label]
        rows.append([label, f"{med[label]:.3f}", f"{med[base]:.3f}", f"{ratio:.2f}",
                     ", ".join(heavy[label]) or "none", common.goal(ok)])
        if ratio > GOAL_RATIO:
            notes.append(f"{label}: {ratio:.2f}× the minimal app, over the {GOAL_RATIO}× goal by "
                         f"{(ratio / GOAL_RATIO - 1) * 100:.0f} %.")
        if heavy[label]:
            notes.append(f"{label} imports {', '.join(heavy[label])}.")
    baseline_heavy = sorted({m for label, _, base in todo if not base for m in heavy[label]})
    if baseline_heavy:
        notes.append(f"The minimal apps themselves import {', '.join(baseline_heavy)} (Hydra plugin discovery).")
    notes.append(f"Median of {repeats} interleaved runs each; a busy shared machine blurs single runs, not ratios.")
    section = common.section(
        "Start-up", ["command", "median s", "minimal app s", "ratio", "ML libraries imported", "goal ≤ 1.2×"],
        rows,
        intro=("`python bench/bench_startup.py`: each entry point against a `@hydra.main` that does nothing over "
               "the same `conf/` tree, as child processes, interleaved; heavy imports from `python -X importtime`."),
        notes=notes)
    print(f"{'command':36} {'median s':>9} {'minimal s':>10} {'ratio':>6}  heavy imports  goal")
    for r in rows:
        print(f"{r[0]:36} {r[1]:>9} {r[2]:>10} {r[3]:>6}  {r[4]:13}  {r[5]}")
    for n in notes:
        print("note:", n)
    common.write_results(args.json, [section])


if __name__ == "__main__":
    main()
