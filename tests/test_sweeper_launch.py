"""Sweep jobs run in the sweep's process by the sweeper's own job runner (hydra_plugins/optuna5_sweeper/_launch.py):
the same job as Hydra's ``run_job`` gives (task config, Hydra config, ``.hydra`` files, return), with fewer copies."""

from pathlib import Path

import pytest
from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus, run_job as hydra_run_job, setup_globals
from hydra.types import HydraContext, RunMode
from omegaconf import OmegaConf, open_dict

import hydra_plugins.optuna5_sweeper.config  # noqa: F401  (registers hydra/sweeper=optuna)
import kaayko_exp.config  # noqa: F401  (registers train_schema)
from hydra_plugins.optuna5_sweeper import _launch, _yaml

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*.yaml"))


@pytest.fixture(scope="module")
def loader():
    setup_globals()
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))


def _job(loader, tmp_path, name, overrides):
    master = loader.load_configuration("train", overrides=[f"hparams_search={name}", "sample_size=tiny",
                                                            f"hydra.sweep.dir={tmp_path}"], run_mode=RunMode.MULTIRUN)
    cfg = loader.load_sweep_config(master, [f"hparams_search={name}", "sample_size=tiny", *overrides])
    with open_dict(cfg):
        cfg.hydra.job.id = cfg.hydra.job.num = 0
    return cfg


class Recorder:
    """A task that records what it was given and what Hydra's config said while it ran."""

    def __init__(self, fail=False):
        self.seen, self.fail = [], fail

    def __call__(self, cfg):
        self.seen.append((OmegaConf.to_container(cfg), HydraConfig.get().runtime.output_dir, HydraConfig.get().job.num))
        cfg.seed = 123  # the task may change its config; the caller's must not change
        if self.fail:
            raise ValueError("boom")
        return 0.5


def _files(directory):
    return {f: OmegaConf.to_container(OmegaConf.load(directory / ".hydra" / f)) for f in
            ("config.yaml", "hydra.yaml", "overrides.yaml")}


@pytest.mark.parametrize("name", PRESETS)
def test_a_job_gives_what_hydras_run_job_gives(loader, tmp_path, name):
    overrides = ["model.params.max_depth=5", "seed=7"] if name != "random_forest" else ["seed=7"]
    context = HydraContext(config_loader=loader, callbacks=Callbacks())
    ours, theirs = Recorder(), Recorder()
    cfg = _job(loader, tmp_path / "ours", name, overrides)
    ref = _job(loader, tmp_path / "ours", name, overrides)  # the same job for Hydra, written elsewhere below
    with open_dict(ref):
        ref.hydra.sweep.dir = str(tmp_path / "theirs")
    got = _launch.run_job(context, ours, cfg)
    want = hydra_run_job(task_function=theirs, config=ref, job_dir_key="hydra.sweep.dir",
                         job_subdir_key="hydra.sweep.subdir", hydra_context=context)
    assert got.status == want.status == JobStatus.COMPLETED and got.return_value == want.return_value == 0.5
    assert ours.seen[0][0] == theirs.seen[0][0]  # the task's config
    assert (ours.seen[0][1], theirs.seen[0][1]) == (str(tmp_path / "ours" / "0"), str(tmp_path / "theirs" / "0"))
    assert ours.seen[0][2] == theirs.seen[0][2] == 0
    assert got.overrides == want.overrides and got.working_dir == want.working_dir
    assert OmegaConf.to_container(got.cfg) == OmegaConf.to_container(want.cfg)
    mine, hydras = _files(tmp_path / "ours" / "0"), _files(tmp_path / "theirs" / "0")
    assert mine["config.yaml"] == hydras["config.yaml"] and mine["overrides.yaml"] == hydras["overrides.yaml"]
    for files in (mine, hydras):  # equal but for where each job ran
        files["hydra.yaml"]["hydra"]["sweep"]["dir"] = files["hydra.yaml"]["hydra"]["runtime"]["output_dir"] = "-"
    assert mine["hydra.yaml"] == hydras["hydra.yaml"]
    assert cfg.seed == 7  # what the task changed was its own copy


def test_a_failing_task_is_a_failed_job_and_hydras_config_is_restored(loader, tmp_path):
    context = HydraContext(config_loader=loader, callbacks=Callbacks())
    previous = HydraConfig.instance().cfg
    ret = _launch.run_job(context, Recorder(fail=True), _job(loader, tmp_path, "xgboost", []))
    assert ret.status == JobStatus.FAILED and isinstance(ret._return_value, ValueError)  # raised on reading
    assert HydraConfig.instance().cfg is previous


@pytest.mark.parametrize("value", ["1e-3", "true", "0x10", "null", "3", "on", "a: b", "x" * 200 + " y" * 40, "é ✓"])
def test_the_yaml_reads_back_as_omegaconfs_own(value):
    cfg = OmegaConf.create({"a": value, "b": [value, 1.5, None, True], "c": {"d": "${a}"}})
    assert OmegaConf.to_container(OmegaConf.create(_yaml.to_yaml(cfg))) == \
        OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(cfg)))


def test_the_job_directory_may_refer_to_the_jobs_own_hydra_config(loader, tmp_path):
    context = HydraContext(config_loader=loader, callbacks=Callbacks())
    cfg = _job(loader, tmp_path, "xgboost", [])
    with open_dict(cfg):
        cfg.hydra.job.num = cfg.hydra.job.id = 4
        cfg.hydra.sweep.subdir = "job${hydra:job.num}"
    task = Recorder()
    _launch.run_job(context, task, cfg)
    assert task.seen[0][1] == str(tmp_path / "job4") and (tmp_path / "job4" / ".hydra" / "config.yaml").is_file()
    assert OmegaConf.load(tmp_path / "job4" / ".hydra" / "hydra.yaml").hydra.runtime.output_dir == str(tmp_path / "job4")


def test_objects_frozen_for_a_sweep_are_collected_again_after_it():
    import gc
    import weakref

    class Node:
        pass

    node = Node()
    node.self = node  # a reference cycle: only the collector frees it
    ref = weakref.ref(node)
    thresholds = gc.get_threshold()
    _launch.settle_memory()
    try:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (*thresholds[:2], _launch.SWEEP_GC_FULL_AFTER)
        del node
        gc.collect()
        assert ref() is not None  # frozen: the collector no longer looks at it
    finally:
        _launch.release_memory()
    gc.collect()
    assert ref() is None and gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
