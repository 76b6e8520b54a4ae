"""Compare the synthetic table's marginal distributions with real Kaayko data.

Usage::

    python -m kaayko_exp.data.compare_real ../shared/data/kaayko_sample [--out plot.png] [--rows N]
                                            [--seed 42] [--all-lakes]

Prints, per numeric column, the 5/25/50/75/95 % quantiles of the real rows and of
synthetic rows, and writes a figure of overlaid histograms. By default the synthetic
rows come from the same lakes as the real data (the real sample's lakes are part of
the synthetic lake list), so climate is compared like for like; ``--all-lakes`` uses
the whole synthetic table instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
PLOT_COLUMNS = (
    "temp_c", "dew_point_c", "feelslike_c", "estimated_water_temp_c", "wind_kph", "gust_kph",
    "humidity", "cloud", "pressure_mb", "uv", "precip_mm", "vis_km", "estimated_wave_height_m",
    "paddle_score",
)


def synthetic_like(real, rows: int, seed: int, all_lakes: bool = False):
    """Synthetic rows of the real frame's lakes (or of all lakes), ``rows`` of them, seeded."""
    from kaayko_exp.data import synthetic
    from kaayko_exp.data.sampling import sample_positions

    lay = synthetic.layout()
    names = lay.lakes["name"].tolist()
    wanted = [names.index(n) for n in sorted(set(map(str, real["lake"].unique()))) if n in names]
    if all_lakes or not wanted:
        positions = sample_positions(lay.total_rows, min(rows, lay.total_rows), seed)
        scope = "all synthetic lakes"
    else:
        ranges = [np.arange(lay.offsets[j], lay.offsets[j + 1]) for j in wanted]
        pool = np.concatenate(ranges)
        positions = pool[sample_positions(len(pool), min(rows, len(pool)), seed)]
        scope = f"synthetic rows of the same {len(wanted)} lakes"
    return synthetic.generate_rows(positions, seed=seed), scope


def quantile_table(real, synth, columns: Sequence[str]) -> str:
    """Text table: per column, real vs synthetic quantiles and means."""
    head = f"{'column':<26}{'':>6}" + "".join(f"{int(q * 100):>8}%" for q in QUANTILES) + f"{'mean':>10}"
    lines = [head, "-" * len(head)]
    for col in columns:
        for tag, frame in (("real", real), ("synth", synth)):
            vals = frame[col].to_numpy(dtype=np.float64)
            qs = np.quantile(vals, QUANTILES)
            lines.append(f"{col if tag == 'real' else '':<26}{tag:>6}" + "".join(f"{q:>9.2f}" for q in qs)
                         + f"{vals.mean():>10.2f}")
    return "\n".join(lines)


def plot(real, synth, out: str, scope: str) -> None:
    """Overlaid density histograms of PLOT_COLUMNS, written atomically to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kaayko_exp.atomic import write_with

    cols = [c for c in PLOT_COLUMNS if c in real and c in synth]
    ncol = 4
    nrow = int(np.ceil(len(cols) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow))
    for ax, col in zip(axes.flat, cols):
        r = real[col].to_numpy(np.float64)
        s = synth[col].to_numpy(np.float64)
        lo, hi = np.quantile(np.concatenate([r, s]), [0.0, 0.995])
        if col == "paddle_score":
            bins = np.arange(0.75, 5.5, 0.5)
        elif hi > lo:
            bins = np.linspace(lo, hi, 40)
        else:
            bins = 10
        ax.hist(r, bins=bins, density=True, alpha=0.5, color="tab:blue", label=f"real (n={len(r):,})")
        ax.hist(s, bins=bins, density=True, histtype="step", linewidth=1.8, color="tab:orange",
                label=f"synthetic (n={len(s):,})")
        ax.set_title(col, fontsize=11)
        ax.tick_params(labelsize=8)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Real Kaayko sample vs synthetic table ({scope}); density histograms. "
                 "Synthetic water temperature is floored at 0 °C, the original's is not.", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    write_with(out, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaayko_exp.data.compare_real", description=__doc__.split("\n")[0])
    parser.add_argument("real", help="directory of Kaayko <Lake>/<YYYY-MM>.csv files (or a .csv/.parquet file)")
    parser.add_argument("--out", default="synthetic_vs_real.png", help="where to write the plot (PNG)")
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows to draw (default: as many as real)")
    parser.add_argument("--seed", type=int, default=42, help="synthetic seed (default 42)")
    parser.add_argument("--all-lakes", action="store_true", help="compare with all synthetic lakes, not the same lakes")
    args = parser.parse_args(argv)

    from kaayko_exp.data.schema import NUMERIC_COLUMNS
    from kaayko_exp.data.sources import read_table
    from kaayko_exp.errors import KaaykoError

    try:
        real = read_table(args.real)
    except KaaykoError as exc:
        print(f"{exc.kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    rows = args.rows if args.rows and args.rows > 0 else len(real)
    synth, scope = synthetic_like(real, rows, args.seed, args.all_lakes)
    skip = {"latitude", "longitude"}
    print(f"real: {len(real):,} rows, {real['lake'].nunique()} lakes from {args.real}; {scope}: {len(synth):,} rows")
    print(quantile_table(real, synth, [c for c in NUMERIC_COLUMNS if c not in skip]))
    plot(real, synth, args.out, scope)
    print(f"plot written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
