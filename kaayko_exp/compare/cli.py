"""``python -m kaayko_exp.compare`` / ``kaayko-compare``: compare runs through their saved reports.

User mistakes (nothing to compare, a bad filter, an unknown metric) print one
paragraph and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from kaayko_exp.errors import KaaykoError, report_user_error

EPILOG = """examples:
  python -m kaayko_exp.compare outputs/2025-06-01/*            every run of a day
  python -m kaayko_exp.compare outputs/multirun/2025-06-01/12-00-00        a sweep: one row per trial
  python -m kaayko_exp.compare 'outputs/**/' --sort-by mae --top 10
  python -m kaayko_exp.compare RUN_A RUN_B RUN_C --baseline RUN_A      adds a Δ column per metric
  python -m kaayko_exp.compare outputs/multirun/x --filter model=xgboost --filter 'mae<0.5'
  python -m kaayko_exp.compare outputs/multirun/x --group-by            mean ± std over seeds
  python -m kaayko_exp.compare outputs/multirun/x --group-by seed,sample_size --format markdown
  python -m kaayko_exp.compare outputs/multirun/x --format csv --output comparison.csv
  python -m kaayko_exp.compare outputs/multirun/x --win-rates --format json > comparison.json
  python -m kaayko_exp.compare outputs/multirun/x --win-rates --interval bca    BCa mean intervals

