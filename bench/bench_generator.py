"""Generator benchmark (issue 19): build time and size of the complete synthetic table, coverage per climate type.

1. Build the complete table with the coverage component off (``data.coverage=0``: the lake rows alone,
   the baseline) and at each coverage setting, in the same process, one after the other; print rows, seconds
   and the ratios to the baseline. Goals: at most 25 % more rows, under 10 s for the default.
2. Coverage of the reference climates (kaayko_exp/data/koppen.py) per station and per Köppen group at each
   setting: the share of plausible grid cells holding a row (kaayko_exp/data/coverage.py). The default
   (``synthetic.DEFAULT_COVERAGE``) is the smallest setting of the sweep that covers every cell.

Usage::

    python bench/bench_generator.py                  # coverage 0, 0.5, 0.75, 1.0 (about a minute on 2 cores)
    python bench/bench_generator.py --quick          # coverage 0 and the default only
    python bench/bench_generator.py --json out.json  # sections for bench/run_all.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

ROWS_GOAL, SECONDS_GOAL = 1.25, 10.0


def build(coverage_per_cell: float, seed: int):
    from kaayko_exp.data import coverage, synthetic

    synthetic.layout.cache_clear()  # the cell enumeration is part of the build
    started, cpu = time.perf_counter(), time.process_time()
    df = synthetic.generate_complete(seed=seed, coverage_per_cell=coverage_per_cell)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    keys = coverage.table_keys(df)
    return len(df), seconds, cpu, coverage.coverage(keys)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="coverage 0 and the default only")
    ap.add_argument("--json", default=None, help="write the sections here (for bench/run_all.py)")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    from kaayko_exp.data import koppen, synthetic

    settings = [0.0, synthetic.DEFAULT_COVERAGE] if args.quick else sorted({0.0, 0.5, 0.75, synthetic.DEFAULT_COVERAGE})
    runs = {}
    for c in settings:
        runs[c] = build(c, args.seed)
        print(f"coverage {c:g}: {runs[c][0]:,} rows in {runs[c][1]:.1f} s ({runs[c][2]:.1f} CPU s)", flush=True)
    base_rows, _, base_s, _ = runs[0.0]
    load = os.getloadavg()[0]
    rows = []
    for c, (n, wall, s, cover) in runs.items():
        share = sum(x.covered for x in cover) / sum(x.plausible for x in cover)
        ok = (n / base_rows <= ROWS_GOAL and s < SECONDS_GOAL) if c == synthetic.DEFAULT_COVERAGE else None
        rows.append([f"{c:g}" + (" (default)" if c == synthetic.DEFAULT_COVERAGE else ""), f"{n:,}",
                     f"{n / base_rows:.3f}", f"{wall:.1f}", f"{s:.1f}", f"{s / base_s:.2f}", f"{share:.2%}",
                     "-" if ok is None else common.goal(ok)])
    default_n, _, default_s, default_cover = runs[synthetic.DEFAULT_COVERAGE]
    full = [c for c, (_, _, _, cov) in runs.items() if all(x.covered == x.plausible for x in cov)]
    size = common.section(
        "Synthetic generator: size and build time", ["data.coverage", "rows", "rows / coverage 0", "build s (wall)",
                                                     "build CPU s", "CPU / coverage 0", "cells covered (all stations)", "goal"], rows,
        intro=("The complete table (`synthetic.generate_complete`, seed %d, batches of 400,000 rows, the cell "
               "enumeration included) with the coverage component off and on, built one after the other in one "
               "process; coverage 0 is the baseline. Goals (issue 19): at most 25 %% more rows and under %g s, judged on the "
               "build's CPU seconds (the build is single-threaded numpy, so CPU time is its wall time on an idle core; "
               "the wall time on this shared machine is shown too). "
               "Command: `python bench/bench_generator.py`." % (args.seed, SECONDS_GOAL)),
        notes=[f"Default data.coverage={synthetic.DEFAULT_COVERAGE:g}: {default_n - base_rows:,} coverage rows "
               f"(+{default_n / base_rows - 1:.1%}), built in {default_s:.1f} CPU s against {base_s:.1f} CPU s without them.",
               ("Smallest setting that covers every plausible cell: " + (f"{min(full):g}" if full else "none of these"))
               + "; that is the default.",
               f"Load average at the end: {load:.1f} (2 cores shared with other work: seconds are noisy, the ratio less so)."])
    by_name = {s.name: s for s in koppen.STATIONS}
    off = {x.name: x for x in runs[0.0][3]}
    cov_rows = [[x.koppen, x.name, by_name[x.name].group, f"{x.plausible:,}", f"{off[x.name].share:.2%}",
                 f"{x.share:.2%}", common.goal(x.covered == x.plausible)] for x in default_cover]
    cover = common.section(
        "Coverage per climate type", ["Köppen", "reference station", "group", "plausible cells",
                                      "covered, coverage 0", f"covered, default {synthetic.DEFAULT_COVERAGE:g}", "goal"],
        cov_rows,
        intro=("Share of each reference station's plausible cells (air temperature 2.5 °C × dew point 2.5 °C × wind "
               "5 km/h × gust 10 km/h × month, from its 1991–2020 normals and records: kaayko_exp/data/koppen.py, "
               "coverage.py) holding a row of the complete table. The fidelity report prints the same section: "
               "`python -m kaayko_exp.data.fidelity tests/data/kaayko_sample`."),
        notes=["Goal: 100 % of the plausible cells of every station: "
               + ("met." if all(x.covered == x.plausible for x in default_cover) else "MISSED."),
               "Coverage 0 is what the 100 lakes alone reach (the lake rows without the stations' and the global coverage rows)."])
    sections = [size, cover]
    common.print_sections(sections)
    common.write_results(args.json, sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
