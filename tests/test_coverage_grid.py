"""The test climates (kaayko_exp/data/koppen.py) and the coverage grid's plausibility rules (coverage.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import coverage, koppen


def _rothfusz_heat_index_c(t_c: float, rh: float) -> float:
    """NWS heat index (Rothfusz 1990 regression, °F inside), written out here independently of the package."""
    t = t_c * 9 / 5 + 32
    hi = (-42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh - 6.83783e-3 * t * t
          - 5.481717e-2 * rh * rh + 1.22874e-3 * t * t * rh + 8.5282e-4 * t * rh * rh - 1.99e-6 * t * t * rh * rh)
    return (hi - 32) * 5 / 9


def test_every_koppen_group_of_the_issue_has_a_station_with_consistent_normals():
    assert {s.koppen for s in koppen.STATIONS} >= {"Af", "Am", "Aw", "BWh", "BWk", "Cfa", "Cwa", "Cfb", "Cfc",
                                                     "Dfa", "Dfb", "Dfc", "Dwa", "ET"}
    for s in koppen.STATIONS:
        assert len(s.tmax) == len(s.tmin) == len(s.dew) == len(s.wind) == 12, s.name
        assert all(lo < hi for lo, hi in zip(s.tmin, s.tmax)), s.name
        assert all(d <= hi for d, hi in zip(s.dew, s.tmax)), s.name  # mean dew point below the mean maximum
        assert s.record_low <= min(s.tmin) and s.record_high >= max(s.tmax), s.name
        assert s.dew_max >= max(s.dew) and s.gust_max > max(s.wind), s.name
        assert s.source
    # the published extremes the issue names
    assert max(s.dew_max for s in koppen.STATIONS) >= 35.0  # Dhahran, 8 July 2003
    assert sum(s.dew_max >= 28.0 for s in koppen.STATIONS) >= 4
    assert min(s.record_low for s in koppen.STATIONS) <= -48.0
    assert max(s.gust_max for s in koppen.STATIONS) >= 200.0
    with pytest.raises(ValueError, match="unknown climate group"):
        koppen.stations("savanna")
    assert {s.group for s in koppen.stations(exclude_group="polar")} == set(koppen.GROUPS) - {"polar"}


def test_relative_humidity_matches_the_tabulated_saturation_pressures():
    # WMO-No. 8 tables: e_s(20 °C) = 23.37 hPa, e_s(10 °C) = 12.27 hPa -> 52.5 %; e_s(30) = 42.43 hPa
    assert coverage.rh(20.0, 10.0) == pytest.approx(100 * 12.27 / 23.37, abs=0.3)
    assert coverage.rh(30.0, 30.0) == pytest.approx(100.0)


def test_plausibility_rules_on_hand_made_cells():
    def one(t, d, w, g):  # lower edges; cells one step wide
        return bool(coverage.plausible(np.array([t]), np.array([t + 2.5]), np.array([d]), np.array([d + 2.5]),
                                       np.array([w]), np.array([w + 5.0]), np.array([g]), np.array([g + 10.0]))[0])

    assert one(20.0, 15.0, 10.0, 20.0)
    assert not one(20.0, 25.0, 10.0, 20.0)  # dew point above the air temperature
    assert one(20.0, 20.0, 10.0, 20.0)  # saturated air is possible (dew = temp on the shared edge)
    assert not one(30.0, 10.0, 40.0, 20.0)  # gust below the wind
    assert not one(30.0, 10.0, 5.0, 60.0)  # gust 60 km/h on a 5-10 km/h wind: more than 2 x wind + 25
    assert one(30.0, 10.0, 5.0, 40.0)
    # 45 °C air with a -17.5 °C dew point is 1.7 % humidity (e_s 95.8 hPa vs 1.6 hPa): below 5 %
    assert not one(45.0, -20.0, 10.0, 20.0)
    assert one(45.0, -2.5, 10.0, 20.0)  # 0 °C dew point at 45 °C: 6.1 / 95.8 = 6.4 %


def test_station_cells_obey_the_rules_and_the_envelope():
    st = next(s for s in koppen.STATIONS if s.koppen == "Cwa")
    keys = coverage.station_cells(st)
    gi = keys % 200
    wi = keys // 200 % 200
    di = keys // 200**2 % 200 - 60
    ti = keys // 200**3 % 200 - 60
    month = keys // 200**4
    assert set(month) == set(range(1, 13))
    assert (di * 2.5 <= ti * 2.5 + 2.5).all()  # dew ≤ temp somewhere in the cell
    assert ((gi + 1) * 10 >= wi * 5).all()  # gust ≥ wind somewhere in the cell
    assert ((wi * 5) <= max(3 * max(st.wind), 20)).all()
    jul = keys[month == 7]
    t_jul = jul // 200**3 % 200 - 60
    # July: 27.0 - 3 … 31.6 + 3 °C at the Hong Kong Observatory
    assert t_jul.min() * 2.5 <= 24.0 and (t_jul.max() + 1) * 2.5 >= 34.6
    assert t_jul.min() * 2.5 >= 24.0 - 2.5 and t_jul.max() * 2.5 <= 34.6


def test_the_grid_reaches_the_humid_heat_and_the_polar_cold_of_the_issue():
    hot = [s for s in koppen.STATIONS if s.koppen == "BWh"]
    keys = np.concatenate([coverage.station_cells(s) for s in hot])
    d = (keys // 200**2 % 200 - 60) * 2.5
    t = (keys // 200**3 % 200 - 60) * 2.5
    assert ((d >= 27.5) & (t >= 35.0)).any()  # dew point ≥ 28 °C in 35 °C air
    top = max(_rothfusz_heat_index_c(tt + 2.5, min(100.0, coverage.rh(tt + 2.5, dd + 2.5)))
              for tt, dd in zip(t, d) if dd <= tt)
    assert top > 50.0  # heat index above 50 °C
    cold = coverage.station_cells(next(s for s in koppen.STATIONS if s.koppen == "Dfc"))
    assert ((cold // 200**3 % 200 - 60) * 2.5).min() <= -35.0


def test_coverage_counts_cells_that_hold_a_row():
    st = next(s for s in koppen.STATIONS if s.koppen == "Af")
    cells = coverage.station_cells(st)
    gi, wi = cells % 200, cells // 200 % 200
    di, ti, month = cells // 200**2 % 200 - 60, cells // 200**3 % 200 - 60, cells // 200**4
    rows = pd.DataFrame({"month": month, "temp_c": ti * 2.5 + 1.2, "dew_point_c": di * 2.5 + 0.1,
                         "wind_kph": wi * 5 + 4.9, "gust_kph": gi * 10 + 9.9})
    full = coverage.coverage(coverage.table_keys(rows), [st])[0]
    assert (full.plausible, full.covered) == (len(cells), len(cells)) and full.share == 1.0
    part = coverage.coverage(coverage.table_keys(rows.iloc[::2]), [st])[0]
    assert part.covered == math.ceil(len(cells) / 2)
    assert len(coverage.uncovered(coverage.table_keys(rows.iloc[::2]), st, limit=3)) == 3


def test_row_violations_finds_each_broken_rule():
    ok = pd.DataFrame({"temp_c": [20.0], "dew_point_c": [10.0], "humidity": [53], "wind_kph": [10.0],
                       "gust_kph": [15.0], "uv": [0.0], "is_day": [0]})
    assert coverage.row_violations(ok) == {"dew > temp": 0, "gust < wind": 0, "humidity off Magnus": 0,
                                           "uv at night": 0}
    bad = ok.assign(dew_point_c=21.0, gust_kph=5.0, humidity=90, uv=2.0)
    assert all(v == 1 for v in coverage.row_violations(bad).values())
