"""The climate-driven generator: each lake's climate follows from its place, not from a random draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import climate, synthetic


def _one(lat: float, lng: float, pattern: str = "varied", zone: str = "temperate") -> climate.LakeClimate:
    return climate.lake_climate([lat], [lng], [pattern], [zone])


def test_boxes_give_altitude_continentality_and_aridity():
    yellowstone = _one(44.4, -110.3)
    assert yellowstone.elevation_km[0] == pytest.approx(2.3)
    windermere = _one(54.35, -2.95, "temperate")
    assert windermere.continentality[0] == pytest.approx(0.1)
    mead = _one(36.1, -114.4, zone="subtropical")
    assert mead.aridity[0] == pytest.approx(0.95)
    # Outside every box: the defaults of the regional pattern and zone.
    nowhere = _one(-5.0, -150.0, "varied", "equatorial")
    assert nowhere.elevation_km[0] == pytest.approx(0.2) and nowhere.aridity[0] == 0.0


def test_lapse_rate_and_maritime_range_by_hand():
    # Same latitude band and pattern: the 2.3 km plateau is 5 °C/km × 2.1 km colder than a 0.2 km lowland
    # at the same latitude (a point west of every box, same continentality by construction below).
    low = climate.lake_climate([44.4], [-140.0], ["continental"], ["temperate"])
    high = _one(44.4, -110.3)
    assert high.continentality[0] == pytest.approx(0.9)
    # continental default 0.95 vs the box's 0.9 shifts the maritime term by 4·0.05·(9.4/15) = 0.125 °C
    expected = low.t_mean[0] - climate.LAPSE_C_PER_KM * (2.3 - 0.2) + 4.0 * 0.05 * (44.4 - 35.0) / 15.0
    assert high.t_mean[0] == pytest.approx(expected)
    # A maritime lake swings less over the year than a continental one at the same latitude.
    assert _one(54.35, -2.95).t_amp[0] < 0.5 * _one(51.25, -115.35).t_amp[0]
    # The southern hemisphere's coldest point is half a year later.
    # (New Zealand, continentality 0.15: 196 + 15·0.85; Bordeaux-like NW Europe, 0.1: 15 + 15·0.9.)
    assert _one(-45.0, 170.0).cold_doy[0] == pytest.approx(196.0 + 15.0 * 0.85)
    assert _one(45.0, 0.0, "temperate").cold_doy[0] == pytest.approx(15.0 + 15.0 * 0.9)


def _lake_rows(name: str, seed: int, months: tuple[int, ...]) -> pd.DataFrame:
    lay = synthetic.layout()
    j = lay.lakes.index[lay.lakes["name"] == name][0]
    idx = np.arange(lay.offsets[j], lay.offsets[j + 1])
    rows = synthetic.generate_rows(idx, seed=seed)
    return rows[rows["month"].isin(months)]


def test_a_lakes_climate_does_not_depend_on_the_seed():
    # Monthly means over ~2 years of one lake: the seed moves the weather, not the climate. Under
    # generator v2 a per-lake random offset (σ 3.5 °C) moved them by several degrees between seeds.
    a = _lake_rows("Windermere", 1, (1, 7)).groupby("month")["temp_c"].mean()
    b = _lake_rows("Windermere", 2, (1, 7)).groupby("month")["temp_c"].mean()
    assert np.abs(a - b).max() < 1.5
    assert a[7] - a[1] > 6.0  # and the season is there


def test_desert_is_dry_and_maritime_is_humid_and_south_is_warm_in_january():
    mead = _lake_rows("Lake Mead", 5, (7,))
    windermere = _lake_rows("Windermere", 5, (7,))
    assert mead["humidity"].mean() < 35 < 75 < windermere["humidity"].mean()
    assert (mead["precip_mm"] > 0).mean() < 0.05 < (windermere["precip_mm"] > 0).mean()
    lay = synthetic.layout()
    south = lay.lakes[lay.lakes["lat"] < -35]["name"].iloc[0]
    rows = _lake_rows(south, 5, (1, 7)).groupby("month")["temp_c"].mean()
    assert rows[1] > rows[7]


def test_humidity_below_freezing_is_over_ice():
    # Magnus over ice (WMO-No. 8: a 22.46, b 272.62) for the saturation term below 0 °C.
    rows = _lake_rows("Lake Minnewanka", 3, (1, 2))
    cold = rows[rows["temp_c"] <= -15]
    t, d = cold["temp_c"].to_numpy(np.float64), cold["dew_point_c"].to_numpy(np.float64)
    over_ice = 100.0 * np.exp(17.625 * d / (243.04 + d) - 22.46 * t / (272.62 + t))
    assert len(cold) > 50
    assert np.abs(cold["humidity"].to_numpy() - np.clip(np.round(over_ice), 5, 100)).max() <= 1
    over_water = 100.0 * np.exp(17.625 * d / (243.04 + d) - 17.625 * t / (243.04 + t))
    assert np.mean(cold["humidity"].to_numpy() - over_water) > 5  # the two formulas are told apart here


def test_the_real_sample_passes_every_fidelity_check(tmp_path):
    from kaayko_exp.data import fidelity
    from kaayko_exp.data.sources import read_table

    results, report, _ = fidelity.run(read_table("tests/data/kaayko_sample"), out=tmp_path, seed=42)
    assert fidelity.failures(results) == []
    assert "All checks passed." in report.read_text()
