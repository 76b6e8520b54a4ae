"""The loader module of an exported MLflow model (MLflow calls :func:`_load_pyfunc` with the model's data).

``mlflow.pyfunc.load_model(dest)`` imports this module from the installed kaayko-exp and calls
``_load_pyfunc(<dest>/data/run)``: a copy of the run's manifest, report and model files, opened with
:meth:`Predictor.load`, which checks every file's sha256 against the manifest before it is deserialised.
Nothing is unpickled. ``predict`` is :meth:`Predictor.predict`: the same input policy, derived fields,
safety layer and output columns as ``predict.py``; a refused input is raised as MLflow's
``INVALID_PARAMETER_VALUE`` (HTTP 400 under ``mlflow models serve``) with the same message.
"""

from __future__ import annotations

from typing import Any

from kaayko_exp.errors import KaaykoError


class PaddleScoreModel:
    """What ``mlflow.pyfunc.load_model`` wraps: one verified, loaded run."""

    def __init__(self, predictor: Any):
        self.predictor = predictor

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.predictor.predict(model_input)
        except KaaykoError as exc:
            from mlflow.exceptions import MlflowException

            raise MlflowException.invalid_parameter_value(str(exc)) from exc


def _load_pyfunc(data_path: str) -> PaddleScoreModel:
    from kaayko_exp.serving.predictor import Predictor

    return PaddleScoreModel(Predictor.load(data_path))
