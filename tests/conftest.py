"""Shared test helpers: a tiny plausible 35-column Kaayko frame and a checkpointing fit callback."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.data import schema
from kaayko_exp.data.label import estimated_wave_height, paddle_score_rule, skill_level
from kaayko_exp.models.callbacks import FitCallback

DEFAULT_LAKES = ("Lake Mead", "Windermere", "Lake Powell", "Jenny Lake", "Lake Taupo", "Lake Malawi",
                 "Lake Baikal", "Lake Titicaca")
_ZONES = {"Lake Mead": "subtropical", "Windermere": "temperate", "Lake Powell": "subtropical",
          "Jenny Lake": "temperate", "Lake Taupo": "temperate", "Lake Malawi": "tropical",
          "Lake Baikal": "polar", "Lake Titicaca": "equatorial"}
_CONDITIONS = ("Sunny", "Clear", "Partly cloudy", "Overcast", "Patchy rain possible", "Moderate rain", "Fog",
               "Light snow")


def make_frame(n: int = 2000, seed: int = 0, lakes: Sequence[str] = DEFAULT_LAKES,
               start: str = "2023-01-01") -> pd.DataFrame:
    """``n`` hourly rows spread over ``lakes``, 35 columns in schema order/dtypes, labels from the rule."""
    rng = np.random.default_rng(seed)
    lake_idx = np.sort(rng.integers(0, len(lakes), n))
    lake = np.asarray(lakes, dtype=object)[lake_idx]
    # each lake gets its own run of hours; months vary across the frame
    per_lake_pos = np.concatenate([np.arange((lake_idx == j).sum()) for j in range(len(lakes))])
    dt = pd.Timestamp(start) + pd.to_timedelta(per_lake_pos * 7, unit="h") \
        + pd.to_timedelta(lake_idx * 13, unit="D")
    month = dt.month.to_numpy()
    temp = np.round(rng.normal(18, 9, n), 1)
    wind = np.round(np.abs(rng.gamma(2.0, 6.0, n)), 1)
    rain = np.round(np.where(rng.random(n) < 0.75, 0.0, rng.exponential(2.5, n)), 1)
    cloud = rng.integers(0, 101, n)
    uv = np.round(rng.uniform(0, 11, n), 1)
    humidity = rng.integers(20, 101, n)
    zone = np.array([_ZONES.get(name, "temperate") for name in lake], dtype=object)
    seasons = np.array(["winter", "winter", "spring", "spring", "spring", "summer", "summer", "summer",
                        "autumn", "autumn", "autumn", "winter"], dtype=object)
    season = seasons[month - 1]
    lat = np.array([zlib.crc32(name.encode()) % 120 - 60 for name in lakes], dtype=np.float64)[lake_idx] + 0.5
    frame = pd.DataFrame({
        "lake": lake,
        "datetime": dt.to_numpy(),
        "temp_c": temp,
        "wind_kph": wind,
        "wind_dir": rng.choice(schema.WIND_DIRECTIONS, n),
        "humidity": humidity,
        "cloud": cloud,
        "uv": uv,
        "precip_mm": rain,
        "condition": rng.choice(_CONDITIONS, n),
        "pressure_mb": np.round(rng.normal(1013, 8, n), 1),
        "dew_point_c": np.round(temp - rng.uniform(0, 15, n), 1),
        "feelslike_c": np.round(temp + rng.normal(0, 2, n), 1),
        "gust_kph": np.round(wind * rng.uniform(1.0, 1.8, n), 1),
        "is_day": (dt.hour.to_numpy() >= 7) & (dt.hour.to_numpy() < 19),
        "will_it_rain": rain > 0,
        "will_it_snow": (rain > 0) & (temp < 0),
        "vis_km": np.round(np.clip(rng.normal(9, 2, n), 0.5, 10), 1),
        "estimated_water_temp_c": np.round(temp - 3, 1),
        "estimated_wave_height_m": estimated_wave_height(wind),
        "paddle_score": np.zeros(n),
        "skill_level": "Advanced",
        "season": season,
        "season_intensity": rng.choice(schema.SEASON_INTENSITIES, n),
        "hemisphere": np.where(lat >= 0, "northern", "southern"),
        "climate_zone": zone,
        "region": np.where(lat >= 0, "North", "South"),
        "regional_pattern": rng.choice(schema.REGIONAL_PATTERNS, n),
        "latitude": lat,
        "longitude": lat * 2.0 - 10.0,
        "month": month,
        "day_of_year": dt.day_of_year.to_numpy(),
        "lake_region": lake,
        "lake_type": np.where(lake_idx % 3 == 0, "Reservoir", "Lake"),
        "base_lake_name": lake,
    })
    for col in schema.COLUMNS:
        frame[col] = frame[col].astype(schema.DTYPES[col])
    frame["paddle_score"] = paddle_score_rule(frame).astype(np.float32)
    frame["skill_level"] = pd.Categorical(skill_level(frame["paddle_score"]), categories=schema.SKILL_LEVELS)
    return frame[list(schema.COLUMNS)]


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame(2000, seed=0)


class Killed(Exception):
    """Simulates a kill -9 in the middle of a fit."""


class DiskHooks(FitCallback):
    """A fit callback and resume source for tests: save states under ``root``, optionally 'die' at a step.

    Pass it as ``model.fit(..., callbacks=[hooks], resume=hooks)``. ``kill_at=(key, done)`` raises
    :class:`Killed` right after that step (and after its checkpoint landed). ``saved`` maps key ->
    (directory, done) of the newest state; pass a previous instance's ``saved`` to resume from it.
    ``steps`` records ``(key, done, total, final)`` for each step and each kept finished sub-fit.
    """

    def __init__(self, root: Path, every: int = 0, kill_at: Optional[tuple[str, int]] = None,
                 saved: Optional[dict] = None):
        self.root = Path(root)
        self.every = self.interval = every
        self.kill_at = kill_at
        self.saved: dict[str, tuple[Path, int]] = dict(saved or {})
        self.steps: list[tuple[str, int, int, bool]] = []
        self.scores: list[Optional[float]] = []
        self.restored: list[str] = []
        self.totals: dict[str, int] = {}
        self._n = 0

    def restore(self, key):
        hit = self.saved.get(key)
        if hit is not None:
            self.restored.append(key)
        return hit

    def before_fit(self, key, total, unit="step"):
        self.totals[key] = total

    def after_step(self, key, done, total, score=None, save=None):
        self.steps.append((key, done, total, False))
        self.scores.append(score)
        if save is not None and self.every and done < total and done % self.every == 0:
            self._save(key, done, save)
        if self.kill_at == (key, done):
            raise Killed(f"killed at {key} {done}")

    def after_fit(self, key, save=None):
        if save is not None:
            total = self.totals[key]
            self.steps.append((key, total, total, True))
            self._save(key, total, save)

    def _save(self, key, done, save):
        self._n += 1
        d = self.root / key.replace("/", "__") / f"{self._n:04d}-{done}"
        d.mkdir(parents=True)
        save(d)
        self.saved[key] = (d, done)
