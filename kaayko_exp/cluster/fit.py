"""The fit on a Dask cluster: ``model=xgboost`` trained with ``xgboost.dask`` on a ``DaskQuantileDMatrix``.

The client drives the boosting loop in chunks of rounds: each chunk is one ``xgboost.dask.train`` call that
continues the booster of the previous chunk (``xgb_model=``), with the validation matrix (built with
``ref=`` the training matrix) scored every round. A chunk is the greatest common divisor of the fit
callbacks' intervals (checkpoints every ``checkpointing.every`` rounds, pruning reports every
``pruning.report_every``), so every round a callback acts on is a chunk end. After each chunk the client
replays the rounds to today's fit callbacks (:mod:`kaayko_exp.models.callbacks`) from the gathered state
(the returned booster and its evaluation history): progress lines, checkpoints (the booster sliced at the
round, written into the run directory by the client), stop signals and pruning reports all run in the client,
so each decision is taken once and every worker simply never gets another chunk: the decision is the same on
all of them by construction. Early stopping slices the booster at its best round.

Workers are watched while a chunk runs: a worker that leaves the cluster (killed, out of memory) interrupts
the run with its last checkpoint kept (``training.interrupts.WorkerLost``, handed in by the pipeline), never a
hang.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kaayko_exp.errors import ConfigError

log = logging.getLogger("kaayko_exp.fit")

#: how often the client looks at the worker set while a chunk trains (seconds)
WATCH_SECONDS = 0.5
#: how long the surviving workers of a lost chunk get to restart (seconds)
RESTART_SECONDS = 60
#: XGBoost's collective gives up on a peer after this long (seconds): the last resort against a hang, longer than
#: any single collective operation (a worker sketching a large partition while the others wait)
COLLECTIVE_TIMEOUT_SECONDS = 1800


def check_family(cfg: Any) -> None:
    """``backend=dask`` trains only XGBoost (the distributed family); anything else stops before any work."""
    name = str(cfg.model.name)
    if name != "xgboost":
        raise ConfigError(
            f"model={name} cannot train on backend=dask: xgboost is the distributed family (xgboost.dask trains "
            "one model over every worker's partitions); the other families fit in one process on one machine. "
            f"Use model=xgboost with backend=dask, or train model={name} with backend=local (the default)."
        )


def _booster_params(model: Any) -> dict[str, Any]:
    """The booster parameters of the local fit, with XGBoost's own row and column samplers (the local fit draws
    them per round itself, for an exact resume; on a cluster XGBoost samples, so a resume is not bit-exact)."""
    from kaayko_exp.models.xgboost_model import BOOSTER_PARAMS, _eval_metrics

    p = {k: v for k, v in model.params.items() if k in BOOSTER_PARAMS and v is not None}
    p["eval_metric"] = list(dict.fromkeys([*_eval_metrics(model.params), "rmse"]))
    for key in ("subsample", "colsample_bytree"):
        if model.params.get(key) is not None and float(model.params[key]) < 1.0:
            p[key] = float(model.params[key])
    p.update(seed=model.seed, nthread=0)  # nthread 0: the worker's threads
    return p


def workers_of(client: Any) -> dict[str, dict[str, Any]]:
    """The scheduler's workers now (asked directly: ``Client.scheduler_info()`` returns a cache that the
    client's periodic refresh replaces with one holding no per-worker entries)."""
    return dict(client.sync(client.scheduler.identity, n_workers=-1).get("workers", {}))


