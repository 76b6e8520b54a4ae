"""scikit-learn tree ensembles grown in resumable chunks: random forest, extra trees, histgb.

Each fit grows ``callbacks.chunk(total)`` trees (forests) or boosting iterations
(histgb) per chunk with ``warm_start`` (the gcd of the callbacks' intervals, e.g. the
checkpoint interval; the whole fit in one chunk when no callback asks for one) and
offers a skops-saved partial state after each chunk. Chunked fits equal one-shot
fits: a forest re-draws the seeds of its existing trees before drawing new ones,
histgb keeps its seeds and feature-subsampling generator in the estimator (saved
with it), and its warm-started raw predictions add the same leaf values in the
same order. Forest predictions are summed tree by tree in a fixed order (sklearn's
threaded sum is order-nondeterministic in the last bit).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from kaayko_exp.errors import ConfigError
from kaayko_exp.models import persist
from kaayko_exp.models.base import Model, check_param_names, rmse

logger = logging.getLogger(__name__)

ESTIMATOR_FILE = persist.ESTIMATOR_FILE


def _estimator_param_names(cls) -> set[str]:
    return set(cls().get_params(deep=False))


def _validate_sklearn(family: str, cls, params: Mapping[str, Any], extra_ok: set[str] = frozenset()) -> None:
    valid = _estimator_param_names(cls) - {"random_state", "n_jobs", "warm_start", "verbose",
                                           "categorical_features"}
    check_param_names(family, params, valid | set(extra_ok))
    try:
        cls(**{k: v for k, v in params.items() if k not in extra_ok})._validate_params()
    except AttributeError:  # pragma: no cover - private API gone: sklearn validates at fit
        pass
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Invalid model.params for {family}: {exc}. Fix conf/model/{family}.yaml or the "
                          "override.") from None


class _ChunkedTrees(persist.SkopsEstimatorFiles, Model):
    """Shared chunked warm-start loop; subclasses name the estimator and its size parameter."""

    size_param = "n_estimators"
    estimator_cls: Any = None
    defaults: dict[str, Any] = {}
    #: model.params that are ours, not the estimator's (accepted by validate, kept out of the estimator)
    own_params: frozenset = frozenset()

    def __init__(self, params, **kw):
        super().__init__({**self.defaults, **dict(params)}, **kw)
        self.estimator = None

    def _estimator_params(self) -> dict[str, Any]:
        """model.params less :attr:`own_params`: what the estimator is built with."""
        return {k: v for k, v in self.params.items() if k not in self.own_params}

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        _validate_sklearn(cls.family, cls._estimator_class(), params, extra_ok=cls.own_params)
        size = {**cls.defaults, **params}.get(cls.size_param)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"model.params.{cls.size_param}={size!r} must be a whole number ≥ 1.")

    @classmethod
    def _estimator_class(cls):  # pragma: no cover - abstract
        raise NotImplementedError

    def _make(self, X: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def _grown(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def steps(self) -> int:
        return int(self.params[self.size_param])

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        total = self.steps()
        chunk = callbacks.chunk(total)
        restored = callbacks.restore(key)
        if restored is not None:
            directory, done = restored
            est = persist.load(Path(directory) / ESTIMATOR_FILE)
            logger.info("%s: resuming at %s %d/%d", self.family, self.step_unit, done, total)
        else:
            est, done = self._make(X), 0
        self.estimator = est
        val_state = self._val_start(X_val)
        while done < total:
            target = min(total, done + chunk)
            est.set_params(**{self.size_param: target})
            with self._threads():
                est.fit(X, y)
            grown = self._grown()
            stopped = grown < target  # histgb's own early stopping, when enabled
            done = grown
            score = self._val_score(X_val, y_val, val_state)
            callbacks.after_step(key, done, total, score, self._saver(est))
            if stopped:
                break
        if X_val is not None:
            self.info["val_rmse"] = score if done and score is not None else self._val_score(X_val, y_val, val_state)

    step_unit = "tree"

    def _threads(self):
        from contextlib import nullcontext

        return nullcontext()

    def _val_start(self, X_val):
        return None

    def _val_score(self, X_val, y_val, state) -> Optional[float]:
        if X_val is None:
            return None
        return rmse(y_val, self.predict(X_val))

    @staticmethod
    def _saver(est):
        def save(directory: Path) -> None:
            persist.dump(est, Path(directory) / ESTIMATOR_FILE)
        return save

    def feature_importance(self) -> Optional[dict[str, float]]:
        imp = getattr(self.estimator, "feature_importances_", None)
        return None if imp is None else self._named(imp)



class _Forest(_ChunkedTrees):
    defaults = {"n_estimators": 100, "min_samples_leaf": 3, "max_features": 0.6}
    #: aggregate: how the trees' predictions combine, "mean" (scikit-learn's; the default of a saved model without
    #: it) or "median" (the middle tree's score: on noise-free step labels a minority of trees that split a sparse
    #: region on another input no longer drags the score off the grid)
    own_params = frozenset({"aggregate"})

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        how = params.get("aggregate", "mean")
        if how not in AGGREGATES:
            raise ConfigError(f"model.params.aggregate={how!r} must be one of {', '.join(AGGREGATES)}.")
        super().validate(cfg, params, n_rows)

    def _aggregate(self) -> str:
        return self.params.get("aggregate", "mean")

    def _make(self, X):
        params = self._estimator_params()
        cap = params.get("max_samples")
        if isinstance(cap, (int, np.integer)) and not isinstance(cap, bool) and cap >= len(X):
            params["max_samples"] = None  # a row cap above the training rows: every tree draws n rows, as null
        return self._estimator_class()(**params, random_state=self.seed, n_jobs=self.n_jobs, warm_start=True)

    def _grown(self) -> int:
        return len(self.estimator.estimators_)

    def _val_start(self, X_val):
        # the validation predictions of the trees grown so far: running sum (mean) or one row per tree (median)
        return {"sum": None if X_val is None else np.zeros(len(X_val)), "trees": [], "n": 0}

    def _val_score(self, X_val, y_val, state) -> Optional[float]:
        if X_val is None:
            return None
        trees = self.estimator.estimators_
        if state["n"] < len(trees):
            X_val = np.ascontiguousarray(X_val, dtype=np.float32)
            if self._aggregate() == "median":
                state["trees"] += [tree.predict(X_val, check_input=False) for tree in trees[state["n"]:]]
            else:
                state["sum"] += _combine_trees(trees[state["n"]:], X_val, self.n_jobs, "sum")
            state["n"] = len(trees)
        if self._aggregate() == "median":
            return rmse(y_val, np.median(np.stack(state["trees"]), axis=0))
        return rmse(y_val, state["sum"] / state["n"])

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        trees = self.estimator.estimators_
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        if self._aggregate() == "median":
            return _combine_trees(trees, X, self.n_jobs, "median")
        return _combine_trees(trees, X, self.n_jobs, "sum") / len(trees)


AGGREGATES = ("mean", "median")


def _combine_trees(trees, X: np.ndarray, n_jobs: int, how: str) -> np.ndarray:
    """The trees' predictions summed tree by tree in order (``how="sum"``, deterministic) or their median
    (``"median"``), threads over row blocks."""
    def block(rows: slice) -> np.ndarray:
        Xb = X[rows]
        if how == "median":
            return np.median(np.stack([tree.predict(Xb, check_input=False) for tree in trees]), axis=0)
        acc = np.zeros(rows.stop - rows.start, dtype=np.float64)
        for tree in trees:
            acc += tree.predict(Xb, check_input=False)
        return acc

    n = len(X)
    size = max(2048, -(-n // max(1, n_jobs)))
    if how == "median":
        size = min(size, 65536)  # one float64 per tree and row in a block
    slices = [slice(s, min(n, s + size)) for s in range(0, n, size)]
    if len(slices) == 1 or n_jobs <= 1:
        return np.concatenate([block(s) for s in slices])
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return np.concatenate(list(pool.map(block, slices)))


class RandomForestModel(_Forest):
    family = "random_forest"

    @classmethod
    def _estimator_class(cls):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor


class ExtraTreesModel(_Forest):
    family = "extra_trees"
    defaults = {"n_estimators": 100, "min_samples_leaf": 3, "max_features": 0.8}

    @classmethod
    def _estimator_class(cls):
        from sklearn.ensemble import ExtraTreesRegressor

        return ExtraTreesRegressor


class _TrainingWork(threading.local):
    """The running chunked fit's reusable work, per thread (ensemble members and sweep trials fit in threads)."""

    cache: Optional[dict[str, Any]] = None


