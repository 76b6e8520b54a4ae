"""backend=dask, the data side (issue 17): the cluster session, the table on the workers, split and features.

One LocalCluster of 2 worker processes for the module; small tables."""

from __future__ import annotations

import json
import logging
import re
import socket
import time

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

pytest.importorskip("distributed")

from kaayko_exp.cluster import features as cluster_features  # noqa: E402
from kaayko_exp.cluster.frames import load_frame  # noqa: E402
from kaayko_exp.cluster.session import SchedulerUnreachable, backend_session, open_cluster  # noqa: E402
from kaayko_exp.cluster.split import split_frame  # noqa: E402
from kaayko_exp.data import load_dataset, read_table  # noqa: E402
from kaayko_exp.errors import DataError  # noqa: E402
from kaayko_exp.features.spec import build_spec, transform  # noqa: E402
from kaayko_exp.features.splits import split_rows  # noqa: E402
from runhelpers import CONF, cli  # noqa: E402

BACKEND = {"name": "dask", "address": None, "scheduler_file": None, "n_workers": 2, "threads_per_worker": 1,
           "memory_limit": "1GiB", "connect_timeout": 10, "dashboard_address": ":0", "partition_rows": 1000}


@pytest.fixture(scope="module")
def cluster():
    with open_cluster(OmegaConf.create(BACKEND)) as session:
        yield session


def make_cfg(tmp_path, *, rows=3000, total_rows=2_434_601, source="synthetic", path=None, split="lakes", seed=7,
             partition_rows=1000, coverage=1.0):
    return OmegaConf.create({
        "data": {"source": source, "path": path, "label_noise": 0.0, "total_rows": total_rows, "lakes": 100,
                 "coverage": coverage},
        "sample_size": {"name": "custom", "fraction": None if rows else 1.0, "rows": rows},
        "seed": seed, "cache_dir": str(tmp_path / "cache"),
        "split": {"name": split, "test_fraction": 0.2, "test_months": 3, "val_fraction": 0.1},
        "features": OmegaConf.load(CONF / "features" / "standard.yaml"),
        "backend": {**BACKEND, "partition_rows": partition_rows},
    })


def test_a_local_cluster_has_the_configured_workers(cluster):
    assert cluster.info["address_kind"] == "local"
    assert cluster.info["workers"] == 2
    assert cluster.info["threads_per_worker"] == 1
    assert cluster.info["memory_limit"] == 1 << 30
    assert cluster.info["dashboard"].startswith("http")


# complete: a small table (4,500 lake rows, and the coverage components at 2 % of their default size) in every part
@pytest.mark.parametrize("rows, total_rows, coverage", [(3000, 2_434_601, 1.0), (None, 4_500, 0.02)],
                         ids=["sample", "complete"])
def test_synthetic_rows_made_on_the_workers_equal_the_local_generator(cluster, tmp_path, monkeypatch, rows,
                                                                      total_rows, coverage):
    cfg = make_cfg(tmp_path, rows=rows, total_rows=total_rows, coverage=coverage)
    with monkeypatch.context() as m:  # the client process never generates a row: only the workers may
        def refuse(*args, **kwargs):
            raise AssertionError("the client generated synthetic rows")

        m.setattr("kaayko_exp.data.synthetic.generate_rows", refuse)
        ddf, info = load_frame(cfg, cluster.client)
        got = ddf.compute()
    expected, _ = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=tmp_path / "local-cache")
    pd.testing.assert_frame_equal(got, expected, check_categorical=False)
    n = len(expected)
    assert info["rows"] == n and ddf.npartitions == -(-n // 1000)
    assert info["partitions"]["rows"] == [min(1000, n - lo) for lo in range(0, n, 1000)]
    assert list(ddf.divisions[:-1]) == list(range(0, n, 1000))


def test_the_cache_is_a_partitioned_parquet_dataset_verified_on_every_read(cluster, tmp_path, caplog):
    cfg = make_cfg(tmp_path, rows=2500)
    first, info = load_frame(cfg, cluster.client)
    entry = tmp_path / "cache" / "datasets" / f"{info['cache']['key']}.parts"
    files = sorted(entry.glob("part-*.parquet"))
    assert [len(pd.read_parquet(f)) for f in files] == [1000, 1000, 500]
    assert info["cache"]["hit"] is False
    assert load_frame(cfg, cluster.client)[1]["cache"]["hit"] is True
    damaged = files[1].read_bytes()
    files[1].write_bytes(damaged[:-20] + b"x" * 20)
    with caplog.at_level("WARNING"):
        again, info2 = load_frame(cfg, cluster.client)
    assert info2["cache"]["hit"] is False and "damaged" in caplog.text
    pd.testing.assert_frame_equal(again.compute(), first.compute())


def test_clear_cache_deletes_a_partitioned_entry_as_one_dataset(cluster, tmp_path):
    from kaayko_exp.runs.clean import clear_cache

    load_frame(make_cfg(tmp_path, rows=2000), cluster.client)
    lines = []
    clear_cache(tmp_path / "cache", echo=lines.append)
    assert lines[-1].endswith(": 1 cached dataset") and "leftover" not in " ".join(lines)
    assert not (tmp_path / "cache" / "datasets").exists()


def _write_parquet_dir(tmp_path, frame, files=3, row_group_size=500):
    folder = tmp_path / "parquet"
    folder.mkdir()
    bounds = np.linspace(0, len(frame), files + 1).astype(int)
    paths = []
    for i in range(files):
        path = folder / f"part{i}.parquet"
        frame.iloc[bounds[i]:bounds[i + 1]].to_parquet(path, index=False, row_group_size=row_group_size)
        paths.append(path)
    return folder, paths


def test_a_parquet_directory_is_read_in_pieces_of_row_groups(cluster, tmp_path):
    frame, _ = load_dataset(make_cfg(tmp_path).data, OmegaConf.create({"rows": 6000}), seed=3,
                            cache_dir=tmp_path / "local-cache")
    folder, _ = _write_parquet_dir(tmp_path, frame)
    cfg = make_cfg(tmp_path, source="parquet", path=str(folder), rows=None)
    ddf, info = load_frame(cfg, cluster.client)
    assert info["partitions"]["rows"] == [1000] * 6 and info["files"] == 3
    pd.testing.assert_frame_equal(ddf.compute(), read_table(folder), check_categorical=False)


def test_a_parquet_sample_takes_the_seeded_positions_of_the_files_rows(cluster, tmp_path):
    from kaayko_exp.data.sampling import sample_positions

    frame, _ = load_dataset(make_cfg(tmp_path).data, OmegaConf.create({"rows": 6000}), seed=3,
                            cache_dir=tmp_path / "local-cache")
    folder, _ = _write_parquet_dir(tmp_path, frame)
    ddf, info = load_frame(make_cfg(tmp_path, source="parquet", path=str(folder), rows=2500, seed=5), cluster.client)
    expected = read_table(folder).iloc[sample_positions(6000, 2500, 5)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), expected, check_categorical=False)
    assert info["rows"] == 2500 and info["source_rows"] == 6000


