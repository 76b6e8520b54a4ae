"""The comparison's figures (matplotlib, Agg), each written atomically as one PNG.

* :func:`plot_metric_per_run` — the held-out metric per run; CV mean ± std beside it when present;
* :func:`plot_lake_heatmap` — per-lake MAE, lakes × runs, for one test-set group;
* :func:`plot_win_rate_heatmap` — the pairwise win-rate matrix, non-significant cells marked "ns";
* :func:`plot_sweep_parameters` — for sweep trials: the metric against each varied parameter;
* :func:`plot_parallel_coordinates` — for sweep trials: every varied parameter and the metric;
* :func:`plot_learning_curve` — when runs differ only in sample size: held-out MAE and class accuracy
  against training rows (log x), one line per otherwise-identical set of runs (e.g. per model).

The helpers :func:`varied_params`, :func:`run_labels` and :func:`learning_curve_lines` decide what is
drawn; they are pure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from kaayko_exp.compare.records import RunRecord
from kaayko_exp.compare.table import lower_is_better
from kaayko_exp.evaluation.plots import figure, save_figure

SAMPLE_SIZE_PREFIX = "sample_size."
# Saved-config keys that do not change what a run learns: never "varied parameters".
NOT_RESULT_KEYS = frozenset({"resume", "n_jobs", "cache_dir", "plots"})
MAX_BARS = 60  # runs in the per-run bar plot (the best ones when there are more)
MAX_LAKE_LABELS = 60  # lakes named on the heatmap's axis


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1):]


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


# ------------------------------------------------------------------------------------------ what varies
def varied_params(records: Sequence[RunRecord], *, ignore_prefixes: Sequence[str] = ()) -> list[str]:
    """Saved-config keys whose value differs between the runs (a missing key counts as a value), sorted."""
    keys = sorted({k for r in records for k in r.params})
    out = []
    for key in keys:
        if key in NOT_RESULT_KEYS or key.startswith("hydra.") or any(key.startswith(p) for p in ignore_prefixes):
            continue
        values = {repr(r.params.get(key, "<unset>")) for r in records}
        if len(values) > 1:
            out.append(key)
    return out


def run_labels(records: Sequence[RunRecord], width: int = 40) -> list[str]:
    """What tells each run apart from the others, e.g. ``xgboost · large``: the group choices that differ
    between the runs, then the parameters that differ between runs with the same choices (``max_depth=3``),
    then, where that is still not unique or too long, the trial number or the run folder's name."""
    recs = list(records)
    choices = sorted({k for r in recs for k in r.choices if len({x.choices.get(k) for x in recs}) > 1},
                     key=lambda k: (k != "model", k))
    parts = [[str(r.choices.get(k, "–")) for k in choices] for r in recs]
    if len({tuple(p) for p in parts}) < len(recs):
        for key in varied_params(recs):
            if key.split(".", 1)[0] in choices:  # follows a choice already shown (model.*, sample_size.*)
                continue
            same: dict[tuple[str, ...], set[str]] = {}
            for p, r in zip(parts, recs):
                same.setdefault(tuple(p), set()).add(repr(r.params.get(key)))
            if any(len(v) > 1 for v in same.values()):  # tells apart runs that look the same so far
                for p, r in zip(parts, recs):
                    value = _value(r.params.get(key))
                    p.append(value if key.endswith(".name") else f"{key.rsplit('.', 1)[-1]}={value}")
    joined = [" · ".join(p) for p in parts]
    labels = []
    for text, r in zip(joined, recs):
        name = f"trial {r.trial.number}" if r.trial is not None else r.path.name
        if not text or len(text) > width:
            labels.append(name)
        else:
            labels.append(f"{text} · {name}" if joined.count(text) > 1 else text)
    return labels


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else "–" if v is None else str(v)


def _sample_size_varies(records: Sequence[RunRecord]) -> bool:
    sizes = {(r.choices.get("sample_size"), tuple(sorted((k, repr(v)) for k, v in r.params.items()
                                                          if k.startswith(SAMPLE_SIZE_PREFIX))), r.rows)
             for r in records}
    return len(sizes) > 1