_WORK = _TrainingWork()
_PATCH_LOCK = threading.Lock()
_PATCH_USERS = 0
_ORIGINALS: dict[str, Any] = {}


# The private HistGradientBoostingRegressor methods the chunk reuse and the validation sums call, with the
# parameters they must take. Their signatures change between scikit-learn versions (1.9 added sample_weight to
# _bin_data); what is not there as expected is not used, and sklearn's own public path runs instead.
_PRIVATE_API = {
    "_bin_data": ("X", "is_training_data"),
    "_raw_predict": ("X", "n_threads"),
    "_predict_iterations": ("X", "predictors", "raw_predictions", "is_binned", "n_threads"),
    "_preprocess_X": ("X", "reset"),
}
_API: dict[str, bool] = {}


def _private_api(*names: str) -> bool:
    """Whether the installed scikit-learn's HistGradientBoostingRegressor has each of the private methods
    ``names`` with the parameters the chunked fit passes them (``inspect.signature``; checked once)."""
    if not _API:
        import inspect

        from sklearn.ensemble import HistGradientBoostingRegressor as cls

        try:
            from sklearn.utils._openmp_helpers import _openmp_effective_n_threads  # noqa: F401
            helper = True
        except ImportError:  # pragma: no cover - moved in some future version
            helper = False
        for name, wanted in _PRIVATE_API.items():
            try:
                params = inspect.signature(getattr(cls, name)).parameters
            except (AttributeError, TypeError, ValueError):
                params = {}
            _API[name] = helper and all(p in params for p in wanted)
        missing = [n for n, ok in _API.items() if not ok]
        if missing:
            logger.info("histgb: scikit-learn's %s differ from what the chunk reuse calls; sklearn's own path is "
                        "used for them (same model, slower chunked fits)", ", ".join(missing))
    return all(_API[n] for n in names)


