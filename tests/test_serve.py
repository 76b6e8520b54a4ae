"""HTTP service: routes, JSON in/out, 4xx for bad input naming the field, never a made-up score."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from predict_helpers import held_out, row_dict, trained_run


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from kaayko_exp import Predictor

    return Predictor.load(trained_run(tmp_path_factory))


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    frame = held_out(trained_run(tmp_path_factory))
    return [row_dict(frame, i) for i in range(5)]


@pytest.fixture(scope="module")
def server(predictor):
    from kaayko_exp.serving.http import make_server

    srv = make_server(predictor, "127.0.0.1", 0, threads=2, max_body_bytes=20_000, max_rows=20)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield srv
    srv.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture()
def conn(server):
    c = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=20)
    yield c
    c.close()


def call(conn, method, path, body=None, headers=None):
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    assert resp.getheader("Content-Type") == "application/json"
    return resp.status, json.loads(payload)


def test_health_and_model(conn, predictor):
    status, health = call(conn, "GET", "/health")
    assert status == 200
    assert health["model_loaded"] is True and health["checksums_verified"] is True
    assert health["run_id"] == predictor.run_id
    status, info = call(conn, "GET", "/model")
    assert status == 200
    assert info["run_id"] == predictor.run_id and info["model"] == "xgboost"
    assert info["features"] == predictor.feature_names() and info["features"]
    assert isinstance(info["metrics"], dict) and "rmse" in info["metrics"]


def test_predict_one_object_and_list_on_one_keep_alive_connection(conn, predictor, rows):
    status, one = call(conn, "POST", "/predict", rows[0])
    assert status == 200
    assert one == json.loads(json.dumps(predictor.predict_one(rows[0])))
    status, many = call(conn, "POST", "/predict", rows)
    assert status == 200
    assert many == json.loads(json.dumps([predictor.predict_one(r) for r in rows]))
    status, empty = call(conn, "POST", "/predict", [])
    assert (status, empty) == (200, [])


@pytest.mark.parametrize("change, status, field", [
    ({"humidity": 150}, 422, "humidity"),
    ({"wind_kph": -5}, 422, "wind_kph"),
    ({"temp_c": "warm"}, 422, "temp_c"),
    ({"uv": None}, 422, "uv"),
])
def test_bad_values_get_422_naming_the_field(conn, rows, change, status, field):
    got, body = call(conn, "POST", "/predict", {**rows[0], **change})
    assert got == status and field in body["error"]
    assert "paddle_score" not in body and "model_score" not in body


def test_bad_row_in_a_list_is_named_by_index(conn, rows):
    batch = [rows[0], {**rows[1], "cloud": 101}]
    status, body = call(conn, "POST", "/predict", batch)
    assert status == 422 and "cloud" in body["error"] and "row 1" in body["error"]
    status, body = call(conn, "POST", "/predict", [rows[0], 7])
    assert status == 422 and "row 1" in body["error"]


@pytest.mark.parametrize("raw", [b"{not json", b'{"temp_c": NaN}', b"\xff\xfe", b"", b"[1, 2"])
def test_bad_json_gets_400(conn, raw):
    status, body = call(conn, "POST", "/predict", raw)
    assert status == 400 and body["error"]


def test_wrong_top_level_type(conn):
    status, body = call(conn, "POST", "/predict", "42")
    assert status == 422 and "object" in body["error"]


def test_oversized_body_and_too_many_rows_get_413(conn, rows):
    status, body = call(conn, "POST", "/predict", {"pad": "x" * 30_000})
    assert status == 413 and "max_body_bytes" in body["error"]
    status, body = call(conn, "POST", "/predict", [{}] * 21)
    assert status == 413 and "max_rows" in body["error"]


def test_unknown_route_and_method(conn):
    assert call(conn, "GET", "/nope")[0] == 404
    status, body = call(conn, "GET", "/predict")
    assert status == 405 and "POST" in body["error"]


def test_internal_error_is_500_without_a_score(conn, predictor, rows, monkeypatch):
    def broken(row):
        raise RuntimeError("boom")

    monkeypatch.setattr(predictor, "predict_one", broken)
    status, body = call(conn, "POST", "/predict", rows[0])
    assert status == 500 and "paddle_score" not in body and "Internal error" in body["error"]


def test_server_survives_bad_input(conn, rows):
    for raw in (b"{", b'{"temp_c": 1e999}', json.dumps({**rows[0], "humidity": -1}).encode()):
        assert call(conn, "POST", "/predict", raw)[0] in (400, 422)
    status, one = call(conn, "POST", "/predict", rows[0])
    assert status == 200 and 1.0 <= one["paddle_score"] <= 5.0


def test_response_carries_model_score_final_score_and_adjustments(conn, rows):
    status, one = call(conn, "POST", "/predict", {**rows[0], "gust_kph": 45.0, "temp_c": 14.0, "vis_km": 10.0})
    assert status == 200
    assert {"model_score", "raw_score", "paddle_score", "skill_level", "adjustments", "warnings"} <= set(one)
    assert "safety_score" not in one
    assert one["adjustments"] == [{"rule": "gusts", "delta": -0.5, "reason": "gust 45 km/h > 40 km/h"}]
    assert one["paddle_score"] == max(1.0, one["model_score"] - 0.5)
