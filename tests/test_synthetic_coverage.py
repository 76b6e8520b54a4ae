"""Issue 19: the generator's coverage component and the fidelity report's coverage section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.config import DataConfig, SampleSizeConfig
from kaayko_exp.data import climate, coverage, fidelity, koppen, label, load_dataset, schema, synthetic
from kaayko_exp.errors import ConfigError


@pytest.fixture(scope="module")
def cov_rows():
    lay = synthetic.layout()
    idx = np.arange(lay.lake_rows, lay.global_start, 23)
    return lay, idx, synthetic.generate_rows(idx, seed=7)


def test_coverage_rows_lie_in_their_cells_and_are_physically_consistent(cov_rows):
    lay, idx, rows = cov_rows
    assert len(rows) > 5000
    keys = coverage.cell_keys(rows["month"], rows["temp_c"], rows["dew_point_c"], rows["wind_kph"], rows["gust_kph"])
    np.testing.assert_array_equal(keys, lay.cov_key[idx - lay.lake_rows])
    assert coverage.row_violations(rows) == {"dew > temp": 0, "gust < wind": 0, "humidity off Magnus": 0,
                                             "uv at night": 0}
    assert (rows["humidity"] >= 5).all()
    assert (rows["gust_kph"] <= 2 * rows["wind_kph"] + 25 + 0.1).all()
    assert (rows.loc[rows["is_day"] == 1, "uv"] > 0).mean() > 0.5  # the sun shines on most daytime rows
    np.testing.assert_array_equal(rows["paddle_score"].to_numpy(), label.paddle_score_rule(rows))
    for col, (lo, hi) in schema.RANGES.items():
        if col in rows:
            v = rows[col].to_numpy(np.float64)
            assert ((v >= lo) & (v <= hi)).all(), col
    # each station's rows: its own coordinates, its own name, dates in the cell's month
    names = {f"{s.name} ({s.koppen})": s for s in koppen.STATIONS}
    assert set(rows["lake"].astype(str)) <= set(names)
    first = rows.groupby(rows["lake"].astype(str), observed=True)["latitude"].first()
    assert all(first[n] == names[n].lat for n in first.index)
    assert (rows["datetime"].dt.month == rows["month"]).all()


def test_coverage_rows_keep_the_table_sorted_by_place_and_time():
    lay = synthetic.layout()
    rows = synthetic.generate_rows(np.arange(lay.lake_rows, lay.global_start, 3), seed=1)
    codes = rows["lake"].cat.codes.to_numpy()
    assert (np.diff(codes) >= 0).all()
    same = np.diff(codes) == 0
    assert (np.diff(rows["datetime"].to_numpy())[same] >= np.timedelta64(0)).all()


def test_generation_is_deterministic_addressable_and_leaves_the_lake_rows_alone():
    lay = synthetic.layout()
    idx = np.concatenate([np.arange(0, lay.lake_rows, 50_021), np.arange(lay.lake_rows, lay.total_rows, 9_973)])
    a = synthetic.generate_rows(idx, seed=3)
    pd.testing.assert_frame_equal(a, synthetic.generate_rows(idx, seed=3))
    # a row is the same alone, in a batch, or in reverse order
    pd.testing.assert_frame_equal(synthetic.generate_rows(idx[::-1], seed=3).iloc[::-1].reset_index(drop=True), a)
    one = synthetic.generate_rows(idx[-1:], seed=3)
    pd.testing.assert_frame_equal(one.astype(str).reset_index(drop=True),
                                  a.iloc[-1:].astype(str).reset_index(drop=True))
    other = synthetic.generate_rows(idx, seed=4)
    assert (other["temp_c"].to_numpy() != a["temp_c"].to_numpy()).mean() > 0.5
    # the lakes' rows do not depend on the coverage component
    lakes_only = idx[idx < lay.lake_rows]
    off = synthetic.generate_rows(lakes_only, seed=3, coverage_per_cell=0.0)
    on = a.iloc[: len(lakes_only)]
    pd.testing.assert_frame_equal(off.astype(str), on.astype(str))
    assert synthetic.layout(coverage_per_cell=0.0).total_rows == synthetic.DEFAULT_TOTAL_ROWS


def test_the_table_grows_by_at_most_a_quarter_and_half_coverage_gives_half_the_rows():
    lay = synthetic.layout()
    full = lay.total_rows - synthetic.DEFAULT_TOTAL_ROWS
    cells = len(np.unique(np.concatenate([coverage.station_cells(s) for s in koppen.STATIONS])))
    assert lay.global_start - lay.lake_rows == cells  # one row per plausible cell, then the global rows
    assert lay.global_rows == synthetic.GLOBAL_ROWS
    assert full <= 0.25 * synthetic.DEFAULT_TOTAL_ROWS
    half = synthetic.layout(coverage_per_cell=0.5)
    assert abs(half.global_start - half.lake_rows - cells / 2) <= 15  # rounded per station and month
    assert half.global_rows == synthetic.GLOBAL_ROWS // 2


def test_fidelity_coverage_section_reaches_every_cell_on_the_default_generator():
    cover = fidelity.coverage_results(42)
    assert [c.name for c in cover] == [s.name for s in koppen.STATIONS]
    assert all(c.plausible > 1000 and c.covered == c.plausible for c in cover)
    results = fidelity.Results()
    results.coverage = cover
    assert fidelity.failures(results) == []


def test_fidelity_coverage_section_fails_without_the_coverage_component():
    results = fidelity.Results()
    results.coverage = fidelity.coverage_results(42, 0.0)
    fails = fidelity.failures(results)
    assert len(fails) == len(koppen.STATIONS) and all(f.startswith("coverage: ") for f in fails)
    # the polar station is the least covered by the lakes alone (three polar lakes, none on an Arctic coast)
    share = {c.koppen: c.share for c in results.coverage}
    assert share["ET"] < 0.5 and max(share.values()) < 0.95
    md = "\n".join(fidelity.coverage_markdown(results.coverage, fidelity.complete_table_keys(42, 0.0)))
    assert "Uncovered cells of Utqiagvik" in md and "| polar |" in md


def test_koppen_groups_of_known_lakes_and_leaving_a_group_out():
    lakes = synthetic.layout().lakes
    clim = climate.lake_climate(lakes["lat"].to_numpy(np.float64), lakes["lng"].to_numpy(np.float64),
                                lakes["regional_pattern"].to_numpy(object), lakes["climate_zone"].to_numpy(object))
    group = dict(zip(lakes["name"], climate.koppen_group(clim, lakes["regional_pattern"].to_numpy(object))))
    assert group["Lake Mead"] == "desert" and group["Windermere"] == "oceanic"
    assert group["Taihu Lake"] == "humid_subtropical" and group["Lake Hazen"] == "polar"
    assert group["Lake Victoria"] == "tropical" and group["Lake Minnewanka"] == "continental"
    without = synthetic.layout(exclude_group="polar")
    assert "Lake Hazen" not in set(without.lakes["name"]) and "Lake Mead" in set(without.lakes["name"])
    assert "Utqiagvik (ET)" not in set(without.stations["name"]) and len(without.stations) == len(koppen.STATIONS) - 1
    assert without.lake_rows == synthetic.DEFAULT_TOTAL_ROWS  # the lake rows go to the other lakes
    rows = synthetic.generate_rows(np.arange(without.lake_rows, without.global_start, 997), seed=1, exclude_group="polar")
    assert "Utqiagvik (ET)" not in set(rows["lake"].astype(str))


def test_data_coverage_is_a_checked_config_knob(tmp_path):
    small = SampleSizeConfig(name="tiny", rows=2000)
    df, info = load_dataset(DataConfig(coverage=0.0), small, seed=1, cache_dir=tmp_path)
    assert info["source_rows"] == synthetic.DEFAULT_TOTAL_ROWS and info["coverage"] == 0.0
    assert not df["lake"].astype(str).str.endswith(")").any()
    df1, info1 = load_dataset(DataConfig(), small, seed=1, cache_dir=tmp_path)
    assert info1["source_rows"] > info["source_rows"] and info1["cache"]["key"] != info["cache"]["key"]
    assert df1["lake"].astype(str).str.endswith(")").any()  # some rows come from the reference stations
    with pytest.raises(ConfigError, match="data.coverage"):
        load_dataset(DataConfig(coverage=-1.0), small, seed=1, cache_dir=tmp_path)
    assert not list((tmp_path / "datasets").glob("*.parquet"))[2:]  # the refused load wrote nothing new
