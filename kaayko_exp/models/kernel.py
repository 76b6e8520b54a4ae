"""Ridge and support-vector regression: scikit-learn pipelines over the feature matrix.

Both impute (numeric median; categorical codes -> an 'unknown' slot), one-hot the
categorical codes against the spec's levels (unknown levels -> all zeros) and
standardise the numeric columns. ``svm`` is exact kernel SVR up to
``model.exact_max_rows`` training rows (or when ``model.exact`` is true, up to
``model.exact_hard_limit``); above, a Nystroem kernel map with
``model.approx_components`` components feeds a linear SVR, both fitted on a seeded sample of at most
``model.approx_max_rows`` training rows (their cost grows with rows x components, their accuracy mostly with
the components).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

import numpy as np

from kaayko_exp.errors import ConfigError
from kaayko_exp.models import persist
from kaayko_exp.models.base import Model, check_param_names, rmse
from kaayko_exp.models.trees import _validate_sklearn

logger = logging.getLogger(__name__)

PREDICT_BLOCK = 50_000  # rows per predict call (each row's prediction is independent of the others)


def preprocessor(categorical: list[bool], n_levels: list[int]):
    """ColumnTransformer: numeric -> median impute + scale; categorical codes -> one-hot of known levels."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = [j for j, c in enumerate(categorical) if not c]
    cat = [j for j, c in enumerate(categorical) if c]
    parts = []
    if num:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                       ("scale", StandardScaler())]), num))
    if cat:
        cats = [np.arange(n_levels[j], dtype=np.float64) for j in cat]
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=-1.0, keep_empty_features=True)),
            ("onehot", OneHotEncoder(categories=cats, handle_unknown="ignore", sparse_output=False)),
        ]), cat))
    return ColumnTransformer(parts, remainder="drop")


def _levels(spec) -> list[int]:
    return [len(f.get("levels", [])) for f in spec.features]


class _PipelineModel(persist.SkopsEstimatorFiles, Model):
    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.estimator = None

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        # row blocks: the one-hot and kernel-map matrices of a whole large table would not fit beside it
        return np.concatenate([np.asarray(self.estimator.predict(X[s:s + PREDICT_BLOCK]), dtype=np.float64)
                               for s in range(0, len(X), PREDICT_BLOCK)])

    def _finish(self, callbacks, key, X_val, y_val) -> None:
        score = rmse(y_val, self.predict(X_val)) if X_val is not None else None
        if score is not None:
            self.info["val_rmse"] = score
        callbacks.after_step(key, 1, 1, score)



class RidgeModel(_PipelineModel):
    family = "ridge"

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        from sklearn.linear_model import Ridge

        _validate_sklearn(cls.family, Ridge, params)

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import Pipeline

        self.estimator = Pipeline([("pre", preprocessor(self.categorical, _levels(spec))),
                                   ("ridge", Ridge(**self.params))]).fit(X, y)
        self._finish(callbacks, key, X_val, y_val)

    def feature_importance(self) -> Optional[dict[str, float]]:
        return None  # coefficients live on one-hot / scaled columns: see the permutation importance


#: SVR parameters accepted under model.params (the approximation uses C, epsilon, tol, max_iter, kernel, gamma,
#: degree, coef0).
SVR_PARAMS = frozenset({"kernel", "degree", "gamma", "coef0", "tol", "C", "epsilon", "shrinking", "cache_size",
                        "max_iter"})


def svm_mode(cfg: Any, n_rows: int) -> str:
    """'exact' or 'approx' for ``n_rows`` training rows; ConfigError when exact is forced on too many rows."""
    exact = getattr(cfg, "exact", None)
    limit = int(getattr(cfg, "exact_hard_limit", 100_000))
    if exact is True:
        if n_rows > limit:
            raise ConfigError(
                f"model too large for the data: exact kernel SVR (model.exact=true) on {n_rows:,} training rows "
                f"needs memory and time that grow with the square of the rows; it is refused above "
                f"model.exact_hard_limit={limit:,}. Drop model.exact (the kernel approximation is used above "
                f"model.exact_max_rows), use a smaller sample_size, or choose model=xgboost."
            )
        return "exact"
    if exact is False:
        return "approx"
    return "exact" if n_rows <= int(getattr(cfg, "exact_max_rows", 20_000)) else "approx"


class SVMModel(_PipelineModel):
    family = "svm"

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        from sklearn.svm import SVR

        check_param_names(cls.family, params, SVR_PARAMS)
        _validate_sklearn(cls.family, SVR, params)
        for key in ("approx_components", "approx_max_rows"):
            if int(getattr(cfg, key, 1)) < 1:
                raise ConfigError(f"model.{key}={getattr(cfg, key)} must be at least 1. Fix conf/model/svm.yaml "
                                  "or the override.")
        svm_mode(cfg, n_rows)

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        from sklearn.pipeline import Pipeline
        from sklearn.svm import SVR

        mode = self.options.get("mode", "exact")
        pre = preprocessor(self.categorical, _levels(spec))
        if mode == "exact":
            logger.info("svm: exact kernel SVR on %s rows", f"{len(y):,}")
            self.estimator = Pipeline([("pre", pre), ("svr", SVR(**self.params))]).fit(X, y)
        else:
            self.estimator = self._approx(pre, X, y)
        self.info["mode"] = mode
        self._finish(callbacks, key, X_val, y_val)

    def _approx(self, pre, X, y):
        from sklearn.kernel_approximation import Nystroem
        from sklearn.pipeline import Pipeline
        from sklearn.svm import LinearSVR

        p = self.params
        kernel = p.get("kernel", "rbf")
        cap = int(self.options.get("approx_max_rows", len(y)))
        if len(y) > cap:  # the linear fit's cost and memory grow with rows x components; accuracy with components
            rows = np.sort(np.random.default_rng(self.seed).choice(len(y), cap, replace=False))
            logger.info("svm: kernel approximation fitted on a sample of %s of the %s training rows "
                        "(model.approx_max_rows)", f"{cap:,}", f"{len(y):,}")
            X, y = X[rows], y[rows]
            self.info["approx_rows"] = cap
        Z = pre.fit_transform(X)
        steps = [("pre", pre)]
        if kernel != "linear":
            gamma = p.get("gamma", "scale")
            if gamma == "scale":
                gamma = 1.0 / (Z.shape[1] * Z.var()) if Z.var() > 0 else 1.0
            elif gamma == "auto":
                gamma = 1.0 / Z.shape[1]
            n_comp = min(int(self.options.get("approx_components", 300)), len(y))
            kmap = Nystroem(kernel=kernel, gamma=float(gamma), degree=p.get("degree", 3), coef0=p.get("coef0", 0.0),
                            n_components=n_comp, random_state=self.seed)
            Z = kmap.fit_transform(Z)
            steps.append(("kernel_map", kmap))
            self.info["gamma"] = float(gamma)
        max_iter = int(p.get("max_iter", -1))
        lin = LinearSVR(C=float(p.get("C", 1.0)), epsilon=float(p.get("epsilon", 0.0)), tol=float(p.get("tol", 1e-4)),
                        loss="squared_epsilon_insensitive", dual=False, max_iter=max_iter if max_iter > 0 else 5000,
                        random_state=self.seed)
        lin.fit(Z, y)
        steps.append(("linear_svr", lin))
        logger.info("svm: Nystroem kernel map (%d components) + linear SVR on %s rows", Z.shape[1], f"{len(y):,}")
        return Pipeline(steps)
