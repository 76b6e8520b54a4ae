"""Test climates: published normals and extremes of one reference station per Köppen type.

These are the *test* climates of issue 19: the coverage grid of the fidelity report
(:mod:`.coverage`) is built from them, and the generator's coverage component draws from the
envelope they span. They were fixed before the generator was changed and are not fitted to
anything the generator produces.

Each station gives, per calendar month (January first): the mean daily maximum and minimum air
temperature (°C), the mean dew point (°C) and the mean wind speed (km/h); and per station the
record high and low (°C), the highest dew point observed at the station or in its climate type
(°C), the highest gust (km/h), and ``spread``: how far (°C) hourly temperatures of an ordinary
month reach beyond the mean daily extremes (the mean monthly extreme lies 3–8 °C beyond the
mean daily maximum / minimum in the same normals tables: small in the tropics, large in
continental winters).

Values are the published 1991–2020 normals (WMO climatological standard normals as issued by
the national services named in ``source``), rounded to about 0.5 °C / 1 km/h; dew points where a
service publishes relative humidity or vapour pressure instead were converted with the Magnus
formula (WMO-No. 8, 2018, Annex 4.B). Extremes are the services' station records, and for the
humid-heat, cold and wind extremes of a type the published records named in the comments.

Global extremes the envelopes must reach (issue 19): dew point 35 °C at Dhahran on 8 July 2003
with a heat index near 81 °C (NOAA/NWS; Raymond et al. 2020, Science Advances 6: eaaw1838, for
dew points ≥ 28 °C along the Persian Gulf and in South Asia); dew point 32 °C (90 °F) at Appleton,
Wisconsin, on 13 July 1995 (NWS Green Bay); −51.7 °C at Fairbanks (NOAA) and −48.9 °C at
Utqiaġvik (NOAA); gusts of 259 km/h at the Hong Kong Observatory in Typhoon Wanda, 1962 (HKO) and
217 km/h at Darwin in Cyclone Tracy, 1974 (BoM); visibility 0 in fog, dust and snow is the
generator's own range (0–10 km, the API's cap) and needs no station.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Köppen groups of issue 19 (the leave-one-climate-type-out protocol holds one group out at a time).
GROUPS: dict[str, tuple[str, ...]] = {
    "tropical": ("Af", "Am", "Aw"),
    "desert": ("BWh", "BWk"),
    "humid_subtropical": ("Cfa", "Cwa"),
    "oceanic": ("Cfb", "Cfc"),
    "continental": ("Dfa", "Dfb", "Dfc", "Dwa"),
    "polar": ("ET",),
}


@dataclass(frozen=True)
class Station:
    koppen: str
    name: str
    lat: float
    lng: float
    source: str
    tmax: tuple[float, ...]  # mean daily maximum, °C, Jan..Dec
    tmin: tuple[float, ...]  # mean daily minimum, °C
    dew: tuple[float, ...]  # mean dew point, °C
    wind: tuple[float, ...]  # mean wind speed, km/h
    record_high: float
    record_low: float
    dew_max: float  # highest dew point (station or type record), °C
    gust_max: float  # highest gust, km/h
    spread: float  # °C beyond the mean daily extremes that an ordinary month's hours reach

    @property
    def group(self) -> str:
        return next(g for g, types in GROUPS.items() if self.koppen in types)


STATIONS: tuple[Station, ...] = (
    Station("Af", "Singapore Changi", 1.37, 103.98, "Meteorological Service Singapore, 1991–2020",
            (30.6, 31.7, 32.3, 32.6, 32.4, 32.0, 31.6, 31.5, 31.5, 31.7, 31.2, 30.6),
            (24.1, 24.4, 24.8, 25.4, 25.9, 25.9, 25.6, 25.5, 25.2, 25.0, 24.5, 24.2),
            (23.0, 23.0, 23.5, 24.3, 24.6, 24.3, 23.9, 23.9, 23.9, 24.1, 24.2, 23.6),
            (11, 12, 9, 7, 7, 9, 10, 10, 8, 7, 7, 9), 37.0, 19.4, 28.0, 90.0, 2.5),
    Station("Am", "Mumbai Santacruz", 19.09, 72.85, "India Meteorological Department, 1991–2020",
            (31.2, 31.8, 33.1, 33.3, 33.9, 32.3, 30.2, 29.8, 30.9, 33.4, 34.0, 32.8),
            (17.3, 18.6, 21.4, 24.3, 27.0, 26.3, 25.3, 24.9, 24.5, 23.7, 21.5, 18.9),
            (14.0, 15.0, 18.0, 21.5, 24.5, 25.5, 25.0, 24.8, 24.5, 22.5, 19.0, 15.5),
            (9, 10, 11, 12, 13, 17, 18, 16, 11, 8, 8, 8), 42.2, 7.4, 30.0, 110.0, 3.5),
    Station("Aw", "Darwin Airport", -12.42, 130.89, "Bureau of Meteorology, 1991–2020",
            (31.9, 31.6, 32.1, 32.9, 32.2, 30.9, 30.8, 31.4, 32.6, 33.3, 33.4, 32.8),
            (24.8, 24.7, 24.5, 24.0, 22.2, 20.1, 19.5, 20.5, 23.1, 25.0, 25.4, 25.3),
            (24.5, 24.8, 24.2, 21.8, 17.8, 14.5, 13.5, 15.5, 19.0, 21.5, 23.0, 24.0),
            (11, 12, 11, 13, 14, 15, 15, 15, 14, 13, 12, 11), 38.9, 10.4, 29.0, 217.0, 3.0),
    # Humid heat of the Persian Gulf coast: dew point 35 °C on 8 July 2003 (NOAA/NWS).
    Station("BWh", "Dhahran", 26.27, 50.15, "Saudi General Authority of Meteorology (PME)",
            (21.4, 23.4, 27.5, 33.3, 40.0, 44.0, 45.5, 45.0, 42.3, 37.2, 29.7, 23.7),
            (11.0, 12.2, 15.3, 20.2, 25.5, 28.2, 29.8, 29.5, 27.0, 23.0, 17.7, 12.8),
            (8.0, 8.0, 10.0, 12.0, 13.0, 12.0, 15.0, 19.0, 19.0, 16.0, 13.0, 10.0),
            (16, 17, 17, 16, 16, 20, 18, 16, 14, 13, 14, 15), 51.1, 1.7, 35.0, 90.0, 4.0),
    # Dry heat: 50.0 °C at Phoenix on 26 June 1990 (NOAA).
    Station("BWh", "Phoenix Sky Harbor", 33.43, -112.01, "NOAA NCEI 1991–2020 normals",
            (19.6, 21.4, 25.2, 29.8, 35.3, 41.0, 41.9, 41.0, 38.3, 31.8, 24.3, 18.7),
            (8.0, 9.6, 12.6, 16.3, 21.3, 26.1, 29.4, 28.9, 25.9, 19.4, 12.4, 7.4),
            (-1.0, -1.0, -1.0, -2.0, -1.0, 3.0, 13.0, 15.0, 11.0, 4.0, 0.0, -1.0),
            (8, 9, 10, 11, 11, 11, 11, 11, 10, 9, 8, 8), 50.0, -8.9, 26.0, 110.0, 4.0),
    Station("BWk", "Kashgar", 39.47, 75.99, "China Meteorological Administration, 1991–2020",
            (0.4, 6.0, 14.6, 22.4, 27.2, 31.3, 32.8, 31.4, 26.6, 19.6, 10.3, 2.1),
            (-11.2, -6.5, 2.0, 9.2, 13.9, 17.6, 19.6, 18.6, 13.8, 6.6, -0.8, -8.3),
            (-12.0, -9.0, -4.0, 1.0, 5.0, 9.0, 11.0, 11.0, 7.0, 1.0, -5.0, -10.0),
            (6, 7, 8, 9, 9, 9, 8, 8, 7, 6, 5, 5), 40.1, -24.4, 20.0, 90.0, 5.0),
    Station("Cfa", "Shanghai Xujiahui", 31.20, 121.43, "China Meteorological Administration, 1991–2020",
            (8.4, 10.5, 14.6, 20.4, 25.5, 28.2, 32.5, 32.2, 28.0, 23.2, 17.6, 11.1),
            (2.3, 3.9, 7.3, 12.4, 17.6, 21.8, 25.8, 25.7, 22.0, 16.5, 10.6, 4.4),
            (-1.0, 1.0, 4.0, 10.0, 15.0, 20.5, 24.5, 24.5, 19.5, 13.0, 7.0, 0.5),
            (11, 12, 13, 12, 11, 11, 12, 12, 11, 10, 10, 10), 40.9, -10.1, 29.0, 140.0, 4.0),
    # Monsoon-influenced humid subtropical (the East-Asian monsoon lake of issue 19 lies in this belt).
    Station("Cwa", "Hong Kong Observatory", 22.30, 114.17, "Hong Kong Observatory, 1991–2020",
            (18.7, 19.5, 21.9, 25.4, 28.9, 30.9, 31.6, 31.5, 30.6, 28.3, 24.9, 20.6),
            (14.6, 15.4, 17.6, 21.3, 24.6, 26.5, 27.0, 26.8, 26.0, 24.0, 20.3, 16.1),
            (10.5, 12.5, 15.5, 19.5, 23.0, 25.0, 25.5, 25.3, 24.0, 20.5, 16.0, 11.0),
            (12, 12, 11, 10, 10, 11, 11, 10, 11, 13, 13, 13), 36.6, 0.0, 29.0, 259.0, 3.0),
    Station("Cfb", "London Heathrow", 51.48, -0.45, "Met Office, 1991–2020",
            (8.4, 9.0, 11.7, 15.0, 18.4, 21.6, 23.9, 23.4, 20.3, 15.9, 11.6, 8.9),
            (2.3, 2.1, 3.6, 5.3, 8.3, 11.4, 13.7, 13.6, 11.2, 8.4, 4.9, 2.7),
            (2.5, 2.2, 3.3, 4.5, 7.5, 10.5, 12.5, 12.8, 10.8, 8.5, 5.5, 3.2),
            (17, 17, 17, 15, 14, 13, 13, 13, 13, 15, 15, 16), 40.2, -13.2, 23.0, 120.0, 5.0),
    # Subpolar oceanic: the windy subarctic maritime coast of issue 19 (8–12 °C summers, gusts to 47 km/h).
    Station("Cfc", "Reykjavik", 64.13, -21.90, "Icelandic Met Office, 1991–2020",
            (2.2, 2.7, 3.1, 6.1, 9.7, 12.3, 14.1, 13.6, 10.9, 7.3, 4.2, 2.6),
            (-2.7, -2.3, -2.0, 0.4, 3.8, 6.9, 8.8, 8.3, 5.6, 2.3, -0.6, -2.3),
            (-3.0, -3.0, -3.0, -1.0, 2.0, 5.5, 7.5, 7.0, 4.0, 1.0, -2.0, -3.0),
            (20, 20, 19, 17, 15, 13, 13, 13, 15, 17, 18, 19), 25.7, -24.5, 16.0, 160.0, 5.0),
    # Humid continental: dew point 32 °C at Appleton, Wisconsin, 13 July 1995 (NWS Green Bay).
    Station("Dfa", "Chicago O'Hare", 41.98, -87.90, "NOAA NCEI 1991–2020 normals",
            (-0.2, 2.0, 8.5, 15.3, 21.6, 27.1, 29.3, 28.3, 24.4, 17.2, 9.6, 2.6),
            (-8.1, -6.1, -0.9, 4.2, 9.8, 15.6, 18.7, 18.1, 13.6, 6.9, 0.8, -5.0),
            (-9.0, -7.0, -3.0, 2.0, 8.0, 14.0, 17.0, 17.0, 12.0, 5.0, -1.0, -6.0),
            (19, 18, 19, 19, 16, 15, 13, 13, 14, 16, 18, 18), 40.0, -32.8, 32.0, 120.0, 7.0),
    Station("Dfb", "Moscow VDNKh", 55.83, 37.62, "Roshydromet, 1991–2020",
            (-4.0, -3.0, 2.6, 11.3, 18.7, 22.0, 24.3, 22.3, 16.3, 9.0, 2.2, -2.2),
            (-9.1, -9.0, -4.4, 2.2, 7.7, 11.9, 14.0, 12.1, 7.3, 2.4, -2.5, -6.9),
            (-10.0, -10.0, -6.0, 0.0, 5.0, 10.0, 13.0, 12.0, 8.0, 3.0, -2.0, -7.0),
            (11, 11, 11, 10, 10, 9, 8, 8, 9, 10, 11, 11), 38.2, -42.1, 24.0, 110.0, 7.0),
    Station("Dfc", "Fairbanks", 64.80, -147.88, "NOAA NCEI 1991–2020 normals",
            (-17.2, -12.6, -4.9, 6.0, 16.2, 22.3, 23.2, 19.8, 13.0, 0.3, -11.1, -14.9),
            (-27.1, -25.3, -19.5, -6.9, 3.6, 10.1, 11.9, 8.9, 2.7, -7.9, -19.5, -24.4),
            (-30.0, -27.0, -22.0, -10.0, -1.0, 6.0, 9.0, 7.0, 1.0, -8.0, -21.0, -27.0),
            (5, 6, 8, 9, 11, 11, 10, 9, 9, 7, 5, 5), 37.8, -51.7, 19.0, 80.0, 8.0),
    Station("Dwa", "Beijing", 39.93, 116.28, "China Meteorological Administration, 1991–2020",
            (2.2, 6.0, 12.8, 20.8, 27.0, 30.7, 31.6, 30.4, 26.2, 19.4, 10.3, 3.8),
            (-7.5, -4.6, 1.3, 8.5, 14.6, 19.4, 22.5, 21.4, 15.8, 8.6, 0.5, -5.5),
            (-15.0, -12.0, -7.0, 1.0, 8.0, 15.0, 21.0, 21.0, 14.0, 5.0, -4.0, -12.0),
            (9, 10, 11, 11, 10, 8, 7, 7, 7, 8, 9, 9), 41.9, -27.4, 28.0, 90.0, 6.0),
    Station("ET", "Utqiagvik", 71.29, -156.77, "NOAA NCEI 1991–2020 normals",
            (-20.9, -22.6, -21.3, -11.5, -1.6, 5.1, 9.2, 7.0, 2.6, -4.5, -12.3, -18.3),
            (-28.3, -29.7, -28.6, -20.5, -7.0, 0.0, 2.6, 2.1, -0.5, -9.3, -19.1, -25.3),
            (-31.0, -33.0, -32.0, -23.0, -9.0, -1.0, 2.5, 2.5, -1.0, -9.0, -20.0, -28.0),
            (20, 19, 18, 18, 19, 18, 18, 20, 21, 22, 21, 19), 26.1, -48.9, 15.0, 120.0, 7.0),
)


def stations(group: str | None = None, *, exclude_group: str | None = None) -> tuple[Station, ...]:
    """The reference stations, optionally of one Köppen group only, or without one."""
    for g in (group, exclude_group):
        if g is not None and g not in GROUPS:
            raise ValueError(f"unknown climate group {g!r}; one of {', '.join(GROUPS)}")
    return tuple(s for s in STATIONS if (group is None or s.group == group)
                 and (exclude_group is None or s.group != exclude_group))
