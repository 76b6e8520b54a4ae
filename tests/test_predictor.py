"""Predictor: parity with training, single row == batch, input policy, integrity checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from predict_helpers import (
    CONF,
    copy_run,
    edit_manifest,
    held_out,
    predictor,  # noqa: F401  (shared fixture)
    row_dict,
    run_dir,  # noqa: F401  (shared fixture)
)

from kaayko_exp.data import label
from kaayko_exp.errors import PredictionInputError, RunDirError


@pytest.fixture(scope="module")
def test_rows(run_dir):
    return held_out(run_dir)


def test_batch_reproduces_the_evaluated_predictions_exactly(predictor, test_rows):
    out = predictor.predict(test_rows)
    assert len(out) == len(test_rows)
    np.testing.assert_array_equal(out["raw_score"].to_numpy(), test_rows["prediction"].to_numpy())
    assert list(out.columns) == ["lake", "datetime", "model_score", "raw_score", "paddle_score", "skill_level",
                                 "adjustments", "warnings"]
    assert (out["lake"].astype(str).to_numpy() == test_rows["lake"].astype(str).to_numpy()).all()


def test_output_scores_and_levels(predictor, test_rows):
    out = predictor.predict(test_rows)
    for col in ("model_score", "paddle_score"):
        s = out[col].to_numpy()
        assert s.min() >= 1.0 and s.max() <= 5.0 and np.all(s * 2 == np.round(s * 2))
    np.testing.assert_array_equal(out["model_score"], label.round_to_half(out["raw_score"]))
    # the final score is the model score plus the listed adjustments (clipped at 1)
    total = out["adjustments"].map(lambda adj: sum(a["delta"] for a in adj)).to_numpy(np.float64)
    np.testing.assert_array_equal(out["paddle_score"], np.maximum(out["model_score"] + total, 1.0))
    assert list(out["skill_level"].astype(str)) == list(label.skill_level(out["paddle_score"]))
    assert all(isinstance(w, list) for w in out["warnings"])
    assert all(set(a) == {"rule", "delta", "reason"} for adj in out["adjustments"] for a in adj)


def test_fast_path_equals_model_predict(predictor, test_rows):
    from kaayko_exp.features.spec import transform

    X = transform(predictor.spec, test_rows)
    assert predictor._booster is not None  # the xgboost inplace_predict path is in use
    np.testing.assert_array_equal(predictor._raw(X), np.asarray(predictor.model.predict(X), dtype=np.float64))


def test_predict_one_equals_batch(predictor, test_rows):
    batch = predictor.predict(test_rows)
    for i in range(0, len(test_rows), max(1, len(test_rows) // 25)):
        one = predictor.predict_one(row_dict(test_rows, i))
        expect = batch.iloc[i]
        assert one["raw_score"] == expect["raw_score"]
        assert one["model_score"] == expect["model_score"]
        assert one["paddle_score"] == expect["paddle_score"]
        assert one["adjustments"] == expect["adjustments"]
        assert one["skill_level"] == expect["skill_level"]
        assert one["warnings"] == expect["warnings"]
        assert one["lake"] == str(expect["lake"])


def test_predict_many_equals_predict_one(predictor, test_rows):
    rows = [row_dict(test_rows, i) for i in range(10)]
    del rows[3]["lake"]  # identifying columns are optional per row
    many = predictor.predict_many(rows)
    assert many == [predictor.predict_one(r) for r in rows]


def test_derived_columns_are_recomputed_when_missing(predictor, test_rows):
    # recomputed exactly as the generator computed the held-out rows' own values
    rows = test_rows.head(200)
    dropped = rows.drop(columns=["estimated_wave_height_m", "estimated_water_temp_c"])
    pd.testing.assert_frame_equal(predictor.predict(dropped), predictor.predict(rows))
    row = row_dict(test_rows, 0)
    full = dict(row)
    del row["estimated_wave_height_m"], row["estimated_water_temp_c"]
    assert predictor.predict_one(row) == predictor.predict_one(full)


def test_missing_required_columns_are_listed(predictor, test_rows):
    row = row_dict(test_rows, 0)
    del row["temp_c"], row["vis_km"]
    with pytest.raises(PredictionInputError) as exc:
        predictor.predict_one(row)
    assert "temp_c" in str(exc.value) and "vis_km" in str(exc.value)
    with pytest.raises(PredictionInputError, match="temp_c"):
        predictor.predict(test_rows.drop(columns=["temp_c"]))


def test_missing_derived_inputs_are_named(predictor, test_rows):
    row = row_dict(test_rows, 0)
    del row["estimated_water_temp_c"], row["temp_c"]
    with pytest.raises(PredictionInputError, match="temp_c"):
        predictor.predict_one(row)
    row = row_dict(test_rows, 0)
    for col in ("lake", "latitude", "longitude"):
        del row[col]
    with pytest.raises(PredictionInputError, match=r"lacks the required column lake\. .*send 'lake' \(a catalogue "
                       r"name\) or 'latitude' and 'longitude'"):
        predictor.predict_one(row)


@pytest.mark.parametrize("field, value, match", [
    ("humidity", 150, "humidity.*150"),
    ("wind_kph", -3.0, "wind_kph"),
    ("temp_c", "22.5", "temp_c.*number"),
    ("temp_c", True, "temp_c"),
    ("temp_c", float("nan"), "temp_c"),
    ("month", 7.5, "month.*whole"),
    ("wind_dir", "NORTHISH", "wind_dir"),
    ("climate_zone", 3, "climate_zone.*string"),
    ("datetime", "yesterday", "datetime"),
])
def test_bad_values_are_refused_naming_the_field(predictor, test_rows, field, value, match):
    row = {**row_dict(test_rows, 0), field: value}
    with pytest.raises(PredictionInputError, match=match):
        predictor.predict_one(row)


def test_bad_datetime_in_a_frame_is_refused(predictor, test_rows):
    bad = test_rows.head(20).copy()
    bad["datetime"] = bad["datetime"].dt.strftime("%Y-%m-%d %H:%M").astype(object)
    bad.loc[5, "datetime"] = "not a time"
    with pytest.raises(PredictionInputError, match=r"datetime.*row 5"):
        predictor.predict(bad)
    good = test_rows.head(20).copy()
    as_text = good.assign(datetime=good["datetime"].dt.strftime("%Y-%m-%d %H:%M"))
    np.testing.assert_array_equal(predictor.predict(as_text)["raw_score"], predictor.predict(good)["raw_score"])


def test_bad_frame_values_name_field_and_row(predictor, test_rows):
    bad = test_rows.head(50).copy()
    bad["humidity"] = bad["humidity"].astype("float64")
    bad.loc[17, "humidity"] = 150.0
    with pytest.raises(PredictionInputError, match=r"humidity.*150.*row 17"):
        predictor.predict(bad)
    bad = test_rows.head(50).copy()
    bad.loc[3, "wind_kph"] = np.nan
    with pytest.raises(PredictionInputError, match=r"wind_kph.*row 3"):
        predictor.predict(bad)


def test_safety_override_off(run_dir, test_rows):
    from kaayko_exp import Predictor

    off = Predictor.load(run_dir, safety={"name": "off", "enabled": False})
    out = off.predict(test_rows)
    np.testing.assert_array_equal(out["paddle_score"], out["model_score"])
    assert not any(out["adjustments"])
    # no safety warning is left; rows outside the training data keep that warning (it is not the safety layer's)
    assert all(w.startswith("outside the training data: ") for ws in out["warnings"] for w in ws)


def test_gusty_row_is_adjusted_with_a_reason_on_both_paths(predictor, run_dir, test_rows):
    from kaayko_exp import Predictor

    # air below 15 °C (no cold-water rule), clear air: only the gust rule can apply
    row = {**row_dict(test_rows, 0), "gust_kph": 55.0, "temp_c": 14.0, "vis_km": 10.0}
    one = predictor.predict_one(row)
    assert one["adjustments"] == [{"rule": "gusts", "delta": -1.0, "reason": "gust 55 km/h > 50 km/h"}]
    assert one["paddle_score"] == max(1.0, one["model_score"] - 1.0)
    assert predictor.predict_many([row]) == [one]
    original = Predictor.load(run_dir, safety=OmegaConf.load(CONF / "safety" / "kaayko_original.yaml"))
    rules = [a["rule"] for a in original.predict_one(row)["adjustments"]]
    assert "gustiness" in rules and "gusts" not in rules  # the override replaces the run's saved layer


# ------------------------------------------------------------------ integrity
def test_tampered_model_is_refused_before_deserialising(run_dir, tmp_path, monkeypatch):
    import kaayko_exp.models as models
    from kaayko_exp import Predictor

    copy = copy_run(run_dir, tmp_path)
    model_file = next(p for p in sorted((copy / "model").iterdir())
                      if p.suffix in (".ubj", ".json", ".skops") and p.name not in ("feature_spec.json",
                                                                                       "safety.json", "model.json"))
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model was called on a tampered run")

    monkeypatch.setattr(models, "load_model", forbidden)
    with pytest.raises(RunDirError, match=model_file.name):
        Predictor.load(copy)


def test_missing_artifact_and_stray_file_are_refused(run_dir, tmp_path):
    from kaayko_exp import Predictor

    copy = copy_run(run_dir, tmp_path)
    (copy / "model" / "safety.json").unlink()
    with pytest.raises(RunDirError, match="safety.json.*missing"):
        Predictor.load(copy)
    copy2 = tmp_path / "second"
    import shutil

    shutil.copytree(run_dir, copy2)
    (copy2 / "model" / "extra.ubj").write_bytes(b"not from the run")
    with pytest.raises(RunDirError, match="extra.ubj"):
        Predictor.load(copy2)


def test_unfinished_run_is_refused(run_dir, tmp_path):
    from kaayko_exp import Predictor

    copy = copy_run(run_dir, tmp_path)
    edit_manifest(copy, lambda m: m["stages"]["export"].update(status="pending"))
    with pytest.raises(RunDirError, match="no exported model"):
        Predictor.load(copy)


@pytest.mark.parametrize("lib, version", [("kaayko-exp", "9.0.0"), ("xgboost", "1.7.6")])
def test_incompatible_major_version_is_refused(run_dir, tmp_path, lib, version):
    from kaayko_exp import Predictor

    copy = copy_run(run_dir, tmp_path)
    edit_manifest(copy, lambda m: m["package"].update({lib: version}))
    with pytest.raises(RunDirError, match=f"{lib} {version}"):
        Predictor.load(copy)


def test_not_a_run_directory(tmp_path):
    from kaayko_exp import Predictor

    with pytest.raises(RunDirError):
        Predictor.load(tmp_path)


def test_import_is_light_and_predictor_lazy():
    code = ("import sys, kaayko_exp; assert 'pandas' not in sys.modules and 'xgboost' not in sys.modules; "
            "from kaayko_exp import Predictor; print(Predictor.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Predictor"


def test_a_category_training_never_saw_is_scored_as_missing_with_a_counted_warning(predictor, test_rows, caplog):
    caplog.set_level("WARNING", logger="kaayko_exp.serving.predictor")
    row = row_dict(test_rows, 0)
    ash, meteors = {**row, "condition": "Volcanic ash"}, {**row, "condition": "Meteor shower"}
    one = predictor.predict_one(ash)
    assert "1 of 1 rows" in caplog.text and "condition=Volcanic ash" in caplog.text
    # both unseen values take the missing-value path: the same score
    assert predictor.predict_one(meteors)["raw_score"] == one["raw_score"]
    caplog.clear()
    frame = test_rows.head(3).copy()
    frame["condition"] = frame["condition"].astype(object)
    frame.loc[frame.index[1], "condition"] = "Volcanic ash"
    out = predictor.predict(frame)
    assert "1 of 3 rows" in caplog.text and "condition=Volcanic ash (1)" in caplog.text
    assert len(out) == 3


def test_batch_file_ignores_gaps_in_columns_the_model_does_not_read(predictor, test_rows, tmp_path):
    from kaayko_exp.data import schema
    from kaayko_exp.serving.predictor import predict_file

    unused = [c for c in schema.COLUMNS if c not in predictor.plan.reads() and c not in schema.LABEL_DERIVED]
    assert unused, "the test model reads every schema column; pick a smaller feature set"
    rows = test_rows.drop(columns=["prediction"]).head(50).copy()
    rows[unused[0]] = rows[unused[0]].astype(object)
    rows.loc[3, unused[0]] = None  # a gap the model never looks at
    for suffix in (".parquet", ".csv"):
        src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
        rows.to_parquet(src) if suffix == ".parquet" else rows.to_csv(src, index=False)
        assert predict_file(predictor, src, out, batch_size=20) == 50
    scored = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_array_equal(scored["raw_score"].to_numpy(), test_rows["prediction"].head(50).to_numpy())


def test_batch_file_still_refuses_a_gap_in_a_column_the_model_reads(predictor, test_rows, tmp_path):
    from kaayko_exp.serving.predictor import predict_file

    rows = test_rows.drop(columns=["prediction"]).head(20).copy()
    rows.loc[5, "wind_kph"] = np.nan
    rows.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(Exception, match="wind_kph"):
        predict_file(predictor, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_one_row_c_call_gives_inplace_predicts_numbers_on_every_thread(predictor, test_rows):
    from concurrent.futures import ThreadPoolExecutor

    from kaayko_exp.features.spec import transform

    assert predictor._one_row is not None  # the direct one-row call is in use for an XGBoost run
    X = transform(predictor.spec, test_rows.head(64))
    X[5, :] = np.nan  # every feature missing: the default branches
    expected = [float(predictor._booster.inplace_predict(X[i:i + 1])[0]) for i in range(len(X))]
    assert predictor._one_row.score(X[3]) == expected[3]
    with ThreadPoolExecutor(4) as pool:  # each thread has its own input buffer
        got = list(pool.map(lambda i: predictor._one_row.score(X[i]), list(range(len(X))) * 8))
    assert got == expected * 8


def test_one_row_scorer_declines_a_model_it_cannot_match():
    from kaayko_exp.serving.one_row import one_row_scorer

    class Foreign:  # not an XGBoost booster: no C handle
        def inplace_predict(self, X):
            return np.zeros(len(X))

    assert one_row_scorer(Foreign(), 5) is None