Metrics: mae, rmse, r2, class_accuracy, within_half, skill_accuracy (held-out test set); val_<metric>,
cv_<metric> (validation set, cross-validation mean); objective; trial_value (sweeps). --sort-by puts the
best first (lower is better for mae and rmse, higher for the others). Only saved files are read
(manifest.json, report.json, .hydra/config.yaml): nothing is retrained or loaded.
"""


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one name, comma-separated")
    return items


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count; use a whole number >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    from kaayko_exp.compare.formats import FORMATS

    p = argparse.ArgumentParser(
        prog="python -m kaayko_exp.compare", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Compare kaayko-exp runs: one row per run (or per trial of a sweep) with its status, model, "
                    "the choices and parameters that differ, the held-out metrics, training time and rows.")
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="run directories, sweep directories (their runs/trials) or glob patterns")
    p.add_argument("--metrics", type=_csv_list, default=None, metavar="M1,M2",
                   help="metrics to show (default mae,rmse,r2,class_accuracy)")
    p.add_argument("--sort-by", metavar="METRIC", help="best first by this metric (direction-aware)")
    p.add_argument("--baseline", metavar="RUN", help="add a Δ column per metric: row value minus RUN's value")
    p.add_argument("--filter", action="append", default=[], metavar="EXPR", dest="filters",
                   help="keep runs matching KEY=VALUE, KEY!=VALUE or METRIC<NUMBER (also <=, >, >=); repeatable")
    p.add_argument("--top", type=_top, metavar="K", help="only the first K rows (after sorting)")
    p.add_argument("--only-changed", action="store_true",
                   help="drop columns whose value is the same in every row (metrics and choices too)")
    p.add_argument("--all-params", action="store_true",
                   help="show every group choice and resolved parameter, not only those that differ")
    p.add_argument("--hide-failed", action="store_true", help="leave out failed, interrupted and pruned runs")
    p.add_argument("--group-by", nargs="?", const="seed", type=_csv_list, metavar="KEYS",
                   help="one row per set of runs that differ only in KEYS (default: seed), with mean ± std "
                        "and the count")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", type=Path, metavar="PATH", help="write the table to PATH (atomically) instead of "
                                                                 "printing it")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="also write comparison.md, comparison.html and plots to DIR")
    p.add_argument("--win-rates", action="store_true",
                   help="add the per-lake win rates (runs on the same held-out rows) to the output: a matrix after "
                        "the table, sections in markdown and html, a win_rates object in json; with csv a second "
                        "file beside --output (<stem>.win_rates.csv, one row per pair of runs)")
    p.add_argument("--adjust", choices=("holm", "bh"), default="holm",
                   help="p-value adjustment over the pairs of each win-rate matrix: holm (family-wise error, "
                        "default) or bh (Benjamini-Hochberg, false discovery rate)")
    p.add_argument("--interval", choices=("t", "bca"), default="t",
                   help="95 %% interval of each pair's mean difference over lakes: t (Student-t, default) or bca "
                        "(BCa bootstrap, scipy.stats.bootstrap, 9999 resamples, fixed seed). t is the default because "
                        "between equally good runs on 20 lakes, 95 %% BCa intervals excluded 0 for 7.6–11.4 %% of "
                        "pairs and t intervals for 3.9–5.3 %% (nominal 5 %%; bench/bench_compare_intervals.py)")
    p.add_argument("--verbose", action="store_true",
                   help="list every skipped path with the reason (default: one summary line)")
    return p


def run(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from kaayko_exp.compare.collect import CompareError, collect
    from kaayko_exp.compare.formats import render, win_rates_csv, win_rates_path, write
    from kaayko_exp.compare.table import DEFAULT_METRICS, TableOptions, build_table

    _check_targets(args)
    found = collect(args.inputs)
    report_skipped(found.skipped, verbose=args.verbose or not found.records)
    if not found.records:
        raise CompareError(
            f"None of the {len(args.inputs)} input(s) holds a readable kaayko-exp run"
            + (" (each skipped one is listed above with the reason)" if found.skipped else "")
            + ". Pass run directories written by `python train.py` (they hold manifest.json), sweep directories, "
              "or a glob such as 'outputs/2025-06-01/*'.")
    opts = TableOptions(metrics=args.metrics or DEFAULT_METRICS, sort_by=args.sort_by, baseline=args.baseline,
                        only_changed=args.only_changed, filters=args.filters, top=args.top,
                        hide_failed=args.hide_failed, group_by=args.group_by, all_params=args.all_params)
    table = build_table(found.records, opts, found.skipped)
    if not table.rows:
        print("no run matches the filters", file=sys.stderr)
    wr = None
    if args.win_rates or args.report:  # kaayko_exp.compare.stats reads the prediction files: only when asked
        from kaayko_exp.compare.stats import win_rates

        wr = win_rates(table.records, adjust=args.adjust, interval=args.interval)
    text = render(table, args.format, wr if args.win_rates else None)
    if args.output:
        write(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
        if args.format == "csv" and args.win_rates:
            second = write(win_rates_path(args.output), win_rates_csv(wr))
            print(f"wrote {second} (win rates, one row per pair of runs)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.report:
        _report(args, table, wr)
    return 0


def _check_targets(args: argparse.Namespace) -> None:
    """Refuse, before anything is read or written, what cannot be written as asked."""
    from kaayko_exp.compare.collect import CompareError

    if args.format == "csv" and args.win_rates and not args.output:
        raise CompareError("--format csv --win-rates needs --output PATH: a CSV holds one table, so the runs go to "
                           "PATH and the win rates (one row per pair of runs) beside it, to <stem>.win_rates.csv. "
                           "Add --output comparison.csv, or use --format json for both on stdout.")
    if args.report is not None:
        from kaayko_exp.compare.render import check_report_dir

        check_report_dir(args.report)


def report_skipped(skipped: Sequence[tuple[str, str]], *, verbose: bool, shown: int = 3) -> None:
    """Skipped paths on stderr: each with its reason when ``verbose``, else one line that counts and names a few."""
    if not skipped:
        return
    if verbose:
        for path, reason in skipped:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        return
    names = ", ".join(path for path, _ in skipped[:shown])
    more = f" and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
    print(f"skipped {len(skipped):,} path(s) that hold no readable run ({names}{more}); --verbose lists each with "
          "the reason", file=sys.stderr)


def _report(args: argparse.Namespace, table, wr) -> None:
    """The --report outputs (kaayko_exp.compare.render)."""
    from kaayko_exp.compare.formats import cell
    from kaayko_exp.compare.render import write_report

    rows = [{c.label: cell(row.get(c.key), c) for c in table.columns} for row in table.rows]
    metric = args.sort_by or (args.metrics or ["mae"])[0]
    written = write_report(args.report, table.records, table_rows=rows, columns=[c.label for c in table.columns],
                           metric=metric, win_rates=wr)
    for path in (written["markdown"], written["html"]):
        print(f"wrote {path}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> None:
    try:
        code = run(argv)
    except KaaykoError as exc:
        report_user_error(exc)
        code = exc.exit_code
    sys.exit(code)