def _bin_data(est, X, *args, **kwargs):
    # sklearn's own arguments, whatever their order: (X, is_training_data) up to 1.8, (X, sample_weight,
    # is_training_data) since 1.9
    is_training_data = _ORIGINALS["bin_data_signature"].bind(est, X, *args, **kwargs).arguments["is_training_data"]
    cache = _WORK.cache
    if cache is not None and is_training_data and "binned" in cache and cache["shape"] == X.shape:
        est._bin_mapper = cache["mapper"]
        return cache["binned"]
    out = _ORIGINALS["bin_data"](est, X, *args, **kwargs)
    if cache is not None and is_training_data:
        cache.update(binned=out, mapper=est._bin_mapper, shape=X.shape)
    return out


def _preprocess_X(est, X, *, reset):
    cache = _WORK.cache
    if cache is None or not reset:
        return _ORIGINALS["preprocess_X"](est, X, reset=reset)
    kept = cache.get("preprocessed")
    if kept is not None and kept[0] is X and kept[1] == X.shape and kept[2] is getattr(est, "_preprocessor", None):
        return kept[3]  # the estimator holds what the first chunk's call set (the same matrix, the same result)
    out = _ORIGINALS["preprocess_X"](est, X, reset=reset)
    cache["preprocessed"] = (X, X.shape, getattr(est, "_preprocessor", None), out)
    return out


_CHECK_ROWS = 64


def _raw_predict(est, X, n_threads=None):
    cache = _WORK.cache
    if cache is None or not (getattr(est, "_in_fit", False) and X is cache.get("binned")):
        return _ORIGINALS["raw_predict"](est, X, n_threads=n_threads)
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    n_threads = _openmp_effective_n_threads(n_threads)
    sums = cache.get("raw")
    if sums is not None and not _tracks_all_trees(est, X, sums):
        logger.info("histgb: the kept raw predictions do not hold the last chunk's trees; they are recomputed")
        sums = None
    if sums is None:  # the first warm start (or a resumed fit): the trees grown so far, predicted once
        sums = np.zeros((X.shape[0], est.n_trees_per_iteration_), dtype=est._baseline_prediction.dtype, order="F")
        sums += est._baseline_prediction
        est._predict_iterations(X, est._predictors, sums, True, n_threads)
    # sklearn adds each new tree's leaf values to this very array during the chunk (as in a one-shot fit), so
    # at the next chunk it already holds every tree: kept by reference, nothing is predicted again
    cache["raw"] = sums
    return sums


def _tracks_all_trees(est, X, sums) -> bool:
    """Whether ``sums`` (the array the previous chunk's fit updated in place) equals baseline + every tree on its
    first rows: a cheap guard for a scikit-learn whose fit stops updating the array it was given."""
    if sums.shape != (X.shape[0], est.n_trees_per_iteration_):
        return False
    k = min(_CHECK_ROWS, X.shape[0])
    head = np.zeros((k, sums.shape[1]), dtype=sums.dtype, order="F")
    head += est._baseline_prediction
    est._predict_iterations(np.asfortranarray(X[:k]), est._predictors, head, True, 1)
    return bool(np.array_equal(head, sums[:k]))


