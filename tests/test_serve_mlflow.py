"""MLflow's scoring protocol on `predict.py serve.port=...`: a client written for `mlflow models serve` works
unchanged, against our server and against a real `mlflow models serve` of the exported model."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import requests
from predict_helpers import held_out, predictor, row_dict, run_dir  # noqa: F401
from runhelpers import stop_group

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rows(run_dir):  # noqa: F811
    frame = held_out(run_dir)
    rows = [row_dict(frame, i) for i in range(5)]
    rows[1]["gust_kph"] = 45.0  # a safety adjustment in the answers
    return rows


@pytest.fixture(scope="module")
def ours(run_dir):  # noqa: F811
    """`python predict.py run=<run> serve.port=0` (any free port), as a user starts it."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "predict.py"), f"run={run_dir}", "serve.port=0",
                             "serve.max_rows=20", "serve.max_body_bytes=50000"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=120)  # "Serving run <id> on http://127.0.0.1:<port> - Ctrl-C to stop"
        assert "Serving run" in line, line
        yield line.split("http://", 1)[1].split()[0].join(("http://", ""))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def forms(rows):
    """The request bodies of MLflow's protocol for ``rows``: (name, content type, body)."""
    frame = pd.DataFrame(rows)
    columns = {c: [r[c] for r in rows] for c in rows[0]}
    return [
        ("dataframe_split", "application/json",
         json.dumps({"dataframe_split": frame.to_dict(orient="split")})),  # with its "index", as pandas writes it
        ("dataframe_records", "application/json", json.dumps({"dataframe_records": rows})),
        ("instances", "application/json", json.dumps({"instances": rows})),
        ("inputs", "application/json", json.dumps({"inputs": columns})),
        ("csv", "text/csv", frame.to_csv(index=False)),
    ]


def post(url, content_type, body):
    return requests.post(f"{url}/invocations", data=body, headers={"Content-Type": content_type}, timeout=60)


def expected(predictor, rows):  # noqa: F811
    return {"predictions": json.loads(json.dumps([predictor.predict_one(r) for r in rows]))}


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"])
def test_invocations_in_each_input_form(ours, predictor, rows, form):  # noqa: F811
    _, content_type, body = next(f for f in forms(rows) if f[0] == form)
    resp = post(ours, content_type, body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == expected(predictor, rows)
    assert resp.json()["predictions"][1]["adjustments"][0]["rule"] == "gusts"


def test_mlflows_own_client_works_unchanged(ours, predictor, rows):  # noqa: F811
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = ours.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=30)  # GET /ping
    from kaayko_exp import __version__

    assert client.get_version() == __version__  # GET /version
    got = client.invoke(pd.DataFrame(rows))  # POST /invocations as MLflow serialises a DataFrame
    assert dict(got) == expected(predictor, rows)


def test_ping_and_version(ours, predictor):  # noqa: F811
    ping = requests.get(f"{ours}/ping", timeout=30)
    assert ping.status_code == 200 and ping.json()["model_loaded"] is True
    assert ping.json()["run_id"] == predictor.run_id
    version = requests.get(f"{ours}/version", timeout=30)
    assert version.status_code == 200 and version.text == __import__("kaayko_exp").__version__


def mlflow_error(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error_code", "message"}, body
    return body["error_code"], body["message"]


@pytest.mark.parametrize("change, field", [({"humidity": 150}, "humidity"), ({"temp_c": "warm"}, "temp_c"),
                                           ({"uv": None}, "uv")])
def test_a_row_that_cannot_be_scored_is_422_in_mlflows_shape_naming_the_field(ours, rows, change, field):
    bad = [rows[0], {**rows[1], **change}]
    code, message = mlflow_error(post(ours, "application/json", json.dumps({"dataframe_records": bad})), 422)
    assert code == "INVALID_PARAMETER_VALUE" and field in message and "row 1" in message


def test_a_missing_csv_cell_is_named(ours, rows):
    frame = pd.DataFrame(rows)
    frame.loc[2, "wind_kph"] = None
    code, message = mlflow_error(post(ours, "text/csv", frame.to_csv(index=False)), 422)
    assert code == "INVALID_PARAMETER_VALUE" and "wind_kph" in message and "row 2" in message


@pytest.mark.parametrize("content_type, body, status, needle", [
    ("application/json", "{not json", 400, "not valid JSON"),
    ("application/json", json.dumps([{"temp_c": 1}]), 400, "dataframe_records"),
    ("application/json", json.dumps({"records": []}), 400, "exactly one of the keys"),
    ("application/json", json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}), 400, "Row 0"),
    ("application/json", json.dumps({"inputs": {"a": [1, 2], "b": [1]}}), 400, "differ in length"),
    ("text/plain", "temp_c\n1\n", 415, "text/csv"),
    ("application/json", json.dumps({"dataframe_records": [{}] * 21}), 413, "max_rows"),
])
def test_malformed_requests_get_mlflows_error_shape(ours, content_type, body, status, needle):
    code, message = mlflow_error(post(ours, content_type, body), status)
    assert code in ("BAD_REQUEST", "RESOURCE_EXHAUSTED") and needle in message


def test_our_own_routes_keep_their_error_shape(ours):
    resp = requests.post(f"{ours}/predict", data="{not json", headers={"Content-Type": "application/json"},
                         timeout=30)
    assert resp.status_code == 400 and set(resp.json()) == {"error", "kind"}


# ---------------------------------------------------------------- the same client against `mlflow models serve`
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_serve(run_dir, tmp_path_factory):  # noqa: F811
    """`python -m kaayko_exp.export mlflow <run> <dest>`, then `mlflow models serve -m <dest> --env-manager local`."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's kaayko_exp in both processes
    dest = tmp_path_factory.mktemp("mlflow_serve") / "paddle"
    out = subprocess.run([sys.executable, "-m", "kaayko_exp.export", "mlflow", str(run_dir), str(dest)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    port = _free_port()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    log = open(dest.parent / "serve.log", "wb")
    proc = subprocess.Popen([mlflow, "models", "serve", "-m", str(dest), "--env-manager", "local", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: uvicorn's workers end with it
    try:
        ScoringServerClient("127.0.0.1", port).wait_server_ready(timeout=180, scoring_server_proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)
        log.close()


def test_the_same_requests_get_the_same_answers_from_mlflow_models_serve(mlflow_serve, ours, rows):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    for name, content_type, body in forms(rows):
        theirs, mine = post(mlflow_serve, content_type, body), post(ours, content_type, body)
        assert theirs.status_code == mine.status_code == 200, (name, theirs.text)
        assert theirs.json() == mine.json(), name
    host, port = mlflow_serve.removeprefix("http://").split(":")
    assert dict(ScoringServerClient(host, int(port)).invoke(pd.DataFrame(rows))) == mine.json()
    # out of range, and a fraction in a whole-number column (no cast to the signature's type may hide it)
    for value in (150, 79.5):
        bad = json.dumps({"dataframe_records": [{**rows[0], "humidity": value}]})
        for url in (mlflow_serve, ours):
            resp = post(url, "application/json", bad)
            assert 400 <= resp.status_code < 500, (url, value, resp.text)
            assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "humidity" in resp.json()["message"]
