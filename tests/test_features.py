"""Feature sets: leakage refusal, spec round trip, one code path for training and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame
from omegaconf import OmegaConf

from kaayko_exp.data import schema
from kaayko_exp.errors import ConfigError, PredictionInputError, RunDirError
from kaayko_exp.features.spec import (
    DERIVED,
    FeatureSpec,
    build_spec,
    categorical_mask,
    feature_names,
    transform,
    unseen_levels,
    unseen_rows,
    validate_features_config,
)

SETS = ("raw", "standard", "extended")


def load(name):
    return OmegaConf.load(f"conf/features/{name}.yaml")


@pytest.fixture(scope="module")
def small():
    return make_frame(600, seed=1)


@pytest.mark.parametrize("name", SETS)
def test_no_label_or_id_column_in_any_feature_set(name, small):
    spec = build_spec(load(name), small)
    names = set(feature_names(spec))
    assert not names & (schema.LABEL_DERIVED | set(schema.ID_COLUMNS) | {"base_lake_name", "lake_region"})
    assert not set(spec.required_columns) & schema.LABEL_DERIVED
    X = transform(spec, small)
    assert X.dtype == np.float32 and X.shape == (len(small), len(names))
    # no column of the matrix equals the label
    y = small["paddle_score"].to_numpy(np.float32)
    assert not any(np.array_equal(X[:, j], y) for j in range(X.shape[1]))


def test_sets_nest_and_cyclic_values(small):
    raw, std, ext = (feature_names(build_spec(load(n), small)) for n in SETS)
    assert std[: len(raw)] == raw and ext[: len(std)] == std
    assert {"month_sin", "hour_cos", "doy_sin"} <= set(std) - set(raw)
    assert {"gust_spread", "wind_chill_c", "heat_index_c", "uv_under_cloud"} <= set(ext)
    spec = build_spec(load("extended"), small)
    X = transform(spec, small)
    col = {n: X[:, j] for j, n in enumerate(feature_names(spec))}
    hours = small["datetime"].dt.hour.to_numpy()
    np.testing.assert_allclose(col["hour_sin"], np.sin(2 * np.pi * hours / 24), atol=1e-6)
    np.testing.assert_allclose(col["month_sin"] ** 2 + col["month_cos"] ** 2, 1.0, atol=1e-5)
    np.testing.assert_allclose(col["gust_spread"], small["gust_kph"] - small["wind_kph"], atol=1e-4)
    np.testing.assert_allclose(col["uv_under_cloud"], small["uv"] * (1 - small["cloud"] / 100), atol=1e-4)
    cold = (small["temp_c"] <= 10) & (small["wind_kph"] > 4.8)
    assert (col["wind_chill_c"][cold.to_numpy()] < small["temp_c"][cold].to_numpy() + 1e-4).all()


@pytest.mark.parametrize("bad, match", [
    ({"columns": ["temp_c"], "categorical": ["skill_level"]}, "label"),
    ({"columns": ["temp_c", "paddle_score"]}, "label"),
    ({"columns": ["temp_cc"]}, "unknown column"),
    ({"columns": ["temp_c"], "derived": ["wind_power"]}, "unknown derived"),
    ({"columns": ["lake"]}, "identif"),
    ({"columns": ["season"]}, "categorical column"),
    ({"columns": ["temp_c", "temp_c"]}, "more than once"),
])
def test_bad_feature_sets_are_refused(bad, match, small):
    cfg = OmegaConf.create({"name": "bad", "columns": [], "categorical": [], "cyclic": False, "derived": [], **bad})
    with pytest.raises(ConfigError, match=match):
        validate_features_config(cfg)
    with pytest.raises(ConfigError):
        build_spec(cfg, small)


def test_spec_levels_and_round_trip(small, tmp_path):
    spec = build_spec(load("standard"), small)
    levels = {f["name"]: f["levels"] for f in spec.features if f["kind"] == "categorical"}
    assert set(schema.WIND_DIRECTIONS) <= set(levels["wind_dir"])
    assert set(schema.SEASONS) <= set(levels["season"])  # fixed vocabulary even if unseen
    assert all(v == sorted(v) for v in levels.values())
    assert categorical_mask(spec).sum() == len(levels)
    path = spec.save(tmp_path / "spec.json")
    again = FeatureSpec.load(path)
    assert again.to_dict() == spec.to_dict()
    assert np.array_equal(transform(again, small), transform(spec, small), equal_nan=True)
    bad = spec.to_dict() | {"version": 99}
    with pytest.raises(RunDirError, match="version"):
        FeatureSpec.from_dict(bad)


@pytest.mark.parametrize("name", SETS)
def test_single_row_dict_equals_frame_rows(name, small):
    spec = build_spec(load(name), small)
    X = transform(spec, small)
    for i in range(0, len(small), 7):
        arrays = {c: np.asarray([small[c].iloc[i]]) for c in spec.required_columns}
        scalars = {c: small[c].iloc[i] for c in spec.required_columns}
        scalars["datetime"] = small["datetime"].iloc[i].strftime("%Y-%m-%d %H:%M")
        assert np.array_equal(transform(spec, arrays), X[i:i + 1], equal_nan=True)
        assert np.array_equal(transform(spec, scalars), X[i:i + 1], equal_nan=True)
    many = {c: small[c].to_numpy()[:5] for c in spec.required_columns}
    assert np.array_equal(transform(spec, many), X[:5], equal_nan=True)


@pytest.mark.parametrize("name", SETS)
def test_a_large_frame_is_transformed_in_blocks_with_the_same_values(name, small, monkeypatch):
    import kaayko_exp.features.spec as spec_module

    spec = build_spec(load(name), small)
    whole = transform(spec, small)
    monkeypatch.setattr(spec_module, "CHUNK_ROWS", 97)  # 600 rows: 6 full blocks and a partial one
    blocks = transform(spec, small)
    assert blocks.dtype == np.float32 and blocks.shape == whole.shape
    assert np.array_equal(blocks, whole, equal_nan=True)
    # the rows of each block are the frame's rows in order (not the first block repeated)
    for i in (0, 96, 97, 500, 599):
        assert np.array_equal(blocks[i], transform(spec, small.iloc[[i]])[0], equal_nan=True)


def test_unknown_and_missing_values(small):
    spec = build_spec(load("standard"), small)
    names = feature_names(spec)
    row = {c: small[c].iloc[0] for c in spec.required_columns}
    row.update(condition="Volcanic ash", wind_dir=None, temp_c=None)
    x = transform(spec, row)[0]
    assert np.isnan(x[names.index("condition")]) and np.isnan(x[names.index("wind_dir")])
    assert np.isnan(x[names.index("temp_c")]) and not np.isnan(x[names.index("wind_kph")])
    frame = small.head(3).copy()
    frame["condition"] = frame["condition"].astype(str)
    frame.loc[0, "condition"] = "Volcanic ash"
    assert np.isnan(transform(spec, frame)[0, names.index("condition")])
    with pytest.raises(PredictionInputError, match="wind_kph"):
        transform(spec, {k: v for k, v in row.items() if k != "wind_kph"})
    with pytest.raises(PredictionInputError, match="gust_kph"):
        transform(spec, small.drop(columns=["gust_kph"]))
    with pytest.raises(PredictionInputError, match="humidity"):
        transform(spec, {**row, "humidity": "very"})


def _train_and_test(small):
    """Training rows: every lake but Lake Baikal and Lake Malawi, whose rows get levels of their own."""
    frame = small.copy()
    held_out = frame["lake"].isin(["Lake Baikal", "Lake Malawi"]).to_numpy()
    lake_type = np.where(frame["lake"] == "Lake Baikal", "Rift lake", "Lake").astype(object)
    lake_type[(frame["lake"] == "Lake Malawi").to_numpy()] = "Crater"
    frame["lake_type"] = pd.Categorical(lake_type)  # declares every level, used or not
    condition = np.array(frame["condition"].astype(str), dtype=object)
    condition[np.flatnonzero(held_out)[:3]] = "Volcanic ash"
    frame["condition"] = pd.Categorical(condition)
    return frame[~held_out], frame[held_out]


def test_levels_come_from_the_training_rows_only(small):
    train, _ = _train_and_test(small)
    spec = build_spec(load("standard"), train)
    levels = {f["name"]: f["levels"] for f in spec.features if f["kind"] == "categorical"}
    assert levels["lake_type"] == ["Lake"]  # not the declared but unused 'Crater', 'Rift lake'
    assert "Volcanic ash" not in levels["condition"]
    assert levels["condition"] == sorted(set(train["condition"].astype(str)))
    assert levels["climate_zone"] == sorted(schema.CLIMATE_ZONES)  # fixed vocabulary joined in
    assert levels["wind_dir"] == sorted(schema.WIND_DIRECTIONS)


def test_unseen_levels_are_counted_and_take_the_missing_path(small):
    train, test = _train_and_test(small)
    spec = build_spec(load("standard"), train)
    n_baikal = int((test["lake"] == "Lake Baikal").sum())
    n_malawi = int((test["lake"] == "Lake Malawi").sum())
    assert n_baikal > 3 and n_malawi > 0
    found = unseen_levels(spec, test)
    assert found == {"condition": {"Volcanic ash": 3}, "lake_type": {"Crater": n_malawi, "Rift lake": n_baikal}}
    assert unseen_rows(spec, test) == len(test)  # the ash rows are Malawi rows, counted once
    assert unseen_levels(spec, train) == {} and unseen_rows(spec, train) == 0
    # an unseen value is coded exactly like a missing one
    names = feature_names(spec)
    X = transform(spec, test)
    assert np.isnan(X[:, names.index("lake_type")]).all()
    assert np.isnan(X[:3, names.index("condition")]).all() and not np.isnan(X[3:, names.index("condition")]).any()
    # a serving row (the last test row: Lake Baikal, a "Rift lake"); missing is not unseen
    row = {c: test[c].iloc[-1] for c in spec.required_columns} | {"region": "Atlantis", "wind_dir": None}
    assert unseen_levels(spec, row) == {"lake_type": {"Rift lake": 1}, "region": {"Atlantis": 1}}
    assert unseen_rows(spec, row) == 1
    assert np.isnan(transform(spec, row)[0, names.index("region")])


def test_derived_registry_documents_inputs():
    for name, d in DERIVED.items():
        assert d.inputs and d.doc, name
        assert all(c in schema.COLUMNS or c == "hour" for c in d.inputs)
