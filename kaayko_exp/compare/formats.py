"""Render a comparison :class:`Table` as text: table | markdown | csv | json | html.

``table`` and ``markdown`` round numbers for reading; ``csv`` and ``json`` keep full
precision (a group's metric becomes ``<metric>`` = mean plus ``<metric>_std`` and
``<metric>_n`` columns in CSV, ``{"mean", "std", "n"}`` in JSON); ``html`` is one
self-contained page.

With win rates (:class:`kaayko_exp.compare.stats.WinRates`), every format carries them whole: the
text matrix after the table, markdown and HTML sections (the report's, without figures), a
``win_rates`` object in JSON, and for CSV a second table, one row per ordered pair
(:func:`win_rates_csv`), since one CSV holds one table.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Callable

from kaayko_exp import atomic
from kaayko_exp.compare.table import Agg, Column, Table

FORMATS = ("table", "markdown", "csv", "json", "html")
_MAX_CELL = 40


def render(table: Table, fmt: str, win_rates: Any = None) -> str:
    """The table in ``fmt``, with ``win_rates`` in it too when given (CSV: see :func:`win_rates_csv`)."""
    try:
        fn: Callable[..., str] = {"table": to_text, "markdown": to_markdown, "csv": to_csv, "json": to_json,
                                  "html": to_html}[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}") from None
    return fn(table) if fmt == "csv" else fn(table, win_rates)


def write(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a kill leaves the old file or the new one)."""
    return atomic.write_text(Path(path), text)


# ---------------------------------------------------------------------------- cells
def cell(value: Any, col: Column) -> str:
    """A value as people read it."""
    if value is None:
        return ""
    if isinstance(value, Agg):
        return f"{_num(value.mean, col)} ± {_num(value.std, col)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value, col)
    if isinstance(value, (list, dict)):
        value = json.dumps(value)
    text = str(value)
    if col.kind in ("param", "choice") and len(text) > _MAX_CELL:
        text = text[: _MAX_CELL - 1] + "…"
    return text


def _num(v: float, col: Column) -> str:
    if not math.isfinite(v):
        return "n/a"
    if col.kind == "number":
        return f"{v:,.1f}" if col.key == "train_seconds" else f"{v:,.0f}"
    if col.kind == "delta":
        return f"{v:+.4f}"
    if col.kind == "metric":
        return f"{v:.4f}"
    return f"{v:.6g}"


def _cells(table: Table) -> list[list[str]]:
    return [[cell(row.get(c.key), c) for c in table.columns] for row in table.rows]


# ---------------------------------------------------------------------------- formats
def to_text(table: Table, win_rates: Any = None) -> str:
    header = [c.label for c in table.columns]
    body = _cells(table)
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    right = [c.kind in ("metric", "delta", "number", "count") for c in table.columns]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in body)]
    out += _footer(table)
    return "\n".join(out) + "\n" + (win_rate_text(win_rates) if win_rates is not None else "")


def win_rate_text(wr: Any) -> str:
    """The win-rate matrices as plain text: ``m[i, j]`` is the share of lakes where row i beats column j;
    ``*`` marks a difference the adjusted paired test finds significant."""
    from kaayko_exp.compare.stats import UNIT_NOTE

    lines = ["", "Per-lake win rates (row beats column on this share of held-out lakes; * significant):"]
    for g in wr.groups:
        m, sig = g.win_rate_matrix(), g.significance_matrix()
        lines += ["", f"test set {g.name}: {len(g.runs)} runs, {len(g.lakes)} lakes"]
        width = max(len(r) for r in g.runs)
        lines.append(" " * width + "  " + "  ".join(f"{k:>7}" for k in range(len(g.runs))))
        for i, run in enumerate(g.runs):
            cells = ["      —" if i == j else f"{m[i, j]:6.0%}{'*' if sig[i, j] else ' '}" for j in range(len(g.runs))]
            lines.append(f"{run:<{width}}  " + "  ".join(cells) + f"   [{i}]")
        lines.append(g.method_note())
    if wr.groups:
        lines.append(UNIT_NOTE)
    lines += [f"- {note}" for note in wr.notes]
    return "\n".join(lines) + "\n"


def _win_rate_doc(wr: Any) -> Any:
    from kaayko_exp.compare.render import _Doc, win_rate_sections

    doc = _Doc()
    win_rate_sections(doc, wr, plots_dir=None)
    return doc


def to_markdown(table: Table, win_rates: Any = None) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    header = "| " + " | ".join(esc(c.label) for c in table.columns) + " |"
    align = "|" + "|".join("---:" if c.kind in ("metric", "delta", "number", "count") else "---"
                           for c in table.columns) + "|"
    body = ["| " + " | ".join(esc(x) for x in r) + " |" for r in _cells(table)]
    foot = _footer(table)
    text = "\n".join([header, align, *body] + ([""] + foot if foot else [])) + "\n"
    if win_rates is not None:
        from kaayko_exp.compare.render import to_markdown as doc_markdown

        text += "\n" + doc_markdown(_win_rate_doc(win_rates), Path("."))
    return text


