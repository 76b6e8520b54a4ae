"""The data layer: load the Kaayko table (synthetic or real), sample it, cache it.

Public API::

    load_dataset(data_cfg, sample_cfg, *, seed, cache_dir) -> (frame, info)
    read_table(path, *, require_target=True) -> frame
    iter_table_batches(path, batch_size) -> iterator of frames
    validate_frame(df, origin, *, require_target=True) -> frame

``data_cfg`` / ``sample_cfg`` are the ``data`` and ``sample_size`` config nodes
(DictConfig or the dataclasses of :mod:`kaayko_exp.config`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from kaayko_exp import atomic
from kaayko_exp.data import cache, synthetic
from kaayko_exp.data.sampling import cfg_get, resolve_rows, sample_positions, stratified_positions
from kaayko_exp.data.sources import fingerprint, iter_table_batches, read_table
from kaayko_exp.data.validate import validate_frame
from kaayko_exp.errors import ConfigError

__all__ = ["load_dataset", "read_table", "iter_table_batches", "validate_frame", "SOURCES"]

logger = logging.getLogger(__name__)

SOURCES = ("synthetic", "kaayko_csv", "parquet", "mixed")
_LOADER_VERSION = "1"


def _loader_digest() -> str:
    """Hash of the code that turns files into the table (part of real-data cache keys)."""
    h = hashlib.sha256(_LOADER_VERSION.encode())
    here = Path(__file__).resolve().parent
    for name in ("sources.py", "validate.py", "schema.py", "sampling.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _sample_info(sample_cfg: Any, fraction: float, rows: int) -> dict[str, Any]:
    return {"name": str(cfg_get(sample_cfg, "name", "custom")), "fraction": float(fraction), "rows": int(rows)}


def _synthetic_params(data_cfg: Any) -> tuple[int, int, float, float]:
    """(lake rows, lakes, label noise, coverage rows per cell) of the synthetic table, checked."""
    total = cfg_get(data_cfg, "total_rows", synthetic.DEFAULT_TOTAL_ROWS)
    coverage = cfg_get(data_cfg, "coverage", synthetic.DEFAULT_COVERAGE)
    lakes = cfg_get(data_cfg, "lakes", synthetic.DEFAULT_LAKES)
    noise = cfg_get(data_cfg, "label_noise", 0.0)
    if not isinstance(total, int) or total <= 0:
        raise ConfigError(f"data.total_rows={total!r} must be a positive whole number (the complete synthetic "
                          "table has 2434601 rows by default).")
    if not isinstance(lakes, int) or not 22 <= lakes <= 1000:
        raise ConfigError(f"data.lakes={lakes!r} must be a whole number from 22 to 1000 (17 paddlingOut spots "
                          "plus the 5 lakes of the real sample at least).")
    if total < lakes:
        raise ConfigError(f"data.total_rows={total} is smaller than data.lakes={lakes}; every lake needs rows.")
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ConfigError(f"data.label_noise={noise!r} is not a number; use 0 (default) or e.g. 0.25.") from None
    if not 0.0 <= noise <= 5.0:
        raise ConfigError(f"data.label_noise={noise!r} must be between 0 and 5 (the standard deviation, in score "
                          "points, of rater disagreement added before rounding; 0 = labels equal the rule).")
    try:
        coverage = float(coverage)
    except (TypeError, ValueError):
        coverage = -1.0
    if not 0.0 <= coverage <= 10.0:
        raise ConfigError(f"data.coverage={cfg_get(data_cfg, 'coverage')!r} must be a number from 0 to 10: synthetic rows "
                          "per plausible cell of the reference climates' envelopes (1.0, the default, covers every cell "
                          "of the coverage grid; 0 turns the coverage component off).")
    return total, lakes, noise, coverage


def global_share(data_cfg: Any) -> float | None:
    """``data.global_share``, checked: the share of a sample's rows drawn from the synthetic table's global
    coverage component; None (null, or a config from before the key) draws the sample uniformly."""
    share = cfg_get(data_cfg, "global_share")
    if share is None:
        return None
    try:
        value = float(share) if not isinstance(share, bool) else -1.0
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"data.global_share={share!r} must be a number from 0 to 1: the share of a sample's rows "
                          f"drawn from the global coverage component ({synthetic.DEFAULT_GLOBAL_SHARE:g}, the default; "
                          "null draws the sample uniformly from the whole table).")
    return value


def synthetic_positions(describe: dict[str, Any], complete: int) -> Any:
    """The sorted row positions of a synthetic sample described by :func:`synthetic_plan` (or ``data=mixed``):
    ``global_share`` of them in the global component (:func:`stratified_positions`), the rest uniform over
    the lake and station rows; every path that builds the sample (local, dask workers, mixed) draws these."""
    return stratified_positions(complete, int(describe["rows"]), int(describe["seed"]),
                                synthetic.global_rows(describe["coverage"]), describe.get("global_share"))


#: ``<cache_dir>/plans/<key>.json``: the complete synthetic table's row count per (lake rows, lakes, coverage,
#: generator version), so a run resolves its sample size without laying the table out again (the layout is
#: ~0.3 s of every run's start-up at the default data). Keyed like the dataset entries, trusted as they are.
PLANS = "plans"


def complete_synthetic_rows(total: int, lakes: int, coverage: float, version: str, cache_dir: Any = None, *,
                            remember: bool = False) -> int:
    """The complete synthetic table's rows (:func:`synthetic.complete_rows`): read from ``cache_dir``'s plans
    when an earlier run recorded them, else computed, and recorded there when ``remember`` (a run that has
    accepted its config; a config check only reads, so a refused command writes nothing)."""
    if cache_dir is None:
        return synthetic.complete_rows(total, lakes, coverage)
    describe = {"total_rows": int(total), "lakes": int(lakes), "coverage": float(coverage),
                "generator_version": version}
    path = Path(cache_dir) / PLANS / f"{cache.content_key({'plan': 'complete_rows', **describe})}.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("describe") == describe and type(saved.get("complete_rows")) is int and saved["complete_rows"] > 0:
            return saved["complete_rows"]
    except (OSError, ValueError, AttributeError):  # absent or damaged: computed again (and rewritten)
        pass
    rows = synthetic.complete_rows(total, lakes, coverage)
    if remember:
        try:
            atomic.write_json(path, {"complete_rows": rows, "describe": describe})
        except OSError as exc:  # a read-only cache still serves the run; only the shortcut is lost
            logger.warning("could not record the synthetic table's row count in %s: %s", path, exc)
    return rows


def synthetic_plan(data_cfg: Any, sample_cfg: Any, seed: int, cache_dir: Any = None, *,
                   remember: bool = False) -> tuple[dict[str, Any], int, int, float]:
    """What a synthetic dataset is (the cache key's description: lake rows, lakes, label noise, coverage, rows
    taken, seed, generator version), with the complete table's rows, the rows taken and the sampled fraction;
    the local path and the dask workers' path share it. ``cache_dir`` / ``remember``: see
    :func:`complete_synthetic_rows`."""
    total, lakes, noise, coverage = _synthetic_params(data_cfg)
    share = global_share(data_cfg)
    version = f"{synthetic.GENERATOR_VERSION}+{synthetic.source_digest()}"
    complete = complete_synthetic_rows(total, lakes, coverage, version, cache_dir, remember=remember)
    k, fraction = resolve_rows(sample_cfg, complete, source=f"the synthetic table ({complete:,} rows: data.total_rows="
                                                            f"{total} lake rows + the coverage rows of data.coverage={coverage:g})")
    describe = {"source": "synthetic", "total_rows": total, "lakes": lakes, "label_noise": noise, "coverage": coverage,
                "rows": k, "seed": int(seed), "generator_version": version}
    if share is not None:  # absent for a config from before the key: its sample (and cache key) as then
        describe["global_share"] = share
    return describe, complete, k, fraction


def _load_synthetic(data_cfg: Any, sample_cfg: Any, seed: int, cache_dir: Any) -> tuple[pd.DataFrame, dict]:
    describe, complete, k, fraction = synthetic_plan(data_cfg, sample_cfg, seed, cache_dir, remember=True)
    total, lakes, noise, coverage, version = (describe[key] for key in ("total_rows", "lakes", "label_noise", "coverage",
                                                                      "generator_version"))
    key = cache.content_key(describe)

    def build() -> pd.DataFrame:
        logger.info("generating %d synthetic rows (seed %d, %d lakes)", k, seed, lakes)
        if k == complete:
            return synthetic.generate_complete(seed=seed, total_rows=total, n_lakes=lakes, label_noise=noise,
                                               coverage_per_cell=coverage)
        return synthetic.generate_rows(synthetic_positions(describe, complete), seed=seed, total_rows=total,
                                       n_lakes=lakes, label_noise=noise, coverage_per_cell=coverage)

    df, cinfo = cache.get_or_build(cache_dir, key, build, describe)
    info = {
        "source": "synthetic", "path": None, "rows": len(df), "source_rows": complete,
        "fingerprint": hashlib.sha256(repr(sorted(describe.items())).encode()).hexdigest()[:24],
        "sample": _sample_info(sample_cfg, fraction, len(df)), "seed": int(seed),
        "generator_version": version, "label_noise": noise, "coverage": coverage,
        "global_share": describe.get("global_share"), "cache": cinfo,
    }
    return df, info


def _load_real(source: str, data_cfg: Any, sample_cfg: Any, seed: int, cache_dir: Any) -> tuple[pd.DataFrame, dict]:
    path = cfg_get(data_cfg, "path")
    if path in (None, "", "???"):
        example = "../shared/data/kaayko_sample" if source == "kaayko_csv" else "'data/*.parquet'"
        raise ConfigError(
            f"data={source} needs data.path: the {'directory of <Lake>/<YYYY-MM>.csv files' if source == 'kaayko_csv' else 'parquet/CSV file or glob'} "
            f"to load. Add it to the command line, e.g. data={source} data.path={example}."
        )
    path = os.fspath(path)
    fp, files = fingerprint(path)
    describe_base = {"source": source, "path": str(Path(path).expanduser().resolve()) if not any(ch in path for ch in "*?[") else path,
                     "fingerprint": fp, "loader": _loader_digest()}
    # The row count of the source is needed to resolve a fraction; it is cached per fingerprint.
    state: dict[str, Any] = {}

    def full_table() -> pd.DataFrame:
        if "table" not in state:
            state["table"] = read_table(path)
        return state["table"]

    full, full_cinfo = cache.get_or_build(cache_dir, cache.content_key({**describe_base, "sample": "complete"}),
                                          full_table, describe_base)
    n = len(full)
    k, fraction = resolve_rows(sample_cfg, n, source=f"{path} ({len(files)} file(s))")
    if k == n:
        df, cinfo = full, full_cinfo
    else:
        describe = {**describe_base, "rows": k, "seed": int(seed)}

        def build() -> pd.DataFrame:
            positions = sample_positions(n, k, seed)
            return full.iloc[positions].reset_index(drop=True)

        df, cinfo = cache.get_or_build(cache_dir, cache.content_key(describe), build, describe)
    info = {
        "source": source, "path": path, "rows": len(df), "source_rows": n, "fingerprint": fp,
        "sample": _sample_info(sample_cfg, fraction, len(df)), "seed": int(seed),
        "generator_version": None, "files": len(files), "cache": cinfo,
    }
    return df, info


def load_dataset(data_cfg: Any, sample_cfg: Any, *, seed: int, cache_dir: str | os.PathLike = "outputs/.cache"
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The training table for a run: source → (cached) sample, validated, schema dtypes.

    Returns ``(frame, info)``: the frame has the 35 columns of ``schema.COLUMNS`` in
    order with ``schema.DTYPES``, sorted by lake then datetime, index 0..n-1; ``info``
    is JSON-serialisable (source, path, rows, source_rows, fingerprint, sample, seed,
    generator_version, cache{key, path, sha256, hit}). Raises ConfigError for a bad
    source / sample size and DataError for unusable files; nothing is written then.
    """
    source = str(cfg_get(data_cfg, "source", "synthetic"))
    if source not in SOURCES:
        raise ConfigError(f"data.source={source!r} is not known; choose one of {', '.join(SOURCES)} "
                          "(e.g. data=synthetic, data=kaayko_csv data.path=<dir>, data=parquet data.path=<file>).")
    seed = int(seed)
    if source == "synthetic":
        df, info = _load_synthetic(data_cfg, sample_cfg, seed, cache_dir)
    elif source == "mixed":
        from kaayko_exp.data.mixed import load_mixed

        df, info = load_mixed(data_cfg, sample_cfg, seed, cache_dir)
    else:
        df, info = _load_real(source, data_cfg, sample_cfg, seed, cache_dir)
    logger.info("dataset: %s, %d of %d rows (sample %s), %d lakes", source, info["rows"], info["source_rows"],
                info["sample"]["name"], df["lake"].nunique())
    return df, info
