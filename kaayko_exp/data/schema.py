"""The Kaayko training table: 35 columns, their dtypes, roles and plausible ranges.

This module is the single description of the table. Loaders validate against it,
the synthetic generator produces it, features read roles from it and the
prediction service checks request values against ``RANGES``.
"""

from __future__ import annotations

from typing import Any

# Column order as the original collector wrote it.
COLUMNS: tuple[str, ...] = (
    "lake", "datetime", "temp_c", "wind_kph", "wind_dir", "humidity", "cloud", "uv",
    "precip_mm", "condition", "pressure_mb", "dew_point_c", "feelslike_c", "gust_kph",
    "is_day", "will_it_rain", "will_it_snow", "vis_km", "estimated_water_temp_c",
    "estimated_wave_height_m", "paddle_score", "skill_level", "season", "season_intensity",
    "hemisphere", "climate_zone", "region", "regional_pattern", "latitude", "longitude",
    "month", "day_of_year", "lake_region", "lake_type", "base_lake_name",
)

TARGET = "paddle_score"
# Columns computed from the label: never features (label leakage).
LABEL_DERIVED: frozenset[str] = frozenset({"paddle_score", "skill_level"})
# Identify a row; carried through predictions, never features.
ID_COLUMNS: tuple[str, ...] = ("lake", "datetime")
# Columns derived from other columns by published formulas (recomputed when missing).
DERIVED_COLUMNS: tuple[str, ...] = ("estimated_water_temp_c", "estimated_wave_height_m")

# In-memory dtypes: float32 for one-decimal measurements, float64 where float32 would
# lose digits (coordinates, the unrounded wave height), small ints, pandas categoricals.
DTYPES: dict[str, str] = {
    "lake": "category",
    "datetime": "datetime64[ns]",
    "temp_c": "float32",
    "wind_kph": "float32",
    "wind_dir": "category",
    "humidity": "int8",
    "cloud": "int8",
    "uv": "float32",
    "precip_mm": "float32",
    "condition": "category",
    "pressure_mb": "float32",
    "dew_point_c": "float32",
    "feelslike_c": "float32",
    "gust_kph": "float32",
    "is_day": "int8",
    "will_it_rain": "int8",
    "will_it_snow": "int8",
    "vis_km": "float32",
    "estimated_water_temp_c": "float32",
    "estimated_wave_height_m": "float64",
    "paddle_score": "float32",
    "skill_level": "category",
    "season": "category",
    "season_intensity": "category",
    "hemisphere": "category",
    "climate_zone": "category",
    "region": "category",
    "regional_pattern": "category",
    "latitude": "float64",
    "longitude": "float64",
    "month": "int8",
    "day_of_year": "int16",
    "lake_region": "category",
    "lake_type": "category",
    "base_lake_name": "category",
}

CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if DTYPES[c] == "category")
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if DTYPES[c].startswith(("float", "int"))
)

# Known category levels (fixed vocabularies). Open vocabularies (lake names,
# regions, conditions) are learned from the training data by the FeatureSpec.
WIND_DIRECTIONS: tuple[str, ...] = (
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
    "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW",
)
SKILL_LEVELS: tuple[str, ...] = ("Expert Only", "Advanced", "Intermediate", "Beginner")
SEASONS: tuple[str, ...] = (
    "spring", "summer", "autumn", "winter", "dry_season", "wet_season", "equatorial", "monsoon",
)
SEASON_INTENSITIES: tuple[str, ...] = ("early", "mid", "late")
HEMISPHERES: tuple[str, ...] = ("northern", "southern")
CLIMATE_ZONES: tuple[str, ...] = ("tropical", "subtropical", "temperate", "polar", "equatorial")
REGIONAL_PATTERNS: tuple[str, ...] = ("varied", "monsoon", "temperate", "continental")
# Categorical columns whose values must come from a fixed vocabulary.
FIXED_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "wind_dir": WIND_DIRECTIONS,
    "season": SEASONS,
    "season_intensity": SEASON_INTENSITIES,
    "hemisphere": HEMISPHERES,
    "climate_zone": CLIMATE_ZONES,
    "regional_pattern": REGIONAL_PATTERNS,
}

# Physically plausible ranges (inclusive) used to refuse nonsense in prediction
# requests and to sanity-check loaded data. Wider than anything seen in the sample.
RANGES: dict[str, tuple[float, float]] = {
    "temp_c": (-60.0, 60.0),
    "wind_kph": (0.0, 250.0),
    "humidity": (0.0, 100.0),
    "cloud": (0.0, 100.0),
    "uv": (0.0, 20.0),
    "precip_mm": (0.0, 300.0),
    "pressure_mb": (850.0, 1090.0),
    "dew_point_c": (-80.0, 40.0),
    "feelslike_c": (-80.0, 70.0),
    "gust_kph": (0.0, 300.0),
    "is_day": (0.0, 1.0),
    "will_it_rain": (0.0, 1.0),
    "will_it_snow": (0.0, 1.0),
    "vis_km": (0.0, 100.0),
    "estimated_water_temp_c": (-70.0, 60.0),  # what the label rule derives from temp_c in range
    "estimated_wave_height_m": (0.0, 3.0),
    "paddle_score": (1.0, 5.0),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "month": (1.0, 12.0),
    "day_of_year": (1.0, 366.0),
}


def lake_codes(lakes: Any) -> tuple[Any, list[str]]:
    """Integer code per row and the lake names (as text, sorted), so that ``names[codes[i]]`` is row i's lake.

    Works on a categorical column without turning every row into a Python string (only the levels are)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(lakes) if not isinstance(lakes, pd.Series) else lakes,
                                  use_na_sentinel=False)
    names = np.asarray([str(u) for u in np.asarray(uniques, dtype=object)], dtype=object)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[np.asarray(codes, dtype=np.int64)], [str(n) for n in names[order]]