def _footer(table: Table) -> list[str]:
    out = []
    if table.baseline:
        out.append(f"Δ: difference to the baseline run {table.baseline} (row value − baseline value).")
    if table.group_by is not None:
        out.append(f"Rows group runs that differ only in {', '.join(table.group_by)}: mean ± std over the runs.")
    return out


def _flat(table: Table) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows for CSV: an aggregated metric becomes mean, <key>_std and <key>_n."""
    agg_keys = {c.key for c in table.columns if any(isinstance(r.get(c.key), Agg) for r in table.rows)}
    names: list[str] = []
    for c in table.columns:
        names.append(_name(c))
        if c.key in agg_keys:
            names += [f"{_name(c)}_std", f"{_name(c)}_n"]
    rows = []
    for row in table.rows:
        out: dict[str, Any] = {}
        for c in table.columns:
            v = row.get(c.key)
            if isinstance(v, Agg):
                out[_name(c)], out[f"{_name(c)}_std"], out[f"{_name(c)}_n"] = v.mean, v.std, v.n
            else:
                out[_name(c)] = json.dumps(v) if isinstance(v, (list, dict)) else v
        rows.append(out)
    return names, rows


def _name(col: Column) -> str:
    """The machine name of a column: the metric or config key (``delta_mae`` for a delta)."""
    return col.key.replace("delta:", "delta_").split(":", 1)[-1]


def to_csv(table: Table) -> str:
    names, rows = _flat(table)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buf.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, Agg):
        return {"mean": _json_value(value.mean), "std": _json_value(value.std), "n": value.n}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(table: Table, win_rates: Any = None) -> str:
    rows = []
    for row in table.rows:
        out = {_name(c): _json_value(row.get(c.key)) for c in table.columns}
        out["runs"] = row.get("runs", [])
        if row.get("note"):
            out["note"] = row["note"]
        rows.append(out)
    doc = {
        "columns": [{"name": _name(c), "label": c.label, "kind": c.kind} for c in table.columns],
        "rows": rows,
        "baseline": table.baseline,
        "group_by": table.group_by,
        "skipped": [{"path": p, "reason": r} for p, r in table.skipped],
    }
    if win_rates is not None:
        doc["win_rates"] = win_rates.to_dict()
    return json.dumps(doc, indent=2, default=str) + "\n"


#: columns of :func:`win_rates_csv`: the test set, the pair, then :class:`kaayko_exp.compare.stats.PairStats`
PAIR_FIELDS = ("split_sha256", "labels_sha256", "run", "vs", "n_lakes", "wins", "losses", "ties", "win_rate",
               "hl_diff", "hl_ci_low", "hl_ci_high", "mean_diff", "mean_ci_low", "mean_ci_high", "p_value",
               "p_adjusted", "adjust", "alpha", "significant", "interval", "note")


def win_rates_csv(wr: Any) -> str:
    """The win rates as one CSV table in long form: one row per ordered pair of runs of each test-set group
    (an unbounded interval end is empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PAIR_FIELDS, lineterminator="\n")
    writer.writeheader()
    for g in wr.groups:
        for (_, _), p in sorted(g.pairs.items()):
            row = dict(p.to_dict(), run=p.i, vs=p.j, split_sha256=g.split_sha256, labels_sha256=g.labels_sha256,
                       adjust=g.adjust, alpha=g.alpha, interval=g.interval)
            writer.writerow({k: "" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float) else row[k]
                             for k in PAIR_FIELDS})
    return buf.getvalue()


def win_rates_path(output: Path) -> Path:
    """Where ``--format csv --output PATH`` puts the win rates: beside PATH, ``<stem>.win_rates<suffix>``."""
    return output.with_name(f"{output.stem}.win_rates{output.suffix or '.csv'}")


def to_html(table: Table, win_rates: Any = None) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c.label)}</th>" for c in table.columns)
    right = [c.kind in ("metric", "delta", "number", "count") for c in table.columns]
    body = "\n".join("<tr>" + "".join(f'<td class="{"num" if r else "txt"}">{e(x)}</td>' for x, r in zip(cells, right))
                     + "</tr>" for cells in _cells(table))
    notes = "".join(f"<p>{e(line)}</p>" for line in _footer(table))
    skipped = ""
    if table.skipped:
        skipped = "<h2>Skipped</h2><ul>" + "".join(f"<li><code>{e(p)}</code>: {e(r)}</li>"
                                                   for p, r in table.skipped) + "</ul>"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kaayko-exp comparison</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
            "th,td{border:1px solid #ccc;padding:.25em .6em}td.num{text-align:right;font-variant-numeric:"
            "tabular-nums}th{background:#f3f3f3}td.ns{color:#888}td.wrap{white-space:normal}</style></head><body>\n"
            "<h1>kaayko-exp comparison</h1>\n"
            f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{notes}{skipped}\n"
            f"{_win_rate_html(win_rates)}</body></html>\n")


def _win_rate_html(wr: Any) -> str:
    if wr is None:
        return ""
    from kaayko_exp.compare.render import html_blocks

    return "\n".join(html_blocks(_win_rate_doc(wr))) + "\n"
