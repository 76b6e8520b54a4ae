"""Rows outside the training rows' support: a warning on every prediction path, counts in report.json.

One tiny run with the real sample as its external set. The expected flags and counts are computed here by
brute force from the run's own training rows (its dataset and split assignment), never by the code under test.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from predict_helpers import TRAIN_OVERRIDES, copy_run, edit_manifest, held_out, served, train
from runhelpers import ROOT, cli

from kaayko_exp.atomic import sha256_file
from kaayko_exp.errors import RunDirError

REAL = ROOT / "tests" / "data" / "kaayko_sample"
PREFIX = "outside the training data: "
RANGE_COLUMNS = ("temp_c", "wind_kph", "precip_mm", "uv", "cloud", "dew_point_c", "gust_kph")
# half a rule bin (°C for air and dew point, km/h for wind and gust); cells are half of it wide, and a row is
# inside when a training row lies within two cells on both columns of every pair (the month: the same month)
HALF = {"temp_c": 1.5, "dew_point_c": 1.5, "wind_kph": 2.5, "gust_kph": 2.5}
MAIN = ("temp_c", "dew_point_c", "wind_kph", "gust_kph", "month")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("extrapolation_run")
    return train(base, [*TRAIN_OVERRIDES, f"evaluation.external={REAL}"])


@pytest.fixture(scope="module")
def training_rows(run):
    """The run's training rows, rebuilt from its config and split/assignment.npy."""
    from omegaconf import OmegaConf

    from kaayko_exp.data import load_dataset

    cfg = OmegaConf.create(json.loads((run / "report.json").read_text())["config"])
    frame, _ = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=cfg.cache_dir)
    codes = np.load(run / "split" / "assignment.npy")
    return frame[codes == 0].reset_index(drop=True)


@pytest.fixture(scope="module")
def predictor(run):
    from kaayko_exp import Predictor

    return Predictor.load(run)


def _values(frame: pd.DataFrame, col: str) -> np.ndarray:
    return np.asarray(frame[col], dtype=np.float32).astype(np.float64)


