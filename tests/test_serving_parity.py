"""The same rows scored through Predictor.predict, predict_one, predict.py batch and HTTP give identical outputs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from predict_helpers import held_out, predictor, row_dict, run_dir  # noqa: F401  (shared fixtures)

ROOT = Path(__file__).resolve().parents[1]
WEATHER = ["temp_c", "wind_kph", "wind_dir", "humidity", "cloud", "uv", "precip_mm", "condition", "pressure_mb",
           "dew_point_c", "feelslike_c", "gust_kph", "is_day", "will_it_rain", "will_it_snow", "vis_km"]


@pytest.fixture(scope="module")
def rows(run_dir):
    """Held-out rows as requests: full rows, minimal rows (lake + datetime + weather), timestamps with offsets."""
    from kaayko_exp.data.catalogue import lake_index

    def in_catalogue(name: str) -> bool:
        try:
            return lake_index(name) >= 0
        except LookupError:  # a coverage place of the generator: a minimal row of it has no derivable latitude
            return False

    test = held_out(run_dir)
    test = test[test["lake"].astype(str).map(in_catalogue)].reset_index(drop=True)
    picked = list(range(0, len(test), max(1, len(test) // 12)))[:12]
    out = []
    for k, i in enumerate(picked):
        row = row_dict(test, i)
        if k % 2:
            row = {c: row[c] for c in ["lake", "datetime", *WEATHER]}
        if k % 3 == 0:
            row["datetime"] = row["datetime"].replace(" ", "T") + ("+02:00" if k % 2 else "-05:30")
        out.append(row)
    return out


@pytest.fixture(scope="module")
def server(predictor):
    from kaayko_exp.serving.http import make_server

    srv = make_server(predictor, port=0, threads=2)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()
    thread.join(timeout=10)


def _post(url: str, body: bytes) -> tuple[int, object]:
    req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _plain(value):
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    frame = frame.astype({c: object for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)})
    return [{k: _plain(v) for k, v in r.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
            for r in frame.to_dict(orient="records")]


def test_every_path_gives_identical_outputs(predictor, rows, run_dir, tmp_path, server):
    one = [_plain(predictor.predict_one(r)) for r in rows]
    many = [_plain(r) for r in predictor.predict_many(rows)]
    assert many == one
    # a frame of the requests: minimal rows leave the context columns empty, so score them as two frames
    full = [r for r in rows if "latitude" in r]
    minimal = [r for r in rows if "latitude" not in r]
    framed = _records(predictor.predict(pd.DataFrame(full))) + _records(predictor.predict(pd.DataFrame(minimal)))
    by_path = [r for r in one if r in framed]
    assert len(by_path) == len(one)
    # predict.py batch: parquet in, parquet out (minimal rows: the file has only lake, datetime and weather)
    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pd.DataFrame(minimal).to_parquet(src)
    proc = subprocess.run([sys.executable, "predict.py", f"run={run_dir}", f"input={src}", f"output={dst}",
                           "log_level=WARNING"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _records(pd.read_parquet(dst)) == [r for r, q in zip(one, rows) if "latitude" not in q]
    # HTTP: one object per request and the whole list at once
    assert [_post(server, json.dumps(r).encode()) for r in rows] == [(200, r) for r in one]
    assert _post(server, json.dumps(rows).encode()) == (200, one)


def test_an_offset_is_local_wall_clock_time(predictor, rows):
    row = dict(rows[1])
    plain = {**row, "datetime": row["datetime"][:16].replace("T", " ")}
    with_offset = {**row, "datetime": plain["datetime"].replace(" ", "T") + "+02:00"}
    a, b = predictor.predict_one(plain), predictor.predict_one(with_offset)
    assert a["raw_score"] == b["raw_score"]
    frame = predictor.predict(pd.DataFrame([plain, with_offset]))
    assert frame["raw_score"].iloc[0] == frame["raw_score"].iloc[1] == a["raw_score"]


def test_model_lists_exactly_what_is_required(predictor, server):
    with urllib.request.urlopen(server + "/model", timeout=30) as resp:
        info = json.loads(resp.read())
    needed = set(predictor.plan.needed)
    assert sorted(info["required_columns"]) == sorted([c for c in WEATHER if c in needed] + ["lake", "datetime"])
    assert "latitude" in info["optional_columns"] and "estimated_water_temp_c" in info["optional_columns"]
    minimal = {c: 1.0 for c in info["required_columns"]}
    minimal.update(lake="Lake Mead", datetime="2025-07-01 14:00", wind_dir="N", condition="Sunny", humidity=50,
                   cloud=20, temp_c=24.0, feelslike_c=24.0, dew_point_c=12.0, pressure_mb=1015.0, is_day=1,
                   will_it_rain=0, will_it_snow=0, vis_km=10.0, wind_kph=8.0, gust_kph=12.0, precip_mm=0.0, uv=5.0)
    status, body = _post(server, json.dumps(minimal).encode())
    assert status == 200 and body["lake"] == "Lake Mead" and body["raw_score"] == predictor.predict_one(minimal)["raw_score"]
    status, body = _post(server, json.dumps({**minimal, "temp_c": None}).encode())
    assert status == 422 and "Field 'temp_c' is null" in body["error"]


def test_deeply_nested_json_is_a_400(server):
    status, body = _post(server, b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and "too deeply" in body["error"]


# Invalid values by the kind of column (kaayko_exp.data.validate.RULES): every path must refuse each one.
INVALID = {
    "number": ["12", True, float("inf"), -1e6, 1e6, None, [1.0]],
    "whole": [45.5, "50", False, -1e6, None],
    "flag": [0.5, 2, -1, "1", None],
    "category": ["NORTH", 5, None],
    "text": [5, 2.5, None],
    "datetime": ["yesterday", "2025-13-01 10:00", 5, None],
}
# Valid spellings the two paths must both accept (and score alike).
VALID = {"is_day": [True, 1.0, 0], "will_it_rain": [False], "humidity": [50.0, 50], "cloud": [np.int64(20)]}


def _refusal(call) -> str:
    from kaayko_exp.errors import PredictionInputError

    with pytest.raises(PredictionInputError) as exc:
        call()
    return str(exc.value)


def test_every_path_refuses_the_same_invalid_values_with_the_same_message(predictor, rows):
    from kaayko_exp.data.validate import RULES

    base = rows[0]  # a full row: every column the model and the safety layer read is given
    columns = [c for c in RULES if c in base and (c in predictor.plan.needed or c in ("lake", "datetime"))]
    assert {"is_day", "humidity", "wind_dir", "condition", "datetime", "temp_c"} <= set(columns)
    checked = 0
    for col in columns:
        for value in INVALID[RULES[col].kind]:
            row = {**base, col: value}
            if value is None and col in ("lake", "datetime") and col not in predictor.plan.needed:
                # an identifier nothing reads may be empty on every path (a batch file's empty cell)
                assert col not in predictor.predict_one(row)
                assert predictor.predict(pd.DataFrame([row]))[col].isna().all()
                continue
            one = _refusal(lambda: predictor.predict_one(row))
            many = _refusal(lambda: predictor.predict_many([base, row]))
            frame = _refusal(lambda: predictor.predict(pd.DataFrame([base, row])))
            assert one.startswith(f"Field '{col}' "), one
            # the same words on every path; only where the value sits is said differently
            assert many == one.replace(f"Field '{col}' ", f"Field '{col}' (row 1) ", 1), (col, value)
            assert frame == one.replace(f"Field '{col}' ", f"The input: column '{col}' ", 1).replace(
                ". ", " at row 1 (1 such value). ", 1), (col, value)
            checked += 1
    assert checked >= 5 * len(columns)
    for col, values in VALID.items():
        for value in values:
            row = {**base, col: value}
            scored = predictor.predict(pd.DataFrame([row]))["raw_score"].iloc[0]
            assert predictor.predict_one(row)["raw_score"] == scored, (col, value)


def test_a_short_request_is_told_what_get_model_requires(server):
    with urllib.request.urlopen(server + "/model", timeout=30) as resp:
        info = json.loads(resp.read())
    sent = {"lake": "Lake Mead", "datetime": "2025-07-01 14:00", "temp_c": 24.0}
    status, body = _post(server, json.dumps(sent).encode())
    assert status == 422
    named = body["error"].split("lacks the required columns ", 1)[1].split(". ", 1)[0].split(", ")
    assert named == [c for c in info["required_columns"] if c not in sent]
    assert not set(named) & set(info["optional_columns"])  # e.g. estimated_wave_height_m: derived from wind_kph
