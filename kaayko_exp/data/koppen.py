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

Values are published normals (the 1991–2020 WMO climatological standard normals as issued by the
national services named in ``source`` where a copy could be found; an older normal period where
only that one could, as ``source`` then says), rounded to about 0.5 °C / 1 km/h; dew points where a
service publishes relative humidity or vapour pressure instead were converted with the Magnus
formula (WMO-No. 8, 2018, Annex 4.B). Extremes are the services' station records, and for the
humid-heat, cold and wind extremes of a type the published records named in the comments.

Verification (issue 19): every figure was first entered from memory, then checked against the
published pages named in the ``Sources`` comment above each station (tolerance: monthly means
within ~1 °C / ~2 km/h; records must match the source exactly). Figures that were wrong were
replaced by the source's value; figures for which no published copy could be found are kept
and marked *unverified* in that comment.

Global extremes the envelopes must reach (issue 19): dew point 35 °C at Dhahran on 8 July 2003
with a heat index near 81 °C (NOAA/NWS; Raymond et al. 2020, Science Advances 6: eaaw1838, for
dew points ≥ 28 °C along the Persian Gulf and in South Asia); dew point 32 °C (90 °F) at Appleton,
Wisconsin, on 13 July 1995 (NWS Green Bay); −54.4 °C (−66 °F, 14 January 1934) at Fairbanks
(NWS) and −48.9 °C (−56 °F, 3 February 1924) at Utqiaġvik (NWS); gusts of 259 km/h at the Hong Kong Observatory in Typhoon Wanda, 1962 (HKO) and
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
    # Sources — records: NEA/MSS via The Straits Times, "Temperature hits 40-year record high of 37 deg C
    #   in Ang Mo Kio" (13 May 2023): national all-time 37.0 °C at Tengah, 17 Apr 1983 (tied 2023);
    #   NEA FAQ quoted at gssq.blogspot.com (2007): national low 19.4 °C, 31 Jan 1934. Both are the
    #   national records (records since 1929); the Changi climate station's own high is 36.0 °C
    #   (26 Mar 1998, combiculture.com quoting Wikipedia).
    # tmax/tmin/wind: checked against NEA historical daily readings, 2019–2023 means of five stations
    #   incl. Changi (sgwiki.com "Climate of Singapore" table): within 1 °C and ~2 km/h.
    # gust_max 90 → 144.4 km/h: the national record, Tengah, 25 Apr 1984 (MSS via The Straits Times,
    #   "Strong winds recorded across Singapore on Sept 17", 2024; CNA 12 Jun 2014).
    # Unverified (no copy found): 1991–2020 Changi normals themselves, monthly dew points, dew_max 28 °C.
    Station("Af", "Singapore Changi", 1.37, 103.98, "Meteorological Service Singapore, 1991–2020",
            (30.6, 31.7, 32.3, 32.6, 32.4, 32.0, 31.6, 31.5, 31.5, 31.7, 31.2, 30.6),
            (24.1, 24.4, 24.8, 25.4, 25.9, 25.9, 25.6, 25.5, 25.2, 25.0, 24.5, 24.2),
            (23.0, 23.0, 23.5, 24.3, 24.6, 24.3, 23.9, 23.9, 23.9, 24.1, 24.2, 23.6),
            (11, 12, 9, 7, 7, 9, 10, 10, 8, 7, 7, 9), 37.0, 19.4, 28.0, 144.4, 2.5),
    # Sources — records: IMD via The Hindu, "City shivers as mercury falls" (3 Jan 2018) and Hindustan
    #   Times (10 Jan 2019): Santacruz all-time low 7.4 °C, 22 Jan 1962; IMD via vagaries.in
    #   (20 Apr 2020): Santacruz all-time April/record high 42.2 °C, 14 Apr 1952.
    # tmax/tmin: spot-checked against IMD daily Santacruz normals quoted in the press (Hindustan Times
    #   10 Jan 2019: Jan max normal ~30.8, min normal ~17.2; vagaries "Scruz May minimum" normal 26.3):
    #   within 1 °C. (The Wikipedia "Climate of Mumbai" box found is Colaba, not Santacruz.)
    # gust_max 110 km/h: consistent with Cyclone Tauktae, 17 May 2021 (IMD: 108 km/h at Colaba; BMC
    #   station 114 km/h; PTI via devdiscourse.com); Santacruz's own record unverified.
    # Unverified: full 1991–2020 Santacruz table, monthly dew points, winds, dew_max 30 °C.
    Station("Am", "Mumbai Santacruz", 19.09, 72.85, "India Meteorological Department, 1991–2020",
            (31.2, 31.8, 33.1, 33.3, 33.9, 32.3, 30.2, 29.8, 30.9, 33.4, 34.0, 32.8),
            (17.3, 18.6, 21.4, 24.3, 27.0, 26.3, 25.3, 24.9, 24.5, 23.7, 21.5, 18.9),
            (14.0, 15.0, 18.0, 21.5, 24.5, 25.5, 25.0, 24.8, 24.5, 22.5, 19.0, 15.5),
            (9, 10, 11, 12, 13, 17, 18, 16, 11, 8, 8, 8), 42.2, 7.4, 30.0, 110.0, 3.5),
    # Sources — records: Bureau of Meteorology figures quoted at nomadpub.com "Darwin weather"
    #   (from Wikipedia "Darwin"): airport 38.9 °C (18 Oct 1982) and 10.4 °C (29 Jul 1942); gust 217 km/h
    #   in Cyclone Tracy, 25 Dec 1974 (NT News, "Strongest winds since Tropical Cyclone Tracy", citing the
    #   Darwin AP records). Wet-season 3 pm dew point ~24 °C (same nomadpub page): matches Dec–Mar;
    #   April 9 am / 3 pm mean dew points ~22 / 20 °C (BoM's P. Claassen, ABC News 4 Apr 2018): matches
    #   April (21.8). The April record there is 27.2 °C (1958–2018); dew_max 29 °C itself unverified.
    # tmax/tmin: January 32.0 / 25.1 °C (climatestotravel.com "Darwin climate"): within 1 °C.
    # Unverified: the other months' BoM 1991–2020 statistics; winds (climatestotravel gives 15.1 km/h in
    #   January, source period unknown, vs 11 here: kept); dew_max 29 °C.
    Station("Aw", "Darwin Airport", -12.42, 130.89, "Bureau of Meteorology, 1991–2020",
            (31.9, 31.6, 32.1, 32.9, 32.2, 30.9, 30.8, 31.4, 32.6, 33.3, 33.4, 32.8),
            (24.8, 24.7, 24.5, 24.0, 22.2, 20.1, 19.5, 20.5, 23.1, 25.0, 25.4, 25.3),
            (24.5, 24.8, 24.2, 21.8, 17.8, 14.5, 13.5, 15.5, 19.0, 21.5, 23.0, 24.0),
            (11, 12, 11, 13, 14, 15, 15, 15, 14, 13, 12, 11), 38.9, 10.4, 29.0, 217.0, 3.0),
    # Humid heat of the Persian Gulf coast: dew point 35 °C on 8 July 2003 (NOAA/NWS).
    # Sources — dew_max: Guinness World Records, "Highest dewpoint temperature" (Dhahran, 8 Jul 2003,
    #   35 °C at 42 °C air, heat index 81 °C). record_low 1.7 → −0.5 °C (January 1964; traveltill.com
    #   "Climate in Dhahran", from Wikipedia "Dhahran"). record_high 51.1 °C: the National Center for
    #   Meteorology reports 51 °C at Dhahran on 29 May 2009 (Zawya / Gulf News, May 2023) — consistent,
    #   the tenth unverified. Wind: annual mean 11.5 mph = 18.5 km/h at Dhahran (US DoD GulfLINK,
    #   "Tab E – Climate"); the monthly winds were ~2.5 km/h low and are raised by 2 km/h.
    # Unverified: monthly tmax/tmin/dew normals (no published table found), gust 90 km/h.
    Station("BWh", "Dhahran", 26.27, 50.15, "Saudi General Authority of Meteorology (PME)",
            (21.4, 23.4, 27.5, 33.3, 40.0, 44.0, 45.5, 45.0, 42.3, 37.2, 29.7, 23.7),
            (11.0, 12.2, 15.3, 20.2, 25.5, 28.2, 29.8, 29.5, 27.0, 23.0, 17.7, 12.8),
            (8.0, 8.0, 10.0, 12.0, 13.0, 12.0, 15.0, 19.0, 19.0, 16.0, 13.0, 10.0),
            (18, 19, 19, 18, 18, 22, 20, 18, 16, 15, 16, 17), 51.1, -0.5, 35.0, 90.0, 4.0),
    # Dry heat: 50.0 °C at Phoenix on 26 June 1990 (NOAA).
    # Sources — records: 122 °F = 50.0 °C on 26 Jun 1990 and 16 °F = −8.9 °C on 7 Jan 1913 (Chicago
    #   Tribune "Ask Tom Why", 5 Dec 2004; Arizona Republic via europesays.com). tmax/tmin: Wikipedia
    #   "Climate of Phoenix" climate chart (NOAA normals, °F): all months within 1 °C.
    # Unverified: monthly dew points and winds, gust 110 km/h, dew_max 26 °C.
    Station("BWh", "Phoenix Sky Harbor", 33.43, -112.01, "NOAA NCEI 1991–2020 normals",
            (19.6, 21.4, 25.2, 29.8, 35.3, 41.0, 41.9, 41.0, 38.3, 31.8, 24.3, 18.7),
            (8.0, 9.6, 12.6, 16.3, 21.3, 26.1, 29.4, 28.9, 25.9, 19.4, 12.4, 7.4),
            (-1.0, -1.0, -1.0, -2.0, -1.0, 3.0, 13.0, 15.0, 11.0, 4.0, 0.0, -1.0),
            (8, 9, 10, 11, 11, 11, 11, 11, 10, 9, 8, 8), 50.0, -8.9, 26.0, 110.0, 4.0),
    # Sources — "Climate data for Kashgar", China Meteorological Administration (liquisearch.com copy
    #   of Wikipedia "Kashgar", 1971–2000 table; no 1991–2020 copy found): tmax/tmin replaced by that
    #   table (the remembered minima were 1.4–1.9 °C too warm in Jun and Aug–Oct); dew points
    #   recomputed with Magnus from its monthly mean temperature and relative humidity
    #   (67 58 48 40 41 41 43 49 53 56 61 70 %) — the remembered ones were up to 2.7 °C too low in
    #   Sep–Dec. Records 40.1 °C (July) and −24.4 °C (January): same page.
    # Unverified: winds, gust 90 km/h, dew_max 20 °C.
    Station("BWk", "Kashgar", 39.47, 75.99, "China Meteorological Administration, 1971–2000",
            (0.3, 5.1, 13.5, 22.2, 26.4, 30.2, 32.1, 30.7, 26.5, 19.8, 10.6, 1.9),
            (-10.2, -6.2, 1.7, 8.6, 12.9, 16.1, 18.6, 17.2, 11.9, 4.7, -1.9, -7.7),
            (-10.0, -8.0, -2.5, 2.0, 6.0, 9.0, 12.0, 12.5, 9.5, 3.5, -2.5, -7.5),
            (6, 7, 8, 9, 9, 9, 8, 8, 7, 6, 5, 5), 40.1, -24.4, 20.0, 90.0, 5.0),
    # Sources — record_high 40.9 °C at Xujiahui on 13 Jul 2022, tying the record (Xinhua via People's
    #   Daily, 14 Jul and 11 Aug 2022). tmax/tmin: compared with CMA 1971–2000 (liquisearch.com copy of
    #   Wikipedia "Geography of Shanghai"): ours are 0–1.8 °C warmer, largest Feb–May, as expected of
    #   1991–2020 against 1971–2000 at an urban station; kept, the 1991–2020 table itself unverified.
    # record_low −10.1 °C (January 1977): consistent with "its record low of 14F recorded in 1977"
    #   (palmtalk.org forum, Jan 2021); the tenth unverified.
    # Unverified: monthly dew points, winds, gust 140 km/h, dew_max 29 °C.
    Station("Cfa", "Shanghai Xujiahui", 31.20, 121.43, "China Meteorological Administration, 1991–2020",
            (8.4, 10.5, 14.6, 20.4, 25.5, 28.2, 32.5, 32.2, 28.0, 23.2, 17.6, 11.1),
            (2.3, 3.9, 7.3, 12.4, 17.6, 21.8, 25.8, 25.7, 22.0, 16.5, 10.6, 4.4),
            (-1.0, 1.0, 4.0, 10.0, 15.0, 20.5, 24.5, 24.5, 19.5, 13.0, 7.0, 0.5),
            (11, 12, 13, 12, 11, 11, 12, 12, 11, 10, 10, 10), 40.9, -10.1, 29.0, 140.0, 4.0),
    # Monsoon-influenced humid subtropical (the East-Asian monsoon lake of issue 19 lies in this belt).
    # Sources — record_low 0.0 °C: HKO extreme-value column (January) of the 1961–1990 normals table,
    #   Hong Kong Yearbook appendix "Climatological Summary" (hkintexts.histsyn.com). record_high 36.6 °C
    #   on 22 Aug 2017, the all-time high (HKO annual review via Hong Kong Free Press, 10 Jan 2018;
    #   the earlier record was 36.3 °C, 8 Aug 2015, HKO press release "pre20150808"). gust_max 259 km/h in Typhoon Wanda, 1 Sep 1962: Wikipedia
    #   "Typhoon Wanda (1962)" gives gusts of 261 km/h without naming the station; HKO's own figure
    #   unverified. tmax/tmin: HKO normals 1961–1990 (Jan 18.6 / 13.6, Jul 31.5 / 26.6 °C; HKO
    #   "enormal07" and Hong Kong Yearbook 2004 Table 35): within 0.5 °C. Dew points: HKO 5-day normals
    #   1981–2010 (my.weather.gov.hk "5daymean"): within ~1 °C.
    # Unverified: winds — HKO publishes its wind normals at Waglan Island (1961–1990 mean 22.6 km/h,
    #   Jan 24.0, Jul 20.0), not at the Observatory; the 10–13 km/h here are kept, unverified.
    Station("Cwa", "Hong Kong Observatory", 22.30, 114.17, "Hong Kong Observatory, 1991–2020",
            (18.7, 19.5, 21.9, 25.4, 28.9, 30.9, 31.6, 31.5, 30.6, 28.3, 24.9, 20.6),
            (14.6, 15.4, 17.6, 21.3, 24.6, 26.5, 27.0, 26.8, 26.0, 24.0, 20.3, 16.1),
            (10.5, 12.5, 15.5, 19.5, 23.0, 25.0, 25.5, 25.3, 24.0, 20.5, 16.0, 11.0),
            (12, 12, 11, 10, 10, 11, 11, 10, 11, 13, 13, 13), 36.6, 0.0, 29.0, 259.0, 3.0),
    # Sources — tmax/tmin: weatherandclimate.eu "Climate tables. Data for London" (station 03772,
    #   Heathrow): tmax identical to the tenth except Sep–Dec (0.1), tmin within 0.8 °C. record_high
    #   40.2 °C on 19 Jul 2022 (visualfoodie.com "Historical temperature records for London",
    #   meteonetwork forum). record_low −13.2 °C unverified: the only station table found (SYNOP since
    #   ~1949) lists −11.0 °C (Dec 1981) as its lowest.
    # gust_max 120 → 141 km/h: 87.5 mph on 25 Jan 1990 (Burns' Day storm), the top Heathrow gust since
    #   1973 in Met Office data (wansteadmeteo.com "Top 10 wind gusts at Heathrow since 1973", 2024).
    # Unverified: monthly dew points, winds, dew_max 23 °C.
    Station("Cfb", "London Heathrow", 51.48, -0.45, "Met Office, 1991–2020",
            (8.4, 9.0, 11.7, 15.0, 18.4, 21.6, 23.9, 23.4, 20.3, 15.9, 11.6, 8.9),
            (2.3, 2.1, 3.6, 5.3, 8.3, 11.4, 13.7, 13.6, 11.2, 8.4, 4.9, 2.7),
            (2.5, 2.2, 3.3, 4.5, 7.5, 10.5, 12.5, 12.8, 10.8, 8.5, 5.5, 3.2),
            (17, 17, 17, 15, 14, 13, 13, 13, 13, 15, 15, 16), 40.2, -13.2, 23.0, 141.0, 5.0),
    # Subpolar oceanic: the windy subarctic maritime coast of issue 19 (8–12 °C summers, gusts to 47 km/h).
    # Sources — record_high 25.7 °C, July 2008 (climatestotravel.com "Reykjavik"; IMO news 1438: the
    #   manned-station record of 30 Jul 2008, the automatic station read 26.4 °C); record_low −24.5 °C,
    #   21 Jan 1918 (iceland4you.is, weatherforecast365.com, from Wikipedia). tmax/tmin: climatestotravel
    #   monthly table (whole degrees): within 1 °C.
    # Unverified: monthly dew points, winds, gust 160 km/h, dew_max 16 °C.
    Station("Cfc", "Reykjavik", 64.13, -21.90, "Icelandic Met Office, 1991–2020",
            (2.2, 2.7, 3.1, 6.1, 9.7, 12.3, 14.1, 13.6, 10.9, 7.3, 4.2, 2.6),
            (-2.7, -2.3, -2.0, 0.4, 3.8, 6.9, 8.8, 8.3, 5.6, 2.3, -0.6, -2.3),
            (-3.0, -3.0, -3.0, -1.0, 2.0, 5.5, 7.5, 7.0, 4.0, 1.0, -2.0, -3.0),
            (20, 20, 19, 17, 15, 13, 13, 13, 15, 17, 18, 19), 25.7, -24.5, 16.0, 160.0, 5.0),
    # Humid continental: dew point 32 °C at Appleton, Wisconsin, 13 July 1995 (NWS Green Bay).
    # Sources — record_high 40.0 → 40.6 °C: Chicago's official record is 105 °F on 24 Jul 1934 (Chicago
    #   Tribune "Ask Tom Why", 22 Jul 2007 / 13 Jun 2010; WGN-TV 30 Apr 2021). record_low −32.8 °C
    #   (−27 °F, 20 Jan 1985; same). tmax/tmin: NWS Chicago CLI reports for O'Hare (1991–2020 normal
    #   for 22–24 Jan: 31 / 18 °F = −0.6 / −7.8 °C) and pogoda33.pl (whole degrees, station unnamed):
    #   within 1 °C except the summer minima (pogoda33 1.3–1.4 °C warmer, likely Midway): kept.
    # gust_max 120 → 135 km/h: 84 mph on 27 Mar 1991, the highest gust at O'Hare (Chicago Tribune "Ask Tom
    #   Why", 27 Feb 2003). dew_max 32.0 → 32.2 °C: 90 °F at Appleton, 13 Jul 1995 (WGN-TV "Has the dew
    #   point ever reached 100 degrees?", citing C. C. Burt); Chicago's own record is 83 °F = 28.3 °C,
    #   30 Jul 1999 (same).
    # Unverified: full O'Hare 1991–2020 table, monthly dew points, winds.
    Station("Dfa", "Chicago O'Hare", 41.98, -87.90, "NOAA NCEI 1991–2020 normals",
            (-0.2, 2.0, 8.5, 15.3, 21.6, 27.1, 29.3, 28.3, 24.4, 17.2, 9.6, 2.6),
            (-8.1, -6.1, -0.9, 4.2, 9.8, 15.6, 18.7, 18.1, 13.6, 6.9, 0.8, -5.0),
            (-9.0, -7.0, -3.0, 2.0, 8.0, 14.0, 17.0, 17.0, 12.0, 5.0, -1.0, -6.0),
            (19, 18, 19, 19, 16, 15, 13, 13, 14, 16, 18, 18), 40.6, -32.8, 32.2, 135.0, 7.0),
    # Sources — record_high 38.2 °C at VDNKh, 29 Jul 2010 (Wikipedia "VVC weather station" table,
    #   1991–2020 normals, extremes 1879–present; hotelsmoscow.org). record_low −42.1 → −42.2 °C,
    #   January 1940 (hotelsmoscow.org "Moscow Weather" and the forum copy of Wikipedia "Moscow"; the
    #   VDNKh site itself, since 1948, has −38.1 °C). tmax/tmin: climatestotravel.com "Moscow" table
    #   (whole degrees): within 1 °C (Nov max 1.2).
    # gust_max 110 → 130 km/h: gusts up to 130 km/h in the storm of 13–14 Jul 2016 (Russian Emergencies
    #   Ministry via Sputnik Serbia, 14 Jul 2016) — a reported city value, not a VDNKh station record.
    # Unverified: dew points, winds, dew_max 24 °C.
    Station("Dfb", "Moscow VDNKh", 55.83, 37.62, "Roshydromet, 1991–2020",
            (-4.0, -3.0, 2.6, 11.3, 18.7, 22.0, 24.3, 22.3, 16.3, 9.0, 2.2, -2.2),
            (-9.1, -9.0, -4.4, 2.2, 7.7, 11.9, 14.0, 12.1, 7.3, 2.4, -2.5, -6.9),
            (-10.0, -10.0, -6.0, 0.0, 5.0, 10.0, 13.0, 12.0, 8.0, 3.0, -2.0, -7.0),
            (11, 11, 11, 10, 10, 9, 8, 8, 9, 10, 11, 11), 38.2, -42.2, 24.0, 130.0, 7.0),
    # Sources — tmax/tmin replaced by the 1991–2020 normals of climate-zone.com "Fairbanks, Alaska climate"
    #   (°F, converted): the remembered Feb–Apr values were 1.3–1.8 °C too cold. record_low −51.7 →
    #   −54.4 °C (−66 °F, 14 Jan 1934; WGN-TV "Has Fairbanks recorded new temperature records?" and the
    #   Fairbanks International Airport climate box, liquisearch.com); record_high 37.8 → 37.2 °C (99 °F,
    #   July; same box). dew_max 19.0 → 19.4 °C: 67 °F on 30 Jul 1994, the highest reliable dew point
    #   since 1951 (ak-wx.blogspot.com "High Dew Points", 30 Jul 2010).
    # Unverified: monthly dew points, winds (Sep 2016 mean 4.6 mph = 7.4 km/h, akclimate.org: consistent),
    #   gust 80 km/h.
    Station("Dfc", "Fairbanks", 64.80, -147.88, "NOAA NCEI 1991–2020 normals",
            (-17.2, -11.1, -3.9, 7.8, 16.7, 22.2, 22.8, 18.9, 12.8, 1.1, -11.1, -15.6),
            (-27.2, -23.9, -19.4, -5.6, 3.9, 10.0, 11.7, 8.9, 2.2, -7.8, -20.0, -25.0),
            (-30.0, -27.0, -22.0, -10.0, -1.0, 6.0, 9.0, 7.0, 1.0, -8.0, -21.0, -27.0),
            (5, 6, 8, 9, 11, 11, 10, 9, 9, 7, 5, 5), 37.2, -54.4, 19.4, 80.0, 8.0),
    # Sources — records 41.9 °C (24 Jul 1999) and −27.4 °C (22 Feb 1966) at the Nanjiao (southern
    #   suburbs) observatory (AFP via apsradionews.com, Jun 2023; hotelsbeijingchina.com). tmax/tmin:
    #   compared with CMA 1971–2000 (liquisearch.com copy of Wikipedia "Geography of Beijing"): ours are
    #   0–1.2 °C warmer, as expected of 1991–2020; kept, the 1991–2020 table itself unverified.
    # Unverified: dew points, winds, gust 90 km/h, dew_max 28 °C.
    Station("Dwa", "Beijing", 39.93, 116.28, "China Meteorological Administration, 1991–2020",
            (2.2, 6.0, 12.8, 20.8, 27.0, 30.7, 31.6, 30.4, 26.2, 19.4, 10.3, 3.8),
            (-7.5, -4.6, 1.3, 8.5, 14.6, 19.4, 22.5, 21.4, 15.8, 8.6, 0.5, -5.5),
            (-15.0, -12.0, -7.0, 1.0, 8.0, 15.0, 21.0, 21.0, 14.0, 5.0, -4.0, -12.0),
            (9, 10, 11, 11, 10, 8, 7, 7, 7, 8, 9, 9), 41.9, -27.4, 28.0, 90.0, 6.0),
    # Sources — records 26.1 °C (79 °F, 13 Jul 1993) and −48.9 °C (−56 °F, 3 Feb 1924) (WOOD-TV
    #   "Waiting for summer in northern Alaska", 2023; 13newsnow.com). gust_max 120 → 135 km/h: 84 mph on
    #   15 Oct 1963 (visualfoodie.com "Record highs and lows for Barrow weather", from NWS records).
    #   tmax: mean daily high from −5.2 °F (−20.7 °C) in January to 47.7 °F (8.7 °C) in July (WOOD-TV):
    #   within 0.5 °C. Winds: single-month means 11.7–14.7 mph (19–24 km/h, akclimate.org 2011
    #   summaries): consistent.
    # Unverified: the other months' 1991–2020 normals, dew points, dew_max 15 °C.
    Station("ET", "Utqiagvik", 71.29, -156.77, "NOAA NCEI 1991–2020 normals",
            (-20.9, -22.6, -21.3, -11.5, -1.6, 5.1, 9.2, 7.0, 2.6, -4.5, -12.3, -18.3),
            (-28.3, -29.7, -28.6, -20.5, -7.0, 0.0, 2.6, 2.1, -0.5, -9.3, -19.1, -25.3),
            (-31.0, -33.0, -32.0, -23.0, -9.0, -1.0, 2.5, 2.5, -1.0, -9.0, -20.0, -28.0),
            (20, 19, 18, 18, 19, 18, 18, 20, 21, 22, 21, 19), 26.1, -48.9, 15.0, 135.0, 7.0),
)


def stations(group: str | None = None, *, exclude_group: str | None = None) -> tuple[Station, ...]:
    """The reference stations, optionally of one Köppen group only, or without one."""
    for g in (group, exclude_group):
        if g is not None and g not in GROUPS:
            raise ValueError(f"unknown climate group {g!r}; one of {', '.join(GROUPS)}")
    return tuple(s for s in STATIONS if (group is None or s.group == group)
                 and (exclude_group is None or s.group != exclude_group))
