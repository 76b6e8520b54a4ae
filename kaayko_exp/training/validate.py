"""Checks on a training config that types cannot express, and on the loaded data's size.

:func:`validate_train_config` runs before the run directory is created (ConfigError);
:func:`check_enough_data` runs on the loaded table, before any stage writes an artifact.
Keep this module light: it is imported on the way to every run.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from kaayko_exp.errors import ConfigError, DataError
from kaayko_exp.training.objectives import check_objective

# The smallest table a run trains, validates and tests on.
MIN_ROWS = 1000


def _unknown_keys(cfg: Any, schema: Any, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Keys of ``cfg`` that the typed schema does not define (``+key=value`` slips past struct mode)."""
    out: list[tuple[str, list[str]]] = []
    if not isinstance(cfg, DictConfig) or not isinstance(schema, DictConfig):
        return out
    structured = OmegaConf.get_type(schema) not in (dict, None)  # free-form dicts (model.params) are open
    known = [str(k) for k in schema]  # (``in`` is False for a key whose value is MISSING)
    for key in cfg:
        key = str(key)
        if not prefix and key == "hydra":
            continue
        if key not in known:
            if structured:
                out.append((prefix + key, known))
            continue
        out += _unknown_keys(cfg._get_node(key), schema._get_node(key), f"{prefix}{key}.")
    return out


def missing_keys(node: Any) -> list[str]:
    """Full keys of the settings whose value is ``???``: ``OmegaConf.missing_keys`` without resolving each value
    on the way (an interpolation is a value, not a missing one), about ten times faster; every sweep trial
    checks its config."""
    out: list[str] = []
    content = node.__dict__.get("_content")
    items = content.items() if isinstance(content, dict) else enumerate(content) if isinstance(content, list) else ()
    for key, child in items:
        if child._is_missing():
            out.append(node._get_full_key(key))
        elif isinstance(child, (DictConfig, ListConfig)) and not child._is_interpolation():
            out += missing_keys(child)
    return out


