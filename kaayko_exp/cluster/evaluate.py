"""The evaluate stage on a Dask cluster: every held-out partition is scored on its worker.

Each partition is transformed with the serving code (``features.spec.transform``), predicted by the fitted
booster (sent to the workers as its UBJ bytes, loaded once per worker), put through the safety layer, and
reduced to per-lake sums (rows, absolute and squared errors, label sums, hits of the 0.5 grid, of the half
point and of the skill level) for the model, the model after the safety layer and the two baselines. The
client adds those sums up: the test metrics are exact reductions over every held-out row, the per-lake table a
group-by of the same sums, and no row reaches the client. The test partitions with their ``prediction``
column are written by the workers as a partitioned parquet dataset, ``predictions/test.parquet/part-NNNNN.parquet``
(the run directory must be on a filesystem the workers share).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

#: the per-lake sums every metric of :func:`kaayko_exp.evaluation.metrics.metrics` is made of
SUMS = ("n", "sae", "sse", "sy", "syy", "cls", "within", "skill")
#: the scored predictions of each partition (model, after safety, label rule, constant training mean)
KINDS = ("model", "safety", "rule", "constant_mean")
PREDICTIONS_DIR = Path("predictions") / "test.parquet"

_BOOSTERS: dict[str, Any] = {}  # per worker process: booster by the sha256 of its UBJ bytes


def booster_from(raw: bytes, digest: str) -> Any:
    """The booster of ``raw`` (UBJ), loaded once per process."""
    if digest not in _BOOSTERS:
        import xgboost as xgb

        bst = xgb.Booster()
        bst.load_model(bytearray(raw))
        bst.set_param({"nthread": 1})
        _BOOSTERS.clear()
        _BOOSTERS[digest] = bst
    return _BOOSTERS[digest]


def lake_sums(lakes: pd.Series, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per-lake sums of one partition (index: lake name)."""
    from kaayko_exp.data.label import round_to_half, skill_level

    err = p - y
    cls = round_to_half(p)
    frame = pd.DataFrame({
        "lake": pd.Series(lakes).astype(str).to_numpy(), "n": 1.0, "sae": np.abs(err), "sse": err * err, "sy": y,
        "syy": y * y, "cls": (cls == y).astype(np.float64), "within": (np.abs(err) <= 0.5).astype(np.float64),
        "skill": (skill_level(cls) == skill_level(y)).astype(np.float64),
    })
    return frame.groupby("lake", sort=True).sum()


def metrics_from(s: Any) -> dict[str, float]:
    """:func:`kaayko_exp.evaluation.metrics.metrics` from the sums ``s`` (a mapping or a row)."""
    n = float(s["n"])
    if n == 0:
        from kaayko_exp.evaluation.metrics import METRIC_NAMES

        return {name: (0 if name == "n" else float("nan")) for name in METRIC_NAMES}
    sst = float(s["syy"]) - float(s["sy"]) ** 2 / n
    return {
        "mae": float(s["sae"]) / n, "rmse": float(np.sqrt(float(s["sse"]) / n)),
        "r2": float(1.0 - float(s["sse"]) / sst) if sst > 1e-12 * max(1.0, float(s["syy"])) else float("nan"),
        "class_accuracy": float(s["cls"]) / n, "within_half": float(s["within"]) / n,
        "skill_accuracy": float(s["skill"]) / n, "n": int(round(n)),
    }


def score_partition(part: pd.DataFrame, index: int, spec: dict[str, Any], raw: bytes, digest: str,
                    safety_cfg: Optional[dict[str, Any]], train_mean: float, out_dir: Optional[str],
                    support: Any = None) -> dict[str, Any]:
    """On a worker: score one partition and reduce it to sums; write it with its predictions when ``out_dir``."""
    from kaayko_exp import atomic
    from kaayko_exp.data.label import paddle_score_rule
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.features.spec import FeatureSpec, transform, unseen

    fspec = FeatureSpec.from_dict(spec)
    part = part.reset_index(drop=True)
    y = part[TARGET].to_numpy(dtype=np.float64)
    out: dict[str, Any] = {"index": index, "rows": int(len(part))}
    if len(part):
        pred = np.asarray(booster_from(raw, digest).inplace_predict(
            np.ascontiguousarray(transform(fspec, part), dtype=np.float32)), dtype=np.float64).reshape(-1)
    else:
        pred = np.zeros(0)
    out["labels_sha256"] = hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()
    if safety_cfg is not None:
        from kaayko_exp.serving.safety import layer

        safety = layer(OmegaConf.create(safety_cfg))
        applied = safety.apply_arrays(part, pred, details=False)
        out["safety_name"] = safety.name
        out["changed"] = int(np.sum(applied.paddle_score != applied.model_score))
        out["per_rule"] = {chk.name: int(np.sum(applied.matched.get(chk.name, np.zeros(len(part), dtype=bool))))
                           for chk in safety.rules}
        after = applied.paddle_score
    else:
        after = pred
    preds = {"model": pred, "safety": after, "constant_mean": np.full(len(part), float(train_mean))}
    if safety_cfg is not None:
        preds["rule"] = np.asarray(paddle_score_rule(part), dtype=np.float64)
    out["sums"] = {kind: lake_sums(part["lake"], y, p) for kind, p in preds.items()}
    if support is not None:  # rows outside the training rows' support, counted as the local evaluate does
        out["extrapolation"] = support.summary(part, part["lake"])
    levels, rows = unseen(fspec, part)
    out["unseen"] = (levels, rows)
    if out_dir is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = part.assign(prediction=pred)
        path = Path(out_dir) / f"part-{index:05d}.parquet"
        atomic.write_with(path, lambda tmp: pq.write_table(pa.Table.from_pandas(table, preserve_index=False), tmp))
        out["file"] = str(path)
    return out


