"""Every model family at every sample size: wall time, peak RSS, held-out MAE and class accuracy.

Usage: python bench/bench_models.py [--quick] [--sizes small,medium,large] [--models ridge,svm,...] [--json PATH]

For each size (cache warmed first by an untimed ``model=rule`` run) and each model, runs
``python train.py model=M sample_size=S plots=false`` as a child process and reads the metrics from the run's
``report.json`` (``kaayko_exp.evaluation.report.read_report``). Wall time includes start-up, data, fit,
evaluation and the report; peak RSS is the child's own. Goal at ``large`` (~487k rows): every family under
180 s on 2 cores. When svm and large are both measured, the refused exact kernel SVR
(``model=svm model.exact=true sample_size=large``) is timed too: it must exit 2 at once, before any data work.
``--quick``: tiny only.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

sys.path.insert(0, str(common.ROOT))  # kaayko_exp (report reader) from this checkout

FAMILIES = ("rule", "ridge", "svm", "random_forest", "extra_trees", "histgb", "xgboost", "ensemble")
SIZES = ("small", "medium", "large")
GOAL_SECONDS = {"large": 180.0}


def train_cmd(model: str, size: str, run_dir: Path, cache_dir: str, extra: list[str]) -> list[str]:
    return common.python("train.py", f"model={model}", f"sample_size={size}", "plots=false",
                         f"cache_dir={cache_dir}", f"hydra.run.dir={run_dir}", *extra)


def measure_cpu(cmd: list[str], **kw) -> dict:
    """:func:`common.measure` plus the child's CPU seconds (user + system; a busy machine stretches the wall
    time, hardly the CPU time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = common.measure(cmd, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def measure_run(model: str, size: str, tmp: Path, cache_dir: str, extra: list[str]) -> list:
    from kaayko_exp.evaluation.report import read_report

    run_dir = tmp / f"{model}-{size}"
    res = measure_cpu(train_cmd(model, size, run_dir, cache_dir, extra), log=tmp / f"{model}-{size}.log")
    limit = GOAL_SECONDS.get(size)
    verdict = common.goal(res["rc"] == 0 and res["seconds"] < limit) if limit else ""
    if res["rc"] != 0:
        print(f"{model} at {size} failed (exit {res['rc']}):\n{res['tail'][-1500:]}", file=sys.stderr)
        return [model, size, "", f"{res['seconds']:.1f}", f"{res['cpu_seconds']:.1f}", f"{res['peak_rss_mib']:.0f}",
                "", "", f"failed (exit {res['rc']})", verdict]
    rep = read_report(run_dir)
    return [model, size, f"{rep.train_rows:,}" if rep.train_rows else "", f"{res['seconds']:.1f}",
            f"{res['cpu_seconds']:.1f}", f"{res['peak_rss_mib']:.0f}", f"{rep.metrics.get('mae', float('nan')):.4f}",
            f"{rep.metrics.get('class_accuracy', float('nan')):.3f}",
            f"{rep.timings.get('fit', float('nan')):.1f}", verdict]


def measure_refusal(tmp: Path, cache_dir: str) -> tuple[list, bool]:
    """``model=svm model.exact=true sample_size=large``: exit 2 with an explanation, no run left behind."""
    run_dir = tmp / "svm-exact-large"
    res = measure_cpu(train_cmd("svm", "large", run_dir, cache_dir, ["model.exact=true"]))
    ok = res["rc"] == 2 and "exact kernel SVR" in res["tail"] and not (run_dir / "report.json").exists()
    return (["svm (model.exact=true, refused)", "large", "", f"{res['seconds']:.1f}", f"{res['cpu_seconds']:.1f}",
             f"{res['peak_rss_mib']:.0f}",
             "", "", f"exit {res['rc']}", common.goal(ok)], ok)


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("scikit-learn", "xgboost", "numpy"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sample_size=tiny only (shows the script works)")
    ap.add_argument("--sizes", default=None, help=f"comma-separated sample sizes (default {','.join(SIZES)})")
    ap.add_argument("--models", default=",".join(FAMILIES), help="comma-separated model families (default: all)")
    ap.add_argument("--cache-dir", default="outputs/.cache", help="dataset cache (default: the project's, warm)")
    ap.add_argument("--extra", nargs="*", default=[], help="more train.py overrides for every run")
    ap.add_argument("--json", default=None, help="write the result sections here (for bench/run_all.py)")
    args = ap.parse_args()
    sizes = [s for s in (args.sizes or ("tiny" if args.quick else ",".join(SIZES))).split(",") if s]
    models = [m for m in args.models.split(",") if m]
    rows, notes = [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_models_") as d:
        tmp = Path(d)
        for size in sizes:
            warm = common.measure(train_cmd("rule", size, tmp / f"warm-{size}", args.cache_dir, args.extra))
            if warm["rc"] != 0:
                raise SystemExit(f"warming the cache for sample_size={size} failed:\n{warm['tail']}")
            for model in models:
                row = measure_run(model, size, tmp, args.cache_dir, args.extra)
                print("  ".join(str(c) for c in row), flush=True)
                rows.append(row)
        if "svm" in models and "large" in sizes:
            row, ok = measure_refusal(tmp, args.cache_dir)
            print("  ".join(str(c) for c in row), flush=True)
            rows.append(row)
            if not ok:
                notes.append("The refused exact kernel SVR did not exit 2 with its explanation: see its log.")
    missed = [f"{r[0]} ({r[3]} s wall, {r[4]} s CPU)" for r in rows if r[1] in GOAL_SECONDS and r[-1] == "MISSED"]
    if missed:
        notes.append(f"Over {GOAL_SECONDS['large']:.0f} s at large: {', '.join(missed)}.")
    notes.append(f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
                 f"{versions()}; 1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} "
                 "after (the machine is shared: wall times on a busy machine are upper bounds; CPU s, the child's "
                 "user + system time, hardly changes with the load, and CPU s / 2 bounds the wall time of the "
                 "parallel parts on an idle 2-core machine).")
    section = common.section(
        "Models at each sample size",
        ["model", "sample size", "train rows", "wall s", "CPU s", "peak RSS MiB", "test MAE", "class accuracy", "fit s",
         "goal < 180 s (large)"],
        rows,
        intro=(f"`python bench/bench_models.py --sizes {','.join(sizes)}`: `python train.py model=M sample_size=S "
               "plots=false` per cell as a child (dataset cache warm); metrics from the run's report.json "
               "(held-out lakes); wall time includes start-up, data, fit, evaluation and report."),
        notes=notes)
    for n in notes:
        print("note:", n)
    common.write_results(args.json, [section])


if __name__ == "__main__":
    main()