@contextmanager
def _reuse_training_work(*, enabled: bool) -> Iterator[None]:
    """While active, HistGradientBoostingRegressor's warm-start chunks in this thread reuse earlier chunks' work.

    * Binning: every chunk would refit the same bin mapper on the same rows with the same seed; the first
      chunk's binned matrix and mapper serve the later ones.
    * Input checks and category encoding: every chunk would refit the same ordinal encoder on the same matrix
      (with native category splits, about as long as binning); the first chunk's result serves the later ones.
    * Raw predictions: every warm-start chunk would re-predict all earlier trees on the training rows (the cost
      of a chunked fit grows with chunks × trees × rows). The second chunk predicts the first chunk's trees once
      (baseline, then tree 1, 2, ...: the floats a one-shot fit holds); sklearn then adds each new tree's leaf
      values to that same array, as a one-shot fit does, so it is kept and handed to every later chunk as is,
      after checking its first rows against a prediction of every tree.

    The three methods are patched on the class while any such fit runs (counted, so fits in several threads
    share one patch and the last one out restores the class); the work is kept per thread, and a fit in a
    thread without an active context gets sklearn's own methods. Nothing is stored on the estimator, so its
    saved state is unchanged. Only with ``early_stopping=False``: every chunk then bins exactly the rows it was
    given, the fit's training matrix, with the same seed.
    """
    global _PATCH_USERS
    if not enabled or not _private_api("_bin_data", "_raw_predict", "_predict_iterations", "_preprocess_X"):
        yield
        return
    import inspect

    from sklearn.ensemble import HistGradientBoostingRegressor as cls

    with _PATCH_LOCK:
        if _PATCH_USERS == 0:
            _ORIGINALS.update(bin_data=cls._bin_data, raw_predict=cls._raw_predict, preprocess_X=cls._preprocess_X,
                              bin_data_signature=inspect.signature(cls._bin_data),
                              own={n: cls.__dict__.get(n) for n in ("_bin_data", "_raw_predict", "_preprocess_X")})
            cls._bin_data, cls._raw_predict, cls._preprocess_X = _bin_data, _raw_predict, _preprocess_X
        _PATCH_USERS += 1
    outer, _WORK.cache = _WORK.cache, {}
    try:
        yield
    finally:
        _WORK.cache = outer
        with _PATCH_LOCK:
            _PATCH_USERS -= 1
            if _PATCH_USERS == 0:
                for name, original in _ORIGINALS.pop("own").items():
                    if original is None:
                        delattr(cls, name)
                    else:
                        setattr(cls, name, original)


def fine_bin_windows(X: np.ndarray, skip: list[bool], max_bins: int) -> dict[str, list[list[float]]]:
    """For each numeric column of ``X`` with more distinct values than ``max_bins``: the value windows
    ``[lo, hi]`` that cut its sorted distinct values into runs of at most ``max_bins`` (neighbouring windows share
    an end). Keyed by column index (a string: the windows are saved in model.json)."""
    windows: dict[str, list[list[float]]] = {}
    step = max_bins - 1
    for j in range(X.shape[1]):
        if skip[j]:
            continue
        col = X[:, j]
        values = np.unique(col[~np.isnan(col)])
        if len(values) <= max_bins:
            continue
        starts = range(0, len(values) - 1, step)
        windows[str(j)] = [[float(values[s]), float(values[min(s + step, len(values) - 1)])] for s in starts]
    return windows


def expand_fine_bins(X: np.ndarray, windows: Mapping[str, list[list[float]]]) -> np.ndarray:
    """``X`` with each windowed column replaced by its copies clipped to each window (in column order).

    A split of a clipped copy at a threshold inside its window is the same split of the column, so the trees
    are unchanged in kind; but each copy has at most ``max_bins`` distinct training values, for which
    scikit-learn bins at the midpoints between neighbouring values instead of at quantiles. Every split
    between two neighbouring training values is then available (the label rule cuts at exact values)."""
    if not windows:
        return X
    parts = []
    for j in range(X.shape[1]):
        wins = windows.get(str(j))
        if wins is None:
            parts.append(X[:, j:j + 1])
        else:
            parts.extend(np.clip(X[:, j:j + 1], np.float32(lo), np.float32(hi)) for lo, hi in wins)
    return np.ascontiguousarray(np.hstack(parts), dtype=np.float32)


