"""data=mixed: synthetic rows plus real rows; each lake from one source; the split keeps lakes whole."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from kaayko_exp.config import SplitConfig
from kaayko_exp.data import load_dataset, read_table
from kaayko_exp.errors import ConfigError
from kaayko_exp.features.splits import split_rows

SAMPLE = "tests/data/kaayko_sample"
TINY = OmegaConf.create({"name": "tiny", "fraction": None, "rows": 3000})


def _cfg(**kw):
    base = OmegaConf.load("conf/data/mixed.yaml")
    base.path = SAMPLE
    for k, v in kw.items():
        base[k] = v
    return base


@pytest.fixture(scope="module")
def real():
    return read_table(SAMPLE)


def test_mixed_holds_both_sources_and_no_lake_twice(tmp_path, real):
    df, info = load_dataset(_cfg(), TINY, seed=5, cache_dir=tmp_path)
    real_lakes = set(real["lake"].astype(str))
    lakes = df["lake"].astype(str)
    assert real_lakes <= set(lakes) and len(set(lakes) - real_lakes) > 10
    assert info["real_rows"] == len(real) and info["synthetic_rows"] == 3000 and len(df) == 3000 + len(real)
    # The real lakes' rows are exactly the real rows: no synthetic twin under the same name.
    assert int(lakes.isin(real_lakes).sum()) == len(real)
    assert info["excluded_synthetic_lakes"] >= len(real_lakes)


def test_split_holds_out_whole_lakes_across_both_sources(tmp_path, real):
    df, _ = load_dataset(_cfg(real_weight=2.0), TINY, seed=5, cache_dir=tmp_path)
    parts = split_rows(df, OmegaConf.structured(SplitConfig(name="lakes", test_fraction=0.3)), 5)
    lakes = df["lake"].astype(str).to_numpy()
    side = {}
    for name in ("train", "val", "test"):
        for lake in set(lakes[parts[name]]):
            assert lake not in side, f"{lake} in {side.get(lake)} and {name}"
            side[lake] = name
    real_lakes = set(real["lake"].astype(str))
    # With 5 real lakes among ~100, at least one real lake is in training; each real lake's copies stay together.
    assert {side[l] for l in real_lakes} and all(l in side for l in real_lakes)


def test_real_weight_copies_rows_and_fractions_subsample(tmp_path, real):
    two, info = load_dataset(_cfg(real_weight=2), TINY, seed=5, cache_dir=tmp_path)
    half, _ = load_dataset(_cfg(real_weight=0.5), TINY, seed=5, cache_dir=tmp_path)
    real_lakes = set(real["lake"].astype(str))
    n_two = int(two["lake"].astype(str).isin(real_lakes).sum())
    n_half = int(half["lake"].astype(str).isin(real_lakes).sum())
    assert n_two == 2 * len(real) and info["real_weight"] == 2.0
    assert abs(n_half - len(real) / 2) < 0.05 * len(real)
    # Copies are whole rows: every row of the doubled table appears exactly twice.
    r = two[two["lake"].astype(str) == "Windermere"]
    assert (r.groupby("datetime").size() == 2).all()


@pytest.mark.parametrize("weight", [0, -1, "heavy"])
def test_bad_weight_or_missing_path_is_a_config_error(tmp_path, weight):
    with pytest.raises(ConfigError, match="real_weight"):
        load_dataset(_cfg(real_weight=weight), TINY, seed=1, cache_dir=tmp_path)
    cfg = _cfg()
    cfg.path = None
    with pytest.raises(ConfigError, match="data.path"):
        load_dataset(cfg, TINY, seed=1, cache_dir=tmp_path)


def test_a_real_lake_held_out_for_test_is_scored_on_real_rows_only(tmp_path, real):
    # Over a few split seeds some real lake lands on the test side; all its rows there are the real
    # rows (no synthetic lake of that name or within 50 km trained alongside it), none in train/val.
    df, _ = load_dataset(_cfg(), TINY, seed=5, cache_dir=tmp_path)
    lakes = df["lake"].astype(str).to_numpy()
    real_counts = real["lake"].astype(str).value_counts()
    held_out = set()
    for seed in range(6):
        parts = split_rows(df, OmegaConf.structured(SplitConfig(name="lakes", test_fraction=0.3)), seed)
        test_lakes = set(lakes[parts["test"]]) & set(real_counts.index)
        for lake in test_lakes:
            assert int((lakes[parts["test"]] == lake).sum()) == real_counts[lake]
            assert lake not in set(lakes[parts["train"]]) | set(lakes[parts["val"]])
        held_out |= test_lakes
    assert held_out, "no real lake was ever held out in 6 seeds"
