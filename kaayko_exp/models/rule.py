"""The published label rule as a model: the baseline every learner must beat.

It reads temp_c, wind_kph, precip_mm, uv and cloud (numeric) and season and
climate_zone (categorical codes, decoded with the spec's levels) back out of the
feature matrix and applies :func:`kaayko_exp.data.label.paddle_score_rule`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kaayko_exp.data.label import paddle_score_rule
from kaayko_exp.errors import ConfigError
from kaayko_exp.models.base import Model, check_param_names

NUMERIC_INPUTS = ("temp_c", "wind_kph", "precip_mm", "uv", "cloud")
CATEGORICAL_INPUTS = ("season", "climate_zone")


def check_features(planned: list[tuple[str, str]], feature_set: str = "?") -> None:
    """ConfigError unless the feature set carries every input of the rule with the right kind."""
    kinds = {name: kind for name, kind in planned}
    missing = [c for c in NUMERIC_INPUTS if kinds.get(c) != "numeric"]
    missing += [c for c in CATEGORICAL_INPUTS if kinds.get(c) != "categorical"]
    if missing:
        raise ConfigError(
            f"model=rule reads {', '.join(missing)} from the features, but feature set '{feature_set}' does not "
            f"provide {'it' if len(missing) == 1 else 'them'} (numeric: {', '.join(NUMERIC_INPUTS)}; categorical: "
            f"{', '.join(CATEGORICAL_INPUTS)}). Use features=standard or add the columns."
        )


class RuleModel(Model):
    family = "rule"

    @classmethod
    def validate(cls, cfg: Any, params: Mapping[str, Any], n_rows: int) -> None:
        check_param_names(cls.family, params, ())

    def _fit(self, X, y, *, spec, callbacks, X_val, y_val, key) -> None:
        check_features([(f["name"], f["kind"]) for f in spec.features if not f.get("derived")], spec.name)
        index = {f["name"]: j for j, f in enumerate(spec.features)}
        self.info["columns"] = {c: index[c] for c in NUMERIC_INPUTS + CATEGORICAL_INPUTS}
        self.info["levels"] = {c: list(spec.features[index[c]]["levels"]) for c in CATEGORICAL_INPUTS}
        callbacks.after_step(key, 1, 1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        cols = self.info["columns"]
        frame: dict[str, np.ndarray] = {c: X[:, cols[c]].astype(np.float64) for c in NUMERIC_INPUTS}
        for c in CATEGORICAL_INPUTS:
            levels = np.asarray(list(self.info["levels"][c]) + [""], dtype=object)
            codes = X[:, cols[c]]
            idx = np.where(np.isnan(codes), len(levels) - 1, np.nan_to_num(codes)).astype(np.int64)
            idx[(idx < 0) | (idx >= len(levels))] = len(levels) - 1
            frame[c] = levels[idx]
        return np.asarray(paddle_score_rule(frame), dtype=np.float64)

    def _save_files(self, directory: Path) -> list[str]:
        return []  # everything lives in model.json (info: columns, levels)

    def _restore(self, directory: Path, meta: Mapping[str, Any]) -> None:
        if "columns" not in self.info or "levels" not in self.info:
            from kaayko_exp.errors import RunDirError

            raise RunDirError(f"{directory}/model.json lacks the rule's column map. Retrain.")
