"""XGBoost gradient-boosted trees (hist, native categoricals), resumable round by round.

Resume is exact: XGBoost's own samplers keep state that a reloaded booster cannot
restore (its column sampler is seeded once, at the first round a booster object
runs), so ``subsample`` and ``colsample_bytree`` are drawn by us per round from
``(seed, round)`` — rows via 0/1 instance weights, columns via per-round feature
weights — and the boosting loop calls ``Booster.update(dtrain, iteration=i)``
itself (``xgb.train`` restarts its iteration counter at 0 on continuation).
A fit killed after round k and continued from the round-k checkpoint therefore
grows exactly the trees an uninterrupted fit grows. ``colsample_bylevel`` /
``colsample_bynode`` < 1 use XGBoost's sampler and are not bit-exact on resume.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from kaayko_exp import atomic
from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.models.base import Model, check_param_names

logger = logging.getLogger(__name__)

#: XGBoost booster parameters accepted under model.params (tree booster, regression).
BOOSTER_PARAMS = frozenset({
    "learning_rate", "eta", "gamma", "min_split_loss", "max_depth", "min_child_weight", "max_delta_step",
    "colsample_bylevel", "colsample_bynode", "reg_lambda", "lambda", "reg_alpha", "alpha", "tree_method",
    "grow_policy", "max_leaves", "max_bin", "num_parallel_tree", "monotone_constraints",
    "interaction_constraints", "max_cat_to_onehot", "max_cat_threshold", "device", "objective", "eval_metric",
    "base_score", "huber_slope", "quantile_alpha", "verbosity", "sampling_method", "max_cached_hist_node",
    "validate_parameters",
})
#: handled by this module (not passed to the booster as is)
OWN_PARAMS = frozenset({"n_estimators", "early_stopping_rounds", "subsample", "colsample_bytree"})
DEFAULTS: dict[str, Any] = {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.1, "tree_method": "hist",
                            "device": "cpu", "objective": "reg:squarederror", "max_bin": 256}
MODEL_FILE = "model.ubj"
CONFIG_FILE = "booster_config.json"
STATE_FILE = "state.json"


def _positive_int(params: Mapping[str, Any], key: str, *, allow_none: bool = False) -> None:
    v = params.get(key)
    if v is None and allow_none:
        return
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ConfigError(f"model.params.{key}={v!r} must be a whole number ≥ 1.")


def _share(params: Mapping[str, Any], key: str) -> None:
    v = params.get(key, 1.0)
    if not isinstance(v, (int, float)) or not 0 < float(v) <= 1:
        raise ConfigError(f"model.params.{key}={v!r} must be a share in (0, 1].")


def _eval_metrics(params: Mapping[str, Any]) -> list[str]:
    """``eval_metric`` as a list (default ``rmse``); as in XGBoost, the last one is the early-stopping metric."""
    value = params.get("eval_metric")
    if value is None:
        return ["rmse"]
    return [str(m) for m in value] if isinstance(value, (list, tuple)) else [str(value)]


#: XGBoost metrics where higher is better (prefixes, as ``ndcg@5``); every other one is minimised
MAXIMISED_METRICS = ("auc", "aucpr", "map", "ndcg", "pre")


def _parse_eval(text: str) -> dict[str, float]:
    """``"[12]\tval-mae:0.40\tval-rmse:0.51"`` -> ``{"mae": 0.40, "rmse": 0.51}`` (scores read by name)."""
    out: dict[str, float] = {}
    for part in text.strip().split("\t")[1:]:
        name, _, value = part.rpartition(":")
        out[name.split("-", 1)[1]] = float(value)
    return out


def _best(history: list[float], better: Any) -> int:
    """Index of the first best value of ``history`` (``better``: min or max)."""
    target = better(history)
    return history.index(target)


#: resolution of the per-round row draw: a row is kept when a 16-bit draw is below round(subsample * 2**16)
ROW_DRAW_LEVELS = 1 << 16


def row_draw(rng: np.random.Generator, n: int, subsample: float) -> np.ndarray:
    """0/1 float32 weights keeping each of ``n`` rows with probability ``subsample`` (to 1/65,536), drawn from
    ``rng`` as 16-bit slices of its raw 64-bit output: a quarter of the generator calls of one float per row
    (300 rounds at sample_size=large: ~0.25 s less CPU), seeded per round like before."""
    bits = rng.bit_generator.random_raw((n + 3) // 4).view("<u2")[:n]
    return (bits < np.uint16(min(ROW_DRAW_LEVELS - 1, round(subsample * ROW_DRAW_LEVELS)))).astype(np.float32)


class XGBoostModel(Model):
    step_unit = "round"
    family = "xgboost"

    def __init__(self, params, **kw):
        super().__init__({**DEFAULTS, **dict(params)}, **kw)
        self.booster = None  # xgboost.Booster: the prediction service's fast path (inplace_predict)

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        check_param_names(cls.family, params, BOOSTER_PARAMS | OWN_PARAMS)
        merged = {**DEFAULTS, **params}
        _positive_int(merged, "n_estimators")
        _positive_int(merged, "early_stopping_rounds", allow_none=True)
        for key in ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode"):
            _share(merged, key)
        device = str(merged.get("device", "cpu"))
        if not (device in ("cpu", "cuda", "gpu") or device.startswith("cuda:")):
            raise ConfigError(f"model.params.device={device!r}: use cpu, cuda or cuda:<n>.")
        if str(merged.get("tree_method")) not in ("hist", "approx", "exact", "auto"):
            raise ConfigError(f"model.params.tree_method={merged.get('tree_method')!r}: use hist.")

    # ------------------------------------------------------------------ fit
    def _booster_params(self, n_features: int) -> tuple[dict[str, Any], int]:
        p = {k: v for k, v in self.params.items() if k in BOOSTER_PARAMS and v is not None}
        # the callbacks read the validation RMSE whatever the early-stopping metric: both are evaluated
        p["eval_metric"] = list(dict.fromkeys([*_eval_metrics(self.params), "rmse"]))
        p.update(seed=self.seed, seed_per_iteration=True, nthread=self.n_jobs)
        k = n_features
        cs = float(self.params.get("colsample_bytree", 1.0) or 1.0)
        if cs < 1.0:
            k = max(1, int(np.floor(cs * n_features + 1e-9)))
            if k < n_features:  # our own per-round choice of k features; see the module docstring
                p["colsample_bytree"] = min(1.0, (k + 0.5) / n_features)
        return p, k

    def steps(self) -> int:
        return int(self.params["n_estimators"])

    def stops_early_on_validation(self) -> bool:
        return bool(self.params.get("early_stopping_rounds"))

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        import xgboost as xgb

        total = int(self.params["n_estimators"])
        esr = self.params.get("early_stopping_rounds")
        subsample = float(self.params.get("subsample", 1.0) or 1.0)
        n, nf = X.shape
        params, k_cols = self._booster_params(nf)
        from kaayko_exp.features.spec import category_split_mask

        ftypes = ["c" if c else "q" for c in category_split_mask(spec)]  # features.category_splits
        self.info["category_splits"] = spec.category_splits
        max_bin = int(self.params.get("max_bin", 256))  # the same for every matrix and the booster
        dtrain = xgb.QuantileDMatrix(X, label=y, feature_names=self.feature_names, feature_types=ftypes,
                                     enable_categorical=True, max_bin=max_bin, nthread=self.n_jobs)
        dval = None
        if X_val is not None:
            dval = xgb.QuantileDMatrix(X_val, label=y_val, ref=dtrain, feature_names=self.feature_names,
                                       feature_types=ftypes, enable_categorical=True, max_bin=max_bin,
                                       nthread=self.n_jobs)
        caches = [dtrain] + ([dval] if dval is not None else [])
        # history: the early-stopping metric (eval_metric's last) per scored round; rmse_history: the val RMSE
        es_metric = _eval_metrics(self.params)[-1]
        better = max if es_metric.startswith(MAXIMISED_METRICS) else min
        done, history, rmse_history = 0, [], []
        restored = callbacks.restore(key)
        if restored is not None:
            directory, done = restored
            start, history, rmse_history = self.load_checkpoint(Path(directory), int(done))
            bst = xgb.Booster(params, caches, model_file=start)
            logger.info("xgboost: resuming at round %d/%d", done, total)
        else:
            bst = xgb.Booster(params, caches)
        stop = False
        for i in range(int(done), total):
            if subsample < 1.0 or k_cols < nf:
                rng = np.random.default_rng([self.seed, i, 0x5B])
                if subsample < 1.0:
                    dtrain.set_weight(row_draw(rng, n, subsample))
                if k_cols < nf:
                    fw = np.zeros(nf, dtype=np.float32)
                    fw[rng.choice(nf, k_cols, replace=False)] = 1.0
                    dtrain.set_info(feature_weights=fw)
            bst.update(dtrain, iteration=i)
            score: Optional[float] = None
            # the validation rows are scored where something reads the score: every round for early
            # stopping, else the callbacks' due steps (progress, pruning) and the last round
            if dval is not None and (esr or i + 1 == total or callbacks.wants_score(key, i + 1, total)):
                scores = _parse_eval(bst.eval_set([(dval, "val")], iteration=i))
                score = scores["rmse"]
                history.append(scores[es_metric])
                rmse_history.append(score)
                if esr and len(history) - 1 - _best(history, better) >= int(esr):
                    stop = True
            callbacks.after_step(key, i + 1, total, score, self._partial_saver(bst, history, rmse_history))
            if stop:
                break
        kept = len(history) - 1
        sliced = False
        if esr and history:
            kept = _best(history, better)
            self.info.update(best_iteration=kept, rounds_run=len(history), early_stopping_metric=es_metric,
                             **{f"best_val_{es_metric}": history[kept]})
            if kept + 1 < bst.num_boosted_rounds():
                logger.info("xgboost: early stopping keeps %d rounds (val_%s %.4f)", kept + 1, es_metric,
                            history[kept])
                bst, sliced = bst[: kept + 1], True
        if not sliced and str(self.params.get("device", "cpu")) == "cpu":
            # the booster's prediction cache of its training (and validation) matrix: the values inplace_predict
            # gives for those rows (tests/test_models.py), nothing predicted again; a GPU's cache may sum otherwise
            self.fit_predictions = {name: bst.predict(d) for name, d in zip(("train", "val"), caches)}
        if history:
            self.info["val_rmse"] = rmse_history[kept]
            if es_metric != "rmse":
                self.info[f"val_{es_metric}"] = history[kept]
        bst.set_param({"device": "cpu"})  # predictions on host arrays
        self.booster = bst

    @staticmethod
    def load_checkpoint(directory: Path, done: int) -> tuple[Any, list[float], list[float]]:
        """``(booster, history, rmse_history)`` of a partial fit saved by :meth:`_partial_saver` after ``done``
        rounds (the manifest's count, checked against the booster's)."""
        start = XGBoostModel._load_booster(directory)
        if start.num_boosted_rounds() != int(done):
            raise RunDirError(f"The checkpoint in {directory} holds {start.num_boosted_rounds()} rounds, the "
                              f"manifest says {done}: it is inconsistent. Start a fresh run.")
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        history = [float(v) for v in state.get("val_history", state.get("val_rmse", []))]
        return start, history, [float(v) for v in state.get("val_rmse", [])]

    @staticmethod
    def _partial_saver(bst, history, rmse_history):
        def save(directory: Path) -> None:
            XGBoostModel._write_booster(bst, Path(directory))
            atomic.write_json(Path(directory) / STATE_FILE,
                              {"rounds": bst.num_boosted_rounds(), "val_history": list(history),
                               "val_rmse": list(rmse_history)})
        return save

    @staticmethod
    def _write_booster(bst, directory: Path) -> None:
        atomic.write_bytes(directory / MODEL_FILE, bytes(bst.save_raw(raw_format="ubj")))
        atomic.write_text(directory / CONFIG_FILE, bst.save_config())

    @staticmethod
    def _load_booster(directory: Path):
        import xgboost as xgb

        raw = (directory / MODEL_FILE).read_bytes()
        if raw[:1] == b"\x80":
            raise RunDirError(f"{directory / MODEL_FILE} is a pickle, not an XGBoost UBJ model; kaayko never loads "
                              "pickles. Restore the file the run wrote, or retrain.")
        try:
            bst = xgb.Booster()
            bst.load_model(bytearray(raw))
            bst.load_config((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        except (xgb.core.XGBoostError, ValueError, OSError) as exc:
            raise RunDirError(f"{directory / MODEL_FILE} is not a loadable XGBoost model ({exc}). Restore it or "
                              "retrain.") from exc
        return bst

    # ------------------------------------------------------------------ use
    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.inplace_predict(X), dtype=np.float64)

    def feature_importance(self) -> Optional[dict[str, float]]:
        gain = self.booster.get_score(importance_type="total_gain")
        return self._named(gain.get(n, 0.0) for n in self.feature_names)

    def _save_files(self, directory: Path) -> list[str]:
        self._write_booster(self.booster, directory)
        return [MODEL_FILE, CONFIG_FILE]

    def _restore(self, directory: Path, meta: Mapping[str, Any]) -> None:
        self.booster = self._load_booster(directory)
        self.booster.set_param({"device": "cpu", "nthread": self.n_jobs})
