"""Sample sizes and data config errors; the shipped config group files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from kaayko_exp.config import DataConfig, SampleSizeConfig
from kaayko_exp.data import load_dataset
from kaayko_exp.data.sampling import resolve_rows, sample_positions, stratified_positions
from kaayko_exp.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("cfg, match", [
    (SampleSizeConfig(name="x", fraction=0.0), r"outside \(0, 1\]"),
    (SampleSizeConfig(name="x", fraction=1.5), r"outside \(0, 1\]"),
    (SampleSizeConfig(name="x", fraction=-0.1), r"outside \(0, 1\]"),
    (SampleSizeConfig(name="x", rows=0), "not a positive whole number"),
    (SampleSizeConfig(name="x", rows=-5), "not a positive whole number"),
    (SampleSizeConfig(name="x", rows=20_000), "has only 10,000 rows"),
    (SampleSizeConfig(name="x"), "neither 'fraction' nor 'rows'"),
])
def test_bad_sample_sizes_are_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        resolve_rows(cfg, 10_000)


def test_rows_win_over_fraction_and_fractions_round():
    assert resolve_rows(SampleSizeConfig(fraction=0.5, rows=7), 100)[0] == 7
    assert resolve_rows(SampleSizeConfig(fraction=0.002), 2_434_601)[0] == 4869
    assert resolve_rows(SampleSizeConfig(fraction=1.0), 10)[0] == 10


def test_positions_are_seeded_sorted_distinct():
    a, b, c = sample_positions(10**6, 500, 1), sample_positions(10**6, 500, 1), sample_positions(10**6, 500, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) == 500 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(sample_positions(10, 10, 3), np.arange(10))


def test_too_large_request_through_load_dataset(tmp_path):
    with pytest.raises(ConfigError, match="has only 5,000 rows"):
        load_dataset(DataConfig(total_rows=5000, coverage=0.0), SampleSizeConfig(name="tiny", rows=6000), seed=1, cache_dir=tmp_path)


@pytest.mark.parametrize("data, match", [
    (DataConfig(source="excel"), "not known"),
    (DataConfig(source="kaayko_csv"), "needs data.path"),
    (DataConfig(label_noise=-1.0), "label_noise"),
])
def test_bad_data_configs(tmp_path, data, match):
    with pytest.raises(ConfigError, match=match):
        load_dataset(data, SampleSizeConfig(rows=10), seed=1, cache_dir=tmp_path)


def _data_group(name: str):
    raw = OmegaConf.load(CONF / "data" / f"{name}.yaml")
    raw.pop("defaults", None)  # Hydra's defaults list (real sources choose sample_size=complete), not data keys
    return OmegaConf.merge(OmegaConf.structured(DataConfig), raw)


def test_group_files_match_the_schemas_and_mandatory_path(tmp_path):
    for name in ("synthetic", "kaayko_csv", "parquet"):
        text = (CONF / "data" / f"{name}.yaml").read_text()
        assert text.startswith("#")
        assert _data_group(name).source == name
    missing = _data_group("kaayko_csv")
    with pytest.raises(ConfigError, match="needs data.path"):
        load_dataset(missing, SampleSizeConfig(rows=10), seed=1, cache_dir=tmp_path)
    expected = {"tiny": 3000, "small": 4869, "medium": 48692, "large": 486920, "complete": 2_434_601}
    for name, rows in expected.items():
        node = OmegaConf.merge(OmegaConf.structured(SampleSizeConfig), OmegaConf.load(CONF / "sample_size" / f"{name}.yaml"))
        assert node.name == name and resolve_rows(node, 2_434_601)[0] == rows
    df, info = load_dataset(OmegaConf.structured(DataConfig),
                            OmegaConf.merge(OmegaConf.structured(SampleSizeConfig),
                                            OmegaConf.load(CONF / "sample_size" / "tiny.yaml")),
                            seed=2, cache_dir=tmp_path)
    assert len(df) == 3000 and info["sample"]["name"] == "tiny"


def test_stratified_positions_put_the_share_in_the_tail_and_the_rest_before_it():
    head, tail = 9_000, 1_000
    pos = stratified_positions(head + tail, 800, 3, tail, 0.25)
    assert len(np.unique(pos)) == 800 and (np.diff(pos) > 0).all() and pos.max() < head + tail
    assert (pos >= head).sum() == 200  # a quarter of 800, where a uniform draw would put about a tenth
    np.testing.assert_array_equal(pos, stratified_positions(head + tail, 800, 3, tail, 0.25))
    # capped at the tail's rows; the rest of a large sample comes from the head
    assert (stratified_positions(head + tail, 4_000, 3, tail, 0.5) >= head).sum() == tail
    # a sample larger than the head takes what it needs from the tail, whatever the share
    assert (stratified_positions(head + tail, 9_500, 3, tail, 0.0) >= head).sum() == 500
    # None: the uniform draw of every earlier sample
    np.testing.assert_array_equal(stratified_positions(head + tail, 800, 3, tail, None),
                                  sample_positions(head + tail, 800, 3))


def test_synthetic_samples_draw_data_global_share_from_the_global_rows(tmp_path):
    from kaayko_exp.data import synthetic

    cfg = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    share = float(cfg.global_share)
    assert 0.0 < share <= 1.0
    # the transfer protocols' training samples use the constant: it must be the shipped default
    assert share == synthetic.DEFAULT_GLOBAL_SHARE == float(OmegaConf.load(CONF / "data" / "mixed.yaml").global_share)
    df, info = load_dataset(cfg, SampleSizeConfig(name="x", rows=2_000), seed=4, cache_dir=tmp_path)
    names = set(synthetic.layout().global_places["name"])
    from_global = df["lake"].astype(str).isin(names).mean()
    assert from_global == pytest.approx(share, abs=1e-3) and info["global_share"] == share
    # a config from before the key (no global_share) draws uniformly, as its run did: about the component's
    # share of the complete table
    old = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "global_share"])
    df_old, info_old = load_dataset(old, SampleSizeConfig(name="x", rows=2_000), seed=4, cache_dir=tmp_path)
    expected = synthetic.global_rows() / synthetic.complete_rows()
    assert abs(df_old["lake"].astype(str).isin(names).mean() - expected) < 0.03
    assert info_old["global_share"] is None


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True])
def test_bad_global_share_is_a_config_error(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"data.global_share=.* must be a number from 0 to 1"):
        load_dataset(DataConfig(global_share=bad) if not isinstance(bad, str) else OmegaConf.create({"global_share": bad}),
                     SampleSizeConfig(rows=10), seed=1, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused: nothing written
