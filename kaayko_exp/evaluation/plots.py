"""The report's figures: predicted vs actual, residuals by lake, feature importance, confusion matrix.

Each ``plot_*`` function draws one PNG with matplotlib's Agg backend (imported
inside the function, so importing this module stays cheap) and writes it
atomically. :func:`make_plots` draws all of them for a run and returns the paths.
Inputs are the test predictions (``predictions/test.parquet``: the input columns
plus ``prediction``) and the evaluation results' importance block.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from kaayko_exp import atomic

log = logging.getLogger(__name__)

LABEL = "paddle_score"
LAKE = "lake"
PREDICTION = "prediction"
GRID = np.arange(1.0, 5.01, 0.5)  # the nine classes 1.0 … 5.0
MAX_SCATTER_POINTS = 200_000
DPI = 110
#: zlib level of the PNGs (Pillow's default is 6). Level 1 draws and writes a report's four figures in ~10 % less
#: CPU time (median of 3: 1.15 -> 1.03 s at sample_size=large) for files 8 % larger; the pixels are the same.
PNG_COMPRESS_LEVEL = 1

PREDICTED_VS_ACTUAL = "predicted_vs_actual.png"
RESIDUALS_BY_LAKE = "residuals_by_lake.png"
FEATURE_IMPORTANCE = "feature_importance.png"
CONFUSION_MATRIX = "confusion_matrix.png"


def figure(**kwargs: Any) -> Any:
    """A new figure on matplotlib's Agg canvas, through the object-oriented API: no pyplot import (its figure
    manager and backend switching), nothing global to close. These are the modules a run prefetches
    (kaayko_exp.training.prefetch); the pixels are those pyplot's Agg figures give."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically (fast zlib level: :data:`PNG_COMPRESS_LEVEL`), return ``path``.

    The figure is drawn once, at its own size, with the margins its plot function set (:func:`left_margin`):
    ``bbox_inches="tight"`` would lay every figure out in an extra pass to trim it, 22 % of the four figures'
    CPU time at sample_size=large (1.09 -> 0.86 s). Figures come from :func:`figure` (run and compare reports
    alike): nothing global holds them, so there is nothing to close."""
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI,
                                                    pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}))
    return path


#: width of one character of the tick labels, in em (DejaVu Sans averages ~0.6 em; a little more for safety)
CHAR_EM = 0.62


def left_margin(fig: Any, labels: Any, fontsize: float, *, extra_in: float = 0.3) -> float:
    """The left margin, as a share of ``fig``'s width, that holds the longest of ``labels`` at ``fontsize`` pt
    plus ``extra_in`` inches (tick marks, padding, an axis label), estimated from the character count so the
    figure needs no measuring pass."""
    longest = max((len(str(lab)) for lab in labels), default=0)
    inches = longest * CHAR_EM * fontsize / 72.0 + extra_in
    return min(0.6, inches / fig.get_figwidth())


def _classes(values: np.ndarray) -> np.ndarray:
    """Class index 0…8 of scores rounded to the 0.5 grid and clipped to 1–5."""
    clipped = np.clip(np.asarray(values, dtype=np.float64), 1.0, 5.0)
    return np.rint(clipped * 2.0).astype(np.int64) - 2


# ---------------------------------------------------------------------------- predicted vs actual
def plot_predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, path: Path, *, seed: int = 0) -> Path:
    """Hexbin of predictions against jittered labels (the labels sit on the 0.5 grid), with y = x."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if len(actual) > MAX_SCATTER_POINTS:
        keep = rng.choice(len(actual), MAX_SCATTER_POINTS, replace=False)
        actual, predicted = actual[keep], predicted[keep]
    jittered = actual + rng.uniform(-0.18, 0.18, size=len(actual))
    lo = min(0.75, float(np.nanmin(predicted)) - 0.1) if len(predicted) else 0.75
    hi = max(5.25, float(np.nanmax(predicted)) + 0.1) if len(predicted) else 5.25
    fig = figure(figsize=(6.4, 5.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.09, top=0.94)
    if len(actual):
        hb = ax.hexbin(jittered, predicted, gridsize=60, bins="log", mincnt=1, cmap="viridis",
                       extent=(0.75, 5.25, lo, hi))
        fig.colorbar(hb, ax=ax, label="rows (log scale)")
    ax.plot([lo, hi], [lo, hi], color="crimson", lw=1.2, ls="--", label="y = x (perfect)")
    ax.set_xlim(0.75, 5.25)
    ax.set_ylim(lo, hi)
    ax.set_xticks(GRID)
    ax.set_xlabel("actual paddle score (jittered ±0.18 around the 0.5 grid)")
    ax.set_ylabel("predicted paddle score")
    ax.set_title(f"Predicted vs actual, held-out test set ({len(actual):,} rows)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- residuals by lake
def plot_residuals_by_lake(lakes: np.ndarray, actual: np.ndarray, predicted: np.ndarray, path: Path,
                           *, top: int = 25) -> Path:
    """Box plot of residuals (prediction − label) for the ``top`` lakes with most test rows (ties by name).

    Rows are grouped by integer lake codes (no per-row strings), so a categorical lake column costs one pass."""
    from kaayko_exp.data.schema import lake_codes

    resid = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    codes, names = lake_codes(lakes)
    sizes = np.bincount(codes, minlength=len(names))
    ranked = sorted(range(len(names)), key=lambda g: (-int(sizes[g]), names[g]))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    counts = {names[g]: int(sizes[g]) for g in ranked}
    chosen = [names[g] for g in ranked[:top]]
    groups = {names[g]: resid[order[bounds[g]:bounds[g + 1]]] for g in ranked[:top]}
    chosen = chosen[::-1]  # most rows at the top
    height = max(3.0, 0.32 * len(chosen) + 1.5)
    fig = figure(figsize=(8.0, height))
    ax = fig.subplots()
    labels = [f"{_short(name)} (n={int(counts[name]):,})" for name in chosen]
    fig.subplots_adjust(left=left_margin(fig, labels, 8), right=0.97, bottom=0.65 / height,
                        top=1.0 - 0.45 / height)
    if chosen:
        ax.boxplot([groups[name] for name in chosen], orientation="horizontal", showfliers=False, widths=0.6,
                   patch_artist=True, boxprops={"facecolor": "#9ecae1", "edgecolor": "#3182bd"},
                   medianprops={"color": "#08306b"})
        ax.set_yticks(range(1, len(chosen) + 1))
        ax.set_yticklabels(labels, fontsize=8)
    ax.axvline(0.0, color="crimson", lw=1.0, ls="--")
    ax.set_xlabel("residual: predicted − actual (whiskers 1.5 IQR, outliers hidden)")
    shown = f"top {len(chosen)} of {len(counts)} lakes by rows" if len(counts) > len(chosen) else f"{len(chosen)} lakes"
    ax.set_title(f"Residuals by lake, held-out test set ({shown})")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


# ---------------------------------------------------------------------------- feature importance
def importance_values(block: Any) -> Optional[dict[str, tuple[float, float]]]:
    """``{feature: (value, std)}`` from an importance mapping, or None when there is none.

    Accepts ``{name: value}``, ``{name: {"mean": m, "std": s}}`` or
    ``{"names": [...], "mean"/"importances": [...], "std": [...]}``.
    """
    if not block:
        return None
    if isinstance(block, Mapping) and "names" in block:
        names = list(block["names"])
        vals = block.get("mean", block.get("importances", block.get("values")))
        stds = block.get("std") or [0.0] * len(names)
        return {str(n): (float(v), float(s)) for n, v, s in zip(names, vals, stds)}
    out: dict[str, tuple[float, float]] = {}
    for name, value in dict(block).items():
        if isinstance(value, Mapping):
            mean = value.get("mean", value.get("importance", value.get("value")))
            if mean is not None:  # None: not measured (evaluation.permutation_max_rows=0, saved as null)
                out[str(name)] = (float(mean), float(value.get("std", 0.0) or 0.0))
        elif value is not None:
            out[str(name)] = (float(value), 0.0)
    return out or None


def top_features(values: Optional[dict[str, tuple[float, float]]], top: int) -> list[tuple[str, float, float]]:
    if not values:
        return []
    ranked = sorted(values.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [(name, v, s) for name, (v, s) in ranked[:top]]


def plot_importance(importance: Mapping[str, Any], path: Path, *, top: int = 20) -> Path:
    """Two horizontal bar charts: the model's own importance and permutation importance."""
    panels = [("model's own importance", importance_values(importance.get("model")), "#3182bd"),
              ("permutation importance (RMSE increase)", importance_values(importance.get("permutation")), "#e6550d")]
    longest = max([len(top_features(v, top)) for _, v, _ in panels] + [1])
    height = max(3.0, 0.3 * longest + 1.5)
    fig = figure(figsize=(12.0, height))
    axes = fig.subplots(1, 2)
    names = [_short(n, 28) for _, v, _ in panels for n, _, _ in top_features(v, top)]
    left = left_margin(fig, names, 8, extra_in=0.2)
    gap = left + 0.03  # the right panel's labels sit between the panels
    fig.subplots_adjust(left=left, right=0.98, wspace=gap / ((0.98 - left - gap) / 2), bottom=0.45 / height,
                        top=1.0 - 0.75 / height)
    for ax, (title, values, colour) in zip(axes, panels):
        rows = top_features(values, top)
        ax.set_title(title)
        if not rows:
            ax.text(0.5, 0.5, "not available for this model", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        rows = rows[::-1]
        pos = np.arange(len(rows))
        stds = [s for _, _, s in rows]
        ax.barh(pos, [v for _, v, _ in rows], xerr=stds if any(stds) else None, color=colour, alpha=0.85,
                error_kw={"elinewidth": 0.8, "ecolor": "black"})
        ax.set_yticks(pos)
        ax.set_yticklabels([_short(n, 28) for n, _, _ in rows], fontsize=8)
        ax.axvline(0.0, color="black", lw=0.6)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Feature importance (top {top})")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- confusion matrix
def confusion(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """9×9 counts: rows the true class, columns the rounded, clipped prediction."""
    t, p = _classes(actual), _classes(predicted)
    n = len(GRID)
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def plot_confusion(actual: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    """The confusion matrix on the 0.5 grid, normalised per true class and annotated."""
    counts = confusion(actual, predicted)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=np.float64), where=totals > 0)
    fig = figure(figsize=(7.6, 6.6))
    ax = fig.subplots()
    fig.subplots_adjust(left=left_margin(fig, [f"5.0 (n={int(t):,})" for t in totals[:, 0]], 8, extra_in=0.55),
                        right=0.98, bottom=0.08, top=0.94)
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, label="share of the true class")
    labels = [f"{g:.1f}" for g in GRID]
    ax.set_xticks(range(len(GRID)))
    ax.set_xticklabels(labels)
    ax.set_yticks(range(len(GRID)))
    ax.set_yticklabels([f"{lab} (n={int(t):,})" for lab, t in zip(labels, totals[:, 0])], fontsize=8)
    for i in range(len(GRID)):
        for j in range(len(GRID)):
            if totals[i, 0] == 0 or counts[i, j] == 0:
                continue
            pct = 100 * share[i, j]
            ax.text(j, i, "<1" if pct < 0.5 else f"{pct:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.55 else "black")
    ax.set_xlabel("predicted class (rounded to 0.5, clipped to 1–5)")
    ax.set_ylabel("true class")
    acc = np.trace(counts) / max(int(counts.sum()), 1)
    ax.set_title(f"Class confusion, % of each true class (accuracy {acc:.3f})")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- all of them
#: Seconds :func:`make_plots` waits for the figures a forked child draws before drawing them itself.
CHILD_TIMEOUT_SECONDS = 60.0


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _may_fork() -> bool:
    """A second core, and a plain run's main thread: not a sweep trial's thread (other trials may hold locks a
    forked child would inherit held) nor a Dask client's process."""
    import threading

    return (hasattr(os, "fork") and _cores() >= 2 and threading.current_thread() is threading.main_thread()
            and "distributed" not in sys.modules)


def _reap(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the child ``pid``; True when it exited with status 0. A child still running
    then is killed."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.002)


def _shares(costs: list[float]) -> tuple[list[int], list[int]]:
    """Job indices for this process and for the child, each ascending: the costliest first, each to the side with
    less so far (this process on ties), so both finish about together."""
    mine: list[int] = []
    theirs: list[int] = []
    load = [0.0, 0.0]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        side = 0 if load[0] <= load[1] else 1
        (mine, theirs)[side].append(i)
        load[side] += costs[i]
    return sorted(mine), sorted(theirs)


def draw_all(jobs: list["FigureJob"]) -> list[Path]:
    """Run ``jobs`` (each draws one figure and writes it atomically to its ``path``); return the paths in order.

    Drawing is single-threaded Python, so with a second core a forked child draws some of the jobs (it inherits
    the imported matplotlib and the data; it writes its files and reports by its exit status only) while this
    process draws the others, divided by their ``cost`` (:func:`_shares`): the figures are the same, drawn in
    about half the wall time. A child that fails or hangs is killed and its figures are drawn here, so errors
    surface in this process."""
    if len(jobs) < 2 or not _may_fork():
        return [job() for job in jobs]
    mine, theirs = _shares([job.cost for job in jobs])
    for stream in (sys.stdout, sys.stderr):  # nothing buffered for the child to inherit
        stream.flush()
    pid = os.fork()
    if pid == 0:  # the child: its figures, then out without running the parent's exit handlers
        code = 1
        try:
            for i in theirs:
                jobs[i]()
            code = 0
        finally:
            os._exit(code)
    try:
        for i in mine:
            jobs[i]()
    except BaseException:
        _reap(pid, 0.0)
        raise
    if not _reap(pid, CHILD_TIMEOUT_SECONDS):
        log.warning("report: drawing figures in a second process failed; drawing them here")
        for i in theirs:
            jobs[i]()
    return [job.path for job in jobs]


class FigureJob:
    """One figure: ``fn(*args, path, **kwargs)`` -> ``path``; ``path`` known before it is drawn; ``cost``: its
    drawing time relative to the others' (how :func:`draw_all` divides the jobs between two processes)."""

    def __init__(self, fn: Callable[..., Path], path: Path, *args: Any, cost: float = 1.0, **kwargs: Any) -> None:
        self.fn, self.path, self.args, self.kwargs, self.cost = fn, Path(path), args, kwargs, float(cost)

    def __call__(self) -> Path:
        return self.fn(*self.args, self.path, **self.kwargs)


#: each figure's drawing CPU seconds at sample_size=large (median of 3 after a first figure: residuals by lake
#: 0.26, predicted vs actual 0.18, feature importance 0.18, confusion 0.13), the costs draw_all divides by
FIGURE_COSTS = {PREDICTED_VS_ACTUAL: 0.18, RESIDUALS_BY_LAKE: 0.26, CONFUSION_MATRIX: 0.13, FEATURE_IMPORTANCE: 0.18}


def make_plots(run_path: Path, results: Mapping[str, Any], out_dir: Path, *, seed: int = 0,
               predictions: Any = None) -> list[Path]:
    """Draw every plot for a run (two at a time when a second core is free: :func:`draw_all`); return the
    written paths.

    The test predictions are ``predictions`` (a frame with the ``lake``, label and ``prediction`` columns of
    ``predictions/test.parquet``, when the evaluate stage that wrote the file ran in this process) or read from
    that file; the plots from them are skipped (with a warning) when there are none. The importance plot needs
    only ``results``.
    """
    out_dir = Path(out_dir)
    jobs: list[FigureJob] = []
    pred_path = Path(run_path) / "predictions" / "test.parquet"
    if predictions is not None or pred_path.exists():  # a file, or a partitioned dataset (backend=dask)
        import pandas as pd

        frame = (predictions if predictions is not None
                 else pd.read_parquet(pred_path, columns=[LAKE, LABEL, PREDICTION]))
        actual = frame[LABEL].to_numpy(dtype=np.float64)
        predicted = frame[PREDICTION].to_numpy(dtype=np.float64)
        jobs.append(FigureJob(plot_predicted_vs_actual, out_dir / PREDICTED_VS_ACTUAL, actual, predicted, seed=seed,
                              cost=FIGURE_COSTS[PREDICTED_VS_ACTUAL]))
        jobs.append(FigureJob(plot_residuals_by_lake, out_dir / RESIDUALS_BY_LAKE, frame[LAKE], actual, predicted,
                              cost=FIGURE_COSTS[RESIDUALS_BY_LAKE]))
        jobs.append(FigureJob(plot_confusion, out_dir / CONFUSION_MATRIX, actual, predicted,
                              cost=FIGURE_COSTS[CONFUSION_MATRIX]))
    else:
        log.warning("report: %s is missing; the prediction plots are skipped", pred_path)
    jobs.append(FigureJob(plot_importance, out_dir / FEATURE_IMPORTANCE, results.get("importance") or {},
                          cost=FIGURE_COSTS[FEATURE_IMPORTANCE]))
    return draw_all(jobs)
