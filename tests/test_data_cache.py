"""load_dataset and the verified dataset cache: hit, corruption, truncation, concurrency."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaayko_exp.config import DataConfig, SampleSizeConfig
from kaayko_exp.data import coverage, koppen, load_dataset, schema
from kaayko_exp.data.cache import get_or_build
from kaayko_exp.errors import DataError

SAMPLE = Path(__file__).parent / "data" / "kaayko_sample"
TINY = SampleSizeConfig(name="tiny", rows=3000)


def test_synthetic_load_info_and_cache_hit(tmp_path):
    df, info = load_dataset(DataConfig(), TINY, seed=3, cache_dir=tmp_path)
    assert list(df.columns) == list(schema.COLUMNS) and len(df) == 3000
    json.dumps(info)
    # the lakes' 2,434,601 rows plus one coverage row per plausible cell of the reference climates (issue 19)
    # plus the 300,000 global rows (generator v5, v6)
    cells = len(np.unique(np.concatenate([coverage.station_cells(s) for s in koppen.STATIONS]))) + 300_000
    assert info["source"] == "synthetic" and info["source_rows"] == 2_434_601 + cells and info["cache"]["hit"] is False
    assert 2_434_601 < info["source_rows"] <= 1.25 * 2_434_601
    assert info["sample"] == {"name": "tiny", "fraction": 3000 / (2_434_601 + cells), "rows": 3000}
    again, info2 = load_dataset(DataConfig(), TINY, seed=3, cache_dir=tmp_path)
    assert info2["cache"]["hit"] is True and info2["cache"]["key"] == info["cache"]["key"]
    pd.testing.assert_frame_equal(df, again)
    _, other = load_dataset(DataConfig(), TINY, seed=4, cache_dir=tmp_path)
    assert other["cache"]["key"] != info["cache"]["key"]
    _, noisy = load_dataset(DataConfig(label_noise=0.3), TINY, seed=3, cache_dir=tmp_path)
    assert noisy["cache"]["key"] != info["cache"]["key"]


def test_small_default_is_fast_and_sized(tmp_path):
    df, info = load_dataset(DataConfig(), SampleSizeConfig(name="small", fraction=0.002), seed=42, cache_dir=tmp_path)
    # 0.2 % of the lakes' 2,434,601 rows plus the coverage rows (one per plausible cell, issue 19; 300,000 global)
    cells = len(np.unique(np.concatenate([coverage.station_cells(s) for s in koppen.STATIONS]))) + 300_000
    expected = round(0.002 * (2_434_601 + cells))
    assert len(df) == expected and info["sample"]["rows"] == expected


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_damaged_entry_is_detected_logged_and_rebuilt(tmp_path, caplog, damage):
    df, info = load_dataset(DataConfig(), TINY, seed=5, cache_dir=tmp_path)
    path = Path(info["cache"]["path"])
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.with_suffix(".json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="kaayko_exp.data.cache"):
        again, info2 = load_dataset(DataConfig(), TINY, seed=5, cache_dir=tmp_path)
    assert "damaged" in caplog.text and info2["cache"]["hit"] is False
    pd.testing.assert_frame_equal(df, again)
    assert info2["cache"]["sha256"] == info["cache"]["sha256"]
    _, info3 = load_dataset(DataConfig(), TINY, seed=5, cache_dir=tmp_path)
    assert info3["cache"]["hit"] is True


def test_real_source_sample_and_file_change_invalidates(tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    cfg = DataConfig(source="kaayko_csv", path=str(src))
    df, info = load_dataset(cfg, TINY, seed=1, cache_dir=tmp_path / "c")
    assert len(df) == 3000 and info["source_rows"] == 10_848 and info["cache"]["hit"] is False
    key = df[["lake", "datetime"]].astype({"lake": str})
    assert key.equals(key.sort_values(["lake", "datetime"]).reset_index(drop=True))
    full, _ = load_dataset(cfg, SampleSizeConfig(name="complete", fraction=1.0), seed=1, cache_dir=tmp_path / "c")
    assert len(full) == 10_848
    assert len(df.merge(full, on=list(schema.COLUMNS))) == 3000  # a sample is a subset of the table
    _, hit = load_dataset(cfg, TINY, seed=1, cache_dir=tmp_path / "c")
    assert hit["cache"]["hit"] is True
    f = src / "Windermere" / "2019-12.csv"
    f.write_text(f.read_text().replace(",Windermere\n", ",Windermere Lake\n", 1))
    _, changed = load_dataset(cfg, TINY, seed=1, cache_dir=tmp_path / "c")
    assert changed["fingerprint"] != info["fingerprint"] and changed["cache"]["hit"] is False


def test_failed_load_writes_nothing(tmp_path):
    with pytest.raises(DataError):
        load_dataset(DataConfig(source="kaayko_csv", path=str(tmp_path / "missing")), TINY, seed=1,
                     cache_dir=tmp_path / "cache")
    assert not list((tmp_path).glob("cache/**/*.parquet"))


def _build_in_process(cache_dir: str, queue) -> None:
    def build() -> pd.DataFrame:
        from kaayko_exp.data import synthetic

        return synthetic.generate_rows(range(2000), seed=9)

    df, info = get_or_build(cache_dir, "concurrent-key", build)
    queue.put((info["hit"], info["sha256"], len(df)))


def test_concurrent_builders_do_not_corrupt(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_process, args=(str(tmp_path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(r[0] for r in results) == [False, True, True]  # built once, then read
    assert len({r[1] for r in results}) == 1 and all(r[2] == 2000 for r in results)
    assert not list(tmp_path.glob("datasets/*.tmp"))


def test_complete_row_count_is_recorded_by_a_run_and_read_by_later_plans(tmp_path, monkeypatch):
    """The synthetic table's row count (needed to resolve sample_size fractions) is laid out once per cache:
    a run records it under plans/, later config checks and runs read it instead of laying the table out;
    a config check alone writes nothing; a damaged record is computed again."""
    from omegaconf import OmegaConf

    from kaayko_exp.data import synthetic, synthetic_plan
    from kaayko_exp.training.validate import planned_rows

    cells = len(np.unique(np.concatenate([coverage.station_cells(s) for s in koppen.STATIONS])))
    expected = 2_434_601 + cells + 300_000
    large = SampleSizeConfig(name="large", fraction=0.2)
    cfg = OmegaConf.create({"data": {"source": "synthetic"}, "seed": 42, "cache_dir": str(tmp_path),
                            "sample_size": {"name": "large", "fraction": 0.2, "rows": None}})
    assert planned_rows(cfg) == round(0.2 * expected)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # a config check writes nothing
    _, info = load_dataset(DataConfig(), TINY, seed=3, cache_dir=tmp_path)
    assert info["source_rows"] == expected
    (record,) = (tmp_path / "plans").iterdir()
    assert json.loads(record.read_text())["complete_rows"] == expected

    def laid_out_again(*args, **kwargs):
        raise AssertionError("the synthetic table was laid out again")

    with monkeypatch.context() as m:
        m.setattr(synthetic, "complete_rows", laid_out_again)
        assert planned_rows(cfg) == round(0.2 * expected)
        assert synthetic_plan(DataConfig(), large, 7, tmp_path, remember=True)[1] == expected
    record.write_text('{"complete_rows": ')  # damaged: never trusted, computed and recorded again
    assert synthetic_plan(DataConfig(), large, 7, tmp_path, remember=True)[1] == expected
    assert json.loads(record.read_text())["complete_rows"] == expected
    other = synthetic_plan(DataConfig(coverage=0.5), large, 7, tmp_path, remember=True)[1]
    assert other < expected and len(list((tmp_path / "plans").iterdir())) == 2  # keyed by what decides it
