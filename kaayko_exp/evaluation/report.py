"""The report stage: ``report.json`` (for tools), ``report.md`` (for people) and ``plots/*.png``.

``report.json`` is the stable, versioned summary of one run. Tools such as
``python -m kaayko_exp.compare`` read only it and ``manifest.json``. Schema
(version 1; keys are only ever added within a version; non-finite numbers are
written as ``null`` so the file is strict JSON)::

    schema_version      1
    kind                "kaayko-exp-report"
    run_id              the manifest's run id
    created             ISO-8601 UTC time the report was written
    choices             {group: option} Hydra group choices (model, features, split, sample_size, ...)
    config              the fully resolved config of the run
    params              the model's hyperparameters (cfg.model.params)
    data                manifest "data" (source, path, rows, fingerprint, frame_sha256)
                        + "info": the dataset stage's detail (loader summary)
    split               {"name", "sizes": {"train","val","test"}, "description"}
    model               {"name", "family"}
    metrics             HEADLINE: held-out test metrics {mae, rmse, r2, class_accuracy,
                        within_half, skill_accuracy}
    metrics_after_safety  the same after the post-model safety layer (on paddle_score)
    safety              the test set's safety summary: {"name", "rows_changed_share" (share of rows
                        whose paddle_score differs from the model score), "per_rule": {rule: share of
                        rows the rule adjusted}}; the test and external blocks carry their own
    baselines           {"rule": metrics, "constant_mean": metrics} on the same test rows
    rule_baseline_by_construction
                        true when the labels are the label rule's own output (synthetic data with
                        data.label_noise = 0), so the rule baseline equals the labels by construction
                        and is no benchmark; false for real data or noisy synthetic labels
    test_set            what identifies the held-out rows, so "same test set" is checked, not assumed:
                        {"n": rows, "split_sha256": sha256 of split/assignment.npy's array bytes,
                        "labels_sha256": sha256 of the held-out labels as float64 bytes in row order,
                        "lakes": number of held-out lakes} (absent in reports written before it existed)
    test                the whole test block: n, metrics, metrics_after_safety, safety, per_lake, baselines,
                        unseen_levels {"rows": test rows with a category level the training rows
                        never had, "levels": {column: {value: rows}}},
                        extrapolation {"rows": test rows outside the training rows' support (the rows
                        prediction warns about, kaayko_exp/data/support.py), "share", "checks": {check:
                        rows it flags, e.g. "dew_point_c × temp_c", "gust_kph range"}, "per_lake": {lake:
                        rows}} (null for a run without a support record; absent in older reports)
    val                 {"n", "metrics"} or null (no validation set)
    train_in_sample     {"n": rows scored, "rows": training rows, "sampled", "metrics", "note"}: training rows
                        (a seeded sample of at most evaluation.in_sample_max_rows), optimistic, never a headline
    cv                  {"k", "folds": [{"fold", "metrics", "n_train", "n_val"}], "mean", "std"} or null
    external            the external set's block ({"path", "n", "metrics", ..., "per_lake", "baselines",
                        "unseen_levels", "extrapolation"}) or null
    importance          {"model": {feature: value} | null, "permutation": {...} | null,
                        "permutation_rows": test rows it shuffled (a seeded sample), "permutation_repeats"}
    sampling            what was computed on a seeded sample instead of all rows (test-set metrics never are):
                        {"train_in_sample": {"rows", "of"}, "permutation_importance": {"rows", "of", "repeats",
                        "seed"}, "plots": {"predicted_vs_actual": {"rows", "of"}} (when plots are drawn)}
                        (absent in reports written before it existed)
    timings             {stage: seconds} for the finished stages, "report" (elapsed when written), "total"
    packages            {distribution: version} from the manifest
    objective           {"name": "<set>_<metric>", "value": float}
    plots               run-relative paths of the plots ([] when cfg.plots is false)
    backend             backend=dask runs only: {"name": "dask", "address_kind": local | address |
                        scheduler_file, "workers", "threads_per_worker", "memory_limit" (bytes per worker),
                        "partitions": {"count", "max_rows"}}; test_set.split_sha256 is then the sha256 of the
                        split's lake -> part table and labels_sha256 that of the partitions' label hashes

Metric keys: ``mae``, ``rmse``, ``r2``, ``class_accuracy`` (prediction rounded to
the 0.5 grid and clipped to 1–5 equals the label), ``within_half`` (the raw,
unrounded prediction is within 0.5 of the label: |prediction − label| ≤ 0.5),
``skill_accuracy`` (the rounded prediction is in the label's skill level).

:func:`read_report` is the one typed reader of ``report.json`` (see :class:`Report`): it reads the
schema versions it knows and names any other one unsupported (:class:`ReportError`), never misreads it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from omegaconf import DictConfig, OmegaConf

from kaayko_exp import atomic
from kaayko_exp.errors import KaaykoError
from kaayko_exp.runs.rundir import RunDir, now_iso

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KIND = "kaayko-exp-report"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOTS_DIR = "plots"
PER_LAKE_ROWS = 20  # lakes shown in report.md (most test rows first)
TOP_FEATURES = 15

METRICS: tuple[tuple[str, str], ...] = (
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("r2", "R²"),
    ("class_accuracy", "class accuracy"),
    ("within_half", "within ±0.5"),
    ("skill_accuracy", "skill accuracy"),
)
BASELINES: tuple[tuple[str, str], ...] = (("rule", "label rule"), ("constant_mean", "constant mean"))


# ---------------------------------------------------------------------------- entry point
def write_report(run: RunDir, cfg: DictConfig, results: dict[str, Any], predictions: Any = None) -> list[Path]:
    """Write plots (when ``cfg.plots``), ``report.md`` and ``report.json``; return their paths.

    ``predictions``: the test predictions as the evaluate stage wrote them, when it ran in this process (the
    figures then skip reading ``predictions/test.parquet`` back). ``report.json`` is written last, so its
    presence means the rest is in place.
    """
    t0 = time.perf_counter()
    plots: list[Path] = []
    if bool(OmegaConf.select(cfg, "plots", default=True)):
        from kaayko_exp.evaluation.plots import make_plots

        plots = make_plots(run.path, results, run.path / PLOTS_DIR, seed=int(OmegaConf.select(cfg, "seed", default=0)),
                           predictions=predictions)
    report = build_report(run, cfg, results, plots=[run.rel(p) for p in plots],
                          report_seconds=time.perf_counter() - t0)
    md = atomic.write_text(run.path / REPORT_MD, render_markdown(report))
    js = atomic.write_json(run.path / REPORT_JSON, report)
    log.info("report: %s, %s and %d plots", REPORT_JSON, REPORT_MD, len(plots))
    return [*plots, md, js]


# ---------------------------------------------------------------------------- report.json
def build_report(run: RunDir, cfg: DictConfig, results: Mapping[str, Any], *, plots: Iterable[str] = (),
                 report_seconds: float = 0.0) -> dict[str, Any]:
    """The report.json document (see the module docstring for the schema)."""
    plots = list(plots)
    manifest = run.manifest
    test = dict(results.get("test") or {})
    detail = {s: (st or {}).get("detail", {}) for s, st in manifest["stages"].items()}
    for name in ("dataset", "split", "fit"):
        detail.setdefault(name, {})
    split = {"name": OmegaConf.select(cfg, "split.name", default=None),
             "sizes": detail["split"].get("sizes"), "description": detail["split"].get("description")}
    params = OmegaConf.select(cfg, "model.params", default=None)
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "run_id": manifest.get("run_id"),
        "created": now_iso(),
        "choices": dict(manifest.get("config", {}).get("choices", {})),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "params": OmegaConf.to_container(params, resolve=True) if params is not None else {},
        "data": {**manifest.get("data", {}), "info": detail["dataset"].get("info", {})},
        "split": split,
        "model": {"name": OmegaConf.select(cfg, "model.name", default=None),
                  "family": detail["fit"].get("model_family")},
        "metrics": test.get("metrics", {}),
        "metrics_after_safety": test.get("metrics_after_safety"),
        "safety": test.get("safety"),
        "baselines": {name: metrics_of(block) for name, block in (test.get("baselines") or {}).items()},
        "rule_baseline_by_construction": rule_baseline_by_construction(cfg, manifest),
        "test_set": results.get("test_set"),
        "test": test,
        "val": results.get("val"),
        "train_in_sample": results.get("train_in_sample"),
        "cv": results.get("cv"),
        "external": results.get("external"),
        "importance": _importance_block(results.get("importance") or {}),
        "sampling": _sampling(results, plots),
        "timings": _timings(manifest, report_seconds),
        "packages": dict(manifest.get("package", {})),
        "objective": dict(results.get("objective") or {}),
        "plots": list(plots),
        # backend=dask runs: address kind, workers, threads, partitions (local runs have no block)
        **({"backend": dict(results["backend"])} if results.get("backend") else {}),
    }
    return _finite(report)


def _importance_block(importance: Mapping[str, Any]) -> dict[str, Any]:
    block = {"model": importance.get("model"), "permutation": importance.get("permutation")}
    for key in ("permutation_rows", "permutation_repeats"):
        if key in importance:
            block[key] = importance[key]
    return block


def _sampling(results: Mapping[str, Any], plots: Iterable[str]) -> Optional[dict[str, Any]]:
    """The evaluate stage's sampling record, plus the predicted-vs-actual plot's point sample when drawn."""
    sampling = results.get("sampling")
    if sampling is None:
        return None
    out = {k: dict(v) for k, v in sampling.items()}
    n_test = (results.get("test") or {}).get("n")
    if any(Path(p).name == "predicted_vs_actual.png" for p in plots) and isinstance(n_test, int):
        from kaayko_exp.evaluation.plots import MAX_SCATTER_POINTS

        out["plots"] = {"predicted_vs_actual": {"rows": min(n_test, MAX_SCATTER_POINTS), "of": n_test}}
    return out


def rule_baseline_by_construction(cfg: DictConfig, manifest: Mapping[str, Any]) -> bool:
    """Whether the run's labels are the label rule's own output (synthetic, no label noise): then the rule
    baseline equals the labels by construction. Real data or ``data.label_noise`` > 0 make it a benchmark."""
    source = OmegaConf.select(cfg, "data.source", default=None) or (manifest.get("data") or {}).get("source")
    noise = OmegaConf.select(cfg, "data.label_noise", default=0.0) or 0.0
    return source == "synthetic" and float(noise) == 0.0


def metrics_of(block: Any) -> dict[str, Any]:
    """A metrics mapping from ``{"metrics": {...}}`` or a flat ``{...}``."""
    if isinstance(block, Mapping) and isinstance(block.get("metrics"), Mapping):
        return dict(block["metrics"])
    return dict(block or {})


def _timings(manifest: Mapping[str, Any], report_seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, st in manifest["stages"].items():  # manifest order is execution order
        st = st or {}
        if name == "report":
            out[name] = round(float(st.get("seconds_before", 0.0)) + report_seconds, 4)
        elif st.get("status") == "done" and st.get("seconds") is not None:
            out[name] = float(st["seconds"])
    out["total"] = round(sum(out.values()), 4)
    return out


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None (recursively) and numpy scalars by Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        try:
            obj = obj.item()
        except (TypeError, ValueError):
            return obj
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------- per-lake rows
def lake_rows(per_lake: Any) -> list[dict[str, Any]]:
    """Per-lake table as ``[{"lake", "n", <metric>: value}]``, most rows first.

    Accepts a list of records, ``{lake: {...}}`` or a column mapping ``{"lake": [...], ...}``.
    """
    if not per_lake:
        return []
    records: list[dict[str, Any]] = []
    if isinstance(per_lake, Mapping) and isinstance(per_lake.get("lake"), list):
        cols = {k: list(v) for k, v in per_lake.items() if isinstance(v, list)}
        records = [{k: cols[k][i] for k in cols} for i in range(len(cols["lake"]))]
    elif isinstance(per_lake, Mapping):
        records = [{"lake": lake, **(v if isinstance(v, Mapping) else {})} for lake, v in per_lake.items()]
    else:
        records = [dict(r) for r in per_lake]
    rows = []
    for rec in records:
        flat = {**rec, **metrics_of(rec.get("metrics"))} if isinstance(rec.get("metrics"), Mapping) else rec
        n = flat.get("n", flat.get("rows", flat.get("count")))
        rows.append({**flat, "lake": str(flat.get("lake")), "n": int(n) if n is not None else None})
    return sorted(rows, key=lambda r: (-(r["n"] or 0), r["lake"]))


# ---------------------------------------------------------------------------- report.md
def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    return f"{v + 0.0:.{digits}f}" if abs(v) >= 0.5 * 10 ** -digits else f"{0.0:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], align: Optional[list[str]] = None) -> list[str]:
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(r) + " |" for r in rows), ""]


RULE_BY_CONSTRUCTION = ("The label-rule baseline equals the labels by construction: these synthetic labels are "
                        "the rule's own output (`data.label_noise=0`), so its perfect scores are no benchmark. "
                        "Set `data.label_noise` > 0 or score real data to make the rule a benchmark.")


def _metrics_table(block: Mapping[str, Any], *, after_safety: bool = True, rule_exact: bool = False) -> list[str]:
    model = metrics_of(block)
    bases = {name: metrics_of(b) for name, b in (block.get("baselines") or {}).items()}
    header = ["metric", "**model**"]
    safe = block.get("metrics_after_safety") if after_safety else None
    summary = block.get("safety") if safe and isinstance(block.get("safety"), Mapping) else None
    if safe:
        header.append(f"model + safety layer `{summary['name']}`" if summary else "model + safety layer")
    header += [f"baseline: {label}" + (" (= labels, by construction)" if name == "rule" and rule_exact else "")
               for name, label in BASELINES if name in bases]
    rows = []
    for key, label in METRICS:
        row = [label, f"**{_num(model.get(key))}**"]
        if safe:
            row.append(_num(safe.get(key)))
        row += [_num(bases[name].get(key)) for name, _ in BASELINES if name in bases]
        rows.append(row)
    if summary:
        rows.append(["rows changed by the safety layer", "", _share(summary.get("rows_changed_share")),
                     *("" for name, _ in BASELINES if name in bases)])
    out = _table(header, rows)
    if summary and summary.get("per_rule"):
        out.insert(-1, "")
        out.insert(-1, f"Safety layer `{summary['name']}`: share of rows each rule adjusted: "
                   + ", ".join(f"{rule} {_share(v)}" for rule, v in summary["per_rule"].items()) + ".")
    return out


def _share(value: Any) -> str:
    """A share in [0, 1] as a percentage (``12.3 %``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{100 * v:.1f} %" if math.isfinite(v) else "n/a"


def _unseen_lines(unseen: Any) -> list[str]:
    if not isinstance(unseen, Mapping) or unseen.get("rows") is None:
        return []
    rows = int(unseen["rows"])
    if rows == 0:
        return ["Every category level of these rows was seen in training.", ""]
    pairs = [f"`{col}={value}` ({_count(n)})" for col, values in (unseen.get("levels") or {}).items()
             for value, n in values.items()]
    shown = ", ".join(pairs[:10]) + (f", … ({len(pairs) - 10} more in report.json)" if len(pairs) > 10 else "")
    text = (f"**{_count(rows)} rows have a category level not seen in training**: {shown}. Category levels "
            "come from the training rows only; an unseen level is scored as a missing value.")
    return [text, ""]


def _support_lines(block: Any) -> list[str]:
    """The extrapolation count of a set (see ``extrapolation`` in the schema); nothing for older reports."""
    if not isinstance(block, Mapping) or block.get("rows") is None:
        return []
    rows = int(block["rows"])
    if rows == 0:
        return ["Every row lies within the training rows' support (ranges and joint density of the main inputs).",
                ""]
    checks = ", ".join(f"`{name}` {_count(n)}" for name, n in (block.get("checks") or {}).items())
    lakes = ", ".join(f"{lake} {_count(n)}" for lake, n in sorted((block.get("per_lake") or {}).items(),
                                                                   key=lambda kv: (-kv[1], kv[0])) if n)
    return [f"**{_count(rows)} rows ({_share(block.get('share'))}) lie outside the training rows' support** "
            "(prediction warns on each: a rule input outside the training range, or no training rows within half "
            f"a bin of a pair of main inputs). By check: {checks}." + (f" By lake: {lakes}." if lakes else ""), ""]


def _lake_table(per_lake: Any, limit: int) -> list[str]:
    rows = lake_rows(per_lake)
    if not rows:
        return ["(no per-lake table)", ""]
    keys = [(k, lab) for k, lab in METRICS if k != "skill_accuracy"]
    out = _table(["lake", "rows", *(lab for _, lab in keys)],
                 [[r["lake"], f"{r['n']:,}" if r["n"] is not None else "n/a", *(_num(r.get(k)) for k, _ in keys)]
                  for r in rows[:limit]])
    if len(rows) > limit:
        out.insert(0, f"Top {limit} of {len(rows)} lakes by rows (all of them are in report.json).")
        out.insert(1, "")
    return out


def render_markdown(report: Mapping[str, Any]) -> str:
    """report.md: the same content as report.json, for a person."""
    r = report
    lines: list[str] = [f"# kaayko-exp run `{r.get('run_id')}`", ""]
    obj = r.get("objective") or {}
    lines += [f"Written {r.get('created')}. Objective `{obj.get('name')}` = **{_num(obj.get('value'))}**.", ""]

    lines += ["## Configuration", ""]
    choices = r.get("choices") or {}
    lines += _table(["group", "choice"], [[k, f"`{v}`"] for k, v in sorted(choices.items())], ["---", "---"])
    cfg = r.get("config") or {}
    model = r.get("model") or {}
    lines += [f"Model `{model.get('name')}` (family `{model.get('family')}`), seed {cfg.get('seed')}.",
              f"Parameters: `{_compact(r.get('params'))}`", ""]

    data, split = r.get("data") or {}, r.get("split") or {}
    lines += ["## Data and split", ""]
    rows = data.get("rows")
    lines.append(f"Source `{data.get('source')}`" + (f" ({data.get('path')})" if data.get("path") else "")
                 + (f", {rows:,} rows" if isinstance(rows, int) else "")
                 + (f", fingerprint `{str(data.get('fingerprint'))[:16]}`" if data.get("fingerprint") else "") + ".")
    sizes = split.get("sizes") or {}
    if sizes:
        lines.append(f"Split `{split.get('name')}`: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + " rows.")
    if split.get("description"):
        lines.append(f"Held out: {_compact(split.get('description'))}")
    lines.append("")

    test = r.get("test") or {}
    lines += [f"## Held-out test set ({_count(test.get('n'))} rows)", "",
              "The headline. Every number sits next to two baselines on the same rows: the published label "
              "rule and a constant (the training mean).", ""]
    rule_exact = bool(r.get("rule_baseline_by_construction")) and "rule" in (test.get("baselines") or {})
    lines += _metrics_table(test, rule_exact=rule_exact)
    if rule_exact:
        lines += [RULE_BY_CONSTRUCTION, ""]
    lines += _unseen_lines(test.get("unseen_levels"))
    lines += _support_lines(test.get("extrapolation"))
    val = r.get("val")
    if val:
        vm = metrics_of(val)
        lines += [f"Validation set ({_count(val.get('n'))} rows): RMSE {_num(vm.get('rmse'))}, "
                  f"MAE {_num(vm.get('mae'))}, class accuracy {_num(vm.get('class_accuracy'))}.", ""]

    lines += ["## Cross-validation", ""]
    cv = r.get("cv")
    if cv:
        mean, std = cv.get("mean") or {}, cv.get("std") or {}
        lines += [f"{cv.get('k')}-fold GroupKFold by lake on the training part (mean ± std over folds):", ""]
        lines += _table(["metric", "mean ± std"],
                        [[lab, f"{_num(mean.get(k))} ± {_num(std.get(k))}"] for k, lab in METRICS if k in mean])
    else:
        lines += ["Not run (`evaluation.cv_folds=K` with K ≥ 2 adds it).", ""]

    lines += ["## Per lake (held-out test set)", ""]
    lines += _lake_table(test.get("per_lake"), PER_LAKE_ROWS)

    lines += ["## External test set", ""]
    ext = r.get("external")
    if ext:
        lines += [f"`{ext.get('path')}`, {_count(ext.get('n'))} rows.", ""]
        lines += _metrics_table(ext)
        lines += _unseen_lines(ext.get("unseen_levels"))
        lines += _support_lines(ext.get("extrapolation"))
        lines += _lake_table(ext.get("per_lake"), PER_LAKE_ROWS)
    else:
        lines += ["None (`evaluation.external=<path>` adds one).", ""]

    lines += ["## Top features", ""]
    lines += _importance_table(r.get("importance") or {})
    perm_rows = (r.get("importance") or {}).get("permutation_rows")
    if isinstance(perm_rows, int) and (r.get("importance") or {}).get("permutation"):
        lines += [f"Permutation importance: RMSE increase on a seeded sample of {_count(perm_rows)} of the "
                  f"{_count(test.get('n'))} test rows, {(r.get('importance') or {}).get('permutation_repeats')} "
                  "shuffles per feature (`evaluation.permutation_max_rows`).", ""]

    tr = r.get("train_in_sample")
    lines += ["## Training set (in-sample, optimistic)", ""]
    if tr:
        tm = metrics_of(tr)
        lines += ["Scored on the rows the model was trained on: optimistic, shown only to judge over-fitting, "
                  "never a result.", ""]
        scored = (f"{_count(tr.get('n'))} of {_count(tr.get('rows'))} training rows (seeded sample)"
                  if tr.get("sampled") else f"training rows ({_count(tr.get('n'))})")
        lines += _table(["metric", f"{scored}, in-sample"],
                        [[lab, _num(tm.get(k))] for k, lab in METRICS if k in tm])
        if tr.get("sampled"):
            lines += ["A sample keeps this stage cheap (`evaluation.in_sample_max_rows`; null scores every "
                      "training row).", ""]
    else:
        lines += ["Not computed.", ""]

    lines += ["## Timings", ""]
    lines += _table(["stage", "seconds"], [[k, _num(v, 2)] for k, v in (r.get("timings") or {}).items()])
    lines += ["## Versions", ""]
    lines += _table(["package", "version"], [[k, str(v)] for k, v in (r.get("packages") or {}).items()],
                    ["---", "---"])
    plots = r.get("plots") or []
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            title = Path(p).stem.replace("_", " ")
            lines += [f"### {title}", "", f"![{title}]({p})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _importance_table(importance: Mapping[str, Any]) -> list[str]:
    from kaayko_exp.evaluation.plots import importance_values, top_features

    model = top_features(importance_values(importance.get("model")), TOP_FEATURES)
    perm = top_features(importance_values(importance.get("permutation")), TOP_FEATURES)
    if not model and not perm:
        return ["No importances were computed.", ""]
    out = []
    if not model:
        out += ["The model has no importance of its own; permutation importance only.", ""]
    n = max(len(model), len(perm))
    rows = []
    for i in range(n):
        m = model[i] if i < len(model) else None
        p = perm[i] if i < len(perm) else None
        rows.append([str(i + 1), f"`{m[0]}`" if m else "", _num(m[1]) if m else "",
                     f"`{p[0]}`" if p else "", f"{_num(p[1])} ± {_num(p[2])}" if p else ""])
    out += _table(["#", "model importance", "value", "permutation importance", "RMSE increase"], rows,
                  ["---:", "---", "---:", "---", "---:"])
    return out


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------------- reading report.json
class ReportError(KaaykoError):
    """A report.json that cannot be read: damaged, foreign, or of a schema version this code does not know."""

    kind = "report error"


@dataclass
class Report:
    """One run's report.json as tools read it (schema version 1). Metrics are floats (NaN where the file
    holds null); ``raw`` keeps the whole document for anything not lifted into a field."""

    path: Path
    schema_version: int
    run_id: Optional[str]
    created: Optional[str]
    choices: dict[str, str]
    config: dict[str, Any]
    params: dict[str, Any]
    model: Optional[str]
    model_family: Optional[str]
    metrics: dict[str, float]  # headline: held-out test metrics
    metrics_after_safety: dict[str, float]
    baselines: dict[str, dict[str, float]]
    val_metrics: dict[str, float]
    cv_k: Optional[int]
    cv_mean: dict[str, float]
    cv_std: dict[str, float]
    objective: Optional[dict[str, Any]]  # {"name", "value"}
    timings: dict[str, float]
    total_seconds: Optional[float]
    data_rows: Optional[int]
    split_name: Optional[str]
    split_sizes: dict[str, int]
    train_rows: Optional[int]
    test_n: Optional[int]
    test_set: Optional[dict[str, Any]]  # {"n", "split_sha256", "labels_sha256", "lakes"}; None in older reports
    per_lake: list[dict[str, Any]]  # held-out per-lake rows [{"lake", "n", <metric>: value}], most rows first
    external_metrics: Optional[dict[str, float]]
    plots: list[str]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    #: rows outside the training rows' support in the test / external set; None where the report predates it
    test_extrapolating: Optional[int] = None
    external_extrapolating: Optional[int] = None


def read_report(path: str | Path) -> Report:
    """Read ``report.json`` (a file, or a run directory holding one) into a :class:`Report`.

    Raises :class:`ReportError` for a missing, damaged or foreign file, or a schema version this code does
    not know (it is named, never guessed at).
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path} does not exist. Pass a run directory that holds a {REPORT_JSON} "
                          "(a run that finished its report stage).") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"{path} is not readable JSON ({exc}). The report is damaged: rerun the report "
                          "stage with `python train.py resume=<run dir>` after deleting it, or leave the run out.")\
            from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise ReportError(f"{path} is not a kaayko-exp report (kind {kind!r}, expected {KIND!r}). "
                          "Pass run directories written by `python train.py`.")
    version = doc.get("schema_version")
    reader = _READERS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
    if reader is None:
        known = ", ".join(str(v) for v in sorted(_READERS))
        newer = isinstance(version, int) and version > max(_READERS)
        hint = ("It was written by a newer kaayko-exp: upgrade this one to read it." if newer else
                "Rewrite it with this version: delete the report and run `python train.py resume=<run dir>`, "
                "or leave the run out.")
        raise ReportError(f"{path} has report schema version {version!r}, which this kaayko-exp does not read "
                          f"(it reads version {known}). {hint}")
    try:
        return reader(path, doc)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ReportError(f"{path} says schema version {version} but does not follow it ({exc!r}). The report "
                          "is damaged: delete it and rerun the report stage, or leave the run out.") from None


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _metric_map(block: Any) -> dict[str, float]:
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise TypeError(f"expected a metrics mapping, got {type(block).__name__}")
    return {str(k): _float(v) for k, v in block.items() if k != "n"}


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{what}: expected a mapping, got {type(value).__name__}")
    return dict(value)


def _opt_int(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _read_v1(path: Path, doc: dict[str, Any]) -> Report:
    test = _mapping(doc.get("test"), "test")
    split = _mapping(doc.get("split"), "split")
    sizes = {str(k): _opt_int(v) for k, v in _mapping(split.get("sizes"), "split.sizes").items()}
    cv = doc.get("cv")
    cv = _mapping(cv, "cv") if cv is not None else None
    timings = {str(k): _float(v) for k, v in _mapping(doc.get("timings"), "timings").items()}
    model = _mapping(doc.get("model"), "model")
    objective = doc.get("objective")
    test_set = doc.get("test_set")
    if test_set is not None:
        test_set = _mapping(test_set, "test_set")
        for key in ("split_sha256", "labels_sha256"):
            if not isinstance(test_set.get(key), str):
                raise TypeError(f"test_set.{key} is not a hash string")
        _opt_int(test_set.get("n"))
    external = doc.get("external")
    return Report(
        path=path,
        schema_version=1,
        run_id=doc.get("run_id"),
        created=doc.get("created"),
        choices={str(k): str(v) for k, v in _mapping(doc.get("choices"), "choices").items()},
        config=_mapping(doc.get("config"), "config"),
        params=_mapping(doc.get("params"), "params"),
        model=model.get("name"),
        model_family=model.get("family"),
        metrics=_metric_map(doc.get("metrics")),
        metrics_after_safety=_metric_map(doc.get("metrics_after_safety")),
        baselines={str(k): _metric_map(metrics_of(v)) for k, v in _mapping(doc.get("baselines"), "baselines").items()},
        val_metrics=_metric_map(metrics_of(doc.get("val"))) if doc.get("val") else {},
        cv_k=_opt_int(cv.get("k")) if cv else None,
        cv_mean=_metric_map(cv.get("mean")) if cv else {},
        cv_std=_metric_map(cv.get("std")) if cv else {},
        objective=_mapping(objective, "objective") or None,
        timings=timings,
        total_seconds=timings.get("total"),
        data_rows=_opt_int(_mapping(doc.get("data"), "data").get("rows")),
        split_name=split.get("name"),
        split_sizes=sizes,
        train_rows=sizes.get("train"),
        test_n=_opt_int(test.get("n")),
        test_set=test_set,
        per_lake=lake_rows(test.get("per_lake")),
        external_metrics=_metric_map(metrics_of(external)) if external else None,
        plots=[str(p) for p in doc.get("plots") or []],
        raw=doc,
        test_extrapolating=_extrapolating(test),
        external_extrapolating=_extrapolating(_mapping(external, "external")) if external else None,
    )


def _extrapolating(block: Mapping[str, Any]) -> Optional[int]:
    """``block["extrapolation"]["rows"]``; None where the block has none (older reports, runs without support)."""
    extra = block.get("extrapolation")
    return None if extra is None else _opt_int(_mapping(extra, "extrapolation").get("rows"))


#: schema version -> reader. A new version adds its reader here; an unknown one is refused by name.
_READERS = {1: _read_v1}