class HistGBModel(_ChunkedTrees):
    family = "histgb"
    size_param = "max_iter"
    defaults = {"max_iter": 300, "learning_rate": 0.1, "early_stopping": False}
    own_params = frozenset({"fine_bins"})

    @classmethod
    def _estimator_class(cls):
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        fine = params.get("fine_bins", False)
        if not isinstance(fine, bool):
            raise ConfigError(f"model.params.fine_bins={fine!r} must be true or false.")
        if fine and any(params.get(k) is not None for k in ("monotonic_cst", "interaction_cst")):
            raise ConfigError("model.params.fine_bins=true gives histgb several copies of a numeric column, so "
                              "per-column monotonic_cst / interaction_cst would not line up. Drop one of them.")
        super().validate(cfg, params, n_rows)

    def _windows(self) -> Mapping[str, list[list[float]]]:
        return self.info.get("fine_bin_windows") or {}

    step_unit = "iteration"

    def _threads(self):
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.n_jobs, user_api="openmp")

    def _fit(self, X, y, **kw) -> None:
        from kaayko_exp.features.spec import category_split_mask

        self._split_mask = [bool(c) for c in category_split_mask(kw["spec"])]  # features.category_splits
        self.info["category_splits"] = kw["spec"].category_splits
        self.info.pop("fine_bin_windows", None)
        if self.params.get("fine_bins"):
            windows = fine_bin_windows(X, self.categorical, int(self.params.get("max_bins", 255)))
            self.info["fine_bin_windows"] = windows
            self._split_mask = [c for j, c in enumerate(self._split_mask) for _ in windows.get(str(j), [0])]
            X = expand_fine_bins(X, windows)
            if kw.get("X_val") is not None:
                kw["X_val"] = expand_fine_bins(kw["X_val"], windows)
        # Warm-start chunks reuse the first chunk's bins and the earlier trees' summed predictions.
        with _reuse_training_work(enabled=self.params.get("early_stopping") is False):
            super()._fit(X, y, **kw)

    def _make(self, X):
        max_bins = int(self.params.get("max_bins", 255))
        mask = list(self._split_mask)
        windows = self._windows()
        names = [n for j, n in enumerate(self.feature_names) for _ in windows.get(str(j), [0])]
        # histgb needs category codes below max_bins; a wider categorical is used as a number
        for j, is_cat in enumerate(mask):
            if is_cat and np.nanmax(np.append(X[:, j], -1)) >= max_bins:
                logger.info("histgb: %s has more than %d levels, used as a number", names[j], max_bins)
                mask[j] = False
        self.info["categorical_used"] = [n for n, c in zip(names, mask) if c]
        return self._estimator_class()(**self._estimator_params(), categorical_features=mask if any(mask) else None,
                                       random_state=self.seed, warm_start=True)

    def _grown(self) -> int:
        return int(self.estimator.n_iter_)

    def _val_start(self, X_val):
        return None if X_val is None else {"done": 0, "sums": None, "X": None}

    def _val_score(self, X_val, y_val, state) -> Optional[float]:
        """The validation RMSE after each chunk, adding only the chunk's new trees to the kept sums of the
        earlier ones (the same floats as ``predict``: baseline, then each tree in order; squared-error loss, so
        the raw sum is the prediction). Falls back to ``predict`` where sklearn's internals differ."""
        if X_val is None:
            return None
        if not _private_api("_preprocess_X", "_predict_iterations"):
            return rmse(y_val, self._predict_columns(X_val))
        est = self.estimator
        try:
            from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

            if state["X"] is None:
                state["X"] = est._preprocess_X(np.ascontiguousarray(X_val, dtype=np.float32), reset=False)
                state["sums"] = np.zeros((len(X_val), 1), dtype=est._baseline_prediction.dtype, order="F")
                state["sums"] += est._baseline_prediction
            with self._threads():
                est._predict_iterations(state["X"], est._predictors[state["done"]:], state["sums"], False,
                                        _openmp_effective_n_threads())
            state["done"] = len(est._predictors)
            return rmse(y_val, state["sums"][:, 0].astype(np.float64))
        except (AttributeError, TypeError, ValueError):
            return rmse(y_val, self._predict_columns(X_val))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._predict_columns(expand_fine_bins(np.ascontiguousarray(X, dtype=np.float32), self._windows()))

    def _predict_columns(self, X: np.ndarray) -> np.ndarray:
        """Predictions for rows already in the estimator's columns (fine-bin copies expanded)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        with self._threads():
            return np.asarray(self.estimator.predict(X), dtype=np.float64)

    def feature_importance(self) -> Optional[dict[str, float]]:
        return None  # histgb has no built-in importance: see the permutation importance
