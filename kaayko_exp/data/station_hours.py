"""Hourly rows built from a reference station's published statistics: the leave-one-climate-type-out test set.

This is deliberately *not* the synthetic generator: it shares no weather code with
:mod:`.synthetic` (only the calendar fields of :mod:`.geo`, the derived columns and the label
rule of :mod:`.label`, which are definitions, not weather). A station's year of hours
(:mod:`.koppen` normals, interpolated between mid-months) is built with textbook relations:

* air temperature: the mean daily minimum at 06 h and maximum at 15 h joined by a cosine, plus a
  day-to-day anomaly (AR(1), lag-one correlation 0.7, σ = half the station's ``spread``);
* dew point: the monthly mean plus its own day-to-day anomaly (σ 2.5 °C) and an hourly jitter
  (σ 1 °C), never above the air temperature nor the station's record;
* wind: Weibull with shape 2 and the monthly mean, 30 % stronger in the afternoon than at dawn;
  gust: wind × a gust factor 1.3–1.8 plus up to 10 km/h, capped at the station's record gust;
* humidity: Magnus over water (WMO-No. 8); cloud from the humidity; rain in near-saturated hours;
* sun: solar elevation from latitude, day and hour; UV index 12.5 · sin(elevation)^2.5 on clear sky,
  times the Kasten–Czeplak cloud factor 1 − 0.75 (cloud/100)^3.4; no UV at night;
* feels-like: the NWS heat index (Rothfusz regression) from 27 °C and 40 % humidity, the 2001
  North American wind chill at or below 10 °C with wind above 4.8 km/h, else the air temperature.

Labels come from the published rule. The rows are random (a seeded numpy Generator), not
addressable like the synthetic table, and never used to build or tune the generator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaayko_exp.data import geo, koppen, label
from kaayko_exp.data.schema import COLUMNS, DTYPES, SKILL_LEVELS

_MID_MONTH_DOY = np.array([15, 45, 74, 105, 135, 166, 196, 227, 258, 288, 319, 349], dtype=np.float64)


def _daily(values, doy: np.ndarray) -> np.ndarray:
    """Monthly normals (Jan..Dec, each at mid-month) interpolated to days of the year, cyclically."""
    v = np.asarray(values, dtype=np.float64)
    x = np.concatenate([_MID_MONTH_DOY - 365.0, _MID_MONTH_DOY, _MID_MONTH_DOY + 365.0])
    return np.interp(doy, x, np.tile(v, 3))


def _ar1(gen: np.random.Generator, n: int, sigma: float, rho: float = 0.7) -> np.ndarray:
    out = np.empty(n)
    e = gen.normal(0.0, sigma * np.sqrt(1 - rho * rho), n)
    out[0] = gen.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + e[i]
    return out


def station_rows(st: koppen.Station, *, seed: int = 0, year: int = 2023) -> pd.DataFrame:
    """One year of hourly rows (35 columns, schema dtypes) for reference station ``st``."""
    gen = np.random.default_rng([int(seed), sum(map(ord, st.name))])
    stamp = np.arange(np.datetime64(f"{year}-01-01T00"), np.datetime64(f"{year + 1}-01-01T00"), dtype="datetime64[h]")
    n = len(stamp)
    day = stamp.astype("datetime64[D]")
    doy = ((day - day.astype("datetime64[Y]")).astype(np.int64) + 1)
    month = (stamp.astype("datetime64[M]").astype(np.int64) % 12 + 1)
    hour = (stamp - day).astype(np.int64).astype(np.float64)
    d_index = (day - day[0]).astype(np.int64)
    n_days = int(d_index[-1]) + 1

    # air temperature: minimum at 06 h, maximum at 15 h, a day-to-day anomaly
    tmax, tmin = _daily(st.tmax, doy), _daily(st.tmin, doy)
    phase = np.where((hour >= 6) & (hour <= 15), (hour - 6) / 9.0, np.where(hour > 15, (hour - 15) / 15.0, (hour + 9) / 15.0))
    rising = (hour >= 6) & (hour <= 15)
    shape = np.where(rising, 0.5 - 0.5 * np.cos(np.pi * phase), 0.5 + 0.5 * np.cos(np.pi * phase))
    temp = tmin + (tmax - tmin) * shape + _ar1(gen, n_days, st.spread / 2.0)[d_index] + gen.normal(0, 0.5, n)
    temp = np.round(np.clip(temp, st.record_low, st.record_high), 1)
    dew = _daily(st.dew, doy) + _ar1(gen, n_days, 2.5)[d_index] + gen.normal(0, 1.0, n)
    dew = np.round(np.minimum(np.minimum(dew, st.dew_max), temp), 1)
    mag = lambda t: 17.625 * t / (243.04 + t)  # noqa: E731
    rh = np.clip(100.0 * np.exp(mag(dew) - mag(temp)), 5.0, 100.0)

    # wind and gust
    mean = _daily(st.wind, doy) * (1.0 + 0.15 * np.cos(2 * np.pi * (hour - 15.0) / 24.0))
    wind = np.round(np.minimum(mean / 0.8862 * gen.weibull(2.0, n), st.gust_max / 1.5), 1)  # Weibull mean = scale·Γ(1.5)
    gust = np.round(np.minimum(wind * gen.uniform(1.3, 1.8, n) + gen.uniform(0.0, 10.0, n), st.gust_max), 1)
    gust = np.maximum(gust, wind)

    # cloud, rain, sun
    cloud = np.clip(np.round(rh - 20.0 + gen.normal(0.0, 20.0, n)), 0, 100)
    raining = (rh >= 90.0) & (gen.uniform(size=n) < 0.35)
    precip = np.where(raining, np.round(np.maximum(gen.exponential(1.2, n), 0.1), 1), 0.0)
    cloud = np.where(raining, np.maximum(cloud, 70.0), cloud)
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 81.0) / 365.0)
    phi = np.deg2rad(st.lat)
    solar_hour = hour + st.lng / 15.0 - np.round(st.lng / 15.0)  # local standard time ≈ the zone's meridian
    sin_el = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(np.deg2rad((solar_hour - 12.0) * 15.0))
    is_day = sin_el > 0
    uv = np.where(is_day, np.round(12.5 * np.clip(sin_el, 0, None) ** 2.5 * (1 - 0.75 * (cloud / 100.0) ** 3.4), 1), 0.0)

    # feels-like (NWS heat index in °F inside; 2001 wind chill)
    tf = temp * 9 / 5 + 32
    hi_f = (-42.379 + 2.04901523 * tf + 10.14333127 * rh - 0.22475541 * tf * rh - 6.83783e-3 * tf * tf
            - 5.481717e-2 * rh * rh + 1.22874e-3 * tf * tf * rh + 8.5282e-4 * tf * rh * rh - 1.99e-6 * tf * tf * rh * rh)
    v016 = np.maximum(wind, 0.0) ** 0.16
    chill = 13.12 + 0.6215 * temp - 11.37 * v016 + 0.3965 * temp * v016
    feels = np.where((temp >= 27) & (rh >= 40), (hi_f - 32) * 5 / 9, np.where((temp <= 10) & (wind > 4.8), chill, temp))
    feels = np.round(np.clip(feels, -80.0, 70.0), 1)
    fog = ~raining & (rh >= 97) & (wind < 5)
    vis = np.round(np.where(fog, 0.5, np.where(raining, np.clip(10.0 - 2.0 * precip, 0.5, 10.0), 10.0)), 1)
    snow = raining & (temp <= 0.5)
    condition = np.select([snow, raining & (precip >= 2.0), raining, fog, cloud >= 85, cloud >= 50, cloud >= 20],
                          ["Moderate snow", "Moderate or heavy rain shower", "Patchy rain possible", "Fog", "Overcast",
                           "Cloudy", "Partly cloudy"], default="Sunny")
    condition = np.where((condition == "Sunny") & ~is_day, "Clear", condition)

    lat = np.full(n, st.lat)
    zone = geo.climate_zone(lat[:1])
    region, pattern = geo.region_and_pattern(lat[:1], np.array([st.lng]))
    scheme = int(geo.season_scheme(lat[:1], zone, pattern)[0])
    name = f"{st.name} station"
    df = pd.DataFrame({
        "lake": name, "datetime": stamp.astype("datetime64[ns]"), "temp_c": temp, "wind_kph": wind,
        "wind_dir": np.asarray(["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW",
                                "NW", "NNW"], dtype=object)[gen.integers(0, 16, n)],
        "humidity": np.round(rh), "cloud": cloud, "uv": uv, "precip_mm": precip, "condition": condition,
        "pressure_mb": np.round(1013.0 + gen.normal(0.0, 6.0, n)), "dew_point_c": dew, "feelslike_c": feels,
        "gust_kph": gust, "is_day": is_day.astype(np.int8), "will_it_rain": (raining & ~snow).astype(np.int8),
        "will_it_snow": snow.astype(np.int8), "vis_km": vis,
        "season": np.asarray(geo.SEASONS, dtype=object)[geo.SEASON_TABLE[scheme, month - 1]],
        "season_intensity": np.asarray(geo.SEASON_INTENSITIES, dtype=object)[geo.INTENSITY_TABLE[scheme, month - 1]],
        "hemisphere": geo.hemisphere(lat), "climate_zone": zone[0], "region": region[0],
        "regional_pattern": pattern[0], "latitude": lat, "longitude": st.lng, "month": month, "day_of_year": doy,
        "lake_region": st.name.split()[0], "lake_type": "Lake", "base_lake_name": name,
    })
    df["estimated_water_temp_c"] = label.estimated_water_temp(temp, month, lat, df["climate_zone"],
                                                              df["regional_pattern"], df["hemisphere"])
    df["estimated_wave_height_m"] = label.estimated_wave_height(wind)
    df["paddle_score"] = label.paddle_score_rule(df)
    df["skill_level"] = pd.Categorical(label.skill_level(df["paddle_score"]), categories=list(SKILL_LEVELS))
    df = df[list(COLUMNS)]
    return df.astype({c: DTYPES[c] for c in COLUMNS if str(df[c].dtype) != DTYPES[c]})


def group_rows(group: str, *, seed: int = 0) -> pd.DataFrame:
    """A year of hourly rows for every reference station of a Köppen group (:data:`koppen.GROUPS`)."""
    return pd.concat([station_rows(st, seed=seed) for st in koppen.stations(group)], ignore_index=True)
