"""How faithful is the synthetic generator to real Kaayko rows? A measured, thresholded report.

Usage::

    python -m kaayko_exp.data.fidelity tests/data/kaayko_sample [--out fidelity_report] [--seed 42]
                                       [--transfer-json FILE] [--json FILE]

For every real lake the synthetic rows of the *same lake* (or, for a lake not in the
synthetic list, of the nearest synthetic lake) in the *same calendar months* are compared
with the real rows; the comparison is repeated per climate zone and over everything:

* per column: Kolmogorov–Smirnov statistic and Wasserstein-1 distance (in the column's unit);
* joint relations that drive the label: dew-point depression and humidity vs the Magnus
  formula, gust − wind, UV by cloud in daylight and at night, precipitation vs condition,
  feels-like − air temperature;
* calendar fields (season, intensity, hemisphere, climate zone, pattern) lake by lake and
  month by month, the monsoon months;
* hourly and seasonal cycles (mean by hour, mean by month);
* the label: class distribution and the distribution of each rule component's points;
* coverage of the reference climates (:mod:`.koppen`, :mod:`.coverage`): the share of plausible cells
  of the grid air temperature × dew point × wind × gust × month, per reference station, that hold a
  row of the complete synthetic table (``--coverage`` sets ``data.coverage``). Goal: every cell.

The leave-one-real-lake-out transfer measure is added by ``--transfer-json FILE`` (written by
``python -m kaayko_exp.evaluation.transfer ... --json FILE``), or run both at once with
``python -m kaayko_exp.evaluation.transfer <real> --size medium --report DIR``.
The report (``report.md`` + PNG figures) goes to ``--out``; the exit status is 1 when a
check of :data:`THRESHOLDS` fails (listed in the report), 2 for unusable input, else 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kaayko_exp.data import coverage, koppen, label

#: Columns compared one by one (all numeric, in the schema's units).
COLUMNS = ("temp_c", "dew_point_c", "humidity", "feelslike_c", "wind_kph", "gust_kph", "cloud", "uv",
           "precip_mm", "pressure_mb", "vis_km", "paddle_score")

# Thresholds. The label rule (data/label.py) scores temperature in bins 2–5 °C wide, wind in bins
# 5–10 km/h wide, rain at 0 / 1 / 3 / 8 mm, cloud at 20 / 80 %, UV at 8. A generator whose per-lake
# distribution is off by more than about half a bin moves a large share of rows into another bin,
# so the model sees the rule's boundaries at other places than real data puts them. Hence:
#   Wasserstein temp ≤ 2.5 °C, dew point ≤ 3 °C (it drives humidity, a temp proxy), wind ≤ 3 km/h,
#   gust ≤ 6 km/h (gust/wind ratios of 1.5–2.5 double the wind tolerance), cloud ≤ 15 % (a quarter of
#   the 20–80 band), UV ≤ 0.75 (UV > 8 is rare; the mean real UV is ≈ 1), precipitation ≤ 0.15 mm
#   (real mean ≈ 0.1 mm/h, so this is "no gross excess of rain"), humidity ≤ 12 %.
#   Shares (total-variation distance) of the label's classes and of each rule component's points
#   ≤ 0.15 per lake: a model trained on data whose class mix differs by more than that learns a
#   different prior near the rounding edges.
#   Calendar fields are deterministic functions of the lake and month: agreement must be 100 %.
#   Hourly cycle of temperature (curve minus its mean): ≤ 2.5 °C at any hour (real diurnal ranges
#   are 5–15 °C; 2.5 °C is a bin width of the rule).
# Why these are not looser: each real lake-month is one year's weather, and a month's mean temperature
# varies between years by σ ≈ 1–3 °C at mid-latitudes (NOAA 1991–2020 normals: standard deviation of
# monthly means; the real Minnewanka February 2021, −13.2 °C, was a cold-wave month ≈ 6 °C below the Banff
# normal). A limit much below 2.5 °C would ask the generator to reproduce the sample's particular years,
# not the lake's climate; a limit much above it lets the rule's bins drift. The other limits follow the
# bin widths above. These limits were set before generator v3 and were not changed to make it pass:
# v2 (a random climate per lake) failed 48 checks; v3 (climate.py, climate from the lake's place) passes
# them all on tests/data/kaayko_sample with seed 42. The margins are thin (largest share of a limit used:
# temp 0.95, dew point 0.95, cycle 0.99, class mix 0.97, cloud points 0.99), so a generator change that
# breaks one shows at once (tests/test_synthetic_climate.py runs the report on the sample).
THRESHOLDS: dict[str, float] = {
    "w:temp_c": 2.5, "w:dew_point_c": 3.0, "w:wind_kph": 3.0, "w:gust_kph": 6.0, "w:cloud": 15.0,
    "w:uv": 0.75, "w:precip_mm": 0.15, "w:humidity": 12.0,
    "tv:paddle_score": 0.15, "tv:temp_points": 0.15, "tv:wind_points": 0.15, "tv:rain_points": 0.15,
    "tv:cloud_points": 0.15, "tv:uv_points": 0.15,
    "calendar_disagreement": 0.0, "cycle:temp_c": 2.5,
}
CALENDAR = ("season", "season_intensity", "hemisphere", "climate_zone", "regional_pattern")
RAIN_WORDS = ("rain", "snow", "drizzle", "sleet", "shower")


# ----------------------------------------------------------------------------- distances
def distances(real: np.ndarray, synth: np.ndarray) -> tuple[float, float]:
    """(Kolmogorov–Smirnov statistic, Wasserstein-1 distance in the values' unit); NaN if one side is empty."""
    from scipy import stats

    r = np.asarray(real, dtype=np.float64)
    s = np.asarray(synth, dtype=np.float64)
    r, s = r[np.isfinite(r)], s[np.isfinite(s)]
    if not len(r) or not len(s):
        return float("nan"), float("nan")
    return float(stats.ks_2samp(r, s).statistic), float(stats.wasserstein_distance(r, s))


def total_variation(real: Sequence[Any], synth: Sequence[Any]) -> float:
    """Half the L1 distance between the two value-share distributions (0 = same mix, 1 = disjoint)."""
    p = pd.Series(np.asarray(real)).value_counts(normalize=True)
    q = pd.Series(np.asarray(synth)).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p - q).sum())


