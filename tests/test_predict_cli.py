"""`python predict.py`: batch files, one row (argument or stdin), HTTP, user errors exit 2."""

from __future__ import annotations

import http.client
import json

import numpy as np
import pandas as pd
import pytest
from predict_helpers import copy_run, held_out, row_dict, served, trained_run
from runhelpers import ROOT, cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_batch_parquet_through_predict_py_matches_report_predictions(run_dir, tmp_path):
    out = tmp_path / "preds.parquet"
    # the run's own held-out rows as the evaluate stage saved them (less its `prediction` column)
    src = tmp_path / "held_out.parquet"
    held_out(run_dir).drop(columns=["prediction"]).to_parquet(src)
    res = cli("predict.py", [f"run={run_dir}", f"input={src}", f"output={out}", "batch_size=97"])
    assert res.returncode == 0, res.stderr
    preds = pd.read_parquet(out)
    expected = held_out(run_dir)
    assert len(preds) == len(expected)
    np.testing.assert_array_equal(preds["raw_score"].to_numpy(), expected["prediction"].to_numpy())
    assert list(preds.columns) == ["lake", "datetime", "model_score", "raw_score", "paddle_score", "skill_level",
                                   "adjustments", "warnings"]
    import pyarrow.parquet as pq

    adj_type = pq.read_schema(out).field("adjustments").type
    assert str(adj_type) == "list<element: struct<rule: string, delta: double, reason: string>>"
    from kaayko_exp import Predictor

    direct = Predictor.load(run_dir).predict(held_out(run_dir).drop(columns=["prediction"]))
    np.testing.assert_array_equal(preds["paddle_score"], direct["paddle_score"])
    assert [list(map(dict, a)) for a in preds["adjustments"]] == direct["adjustments"].tolist()
    assert "scored" in res.stderr  # progress logging
    assert not list(tmp_path.glob(".preds.parquet.*"))  # no temporary left behind


@pytest.mark.slow
def test_batch_csv_output(run_dir, tmp_path):
    src = tmp_path / "in.csv"
    frame = held_out(run_dir).drop(columns=["prediction"]).head(300)
    frame.to_csv(src, index=False)
    out = tmp_path / "preds.csv"
    res = cli("predict.py", [f"run={run_dir}", f"input={src}", f"output={out}", "batch_size=128"])
    assert res.returncode == 0, res.stderr
    preds = pd.read_csv(out, keep_default_na=False)
    assert len(preds) == 300
    np.testing.assert_allclose(preds["raw_score"], held_out(run_dir)["prediction"].head(300), rtol=0, atol=1e-12)
    from kaayko_exp import Predictor
    from kaayko_exp.serving.safety import format_adjustment

    direct = Predictor.load(run_dir).predict(frame)
    assert list(preds["adjustments"]) == [" | ".join(map(format_adjustment, a)) for a in direct["adjustments"]]
    np.testing.assert_array_equal(preds["paddle_score"], direct["paddle_score"])