def _total(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames).groupby(level=0, sort=True).sum() if frames else pd.DataFrame(columns=SUMS)


def score(client: Any, ddf: Any, model: Any, spec: Any, safety_cfg: Any, train_mean: float,
          out_dir: Optional[Path] = None, support: Any = None) -> list[dict[str, Any]]:
    """Score every partition of ``ddf`` on the cluster (see :func:`score_partition`); small results only."""
    import dask

    raw = bytes(model.booster.save_raw(raw_format="ubj"))
    digest = hashlib.sha256(raw).hexdigest()
    safety = OmegaConf.to_container(safety_cfg, resolve=True) if safety_cfg is not None else None
    # hash=False: a key of this call's own. With content keys, the test and validation scorings scatter the same
    # booster under one key, and the first call's release can drop it under the second ("lost dependencies")
    raw_f = client.scatter(raw, broadcast=True, hash=False)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    support_f = client.scatter(support, broadcast=True, hash=False) if support is not None else None
    tasks = [dask.delayed(score_partition)(part, i, spec.to_dict(), raw_f, digest, safety, train_mean,
                                           None if out_dir is None else str(out_dir), support_f)
             for i, part in enumerate(ddf.to_delayed())]
    return list(client.compute(tasks, sync=True))


def reduce_block(results: list[dict[str, Any]], what: str, safety: bool = True) -> dict[str, Any]:
    """The local evaluate stage's block (``n``, ``metrics``, ``metrics_after_safety``, ``safety``,
    ``per_lake``, ``baselines``) from the partitions' sums."""
    sums = {kind: _total([r["sums"][kind] for r in results if kind in r["sums"]]) for kind in KINDS}
    total = {kind: frame.sum() if len(frame) else pd.Series(0.0, index=SUMS) for kind, frame in sums.items()}
    n = int(round(float(total["model"]["n"])))
    block: dict[str, Any] = {"n": n, "metrics": metrics_from(total["model"])}
    if not safety:
        return block
    block["metrics_after_safety"] = metrics_from(total["safety"])
    names = results[0].get("safety_name") if results else None
    rules: dict[str, int] = {}
    for r in results:
        for rule, hits in (r.get("per_rule") or {}).items():
            rules[rule] = rules.get(rule, 0) + hits
    block["safety"] = {"name": names, "rows_changed_share": (sum(r.get("changed", 0) for r in results) / n) if n else 0.0,
                       "per_rule": {rule: (hits / n if n else 0.0) for rule, hits in rules.items()}}
    block["per_lake"] = [{"lake": str(lake), **metrics_from(row)} for lake, row in sums["model"].iterrows()]
    block["baselines"] = {"rule": metrics_from(total["rule"]), "constant_mean": metrics_from(total["constant_mean"])}
    levels: dict[str, dict[str, int]] = {}
    rows = 0
    for r in results:
        lv, k = r["unseen"]
        rows += int(k)
        for col, values in lv.items():
            for value, count in values.items():
                levels.setdefault(col, {})[value] = levels.setdefault(col, {}).get(value, 0) + int(count)
    if rows:
        log.warning("%s rows of the %s have a category level not seen in training; they are scored with that "
                    "category treated as missing (NaN code).", f"{rows:,}", what)
    block["unseen_levels"] = {"rows": rows, "levels": levels}
    return block


