"""A saved run as an MLflow pyfunc model: ``python -m kaayko_exp.export mlflow <run> <dest>``.

:func:`save_model` opens the run with :meth:`Predictor.load` (the export stage must be done; every
model file's sha256 is checked against the manifest), copies what the Predictor reads (``manifest.json``,
``report.json`` and the export stage's ``model/`` files, checked again after the copy) and writes an MLflow
model in MLflow's *loader-module* form: ``MLmodel`` names :mod:`kaayko_exp.export.pyfunc` as the loader and
``data/run`` as its data. The model directory holds only our safe formats (XGBoost UBJ/JSON or skops, JSON)
and MLflow's YAML/JSON files; no object of ours is pickled, and the code that loads it is the installed
kaayko-exp, not a copy of it.

The signature lists the columns of a weather-API row: the ones the model and its safety layer need
(required) and those the input policy derives when absent (optional); text and the local ``datetime`` are
strings, numbers doubles (see :func:`_column_type`). The input example is one such row. Units, ranges,
whole numbers and vocabularies are checked by the project's input policy after MLflow's type checks, with
the messages ``predict.py`` gives.

The model is written to a temporary folder beside ``dest`` and renamed into place: a failure leaves no
``dest`` behind.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kaayko_exp.errors import ConfigError

log = logging.getLogger(__name__)

LOADER_MODULE = "kaayko_exp.export.pyfunc"
RUN_FILES = "run"  # the copied run files inside the model's data folder

# One hour at a lake as a weather API (WeatherAPI.com's field names) reports it, plus the lake and its local
# time: the input example. Only the columns a model reads are kept.
WEATHER_ROW: dict[str, Any] = {
    "lake": "Lake Mead", "datetime": "2025-07-01 14:00", "temp_c": 33.9, "feelslike_c": 32.5,
    "dew_point_c": 2.8, "humidity": 14, "wind_kph": 18.4, "gust_kph": 24.1, "wind_dir": "SW",
    "pressure_mb": 1008.0, "precip_mm": 0.0, "cloud": 0, "vis_km": 10.0, "uv": 10.0, "condition": "Sunny",
    "is_day": 1, "will_it_rain": 0, "will_it_snow": 0,
}


def import_mlflow() -> Any:
    """``mlflow``, or a user error saying how to install it (nothing else is done before)."""
    try:
        import mlflow
        import mlflow.pyfunc  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"MLflow is not installed ({exc}), so no MLflow model can be written. Install the extra with "
            "`pip install -e \".[mlflow]\"` (mlflow-skinny is enough to export) and run the command again."
        ) from None
    return mlflow


def _refuse_existing(dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        raise ConfigError(
            f"{dest} already exists; an export never overwrites. Choose a new destination folder, or remove "
            "that one first if it holds nothing you need."
        )


def _column_type(col: str) -> str:
    """double for every number, whole numbers and 0/1 flags included: MLflow's server casts JSON values to the
    signature's types before the model sees them, and a long would turn a humidity of 79.5 into 79, which our
    input policy refuses (a double keeps it, and the policy names the field)."""
    from kaayko_exp.data.validate import RULES

    return "double" if RULES[col].numeric else "string"


def signature(predictor: Any) -> Any:
    """The model signature: the weather-API columns in, our output columns out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, Property, Schema

    inputs = predictor.plan.describe()
    # a lake name or latitude/longitude: neither alone is required (the input policy says which is missing)
    required = [c for c in inputs["required"] if c != "lake"]
    optional = [c for c in ("lake", *inputs["optional"]) if c not in required]
    cols = [ColSpec(_column_type(c), c) for c in required]
    cols += [ColSpec(_column_type(c), c, required=False) for c in optional]
    adjustment = Object([Property("rule", "string"), Property("delta", "double"), Property("reason", "string")])
    outputs = Schema([
        ColSpec("string", "lake", required=False), ColSpec("string", "datetime", required=False),
        ColSpec("double", "model_score"), ColSpec("double", "raw_score"), ColSpec("double", "paddle_score"),
        ColSpec("string", "skill_level"), ColSpec(Array(adjustment), "adjustments"),
        ColSpec(Array("string"), "warnings"),
    ])
    return ModelSignature(inputs=Schema(cols), outputs=outputs)


