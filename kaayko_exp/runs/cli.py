"""``python -m kaayko_exp.runs``: list, inspect, clean and repair run directories.

User mistakes (a path that is not a run, a damaged manifest, a bad age) print
one paragraph and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from kaayko_exp.errors import KaaykoError, report_user_error

DEFAULT_ROOT = "outputs"
DEFAULT_CACHE = "outputs/.cache"

EPILOG = """examples:
  python -m kaayko_exp.runs list                         every run under outputs/ (sweeps included)
  python -m kaayko_exp.runs status outputs/2025-06-01/12-00-00
  python -m kaayko_exp.runs clean --older-than 7d --keep-last 5 --dry-run
  python -m kaayko_exp.runs clear-cache
  python -m kaayko_exp.runs repair outputs/2025-06-01/12-00-00   then: python train.py resume=<dir>
  python -m kaayko_exp.runs sync-tracker outputs/multirun/2025-06-01/12-00-00   upload what MLflow missed
"""


def _age(text: str) -> float:
    from kaayko_exp.runs.discover import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count; use a whole number >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kaayko_exp.runs", description="Manage kaayko-exp run directories.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="one line per run: status (running, completed, failed, interrupted, pruned, "
                                    "stale), model, sample, progress, metric, age; then sweeps: trials done/wanted, "
                                    "best validation value and its test metrics")
    p.add_argument("paths", nargs="*", type=Path, help=f"run directories or folders of runs (default {DEFAULT_ROOT}/)")

    p = sub.add_parser("status", help="the manifest in words: stages, timings, checkpoints, events")
    p.add_argument("run", type=Path, help="a run directory")

    p = sub.add_parser("clean", help="delete partial checkpoints of old completed runs (never models or reports "
                                     "unless --models)")
    p.add_argument("paths", nargs="*", type=Path, help=f"folders of runs (default {DEFAULT_ROOT}/)")
    p.add_argument("--older-than", type=_age, default=_age("7d"), metavar="AGE",
                   help="only runs that completed longer ago than this: 7d, 12h, 30m (default 7d)")
    p.add_argument("--keep-last", type=_count, default=3, metavar="N",
                   help="leave the newest N completed runs untouched (default 3)")
    p.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    p.add_argument("--models", action="store_true",
                   help="also delete final models, reports and plots: removes those runs' whole directories")

    p = sub.add_parser("clear-cache", help="delete the dataset cache entries; print the bytes freed")
    p.add_argument("--cache-dir", type=Path, default=Path(DEFAULT_CACHE), help=f"default {DEFAULT_CACHE}")
    p.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")

    p = sub.add_parser("repair", help="mark stages with missing/altered artifacts pending so a resume rebuilds them")
    p.add_argument("run", type=Path, help="a run directory")
    p.add_argument("--dry-run", action="store_true", help="report what is broken, change nothing")

    p = sub.add_parser("sync-tracker", help="upload to MLflow what a run's (or a sweep's) tracker missed "
                                            "(logger=mlflow; sends only what MLflow lacks)")
    p.add_argument("run", type=Path, help="a run directory or a sweep directory")
    p.add_argument("--tracking-uri", default=None, metavar="URI",
                   help="default: the run's own (manifest), else its logger config, else sqlite:///outputs/mlflow.db")
    p.add_argument("--experiment", default=None, help="MLflow experiment for runs never mirrored (default: the "
                                                      "run's logger.experiment_name, else kaayko-exp)")
    p.add_argument("--wait", action="store_true", help="first wait for the run's (or the trials') tracker process "
                                                       "to finish its uploads, which go on after a run returns")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KaaykoError as exc:
        report_user_error(exc)
        return exc.exit_code


def _roots(paths: list[Path]) -> list[Path]:
    return list(paths) or [Path(DEFAULT_ROOT)]


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        from kaayko_exp.runs.discover import find_runs
        from kaayko_exp.runs.show import list_lines
        from kaayko_exp.runs.sweeps import find_sweeps, sweep_lines

        if not args.paths and not Path(DEFAULT_ROOT).is_dir():
            print(f"no runs: {DEFAULT_ROOT}/ does not exist here (start one with `python train.py`).")
            return 0
        runs = find_runs(_roots(args.paths))
        sweeps = find_sweeps(_roots(args.paths))
        if not runs and not sweeps:
            print(f"no run directories under {', '.join(map(str, _roots(args.paths)))}")
            return 0
        blocks = ([list_lines(runs)] if runs else []) + ([sweep_lines(sweeps)] if sweeps else [])
        print("\n\n".join("\n".join(b) for b in blocks))
        return 0
    if args.command == "status":
        from kaayko_exp.runs.rundir import RunDir
        from kaayko_exp.runs.show import status_text

        print(status_text(RunDir.open(args.run)))
        return 0
    if args.command == "clean":
        from kaayko_exp.runs.clean import clean_runs

        roots = _roots(args.paths)
        if not args.paths and not roots[0].is_dir():
            print(f"no runs: {DEFAULT_ROOT}/ does not exist here; nothing to clean.")
            return 0
        clean_runs(roots, older_than=args.older_than, keep_last=args.keep_last, dry_run=args.dry_run,
                   models=args.models)
        return 0
    if args.command == "clear-cache":
        from kaayko_exp.runs.clean import clear_cache

        clear_cache(args.cache_dir, dry_run=args.dry_run)
        return 0
    if args.command == "repair":
        return _repair(args.run, args.dry_run)
    if args.command == "sync-tracker":
        # handed over by name: kaayko_exp.tracking sits above runs (it reads runs), so runs imports none of it
        import importlib

        sync = importlib.import_module("kaayko_exp.tracking.sync")
        return sync.main(args.run, args.tracking_uri, args.experiment, args.wait)
    raise AssertionError(args.command)  # argparse allows only the commands above


def _repair(path: Path, dry_run: bool) -> int:
    from kaayko_exp.runs.repair import repair_run
    from kaayko_exp.runs.rundir import shown

    result = repair_run(path, dry_run=dry_run)
    path_text = shown(path)
    for art, why in result.bad_artifacts:
        print(f"bad: {art} ({why})")
    if not result.changed:
        print(f"{path_text}: every recorded artifact and checkpoint is intact; nothing to repair.")
        return 0
    verb = "would mark" if dry_run else "marked"
    if result.reset_stages:
        print(f"{verb} pending: {', '.join(result.reset_stages)}")
    if result.dropped_checkpoints:
        print(f"{'would forget' if dry_run else 'forgot'} checkpoints: {', '.join(result.dropped_checkpoints)}")
    if dry_run:
        print("dry run: nothing was changed.")
    else:
        print(f"status set to interrupted; rebuild with: python train.py resume={path_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