def expected_flags(train_rows: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Brute force: a row is outside when a range column leaves the training min..max, or when, for a pair of
    main inputs, no training row lies within two half-bin cells of it on both columns."""
    flagged = np.zeros(len(rows), dtype=bool)
    for col in RANGE_COLUMNS:
        t, r = _values(train_rows, col), _values(rows, col)
        flagged |= (r < t.min()) | (r > t.max())

    def cells(col: str, values: np.ndarray) -> np.ndarray:
        if col == "month":
            return values.astype(np.int64)
        width = HALF[col] / 2
        origin = np.floor(_values(train_rows, col).min() / width) * width
        return np.floor((values - origin) / width).astype(np.int64)

    for i, a in enumerate(MAIN):
        for b in MAIN[i + 1:]:
            reach_a, reach_b = (0 if a == "month" else 2), (0 if b == "month" else 2)
            ta, tb = np.unique(np.stack([cells(a, _values(train_rows, a)), cells(b, _values(train_rows, b))], 1),
                               axis=0).T
            ra, rb = cells(a, _values(rows, a)), cells(b, _values(rows, b))
            near = (np.abs(ra[:, None] - ta[None, :]) <= reach_a) & (np.abs(rb[:, None] - tb[None, :]) <= reach_b)
            flagged |= ~near.any(axis=1)
    return flagged


def support_warnings(warnings) -> list[str]:
    return [w for w in warnings if w.startswith(PREFIX)]


@pytest.fixture(scope="module")
def inside_row(training_rows):
    """A training row as a request: inside the support by definition."""
    from kaayko_exp.serving.inputs import request_from_row

    return request_from_row(training_rows.iloc[len(training_rows) // 2])


@pytest.fixture(scope="module")
def far_row(inside_row, training_rows):
    """Air temperature above every training row, and a dew point far below any joint training value."""
    hottest = float(_values(training_rows, "temp_c").max())
    return {**inside_row, "temp_c": round(hottest + 3.0, 1), "feelslike_c": round(hottest + 3.0, 1)}


@pytest.fixture(scope="module")
def pair_row(inside_row, training_rows):
    """Every value inside its training range, but the dew point / air temperature pair far from all training
    rows (found here by brute force over a few candidates)."""
    temp, dew = _values(training_rows, "temp_c"), _values(training_rows, "dew_point_c")
    for t in np.arange(np.ceil(temp.max()) - 1, np.ceil(temp.min()), -1.0):
        for d in np.arange(np.floor(dew.min()) + 1, min(t, dew.max()), 1.0):
            if not ((np.abs(temp - t) <= 4) & (np.abs(dew - d) <= 4)).any():
                return {**inside_row, "temp_c": float(t), "dew_point_c": float(d), "feelslike_c": float(t)}
    pytest.fail("no empty temperature / dew point region in the training rows")


# ------------------------------------------------------------------ the artifact
def test_support_is_recorded_hashed_and_exported(run):
    man = json.loads((run / "manifest.json").read_text())
    for stage, path in (("features", "features/support.json"), ("export", "model/support.json")):
        arts = {a["path"]: a for a in man["stages"][stage]["artifacts"]}
        assert path in arts
        assert arts[path]["sha256"] == sha256_file(run / path)
    assert (run / "features/support.json").read_bytes() == (run / "model/support.json").read_bytes()


def test_support_file_is_compact_json_that_loads_to_the_same_record(run):
    # written by the C encoder (no indentation: an indented dump is pure Python, one cell number per line)
    from kaayko_exp.data.support import Support

    text = (run / "features/support.json").read_text()
    assert "\n" not in text.rstrip("\n") and ", " not in text and ": " not in text
    loaded = Support.load(run / "features/support.json")
    assert loaded.to_dict() == json.loads(text)
    again = Support.from_dict(json.loads(json.dumps(loaded.to_dict(), indent=2)))  # an older, indented file
    assert again.to_dict() == loaded.to_dict()


def test_support_summary_counts_per_lake_name_whatever_the_lake_columns_type(run):
    # counted from a categorical column's codes (no Python string per row): the counts of the rows' text
    import pandas as pd

    from kaayko_exp.data.support import Support

    sup = Support.load(run / "features/support.json")
    held = pd.read_parquet(run / "predictions" / "test.parquet")
    flagged = np.logical_or.reduce(list(sup.check(held).values()))
    text = held["lake"].astype(str)
    expected = {str(k): int(v) for k, v in pd.Series(flagged.astype(int)).groupby(text.to_numpy()).sum().items()}
    assert sum(expected.values()) > 0 and len(expected) > 1
    levels = sorted(set(text), reverse=True) + ["Never Seen Lake"]  # unsorted, with a level no row has
    for lakes in (pd.Series(pd.Categorical(text, categories=levels)), text.astype(object), list(text)):
        got = sup.summary(held, lakes)["per_lake"]
        assert got == expected and list(got) == sorted(expected)


def test_tampered_support_is_refused(run, tmp_path):
    from kaayko_exp import Predictor

    copy = copy_run(run, tmp_path)
    doc = json.loads((copy / "model" / "support.json").read_text())
    doc["ranges"]["temp_c"][1] = 99.0  # would silence every warning about hot rows
    (copy / "model" / "support.json").write_text(json.dumps(doc))
    with pytest.raises(RunDirError, match="support.json"):
        Predictor.load(copy)


# ------------------------------------------------------------------ every path
def test_far_row_is_warned_about_on_the_python_paths(predictor, far_row, pair_row, inside_row):
    for row, expect in ((far_row, f"temp_c {far_row['temp_c']:g} °C: above the training rows' range"),
                        (pair_row, f"dew_point_c {pair_row['dew_point_c']:g} °C with temp_c {pair_row['temp_c']:g} "
                                   "°C: no training rows within half a bin")):
        one = predictor.predict_one(row)
        [text] = support_warnings(one["warnings"])
        assert expect in text
        frame = predictor.predict(pd.DataFrame([inside_row, row]))
        assert support_warnings(frame["warnings"][0]) == []
        assert support_warnings(frame["warnings"][1]) == [text]
        many = predictor.predict_many([inside_row, row])
        assert support_warnings(many[1]["warnings"]) == [text] and support_warnings(many[0]["warnings"]) == []
    assert support_warnings(predictor.predict_one(inside_row)["warnings"]) == []
    assert predictor.info()["training_support"]["rows"] > 0


def test_predict_py_batch_and_single_row_warn(run, far_row, inside_row, tmp_path):
    src, out = tmp_path / "rows.parquet", tmp_path / "preds.parquet"
    pd.DataFrame([inside_row, far_row]).to_parquet(src)
    res = cli("predict.py", [f"run={run}", f"input={src}", f"output={out}"])
    assert res.returncode == 0, res.stderr
    preds = pd.read_parquet(out)
    assert support_warnings(list(preds["warnings"][0])) == []
    assert [w.startswith(PREFIX + f"temp_c {far_row['temp_c']:g} °C") for w in preds["warnings"][1]].count(True) == 1
    res = cli("predict.py", [f"run={run}", "row=-"], input=json.dumps(far_row))
    assert res.returncode == 0, res.stderr
    assert [line.strip().startswith(f"WARNING: {PREFIX}temp_c") for line in res.stdout.splitlines()].count(True) == 1


def test_http_warns(run, far_row, inside_row):
    """`python predict.py run=<run> serve.port=0`, a real server process: one object and a list."""
    with served(run) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        for body in (far_row, [inside_row, far_row]):
            conn.request("POST", "/predict", body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            got = json.loads(resp.read())
            assert resp.status == 200
            results = got if isinstance(got, list) else [None, got]
            assert len(support_warnings(results[1]["warnings"])) == 1
            if results[0] is not None:
                assert support_warnings(results[0]["warnings"]) == []
        conn.close()


# ------------------------------------------------------------------ report.json
def test_report_counts_equal_a_brute_force_count(run, training_rows):
    from kaayko_exp.data import read_table
    from kaayko_exp.evaluation.report import read_report

    report = json.loads((run / "report.json").read_text())
    for block, rows in (("test", held_out(run)), ("external", read_table(REAL))):
        flags = expected_flags(training_rows, rows)
        got = report[block]["extrapolation"]
        assert got["rows"] == int(flags.sum()) > 0
        lakes = rows["lake"].astype(str).to_numpy()
        assert got["per_lake"] == {lake: int(flags[lakes == lake].sum()) for lake in sorted(set(lakes))}
    typed = read_report(run)
    assert typed.test_extrapolating == report["test"]["extrapolation"]["rows"]
    assert typed.external_extrapolating == report["external"]["extrapolation"]["rows"]
    assert "lie outside the training rows' support" in (run / "report.md").read_text()


def test_prediction_flags_equal_the_brute_force_flags(predictor, training_rows, run):
    rows = held_out(run).drop(columns=["prediction"])
    out = predictor.predict(rows)
    got = np.array([bool(support_warnings(w)) for w in out["warnings"]])
    np.testing.assert_array_equal(got, expected_flags(training_rows, rows))


# ------------------------------------------------------------------ runs that predate the support
def test_a_run_without_support_still_loads_and_predicts(run, tmp_path, far_row):
    from kaayko_exp import Predictor
    from kaayko_exp.evaluation.report import read_report

    copy = copy_run(run, tmp_path)
    for path in ("model/support.json", "features/support.json"):
        (copy / path).unlink()

    def strip(man):
        for stage in man["stages"].values():
            stage["artifacts"] = [a for a in stage["artifacts"] if not a["path"].endswith("support.json")]

    edit_manifest(copy, strip)
    report = json.loads((copy / "report.json").read_text())
    for block in ("test", "external"):
        del report[block]["extrapolation"]
    (copy / "report.json").write_text(json.dumps(report))

    def rehash(man):
        for art in man["stages"]["report"]["artifacts"]:
            if art["path"] == "report.json":
                art.update(sha256=sha256_file(copy / "report.json"), bytes=(copy / "report.json").stat().st_size)

    edit_manifest(copy, rehash)
    old = Predictor.load(copy)
    assert old.support is None and old.info()["training_support"] is None
    result = old.predict_one(far_row)
    assert support_warnings(result["warnings"]) == []
    assert 1.0 <= result["paddle_score"] <= 5.0
    assert support_warnings(old.predict(pd.DataFrame([far_row]))["warnings"][0]) == []
    typed = read_report(copy)
    assert typed.test_extrapolating is None and typed.external_extrapolating is None


def test_support_file_round_trips(run):
    from kaayko_exp.data.support import Support

    path = Path(run) / "model" / "support.json"
    again = Support.from_dict(Support.load(path).to_dict())
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(json.loads(path.read_text()), sort_keys=True)


def test_an_interrupted_run_without_support_resumes_and_exports_without_it(run, tmp_path):
    """A run whose features stage predates the support record finishes on resume, reporting no count."""
    copy = copy_run(run, tmp_path)
    for path in ("model/support.json", "features/support.json", "report.json", "report.md"):
        (copy / path).unlink()

    def interrupt_after_fit(man):
        for name, stage in man["stages"].items():
            stage["artifacts"] = [a for a in stage["artifacts"] if not a["path"].endswith("support.json")]
            if name in ("evaluate", "report", "export"):
                stage["status"], stage["artifacts"] = "pending", []
        man["status"] = "interrupted"

    edit_manifest(copy, interrupt_after_fit)
    # the shared run was trained in-process: give it the .hydra/config.yaml that `python train.py` saves
    from omegaconf import OmegaConf

    (copy / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.create(json.loads((run / "report.json").read_text())["config"]),
                   copy / ".hydra" / "config.yaml")
    res = cli("train.py", [f"resume={copy}"])
    assert res.returncode == 0, res.stderr[-2000:]
    man = json.loads((copy / "manifest.json").read_text())
    assert man["status"] == "completed"
    assert not any(a["path"].endswith("support.json") for s in man["stages"].values() for a in s["artifacts"])
    report = json.loads((copy / "report.json").read_text())
    assert report["test"]["extrapolation"] is None and report["external"]["extrapolation"] is None
    assert "rows lie outside" not in (copy / "report.md").read_text()
