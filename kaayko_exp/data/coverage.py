"""The coverage grid: which combinations of the rule's main inputs real weather reaches, per climate type.

The grid spans air temperature × dew point × wind × gust × month. A cell is one step of each
axis: the rule (:mod:`.label`) scores air temperature in bins 2–5 °C wide and wind in bins 5–10
km/h wide, so a cell is 2.5 °C of air temperature (and of dew point, which sets the humidity and
the feels-like temperature), 5 km/h of wind (the narrowest wind bin), 10 km/h of gust and one
calendar month. A synthetic row *covers* a cell when it lies inside it, i.e. within half a step of
the cell's centre on every axis.

A cell is *plausible* for a reference station (:mod:`.koppen`) in a month when

* its air temperature lies in ``[mean daily min − spread, mean daily max + spread]`` of that month,
  inside the station's record low and high;
* its dew point lies in ``[mean dew point − spread − 3, mean dew point + 2 + excess]`` where
  ``excess`` is how far the station's dew-point record lies above its most humid month's mean
  (humid spells reach it), and below the record;
* dew point ≤ air temperature, and the relative humidity of some point of the cell is ≥ 5 %;
* wind ≤ max(3 × the month's mean wind, 20 km/h) (the 99.9th percentile of a Weibull wind with
  shape 2 is ≈ 2.9 × its mean), gust ≥ wind, gust ≤ 2 × wind + 25 km/h (gust factors of
  1.3–2 plus the turbulent excess of ≈ 11–14 km/h seen at low wind in the real sample) and
  gust ≤ the station's record gust.

Rows are checked for the same physics by :func:`row_violations` (dew ≤ temp, gust ≥ wind,
humidity consistent with both, no UV at night).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from kaayko_exp.data import koppen

TEMP_STEP, DEW_STEP, WIND_STEP, GUST_STEP = 2.5, 2.5, 5.0, 10.0
RH_MIN = 5.0  # %: the lowest relative humidity the table holds
WIND_FACTOR, WIND_FLOOR = 3.0, 20.0  # wind ≤ max(3 × monthly mean, 20 km/h)
GUST_FACTOR, GUST_EXCESS = 2.0, 25.0  # gust ≤ 2 × wind + 25 km/h
_OFF = 60  # index offset so that negative temperatures give non-negative cell indices


def magnus(t: np.ndarray) -> np.ndarray:
    """ln of the saturation vapour pressure (up to a constant), over water (WMO-No. 8 Magnus)."""
    return 17.625 * t / (243.04 + t)


def magnus_inverse(y: np.ndarray) -> np.ndarray:
    """The temperature (°C) whose :func:`magnus` is ``y``: a dew point from ``magnus(temp) + ln(RH / 100)``."""
    return 243.04 * y / (17.625 - y)


def rh(temp: np.ndarray, dew: np.ndarray) -> np.ndarray:
    """Relative humidity (%) from air temperature and dew point (Magnus over water)."""
    return 100.0 * np.exp(magnus(np.asarray(dew, dtype=np.float64)) - magnus(np.asarray(temp, dtype=np.float64)))


def cell_keys(month, temp, dew, wind, gust) -> np.ndarray:
    """One int64 key per row: the grid cell it lies in."""
    ti = np.floor(np.asarray(temp, dtype=np.float64) / TEMP_STEP).astype(np.int64) + _OFF
    di = np.floor(np.asarray(dew, dtype=np.float64) / DEW_STEP).astype(np.int64) + _OFF
    wi = np.floor(np.asarray(wind, dtype=np.float64) / WIND_STEP).astype(np.int64)
    gi = np.floor(np.asarray(gust, dtype=np.float64) / GUST_STEP).astype(np.int64)
    m = np.asarray(month, dtype=np.int64)
    return (((m * 200 + ti) * 200 + di) * 200 + wi) * 200 + gi


@dataclass(frozen=True)
class Envelope:
    """The ranges of one station in one month (see the module docstring)."""

    t_lo: float
    t_hi: float
    d_lo: float
    d_hi: float
    w_hi: float
    g_hi: float


def envelope(st: koppen.Station, month: int) -> Envelope:
    """The plausible ranges of station ``st`` in calendar month ``month`` (1–12)."""
    k = month - 1
    excess = st.dew_max - max(st.dew)
    return Envelope(
        t_lo=max(st.record_low, st.tmin[k] - st.spread), t_hi=min(st.record_high, st.tmax[k] + st.spread),
        d_lo=st.dew[k] - st.spread - 3.0, d_hi=min(st.dew_max, st.dew[k] + 2.0 + excess),
        w_hi=max(WIND_FACTOR * st.wind[k], WIND_FLOOR), g_hi=st.gust_max,
    )


def plausible(t_lo, t_hi, d_lo, d_hi, w_lo, w_hi, g_lo, g_hi) -> np.ndarray:
    """The physical plausibility rules on cells given by their edges (arrays): True where some point qualifies.

    dew ≤ temp; some point's relative humidity ≥ RH_MIN (the driest corner: hottest air, most humid
    dew point allowed there); gust ≥ wind; gust ≤ GUST_FACTOR × wind + GUST_EXCESS.
    """
    dew_top = np.minimum(d_hi, t_hi)
    ok = d_lo < t_hi  # some dew point in the cell at or below some air temperature in it (cells are half-open)
    ok &= rh(t_lo, np.minimum(dew_top, t_lo)) >= RH_MIN - 1e-9  # most humid corner reaches RH_MIN
    ok &= g_hi > w_lo  # gust ≥ wind is possible
    ok &= g_lo <= GUST_FACTOR * w_hi + GUST_EXCESS
    return ok


def station_cells(st: koppen.Station, months: Iterable[int] = range(1, 13)) -> np.ndarray:
    """Keys of the plausible cells of a station (sorted, unique)."""
    out = []
    for m in months:
        e = envelope(st, m)
        ti = np.arange(np.floor(e.t_lo / TEMP_STEP), np.floor(e.t_hi / TEMP_STEP) + 1)
        di = np.arange(np.floor(e.d_lo / DEW_STEP), np.floor(e.d_hi / DEW_STEP) + 1)
        wi = np.arange(0, np.floor(e.w_hi / WIND_STEP) + 1)
        gi = np.arange(0, np.floor(e.g_hi / GUST_STEP) + 1)
        T, D, W, G = (a.ravel() for a in np.meshgrid(ti, di, wi, gi, indexing="ij"))
        t_lo, d_lo, w_lo, g_lo = T * TEMP_STEP, D * DEW_STEP, W * WIND_STEP, G * GUST_STEP
        t_hi, d_hi, w_hi, g_hi = t_lo + TEMP_STEP, d_lo + DEW_STEP, w_lo + WIND_STEP, g_lo + GUST_STEP
        keep = plausible(t_lo, t_hi, d_lo, d_hi, w_lo, w_hi, g_lo, g_hi)
        # clip each axis's extreme cells to the envelope (a cell counts when its centre half lies inside)
        keep &= (t_hi > e.t_lo) & (t_lo <= e.t_hi) & (d_hi > e.d_lo) & (d_lo <= e.d_hi)
        keep &= (w_lo <= e.w_hi) & (g_lo <= e.g_hi)
        centre = lambda lo, step: lo + step / 2  # noqa: E731
        out.append(cell_keys(np.full(keep.sum(), m), centre(t_lo[keep], TEMP_STEP), centre(d_lo[keep], DEW_STEP),
                             centre(w_lo[keep], WIND_STEP), centre(g_lo[keep], GUST_STEP)))
    return np.unique(np.concatenate(out))


@dataclass(frozen=True)
class Coverage:
    name: str  # station (or group) name
    koppen: str
    plausible: int
    covered: int

    @property
    def share(self) -> float:
        return self.covered / self.plausible if self.plausible else float("nan")


def table_keys(df) -> np.ndarray:
    """Unique cell keys of a table's rows (month, temp_c, dew_point_c, wind_kph, gust_kph)."""
    return np.unique(cell_keys(df["month"].to_numpy(), df["temp_c"].to_numpy(), df["dew_point_c"].to_numpy(),
                               df["wind_kph"].to_numpy(), df["gust_kph"].to_numpy()))


