"""Model families: registry, construction, validation and safe loading.

``build_model(cfg, seed=, n_jobs=, n_rows=)`` turns a ``model`` config group
(``conf/model/<name>.yaml``) into an unfitted :class:`Model`;
``validate_model_config(cfg, n_rows)`` runs the same checks before any data work;
``load_model(directory)`` reads what :meth:`Model.save` wrote (XGBoost UBJ/JSON or
skops with an allow-list of types — never pickle).

Files per family (all next to ``model.json``: family, files, sha256, params, versions):
  xgboost        model.ubj, booster_config.json
  histgb, random_forest, extra_trees, ridge, svm   estimator.skops
  rule           (model.json only)
  ensemble       members/<i>-<member>/... (each member's own files + model.json)
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.models.base import Model, as_dict, read_meta

logger = logging.getLogger(__name__)

#: family name -> "module:Class" (imported on first use: keeps heavy libraries off the --help path)
REGISTRY: dict[str, str] = {
    "xgboost": "xgboost_model:XGBoostModel",
    "histgb": "trees:HistGBModel",
    "random_forest": "trees:RandomForestModel",
    "extra_trees": "trees:ExtraTreesModel",
    "svm": "kernel:SVMModel",
    "ridge": "kernel:RidgeModel",
    "ensemble": "ensemble:EnsembleModel",
    "rule": "rule:RuleModel",
}

__all__ = ["REGISTRY", "Model", "build_model", "validate_model_config", "load_model", "model_class",
           "member_config", "conf_dir"]


def model_class(name: str) -> type[Model]:
    if name not in REGISTRY:
        raise ConfigError(f"Unknown model '{name}'. Choose one of: {', '.join(REGISTRY)}.")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def conf_dir() -> Path:
    """The repository's ``conf/`` directory: $KAAYKO_CONF_DIR, ./conf, or next to the package."""
    candidates = []
    if os.environ.get("KAAYKO_CONF_DIR"):
        candidates.append(Path(os.environ["KAAYKO_CONF_DIR"]))
    try:
        from hydra.utils import get_original_cwd

        candidates.append(Path(get_original_cwd()) / "conf")
    except (ImportError, ValueError):
        pass
    candidates += [Path.cwd() / "conf", Path(__file__).resolve().parents[2] / "conf"]
    for c in candidates:
        if (c / "model").is_dir():
            return c
    raise ConfigError("Cannot find the conf/ directory with the model configurations (looked in "
                      f"{', '.join(str(c) for c in candidates)}). Run from the repository root or set "
                      "KAAYKO_CONF_DIR.")


def member_config(name: str) -> Any:
    """``conf/model/<name>.yaml`` merged onto the typed ModelConfig schema, as Hydra would compose it.

    For tools and tests that build a model config without Hydra; training never calls it (an
    ensemble reads its members from the run's ``model.member_configs``). The file's ``defaults``
    entries ``/model@member_configs.<key>: <family>`` fill ``member_configs`` the same way Hydra does.
    """
    from omegaconf import OmegaConf

    from kaayko_exp.config import ModelConfig

    path = conf_dir() / "model" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"'{name}' is not a model configuration (no {path}). Known models: {', '.join(known)}.")
    raw = OmegaConf.load(path)
    defaults = raw.pop("defaults", None) or []
    members = {}
    for entry in defaults:
        for key, family in (entry.items() if isinstance(entry, Mapping) else ()):
            group, _, package = str(key).partition("@")
            if group.strip("/") == "model" and package.startswith("member_configs."):
                members[package.split(".", 1)[1]] = OmegaConf.to_container(member_config(str(family)))
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"member_configs": members}, raw)
    except Exception as exc:  # omegaconf validation errors
        raise ConfigError(f"{path} is not a valid model configuration: {exc}") from None
    return cfg


def _params(cfg: Any) -> dict[str, Any]:
    return as_dict(getattr(cfg, "params", None))


def validate_model_config(cfg: Any, n_rows: int, features: Optional[Any] = None) -> None:
    """Every check that needs no data (ConfigError): unknown family or params, sizes, svm limits.

    ``features`` (a FeaturesConfig) lets the rule model check its inputs up front.
    """
    name = str(getattr(cfg, "name", ""))
    cls = model_class(name)
    cls.validate(cfg, _params(cfg), int(n_rows))
    if features is not None and name in ("rule", "ensemble"):
        from kaayko_exp.features.spec import planned_features
        from kaayko_exp.models.rule import check_features

        members = [name] if name == "rule" else [str(m) for m in (cfg.members or [])]
        if "rule" in members:
            check_features(planned_features(features), str(features.name))


def build_model(cfg: Any, *, seed: int, n_jobs: int, n_rows: int) -> Model:
    """An unfitted model for config ``cfg`` (validated; svm picks exact / approximate by ``n_rows``)."""
    validate_model_config(cfg, n_rows)
    name = str(cfg.name)
    cls = model_class(name)
    options: dict[str, Any] = {}
    if name == "svm":
        from kaayko_exp.models.kernel import svm_mode

        options = {"mode": svm_mode(cfg, n_rows), "approx_components": int(cfg.approx_components),
                   "approx_max_rows": int(getattr(cfg, "approx_max_rows", 100_000))}
        if options["mode"] == "approx":
            logger.info("svm: %s training rows > model.exact_max_rows=%s: using a Nystroem kernel map "
                        "(%d components) + linear SVR instead of exact kernel SVR", f"{n_rows:,}",
                        f"{int(cfg.exact_max_rows):,}", options["approx_components"])
    model = cls(_params(cfg), seed=seed, n_jobs=n_jobs, n_rows=n_rows, options=options)
    if name == "ensemble":
        model._cfg = cfg
    return model


def load_model(directory: str | Path, *, verified: bool = False) -> Model:
    """Load a saved model (checks model.json, file hashes and formats; never unpickles).

    ``verified=True`` skips re-hashing files whose sha256 the caller has just checked
    against a run manifest (large forests are hashed once, not twice).
    """
    directory = Path(directory)
    meta = read_meta(directory, verified=verified)
    family = meta.get("family")
    if family not in REGISTRY:
        raise RunDirError(f"{directory}/model.json names unknown model family {family!r}. Retrain with this "
                          "version of kaayko-exp.")
    return model_class(family).from_saved(directory, meta)
