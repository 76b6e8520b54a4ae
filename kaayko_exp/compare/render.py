"""``--report DIR``: comparison.md and a self-contained comparison.html, plus the PNGs they show.

:func:`write_report` writes, under ``out_dir``::

    comparison.md     the table, the test-set groups, the win-rate matrices, the per-lake table of the best runs
    comparison.html   the same, with inline CSS and every figure embedded as a base64 data URI (opens offline)
    plots/*.png       the figures (kaayko_exp.compare.plots); comparison.md links them relatively

The table rows come from the caller (the CLI's table: a list of dicts and the column order); the
statistics come from :func:`kaayko_exp.compare.stats.win_rates` (computed here unless passed in).
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from kaayko_exp import atomic
from kaayko_exp.compare.records import RunRecord
from kaayko_exp.errors import ConfigError

BEST_RUNS = 5  # runs shown in the per-lake table of each test-set group
MAX_LAKES = 100  # lakes listed in that table (the ones with the most held-out rows when there are more)
MARKDOWN = "comparison.md"
HTML = "comparison.html"
PLOTS = "plots"

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
td.ns { color: #888; } td.best { font-weight: bold; background: #e8f4e8; }
td.wrap { white-space: normal; text-align: left; min-width: 16em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; display: block; }
p.note { color: #555; font-size: 0.9em; } ul { font-size: 0.9em; }
"""


@dataclass
class Figure:
    title: str
    path: Path


@dataclass
class _Doc:
    """The report as a list of blocks, rendered to Markdown and HTML alike."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, lines: Sequence[str]) -> None:
        if lines:
            self.blocks.append(("ul", list(lines)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], marks: Optional[Sequence[Sequence[str]]] = None,
              text_cols: int = 1) -> None:
        self.blocks.append(("table", (list(header), [list(r) for r in rows], marks, text_cols)))

    def figure(self, fig: Figure) -> None:
        self.blocks.append(("img", fig))


# ------------------------------------------------------------------------------------------ formatting
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}" if abs(v) >= 1 else f"{v:.4f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


def _signed(v: float) -> str:
    return f"{v:+.4f}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: _Doc, out_dir: Path) -> str:
    lines: list[str] = []
    for kind, body in doc.blocks:
        if kind == "h":
            lines += ["#" * body[0] + " " + body[1], ""]
        elif kind == "p":
            lines += [body, ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in body] + [""]
        elif kind == "table":
            header, rows, marks, _ = body
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            for r, row in enumerate(rows):
                cells = []
                for c, value in enumerate(row):
                    text = _md_cell(_fmt(value))
                    if marks and "best" in marks[r][c] and text:
                        text = f"**{text}**"
                    cells.append(text)
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif kind == "img":
            rel = body.path.relative_to(out_dir).as_posix()
            lines += [f"![{body.title}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_html(doc: _Doc, title: str) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    parts += html_blocks(doc)
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def html_blocks(doc: _Doc) -> list[str]:
    """The document's blocks as HTML elements (figures embedded), without the page around them."""
    e = html.escape
    parts: list[str] = []
    for kind, body in doc.blocks:
        if kind == "h":
            parts.append(f"<h{body[0]}>{e(body[1])}</h{body[0]}>")
        elif kind == "p":
            parts.append(f'<p class="note">{e(body)}</p>')
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in body) + "</ul>")
        elif kind == "table":
            header, rows, marks, text_cols = body
            cls = lambda c: ' class="text"' if c < text_cols else ""  # noqa: E731
            out = ["<table>", "<thead><tr>" + "".join(f"<th{cls(c)}>{e(h)}</th>" for c, h in enumerate(header))
                   + "</tr></thead>", "<tbody>"]
            for r, row in enumerate(rows):
                cells = []
                for c, value in enumerate(row):
                    names = (["text"] if c < text_cols else []) + (marks[r][c].split() if marks else [])
                    attr = f' class="{" ".join(names)}"' if names else ""
                    cells.append(f"<td{attr}>{e(_fmt(value))}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</tbody></table>")
            parts.append("".join(out))
        elif kind == "img":
            data = base64.b64encode(body.path.read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{e(body.title)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{e(body.title)}</figcaption></figure>")
    return parts


# ------------------------------------------------------------------------------------------ sections
def _table_section(doc: _Doc, table_rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]]) -> None:
    doc.heading(2, "Runs")
    if not table_rows:
        doc.para("No runs to show.")
        return
    cols = list(columns) if columns else list(dict.fromkeys(k for row in table_rows for k in row))
    doc.table(cols, [[row.get(c) for c in cols] for row in table_rows], text_cols=1)