def coverage(keys: np.ndarray, stations: Sequence[koppen.Station] = koppen.STATIONS) -> list[Coverage]:
    """Per station: plausible cells and how many of them hold a row (``keys``: :func:`table_keys`)."""
    out = []
    for st in stations:
        cells = station_cells(st)
        out.append(Coverage(st.name, st.koppen, len(cells), int(np.isin(cells, keys, assume_unique=True).sum())))
    return out


def uncovered(keys: np.ndarray, st: koppen.Station, limit: int = 5) -> list[str]:
    """A few uncovered cells of a station, as readable ranges (for the report)."""
    cells = station_cells(st)
    miss = cells[~np.isin(cells, keys, assume_unique=True)][:limit]
    out = []
    for k in miss:
        gi, k = k % 200, k // 200
        wi, k = k % 200, k // 200
        di, k = k % 200 - _OFF, k // 200
        ti, m = k % 200 - _OFF, k // 200
        out.append(f"month {m}, air {ti * TEMP_STEP:g}…{(ti + 1) * TEMP_STEP:g} °C, dew {di * DEW_STEP:g}…"
                   f"{(di + 1) * DEW_STEP:g} °C, wind {wi * WIND_STEP:g}…{(wi + 1) * WIND_STEP:g} km/h, "
                   f"gust {gi * GUST_STEP:g}…{(gi + 1) * GUST_STEP:g} km/h")
    return out


def row_violations(df) -> dict[str, int]:
    """Rows breaking the physics the grid assumes: dew > temp, gust < wind, humidity off Magnus by > 8 points
    (over water; below 0 °C the table reports humidity over ice, so only rows ≥ 0 °C are checked), UV at night."""
    t, d = df["temp_c"].to_numpy(np.float64), df["dew_point_c"].to_numpy(np.float64)
    warm = t >= 0
    return {
        "dew > temp": int((d > t + 1e-6).sum()),
        "gust < wind": int((df["gust_kph"].to_numpy() < df["wind_kph"].to_numpy()).sum()),
        "humidity off Magnus": int((np.abs(df["humidity"].to_numpy(np.float64)[warm] - np.clip(rh(t[warm], d[warm]), 5, 100))
                                    > 8.0).sum()),
        "uv at night": int(((df["uv"].to_numpy() > 0) & (df["is_day"].to_numpy() == 0)).sum()),
    }