@functools.lru_cache(maxsize=1)
def train_schema() -> DictConfig:
    """The typed schema of a training config, built once per process (every sweep trial checks against it);
    read-only, so no check can change it for the next."""
    from kaayko_exp.config import TrainConfig

    schema = OmegaConf.structured(TrainConfig)
    OmegaConf.set_readonly(schema, True)
    return schema


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse settings the schema does not define (e.g. ``+modle=xgboost``), naming the close match."""
    unknown = _unknown_keys(cfg, train_schema())
    if not unknown:
        return
    key, siblings = unknown[0]
    leaf = key.rsplit(".", 1)[-1]
    parent = key[: -len(leaf)]
    close = difflib.get_close_matches(leaf, siblings, n=1)
    hint = f" Did you mean '{parent}{close[0]}'?" if close else f" Known keys here: {', '.join(siblings)}."
    more = f" (and {len(unknown) - 1} more: {', '.join(k for k, _ in unknown[1:])})" if len(unknown) > 1 else ""
    raise ConfigError(
        f"'{key}'{more} is not a kaayko-exp setting, so it would be silently ignored.{hint} Remove it or fix "
        "its spelling (a config group is chosen without '+', e.g. model=xgboost); `python train.py --help` "
        "lists the groups and keys."
    )


def validate_train_config(cfg: DictConfig) -> None:
    """Checks the types cannot express; raise ConfigError before any work starts."""
    from kaayko_exp.tracking import check_logger

    check_known_keys(cfg)
    check_logger(cfg)
    missing = sorted(missing_keys(cfg))
    if missing:
        hint = " (e.g. data=kaayko_csv data.path=tests/data/kaayko_sample)" if "data.path" in missing else ""
        raise ConfigError(
            f"These settings have no value and must be given on the command line: {', '.join(missing)}{hint}."
        )
    if cfg.data.source != "synthetic" and not cfg.data.path:
        raise ConfigError(
            f"data={cfg.data.source} needs the location of the data: add data.path=<dir or file>, e.g. "
            "data=kaayko_csv data.path=tests/data/kaayko_sample (a directory of <Lake>/<YYYY-MM>.csv files) or "
            "data=parquet data.path='/data/kaayko/*.parquet'."
        )
    ss = cfg.sample_size
    if ss.rows is not None and ss.rows <= 0:
        raise ConfigError(f"sample_size.rows={ss.rows}: the row count must be a positive integer, e.g. sample_size.rows=5000.")
    if ss.fraction is not None and not 0 < ss.fraction <= 1:
        raise ConfigError(
            f"sample_size.fraction={ss.fraction}: a fraction of the source must be in (0, 1]; use e.g. 0.02 for 2 %, "
            "or sample_size.rows=N for an exact count."
        )
    planned = planned_rows(cfg)
    if planned is not None and planned < MIN_ROWS:
        raise ConfigError(
            f"sample_size={ss.name} keeps {planned:,} rows, too few to train, validate and test on (at least "
            f"{MIN_ROWS:,}). Use a larger sample: sample_size=tiny (3,000 rows), sample_size=complete, or "
            f"sample_size.rows=N with N >= {MIN_ROWS:,}."
        )
    sp = cfg.split
    if not 0 < sp.test_fraction < 1:
        raise ConfigError(f"split.test_fraction={sp.test_fraction} must be between 0 and 1 (exclusive), e.g. 0.2.")
    if not 0 <= sp.val_fraction < 1:
        raise ConfigError(f"split.val_fraction={sp.val_fraction} must be in [0, 1), e.g. 0.1 (0 disables validation).")
    if sp.test_months < 1:
        raise ConfigError(f"split.test_months={sp.test_months} must be at least 1.")
    ev = cfg.evaluation
    if ev.cv_folds == 1 or ev.cv_folds < 0:
        raise ConfigError(f"evaluation.cv_folds={ev.cv_folds}: use 0 (no cross-validation) or K >= 2 folds.")
    check_objective(cfg)
    ck = cfg.checkpointing
    if ck.every < 0 or ck.keep_last < 1:
        raise ConfigError(
            f"checkpointing.every={ck.every}, keep_last={ck.keep_last}: every must be >= 0 (0: stage boundaries "
            "only) and keep_last >= 1."
        )
    if cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} must be a non-negative integer.")
    from kaayko_exp.features.spec import validate_features_config
    from kaayko_exp.models import validate_model_config

    validate_features_config(cfg.features)
    # real sources have no row count before loading: size limits are checked again when the model is built
    validate_model_config(cfg.model, n_rows=planned or 0, features=cfg.features)
    if str(OmegaConf.select(cfg, "backend.name", default="local")) == "dask":
        from kaayko_exp.cluster.stages import check_config

        check_config(cfg)  # what backend=dask cannot run (other model families, CV folds)


def planned_rows(cfg: DictConfig) -> Optional[int]:
    """Rows the run will train on, as far as the config tells (None for real data without an exact count)."""
    ss = cfg.sample_size
    if ss.rows is not None:
        return int(ss.rows)
    if cfg.data.source == "synthetic":  # the complete table is the lake rows plus the coverage rows
        from kaayko_exp.data import synthetic_plan

        # the row count an earlier run recorded in the cache (read only: a refused config writes nothing)
        return synthetic_plan(cfg.data, ss, int(cfg.get("seed", 0) or 0), cfg.get("cache_dir"))[2]
    return None


def _min_lakes(cfg: Any) -> int:
    """Lakes the split needs: a test lake and a training lake, plus a validation lake when asked for."""
    base = 2 if str(cfg.split.name) == "lakes" else 1
    return base + (1 if float(cfg.split.val_fraction) > 0 else 0)


def check_enough_data(frame: Any, info: dict[str, Any], cfg: Any) -> None:
    """Stop before any artifact when the loaded table is too small for the split (rows or lakes)."""
    rows, lakes = len(frame), int(frame["lake"].nunique()) if "lake" in frame.columns else 0
    need_lakes = _min_lakes(cfg)
    if rows >= MIN_ROWS and lakes >= need_lakes:
        return
    source_rows = int(info.get("source_rows") or rows)
    what = (f"at least {MIN_ROWS:,} rows and {need_lakes} lakes (split={cfg.split.name}"
            f"{', with a validation lake' if float(cfg.split.val_fraction) > 0 else ''})")
    if rows < source_rows:
        name = (info.get("sample") or {}).get("name", cfg.sample_size.name)
        raise ConfigError(
            f"sample_size={name} keeps {rows:,} of the {source_rows:,} rows of {info.get('path') or cfg.data.source} "
            f"({lakes} lake(s)); a run needs {what}. Use sample_size=complete, or sample_size.rows=N with a "
            f"larger N (at most {source_rows:,})."
        )
    raise DataError(
        f"{info.get('path') or cfg.data.source} holds {rows:,} rows from {lakes} lake(s); a run needs {what}. "
        "Use a larger data set."
    )