def learning_curve_lines(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs that differ only in sample size, as lines ``{label: runs sorted by training rows}``.

    Runs are grouped by every other varied parameter; the label names those values (e.g.
    ``model.name=xgboost``). Empty when sample size does not vary, when no line has two sizes, or when
    a run lacks its training rows or MAE.
    """
    usable = [r for r in records if r.status == "completed" and r.rows and "mae" in r.metrics]
    if len(usable) < 2 or not _sample_size_varies(usable):
        return {}
    others = varied_params(usable, ignore_prefixes=(SAMPLE_SIZE_PREFIX,))
    lines: dict[str, list[RunRecord]] = {}
    for rec in usable:
        label = _line_label(rec, others)
        lines.setdefault(label, []).append(rec)
    lines = {k: sorted(v, key=lambda r: int(r.rows or 0)) for k, v in lines.items()}
    if not any(len({r.rows for r in v}) > 1 for v in lines.values()):
        return {}
    return lines


def _line_label(rec: RunRecord, others: list[str]) -> str:
    if not others:
        return rec.model or "runs"
    named = [k for k in others if k in ("model.name", "model._name", "model")]
    keys = named or others[:3]
    text = ", ".join(f"{k}={rec.params.get(k)}" for k in keys)
    return text if named or len(others) <= 3 else text + ", …"


# ------------------------------------------------------------------------------------------ figures
def plot_metric_per_run(records: Sequence[RunRecord], metric: str, path: Path) -> Optional[Path]:
    """Bars of ``metric`` per run (a test metric, ``val_``/``cv_`` ones, ``objective``); for a held-out
    test metric, CV mean ± std beside each bar where the run has them."""
    rows = [r for r in records if r.value(metric) is not None]
    if not rows:
        return None
    lower = lower_is_better(metric, records)
    total = len(rows)
    if total > MAX_BARS:  # the best MAX_BARS, in their input order
        sign = 1.0 if lower else -1.0
        keep = set(np.argsort([sign * r.value(metric) for r in rows], kind="stable")[:MAX_BARS].tolist())
        rows = [r for k, r in enumerate(rows) if k in keep]
    x = np.arange(len(rows))
    fig = figure(figsize=(max(5.0, 0.55 * len(rows) + 2), 4.2))
    ax = fig.subplots()
    plain = "_" not in metric or metric in ("class_accuracy", "within_half", "skill_accuracy")
    ax.bar(x, [r.value(metric) for r in rows], width=0.6, color="#4C72B0",
           label=f"held-out test {metric}" if plain else metric)
    cv = [(k, r) for k, r in enumerate(rows) if plain and _num(r.cv_mean.get(metric)) is not None]
    if cv:
        ax.errorbar([k + 0.34 for k, _ in cv], [float(r.cv_mean[metric]) for _, r in cv],
                    yerr=[float(r.cv_std.get(metric) or 0.0) for _, r in cv], fmt="o", color="#C44E52",
                    capsize=4, label=f"CV {metric}: mean ± std over folds")
    ax.set_xticks(x)
    ax.set_xticklabels(run_labels(rows), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric + (" (lower is better)" if lower else ""))
    ax.set_title(f"{metric} per run" + (f" (the best {MAX_BARS} of {total})" if total > len(rows) else ""))
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_lake_heatmap(lakes: Sequence[str], runs: Sequence[str], lake_mae: np.ndarray, path: Path) -> Path:
    """Per-lake MAE: one row per lake, one column per run (darker: larger error)."""
    mae = np.asarray(lake_mae, dtype=np.float64)
    fig = figure(figsize=(max(4.5, 0.7 * len(runs) + 3), min(16.0, max(3.0, 0.28 * len(lakes) + 1.5))))
    ax = fig.subplots()
    im = ax.imshow(mae, aspect="auto", cmap="magma_r", interpolation="nearest")
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([_short(r) for r in runs], rotation=45, ha="right", fontsize=8)
    if len(lakes) <= MAX_LAKE_LABELS:
        ax.set_yticks(range(len(lakes)))
        ax.set_yticklabels([_short(x, 24) for x in lakes], fontsize=7)
    else:
        ax.set_ylabel(f"{len(lakes)} lakes (sorted by name)")
    fig.colorbar(im, ax=ax, label="MAE on the lake's held-out rows")
    ax.set_title("Per-lake MAE")
    return save_figure(fig, path)


def plot_win_rate_heatmap(runs: Sequence[str], matrix: np.ndarray, significant: np.ndarray, path: Path, *,
                          method: str = "Holm-adjusted") -> Path:
    """Row i, column j: share of lakes where run i has the lower MAE than run j; "ns": not significant."""
    return save_figure(win_rate_figure(runs, matrix, significant, method=method), path)


def win_rate_figure(runs: Sequence[str], matrix: np.ndarray, significant: np.ndarray, *,
                    method: str = "Holm-adjusted") -> Any:
    """The win-rate heatmap as a matplotlib figure; the title sits above the plot and its colour bar."""
    m = np.asarray(matrix, dtype=np.float64)
    fig = figure(figsize=(max(5.0, 0.8 * len(runs) + 3.0), max(4.4, 0.8 * len(runs) + 2.0)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(m), vmin=0.0, vmax=1.0, cmap="RdBu")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if i == j or not np.isfinite(m[i, j]):
                continue
            text = f"{m[i, j]:.2f}" + ("" if significant[i, j] else "\nns")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if abs(m[i, j] - 0.5) > 0.3 else "black")
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([_short(r) for r in runs], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([_short(r) for r in runs], fontsize=8)
    ax.set_xlabel("against run (column)")
    ax.set_ylabel("run (row)")
    fig.colorbar(im, ax=ax, label="share of lakes with the lower MAE")
    fig.suptitle(f"Win rate over held-out lakes\nns: not significant ({method} Wilcoxon p ≥ 0.05)", fontsize=10)
    return fig


def _axis_values(values: list[Any]) -> tuple[np.ndarray, Optional[list[str]]]:
    """Numbers as they are; anything else as category codes with their labels."""
    nums = [_num(v) for v in values]
    if all(n is not None for n in nums):
        return np.asarray(nums, dtype=np.float64), None
    labels = sorted({repr(v) if not isinstance(v, str) else v for v in values})
    index = {label: k for k, label in enumerate(labels)}
    return np.asarray([index[repr(v) if not isinstance(v, str) else v] for v in values], dtype=np.float64), labels


def _trial_rows(records: Sequence[RunRecord], metric: str) -> list[RunRecord]:
    return [r for r in records if r.trial is not None and r.value(metric) is not None]


def plot_sweep_parameters(records: Sequence[RunRecord], metric: str, out_dir: Path,
                          prefix: str = "sweep_") -> list[Path]:
    """One scatter per varied parameter of the sweep trials: the held-out ``metric`` against its value."""
    rows = _trial_rows(records, metric)
    params = varied_params(rows) if len(rows) >= 2 else []
    if not params:
        return []
    y = np.asarray([r.value(metric) for r in rows])
    paths = []
    for key in params:
        x, labels = _axis_values([r.params.get(key) for r in rows])
        fig = figure(figsize=(4.8, 3.6))
        ax = fig.subplots()
        ax.scatter(x, y, s=22, color="#4C72B0")
        if labels is not None:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels([_short(s, 16) for s in labels], rotation=30, ha="right", fontsize=8)
        elif np.all(x > 0) and x.max() / x.min() >= 100:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} against {key}")
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
        paths.append(save_figure(fig, out_dir / f"{prefix}{safe}.png"))
    return paths


def plot_parallel_coordinates(records: Sequence[RunRecord], metric: str, path: Path) -> Optional[Path]:
    """Each sweep trial as a line across its varied parameters (scaled to 0–1) and the metric."""
    rows = _trial_rows(records, metric)
    params = varied_params(rows) if len(rows) >= 2 else []
    if not params:
        return None
    import matplotlib
    from matplotlib import cm, colors

    axes_values, tick_text = [], []
    for key in params + [metric]:
        raw = [r.params.get(key) for r in rows] if key != metric else [r.value(metric) for r in rows]
        x, labels = _axis_values(raw)
        lo, hi = float(np.min(x)), float(np.max(x))
        axes_values.append((x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5))
        tick_text.append(f"{lo:.3g}–{hi:.3g}" if labels is None else "/".join(_short(s, 8) for s in labels[:4]))
    data = np.column_stack(axes_values)
    y = data[:, -1]
    score = np.asarray([r.value(metric) for r in rows])
    lower = lower_is_better(metric, rows)
    norm = colors.Normalize(vmin=score.min(), vmax=score.max() if score.max() > score.min() else score.min() + 1)
    cmap = matplotlib.colormaps["viridis_r" if lower else "viridis"]
    fig = figure(figsize=(max(5.0, 1.3 * data.shape[1] + 1), 4.2))
    ax = fig.subplots()
    for k in np.argsort(-y if lower else y):  # best drawn last (on top)
        ax.plot(range(data.shape[1]), data[k], color=cmap(norm(score[k])), alpha=0.8, lw=1.2)
    ax.set_xticks(range(data.shape[1]))
    ax.set_xticklabels([f"{_short(k, 20)}\n{t}" for k, t in zip(params + [metric], tick_text)], fontsize=7)
    ax.set_yticks([0, 1])
    ax.set_yticklabels(["min", "max"])
    for xpos in range(data.shape[1]):
        ax.axvline(xpos, color="grey", lw=0.6)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"held-out {metric}")
    ax.set_title("Sweep trials: parallel coordinates")
    return save_figure(fig, path)


def plot_learning_curve(records: Sequence[RunRecord], path: Path) -> Optional[Path]:
    """Held-out MAE and class accuracy against training rows (log x), one line per :func:`learning_curve_lines`."""
    lines = learning_curve_lines(records)
    if not lines:
        return None
    fig = figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for label, runs in lines.items():
        rows = [int(r.rows or 0) for r in runs]
        left.plot(rows, [float(r.metrics["mae"]) for r in runs], marker="o", label=_short(label, 40))
        acc = [(n, float(r.metrics["class_accuracy"])) for n, r in zip(rows, runs)
               if _num(r.metrics.get("class_accuracy")) is not None]
        if acc:
            right.plot([a for a, _ in acc], [b for _, b in acc], marker="o", label=_short(label, 40))
    for ax, name in ((left, "held-out MAE (lower is better)"), (right, "held-out class accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("training rows (log scale)")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Learning curve")
    return save_figure(fig, path)
