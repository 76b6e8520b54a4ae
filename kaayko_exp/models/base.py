"""The Model interface shared by every family, and the helpers they have in common."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from kaayko_exp import atomic
from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.models.callbacks import FitCallback, FitCallbacks, ResumeSource

logger = logging.getLogger(__name__)

META_FILE = "model.json"
META_FORMAT = "kaayko-model"
META_VERSION = 1
#: parameters the framework sets itself (top-level seed / n_jobs), never in model.params
RESERVED = frozenset({"seed", "random_state", "n_jobs", "nthread", "warm_start", "categorical_features"})


def as_dict(value: Any) -> dict[str, Any]:
    """A plain dict from a DictConfig / Mapping / None (nested containers resolved)."""
    if value is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(value, DictConfig):
            return dict(OmegaConf.to_container(value, resolve=True))
    except ImportError:  # pragma: no cover
        pass
    return {k: as_dict(v) if isinstance(v, Mapping) else v for k, v in dict(value).items()}


def check_param_names(family: str, params: Mapping[str, Any], valid: Iterable[str]) -> None:
    """ConfigError naming unknown or reserved keys and listing the valid ones."""
    valid = sorted(set(valid))
    reserved = sorted(set(params) & RESERVED)
    if reserved:
        raise ConfigError(
            f"model.params.{reserved[0]} cannot be set for {family}: the framework sets it (the top-level "
            "`seed` drives every random choice, `n_jobs` the threads). Remove it and use seed=/n_jobs= instead."
        )
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"model.params.{unknown[0]} is not a parameter of the {family} model"
            f"{' (nor are ' + ', '.join(unknown[1:]) + ')' if len(unknown) > 1 else ''}. "
            f"Valid parameters: {', '.join(valid)}. Fix the spelling in conf/model/{family}.yaml or the override."
        )


def resolve_n_jobs(n_jobs: int) -> int:
    if n_jobs is None or int(n_jobs) <= 0:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover
            return max(1, os.cpu_count() or 1)
    return int(n_jobs)


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries a model file depends on, read from the package metadata: no
    import, so a histgb run does not load xgboost (nor an xgboost run skops) just to name its version."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:  # pragma: no cover
            return "missing"

    return {"numpy": np.__version__, "scikit-learn": installed("scikit-learn"), "xgboost": installed("xgboost"),
            "skops": installed("skops")}


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2)))


class Model:
    """One fitted (or to-be-fitted) model of a family.

    Subclasses implement ``_fit``, ``predict``, ``_save_files`` and ``_restore``;
    ``_fit`` reports each round/chunk to its :class:`~kaayko_exp.models.callbacks.FitCallbacks`
    (``after_step``) and resumes from ``callbacks.restore(key)``; ``fit`` calls
    ``before_fit`` / ``after_fit`` around it.
    """

    family: str = ""

    def __init__(self, params: Mapping[str, Any], *, seed: int, n_jobs: int, n_rows: int,
                 options: Optional[Mapping[str, Any]] = None):
        self.params = dict(params)
        self.seed = int(seed)
        self.n_jobs = resolve_n_jobs(n_jobs)
        self.n_rows = int(n_rows)
        self.options = dict(options or {})
        self.feature_names: Optional[list[str]] = None
        self.categorical: Optional[list[bool]] = None
        self.fitted = False
        self.info: dict[str, Any] = {}
        #: the fitted model's predictions on the rows its fit saw (``"train"``: ``X``, ``"val"``: ``X_val``, in
        #: their order; float32 or float64, the values :meth:`predict` gives for them) where the library had them
        #: at no cost after the fit (XGBoost's prediction cache), so scoring those rows predicts nothing again;
        #: empty for other families and for a loaded model. Never saved.
        self.fit_predictions: dict[str, np.ndarray] = {}

    # ---- the public interface
    def fit(self, X: np.ndarray, y: np.ndarray, *, spec: Any,
            callbacks: "FitCallbacks | Iterable[FitCallback] | None" = None, resume: Optional[ResumeSource] = None,
            X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None, key: str = "fit",
            sub_fit: bool = False) -> "Model":
        """Fit on ``X``/``y``, reporting to ``callbacks`` and continuing from ``resume``'s state for ``key``.

        ``sub_fit``: this is a part of a composite model (an ensemble member); ``after_fit`` then hands
        the callbacks a saver of the finished model so a resumed parent never fits it again.
        """
        from kaayko_exp.features.spec import categorical_mask, feature_names

        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X {X.shape} and y {y.shape} do not match")
        if len(y) == 0:
            raise ConfigError("The training set is empty: no rows to fit. Check the split and the sample size.")
        self.feature_names = feature_names(spec)
        self.categorical = [bool(c) for c in categorical_mask(spec)]
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has {X.shape[1]} columns, the feature spec {len(self.feature_names)}")
        if X_val is not None and len(X_val) == 0:
            X_val = y_val = None
        if X_val is not None:
            X_val = np.ascontiguousarray(X_val, dtype=np.float32)
            y_val = np.asarray(y_val, dtype=np.float64)
        cbs = FitCallbacks.of(callbacks, resume)
        cbs.before_fit(key, self.steps(), self.step_unit)
        self.fit_predictions = {}
        self._fit(X, y, spec=spec, callbacks=cbs, X_val=X_val, y_val=y_val, key=key)
        self.fitted = True
        cbs.after_fit(key, self.save if sub_fit else None)
        return self

    #: what one reported step is, for progress lines (``round``, ``tree``, ``iteration``)
    step_unit: str = "step"

    def steps(self) -> int:
        """Steps (rounds, trees, iterations) a full fit reports: 1 for one-shot learners; a composite
        model (the ensemble) reports none of its own, its members' sub-fits report theirs."""
        return 1

    def stops_early_on_validation(self) -> bool:
        """Whether the fit stops early on its validation rows (``X_val``), so a fit without them trains
        differently (cross-validation folds then get validation lakes of their own)."""
        return False

    def predict(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def feature_importance(self) -> Optional[dict[str, float]]:
        return None

    def save(self, directory: str | Path) -> list[Path]:
        """Write the model's files atomically plus ``model.json``; return every path written."""
        if not self.fitted:
            raise RuntimeError("save() before fit()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self._save_files(directory)
        meta = {
            "format": META_FORMAT,
            "version": META_VERSION,
            "family": self.family,
            "files": files,
            "sha256": {f: atomic.sha256_file(directory / f) for f in files},
            "params": self.params,
            "options": self.options,
            "seed": self.seed,
            "feature_names": self.feature_names,
            "categorical": self.categorical,
            "info": self.info,
            "versions": library_versions(),
        }
        atomic.write_json(directory / META_FILE, meta)
        return [directory / f for f in files] + [directory / META_FILE]

    # ---- for subclasses
    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _save_files(self, directory: Path) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _restore(self, directory: Path, meta: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        """Check the configuration before any data work (ConfigError)."""

    @classmethod
    def from_saved(cls, directory: Path, meta: Mapping[str, Any]) -> "Model":
        model = cls(meta.get("params", {}), seed=int(meta.get("seed", 0)), n_jobs=-1, n_rows=0,
                    options=meta.get("options"))
        model.feature_names = meta.get("feature_names")
        model.categorical = meta.get("categorical")
        model.info = dict(meta.get("info") or {})
        model._restore(directory, meta)
        model.fitted = True
        return model

    def _named(self, values: Iterable[float]) -> dict[str, float]:
        vals = np.asarray(list(values), dtype=np.float64)
        total = float(vals.sum())
        if total > 0:
            vals = vals / total
        return {n: float(v) for n, v in zip(self.feature_names or [], vals)}


def read_meta(directory: Path, *, verified: bool = False) -> dict[str, Any]:
    """``model.json`` of ``directory``, its file list checked; file hashes too unless the caller
    (a run manifest) has ``verified`` them already."""
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{directory} holds no {META_FILE}: it is not a saved kaayko model directory. "
                          "Point at a run's model/ directory, or retrain.") from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is not readable JSON ({exc}): the model directory is damaged. "
                          "Restore it or retrain.") from exc
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT or meta.get("version") != META_VERSION:
        raise RunDirError(f"{path} is not a kaayko model description of version {META_VERSION}. "
                          "Retrain the model with this version of kaayko-exp.")
    files = meta.get("files")
    if not isinstance(files, list) or any(not isinstance(f, str) or f.startswith(("/", "\\")) or ".." in Path(f).parts
                                          for f in files):
        raise RunDirError(f"{path} lists invalid file names; the model directory is damaged. Retrain.")
    for f in files:
        target = Path(directory) / f
        if not target.is_file():
            raise RunDirError(f"{target} is missing: the model directory is incomplete. Restore it or retrain.")
        expected = (meta.get("sha256") or {}).get(f)
        if expected and not verified and atomic.sha256_file(target) != expected:
            raise RunDirError(f"{target} changed since the model was saved (sha256 mismatch); it will not be "
                              "loaded. Restore the original file or retrain.")
    return meta
