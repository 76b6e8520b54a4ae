"""Honest train / validation / test splits.

* ``lakes`` (default): a seeded share of whole lakes is the test set.
* ``spots``: the 17 paddlingOut spots are the test set (the original's "17 locations",
  this time really unseen).
* ``time``: the most recent ``test_months`` calendar months are the test set.

In every kind, ``val`` is a seeded ``val_fraction`` of the *training* lakes (whole
lakes), disjoint from ``train``; it serves early stopping and intermediate scores.
:func:`cv_folds` is GroupKFold by lake for cross-validation on the training part; :func:`fold_validation`
keeps a share of a fold's training lakes apart for early stopping, as ``val`` does for the final fit.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from kaayko_exp.errors import ConfigError, DataError
from kaayko_exp.data.schema import lake_codes

logger = logging.getLogger(__name__)

KINDS = ("lakes", "spots", "time")


def _lake_codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(codes per row, sorted lake names) for the ``lake`` column."""
    if "lake" not in frame.columns:
        raise DataError("The data has no 'lake' column, so it cannot be split by lake. Load a Kaayko table.")
    lake = frame["lake"]
    if lake.isna().any():
        raise DataError(f"{int(lake.isna().sum())} row(s) have no lake name; every row needs one to be split. "
                        "Drop or fill them in the data.")
    codes, names = lake_codes(lake)
    return codes, np.asarray(names, dtype=object)


def _n_share(n: int, fraction: float) -> int:
    return max(1, int(round(n * fraction)))


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> float:
    value = float(value)
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        raise ConfigError(f"split.{name}={value} is outside {'[0, 1)' if allow_zero else '(0, 1)'}. "
                          f"Set a share such as split.{name}=0.2.")
    return value


def _normalise(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).replace("_", " ")).strip().casefold()


def default_spots() -> list[str]:
    """Names of the 17 paddlingOut spots from the packaged catalogue."""
    from kaayko_exp.data.catalogue import paddlingout_spots

    return [str(n) for n in paddlingout_spots()["name"]]


