"""The published Kaayko label rule and the derived columns, vectorised.

``paddle_score_rule`` reproduces every ``paddle_score`` in the real sample;
``skill_level`` maps scores to the four skill classes. The derived-column
formulas live here too so training data, synthetic data and prediction requests
all compute them with the same code.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from kaayko_exp.data.schema import SKILL_LEVELS


def _col(frame: Mapping[str, Any], name: str, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(frame[name], dtype=dtype)


def _text(frame: Mapping[str, Any], name: str) -> np.ndarray:
    return np.asarray(frame[name], dtype=object).astype(str)


def round_to_half(score: np.ndarray) -> np.ndarray:
    """Round to the nearest 0.5 (halves to even, as Python's ``round``) and clip to [1, 5]."""
    return np.clip(np.round(np.asarray(score, dtype=np.float64) * 2.0) / 2.0, 1.0, 5.0)


def weather_points(frame: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The rule's points that depend on the weather alone: ``temp``, ``wind``, ``rain``, ``uv``, ``cloud``."""
    temp = _col(frame, "temp_c")
    wind = _col(frame, "wind_kph")
    rain = _col(frame, "precip_mm")
    uv = _col(frame, "uv")
    cloud = _col(frame, "cloud")
    temp_pts = np.select(
        [
            (temp >= 20) & (temp <= 25),
            ((temp >= 18) & (temp < 20)) | ((temp > 25) & (temp <= 28)),
            ((temp >= 15) & (temp < 18)) | ((temp > 28) & (temp <= 32)),
            ((temp >= 12) & (temp < 15)) | ((temp > 32) & (temp <= 35)),
            ((temp >= 8) & (temp < 12)) | ((temp > 35) & (temp <= 38)),
        ],
        [1.0, 0.5, 0.0, -0.5, -1.0],
        default=-2.0,
    )
    wind_pts = np.select(
        [(wind >= 5) & (wind <= 15), wind < 5, wind <= 20, wind <= 30, wind <= 40],
        [0.5, 0.0, 0.0, -0.5, -1.0],
        default=-2.0,
    )
    rain_pts = np.select(
        [rain == 0, rain <= 1, rain <= 3, rain <= 8], [0.5, 0.0, -0.5, -1.0], default=-1.5
    )
    uv_pts = np.where(uv > 8, -0.5, 0.0)
    cloud_pts = np.where(cloud < 20, 0.2, np.where(cloud > 80, -0.2, 0.0))
    return {"temp": temp_pts, "wind": wind_pts, "rain": rain_pts, "uv": uv_pts, "cloud": cloud_pts}


def raw_rule_score(frame: Mapping[str, Any]) -> np.ndarray:
    """The rule's score before rounding and clipping (points summed in the published order)."""
    w = weather_points(frame)
    temp = _col(frame, "temp_c")
    rain = _col(frame, "precip_mm")
    season = _text(frame, "season")
    zone = _text(frame, "climate_zone")
    monsoon = np.where((season == "monsoon") & (rain > 5), -0.5, 0.0)
    warm_season = np.isin(season, ("summer", "dry_season")) & np.isin(zone, ("temperate", "subtropical"))
    tropical_winter = (season == "winter") & (zone == "tropical")
    season_pts = np.where(warm_season, 0.2, np.where(tropical_winter, 0.3, 0.0))
    zone_pts = np.where(zone == "equatorial", 0.1, np.where((zone == "polar") & (temp > 10), 0.3, 0.0))
    return 3.0 + w["temp"] + w["wind"] + w["rain"] + monsoon + season_pts + zone_pts + w["uv"] + w["cloud"]


def paddle_score_rule(frame: Mapping[str, Any]) -> np.ndarray:
    """The published label rule: a score in 1.0…5.0 on the 0.5 grid (float64 array)."""
    return round_to_half(raw_rule_score(frame))


def skill_level(score: Any) -> np.ndarray:
    """Skill class of a score: ≥4.5 Beginner, ≥3.5 Intermediate, ≥2.5 Advanced, else Expert Only."""
    s = np.asarray(score, dtype=np.float64)
    idx = (s >= 2.5).astype(np.int8) + (s >= 3.5) + (s >= 4.5)
    return np.asarray(SKILL_LEVELS, dtype=object)[idx]


def estimated_wave_height(wind_kph: Any) -> np.ndarray:
    """Wave height in metres: 0.0016 · wind^1.2, capped at 3."""
    wind = np.clip(np.asarray(wind_kph, dtype=np.float64), 0.0, None)
    return np.minimum(0.0016 * wind**1.2, 3.0)


# 2·sin((month − 4)·30°) per month, computed with Python's math module exactly as the
# original collector did (numpy's vectorised sin can differ in the last bit, which
# flips the 0.1 rounding of a few hundred sample rows).
_SEASONAL_BY_MONTH = np.array(
    [0.0] + [2.0 * math.sin(math.radians((m - 4) * 30)) for m in range(1, 13)], dtype=np.float64
)


def _one_decimal_float64(values: Any) -> np.ndarray:
    """float64 view of one-decimal measurements; float32 input is snapped back to its decimal."""
    arr = np.asarray(values)
    if arr.dtype == np.float32:
        return np.round(arr.astype(np.float64), 1)
    return np.asarray(arr, dtype=np.float64)


def round_one_decimal(x: Any) -> np.ndarray:
    """Round to one decimal exactly like Python's ``round(x, 1)`` (correctly rounded), vectorised.

    ``np.round`` multiplies by 10 first, and that product is itself rounded, so values
    within an ulp of a ``.x5`` boundary can go the wrong way. Here ``10·x`` is formed
    exactly as ``s + err`` (TwoSum of ``8x`` and ``2x``, both exact), and the fraction
    is compared with one half using the exact error term.
    """
    x = np.asarray(x, dtype=np.float64)
    a, b = x * 8.0, x * 2.0
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    k = np.floor(s)
    frac = s - k  # exact
    half = frac == 0.5
    up = (frac > 0.5) | (half & (err > 0)) | (half & (err == 0) & (np.mod(k, 2) == 1))
    out = (k + up) / 10.0
    return np.where(np.isfinite(x), out, x)


def estimated_water_temp(
    temp_c: Any, month: Any, latitude: Any, climate_zone: Any, regional_pattern: Any,
    hemisphere: Any, *, floor_at_zero: bool = True,
) -> np.ndarray:
    """Estimated water temperature (°C, one decimal).

    Air temperature − 3 (−2 tropical, −4 monsoon pattern, −6 polar) + 2·sin((month−4)·30°)
    (sign flipped in the southern hemisphere) − max(0, 0.1·(|lat|−20)), summed in that
    order and rounded like Python's ``round(x, 1)``; this reproduces every sample value.
    The original let this fall to −41 °C; liquid water does not go below ~0 °C, so by
    default the result is floored at 0.
    """
    temp = _one_decimal_float64(temp_c)
    zone = np.asarray(climate_zone, dtype=object).astype(str)
    pattern = np.asarray(regional_pattern, dtype=object).astype(str)
    south = np.asarray(hemisphere, dtype=object).astype(str) == "southern"
    offset = np.where(zone == "tropical", -2.0, np.where(zone == "polar", -6.0, -3.0))
    offset = np.where((pattern == "monsoon") & (zone != "polar"), -4.0, offset)
    month_idx = np.clip(np.asarray(month, dtype=np.int64), 0, 12)
    seasonal = _SEASONAL_BY_MONTH[month_idx]
    seasonal = np.where(south, -seasonal, seasonal)
    lat_pen = np.maximum(0.0, 0.1 * (np.abs(np.asarray(latitude, dtype=np.float64)) - 20.0))
    water = round_one_decimal(temp + offset + seasonal - lat_pen)
    return np.maximum(water, 0.0) if floor_at_zero else water