def test_kaayko_csv_directories_are_loaded_as_locally_and_partitioned(cluster, tmp_path):
    from runhelpers import ROOT

    sample = ROOT / "tests" / "data" / "kaayko_sample"
    ddf, info = load_frame(make_cfg(tmp_path, source="kaayko_csv", path=str(sample), rows=None,
                                    partition_rows=4000), cluster.client)
    expected = read_table(sample)
    assert info["partitions"]["rows"] == [4000, 4000, len(expected) - 8000]
    pd.testing.assert_frame_equal(ddf.compute(), expected)


def test_a_bad_value_in_one_partition_names_its_file_and_row_as_the_local_path_does(cluster, tmp_path):
    frame, _ = load_dataset(make_cfg(tmp_path).data, OmegaConf.create({"rows": 6000}), seed=3,
                            cache_dir=tmp_path / "local-cache")
    bad = frame.astype({"humidity": "int16"})
    bad.loc[2000 + 1499, "humidity"] = 150  # file part1.parquet, its row 1500: the second 1000-row piece
    folder, paths = _write_parquet_dir(tmp_path, bad)
    cfg = make_cfg(tmp_path, source="parquet", path=str(folder), rows=None)
    with pytest.raises(DataError) as on_dask:
        load_frame(cfg, cluster.client)
    with pytest.raises(DataError) as on_local:
        read_table(folder)
    assert str(paths[1]) in str(on_dask.value) and "data row 1500" in str(on_dask.value)
    assert str(on_dask.value) == str(on_local.value)


def test_a_file_with_an_extra_column_is_refused_with_the_local_message(cluster, tmp_path):
    frame, _ = load_dataset(make_cfg(tmp_path).data, OmegaConf.create({"rows": 3000}), seed=3,
                            cache_dir=tmp_path / "local-cache")
    folder, paths = _write_parquet_dir(tmp_path, frame)
    pd.read_parquet(paths[2]).assign(note="x").to_parquet(paths[2], index=False)
    cfg = make_cfg(tmp_path, source="parquet", path=str(folder), rows=None)
    with pytest.raises(DataError) as on_dask:
        load_frame(cfg, cluster.client)
    with pytest.raises(DataError) as on_local:
        read_table(folder)
    assert "unexpected column(s): note" in str(on_dask.value)
    assert str(on_dask.value) == str(on_local.value)


