"""The real lake catalogue shipped with the package (MIT, © 2025 Kaayko Paddle Intelligence).

``global_lakes.csv`` lists 4,904 real lakes (name, lat, lng, type, region, base_lake);
``paddlingout_spots.csv`` the 17 paddlingOut spots the original project used as its
test locations. See ``LICENSE-kaayko.txt`` next to them. ``synthetic_lakes`` picks the
fixed lake list of the synthetic generator from both; ``lake_index`` and ``nearest_lakes``
look a lake up by name or by coordinates (prediction requests that give only a lake).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

CATALOGUE_DIR = Path(__file__).resolve().parent
LAKES_CSV = CATALOGUE_DIR / "global_lakes.csv"
SPOTS_CSV = CATALOGUE_DIR / "paddlingout_spots.csv"
LICENSE = CATALOGUE_DIR / "LICENSE-kaayko.txt"

# Lakes of the real sample: always part of the synthetic lake list, so synthetic and
# real rows of the same lake can be compared (python -m kaayko_exp.data.compare_real).
SAMPLE_LAKES: tuple[str, ...] = (
    "Lake Mead", "Lake Michigan", "Lake Minnewanka", "Windermere", "Yellowstone Lake",
)
# Fixed seed of the lake selection: the lake list does not change with the run's seed.
_SELECTION_SEED = 20250101
# Latitude bands the catalogue lakes are drawn from round-robin, so every climate zone
# and both hemispheres are present even though the catalogue is mostly northern.
_LAT_BANDS = (-90.0, -40.0, -23.5, -10.0, 10.0, 23.5, 40.0, 49.0, 66.5, 90.0)


@functools.lru_cache(maxsize=1)
def _lakes() -> pd.DataFrame:
    return pd.read_csv(LAKES_CSV, dtype={"name": str, "type": str, "region": str, "base_lake": str})


@functools.lru_cache(maxsize=1)
def _spots() -> pd.DataFrame:
    return pd.read_csv(SPOTS_CSV, dtype={"name": str, "type": str, "region": str})


def load_lakes() -> pd.DataFrame:
    """The global lake catalogue: name, lat, lng, type, region, base_lake (a copy)."""
    return _lakes().copy()


def paddlingout_spots() -> pd.DataFrame:
    """The 17 paddlingOut spots: name, lat, lng, type, region (a copy)."""
    return _spots().copy()


def _spot_region(name: str, region: str, primary: pd.DataFrame) -> str:
    """``Colorado_USA`` → ``USA_Colorado``; a spot listed in the catalogue keeps its region there."""
    hit = primary.loc[primary["name"] == name, "region"]
    if len(hit):
        return str(hit.iloc[0])
    parts = region.split("_")
    if len(parts) > 1 and parts[-1] == "USA":
        return "USA_" + "_".join(parts[:-1])
    return region


def _primary() -> pd.DataFrame:
    """Primary catalogue lakes: first row of each name that is its own base lake."""
    lakes = _lakes()
    primary = lakes[lakes["name"] == lakes["base_lake"]].drop_duplicates("name")
    return primary[primary["lat"].abs() <= 85.0]


def _spot_rows(primary: pd.DataFrame) -> pd.DataFrame:
    """The paddlingOut spots as the generator places them (spot coordinates, catalogue-style region)."""
    spots = _spots()
    return pd.DataFrame({
        "name": spots["name"],
        "lat": spots["lat"].astype(float),
        "lng": spots["lng"].astype(float),
        "type": spots["type"],
        "region": [_spot_region(n, r, primary) for n, r in zip(spots["name"], spots["region"])],
        "base_lake": spots["name"],
        "is_spot": True,
    })


@functools.lru_cache(maxsize=8)
def _synthetic_lakes(n_lakes: int) -> pd.DataFrame:
    primary = _primary()
    spot_rows = _spot_rows(primary)
    n_catalogue = n_lakes - len(spot_rows)
    if n_catalogue < len(SAMPLE_LAKES):
        raise ValueError(f"need at least {len(spot_rows) + len(SAMPLE_LAKES)} lakes")
    pool = primary[~primary["name"].isin(spot_rows["name"])]
    forced = pool[pool["name"].isin(SAMPLE_LAKES)]
    rest = pool[~pool["name"].isin(SAMPLE_LAKES)]
    band = np.digitize(rest["lat"].to_numpy(), _LAT_BANDS)
    rng = np.random.default_rng(_SELECTION_SEED)
    order = rng.permutation(len(rest))
    # Round-robin over latitude bands in a fixed random order within each band.
    rank_in_band = np.empty(len(rest), dtype=np.int64)
    for b in np.unique(band):
        members = order[band[order] == b]
        rank_in_band[members] = np.arange(len(members))
    pick = np.lexsort((band, rank_in_band))[: n_catalogue - len(forced)]
    chosen = pd.concat([forced, rest.iloc[np.sort(pick)]], ignore_index=True)
    chosen = chosen.assign(is_spot=False)[list(spot_rows.columns)]
    out = pd.concat([spot_rows, chosen], ignore_index=True)
    return out.sort_values("name", kind="stable").reset_index(drop=True)


def synthetic_lakes(n_lakes: int = 100) -> pd.DataFrame:
    """The synthetic generator's lakes: the 17 paddlingOut spots + catalogue lakes, sorted by name.

    Columns: name, lat, lng, type, region, base_lake, is_spot. Deterministic (does not
    depend on the run's seed); always contains the five lakes of the real sample.
    """
    return _synthetic_lakes(int(n_lakes)).copy()


# ----------------------------------------------------------------------------- look-ups
#: A coordinate pair takes the lake fields (type, region, base lake) of the nearest catalogue
#: lake only if that lake lies within this distance (great-circle, km); farther away there is no match.
NEAREST_LAKE_KM = 25.0
_EARTH_KM = 6371.0088
LAKE_FIELDS = ("name", "lat", "lng", "type", "region", "base_lake")


@functools.lru_cache(maxsize=1)
def lake_table() -> pd.DataFrame:
    """Every lake a request can name: the 17 spots exactly as the synthetic generator places them,
    then the primary catalogue lakes, then the other catalogue rows (columns ``LAKE_FIELDS``)."""
    primary = _primary()
    spots = _spot_rows(primary)
    rest = _lakes()[~_lakes()["name"].isin(spots["name"])]
    first = rest.index.isin(primary.index)
    table = pd.concat([spots, rest[first], rest[~first]], ignore_index=True)[list(LAKE_FIELDS)]
    return table.astype({"lat": np.float64, "lng": np.float64})


def _km(lat0: float, lng0: float, lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    p0, p = np.radians(lat0), np.radians(lat)
    dlat, dlng = p - p0, np.radians(lng - lng0)
    a = np.sin(dlat / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dlng / 2) ** 2
    return 2.0 * _EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@functools.lru_cache(maxsize=1)
def _by_name() -> dict[str, int | None]:
    """name (and its casefold) -> row of lake_table(); None when the name means several distant lakes."""
    table = lake_table()
    names = table["name"].astype(str).tolist()
    lat, lng = table["lat"].to_numpy(), table["lng"].to_numpy()
    n_first = len(_spots()) + len(_primary())  # spots and primary lakes: one row per name, they win
    out: dict[str, int | None] = {}
    for fold in (False, True):
        seen: dict[str, int | None] = {}
        for i, name in enumerate(names):
            key = name.casefold() if fold else name
            j = seen.get(key, -1)
            if j == -1:
                seen[key] = i
            elif j is not None and j >= n_first and _km(lat[j], lng[j], lat[i:i + 1], lng[i:i + 1])[0] > NEAREST_LAKE_KM:
                seen[key] = None  # two distinct lakes share the name: ambiguous
        for key, value in seen.items():
            out.setdefault(key, value)
    return out


def lake_index(name: str) -> int:
    """Row of ``lake_table()`` for lake ``name`` (exact spelling first, then ignoring case).

    A paddlingOut spot wins, then the primary entry of a lake; a name shared by catalogue
    rows farther apart than ``NEAREST_LAKE_KM`` is ambiguous. Raises :class:`LookupError`
    (with the reason) for an unknown or ambiguous name.
    """
    index = _by_name()
    key = name if name in index else name.casefold()
    if key not in index:
        raise LookupError(f"'{name}' is not a lake of the catalogue")
    i = index[key]
    if i is None:
        raise LookupError(f"'{name}' names several lakes of the catalogue far apart")
    return i


@functools.lru_cache(maxsize=1)
def lake_columns() -> dict[str, np.ndarray]:
    """``lake_table()``'s columns as numpy arrays, built once (serving indexes them per request)."""
    table = lake_table()
    return {name: table[name].to_numpy() for name in LAKE_FIELDS}


def nearest_lakes(lat: np.ndarray, lng: np.ndarray, max_km: float = NEAREST_LAKE_KM) -> np.ndarray:
    """Row of ``lake_table()`` nearest to each coordinate pair, or -1 where none lies within ``max_km``."""
    table = lake_table()
    tlat, tlng = table["lat"].to_numpy(), table["lng"].to_numpy()
    lat = np.asarray(lat, dtype=np.float64)
    lng = np.asarray(lng, dtype=np.float64)
    pairs, inverse = np.unique(np.stack([lat, lng], axis=1), axis=0, return_inverse=True)
    found = np.full(len(pairs), -1, dtype=np.int64)
    for k, (la, lo) in enumerate(pairs):
        d = _km(la, lo, tlat, tlng)
        i = int(np.argmin(d))
        if d[i] <= max_km:
            found[k] = i
    return found[np.asarray(inverse).reshape(-1)]
