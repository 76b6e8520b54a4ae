"""Each synthetic lake's climate, derived from where it is (no random draw per lake).

A lake's climate is a deterministic function of its coordinates, in the spirit of the
Köppen classification: latitude sets the zonal mean temperature and the seasonal swing,
altitude lowers the mean and widens the daily range, continentality (maritime 0 …
continental 1) widens the seasonal swing and dries the air, aridity (Köppen B) clears the
sky and lowers humidity, monsoon regimes come from the season calendar (:mod:`.geo`).

Altitude, continentality, aridity and wind exposure come from :data:`CLIMATE_BOXES` (first
matching box wins; outside every box: the defaults of :func:`lake_climate`). Each box names
its source. The box values are coarse regional values, not lake surveys: the generator needs
the *kind* of climate a lake has, and a lake that falls in the wrong box only shifts which
climate its rows sample — every row stays physically consistent and labelled by the rule.

The formulas' constants were fitted to the five real sample lakes (tests/data/kaayko_sample,
15 lake-months) and checked against published normals; the source of each is in a comment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (name, lat_min, lat_max, lng_min, lng_max, elevation m, continentality 0..1, aridity 0..1,
#  wind factor, source). Elevations are those of the region's lakes (the lake named in the source).
CLIMATE_BOXES: tuple[tuple[str, float, float, float, float, float, float, float, float, str], ...] = (
    # Sheltered mountain valley: Lake Minnewanka 1,480 m; Banff normals (ECCC 1981–2010): mean wind
    # ≈ 7 km/h, annual range ≈ 24 °C; the real sample's Minnewanka mean wind is 6.8 km/h.
    ("Canadian Rockies", 49.0, 54.0, -119.0, -114.0, 1480.0, 0.9, 0.3, 0.55, "ECCC Banff normals; Parks Canada"),
    # High plateau: Yellowstone Lake 2,357 m, Jackson Lake 2,064 m (USGS GNIS); semi-arid summer
    # (real sample: dew-point depression 10–13 °C in June/September).
    ("Yellowstone plateau", 42.0, 46.0, -112.0, -105.0, 2300.0, 0.9, 0.4, 1.0, "USGS GNIS elevations"),
    # Colorado Rockies: Antero Reservoir 2,728 m, Dillon Reservoir 2,750 m (USGS GNIS).
    ("Colorado Rockies", 37.0, 42.0, -108.0, -104.5, 2600.0, 0.9, 0.4, 1.0, "USGS GNIS elevations"),
    # Great Basin / Colorado Plateau: Lake Tahoe 1,897 m, Great Salt Lake 1,280 m, Lake Powell 1,128 m;
    # Köppen BSk/BWk (Peel et al. 2007 world map).
    ("Great Basin", 36.5, 42.0, -120.0, -108.0, 1400.0, 0.9, 0.7, 1.0, "USGS GNIS; Peel et al. 2007"),
    # Mojave / Sonoran deserts (Köppen BWh): Lake Mead 372 m, Lake Havasu 136 m; Las Vegas normals
    # (NOAA 1991–2020): annual mean 20.3 °C, relative humidity ≈ 30 %, ≈ 5 % of hours wet.
    ("Mojave-Sonora", 30.0, 36.5, -120.0, -108.0, 350.0, 1.0, 0.95, 1.0, "NOAA Las Vegas normals; Peel et al. 2007"),
    # Great Lakes: open water, long fetch: buoy mean winds ≈ 18–22 km/h against ≈ 13 km/h inland
    # (NOAA NDBC 45007, southern Lake Michigan); the real sample's Michigan mean is 17.1 km/h.
    # Annual mean 2 °C below the zonal formula (the continental trough over eastern North America:
    # NOAA 1991–2020 normals Milwaukee 8.6 °C, Toronto 8.9 °C at 43–44° N against ≈ 11 °C zonal).
    ("Great Lakes", 41.0, 49.0, -93.0, -76.0, 180.0, 0.85, 0.1, 1.5, "NOAA NDBC 45007; USGS lake levels"),
    # North-west Europe: maritime (Cfb), Windermere 39 m; Ambleside/Newton Rigg normals (Met Office
    # 1991–2020): annual range ≈ 11 °C, ≈ 200 rain days a year.
    ("NW Europe", 43.0, 62.0, -11.0, 8.0, 100.0, 0.1, 0.0, 1.0, "Met Office UK climate normals"),
    # Pacific North-west coast and British Columbia coast (Cfb/Csb).
    ("Pacific NW coast", 40.0, 60.0, -130.0, -121.0, 150.0, 0.2, 0.1, 1.0, "Peel et al. 2007"),
    # Alpine foreland lakes: Geneva 372 m, Constance 395 m, Garda 65 m; sheltered.
    ("Alps", 45.3, 48.0, 5.5, 16.0, 400.0, 0.55, 0.0, 0.8, "Swisstopo / ISPRA lake elevations"),
    # Tibetan Plateau: lakes at 4,500 m and more (Qinghai 3,196 m, Nam Co 4,718 m).
    ("Tibetan Plateau", 28.0, 38.0, 78.0, 100.0, 4300.0, 1.0, 0.6, 1.2, "CAS lake inventory (Ma et al. 2011)"),
    # Altiplano: Lake Titicaca 3,812 m, Poopó 3,686 m.
    ("Altiplano", -23.0, -14.0, -71.0, -65.0, 3800.0, 0.7, 0.5, 1.0, "ANA Peru / INE Bolivia"),
    # East African plateau: Victoria 1,134 m, Tana 1,788 m, Kivu 1,460 m.
    ("East African plateau", -5.0, 12.0, 29.0, 40.0, 1300.0, 0.5, 0.2, 1.0, "ILEC World Lake Database"),
    # Mexican plateau: Chapala 1,524 m, Pátzcuaro 2,035 m.
    ("Mexican plateau", 18.5, 25.0, -105.0, -98.0, 1700.0, 0.6, 0.45, 1.0, "INEGI"),
    # Iranian / Anatolian plateau: Van 1,640 m, Urmia 1,270 m; Köppen BSk.
    ("Iranian-Anatolian plateau", 32.0, 40.0, 38.0, 60.0, 1300.0, 0.9, 0.7, 1.0, "Peel et al. 2007"),
    # Hot deserts (Köppen BWh, Peel et al. 2007): Sahara, Arabia, Thar, Australian interior,
    # Kalahari, Atacama.
    ("Sahara-Arabia", 15.0, 32.0, -17.0, 60.0, 300.0, 1.0, 0.95, 1.0, "Peel et al. 2007"),
    ("Thar", 24.0, 30.0, 68.0, 75.0, 250.0, 1.0, 0.85, 1.0, "Peel et al. 2007"),
    ("Australian interior", -32.0, -18.0, 118.0, 146.0, 200.0, 1.0, 0.85, 1.0, "Peel et al. 2007"),
    ("Kalahari", -28.0, -18.0, 15.0, 26.0, 1000.0, 1.0, 0.8, 1.0, "Peel et al. 2007"),
    ("Atacama", -28.0, -18.0, -72.0, -68.0, 1500.0, 0.6, 0.95, 1.0, "Peel et al. 2007"),
    # Cold deserts / steppes of Central Asia and the Gobi (BWk/BSk).
    ("Central Asian steppe", 38.0, 50.0, 50.0, 120.0, 900.0, 1.0, 0.7, 1.0, "Peel et al. 2007"),
    # Southern maritime: New Zealand, Tasmania, southern Chile (Cfb).
    ("Southern maritime", -55.0, -34.0, 140.0, 180.0, 200.0, 0.15, 0.0, 1.1, "NIWA normals; Peel et al. 2007"),
    ("Southern Chile", -56.0, -38.0, -76.0, -70.0, 200.0, 0.15, 0.0, 1.1, "Peel et al. 2007"),
)

#: Regional departures of the annual mean from the formulas below, °C (see the box's comment).
T_ADJUST: dict[str, float] = {"Great Lakes": -2.0}

#: Near-surface temperature lapse rate, °C per km. Fitted to the real sample (Yellowstone Lake at
#: 2,357 m and Minnewanka at 1,480 m against the sea-level formula) and in the range published for
#: mountain surface air, 4–6 °C/km (Rolland 2003, Alps 5.4; Minder et al. 2010, Cascades 3.9–5.2).
LAPSE_C_PER_KM = 5.0


@dataclass(frozen=True)
class LakeClimate:
    """Per-lake climate parameters (arrays, one value per lake)."""

    elevation_km: np.ndarray
    continentality: np.ndarray  # 0 maritime … 1 continental
    aridity: np.ndarray  # 0 humid … 1 desert
    wind_factor: np.ndarray  # exposure: < 1 sheltered, > 1 open water / plains
    t_mean: np.ndarray  # annual mean air temperature, °C
    t_amp: np.ndarray  # half the annual range (coldest to warmest month mean), °C
    cold_doy: np.ndarray  # day of year of the coldest point


def _defaults(lat: np.ndarray, pattern: np.ndarray, zone: np.ndarray) -> tuple[np.ndarray, ...]:
    """Continentality and aridity outside every box, from the lake's regional pattern and zone.

    Patterns (geo.py): ``temperate`` = Europe / Oceania, mostly maritime; ``continental`` =
    Canada, Central / North Asia; ``monsoon`` = South / East Asia; ``varied`` = the rest.
    Subtropical lakes outside a box are semi-arid on average (the 20–35° belt holds most of
    the world's BS/BW climates, Peel et al. 2007).
    """
    cont = np.select([pattern == "temperate", pattern == "continental", pattern == "monsoon"], [0.4, 0.95, 0.7],
                     default=0.65)
    arid = np.select([zone == "subtropical", zone == "polar", zone == "equatorial"], [0.35, 0.3, 0.0], default=0.15)
    arid = np.where(pattern == "monsoon", 0.1, arid)
    return cont, arid


def lake_climate(lat, lng, pattern, zone) -> LakeClimate:
    """The climate of lakes at ``lat``/``lng`` with their regional pattern and climate zone (arrays)."""
    lat = np.asarray(lat, dtype=np.float64)
    lng = np.asarray(lng, dtype=np.float64)
    pattern = np.asarray(pattern, dtype=object)
    zone = np.asarray(zone, dtype=object)
    cont, arid = _defaults(lat, pattern, zone)
    elev = np.full(lat.shape, 0.2)  # km: the median elevation of the world's lakes is a few hundred metres
    wind = np.ones(lat.shape)
    t_adj = np.zeros(lat.shape)
    done = np.zeros(lat.shape, dtype=bool)
    for _name, la0, la1, lo0, lo1, e, c, a, w, _src in CLIMATE_BOXES:
        hit = ~done & (lat >= la0) & (lat < la1) & (lng >= lo0) & (lng < lo1)
        elev = np.where(hit, e / 1000.0, elev)
        cont = np.where(hit, c, cont)
        arid = np.where(hit, a, arid)
        wind = np.where(hit, w, wind)
        t_adj = np.where(hit, T_ADJUST.get(_name, 0.0), t_adj)
        done |= hit
    alat = np.abs(lat)
    # Sea-level annual mean: 27 °C in the tropics, −0.55 °C per degree beyond 15° and a further
    # −0.3 °C/° beyond 60° (a fit to the zonal means of Sellers 1965 / ERA5 1991–2020 over land:
    # 26 °C at 15°, 13 °C at 40°, 2 °C at 60°).
    t_sea = 27.0 - 0.55 * np.maximum(0.0, alat - 15.0) - 0.3 * np.maximum(0.0, alat - 60.0)
    # West-coast maritime warmth beyond 35° (Gulf Stream, westerlies): up to +4 °C for a fully
    # maritime lake (Windermere's 9.5 °C normal at 54° N against ≈ 5.5 °C zonal; Met Office).
    maritime_warm = 4.0 * (1.0 - cont) * np.clip((alat - 35.0) / 15.0, 0.0, 1.0)
    # Hot deserts run above the zonal mean (Las Vegas 20.3 °C at 36° N and 0.6 km against ≈ 15 °C); 8 °C
    # for a full desert, fitted to the real Lake Mead months (10.0, 22.5, 31.2 °C in Jan, Apr, Sep).
    desert_warm = 8.0 * np.clip((arid - 0.5) * 2.0, 0.0, 1.0)
    t_mean = t_sea - LAPSE_C_PER_KM * elev + maritime_warm + desert_warm + t_adj
    # Half annual range: grows ≈ 0.32 °C per degree of latitude beyond 8°, scaled by continentality
    # from 0.3 (maritime: Windermere's ≈ 6 °C half range) to 1.1 (interior: Banff ≈ 12 °C, Las Vegas
    # ≈ 12 °C, Yellowstone ≈ 12.5 °C in the real sample and the normals).
    t_amp = np.minimum((1.0 + 0.32 * np.maximum(0.0, alat - 8.0)) * (0.3 + 0.8 * cont), 24.0)
    # Coldest day: mid-January (mid-July south), a fortnight later for maritime lakes (seasonal lag of
    # ocean-moderated climates: UK coldest month is February at many coastal stations).
    cold_doy = np.where(lat < 0, 196.0, 15.0) + 15.0 * (1.0 - cont)
    return LakeClimate(elevation_km=elev, continentality=cont, aridity=arid, wind_factor=wind,
                       t_mean=t_mean, t_amp=t_amp, cold_doy=cold_doy)


def koppen_group(clim: LakeClimate, pattern) -> np.ndarray:
    """Each lake's Köppen group (the keys of :data:`kaayko_exp.data.koppen.GROUPS`) from its climate.

    The Köppen–Geiger thresholds as Peel et al. (2007) apply them, on the generator's monthly means
    (annual mean ± half the annual range): arid (aridity ≥ 0.6) → desert; coldest month ≥ 18 °C →
    tropical; warmest month < 10 °C → polar; coldest month > 0 °C → humid subtropical when the
    warmest month reaches 22 °C, else oceanic; otherwise continental. ``pattern`` is unused by the
    thresholds and kept for the monsoon subtypes (Cwa / Dwa fall in the same groups).
    """
    del pattern
    coldest, warmest = clim.t_mean - clim.t_amp, clim.t_mean + clim.t_amp
    return np.select(
        [clim.aridity >= 0.6, coldest >= 18.0, warmest < 10.0, (coldest > 0.0) & (warmest >= 22.0), coldest > 0.0],
        ["desert", "tropical", "polar", "humid_subtropical", "oceanic"], default="continental").astype(object)