@pytest.mark.parametrize("split", ["lakes", "spots", "time"])
def test_split_and_feature_spec_on_the_cluster_equal_the_local_ones(cluster, tmp_path, split):
    cfg = make_cfg(tmp_path, rows=6000, split=split)
    frame, _ = load_dataset(cfg.data, cfg.sample_size, seed=cfg.seed, cache_dir=tmp_path / "local-cache")
    ddf, _ = load_frame(cfg, cluster.client)
    parts = split_frame(ddf, cfg)
    local = split_rows(frame, cfg.split, cfg.seed)
    for name in ("train", "val", "test"):
        assert np.array_equal(np.sort(parts[name].index.compute().to_numpy()), local[name]), name
    assert parts["description"] == local["description"]
    assert set(parts["table"].columns) == {"lake", "period", "rows", "part"}
    assert parts["table"]["rows"].sum() == len(frame)
    # a table of the distinct (lake, month) pairs, not of rows
    months = frame["datetime"].dt.year * 12 + frame["datetime"].dt.month - 1
    assert len(parts["table"]) == len(set(zip(frame["lake"].astype(str), months))) < len(frame)

    spec = cluster_features.fit_spec(parts["train"], cfg)
    local_spec = build_spec(cfg.features, frame.iloc[local["train"]])
    assert spec.to_dict() == local_spec.to_dict()
    X, y = cluster_features.transform(parts["test"], spec)
    np.testing.assert_array_equal(X.compute().to_numpy(), transform(local_spec, frame.iloc[local["test"]]))
    np.testing.assert_array_equal(y.compute().to_numpy(), frame["paddle_score"].to_numpy(np.float64)[local["test"]])


@pytest.mark.parametrize("by", ["address", "scheduler_file"])
def test_a_running_cluster_is_joined_and_left_running(cluster, tmp_path, by):
    if by == "address":
        join = {"address": cluster.info["address"]}
    else:
        # what `dask scheduler --scheduler-file` writes, as far as a client reads it
        (tmp_path / "scheduler.json").write_text(json.dumps({"type": "Scheduler", "address": cluster.info["address"]}))
        join = {"scheduler_file": str(tmp_path / "scheduler.json")}
    with open_cluster(OmegaConf.create({**BACKEND, **join})) as joined:
        assert joined.info["address_kind"] == by
        assert joined.info["address"] == cluster.info["address"] and joined.info["workers"] == 2
        assert joined.client.submit(sum, [1, 2]).result() == 3
    assert cluster.client.submit(sum, [3, 4]).result() == 7  # the cluster it joined still runs


def test_distributed_messages_below_the_configured_level_stay_out_of_the_run_log(cluster, caplog):
    join = {"address": cluster.info["address"]}
    with caplog.at_level(logging.DEBUG):  # the root logger lets everything through, as Hydra's run logging
        with open_cluster(OmegaConf.create({**BACKEND, **join, "log_level": "INFO"})) as joined:
            joined.client.submit(sum, [1, 2]).result()
        chatty = [r for r in caplog.records if r.name.startswith("distributed") and r.levelno < logging.WARNING]
        assert chatty  # at INFO the client's own events are logged ...
        caplog.clear()
        with open_cluster(OmegaConf.create({**BACKEND, **join})) as joined:  # the default, WARNING
            joined.client.submit(sum, [1, 2]).result()
    assert not [r for r in caplog.records if r.name.startswith("distributed") and r.levelno < logging.WARNING]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_stops_train_py_with_one_paragraph_within_the_timeout(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    out = cli("train.py", ["backend=dask", f"backend.address={address}", "backend.connect_timeout=3",
                           "sample_size=tiny", f"cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}"], timeout=120)
    elapsed = time.monotonic() - started
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert re.search(rf"could not reach the Dask scheduler at {re.escape(address)} within "
                     r"backend.connect_timeout=3 s", out.stderr)
    assert elapsed < 3 + 30  # the 3 s timeout plus the interpreter's start, never a hang
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_open_cluster_refuses_an_unreachable_address_within_its_timeout():
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as err:
        with open_cluster(OmegaConf.create({**BACKEND, "address": f"tcp://127.0.0.1:{_free_port()}",
                                            "connect_timeout": 2})):
            pass
    assert time.monotonic() - started < 2 + 5
    assert err.value.exit_code == 2


def test_a_missing_scheduler_file_is_named(tmp_path):
    missing = tmp_path / "scheduler.json"
    with pytest.raises(Exception) as err:
        with open_cluster(OmegaConf.create({**BACKEND, "scheduler_file": str(missing)})):
            pass
    assert str(missing) in str(err.value) and err.value.exit_code == 2


@pytest.mark.parametrize("override, needle", [
    ({"n_workers": 0}, "backend.n_workers=0"),
    ({"memory_limit": "lots"}, "backend.memory_limit='lots' is not a size"),
    ({"connect_timeout": 0}, "backend.connect_timeout=0"),
    ({"partition_rows": 10}, "backend.partition_rows=10"),
    ({"log_level": "chatty"}, "backend.log_level='chatty' is not a logging level"),
    ({"address": "tcp://127.0.0.1:1", "scheduler_file": "/tmp/s.json"}, "both name a scheduler"),
])
def test_backend_values_no_cluster_can_use_stop_before_anything_starts(override, needle):
    cfg = OmegaConf.create({"backend": {**BACKEND, **override}})
    with pytest.raises(Exception) as err:
        with backend_session(cfg):
            pass
    assert needle in str(err.value) and err.value.exit_code == 2


def test_the_local_backend_opens_no_cluster_and_old_configs_mean_local():
    with backend_session(OmegaConf.create({"backend": {"name": "local"}})) as session:
        assert session is None
    with backend_session(OmegaConf.create({"seed": 1})) as session:  # a run saved before the backend group
        assert session is None