def input_example(predictor: Any) -> Any:
    """:data:`WEATHER_ROW` with only the columns the model reads, as a one-row DataFrame, scored once here so
    that a model which needs a column a weather API does not give is refused at export, not at serving."""
    import pandas as pd

    reads = set(predictor.plan.reads())
    row = {k: float(v) if _column_type(k) == "double" else v for k, v in WEATHER_ROW.items() if k in reads}
    frame = pd.DataFrame([row])
    predictor.predict(frame)
    return frame


def _copy_run_files(predictor: Any, target: Path) -> None:
    """Copy the files the Predictor reads into ``target`` and check the copies against the manifest."""
    from kaayko_exp.runs.rundir import MANIFEST, RunDir

    run = predictor.run
    stages = ["export"] + (["report"] if predictor.report else [])
    paths = [MANIFEST] + [a["path"] for a in run.artifacts(["export"])]
    if predictor.report:
        paths.append("report.json")
    for rel in paths:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.path / rel, target / rel)
    copy = RunDir.open(target)
    wanted = [a for a in copy.artifacts(stages) if a["path"] in paths]
    for art in wanted:
        copy.verify_file(art)


def _requirements(predictor: Any, mlflow: Any) -> list[str]:
    from kaayko_exp import __version__
    from kaayko_exp.serving.predictor import _libraries_of

    saved = (predictor.run.manifest.get("package") or {}) if predictor.run is not None else {}
    pins = [f"kaayko-exp=={__version__}", f"mlflow-skinny=={mlflow.__version__}"]
    pins += [f"{lib}=={saved[lib]}" for lib in _libraries_of(predictor.model_name)
             if saved.get(lib) not in (None, "unknown")]
    return pins


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder below ``root`` (before the rename that publishes it)."""
    from kaayko_exp.atomic import fsync_dir

    for p in sorted(root.rglob("*"), reverse=True):
        if p.is_file():
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
        else:
            fsync_dir(p)
    fsync_dir(root)


def save_model(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write the run ``run_dir`` as an MLflow pyfunc model in the new folder ``dest``; return ``dest``.

    Refused (a :class:`~kaayko_exp.errors.KaaykoError`, nothing written) when ``dest`` exists, MLflow is not
    installed, ``run_dir`` is not a run with a finished export stage, or a model file does not match its
    sha256 in the manifest.
    """
    from kaayko_exp.atomic import fresh_path, fsync_dir
    from kaayko_exp.runs.rundir import RunDir, shown
    from kaayko_exp.serving.predictor import Predictor

    dest = Path(dest).expanduser()
    _refuse_existing(dest)
    RunDir.open(run_dir)  # not a run: said before the slower checks
    mlflow = import_mlflow()
    predictor = Predictor.load(run_dir)  # refuses unfinished / damaged runs, naming run_dir
    example = input_example(predictor)
    sig = signature(predictor)

    parent = dest.parent.resolve()
    made = [p for p in (parent, *parent.parents) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = fresh_path(parent, f".{dest.name}.", ".export", directory=True)
    except OSError as exc:
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        raise ConfigError(f"Cannot create the model folder {dest}: {exc.strerror or exc}. Choose a destination "
                          "in a folder you can write to.") from None
    try:
        files = staging / RUN_FILES
        _copy_run_files(predictor, files)
        model = staging / "model"
        mlflow.pyfunc.save_model(
            path=str(model), loader_module=LOADER_MODULE, data_path=str(files), signature=sig,
            input_example=example, pip_requirements=_requirements(predictor, mlflow),
            metadata={"kaayko_exp": {"run_id": predictor.run_id, "model": predictor.model_name,
                                     "config_hash": (predictor.run.manifest.get("config") or {}).get("hash"),
                                     "safety": predictor.safety.name}},
        )
        _fsync_tree(model)
        _refuse_existing(dest)  # another process may have made it meanwhile
        os.rename(model, dest)
        fsync_dir(parent)
    except BaseException:
        if made:  # the folders this call created for dest (made[-1] is the topmost)
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported run %s as an MLflow model to %s", predictor.run_id, shown(dest))
    return dest
