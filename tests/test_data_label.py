"""The label rule and derived columns against every row of the real Kaayko sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import label, read_table

SAMPLE = Path(__file__).parent / "data" / "kaayko_sample"


@pytest.fixture(scope="module")
def raw_sample() -> pd.DataFrame:
    """The sample exactly as written (float64), without the loader's coercion."""
    files = sorted(SAMPLE.glob("*/*.csv"))
    assert len(files) == 15
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def test_rule_reproduces_every_sample_score_and_skill(raw_sample):
    score = label.paddle_score_rule(raw_sample)
    assert len(score) == 10_848
    np.testing.assert_array_equal(score, raw_sample["paddle_score"].to_numpy())
    np.testing.assert_array_equal(label.skill_level(score), raw_sample["skill_level"].to_numpy(dtype=object))


def test_rule_on_loaded_float32_table_is_exact():
    table = read_table(SAMPLE)
    np.testing.assert_array_equal(label.paddle_score_rule(table), table["paddle_score"].to_numpy(np.float64))


@pytest.mark.parametrize("as_float32", [False, True])
def test_water_temperature_formula_matches_every_sample_row(raw_sample, as_float32):
    temp = raw_sample["temp_c"].to_numpy()
    if as_float32:
        temp = temp.astype(np.float32)
    water = label.estimated_water_temp(
        temp, raw_sample["month"], raw_sample["latitude"], raw_sample["climate_zone"],
        raw_sample["regional_pattern"], raw_sample["hemisphere"], floor_at_zero=False,
    )
    np.testing.assert_array_equal(water, raw_sample["estimated_water_temp_c"].to_numpy())


def test_water_temperature_is_floored_by_default(raw_sample):
    water = label.estimated_water_temp(
        raw_sample["temp_c"], raw_sample["month"], raw_sample["latitude"], raw_sample["climate_zone"],
        raw_sample["regional_pattern"], raw_sample["hemisphere"],
    )
    assert water.min() == 0.0
    assert (raw_sample["estimated_water_temp_c"] < 0).any()  # the original was not floored


def test_wave_height_matches_sample(raw_sample):
    np.testing.assert_allclose(label.estimated_wave_height(raw_sample["wind_kph"]),
                               raw_sample["estimated_wave_height_m"], rtol=1e-12, atol=0)


def test_round_one_decimal_equals_python_round():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-60, 60, 20_000), np.round(rng.uniform(-60, 60, 20_000), 2),
                        np.arange(-1000, 1000) / 20.0])
    expected = np.array([round(v, 1) for v in x.tolist()])
    np.testing.assert_array_equal(label.round_one_decimal(x), expected)
    assert math.isnan(label.round_one_decimal(np.array([np.nan]))[0])
