"""`python -m kaayko_exp.export mlflow <run> <dest>`: an MLflow pyfunc model that scores as the Predictor does,
carries only safe formats, verifies its files, and refuses bad input writing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from predict_helpers import copy_run, edit_manifest, held_out, predictor, row_dict, run_dir  # noqa: F401

from kaayko_exp import atomic

ROOT = Path(__file__).resolve().parents[1]


def export_cli(args, cwd):
    """``python -m kaayko_exp.export <args>`` run from ``cwd`` with this checkout's code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kaayko_exp.export", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):  # noqa: F811
    from kaayko_exp.export.mlflow_model import save_model

    return save_model(run_dir, tmp_path_factory.mktemp("export") / "paddle")


@pytest.fixture(scope="module")
def sample_rows(run_dir):  # noqa: F811
    """Held-out rows as weather-API requests, three changed so that each safety rule fires once."""
    frame = held_out(run_dir)
    rows = [row_dict(frame, i) for i in range(40)]
    rows[1]["gust_kph"] = 45.0  # gusts
    rows[2].update(vis_km=0.5)  # low visibility
    rows[3].update(temp_c=22.0, feelslike_c=22.0, dew_point_c=10.0, estimated_water_temp_c=8.0)  # cold water
    return rows


def as_signature_types(frame):
    """Numbers as floats (MLflow casts int64 to the signature's double only for 0/1 columns)."""
    return frame.astype({c: float for c in frame.columns if frame[c].dtype.kind in "iu"})


def test_pyfunc_predict_equals_the_predictor_on_the_sample_rows(exported, predictor, sample_rows):  # noqa: F811
    import mlflow.pyfunc

    frame = as_signature_types(pd.DataFrame(sample_rows))
    got = mlflow.pyfunc.load_model(str(exported)).predict(frame)
    want = predictor.predict(frame)
    pd.testing.assert_frame_equal(got, want)
    rules = {a["rule"] for adj in got["adjustments"] for a in adj}
    assert {"gusts", "visibility"} <= rules, rules
    assert (got["paddle_score"] != got["model_score"]).sum() >= 2
    assert list(got.columns) == ["lake", "datetime", "model_score", "raw_score", "paddle_score", "skill_level",
                                 "adjustments", "warnings"]


def test_a_refused_row_is_mlflows_invalid_parameter_naming_the_field(exported, sample_rows):
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(str(exported))
    with pytest.raises(MlflowException) as info:
        model.predict(as_signature_types(pd.DataFrame([{**sample_rows[0], "wind_kph": -5.0}])))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE" and "wind_kph" in info.value.message


def test_the_model_holds_safe_formats_and_the_runs_verified_files(exported, run_dir):  # noqa: F811
    mlmodel = yaml.safe_load((exported / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "kaayko_exp.export.pyfunc" and flavor["data"] == "data/run"
    assert "python_model" not in flavor and "cloudpickle_version" not in flavor
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))], files
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for art in manifest["stages"]["export"]["artifacts"]:
        assert atomic.sha256_file(exported / "data" / "run" / art["path"]) == art["sha256"], art["path"]
    assert mlmodel["metadata"]["kaayko_exp"]["run_id"] == manifest["run_id"]


def test_signature_and_input_example_are_a_weather_api_row(exported, predictor):  # noqa: F811
    from mlflow.models import Model

    model = Model.load(str(exported))
    inputs = {c.name: c for c in model.signature.inputs.inputs}
    for col in ("temp_c", "wind_kph", "gust_kph", "humidity", "is_day", "condition", "datetime"):
        assert inputs[col].required, col
    assert not inputs["lake"].required and not inputs["latitude"].required  # lake or latitude/longitude
    assert not inputs["estimated_water_temp_c"].required  # derived when absent
    assert (inputs["temp_c"].type.name, inputs["humidity"].type.name, inputs["datetime"].type.name) == \
        ("double", "double", "string")
    assert {c.name for c in model.signature.outputs.inputs} >= {"model_score", "paddle_score", "adjustments"}
    example = model.load_input_example(str(exported))
    assert list(example.to_dict(orient="records")[0].items())[:2] == [("lake", "Lake Mead"),
                                                                      ("datetime", "2025-07-01 14:00")]
    assert set(example.columns) == set(predictor.plan.describe()["required"])
    served = json.loads((exported / "serving_input_example.json").read_text())
    assert served["dataframe_split"]["data"][0][:2] == ["Lake Mead", "2025-07-01 14:00"]


def test_a_model_file_changed_after_export_is_refused_at_load(exported, tmp_path):
    import shutil

    import mlflow.pyfunc

    from kaayko_exp.errors import RunDirError

    copy = tmp_path / "m"
    shutil.copytree(exported, copy)
    with open(copy / "data" / "run" / "model" / "model.ubj", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(RunDirError, match="model/model.ubj"):
        mlflow.pyfunc.load_model(str(copy))


def test_the_readme_command_writes_a_loadable_model(run_dir, tmp_path):  # noqa: F811
    copy_run(run_dir, tmp_path / "outputs")  # -> outputs/copy, run from tmp_path as from a project root
    out = export_cli(["mlflow", "outputs/copy", "outputs/models/paddle"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "outputs/models/paddle" in out.stdout
    assert (tmp_path / "outputs" / "models" / "paddle" / "MLmodel").is_file()
    assert sorted(p.name for p in (tmp_path / "outputs" / "models").iterdir()) == ["paddle"]  # no staging left


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in root.rglob("*")}


def _tamper(run):
    with open(run / "model" / "model.ubj", "ab") as fh:
        fh.write(b"\0")


def _unfinished(run):
    edit_manifest(run, lambda m: m["stages"]["export"].update(status="pending"))


@pytest.mark.parametrize("case, needle", [
    ("not a run", "is not a usable run directory"),
    ("dest exists", "already exists"),
    ("mlflow missing", "MLflow is not installed"),
    ("tampered", "model/model.ubj"),
    ("unfinished", "no exported model yet"),
    ("dest below a file", "Cannot create the model folder"),
])
def test_refusals_are_one_paragraph_exit_2_and_write_nothing(run_dir, tmp_path, monkeypatch, capsys,  # noqa: F811
                                                             case, needle):
    from kaayko_exp.export.cli import main

    run = copy_run(run_dir, tmp_path / "outputs")
    if case == "dest exists":
        (tmp_path / "outputs" / "models" / "paddle").mkdir(parents=True)
        (tmp_path / "outputs" / "models" / "paddle" / "keep.txt").write_text("mine")
    if case == "not a run":
        (tmp_path / "notarun").mkdir()
    if case == "mlflow missing":
        monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    {"tampered": _tamper, "unfinished": _unfinished}.get(case, lambda r: None)(run)
    if case == "dest below a file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
    src = "notarun" if case == "not a run" else "outputs/copy"
    dest = "notes.txt/models/paddle" if case == "dest below a file" else "outputs/models/paddle"
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["mlflow", src, dest]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("kaayko-exp ")]) == 1
    assert _tree(tmp_path) == before