def test_bad_batch_input_leaves_no_output(run_dir, tmp_path):
    src = tmp_path / "bad.parquet"
    frame = held_out(run_dir).drop(columns=["prediction"]).head(100).copy()
    frame["humidity"] = frame["humidity"].astype("float64")
    frame.loc[60, "humidity"] = 150.0
    frame.to_parquet(src)
    out = tmp_path / "preds.parquet"
    res = cli("predict.py", [f"run={run_dir}", f"input={src}", f"output={out}", "batch_size=50"])
    assert res.returncode == 2
    assert "humidity" in res.stderr and "150" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_single_row_argument_prints_advice(run_dir):
    from kaayko_exp import Predictor

    # air below 15 °C (no cold-water rule), clear air: only the gust rule applies
    row = {**row_dict(held_out(run_dir), 0), "gust_kph": 45.0, "temp_c": 14.0, "vis_km": 10.0}
    expect = Predictor.load(run_dir).predict_one(row)
    fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in row.items())
    res = cli("predict.py", [f"run={run_dir}", f"row={{{fields}}}"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    final, model = max(1.0, expect["model_score"] - 0.5), expect["model_score"]
    assert lines[0] == f"Paddle score {final:.1f} / 5 ({expect['skill_level']})"
    assert lines[1] == f"  model score {model:.1f}; safety adjustments: gusts −0.5 (gust 45 km/h > 40 km/h)"


def test_readme_json_row_with_a_lake_name_and_weather_only(run_dir):
    """The README's form: row='{"lake": ..., "datetime": ..., weather...}' as JSON on the command line."""
    from kaayko_exp import Predictor

    full = row_dict(held_out(run_dir), 0)
    weather = ("temp_c", "wind_kph", "wind_dir", "humidity", "cloud", "uv", "precip_mm", "condition", "pressure_mb",
               "dew_point_c", "feelslike_c", "gust_kph", "is_day", "will_it_rain", "will_it_snow", "vis_km")
    request = {"lake": full["lake"], "datetime": full["datetime"], **{k: full[k] for k in weather if k in full}}
    expect = Predictor.load(run_dir).predict_one(request)
    res = cli("predict.py", [f"run={run_dir}", f"row={json.dumps(request)}", "format=json"])
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["paddle_score"] == expect["paddle_score"] and got["model_score"] == expect["model_score"]
    assert got["lake"] == full["lake"]


def test_single_row_json_on_stdin(run_dir):
    from kaayko_exp import Predictor

    row = row_dict(held_out(run_dir), 3)
    res = cli("predict.py", [f"run={run_dir}", "row=-", "format=json"], input=json.dumps(row))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    expect = Predictor.load(run_dir).predict_one(row)
    assert got == json.loads(json.dumps(expect))
    assert {"model_score", "raw_score", "paddle_score", "skill_level", "adjustments", "warnings"} <= set(got)


@pytest.mark.parametrize("args, stdin, needle", [
    (["row=-"], '{"temp_c": 20}', "wind_kph"),                       # missing columns listed
    pytest.param(["row=-"], "not json", "JSON", marks=pytest.mark.slow),
    pytest.param([], None, "Choose one mode", marks=pytest.mark.slow),
])
def test_user_errors_exit_2_with_one_paragraph(run_dir, args, stdin, needle):
    res = cli("predict.py", [f"run={run_dir}", *args], input=stdin)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_out_of_range_row_exits_2(run_dir):
    row = {**row_dict(held_out(run_dir), 0), "humidity": 150}
    res = cli("predict.py", [f"run={run_dir}", "row=-"], input=json.dumps(row))
    assert res.returncode == 2 and "humidity" in res.stderr


def test_tampered_run_exits_2(run_dir, tmp_path):
    copy = copy_run(run_dir, tmp_path)
    spec = copy / "model" / "feature_spec.json"
    spec.write_text(spec.read_text().replace("temp_c", "temp_x", 1))
    res = cli("predict.py", [f"run={copy}", "row=-"], input="{}")
    assert res.returncode == 2 and "feature_spec.json" in res.stderr


def test_serve_command_answers_health_and_predict(run_dir):
    with served(run_dir) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/health")
        health = json.loads(conn.getresponse().read())
        assert health["model_loaded"] is True
        row = row_dict(held_out(run_dir), 0)
        conn.request("POST", "/predict", body=json.dumps(row), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and 1.0 <= json.loads(resp.read())["paddle_score"] <= 5.0
        conn.close()


def test_a_batch_input_that_is_no_table_names_the_input_key(run_dir, tmp_path):
    res = cli("predict.py", [f"run={run_dir}", "input=README.md", f"output={tmp_path / 'o.parquet'}"])
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "README.md is neither a .csv nor a .parquet file. Point input at" in res.stderr
    assert "data.path" not in res.stderr and not (tmp_path / "o.parquet").exists()


def test_help_lists_every_safety_option():
    res = cli("predict.py", ["--help"])
    assert res.returncode == 0
    line = next(x for x in res.stdout.splitlines() if x.strip().startswith("safety="))
    options = line.split()[0].removeprefix("safety=").split("|")
    assert sorted(options) == sorted(p.stem for p in (ROOT / "conf" / "safety").glob("*.yaml"))
