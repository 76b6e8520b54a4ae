"""The comparison table: one row per run (or per group of runs with ``--group-by``).

Columns: run dir, status, trial number/state/value (for sweeps), model, the group
choices and resolved parameters that differ between the runs (all with
``all_params``), the headline metrics (held-out test set), a delta per metric
against ``--baseline``, training time and training rows. Values stay raw here
(floats, :class:`Agg` for a group); :mod:`kaayko_exp.compare.formats` renders them.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from kaayko_exp.compare.collect import CompareError, read_run
from kaayko_exp.compare.records import RunRecord

DEFAULT_METRICS = ("mae", "rmse", "r2", "class_accuracy")
METRIC_NAMES = ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy")
LOWER_IS_BETTER = {"mae", "rmse"}
FAILED = {"failed", "interrupted", "pruned"}
#: config keys never shown as parameters: each group's ``name`` repeats its option, which the model and
#: group-choice columns already show
NOT_PARAMS = {"model.name", "sample_size.name", "features.name", "split.name", "checkpointing.name", "safety.name"}
_FILTER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")


@dataclass
class Agg:
    """A metric over a group of runs: mean ± sample std over the ``n`` runs that have it."""

    mean: float
    std: float
    n: int


@dataclass
class Column:
    key: str
    label: str
    kind: str  # text | choice | param | metric | delta | number | count


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    baseline: Optional[str] = None  # the baseline run as shown
    group_by: Optional[list[str]] = None
    records: list[RunRecord] = field(default_factory=list)  # the runs behind the rows (after filters)


@dataclass
class TableOptions:
    metrics: Sequence[str] = DEFAULT_METRICS
    sort_by: Optional[str] = None
    baseline: Optional[str] = None
    only_changed: bool = False
    filters: Sequence[str] = ()
    top: Optional[int] = None
    hide_failed: bool = False
    group_by: Optional[Sequence[str]] = None
    all_params: bool = False


def lower_is_better(metric: str, records: Sequence[RunRecord] = ()) -> bool:
    """Direction of a metric as users type it (``mae``, ``val_rmse``, ``cv_r2``, ``objective``)."""
    if metric in ("objective", "trial_value"):
        name = next((str((r.objective or {}).get("name")) for r in records if r.objective), "")
        metric = name
    if metric in ("train_seconds", "rows"):
        return metric == "train_seconds"
    base = metric.split("_", 1)[1] if metric.startswith(("val_", "cv_", "test_")) else metric
    return base in LOWER_IS_BETTER


def check_metric(name: str) -> str:
    base = name.split("_", 1)[1] if name.startswith(("val_", "cv_")) else name
    if base in METRIC_NAMES or name in ("objective", "trial_value"):
        return name
    raise CompareError(f"Unknown metric {name!r}. Use one of {', '.join(METRIC_NAMES)} (held-out test set), the same "
                       "with a val_ or cv_ prefix (validation set, cross-validation mean), objective or trial_value.")


# ---------------------------------------------------------------------------- building
def build_table(records: Sequence[RunRecord], opts: TableOptions,
                skipped: Sequence[tuple[str, str]] = ()) -> Table:
    metrics = [check_metric(m) for m in opts.metrics]
    records = list(records)
    base_rec = _baseline(records, opts.baseline) if opts.baseline else None
    if base_rec is not None and base_rec not in records:
        records.insert(0, base_rec)
    if opts.hide_failed:
        records = [r for r in records if r.status not in FAILED or r is base_rec]
    for text in opts.filters:
        records = apply_filter(records, text, keep=base_rec)
    if opts.sort_by:
        check_metric(opts.sort_by)
    group_keys = list(opts.group_by) if opts.group_by is not None else None
    groups = group_runs(records, group_keys) if group_keys is not None else [[r] for r in records]

    columns = [Column("run", "run", "text"), Column("status", "status", "text")]
    if group_keys is not None:
        columns.append(Column("count", "runs", "count"))
    if any(r.trial for r in records):
        columns += [Column("trial", "trial", "text"), Column("state", "state", "text"),
                    Column("trial_value", "value", "metric")]
        if any(r.trial and len(r.trial.values or ()) > 1 for r in records):  # a multi-objective sweep
            columns += [Column("trial_values", "values", "text"), Column("pareto", "Pareto front", "text")]
    columns.append(Column("model", "model", "text"))
    hidden = set(group_keys or ())
    choice_keys = _keys([r.choices for r in records], opts.all_params, hidden | {"model"})
    param_keys = [k for k in _keys([r.params for r in records], opts.all_params, hidden) if k not in NOT_PARAMS]
    columns += [Column(f"choice:{k}", k, "choice") for k in choice_keys]
    columns += [Column(f"param:{k}", _param_label(k, param_keys), "param") for k in param_keys]
    columns += [Column(m, m, "metric") for m in metrics]
    if base_rec is not None:
        columns += [Column(f"delta:{m}", f"Δ{m}", "delta") for m in metrics]
    columns += [Column("train_seconds", "train s", "number"), Column("rows", "rows", "number")]

    rows = [_row(g, choice_keys, param_keys, metrics, base_rec) for g in groups]
    if opts.sort_by and opts.sort_by not in metrics and opts.sort_by != "trial_value":
        for row, g in zip(rows, groups):  # sorted by a metric that is not shown
            row[opts.sort_by] = _agg([r.value(opts.sort_by) for r in g])
    if opts.sort_by:
        rows = sort_rows(rows, opts.sort_by, lower_is_better(opts.sort_by, records))
    if opts.top is not None:
        rows = rows[: max(0, int(opts.top))]
    if opts.only_changed:
        columns = [c for c in columns if c.kind not in ("metric", "choice", "text") or c.key in ("run", "status")
                   or len({_hashable(r.get(c.key)) for r in rows}) > 1]
    return Table(columns=columns, rows=rows, skipped=list(skipped), group_by=group_keys, records=records,
                 baseline=base_rec.shown if base_rec is not None else None)


def _baseline(records: list[RunRecord], text: str) -> RunRecord:
    target = Path(text).expanduser()
    full = target.resolve() if target.exists() else None
    for rec in records:
        if rec.path == full or rec.shown == text or (rec.run_id and rec.run_id == text):
            chosen = rec
            break
    else:
        if full is None:
            raise CompareError(f"--baseline {text}: no such run among the inputs and no such directory. Pass one "
                               "of the compared run directories (as listed in the run column) or a run id.")
        found = read_run(full)
        if isinstance(found, tuple):
            raise CompareError(f"--baseline {text} cannot be read: {found[1]}. Choose another baseline run.")
        chosen = found
    if not chosen.metrics:
        raise CompareError(f"--baseline {text} has no metrics ({chosen.note or chosen.status}). Choose a completed "
                           "run as the baseline.")
    return chosen


def _keys(maps: list[dict[str, Any]], everything: bool, hidden: set[str]) -> list[str]:
    """Keys of ``maps`` in first-seen order: all of them, or those whose value differs between the maps."""
    order: dict[str, None] = {}
    for m in maps:
        order.update(dict.fromkeys(m))
    keys = [k for k in order if not _hidden(k, hidden)]
    if everything:
        return keys
    # differ: two runs that have the key hold different values (a key only some runs have, such as another
    # model family's parameters, is not by itself a difference: the model column shows that)
    return [k for k in keys if len({_hashable(m[k]) for m in maps if k in m}) > 1]


def _param_label(key: str, keys: list[str]) -> str:
    """``model.params.alpha`` reads ``alpha`` unless another shown key ends the same way."""
    short = key[len("model.params."):] if key.startswith("model.params.") else key
    clash = short != key and any(k != key and (k == short or k.endswith("." + short)) for k in keys)
    return key if clash else short


def _hidden(key: str, hidden: set[str]) -> bool:
    return any(key == h or key.startswith(h + ".") or key.endswith("." + h) for h in hidden)


_MISSING = object()


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return repr(value)
    if isinstance(value, Agg):
        return (value.mean, value.std, value.n)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


# ---------------------------------------------------------------------------- rows
def _row(group: list[RunRecord], choice_keys: list[str], param_keys: list[str], metrics: list[str],
         base: Optional[RunRecord]) -> dict[str, Any]:
    first = group[0]
    row: dict[str, Any] = {
        "run": first.shown if len(group) == 1 else f"{first.shown} (+{len(group) - 1})",
        "runs": [r.shown for r in group],
        "status": _common([r.status for r in group]) or _status_mix(group),
        "count": len(group),
        "model": _common([r.model for r in group]),
        "note": first.note if len(group) == 1 else None,
    }
    if first.trial is not None and len(group) == 1:
        row["trial"], row["state"] = first.trial.number, first.trial.state
        if len(first.trial.values or ()) > 1:
            row["trial_values"] = "; ".join("-" if v is None else f"{float(v):.4g}" for v in first.trial.values)
            row["pareto"] = "yes" if first.trial.pareto else ""
    row["trial_value"] = _agg([r.value("trial_value") for r in group])
    for k in choice_keys:
        row[f"choice:{k}"] = _common([r.choices.get(k) for r in group])
    for k in param_keys:
        row[f"param:{k}"] = _common([r.params.get(k) for r in group])
    for m in metrics:
        row[m] = _agg([r.value(m) for r in group])
        if base is not None:
            ref, mine = base.value(m), _mean(row[m])
            row[f"delta:{m}"] = None if ref is None or mine is None else mine - ref
    row["train_seconds"] = _agg([r.train_seconds for r in group])
    rows = [r.rows for r in group]
    row["rows"] = _common(rows) if _common(rows) is not None else _agg(rows)
    return row


def _common(values: list[Any]) -> Any:
    """The value all of ``values`` share, else None."""
    first = values[0]
    return first if all(_hashable(v) == _hashable(first) for v in values[1:]) else None


def _status_mix(group: list[RunRecord]) -> str:
    counts: dict[str, int] = {}
    for r in group:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _agg(values: list[Optional[float]]) -> Any:
    """One run: its value; a group: :class:`Agg` over the runs that have one (None when none has)."""
    if len(values) == 1:
        return values[0]
    have = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not have:
        return None
    return Agg(mean=statistics.fmean(have), std=statistics.stdev(have) if len(have) > 1 else 0.0, n=len(have))


def _mean(value: Any) -> Optional[float]:
    if isinstance(value, Agg):
        return value.mean
    return None if value is None else float(value)


def sort_rows(rows: list[dict[str, Any]], metric: str, ascending: bool) -> list[dict[str, Any]]:
    """Best first for ``metric`` (ascending when lower is better); rows without it last, order kept on ties."""
    have = [r for r in rows if _mean(r.get(metric)) is not None]
    none = [r for r in rows if _mean(r.get(metric)) is None]
    have.sort(key=lambda r: _mean(r[metric]) if ascending else -_mean(r[metric]))
    return have + none


# ---------------------------------------------------------------------------- grouping
def group_runs(records: list[RunRecord], keys: Sequence[str]) -> list[list[RunRecord]]:
    """Runs that differ only in ``keys`` (config keys or group names, e.g. ``seed``), in first-seen order."""
    hidden = set(keys)
    groups: dict[Any, list[RunRecord]] = {}
    for rec in records:
        sig = (tuple(sorted((k, _hashable(v)) for k, v in rec.params.items() if not _hidden(k, hidden))),
               tuple(sorted((k, v) for k, v in rec.choices.items() if not _hidden(k, hidden))),
               rec.trial.sweep_dir if rec.trial and not rec.params else None)
        groups.setdefault(sig, []).append(rec)
    return list(groups.values())


# ---------------------------------------------------------------------------- filters
def apply_filter(records: list[RunRecord], text: str, keep: Optional[RunRecord] = None) -> list[RunRecord]:
    """Records matching ``key=value`` / ``key!=value`` / ``metric<0.05`` (also <=, >, >=, ==)."""
    match = _FILTER.match(text)
    if not match:
        raise CompareError(f"--filter {text!r} is not KEY OP VALUE. Write e.g. --filter 'model=xgboost' or "
                           "--filter 'mae<0.05' (operators = != < <= > >=).")
    key, op, want = match.groups()
    op = "=" if op == "==" else op
    known = [r for r in records if _lookup(r, key, records) is not _MISSING]
    if records and not known:
        raise CompareError(f"--filter {text!r}: no run has {key!r}. Filter on model, status, a group (e.g. "
                           f"sample_size), a config key (e.g. model.params.max_depth or seed) or a metric "
                           f"({', '.join(METRIC_NAMES)}).")
    return [r for r in records if r is keep or _matches(_lookup(r, key, records), op, want, text)]


def _lookup(rec: RunRecord, key: str, records: list[RunRecord]) -> Any:
    if key in ("model", "status", "run"):
        return {"model": rec.model, "status": rec.status, "run": rec.shown}[key]
    if key in ("trial", "state"):
        if rec.trial is None:
            return _MISSING
        return rec.trial.number if key == "trial" else rec.trial.state
    if key in ("train_seconds", "rows"):
        return getattr(rec, key)
    try:
        check_metric(key)
        return rec.value(key)
    except CompareError:
        pass
    if key in rec.choices:
        return rec.choices[key]
    if key in rec.params:
        return rec.params[key]
    ends = {k for r in records for k in r.params if k.endswith("." + key)}
    if len(ends) == 1:
        return rec.params.get(ends.pop(), _MISSING)
    return _MISSING


def _matches(value: Any, op: str, want: str, text: str) -> bool:
    if value is _MISSING or value is None:
        return op == "!="
    got, num = _number(value), _number(want)
    if op in ("<", "<=", ">", ">="):
        if num is None:
            raise CompareError(f"--filter {text!r}: {want!r} is not a number; <, <=, > and >= compare numbers.")
        if got is None:
            return False
        return {"<": got < num, "<=": got <= num, ">": got > num, ">=": got >= num}[op]
    same = got == num if got is not None and num is not None else _text(value) == want
    return same if op == "=" else not same


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