def _head(ddf: Any, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows from the first partitions (what a sampled part of the report reads)."""
    taken, out = 0, []
    for i in range(ddf.npartitions):
        if taken >= rows:
            break
        part = ddf.get_partition(i).compute()
        out.append(part.iloc[: rows - taken])
        taken += len(out[-1])
    return pd.concat(out, ignore_index=True) if out else ddf._meta.copy()


def evaluate(ctx: Any, state: Any) -> tuple[dict[str, Any], list[Path]]:
    """The local ``evaluate_run``'s results (same keys) computed on the cluster, plus a ``backend`` block."""
    from kaayko_exp.data.schema import TARGET
    from kaayko_exp.data.support import Support
    from kaayko_exp.evaluation.metrics import metrics, permutation_importance, permutation_rows
    from kaayko_exp.features.spec import feature_names, transform

    cfg, run, model, client = ctx.cfg, ctx.run, ctx.model, state.client
    t0 = time.perf_counter()
    parts_s: dict[str, float] = {}
    train_mean = state.train_mean()
    out_dir = run.path / PREDICTIONS_DIR
    if out_dir.exists():  # a half-written set of an interrupted evaluate
        import shutil

        shutil.rmtree(out_dir)
    support = getattr(ctx, "support", None)
    test = score(client, state.parts["test"], model, ctx.spec, cfg.safety, train_mean, out_dir, support)
    parts_s["test"] = round(time.perf_counter() - t0, 3)
    results: dict[str, Any] = {"test": reduce_block(test, "test set")}
    results["test"]["unseen_levels"] = results["test"].pop("unseen_levels")
    results["test"]["extrapolation"] = state.hooks.extrapolation(
        None if support is None else Support.add_summaries([r["extrapolation"] for r in test], results["test"]["n"]),
        results["test"]["n"], "test set")
    digest = hashlib.sha256("".join(r["labels_sha256"] for r in test).encode()).hexdigest()
    results["test_set"] = {"n": results["test"]["n"], "split_sha256": state.split_sha256,
                           "labels_sha256": digest, "lakes": len(results["test"]["per_lake"]),
                           "partitions": len(test)}
    m = results["test"]["metrics"]
    log.info("evaluate: test rmse %.4f, class accuracy %.3f (%s rows in %d partitions, scored on the workers)",
             m["rmse"], m["class_accuracy"], f"{results['test']['n']:,}", len(test))
    t = time.perf_counter()
    if state.sizes.get("val"):
        results["val"] = reduce_block(score(client, state.parts["val"], model, ctx.spec, None, train_mean),
                                      "validation set", safety=False)
    parts_s["val"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    limit = OmegaConf.select(cfg, "evaluation.in_sample_max_rows", default=50_000)
    n_train = int(state.sizes["train"])
    take = n_train if limit is None else min(n_train, int(limit))
    sample = _head(state.parts["train"], take)
    results["train_in_sample"] = {
        "n": int(len(sample)), "rows": n_train, "sampled": len(sample) < n_train,
        "metrics": metrics(sample[TARGET].to_numpy(dtype=np.float64), model.predict(transform(ctx.spec, sample))),
        "note": "in-sample (training rows): optimistic, never the headline"
                + (f"; the first {len(sample):,} of the {n_train:,} training rows (partition order)"
                   if len(sample) < n_train else ""),
    }
    del sample
    parts_s["train_in_sample"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    max_rows, repeats = int(cfg.evaluation.permutation_max_rows), int(cfg.evaluation.permutation_repeats)
    n_test = results["test"]["n"]
    head = _head(state.parts["test"], permutation_rows(n_test, max_rows))
    results["cv"] = None
    results["importance"] = {
        "model": model.feature_importance(),
        "permutation": permutation_importance(model, transform(ctx.spec, head), head[TARGET].to_numpy(np.float64),
                                              feature_names(ctx.spec), max_rows=max_rows, repeats=repeats,
                                              seed=int(cfg.seed)),
        "permutation_rows": int(len(head)), "permutation_repeats": repeats,
    }
    del head
    parts_s["permutation_importance"] = round(time.perf_counter() - t, 3)
    results["sampling"] = {
        "train_in_sample": {"rows": results["train_in_sample"]["n"], "of": n_train},
        "permutation_importance": {"rows": results["importance"]["permutation_rows"], "of": n_test,
                                   "repeats": repeats, "seed": int(cfg.seed)},
    }
    if cfg.evaluation.external:
        results["external"] = state.hooks.external(ctx, cfg.evaluation.external, train_mean)
    results["backend"] = state.backend_block()
    results["objective"] = state.hooks.objective_block(cfg, results)
    results["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    results["evaluate_parts_seconds"] = parts_s
    files = sorted(Path(r["file"]) for r in test)
    return results, files
