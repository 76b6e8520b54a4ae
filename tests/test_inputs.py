"""The one input policy (kaayko_exp.serving.inputs): derivation with the training code, nulls, offsets, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import synthetic, validate
from kaayko_exp.errors import DataError, PredictionInputError
from kaayko_exp.serving.inputs import (
    InputPlan,
    request_from_row,
    validate_frame,
    validate_row,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "kaayko_sample"
WEATHER = ["temp_c", "wind_kph", "wind_dir", "humidity", "cloud", "uv", "precip_mm", "condition", "pressure_mb",
           "dew_point_c", "feelslike_c", "gust_kph", "is_day", "will_it_rain", "will_it_snow", "vis_km"]
CONTEXT = ["estimated_water_temp_c", "estimated_wave_height_m", "latitude", "longitude", "month", "day_of_year",
           "season", "season_intensity", "hemisphere", "climate_zone", "region", "regional_pattern",
           "lake_region", "lake_type", "base_lake_name"]
# what the standard feature set + the kaayko safety layer read
NEEDED = WEATHER + CONTEXT[:12] + ["lake_type", "datetime"]


@pytest.fixture(scope="module")
def table():
    # rows spread over all 100 synthetic lakes (spots, both hemispheres, every climate zone)
    return synthetic.generate_rows(np.arange(0, synthetic.DEFAULT_TOTAL_ROWS, 2417), seed=11)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    if isinstance(b.dtype, pd.CategoricalDtype) or b.dtype == object:
        return a.astype(str).to_numpy() == b.astype(str).to_numpy()
    return a.to_numpy(dtype=np.float64) == b.to_numpy(dtype=np.float64)


def test_lake_and_datetime_derive_the_generators_context_exactly(table):
    plan = InputPlan(NEEDED + ["lake_region", "base_lake_name"])
    out = validate_frame(table[["lake", "datetime", *WEATHER]], plan)
    for col in CONTEXT:
        assert _same(out[col], table[col]).all(), col
    for i in (0, 17, 500, len(table) - 1):
        row = request_from_row(table[["lake", "datetime", *WEATHER]].iloc[i])
        clean = validate_row(row, plan)
        full = request_from_row(table.iloc[i])
        assert {c: clean[c] for c in CONTEXT} == {c: full[c] for c in CONTEXT}


def test_coordinates_instead_of_a_lake_name(table):
    plan = InputPlan(NEEDED + ["lake_region"])
    given = table[["datetime", "latitude", "longitude", *WEATHER]]
    out = validate_frame(given, plan)
    for col in CONTEXT[:13] + ["lake_region"]:
        assert _same(out[col], table[col]).all(), col
    mid_pacific = {**request_from_row(given.iloc[0]), "latitude": 0.5, "longitude": -140.0}
    with pytest.raises(PredictionInputError, match=r"Cannot derive .lake_(type|region).: no catalogue lake lies within 25 km"):
        validate_row(mid_pacific, plan)
    clean = validate_row({**mid_pacific, "lake_type": "Lake", "lake_region": "Pacific"}, plan)
    assert clean["climate_zone"] == "equatorial" and clean["region"] == "Other" and clean["season"] == "equatorial"


def test_given_values_win_over_derived_ones(table):
    plan = InputPlan(NEEDED)
    row = {**request_from_row(table[["lake", "datetime", *WEATHER]].iloc[3]), "climate_zone": "polar"}
    assert validate_row(row, plan)["climate_zone"] == "polar"


def test_unknown_lake_names_the_fix(table):
    plan = InputPlan(NEEDED)
    row = {**request_from_row(table[["datetime", *WEATHER]].iloc[0]), "lake": "Lake Nowhere"}
    with pytest.raises(PredictionInputError, match=r"'Lake Nowhere' is not a lake of the catalogue.*latitude"):
        validate_row(row, plan)


def test_null_is_named_as_null_not_missing(table):
    plan = InputPlan(NEEDED)
    row = {**request_from_row(table.iloc[0]), "temp_c": None}
    with pytest.raises(PredictionInputError, match="Field 'temp_c' is null"):
        validate_row(row, plan)
    row = {**request_from_row(table.iloc[0]), "latitude": None}
    with pytest.raises(PredictionInputError, match="Field 'latitude' is null.*omit the field"):
        validate_row(row, plan)
    frame = table.head(10).copy()
    frame.loc[3, "uv"] = np.nan
    with pytest.raises(PredictionInputError, match=r"'uv' is null at row 3 \(1 such value\)"):
        validate_frame(frame, plan)


def test_training_data_refuses_missing_values_too():
    frame = pd.read_csv(SAMPLE / "Windermere" / "2019-12.csv")
    frame.loc[5, "uv"] = np.nan
    with pytest.raises(DataError, match=r"'uv' is null at data row 6 \(1 such value\)"):
        validate.validate_frame(frame, "w.csv")


def test_an_offset_is_dropped_on_every_path(table):
    from kaayko_exp.features.spec import _hour_column, _hour_scalar

    texts = ["2025-07-01T14:00+02:00", "2025-07-01 14:00", "2025-07-01T14:00:00Z", "2025-07-01T14:00-05:00"]
    assert [_hour_scalar(t) for t in texts] == [14.0] * 4
    assert _hour_column(pd.Series(texts)).tolist() == [14.0] * 4
    raw = pd.read_csv(SAMPLE / "Windermere" / "2019-12.csv").head(4)
    raw["datetime"] = texts
    loaded = validate.validate_frame(raw, "w.csv")  # training data
    assert loaded["datetime"].dt.hour.tolist() == [14] * 4


def test_water_temperature_follows_the_training_datas_floor():
    # the real Kaayko files hold the collector's unfloored value: derived with the real-data policy it matches
    real = validate.validate_frame(pd.read_csv(SAMPLE / "Lake_Minnewanka" / "2021-02.csv"), "m.csv")
    assert (real["estimated_water_temp_c"] < 0).any()
    given = real.drop(columns=["estimated_water_temp_c"])
    needed = ["estimated_water_temp_c", "temp_c"]
    unfloored = validate_frame(given, InputPlan(needed, water_floor_at_zero=False))
    np.testing.assert_array_equal(unfloored["estimated_water_temp_c"], real["estimated_water_temp_c"])
    floored = validate_frame(given, InputPlan(needed, water_floor_at_zero=True))
    assert floored["estimated_water_temp_c"].min() == 0.0


def test_messages_show_plain_values(table):
    plan = InputPlan(NEEDED)
    row = {**request_from_row(table.iloc[0]), "humidity": np.float64(150.0)}
    with pytest.raises(PredictionInputError) as exc:
        validate_row(row, plan)
    assert "150.0" in str(exc.value) and "np." not in str(exc.value)
    deep: dict = {}
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(PredictionInputError, match="a JSON object"):
        validate_row({**request_from_row(table.iloc[0]), "temp_c": deep}, plan)


def test_a_batch_needs_only_the_models_columns(table):
    frame = table[["lake", "datetime", *WEATHER]]  # no base_lake_name, lake_region, context
    checked = validate.validate_frame(frame, "batch.parquet", require_target=False)
    assert list(checked.columns) == list(frame.columns)
    assert len(validate_frame(checked, InputPlan(NEEDED))) == len(frame)


def test_describe_lists_required_and_optional():
    info = InputPlan(NEEDED).describe()
    assert info["required"] == [*WEATHER, "lake", "datetime"]
    assert set(info["optional"]) == set(CONTEXT[:12]) | {"lake_type"}
    assert info["optional"]["lake_type"] == "derived from lake or latitude + longitude"


def test_json_row_on_the_command_line():
    from hydra import compose, initialize_config_dir

    import kaayko_exp.config  # noqa: F401
    from kaayko_exp.serving.cli import _read_row, rewrite_row_argument

    argv = ["run=outputs/x", 'row={"lake": "Lake O\'Hara", "temp_c": 22.5, "note": "${x} \\\\"}', "format=json"]
    rewritten = rewrite_row_argument(argv)
    assert rewritten[0] == argv[0] and rewritten[2] == argv[2]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="predict", overrides=rewritten)
        assert _read_row(cfg) == {"lake": "Lake O'Hara", "temp_c": 22.5, "note": "${x} \\"}
        hydra_form = compose(config_name="predict", overrides=rewrite_row_argument(["row={temp_c: 22.5}"]))
        assert _read_row(hydra_form) == {"temp_c": 22.5}
