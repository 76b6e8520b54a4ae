"""An ensemble averaging member models (optionally weighted).

Members' configurations come from the run's own config, ``model.member_configs``
(Hydra composes every family's ``conf/model/<name>.yaml`` there when the run starts,
so they are saved with the run and covered by its config hash; nothing is read from
``conf/`` at fit time); ``model.params.<member>`` overrides their params. Each member
is fitted with key ``<key>/<member>`` as a sub-fit (``fit(..., sub_fit=True)``: the
callbacks' ``after_fit`` gets a saver of the finished member, which the checkpoint
callback keeps), so a resumed fit reloads finished members instead of fitting them
again. The members report their own steps; the ensemble reports none of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.models.base import META_FILE, Model, as_dict

MEMBER_DIR = "members"

logger = logging.getLogger(__name__)


def _weights(cfg: Any, members: list[str]) -> list[float]:
    weights = getattr(cfg, "weights", None)
    if weights is None:
        return [1.0] * len(members)
    weights = [float(w) for w in weights]
    if len(weights) != len(members) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(
            f"model.weights {weights} must hold one non-negative weight per member ({len(members)}: "
            f"{', '.join(members)}) with a positive sum. Fix model.weights or drop it for equal weights."
        )
    return weights


class EnsembleModel(Model):
    family = "ensemble"

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.members: list[Model] = []
        self._cfg: Any = None  # the ensemble's ModelConfig, set by build_model

    @classmethod
    def member_configs(cls, cfg: Any) -> list[tuple[str, Any]]:
        """``(name, config)`` per member, from the run's own ``model.member_configs`` (never from conf/)."""
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from kaayko_exp.config import ModelConfig
        from kaayko_exp.models import REGISTRY

        members = [str(m) for m in (getattr(cfg, "members", None) or [])]
        if not members:
            raise ConfigError("model=ensemble needs members, e.g. model.members=[xgboost,histgb,random_forest].")
        dupes = sorted({m for m in members if members.count(m) > 1})
        if dupes:
            raise ConfigError(f"model.members lists {', '.join(dupes)} twice; list each member once "
                              "(use model.weights to weigh one more).")
        if "ensemble" in members:
            raise ConfigError("An ensemble cannot be a member of an ensemble. Remove 'ensemble' from "
                              "model.members.")
        known = [m for m in REGISTRY if m != "ensemble"]
        unknown = [m for m in members if m not in known]
        if unknown:
            raise ConfigError(f"Ensemble member(s) {', '.join(repr(m) for m in unknown)} are not model "
                              f"configurations. Known models: {', '.join(known)}.")
        overrides = as_dict(getattr(cfg, "params", None))
        stray = sorted(set(overrides) - set(members))
        if stray:
            raise ConfigError(f"model.params.{stray[0]} does not name a member; ensemble params are per-member "
                              f"overrides (model.params.<member>.<param>), members: {', '.join(members)}.")
        composed = getattr(cfg, "member_configs", None) or {}
        out = []
        for name in members:
            if name not in composed:
                raise ConfigError(
                    f"model.member_configs holds no configuration for member '{name}', so its parameters are "
                    "unknown. Choose the ensemble with model=ensemble (it composes every family's config from "
                    f"conf/model/), or add model.member_configs.{name} to the config. A run saved by an older "
                    "kaayko-exp without member configurations cannot be resumed: start it again."
                )
            try:
                mcfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), composed[name])
            except OmegaConfBaseException as exc:
                raise ConfigError(f"model.member_configs.{name} is not a valid model configuration: {exc}") from None
            if str(mcfg.name) != name:
                raise ConfigError(f"model.member_configs.{name} configures model '{mcfg.name}'; its name must be "
                                  f"'{name}'.")
            extra = overrides.get(name) or {}
            if not isinstance(extra, Mapping):
                raise ConfigError(f"model.params.{name} must be a mapping of parameter overrides.")
            mcfg.params = {**as_dict(mcfg.params), **extra}
            out.append((name, mcfg))
        return out

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        from kaayko_exp.models import validate_model_config

        members = cls.member_configs(cfg)
        _weights(cfg, [m for m, _ in members])
        for _, mcfg in members:
            validate_model_config(mcfg, n_rows)

    def steps(self) -> int:
        return 0  # the members' sub-fits report the steps

    def stops_early_on_validation(self) -> bool:
        from kaayko_exp.models import build_model

        return any(build_model(mcfg, seed=self.seed, n_jobs=1, n_rows=self.n_rows).stops_early_on_validation()
                   for _, mcfg in self.member_configs(self._cfg))

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        from kaayko_exp.models import build_model, load_model

        cfg = self._cfg
        members = self.member_configs(cfg)
        self.weights = _weights(cfg, [m for m, _ in members])
        self.member_names = [m for m, _ in members]
        self.members = []
        for i, (name, mcfg) in enumerate(members):
            mkey = f"{key}/{name}"
            restored = callbacks.restore(mkey)  # verified once, here
            if restored is not None and (Path(restored[0]) / META_FILE).is_file():
                member = load_model(restored[0], verified=True)
                logger.info("ensemble: member %d/%d %s restored (finished before)", i + 1, len(members), name)
            else:
                logger.info("ensemble: member %d/%d %s", i + 1, len(members), name)
                member = build_model(mcfg, seed=self.seed, n_jobs=self.n_jobs, n_rows=self.n_rows)
                member.fit(X, y, spec=spec, callbacks=callbacks, resume=_Restored(mkey, restored),
                           X_val=X_val, y_val=y_val, key=mkey, sub_fit=True)
            self.members.append(member)
        if X_val is not None:
            from kaayko_exp.models.base import rmse

            self.info["val_rmse"] = rmse(y_val, self.predict(X_val))
        self.info["members"] = self.member_names
        self.info["weights"] = self.weights

    def predict(self, X: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights, dtype=np.float64)
        out = np.zeros(len(X), dtype=np.float64)
        for wi, member in zip(w, self.members):
            if wi:
                out += wi * member.predict(X)
        return out / w.sum()

    def feature_importance(self) -> Optional[dict[str, float]]:
        parts = [(w, m.feature_importance()) for w, m in zip(self.weights, self.members)]
        parts = [(w, imp) for w, imp in parts if imp]
        if not parts:
            return None
        total = sum(w for w, _ in parts) or 1.0
        return {n: float(sum(w * imp.get(n, 0.0) for w, imp in parts) / total) for n in self.feature_names}

    def _save_files(self, directory: Path) -> list[str]:
        files = []
        for i, (name, member) in enumerate(zip(self.member_names, self.members)):
            sub = f"{MEMBER_DIR}/{i}-{name}"
            written = member.save(directory / sub)
            files += [p.relative_to(directory).as_posix() for p in written]
        self.info["member_dirs"] = [f"{MEMBER_DIR}/{i}-{n}" for i, n in enumerate(self.member_names)]
        return files

    def _restore(self, directory: Path, meta: Mapping[str, Any]) -> None:
        from kaayko_exp.models import load_model

        dirs = self.info.get("member_dirs")
        if not dirs:
            raise RunDirError(f"{directory}/model.json lists no ensemble members. Retrain.")
        self.member_names = list(self.info.get("members", []))
        self.weights = [float(w) for w in self.info.get("weights", [1.0] * len(dirs))]
        self.members = [load_model(directory / d) for d in dirs]


class _Restored:
    """The resume source of a member's fit: the partial state the ensemble already looked up (and verified)."""

    def __init__(self, key: str, restored: Optional[tuple[Path, int]]):
        self.key, self.restored = key, restored

    def restore(self, key: str) -> Optional[tuple[Path, int]]:
        return self.restored if key == self.key else None