def _pareto_section(doc: _Doc, records: Sequence[RunRecord]) -> None:
    """The Pareto front of a multi-objective sweep: its trials with their objective values."""
    front = [r for r in records if r.trial is not None and r.trial.pareto]
    if not front:
        return
    names = next((r.objective.get("names") for r in front if r.objective and r.objective.get("names")), None)
    doc.heading(2, "Pareto front")
    doc.para(f"Trials of the multi-objective sweep that no other complete trial beats in every objective"
             f"{' (' + ', '.join(names) + ')' if names else ''}, as the sweeper's optimization_results.yaml lists "
             "them.")
    doc.items([f"trial {r.trial.number}: {', '.join(f'{v:.6g}' for v in r.trial.values or [])} ({r.shown})"
               for r in front])


def win_rate_sections(doc: _Doc, win_rates: Any, plots_dir: Optional[Path] = None, level: int = 2) -> list[Path]:
    """The test-set groups and, per group, the win-rate matrix, the pairwise statistics and the per-lake table of
    the best runs (the heatmaps too when ``plots_dir`` is given); returns the figures written."""
    from kaayko_exp.compare.stats import UNIT_NOTE

    doc.heading(level, "Test sets")
    doc.para("Runs are compared lake by lake only when their reports record the same split and held-out labels "
             "hashes and their prediction files agree on the labels row by row.")
    doc.items(win_rates.notes or ["No run has a recorded test set."])
    if win_rates.groups:
        doc.para(UNIT_NOTE)
    made: list[Path] = []
    multi = len(win_rates.groups) > 1
    for k, group in enumerate(win_rates.groups):
        made += _group_section(doc, group, k, plots_dir, multi=multi, level=level)
    return made