def column_distances(real: pd.DataFrame, synth: pd.DataFrame, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """Per column: KS, Wasserstein, real and synthetic mean (rows = columns)."""
    rows = []
    for c in columns:
        if c not in real or c not in synth:
            continue
        ks, w = distances(real[c], synth[c])
        rows.append({"column": c, "ks": ks, "wasserstein": w, "real_mean": float(np.mean(real[c])),
                     "synth_mean": float(np.mean(synth[c]))})
    return pd.DataFrame(rows).set_index("column")


# ----------------------------------------------------------------------------- relations
def rule_points(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The rule's weather points per row (:func:`kaayko_exp.data.label.weather_points`), for distribution checks."""
    return {f"{name}_points": points for name, points in label.weather_points(df).items()}


def derived_relations(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-row quantities of the joint relations (compared by Wasserstein distance)."""
    t, d = df["temp_c"].to_numpy(np.float64), df["dew_point_c"].to_numpy(np.float64)
    wind, gust = df["wind_kph"].to_numpy(np.float64), df["gust_kph"].to_numpy(np.float64)
    return {
        "dew_depression": t - d,
        "humidity_minus_magnus": df["humidity"].to_numpy(np.float64) - coverage.rh(t, d),
        "gust_minus_wind": gust - wind,
        "feels_minus_temp": df["feelslike_c"].to_numpy(np.float64) - t,
    }


def _wet_condition(df: pd.DataFrame) -> np.ndarray:
    text = df["condition"].astype(str).str.lower()
    return text.str.contains("|".join(RAIN_WORDS)).to_numpy()


def relation_shares(df: pd.DataFrame) -> dict[str, float]:
    """Shares / conditional means of the relations (one number each per table)."""
    day = df["is_day"].to_numpy() == 1
    uv, cloud = df["uv"].to_numpy(np.float64), df["cloud"].to_numpy(np.float64)
    wet_cond, rain = _wet_condition(df), df["precip_mm"].to_numpy(np.float64) > 0
    mean = lambda v, m: float(np.mean(v[m])) if m.any() else float("nan")  # noqa: E731
    return {
        "share is_day": float(day.mean()),
        "share uv>0 at night": mean(uv > 0, ~day),
        "mean uv, day, cloud<20": mean(uv, day & (cloud < 20)),
        "mean uv, day, cloud 20-80": mean(uv, day & (cloud >= 20) & (cloud <= 80)),
        "mean uv, day, cloud>80": mean(uv, day & (cloud > 80)),
        "share uv>8": float(np.mean(uv > 8)),
        "share gust>=wind": float(np.mean(df["gust_kph"].to_numpy() >= df["wind_kph"].to_numpy())),
        "share precip>0": float(rain.mean()),
        "share precip>0 | wet condition": mean(rain, wet_cond),
        "share precip>0 | dry condition": mean(rain, ~wet_cond),
        "share wet condition | precip>0": mean(wet_cond, rain),
        "share cloud==0": float(np.mean(cloud == 0)),
        "share cloud==100": float(np.mean(cloud == 100)),
    }


def calendar_disagreement(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float]:
    """Share of real rows whose calendar field differs from the synthetic value of the same lake and month."""
    out = {}
    key = ["month"]
    for c in CALENDAR:
        syn = synth.groupby(key, observed=True)[c].agg(lambda s: s.astype(str).mode().iloc[0])
        expect = real["month"].map(syn)
        out[c] = float(np.mean(expect.astype(str).to_numpy() != real[c].astype(str).to_numpy()))
    return out


def _hourly(df: pd.DataFrame, col: str) -> pd.Series:
    return df.groupby(df["datetime"].dt.hour)[col].mean()


def cycle_gap(real: pd.DataFrame, synth: pd.DataFrame, col: str) -> float:
    """Largest hourly difference of the mean daily cycle, each cycle taken about its own mean."""
    r, s = _hourly(real, col), _hourly(synth, col)
    r, s = r - r.mean(), s - s.mean()
    r, s = r.align(s)
    return float(np.nanmax(np.abs(r - s)))


# ----------------------------------------------------------------------------- comparison
@dataclass
class GroupResult:
    name: str
    n_real: int
    n_synth: int
    columns: pd.DataFrame
    relations_w: dict[str, float]
    shares: dict[str, tuple[float, float]]
    points_tv: dict[str, float]
    calendar: dict[str, float]
    cycles: dict[str, float]
    checks: dict[str, tuple[float, bool]]  # name -> (value, passed)


def compare_group(name: str, real: pd.DataFrame, synth: pd.DataFrame, *, per_month: bool = True) -> GroupResult:
    cols = column_distances(real, synth)
    rel_r, rel_s = derived_relations(real), derived_relations(synth)
    relations_w = {k: distances(rel_r[k], rel_s[k])[1] for k in rel_r}
    sh_r, sh_s = relation_shares(real), relation_shares(synth)
    pts_r, pts_s = rule_points(real), rule_points(synth)
    points_tv = {"paddle_score": total_variation(real["paddle_score"], synth["paddle_score"])}
    points_tv.update({k: total_variation(pts_r[k], pts_s[k]) for k in pts_r})
    calendar = calendar_disagreement(real, synth) if per_month else {}
    cycles = {c: cycle_gap(real, synth, c) for c in ("temp_c", "wind_kph", "cloud", "uv")}
    checks: dict[str, tuple[float, bool]] = {}
    for key, limit in THRESHOLDS.items():
        kind, _, col = key.partition(":")
        if kind == "w":
            value = float(cols.loc[col, "wasserstein"])
        elif kind == "tv":
            value = points_tv[col]
        elif kind == "cycle":
            value = cycles[col]
        elif not calendar:
            continue
        else:
            value = max(calendar.values())
        checks[key] = (value, bool(value <= limit + 1e-12))
    return GroupResult(name, len(real), len(synth), cols, relations_w, {k: (sh_r[k], sh_s[k]) for k in sh_r},
                       points_tv, calendar, cycles, checks)


def synthetic_twins(real: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Synthetic rows matching the real table lake by lake and month by month, and which lake stands in.

    A real lake in the synthetic lake list is matched with itself; otherwise with the nearest
    synthetic lake. All synthetic hours of that lake in the real lake's calendar months are used.
    """
    from kaayko_exp.data import synthetic
    from kaayko_exp.data.catalogue import _km

    lay = synthetic.layout()
    names = lay.lakes["name"].tolist()
    lat, lng = lay.lakes["lat"].to_numpy(np.float64), lay.lakes["lng"].to_numpy(np.float64)
    parts, twins = [], {}
    for lake, part in real.groupby(real["lake"].astype(str), observed=True, sort=True):
        if lake in names:
            j = names.index(lake)
        else:
            j = int(np.argmin(_km(float(part["latitude"].iloc[0]), float(part["longitude"].iloc[0]), lat, lng)))
        twins[lake] = names[j]
        idx = np.arange(lay.offsets[j], lay.offsets[j + 1])
        hours = (synthetic.START + (idx - lay.offsets[j]).astype("timedelta64[h]"))
        month = hours.astype("datetime64[M]").astype(np.int64) % 12 + 1
        keep = idx[np.isin(month, part["month"].unique())]
        rows = synthetic.generate_rows(keep, seed=seed)
        parts.append(rows.assign(lake=lake))
    synth = pd.concat(parts, ignore_index=True)
    synth["lake"] = synth["lake"].astype(str)
    return synth, twins


def compare(real: pd.DataFrame, synth: pd.DataFrame) -> list[GroupResult]:
    """Per lake, per climate zone (of the real rows), and overall."""
    out = []
    for lake, r in real.groupby(real["lake"].astype(str), observed=True, sort=True):
        out.append(compare_group(f"lake: {lake}", r, synth[synth["lake"] == lake]))
    zones = real["climate_zone"].astype(str)
    for zone in sorted(zones.unique()):
        lakes = set(real.loc[zones == zone, "lake"].astype(str))
        out.append(compare_group(f"zone: {zone}", real[zones == zone], synth[synth["lake"].isin(lakes)],
                                 per_month=False))
    out.append(compare_group("all", real, synth, per_month=False))
    return out


#: Share of each reference station's plausible grid cells that the complete table must cover (issue 19: all).
COVERAGE_GOAL = 1.0


class Results(list):
    """The per-group results, plus ``coverage``: one :class:`coverage.Coverage` per reference station."""

    coverage: list = []


@functools.lru_cache(maxsize=4)
def complete_table_keys(seed: int, coverage_per_cell: float) -> np.ndarray:
    """Grid cells (:func:`coverage.table_keys`) of the complete synthetic table, built batch by batch."""
    from kaayko_exp.data import synthetic

    total = synthetic.layout(coverage_per_cell=float(coverage_per_cell)).total_rows
    keys = [coverage.table_keys(synthetic.generate_rows(np.arange(lo, min(total, lo + 400_000)), seed=seed,
                                                        coverage_per_cell=float(coverage_per_cell)))
            for lo in range(0, total, 400_000)]
    return np.unique(np.concatenate(keys))


def coverage_results(seed: int, coverage_per_cell: float | None = None) -> list:
    """Per reference station: plausible cells of the grid and how many the complete synthetic table covers."""
    from kaayko_exp.data import synthetic

    cpc = synthetic.DEFAULT_COVERAGE if coverage_per_cell is None else float(coverage_per_cell)
    return coverage.coverage(complete_table_keys(int(seed), cpc))


def failures(results: Sequence[GroupResult]) -> list[str]:
    """'group: check value > limit' for every failed check; 'coverage: station share < goal' for each short station."""
    out = [f"{g.name}: {k} = {v:.3f} > {THRESHOLDS[k]}" for g in results for k, (v, ok) in g.checks.items() if not ok]
    out += [f"coverage: {c.name} covers {c.share:.2%} of {c.plausible:,} plausible cells < {COVERAGE_GOAL:.0%}"
            for c in getattr(results, "coverage", ()) if c.share < COVERAGE_GOAL]
    return out


def coverage_markdown(cover: Sequence, keys: np.ndarray | None = None) -> list[str]:
    """The coverage section of the report: one row per reference station, then one per Köppen group."""
    lines = ["## Coverage of the reference climates", "",
             "Share of the plausible cells (air temperature 2.5 °C × dew point 2.5 °C × wind 5 km/h × gust 10 km/h × "
             "month; rules in kaayko_exp/data/coverage.py) of each reference station's 1991–2020 normals and records "
             "(kaayko_exp/data/koppen.py) that hold a row of the complete synthetic table, i.e. a row within half a "
             f"grid step on every axis. Goal: {COVERAGE_GOAL:.0%}.", "",
             "| Köppen | station | group | plausible cells | covered | share |", "|---|---|---|---:|---:|---:|"]
    by_name = {s.name: s for s in koppen.STATIONS}
    groups: dict[str, list[int]] = {}
    for c in cover:
        st = by_name[c.name]
        lines.append(f"| {c.koppen} | {c.name} | {st.group} | {c.plausible:,} | {c.covered:,} | {c.share:.2%} |")
        g = groups.setdefault(st.group, [0, 0])
        g[0] += c.plausible
        g[1] += c.covered
    lines += ["", "| group | plausible cells | covered | share |", "|---|---:|---:|---:|"]
    lines += [f"| {g} | {p:,} | {k:,} | {k / p:.2%} |" for g, (p, k) in groups.items()]
    if keys is not None:
        short = [c for c in cover if c.share < COVERAGE_GOAL]
        for c in short:
            lines += ["", f"Uncovered cells of {c.name} (first three): "
                      + "; ".join(coverage.uncovered(keys, by_name[c.name], limit=3))]
    return lines + [""]


# ----------------------------------------------------------------------------- report
def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.3f}"


def render(results: Sequence[GroupResult], twins: dict[str, str], figures: Sequence[str], *,
           seed: int, source: str, transfer_md: str | None = None, monsoon: str = "",
           coverage_md: Sequence[str] = ()) -> str:
    lines = ["# Synthetic generator fidelity", "",
             f"Real rows: `{source}`; synthetic seed {seed}. Each real lake is compared with the synthetic rows of "
             "its twin lake in the same calendar months: " + ", ".join(f"{k} → {v}" for k, v in twins.items()) + ".",
             ""]
    fails = failures(results)
    lines += ["## Verdict", "", (f"**{len(fails)} check(s) failed** (thresholds and their reasons: "
                                 "`THRESHOLDS` in kaayko_exp/data/fidelity.py):" if fails else "All checks passed."), ""]
    lines += [f"- {f}" for f in fails] + [""]
    if transfer_md:
        lines += ["## Leave-one-real-lake-out transfer", "", transfer_md, ""]
    lines += list(coverage_md)
    names = [g.name for g in results]
    lines += ["## Checks", "", "| check | limit | " + " | ".join(names) + " |",
              "|---|---:|" + "---:|" * len(names)]
    for key, limit in THRESHOLDS.items():
        cells = []
        for g in results:
            if key in g.checks:
                v, ok = g.checks[key]
                cells.append(_fmt(v) + ("" if ok else " ✗"))
            else:
                cells.append("")
        lines.append(f"| {key} | {limit} | " + " | ".join(cells) + " |")
    lines += ["", "## Per-column distances (KS / Wasserstein in the column's unit; mean real → synthetic)", "",
              "| group | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for g in results:
        cells = []
        for c in COLUMNS:
            r = g.columns.loc[c]
            cells.append(f"{r.ks:.2f} / {r.wasserstein:.2f} ({r.real_mean:.1f}→{r.synth_mean:.1f})")
        lines.append(f"| {g.name} | " + " | ".join(cells) + " |")
    lines += ["", "## Joint relations", "", "Wasserstein distance of each per-row relation:", "",
              "| group | " + " | ".join(results[0].relations_w) + " |", "|---|" + "---:|" * len(results[0].relations_w)]
    for g in results:
        lines.append(f"| {g.name} | " + " | ".join(_fmt(v) for v in g.relations_w.values()) + " |")
    lines += ["", "Shares and conditional means (real / synthetic):", "",
              "| quantity | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in results[0].shares:
        lines.append(f"| {k} | " + " | ".join(f"{_fmt(g.shares[k][0])} / {_fmt(g.shares[k][1])}" for g in results) + " |")
    lines += ["", "## Label and rule components (total-variation distance of the shares)", "",
              "| group | " + " | ".join(results[0].points_tv) + " |", "|---|" + "---:|" * len(results[0].points_tv)]
    for g in results:
        lines.append(f"| {g.name} | " + " | ".join(_fmt(v) for v in g.points_tv.values()) + " |")
    lines += ["", "## Calendar fields and cycles", "",
              "Share of real rows whose calendar field differs from the synthetic twin's in the same month; "
              "largest gap of the mean daily cycle (about its mean):", "",
              "| group | " + " | ".join(CALENDAR) + " | cycle temp °C | cycle wind km/h | cycle cloud % | cycle uv |",
              "|---|" + "---:|" * (len(CALENDAR) + 4)]
    for g in results:
        cal = [_fmt(g.calendar[c]) if g.calendar else "" for c in CALENDAR]
        lines.append(f"| {g.name} | " + " | ".join(cal + [_fmt(g.cycles[c]) for c in ("temp_c", "wind_kph", "cloud", "uv")]) + " |")
    if monsoon:
        lines += ["", "Monsoon months: " + monsoon]
    lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures] + [""]
    return "\n".join(lines)


def monsoon_note(real: pd.DataFrame) -> str:
    """Which months are monsoon in the real rows, and in the synthetic calendar of monsoon lakes."""
    from kaayko_exp.data import geo

    syn = [m + 1 for m in range(12) if geo.SEASON_TABLE[geo.SCHEME_MONSOON, m] == geo.SEASONS.index("monsoon")]
    seen = sorted(real.loc[real["season"].astype(str) == "monsoon", "month"].unique().tolist())
    return (f"real rows: {seen or 'none (no monsoon lake in this table)'}; synthetic monsoon calendar "
            f"(South/East Asia north of the tropics): months {syn}.")


def figures(real: pd.DataFrame, synth: pd.DataFrame, out: Path) -> list[str]:
    """Per-lake histograms, daily and seasonal cycles, class distributions: PNGs under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kaayko_exp.atomic import write_with

    lakes = sorted(real["lake"].astype(str).unique())
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
        plt.close(fig)
        written.append(str(path))

    cols = ("temp_c", "wind_kph", "precip_mm", "cloud", "uv", "humidity", "gust_kph", "paddle_score")
    fig, axes = plt.subplots(len(lakes), len(cols), figsize=(2.6 * len(cols), 2.0 * len(lakes)), squeeze=False)
    for i, lake in enumerate(lakes):
        r, s = real[real["lake"].astype(str) == lake], synth[synth["lake"] == lake]
        for k, c in enumerate(cols):
            ax = axes[i, k]
            both = np.concatenate([r[c].to_numpy(np.float64), s[c].to_numpy(np.float64)])
            bins = np.arange(0.75, 5.5, 0.5) if c == "paddle_score" else np.linspace(both.min(), max(both.max(), both.min() + 1e-6), 30)
            ax.hist(r[c], bins=bins, density=True, alpha=0.5, color="tab:blue")
            ax.hist(s[c], bins=bins, density=True, histtype="step", color="tab:orange", linewidth=1.5)
            ax.set_yticks([])
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(c, fontsize=9)
            if k == 0:
                ax.set_ylabel(lake, fontsize=8)
    fig.suptitle("Real (blue) vs synthetic twin (orange), same months", fontsize=10)
    fig.tight_layout()
    save(fig, "histograms_by_lake.png")

    fig, axes = plt.subplots(2, len(lakes), figsize=(3.0 * len(lakes), 5.0), squeeze=False)
    for i, lake in enumerate(lakes):
        r, s = real[real["lake"].astype(str) == lake], synth[synth["lake"] == lake]
        for row, c in enumerate(("temp_c", "wind_kph")):
            ax = axes[row, i]
            ax.plot(_hourly(r, c), color="tab:blue", label="real")
            ax.plot(_hourly(s, c), color="tab:orange", label="synthetic")
            ax.set_title(f"{lake}: {c} by hour", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, "daily_cycles.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for lake in lakes:
        r, s = real[real["lake"].astype(str) == lake], synth[synth["lake"] == lake]
        line = axes[0].plot(r.groupby("month")["temp_c"].mean(), "o", label=lake)[0]
        axes[0].plot(s.groupby("month")["temp_c"].mean(), "x", color=line.get_color())
    axes[0].set_title("mean temp by month (o real, x synthetic)", fontsize=9)
    axes[0].legend(fontsize=7)
    grid = np.arange(1.0, 5.01, 0.5)
    rp = real["paddle_score"].value_counts(normalize=True).reindex(grid, fill_value=0)
    sp = synth["paddle_score"].value_counts(normalize=True).reindex(grid, fill_value=0)
    axes[1].bar(grid - 0.1, rp, width=0.2, label="real")
    axes[1].bar(grid + 0.1, sp, width=0.2, label="synthetic")
    axes[1].set_title("paddle_score classes", fontsize=9)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save(fig, "seasonal_and_classes.png")
    return written


def transfer_table(rows: Sequence[dict]) -> str:
    """Markdown table of leave-one-lake-out results (dicts of evaluation.transfer.LakeResult)."""
    lines = ["| lake | real rows | synthetic train rows | synthetic lakes left out | class accuracy | MAE | within ±0.5 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['lake']} | {r['rows']:,} | {r['train_rows']:,} | {r['excluded']} | "
                     f"{r['class_accuracy']:.4f} | {r['mae']:.4f} | {r['within_half']:.4f} |")
    if rows:
        lines.append(f"| **worst** | | | | {min(r['class_accuracy'] for r in rows):.4f} | "
                     f"{max(r['mae'] for r in rows):.4f} | {min(r['within_half'] for r in rows):.4f} |")
    return "\n".join(lines)


def run(real: pd.DataFrame, *, out: str | Path, seed: int = 42, source: str = "",
        transfer: tuple[str, list[dict]] | None = None,
        coverage_per_cell: float | None = None) -> tuple[Results, Path, list]:
    """Build the comparison and the coverage section, write ``out/report.md`` (with the transfer table if
    given); return the results (``results.coverage``: per reference station), the report's path, the transfer rows."""
    from kaayko_exp.atomic import write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    synth, twins = synthetic_twins(real, seed)
    results = Results(compare(real, synth))
    results.coverage = coverage_results(seed, coverage_per_cell)
    from kaayko_exp.data import synthetic

    cpc = synthetic.DEFAULT_COVERAGE if coverage_per_cell is None else float(coverage_per_cell)
    figs = figures(real, synth, out)
    transfer_md, lake_results = None, []
    if transfer:
        size, lake_results = transfer
        transfer_md = (f"Train xgboost (conf/model/xgboost.yaml, features=standard) on synthetic rows "
                       f"(size `{size}`) generated without the lake and every synthetic lake within 50 km; "
                       "score its real rows (`python -m kaayko_exp.evaluation.transfer`).\n\n"
                       + transfer_table(lake_results))
    report = out / "report.md"
    write_text(report, render(results, twins, figs, seed=seed, source=source, transfer_md=transfer_md,
                              monsoon=monsoon_note(real),
                              coverage_md=coverage_markdown(results.coverage, complete_table_keys(int(seed), cpc))))
    return results, report, lake_results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kaayko_exp.data.fidelity", description=__doc__.splitlines()[0])
    ap.add_argument("real", help="directory of Kaayko <Lake>/<YYYY-MM>.csv files (or a .csv/.parquet file)")
    ap.add_argument("--out", default="fidelity_report", help="directory for report.md and figures")
    ap.add_argument("--seed", type=int, default=42, help="synthetic seed (default 42)")
    ap.add_argument("--transfer-json", default=None, metavar="FILE",
                    help="add the leave-one-lake-out results written by python -m kaayko_exp.evaluation.transfer --json")
    ap.add_argument("--json", default=None, help="also write the checks (and transfer results) as JSON here")
    ap.add_argument("--coverage", type=float, default=None, metavar="ROWS_PER_CELL",
                    help="data.coverage of the synthetic table whose coverage is reported (default: the generator's)")
    args = ap.parse_args(argv)

    from kaayko_exp.data.sources import read_table
    from kaayko_exp.errors import KaaykoError

    try:
        real = read_table(args.real)
        transfer = None
        if args.transfer_json:
            try:
                rows = json.loads(Path(args.transfer_json).read_text())
            except (OSError, ValueError) as exc:
                from kaayko_exp.errors import DataError

                raise DataError(f"--transfer-json {args.transfer_json} cannot be read ({exc}); write it with "
                                "python -m kaayko_exp.evaluation.transfer <real> --json FILE.") from None
            transfer = ("see the file", rows)
        results, report, lake_results = run(real, out=args.out, seed=args.seed, source=args.real, transfer=transfer,
                                            coverage_per_cell=args.coverage)
    except KaaykoError as exc:
        print(f"{exc.kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    fails = failures(results)
    if args.json:
        from kaayko_exp.atomic import write_text

        payload = {"checks": {g.name: {k: {"value": v, "passed": ok} for k, (v, ok) in g.checks.items()} for g in results},
                   "failures": fails, "transfer": list(lake_results),
                   "coverage": [{"station": c.name, "koppen": c.koppen, "plausible": c.plausible, "covered": c.covered,
                                 "share": c.share} for c in results.coverage]}
        write_text(args.json, json.dumps(payload, indent=2) + "\n")
    print(f"report written to {report}; {len(fails)} check(s) failed")
    for f in fails:
        print(f"  {f}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