class _Watch:
    """Runs one chunk (a blocking ``xgboost.dask.train``) in a thread; the calling thread watches the workers."""

    def __init__(self, client: Any, memory_note: Any, interrupted: Any):
        self.client = client
        self.memory_note = memory_note
        self.interrupted = interrupted  # message -> the exception that stops the run as interrupted
        self.last_memory: dict[str, tuple[float, float]] = {}

    def run(self, call: Any, round_at: int) -> Any:
        box: dict[str, Any] = {}
        start = set(workers_of(self.client))

        def target() -> None:
            try:
                with self.client.as_current():  # xgboost.dask looks the client up (a context variable)
                    box["out"] = call()
            except BaseException as exc:  # handed to the watching thread
                box["err"] = exc

        thread = threading.Thread(target=target, name="kaayko-dask-fit", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(WATCH_SECONDS)
            if not thread.is_alive():
                break
            gone = self._gone(start)
            if gone:
                raise self._lost(gone, start, round_at)
        if "err" in box:
            gone = self._gone(start)
            if gone:
                raise self._lost(gone, start, round_at) from None
            raise box["err"]
        return box["out"]

    def _release(self, survivors: list[str]) -> None:
        """The other workers of the chunk wait in XGBoost's collective for a peer that is gone (a C++ call no
        cancel reaches): restart them through their nannies so the cluster is free for the resume."""
        if not survivors:
            return
        try:
            self.client.restart_workers(survivors, timeout=RESTART_SECONDS, raise_for_error=False)
        except Exception as exc:  # best effort: XGBoost's own collective timeout releases them otherwise
            log.warning("could not restart the Dask workers %s (%s); they leave XGBoost's collective after "
                        "%d s", ", ".join(survivors), type(exc).__name__, COLLECTIVE_TIMEOUT_SECONDS)

    def _gone(self, start: set[str]) -> list[str]:
        now = workers_of(self.client)
        for addr, info in now.items():
            limit = float(info.get("memory_limit") or 0)
            used = float((info.get("metrics") or {}).get("memory") or 0)
            self.last_memory[addr] = (used, limit)
        return sorted(start - set(now))

    def _lost(self, gone: list[str], start: set[str], round_at: int) -> BaseException:
        self._release(sorted(start & set(workers_of(self.client))))
        used = [self.last_memory.get(a, (0.0, 0.0)) for a in gone]
        near_limit = any(limit and u >= 0.7 * limit for u, limit in used)
        why = (f" It was near its memory limit before it went ({self.memory_note()})." if near_limit else
               " It was killed or its machine went away" + (f" ({self.memory_note()})" if self.memory_note else "")
               + ".")
        message = (
            f"The Dask worker {', '.join(gone)} left the cluster during the fit, after round {round_at}.{why} "
            "The run is interrupted with its last checkpoint kept; once the cluster has its workers again, "
            "continue it with: python train.py resume=<run dir>."
        )
        log.warning("%s", message)
        return self.interrupted(message)


def fit_xgboost(ctx: Any, state: Any, key: str = "fit", phase: int = 0) -> Any:
    """Train ``ctx.cfg.model`` (xgboost) on the cluster from ``state.xy`` (``{"train": (X, y), "val": (X, y)}``,
    dask collections; ``state``: :class:`kaayko_exp.cluster.stages.ClusterState`); returns the fitted
    :class:`~kaayko_exp.models.xgboost_model.XGBoostModel`, saved and loaded like a local one."""
    import xgboost.dask as dxgb

    from kaayko_exp.features.spec import categorical_mask, category_split_mask, feature_names
    from kaayko_exp.models import build_model
    from kaayko_exp.models.callbacks import FitCallbacks
    from kaayko_exp.models.xgboost_model import MAXIMISED_METRICS, XGBoostModel, _best, _eval_metrics

    cfg, client, parts = ctx.cfg, state.client, state.xy
    X, y = parts["train"]
    n_train = int(state.sizes["train"])
    model = build_model(cfg.model, seed=cfg.seed, n_jobs=1, n_rows=n_train)
    model.feature_names = feature_names(ctx.spec)
    model.categorical = [bool(c) for c in categorical_mask(ctx.spec)]
    model.info["category_splits"] = ctx.spec.category_splits
    total = int(model.steps())
    esr = model.params.get("early_stopping_rounds")
    es_metric = _eval_metrics(model.params)[-1]
    better = max if es_metric.startswith(MAXIMISED_METRICS) else min
    params = _booster_params(model)
    ftypes = ["c" if c else "q" for c in category_split_mask(ctx.spec)]
    max_bin = int(model.params.get("max_bin", 256))
    common = dict(feature_names=model.feature_names, feature_types=ftypes, enable_categorical=True, max_bin=max_bin)
    with client.as_current():  # xgboost.dask looks the client up (a context variable)
        dtrain = dxgb.DaskQuantileDMatrix(client, X, y, **common)
        evals = []
        if "val" in parts and int(state.sizes.get("val", 0)):
            Xv, yv = parts["val"]
            evals = [(dxgb.DaskQuantileDMatrix(client, Xv, yv, ref=dtrain, **common), "val")]
    if ctx.pruner is not None:
        ctx.pruner.begin_phase(key, phase, max(1, total))
    callbacks: FitCallbacks = ctx.callbacks
    callbacks.before_fit(key, total, model.step_unit)
    booster, done, history, rmse_history = None, 0, [], []
    restored = callbacks.restore(key)
    if restored is not None:
        directory, done = restored
        booster, history, rmse_history = XGBoostModel.load_checkpoint(Path(directory), int(done))
        log.info("xgboost.dask: resuming at round %d/%d", done, total)
    chunk = callbacks.chunk(total)
    from xgboost.collective import Config as CollConfig

    coll = CollConfig(timeout=COLLECTIVE_TIMEOUT_SECONDS, tracker_timeout=COLLECTIVE_TIMEOUT_SECONDS)
    watch = _Watch(client, state.memory_note, state.hooks.interrupted)
    stop, t0 = False, time.perf_counter()
    while done < total and not stop:
        rounds = min(chunk, total - done)
        start_booster = booster
        # XGBoost seeds its row / column samplers at every train call: a seed per chunk start (the same on a
        # resume, which starts at a chunk boundary) keeps the chunks from drawing the same rows again
        chunk_params = {**params, "seed": _chunk_seed(model.seed, done)}
        out = watch.run(lambda: dxgb.train(client, chunk_params, dtrain, num_boost_round=rounds, evals=evals,
                                           xgb_model=start_booster, verbose_eval=False, coll_cfg=coll), done)
        booster = out["booster"]
        scores = (out.get("history") or {}).get("val") or {}
        for j in range(rounds):
            r = done + j + 1
            score = None
            if scores:
                score = float(scores["rmse"][j])
                history.append(float(scores[es_metric][j]))
                rmse_history.append(score)
                if esr and len(history) - 1 - _best(history, better) >= int(esr):
                    stop = True
            callbacks.after_step(key, r, total, score, _saver(booster, r, history, rmse_history))
            if stop:
                booster = booster[:r] if r < booster.num_boosted_rounds() else booster
                break
        done = booster.num_boosted_rounds()
    kept = len(history) - 1
    if esr and history:
        kept = _best(history, better)
        model.info.update(best_iteration=kept, rounds_run=len(history), early_stopping_metric=es_metric,
                          **{f"best_val_{es_metric}": history[kept]})
        if kept + 1 < booster.num_boosted_rounds():
            log.info("xgboost.dask: early stopping keeps %d rounds (val_%s %.4f)", kept + 1, es_metric, history[kept])
            booster = booster[: kept + 1]
    if history:
        model.info["val_rmse"] = rmse_history[kept]
        if es_metric != "rmse":
            model.info[f"val_{es_metric}"] = history[kept]
    booster.set_param({"device": "cpu", "nthread": 1})
    model.booster = booster
    model.fitted = True
    model.info["distributed"] = {"chunk_rounds": chunk, "train_seconds": round(time.perf_counter() - t0, 3)}
    callbacks.after_fit(key, None)
    return model


def _chunk_seed(seed: int, done: int) -> int:
    """The booster seed of the chunk starting after ``done`` rounds."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(done)]).generate_state(1)[0] & 0x7FFFFFFF)


def _saver(booster: Any, rounds: int, history: list[float], rmse_history: list[float]) -> Any:
    """Writes the booster as it was after ``rounds`` rounds (sliced from a later one when needed)."""
    from kaayko_exp.models.xgboost_model import XGBoostModel

    hist, rmse = list(history[:rounds]), list(rmse_history[:rounds])

    def save(directory: Path) -> None:
        bst = booster[:rounds] if rounds < booster.num_boosted_rounds() else booster
        XGBoostModel._partial_saver(bst, hist, rmse)(directory)
    return save

