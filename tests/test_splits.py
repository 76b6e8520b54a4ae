"""Splits: whole lakes held out, spots, time, validation lakes, GroupKFold, impossible splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame
from omegaconf import OmegaConf

from kaayko_exp.errors import ConfigError, DataError
from kaayko_exp.features.splits import cv_folds, split_rows

SPOTS = ["Lake Powell", "Jenny Lake", "Lewisville Lake"]


def cfg(name, **kw):
    base = {"name": name, "test_fraction": 0.25, "test_months": 2, "val_fraction": 0.2}
    return OmegaConf.create({**base, **kw})


@pytest.fixture(scope="module")
def frame():
    return make_frame(3000, seed=2)


def lakes_of(frame, idx):
    return set(frame["lake"].astype(str).to_numpy()[idx])


def check_partition(frame, parts):
    all_idx = np.concatenate([parts["train"], parts["val"], parts["test"]])
    assert len(all_idx) == len(frame) and len(np.unique(all_idx)) == len(frame)
    for k in ("train", "val", "test"):
        assert parts[k].dtype == np.int64 and np.all(np.diff(parts[k]) > 0)
    json.dumps(parts["description"])


def test_lakes_split_holds_out_whole_lakes_seeded(frame):
    a = split_rows(frame, cfg("lakes"), seed=1)
    check_partition(frame, a)
    train, val, test = (lakes_of(frame, a[k]) for k in ("train", "val", "test"))
    assert not (train & test) and not (val & test) and not (train & val)
    assert len(test) == 2 and len(val) >= 1  # 8 lakes * 0.25
    assert sorted(test) == a["description"]["test_lakes"]
    b = split_rows(frame, cfg("lakes"), seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in ("train", "val", "test"))
    others = [lakes_of(frame, split_rows(frame, cfg("lakes"), seed=s)["test"]) for s in range(2, 8)]
    assert any(o != test for o in others)


def test_spots_split(frame):
    parts = split_rows(frame, cfg("spots"), seed=0, spots=SPOTS)
    check_partition(frame, parts)
    assert lakes_of(frame, parts["test"]) == {"Lake Powell", "Jenny Lake"}
    assert not lakes_of(frame, parts["train"]) & {"Lake Powell", "Jenny Lake"}
    assert parts["description"]["spots_missing"] == ["Lewisville Lake"]
    with pytest.raises(DataError, match="none of them"):
        split_rows(frame, cfg("spots"), seed=0, spots=["Crater Lake"])


def test_spots_split_uses_the_packaged_catalogue(frame):
    parts = split_rows(frame, cfg("spots"), seed=0)  # Lake Powell and Jenny Lake are paddlingOut spots
    assert lakes_of(frame, parts["test"]) == {"Lake Powell", "Jenny Lake"}


def test_time_split_holds_out_latest_months(frame):
    parts = split_rows(frame, cfg("time"), seed=0)
    check_partition(frame, parts)
    period = frame["datetime"].dt.to_period("M")
    latest = sorted(period.unique())[-2:]
    assert set(period.iloc[parts["test"]].unique()) == set(latest)
    assert period.iloc[np.concatenate([parts["train"], parts["val"]])].max() < min(latest)
    assert parts["description"]["test_months"] == [str(p) for p in latest]
    with pytest.raises(ConfigError, match="months"):
        split_rows(frame, cfg("time", test_months=500), seed=0)


def test_impossible_splits_are_clear_errors(frame):
    one = frame[frame["lake"] == "Windermere"]
    with pytest.raises(ConfigError, match="at least two lakes"):
        split_rows(one, cfg("lakes"), seed=0)
    two = frame[frame["lake"].isin(["Windermere", "Lake Mead"])]
    with pytest.raises(ConfigError, match="val_fraction=0"):
        split_rows(two, cfg("lakes"), seed=0)
    parts = split_rows(two, cfg("lakes", val_fraction=0.0), seed=0)
    assert len(parts["val"]) == 0 and len(lakes_of(two, parts["test"])) == 1
    with pytest.raises(ConfigError, match="test_fraction"):
        split_rows(frame, cfg("lakes", test_fraction=1.5), seed=0)
    with pytest.raises(ConfigError, match="Unknown split"):
        split_rows(frame, cfg("random"), seed=0)


def test_cv_folds_group_by_lake(frame):
    groups = frame["lake"].astype(str).to_numpy()
    folds = cv_folds(groups, 4, seed=3)
    assert len(folds) == 4
    seen = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(groups)))
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])
        assert len(tr) + len(va) == len(groups)
    again = cv_folds(groups, 4, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    with pytest.raises(ConfigError, match="at least 9"):
        cv_folds(groups, 9, seed=0)
    with pytest.raises(ConfigError):
        cv_folds(groups, 1, seed=0)


def test_a_fold_keeps_a_share_of_its_own_training_lakes_for_early_stopping(frame):
    from kaayko_exp.features.splits import fold_validation

    groups = frame["lake"].astype(str).to_numpy()
    codes = pd.factorize(pd.Series(groups))[0]
    for i, (tr, va) in enumerate(cv_folds(groups, 2, seed=3)):
        fit, stop = fold_validation(codes, tr, 0.25, seed=3, fold=i)
        assert np.array_equal(np.sort(np.concatenate([fit, stop])), np.sort(tr))  # only the fold's training rows
        lakes_fit, lakes_stop = set(groups[fit]), set(groups[stop])
        assert lakes_stop and lakes_fit and not lakes_fit & lakes_stop  # whole lakes
        assert not lakes_stop & set(groups[va])
        assert len(lakes_stop) == max(1, round(0.25 * len(set(groups[tr]))))
        again = fold_validation(codes, tr, 0.25, seed=3, fold=i)
        assert np.array_equal(again[1], stop)  # seeded: a resumed fold gets the same rows


def test_a_categorical_lake_column_splits_like_its_text(frame):
    # the lake codes come from the column's levels (no Python string per row): the same codes as factorising
    # the rows' text, also with unused and unsorted levels, so every kind of split keeps its lakes
    from kaayko_exp.data.schema import lake_codes

    lakes = pd.Series(pd.Categorical(["b", "a", "c", "a", "b"], categories=["c", "zz", "b", "a"]))
    codes, names = lake_codes(lakes)
    ref_codes, ref_names = pd.factorize(lakes.astype(str), sort=True)
    assert codes.tolist() == ref_codes.tolist() and names == list(ref_names)
    names_text = frame["lake"].astype(str)
    levels = sorted(set(names_text), reverse=True) + ["Unused Lake"]
    as_cat = frame.assign(lake=pd.Categorical(names_text, categories=levels))
    as_text = frame.assign(lake=names_text.astype(object))
    for kind in ("lakes", "time"):
        a, b = split_rows(as_cat, cfg(kind), seed=5), split_rows(as_text, cfg(kind), seed=5)
        for part in ("train", "val", "test"):
            assert np.array_equal(a[part], b[part])
