"""Hydra composes a multirun's config twice at start (once for ``Hydra.get_mode``); kaayko_exp.compose_once
serves the second request from the first, with Hydra's check of the sweep overrides still applied."""

from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

import kaayko_exp.config  # noqa: F401  (registers train_schema)
from kaayko_exp.cli import compose_once

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def hydra_app(monkeypatch):
    compositions = []
    real = ConfigLoaderImpl._load_configuration_impl
    monkeypatch.setattr(ConfigLoaderImpl, "_load_configuration_impl",
                        lambda self, *a, **k: (compositions.append(k.get("run_mode")), real(self, *a, **k))[1])
    GlobalHydra.instance().clear()
    app = Hydra.create_main_hydra2(task_name="train", config_search_path=create_config_search_path(str(CONF)))
    yield app, compositions
    GlobalHydra.instance().clear()


def _plain(cfg):
    return OmegaConf.to_container(cfg, resolve=False)


def test_the_mode_read_and_the_sweep_share_one_composition(hydra_app):
    app, compositions = hydra_app
    overrides = ["model=histgb", "sample_size=tiny", "seed=3"]
    reference = _plain(app.compose_config("train", overrides, run_mode=RunMode.MULTIRUN))
    compositions.clear()
    with compose_once():
        app.get_mode(config_name="train", overrides=overrides)
        assert compositions == [RunMode.MULTIRUN]  # it composed (get_mode says None when composing fails)
        served = app.compose_config("train", overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=True)
        again = app.compose_config("train", overrides, run_mode=RunMode.MULTIRUN)
    assert compositions == [RunMode.MULTIRUN, RunMode.MULTIRUN]  # get_mode's and the third: not the second
    assert _plain(served) == reference == _plain(again) and served is not again
    assert served.model.name == "histgb" and served.seed == 3


def test_other_requests_are_composed_as_before(hydra_app):
    app, compositions = hydra_app
    with compose_once():
        app.get_mode(config_name="train", overrides=["seed=1"])
        app.compose_config("train", ["seed=1"], run_mode=RunMode.RUN)  # a plain run: another mode
        app.compose_config("train", ["seed=2"], run_mode=RunMode.MULTIRUN)  # other overrides
    assert compositions == [RunMode.MULTIRUN, RunMode.RUN, RunMode.MULTIRUN]
    assert ConfigLoaderImpl.load_configuration.__module__ == "hydra._internal.config_loader_impl"  # restored


def test_the_sweep_overrides_are_still_checked_on_the_served_config(hydra_app):
    app, compositions = hydra_app
    overrides = ["hydra.verbose=true,false"]  # sweeping over Hydra's own config: refused in a multirun
    with compose_once():
        app.get_mode(config_name="train", overrides=overrides)  # does not check them
        with pytest.raises(ConfigCompositionException, match="Sweeping over Hydra's configuration"):
            app.compose_config("train", overrides, run_mode=RunMode.MULTIRUN)
    assert len(compositions) == 1
