"""The sweeper's job configs: composed once per set of config-group choices, then patched per trial, and equal to
what Hydra's full composition gives (hydra_plugins/optuna5_sweeper/_compose.py)."""

from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

import hydra_plugins.optuna5_sweeper.config  # noqa: F401  (registers hydra/sweeper=optuna)
import kaayko_exp.config  # noqa: F401  (registers train_schema)
from hydra_plugins.optuna5_sweeper._compose import CachingConfigLoader

ROOT = Path(__file__).resolve().parents[1]
MASTER = ["hydra/sweeper=optuna", "sample_size=tiny", "hydra.sweep.dir=/tmp/sweep-x", "hydra.job.name=train"]


class Counting:
    """The real loader, counting full compositions."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load_sweep_config(self, master, overrides):
        self.calls += 1
        return self.inner.load_sweep_config(master, overrides)


@pytest.fixture(scope="module")
def loader():
    from hydra.core.utils import setup_globals

    setup_globals()  # Hydra's resolvers (${now:...})
    return ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))


@pytest.fixture(scope="module")
def master(loader):
    return loader.load_configuration("train", overrides=MASTER, run_mode=RunMode.MULTIRUN)


def _plain(cfg):
    return OmegaConf.to_container(cfg, resolve=False)


def _resolved(cfg):
    """The task's config, interpolations resolved (the hydra node needs a job number to resolve)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        del cfg["hydra"]
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("overrides", [
    ["sample_size=tiny", "model.params.max_depth=4", "model.params.learning_rate=0.05"],
    ["sample_size=tiny", "model=histgb", "model.params.max_leaf_nodes=17", "seed=3"],
    ["sample_size=tiny", "+model.params.eval_metric=mae", "evaluation.objective=val_mae"],
    ["model.params.subsample=0.5", "sample_size=small", "checkpointing=off", "pruning.report_every=5"],
])
def test_patched_config_equals_hydras_full_composition(loader, master, overrides):
    cached = CachingConfigLoader(loader)
    cached.load_sweep_config(master, ["sample_size=tiny", "model.params.max_depth=9"])  # fill the cache first
    got = cached.load_sweep_config(master, overrides)
    want = loader.load_sweep_config(master, overrides)
    assert _plain(got) == _plain(want)
    assert OmegaConf.is_struct(got) and got.hydra.job.override_dirname == want.hydra.job.override_dirname
    assert list(got.hydra.overrides.task) == overrides
    assert _resolved(got) == _resolved(want)


def test_value_overrides_reuse_one_composition_and_group_choices_get_their_own(loader, master):
    counting = Counting(loader)
    cached = CachingConfigLoader(counting)
    for depth in (3, 4, 5):
        cfg = cached.load_sweep_config(master, ["sample_size=tiny", f"model.params.max_depth={depth}"])
        assert cfg.model.params.max_depth == depth
    assert counting.calls == 1
    cfg = cached.load_sweep_config(master, ["sample_size=tiny", "model=histgb", "model.params.max_leaf_nodes=20"])
    assert cfg.model.name == "histgb" and cfg.model.params.max_leaf_nodes == 20
    cached.load_sweep_config(master, ["sample_size=tiny", "model.params.max_depth=2"])
    assert counting.calls == 2
    # a cached base is never changed by a trial's values
    default = OmegaConf.load(ROOT / "conf" / "model" / "xgboost.yaml").params.max_depth
    assert default != 2 and cached.load_sweep_config(master, ["sample_size=tiny"]).model.params.max_depth == default


def test_a_misspelt_key_is_refused_as_hydra_refuses_it(loader, master):
    cached = CachingConfigLoader(loader)
    with pytest.raises(ConfigCompositionException, match="max_dept"):
        cached.load_sweep_config(master, ["sample_size=tiny", "model.params.max_dept=5"])
    with pytest.raises(ConfigCompositionException):
        loader.load_sweep_config(master, ["sample_size=tiny", "model.params.max_dept=5"])


def test_each_override_string_is_parsed_once_per_sweep(loader, master, monkeypatch):
    # a sweep's fixed overrides come with every job; Hydra's ANTLR parse of each is paid once, and a reused parse
    # gives the same config as a fresh one (the equality test above fills the cache with sample_size=tiny first)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = []
    real = OverridesParser.parse_overrides
    monkeypatch.setattr(OverridesParser, "parse_overrides",
                        lambda self, overrides: (parsed.extend(overrides), real(self, overrides))[1])
    cached = CachingConfigLoader(loader)
    fixed = ["sample_size=tiny", "checkpointing=off", "pruning.report_every=5"]
    cached.load_sweep_config(master, [*fixed, "model.params.max_depth=3"])  # parses (and composes) once
    parsed.clear()
    for depth in (4, 5):
        cfg = cached.load_sweep_config(master, [*fixed, f"model.params.max_depth={depth}"])
        assert cfg.model.params.max_depth == depth and cfg.pruning.report_every == 5
    assert parsed == ["model.params.max_depth=4", "model.params.max_depth=5"]  # only what is new in each job
