"""The real lake catalogue shipped with the package (MIT, © 2025 Kaayko Paddle Intelligence).

``global_lakes.csv`` lists 4,904 real lakes (name, lat, lng, type, region, base_lake);
``paddlingout_spots.csv`` the 17 paddlingOut spots the original project used as its
test locations. See ``LICENSE-kaayko.txt`` next to them. ``synthetic_lakes`` picks the
fixed lake list of the synthetic generator from both.
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


@functools.lru_cache(maxsize=8)
def _synthetic_lakes(n_lakes: int) -> pd.DataFrame:
    lakes = _lakes()
    spots = _spots()
    # Primary catalogue lakes: first row of each name that is its own base lake.
    primary = lakes[lakes["name"] == lakes["base_lake"]].drop_duplicates("name")
    primary = primary[primary["lat"].abs() <= 85.0]
    spot_rows = pd.DataFrame({
        "name": spots["name"],
        "lat": spots["lat"].astype(float),
        "lng": spots["lng"].astype(float),
        "type": spots["type"],
        "region": [_spot_region(n, r, primary) for n, r in zip(spots["name"], spots["region"])],
        "base_lake": spots["name"],
        "is_spot": True,
    })
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