def _val_lakes(train_lakes: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    if val_fraction <= 0:
        return np.empty(0, dtype=np.int64)
    if len(train_lakes) < 2:
        raise ConfigError(
            f"Only {len(train_lakes)} lake is left for training, so no whole lake can be kept apart for "
            "validation. Use data with more lakes, or set split.val_fraction=0 to train without a validation set."
        )
    n_val = min(_n_share(len(train_lakes), val_fraction), len(train_lakes) - 1)
    return np.sort(rng.permutation(train_lakes)[:n_val])


def split_rows(frame: pd.DataFrame, cfg: Any, seed: int, *, spots: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Row indices ``train``, ``val``, ``test`` (int64, sorted) and a JSON-able ``description``.

    ``spots`` overrides the paddlingOut spot list (tests, other catalogues).
    """
    kind = str(getattr(cfg, "name", "lakes"))
    if kind not in KINDS:
        raise ConfigError(f"Unknown split '{kind}'. Choose one of: {', '.join(KINDS)}.")
    val_fraction = _check_fraction("val_fraction", getattr(cfg, "val_fraction", 0.0), allow_zero=True)
    codes, names = _lake_codes(frame)
    n_lakes = len(names)
    rng = np.random.default_rng([int(seed), 0x5E11])
    description: dict[str, Any] = {"kind": kind, "seed": int(seed), "n_lakes": int(n_lakes)}

    if kind == "lakes":
        test_fraction = _check_fraction("test_fraction", cfg.test_fraction, allow_zero=False)
        if n_lakes < 2:
            raise ConfigError(
                f"The data holds {n_lakes} lake, so no whole lake can be held out for testing while another "
                "trains the model. Use data with at least two lakes (a larger sample_size), or split=time."
            )
        n_test = min(_n_share(n_lakes, test_fraction), n_lakes - 1)
        order = rng.permutation(n_lakes)
        test_lakes = np.sort(order[:n_test])
        train_lakes = np.sort(order[n_test:])
        test_mask = np.isin(codes, test_lakes)
        description["test_fraction"] = test_fraction
    elif kind == "spots":
        spot_names = list(spots) if spots is not None else default_spots()
        wanted = {_normalise(s) for s in spot_names}
        is_spot = np.array([_normalise(n) in wanted for n in names], dtype=bool)
        test_lakes = np.flatnonzero(is_spot)
        if len(test_lakes) == 0:
            raise DataError(
                f"split=spots holds out the {len(spot_names)} paddlingOut spots, but the data contains none of "
                "them (matched by lake name). Use data that includes them (data=synthetic includes them), "
                "or split=lakes."
            )
        if len(test_lakes) == n_lakes:
            raise DataError("Every lake in the data is a paddlingOut spot, so nothing is left to train on. "
                            "Use data with other lakes as well, or split=lakes.")
        train_lakes = np.flatnonzero(~is_spot)
        test_mask = np.isin(codes, test_lakes)
        description["spots_missing"] = sorted(set(spot_names) - {str(names[i]) for i in test_lakes})
    else:  # time
        months = int(cfg.test_months)
        if months < 1:
            raise ConfigError(f"split.test_months={months} must be at least 1.")
        if "datetime" not in frame.columns:
            raise DataError("split=time needs the 'datetime' column, which the data lacks.")
        dt = pd.to_datetime(frame["datetime"], errors="coerce")
        if dt.isna().any():
            raise DataError(f"{int(dt.isna().sum())} row(s) have no valid datetime, so they cannot be placed in "
                            "time. Fix or drop them, or use split=lakes.")
        period = (dt.dt.year.to_numpy(dtype=np.int64) * 12 + dt.dt.month.to_numpy(dtype=np.int64) - 1)
        distinct = np.unique(period)
        if len(distinct) <= months:
            raise ConfigError(
                f"split=time holds out the {months} most recent month(s), but the data spans only "
                f"{len(distinct)} month(s), leaving nothing to train on. Lower split.test_months or use more data."
            )
        cutoff = distinct[-months]
        test_mask = period >= cutoff
        test_lakes = np.unique(codes[test_mask])
        train_lakes = np.unique(codes[~test_mask])
        description["test_months"] = [f"{p // 12:04d}-{p % 12 + 1:02d}" for p in distinct[-months:]]
        description["cutoff"] = f"{cutoff // 12:04d}-{cutoff % 12 + 1:02d}"

    val_lakes = _val_lakes(train_lakes, val_fraction, rng)
    val_mask = np.isin(codes, val_lakes) & ~test_mask
    train_mask = ~test_mask & ~val_mask
    parts = {k: np.flatnonzero(m).astype(np.int64) for k, m in
             (("train", train_mask), ("val", val_mask), ("test", test_mask))}
    if len(parts["train"]) == 0 or len(parts["test"]) == 0:
        raise ConfigError(f"split={kind} leaves {len(parts['train'])} training and {len(parts['test'])} test "
                          "rows. Use more data or another split.")
    description.update({
        "val_fraction": val_fraction,
        "test_lakes": [str(names[i]) for i in test_lakes],
        "val_lakes": [str(names[i]) for i in val_lakes],
        "n_train_lakes": int(len(np.setdiff1d(train_lakes, val_lakes))),
        "rows": {k: int(len(v)) for k, v in parts.items()},
    })
    if kind == "time":
        description["note"] = "time split: the same lakes appear in train and test, at different months"
    parts["description"] = description
    return parts


def cv_folds(groups: Iterable[Any], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold by lake: ``k`` (train_idx, val_idx) pairs over positions of ``groups``.

    Lakes are shuffled with ``seed`` and dealt to folds by size (largest lake first to
    the currently smallest fold), so folds are balanced and no lake spans two folds.
    """
    codes, names = pd.factorize(pd.Series(np.asarray(groups, dtype=object)).astype(str), sort=True)
    n_groups = len(names)
    k = int(k)
    if k < 2:
        raise ConfigError(f"evaluation.cv_folds={k}: cross-validation needs at least 2 folds.")
    if n_groups < k:
        raise ConfigError(f"evaluation.cv_folds={k} needs at least {k} training lakes, the training part has "
                          f"{n_groups}. Lower evaluation.cv_folds or use more data.")
    sizes = np.bincount(codes, minlength=n_groups)
    rng = np.random.default_rng([int(seed), 0xCF])
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of = np.empty(n_groups, dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    for g in order:  # one iteration per lake, not per row
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    row_fold = fold_of[codes]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(k)]


def fold_validation(codes: np.ndarray, train_idx: np.ndarray, val_fraction: float, seed: int,
                    fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Split CV fold ``fold``'s training positions ``train_idx`` (``codes``: every position's lake code) into
    (fit rows, validation rows): a seeded ``val_fraction`` of the fold's training lakes, whole lakes, as the
    final fit's ``val`` is a share of the training lakes. Folds then early-stop as the final fit does."""
    lakes = np.unique(codes[train_idx])
    rng = np.random.default_rng([int(seed), 0x1F, int(fold)])
    val_lakes = _val_lakes(lakes, val_fraction, rng)
    is_val = np.isin(codes[train_idx], val_lakes)
    return train_idx[~is_val], train_idx[is_val]
