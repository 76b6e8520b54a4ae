"""The synthetic generator: determinism, schema, addressability and physical invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import catalogue, label, schema, synthetic
from kaayko_exp.data.sampling import sample_positions

TOTAL = synthetic.DEFAULT_TOTAL_ROWS


def _rows(seed: int = 7, k: int = 3000, **kw) -> pd.DataFrame:
    return synthetic.generate_rows(sample_positions(TOTAL, k, seed), seed=seed, **kw)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _rows()


def test_same_seed_same_frame_different_seed_different():
    a, b, c = _rows(5), _rows(5), _rows(6)
    pd.testing.assert_frame_equal(a, b)
    same_rows_other_seed = synthetic.generate_rows(sample_positions(TOTAL, 3000, 5), seed=6)
    assert not a["temp_c"].equals(same_rows_other_seed["temp_c"])
    assert not a["datetime"].equals(c["datetime"])  # a different seed samples other rows


def test_schema_conformance(frame):
    assert list(frame.columns) == list(schema.COLUMNS)
    assert [str(t) for t in frame.dtypes] == [schema.DTYPES[c] for c in schema.COLUMNS]
    assert list(frame.index) == list(range(len(frame)))
    assert not frame.isna().any().any()
    for col, (lo, hi) in schema.RANGES.items():
        values = frame[col].to_numpy(np.float64)
        assert values.min() >= lo and values.max() <= hi, col
    for col in ("wind_dir", "season", "season_intensity", "hemisphere", "climate_zone", "regional_pattern"):
        vocab = {"wind_dir": schema.WIND_DIRECTIONS, "season": schema.SEASONS,
                 "season_intensity": schema.SEASON_INTENSITIES, "hemisphere": schema.HEMISPHERES,
                 "climate_zone": schema.CLIMATE_ZONES, "regional_pattern": schema.REGIONAL_PATTERNS}[col]
        assert set(frame[col].astype(str)) <= set(vocab), col


def test_sample_is_a_subset_of_the_complete_table():
    positions = sample_positions(TOTAL, 500, 11)
    sample = synthetic.generate_rows(positions, seed=11)
    # The same rows generated inside contiguous blocks (as the complete table is built).
    block = synthetic.generate_rows(np.arange(positions[3] - 50, positions[3] + 50), seed=11)
    pd.testing.assert_frame_equal(block.iloc[[50]].reset_index(drop=True), sample.iloc[[3]].reset_index(drop=True))
    reversed_ = synthetic.generate_rows(positions[::-1], seed=11)
    pd.testing.assert_frame_equal(reversed_.iloc[::-1].reset_index(drop=True), sample)


def test_complete_table_layout_and_sort_order():
    lay = synthetic.layout()
    assert lay.offsets[-1] == TOTAL
    names = lay.lakes["name"].tolist()
    assert names == sorted(names)
    spots = catalogue.paddlingout_spots()["name"]
    assert set(spots) <= set(names) and len(spots) == 17
    assert set(catalogue.SAMPLE_LAKES) <= set(names)
    head = synthetic.generate_rows(np.arange(lay.offsets[1] - 3, lay.offsets[1] + 3), seed=1)
    assert head["lake"].iloc[2] != head["lake"].iloc[3]
    assert head["datetime"].iloc[3] == pd.Timestamp("2022-01-01 00:00")
    assert (head["datetime"].diff().iloc[1:3] == pd.Timedelta(hours=1)).all()


def test_physical_invariants(frame):
    assert (frame["dew_point_c"] <= frame["temp_c"]).all()
    assert (frame["gust_kph"] >= frame["wind_kph"]).mean() >= 0.95
    night = frame["is_day"] == 0
    assert (frame.loc[night, "uv"] == 0).all() and frame.loc[~night, "uv"].max() > 3
    snow = frame["will_it_snow"] == 1
    assert snow.any() and (frame.loc[snow, "temp_c"] <= 1.0).all()
    cond = frame["condition"].astype(str)
    assert (frame.loc[cond.str.contains("snow|freezing"), "temp_c"] <= 1.0).all()
    dry = frame["precip_mm"] == 0
    assert set(cond[~dry]) <= {"Patchy rain possible", "Moderate rain at times", "Heavy rain at times",
                               "Moderate or heavy rain shower", "Light freezing rain", "Patchy moderate snow",
                               "Moderate snow", "Moderate or heavy snow showers"}
    assert (frame.loc[cond.isin(["Sunny", "Clear"]), "cloud"] < 25).all()
    assert (frame.loc[cond == "Overcast", "cloud"] >= 85).all()
    assert set(cond[cond.isin(["Sunny", "Clear"])].groupby(frame["is_day"]).unique().map(tuple)) == {("Clear",), ("Sunny",)}
    assert (frame["estimated_water_temp_c"] >= 0).all()
    np.testing.assert_allclose(frame["estimated_wave_height_m"], label.estimated_wave_height(frame["wind_kph"]),
                               rtol=1e-6)
    assert (frame["humidity"].between(5, 100)).all() and (frame["vis_km"] <= 10).all()


def test_location_fields_follow_latitude_and_hemisphere(frame):
    lat = frame["latitude"]
    zone = frame["climate_zone"].astype(str)
    assert (zone[lat.abs() < 10] == "equatorial").all()
    assert (zone[lat.abs() >= 66.5] == "polar").all()
    assert ((frame["hemisphere"] == "southern") == (lat < 0)).all()
    temperate = zone.isin(["temperate", "subtropical", "polar"]) & (frame["season"] != "monsoon")
    north_jul = temperate & (lat > 0) & (frame["month"] == 7)
    south_jul = temperate & (lat < 0) & (frame["month"] == 7)
    assert (frame.loc[north_jul, "season"] == "summer").all() and north_jul.any()
    assert (frame.loc[south_jul, "season"] == "winter").all() and south_jul.any()
    assert set(frame.loc[zone == "tropical", "season"].astype(str)) <= {
        "wet_season", "dry_season", "monsoon", "winter", "summer", "autumn"}
    # Seasonal cycle: northern temperate lakes are warmer in July than in January.
    nt = (zone == "temperate") & (lat > 0)
    assert frame.loc[nt & (frame["month"] == 7), "temp_c"].mean() > frame.loc[nt & (frame["month"] == 1), "temp_c"].mean() + 8
    # Daily cycle: afternoons are warmer than nights.
    hour = frame["datetime"].dt.hour
    assert frame.loc[hour.between(13, 17), "temp_c"].mean() > frame.loc[hour.between(2, 6), "temp_c"].mean()
    # Per-lake constants.
    per_lake = frame.groupby("lake", observed=True)[["latitude", "longitude"]].nunique()
    assert (per_lake == 1).all().all()


def test_labels_equal_the_rule_without_noise_and_differ_with_noise(frame):
    np.testing.assert_array_equal(frame["paddle_score"].to_numpy(np.float64), label.paddle_score_rule(frame))
    np.testing.assert_array_equal(frame["skill_level"].astype(str), label.skill_level(frame["paddle_score"]))
    noisy = _rows(label_noise=0.5)
    assert (noisy["paddle_score"] != frame["paddle_score"]).mean() > 0.2
    np.testing.assert_array_equal(noisy["skill_level"].astype(str), label.skill_level(noisy["paddle_score"]))
    pd.testing.assert_series_equal(noisy["temp_c"], frame["temp_c"])
    assert set(noisy["paddle_score"].unique()) <= set(np.arange(1.0, 5.01, 0.5))


def test_every_generated_value_lies_in_the_ranges_serving_accepts():
    # every 7th row of the complete table: all lakes, all seasons (serving refuses out-of-range values)
    rows = synthetic.generate_rows(np.arange(0, TOTAL, 7), seed=42)
    outside = {}
    for col, (lo, hi) in schema.RANGES.items():
        if col in rows:
            values = rows[col].to_numpy(dtype=np.float64)
            n = int(((values < lo) | (values > hi)).sum())
            if n:
                outside[col] = (n, float(values.min()), float(values.max()))
    assert outside == {}


def test_the_hottest_derivable_water_temperature_is_in_range():
    # air 60 °C (the top of temp_c's range), tropical (-2), July in the north (+2 sin 90° = +2), equator: 60.0
    water = label.estimated_water_temp([60.0], [7], [0.0], ["tropical"], ["continental"], ["northern"])
    assert float(water[0]) == 60.0
    assert schema.RANGES["estimated_water_temp_c"][1] >= 60.0