def _group_section(doc: _Doc, g: Any, index: int, plots_dir: Optional[Path], *, multi: bool,
                   level: int = 2) -> list[Path]:
    from kaayko_exp.compare import plots
    from kaayko_exp.compare.stats import ADJUSTMENTS, INTERVALS

    suffix = f"_{index + 1}" if multi else ""
    labels = [f"R{k + 1}" for k in range(len(g.runs))]
    adjust = ADJUSTMENTS[g.adjust].split(" (")[0]
    doc.heading(level, f"Win rates on test set {g.name}" if multi else "Win rates over held-out lakes")
    doc.para(f"{len(g.runs)} runs evaluated on the same {g.n_rows:,} held-out rows ({len(g.lakes)} lakes; split "
             f"hash {g.split_sha256[:12]}…, labels hash {g.labels_sha256[:12]}…, labels checked row by row).")
    names = plots.run_labels(g.records) if len(g.records) == len(g.runs) else [""] * len(g.runs)
    doc.items([f"{lab}: {name} — {run}" if name else f"{lab}: {run}" for lab, name, run in zip(labels, names, g.runs)])

    doc.heading(level + 1, "Win-rate matrix")
    doc.para("Row run against column run: the share of held-out lakes where the row run has the lower MAE (a tie "
             f"counts one half). 'ns': not significant. {g.method_note()}")
    m, sig = g.win_rate_matrix(), g.significance_matrix()
    rows, marks = [], []
    for i, lab in enumerate(labels):
        row = [lab] + ["—" if i == j else f"{m[i, j]:.2f}" + ("" if sig[i, j] else " ns") for j in range(len(labels))]
        rows.append(row)
        marks.append([""] + ["" if i == j or sig[i, j] else "ns" for j in range(len(labels))])
    doc.table([""] + labels, rows, marks)

    doc.heading(level + 1, "Pairwise differences")
    doc.para("Δ: the first run's MAE minus the second's, lake by lake (negative: the first run has the lower error). "
             "Median Δ is the Hodges–Lehmann shift (median of the Walsh averages), the quantity the signed-rank test "
             "tests; its 95 % interval inverts that test, so it excludes 0 exactly when the raw p is below "
             f"{g.alpha:g} (distinct, non-zero differences). {g.interval_note()} One lake with a large error can "
             f"move the mean. 'Significant' uses the {adjust}-adjusted p over the {g.n_pairs} pair(s) of the matrix; "
             "the note says why an interval and the decision disagree.")
    pair_rows, pair_marks = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            p = g.pairs[(i, j)]
            pair_rows.append([labels[i], labels[j], p.n_lakes, f"{p.wins}/{p.losses}/{p.ties}", f"{p.win_rate:.2f}",
                              _signed(p.hl_diff), _interval(p.hl_ci_low, p.hl_ci_high), f"{p.p_value:.3g}",
                              f"{p.p_adjusted:.3g}", "yes" if p.significant else "no (ns)", _signed(p.mean_diff),
                              _interval(p.mean_ci_low, p.mean_ci_high), p.note])
            pair_marks.append([""] * 9 + ["" if p.significant else "ns"] + ["", "", "wrap"])
    doc.table(["run", "vs", "lakes", "wins/losses/ties", "win rate", "median Δ", "95 % CI (signed-rank)",
               "Wilcoxon p", f"{adjust} p", "significant", "mean Δ", f"95 % CI ({INTERVALS[g.interval]})", "note"],
              pair_rows, pair_marks, text_cols=2)
    if len(g.lakes) < 6:
        doc.para(f"With {len(g.lakes)} lakes the Wilcoxon test cannot reach p < 0.05 (two-sided, exact): no "
                 "difference can be called significant on this test set, and the median's 95 % interval is unbounded.")

    mean = g.mean_lake_mae()
    best = [int(k) for k in np.argsort(mean, kind="stable")[:BEST_RUNS]]
    doc.heading(level + 1, "Per-lake MAE of the best runs")
    doc.para(f"The {len(best)} runs with the lowest MAE averaged over lakes; the lowest MAE on each lake is bold.")
    shown = range(len(g.lakes))
    if len(g.lakes) > MAX_LAKES:  # the lakes with the most held-out rows, in name order
        shown = sorted(np.argsort(-np.asarray(g.lake_rows), kind="stable")[:MAX_LAKES].tolist())
        doc.para(f"{len(g.lakes)} lakes: the {MAX_LAKES} with the most held-out rows are listed; the mean row covers "
                 "all lakes.")
    lake_rows, lake_marks = [], []
    for li in shown:
        lake = g.lakes[li]
        vals = g.lake_mae[li, best]
        low = float(np.min(vals))
        winner = [labels[k] for k, v in zip(best, vals) if v <= low + 1e-12]
        lake_rows.append([lake, int(g.lake_rows[li])] + [float(v) for v in vals] + [", ".join(winner)])
        lake_marks.append(["", ""] + ["best" if v <= low + 1e-12 else "" for v in vals] + [""])
    lake_rows.append(["mean over lakes", int(np.sum(g.lake_rows))] + [float(mean[k]) for k in best] + [labels[best[0]]])
    lake_marks.append([""] * (len(best) + 3))
    doc.table(["lake", "rows"] + [labels[k] for k in best] + ["best"], lake_rows, lake_marks, text_cols=1)

    if plots_dir is None:
        return []
    made = [plots.plot_win_rate_heatmap(labels, m, sig, plots_dir / f"win_rate{suffix}.png",
                                        method=f"{adjust}-adjusted"),
            plots.plot_lake_heatmap(g.lakes, labels, g.lake_mae, plots_dir / f"lake_mae{suffix}.png")]
    doc.figure(Figure("Win-rate heatmap", made[0]))
    doc.figure(Figure("Per-lake MAE heatmap", made[1]))
    return made


