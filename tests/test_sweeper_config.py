"""The optuna5 sweeper's sampler/pruner settings as users write them, composed in-process with Hydra.

Covers: every config exposes its optuna constructor's plain-valued arguments; a sampler/pruner chosen as a
config group takes field overrides; study files may pick them by group or by `_target_` block; a seeded
sampler derives each trial's stream from (seed, trial number).
"""

import dataclasses
import importlib
import inspect
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir

from hydra_plugins.optuna5_sweeper import _study
from hydra_plugins.optuna5_sweeper._seeding import PerTrialSeededSampler, trial_seed
from hydra_plugins.optuna5_sweeper.config import PRUNERS, SAMPLERS
from hydra_plugins.optuna5_sweeper.errors import SweepConfigError

CONF = Path(__file__).resolve().parent / "sweeper_app" / "conf"

# constructor arguments that are callables or strategy objects, not values a config can hold
NOT_CONFIGURABLE = {
    "tpe": {"gamma", "weights", "constraints_func"},
    "cmaes": {"source_trials"},
    "nsgaii": {"mutation", "crossover", "constraints_func", "elite_population_selection_strategy",
               "child_generation_strategy", "after_trial_strategy"},
    "grid": {"search_space"},  # built from the search space
    "gp": {"constraints_func"},
}


def _target_class(conf):
    module, _, name = conf.__dataclass_fields__["_target_"].default.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name,conf", sorted({**SAMPLERS, **PRUNERS}.items()))
def test_every_config_exposes_its_constructors_arguments(name, conf):
    params = {p.name: p for p in list(inspect.signature(_target_class(conf).__init__).parameters.values())[1:]
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    fields = {f.name: f for f in dataclasses.fields(conf) if f.name != "_target_"}
    assert set(params) - set(fields) == NOT_CONFIGURABLE.get(name, set())
    assert set(fields) <= set(params)
    for key, f in fields.items():  # same defaults as optuna where it has one (null: optuna's default)
        default = params[key].default
        if default is not inspect.Parameter.empty and f.default is not None and key != "constant_liar":
            assert f.default == default, key


def compose_app(*overrides):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.sweeper


@pytest.mark.parametrize("group,name,field,value,attr", [
    ("pruner", "threshold", "upper", "0.0", ("_upper", 0.0)),
    ("pruner", "median", "n_warmup_steps", "5", ("_n_warmup_steps", 5)),
    ("pruner", "percentile", "percentile", "50.0", ("_percentile", 50.0)),
    ("pruner", "hyperband", "max_resource", "100", ("_max_resource", 100)),
    ("pruner", "successive_halving", "reduction_factor", "2", ("_reduction_factor", 2)),
    ("pruner", "wilcoxon", "p_threshold", "0.05", ("_p_threshold", 0.05)),
    ("pruner", "patient", "patience", "2", ("_patience", 2)),
    ("sampler", "random", "seed", "1", None),
    ("sampler", "tpe", "n_startup_trials", "4", ("_n_startup_trials", 4)),
    ("sampler", "cmaes", "with_margin", "true", ("_with_margin", True)),
    ("sampler", "qmc", "qmc_type", "halton", ("_qmc_type", "halton")),
    ("sampler", "nsgaii", "population_size", "10", None),
])
def test_a_group_choice_takes_its_fields_from_the_command_line(group, name, field, value, attr):
    node = compose_app("hydra/sweeper=optuna", f"hydra/sweeper/{group}={name}", f"hydra.sweeper.{group}.{field}={value}")
    assert str(node[group][field]).lower() == value.lower()
    built = (_study.make_pruner if group == "pruner" else _study.make_sampler)(node[group])
    built = built.inner if isinstance(built, PerTrialSeededSampler) else built
    assert type(built) is _target_class((PRUNERS if group == "pruner" else SAMPLERS)[name])
    if attr:
        assert getattr(built, attr[0]) == attr[1]


def test_a_study_file_choosing_groups_can_be_switched_on_the_command_line():
    node = compose_app("+hparams_search=median")
    assert type(_study.make_pruner(node.pruner)) is optuna.pruners.MedianPruner
    assert type(_study.make_sampler(node.sampler).inner) is optuna.samplers.TPESampler
    node = compose_app("+hparams_search=median", "hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.upper=0.0",
                       "hydra/sweeper/sampler=random")
    pruner = _study.make_pruner(node.pruner)  # the file's median-only field n_startup_trials is dropped
    assert type(pruner) is optuna.pruners.ThresholdPruner and pruner._upper == 0.0
    assert pruner._n_warmup_steps == 3  # a field both pruners have keeps the file's value
    assert type(_study.make_sampler(node.sampler).inner) is optuna.samplers.RandomSampler


def test_a_target_block_in_a_study_file_composes_over_the_default_choices():
    node = compose_app("+hparams_search=median_target")  # MedianPruner over nop, RandomSampler over tpe
    pruner = _study.make_pruner(node.pruner)
    assert type(pruner) is optuna.pruners.MedianPruner and pruner._n_warmup_steps == 3
    assert type(_study.make_sampler(node.sampler).inner) is optuna.samplers.RandomSampler


def test_a_misspelt_field_stops_the_sweep_with_the_settings_it_has():
    node = compose_app("hydra/sweeper=optuna", "hydra/sweeper/pruner=median", "+hydra.sweeper.pruner.n_warmup=5")
    with pytest.raises(SweepConfigError, match="n_warmup is not a setting of MedianPruner; its settings are: "):
        _study.make_pruner(node.pruner)


def test_fields_without_a_chosen_pruner_say_how_to_choose_one():
    node = compose_app("hydra/sweeper=optuna", "hydra.sweeper.pruner=threshold", "+hydra.sweeper.pruner.upper=0.0")
    with pytest.raises(SweepConfigError, match="hydra/sweeper/pruner=NAME hydra.sweeper.pruner.FIELD=VALUE"):
        _study.make_pruner(node.pruner)


def test_a_seeded_sampler_draws_each_trial_from_seed_and_trial_number():
    sampler = _study.make_sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 5})
    assert isinstance(sampler, PerTrialSeededSampler)
    study = optuna.create_study(sampler=sampler)
    first = [study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"] for _ in range(3)]
    # a second process on the same study (a resume, another worker) starts from trial 3, not from trial 0's draw
    again = optuna.load_study(study_name=study.study_name, storage=study._storage,
                              sampler=_study.make_sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 5}))
    later = [again.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"] for _ in range(2)]
    assert len(set(first + later)) == 5
    # trial k draws as a RandomSampler seeded with trial_seed(5, k) would
    expected = optuna.samplers.RandomSampler(seed=trial_seed(5, 4))
    probe = optuna.create_study(sampler=expected)
    assert probe.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"] == later[1]
    assert trial_seed(5, 4) != trial_seed(5, 3) != trial_seed(6, 3)


def test_qmc_keeps_its_seed_and_continues_its_sequence():
    sampler = _study.make_sampler({"_target_": "optuna.samplers.QMCSampler", "seed": 5})
    assert type(sampler) is optuna.samplers.QMCSampler


def test_a_preset_s_median_fields_are_dropped_when_the_nop_pruner_is_chosen():
    import optuna

    from hydra_plugins.optuna5_sweeper._study import make_pruner

    pruner = make_pruner({"_target_": "optuna.pruners.NopPruner", "n_startup_trials": 3, "n_warmup_steps": 20})
    assert type(pruner) is optuna.pruners.NopPruner
