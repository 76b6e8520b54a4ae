"""``data=mixed``: the synthetic sample plus a user's real rows, each lake from one source.

Synthetic lakes that share a name with a real lake or lie within ``synthetic.EXCLUDE_RADIUS_KM``
of one are left out of the synthetic table, so no lake is made of both sources and a split by
lake holds out whole lakes. ``data.real_weight`` weighs the real rows without any change to the
fit: each real row appears ``floor(w)`` times plus once more for a seeded share ``w − floor(w)``
of the rows. Copies keep the row's lake and datetime, so every split (by lake, spot or time)
puts all copies of a row on the same side — weighting never leaks a row across the split.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from kaayko_exp.data import cache, synthetic
from kaayko_exp.data.rng import uniform
from kaayko_exp.data.sampling import cfg_get, resolve_rows
from kaayko_exp.data.sources import _concat, fingerprint, read_table
from kaayko_exp.errors import ConfigError

_S_WEIGHT = 7001  # rng stream of the fractional copies


def real_weight(data_cfg: Any) -> float:
    w = cfg_get(data_cfg, "real_weight", 1.0)
    try:
        w = float(w)
    except (TypeError, ValueError):
        w = float("nan")
    if not (w > 0 and w <= 100):
        raise ConfigError(f"data.real_weight={cfg_get(data_cfg, 'real_weight')!r} must be a number in (0, 100]: "
                          "how much each real row counts against a synthetic one (1 = equal, 5 = five times).")
    return w


def weighted_rows(real: pd.DataFrame, weight: float, seed: int) -> pd.DataFrame:
    """Each row ``floor(weight)`` times, plus once for a seeded share of ``weight − floor(weight)``; sorted."""
    whole = int(np.floor(weight))
    extra = uniform(seed, _S_WEIGHT, np.arange(len(real))) < (weight - whole)
    counts = whole + extra.astype(np.int64)
    out = real.loc[real.index.repeat(counts)]
    return out.sort_values(["lake", "datetime"], kind="stable").reset_index(drop=True)


def load_mixed(data_cfg: Any, sample_cfg: Any, seed: int, cache_dir: Any) -> tuple[pd.DataFrame, dict]:
    from kaayko_exp.data import _synthetic_params, global_share, synthetic_positions

    path = cfg_get(data_cfg, "path")
    if path in (None, "", "???"):
        raise ConfigError("data=mixed needs data.path: your real rows (a directory of <Lake>/<YYYY-MM>.csv files, "
                          "a .csv/.parquet file or a glob), e.g. data=mixed data.path=tests/data/kaayko_sample.")
    total, lakes, noise, coverage = _synthetic_params(data_cfg)
    weight = real_weight(data_cfg)
    fp, files = fingerprint(str(path))
    real = read_table(str(path))
    places = real.groupby(real["lake"].astype(str), observed=True)[["latitude", "longitude"]].first()
    exclude = tuple((str(n), float(r.latitude), float(r.longitude)) for n, r in places.iterrows())
    complete = synthetic.layout(total, lakes, exclude, coverage).total_rows
    k, fraction = resolve_rows(sample_cfg, complete, source=f"the synthetic table ({complete:,} rows with data.total_rows={total})")
    version = f"{synthetic.GENERATOR_VERSION}+{synthetic.source_digest()}"
    describe = {"source": "mixed", "total_rows": total, "lakes": lakes, "label_noise": noise, "coverage": coverage, "rows": k,
                "seed": int(seed), "generator_version": version, "exclude": [list(e) for e in exclude]}
    share = global_share(data_cfg)
    if share is not None:  # absent for a config from before the key: its sample (and cache key) as then
        describe["global_share"] = share

    def build() -> pd.DataFrame:
        return synthetic.generate_rows(synthetic_positions(describe, complete), seed=seed, total_rows=total,
                                       n_lakes=lakes, label_noise=noise, exclude=exclude, coverage_per_cell=coverage)

    synth, cinfo = cache.get_or_build(cache_dir, cache.content_key(describe), build, describe)
    real_part = weighted_rows(real, weight, seed)
    df = _concat([synth, real_part]).sort_values(["lake", "datetime"], kind="stable").reset_index(drop=True)
    info = {
        "source": "mixed", "path": str(path), "rows": len(df), "source_rows": complete + len(real),
        "fingerprint": hashlib.sha256(f"{fp}|{sorted(describe.items())!r}|{weight}".encode()).hexdigest()[:24],
        "sample": {"name": str(cfg_get(sample_cfg, "name", "custom")), "fraction": float(fraction), "rows": len(df)},
        "seed": int(seed), "generator_version": version, "label_noise": noise,
        "global_share": describe.get("global_share"), "cache": cinfo, "files": len(files),
        "real_rows": len(real), "real_weight": weight, "real_lakes": sorted(places.index), "synthetic_rows": len(synth),
        "excluded_synthetic_lakes": synthetic.DEFAULT_LAKES - len(synthetic.layout(total, lakes, exclude).lakes)
        if lakes == synthetic.DEFAULT_LAKES else None,
    }
    return df, info