def _interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if math.isinf(low) or math.isinf(high):
        return "(−∞, +∞)"
    return f"[{_signed(low)}, {_signed(high)}]"


def check_report_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path, refused (ConfigError) when it is a file: the report is a directory."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--report {out_dir} is a file; the report is a directory (comparison.md, comparison.html "
                          "and plots/). Give a new or existing directory.")
    return out


def write_report(out_dir: str | Path, records: Sequence[RunRecord], *,
                 table_rows: Sequence[Mapping[str, Any]], columns: Optional[Sequence[str]] = None,
                 metric: str = "mae", win_rates: Any = None, title: str = "Run comparison",
                 adjust: str = "holm", interval: str = "t") -> dict[str, Any]:
    """Write comparison.md, comparison.html and plots/*.png under ``out_dir``; return their paths.

    ``table_rows``/``columns``: the comparison table as the CLI built it (one dict per row; ``columns``
    the order, default: keys in first-seen order). ``metric``: the headline metric of the per-run bar
    plot and the sweep plots. ``win_rates``: a :class:`kaayko_exp.compare.stats.WinRates` already
    computed for ``records`` (computed here, p-values adjusted by ``adjust``, mean intervals by ``interval``,
    when None).
    Returns ``{"markdown": Path, "html": Path, "plots": [Path, …]}``.
    """
    from kaayko_exp.compare import plots, stats

    out = check_report_dir(out_dir)
    plots_dir = out / PLOTS
    plots_dir.mkdir(parents=True, exist_ok=True)
    if win_rates is None:
        win_rates = stats.win_rates(records, adjust=adjust, interval=interval)

    doc = _Doc()
    doc.heading(1, title)
    doc.para(f"{len(records)} run(s), read from their saved reports (no retraining). Held-out metrics are on each "
             "run's test set; win rates compare errors against the true labels, lake by lake.")
    _table_section(doc, table_rows, columns)
    _pareto_section(doc, records)
    made: list[Path] = []

    bar = plots.plot_metric_per_run(records, metric, plots_dir / f"metric_{metric}.png")
    if bar is not None:
        made.append(bar)
        doc.figure(Figure(f"Held-out {metric} per run (CV mean ± std where present)", bar))

    made += win_rate_sections(doc, win_rates, plots_dir)

    curve = plots.plot_learning_curve(records, plots_dir / "learning_curve.png")
    if curve is not None:
        made.append(curve)
        lines = plots.learning_curve_lines(records)
        doc.heading(2, "Learning curve")
        doc.para("The runs differ only in sample size: held-out MAE and class accuracy against training rows. Lines: "
                 + "; ".join(lines) + ".")
        doc.figure(Figure("Learning curve", curve))

    sweep = plots.plot_sweep_parameters(records, metric, plots_dir)
    parallel = plots.plot_parallel_coordinates(records, metric, plots_dir / "parallel_coordinates.png")
    if sweep or parallel:
        doc.heading(2, "Sweep")
        doc.para(f"Held-out {metric} of the sweep trials against each parameter the sweep varied.")
        for path in sweep:
            made.append(path)
            doc.figure(Figure(path.stem.removeprefix("sweep_"), path))
        if parallel is not None:
            made.append(parallel)
            doc.figure(Figure("Parallel coordinates", parallel))

    md = atomic.write_text(out / MARKDOWN, to_markdown(doc, out))
    page = atomic.write_text(out / HTML, to_html(doc, title))
    return {"markdown": md, "html": page, "plots": made}
