"""Location-derived fields of a lake: climate zone, hemisphere, region, regional pattern, seasons.

The rules reproduce what the real sample shows (Lake Mead at 36.1° N is subtropical,
Lake Michigan at 43.5° N temperate; the USA below 49° N is ``North_America_South``
with a ``varied`` pattern, Canada ``North_America_North``/``continental``, Europe
``temperate``; meteorological seasons with early/mid/late months) and extend them
to the rest of the globe (tropical wet/dry seasons, the South-Asian monsoon,
equatorial lakes, polar lakes, the southern hemisphere's shifted seasons).
"""

from __future__ import annotations

import numpy as np

from kaayko_exp.data.schema import (
    CLIMATE_ZONES,
    REGIONAL_PATTERNS,
    SEASON_INTENSITIES,
    SEASONS,
)

# (name, pattern, lat_min, lat_max, lng_min, lng_max): first match wins.
_REGION_BOXES: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("Antarctica", "continental", -90, -60, -180, 180),
    ("North_America_North", "continental", 49, 90, -170, -50),
    ("North_America_South", "varied", 24, 49, -170, -50),
    ("Central_America", "varied", 7, 24, -120, -58),
    ("South_America", "varied", -60, 13, -90, -30),
    ("Europe", "temperate", 35, 72, -32, 45),
    ("Middle_East", "varied", 12, 42, 34, 62),
    ("Africa", "varied", -36, 38, -20, 52),
    ("South_Asia", "monsoon", 5, 37, 60, 92),
    ("Southeast_Asia", "monsoon", -11, 23, 92, 141),
    ("East_Asia", "monsoon", 18, 54, 92, 150),
    ("Central_Asia", "continental", 35, 56, 45, 92),
    ("North_Asia", "continental", 50, 90, 40, 180),
    ("Oceania", "temperate", -60, -10, 110, 180),
)

# Season schemes (rows) × month 1..12 (columns): index into SEASONS / SEASON_INTENSITIES.
SCHEME_NORTH, SCHEME_SOUTH, SCHEME_MONSOON, SCHEME_TROPICAL_NORTH, SCHEME_TROPICAL_SOUTH, SCHEME_EQUATORIAL = range(6)


def _table(rows: list[list[str]], vocab: tuple[str, ...]) -> np.ndarray:
    return np.array([[vocab.index(v) for v in row] for row in rows], dtype=np.int8)


_N = ["winter", "winter", "spring", "spring", "spring", "summer", "summer", "summer",
      "autumn", "autumn", "autumn", "winter"]
_S = ["summer", "summer", "autumn", "autumn", "autumn", "winter", "winter", "winter",
      "spring", "spring", "spring", "summer"]
_MONSOON = ["winter", "winter", "summer", "summer", "summer", "monsoon", "monsoon", "monsoon",
            "monsoon", "autumn", "autumn", "winter"]
_TROP_N = ["dry_season"] * 4 + ["wet_season"] * 6 + ["dry_season"] * 2
_TROP_S = ["wet_season"] * 4 + ["dry_season"] * 6 + ["wet_season"] * 2
_EQ = ["equatorial"] * 12
_MET = ["mid", "late", "early", "mid", "late", "early", "mid", "late", "early", "mid", "late", "early"]
_MONSOON_I = ["mid", "late", "early", "mid", "late", "early", "mid", "mid", "late", "early", "late", "early"]
_TROP_I = ["mid", "mid", "late", "late", "early", "early", "mid", "mid", "late", "late", "early", "early"]
_TROP_IS = ["mid", "mid", "late", "late", "early", "early", "mid", "mid", "late", "late", "early", "early"]
_EQ_I = ["early"] * 4 + ["mid"] * 4 + ["late"] * 4

SEASON_TABLE = _table([_N, _S, _MONSOON, _TROP_N, _TROP_S, _EQ], SEASONS)
INTENSITY_TABLE = _table([_MET, _MET, _MONSOON_I, _TROP_I, _TROP_IS, _EQ_I], SEASON_INTENSITIES)


def hemisphere(lat: np.ndarray) -> np.ndarray:
    """``southern`` below the equator, else ``northern`` (object array)."""
    return np.where(np.asarray(lat, dtype=np.float64) < 0, "southern", "northern").astype(object)


def climate_zone(lat: np.ndarray) -> np.ndarray:
    """Zone by |latitude|: <10 equatorial, <23.5 tropical, <40 subtropical, <66.5 temperate, else polar."""
    a = np.abs(np.asarray(lat, dtype=np.float64))
    idx = np.select(
        [a < 10, a < 23.5, a < 40, a < 66.5],
        [CLIMATE_ZONES.index(z) for z in ("equatorial", "tropical", "subtropical", "temperate")],
        default=CLIMATE_ZONES.index("polar"),
    )
    return np.asarray(CLIMATE_ZONES, dtype=object)[idx]


def region_and_pattern(lat: np.ndarray, lng: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broad region name and regional weather pattern from coordinates."""
    lat = np.asarray(lat, dtype=np.float64)
    lng = np.asarray(lng, dtype=np.float64)
    region = np.full(lat.shape, "Other", dtype=object)
    pattern = np.full(lat.shape, "varied", dtype=object)
    done = np.zeros(lat.shape, dtype=bool)
    for name, pat, la0, la1, lo0, lo1 in _REGION_BOXES:
        hit = ~done & (lat >= la0) & (lat < la1) & (lng >= lo0) & (lng < lo1)
        region[hit] = name
        pattern[hit] = pat
        done |= hit
    assert set(pattern) <= set(REGIONAL_PATTERNS)
    return region, pattern


def season_scheme(lat: np.ndarray, zone: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Which season calendar a lake follows (row of SEASON_TABLE)."""
    lat = np.asarray(lat, dtype=np.float64)
    zone = np.asarray(zone, dtype=object)
    pattern = np.asarray(pattern, dtype=object)
    south = lat < 0
    monsoon = (pattern == "monsoon") & ~south & np.isin(zone, ("tropical", "subtropical"))
    return np.select(
        [zone == "equatorial", monsoon, (zone == "tropical") & ~south, zone == "tropical", south],
        [SCHEME_EQUATORIAL, SCHEME_MONSOON, SCHEME_TROPICAL_NORTH, SCHEME_TROPICAL_SOUTH, SCHEME_SOUTH],
        default=SCHEME_NORTH,
    ).astype(np.int8)
