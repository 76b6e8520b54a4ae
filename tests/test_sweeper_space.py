"""The optuna5 sweeper's grammar table (override text -> Optuna distribution) and its setting builders."""

import datetime as dt
import os
import socket
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hydra_plugins.optuna5_sweeper import _study
from hydra_plugins.optuna5_sweeper._impl import format_value, objective_values
from hydra_plugins.optuna5_sweeper._liveness import is_dead
from hydra_plugins.optuna5_sweeper._space import build_space, grid_of, parse_override
from hydra_plugins.optuna5_sweeper.errors import SearchSpaceError, SweepConfigError

TABLE = [
    ("x=choice(1,2,3)", CategoricalDistribution([1, 2, 3])),
    ("x=a,b", CategoricalDistribution(["a", "b"])),
    ("model=choice(xgboost,histgb)", CategoricalDistribution(["xgboost", "histgb"])),
    ("x=choice(true,false)", CategoricalDistribution([True, False])),
    ("x=range(1,10,3)", IntDistribution(1, 7, step=3)),  # stop is exclusive: 1, 4, 7
    ("x=range(1,10,2)", IntDistribution(1, 9, step=2)),
    ("x=range(5)", IntDistribution(0, 4)),
    ("x=range(10,1,-3)", IntDistribution(4, 10, step=3)),  # 10, 7, 4
    ("x=range(0.1,0.5,0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
    ("x=range(0,1,0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
    ("x=interval(0,1)", FloatDistribution(0.0, 1.0)),
    ("x=interval(-2.5,3)", FloatDistribution(-2.5, 3.0)),
    ("x=int(interval(3,10))", IntDistribution(3, 10)),
    ("x=tag(log,interval(0.01,0.3))", FloatDistribution(0.01, 0.3, log=True)),
    ("x=int(tag(log,interval(1,100)))", IntDistribution(1, 100, log=True)),
    ("x=tag(log, int(interval(1, 64)))", IntDistribution(1, 64, log=True)),
]


@pytest.mark.parametrize("text,expected", TABLE, ids=[t for t, _ in TABLE])
def test_grammar_maps_to_distribution(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["x=3", "x=abc", "x=[1,2]", "x=null"])
def test_plain_values_are_fixed(text):
    assert parse_override(text) is None


BAD = [
    ("x=range(3,3)", "is empty"),
    ("x=range(5,1)", "is empty"),
    ("x=range(1.0,1.0,0.1)", "is empty"),
    ("x=range(1,5,0)", "zero step"),
    ("x=interval(2,1)", "is empty"),
    ("x=tag(log,interval(0,1))", "above 0"),
    ("x=tag(log,range(1,5))", "not supported"),
    ("x=shuffle(range(1,5))", "shuffle"),
    ("x=choice(", "not a valid"),
]


@pytest.mark.parametrize("text,words", BAD, ids=[t for t, _ in BAD])
def test_bad_spaces_raise_one_paragraph(text, words):
    with pytest.raises(SearchSpaceError) as info:
        parse_override(text)
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert text.split("=")[0] in str(info.value)


def test_command_line_overrides_yaml_params_and_fixed_values_pass_through():
    space = build_space({"a": "range(1,4)", "b": "choice(x,y)", "c": "7"}, ["b=z", "d=interval(0,1)", "+e=1"])
    assert space.distributions == {"a": IntDistribution(1, 3), "d": FloatDistribution(0.0, 1.0)}
    assert space.fixed == {"b": "b=z", "c": "c=7", "+e": "+e=1"}


def test_grid_enumerates_choices_and_ranges():
    space = build_space({}, ["a=choice(x,y)", "b=range(1,7,2)", "c=range(0,1,0.25)"])
    assert grid_of(space) == {"a": ["x", "y"], "b": [1, 3, 5], "c": [0.0, 0.25, 0.5, 0.75]}
    with pytest.raises(SearchSpaceError, match="grid"):
        grid_of(build_space({}, ["a=interval(0,1)"]))


@pytest.mark.parametrize("name,cls", [("median", optuna.pruners.MedianPruner),
                                      ("percentile", optuna.pruners.PercentilePruner),
                                      ("hyperband", optuna.pruners.HyperbandPruner),
                                      ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
                                      ("wilcoxon", optuna.pruners.WilcoxonPruner),
                                      ("patient", optuna.pruners.PatientPruner),
                                      ("nop", optuna.pruners.NopPruner),
                                      ("none", optuna.pruners.NopPruner)])
def test_pruner_by_name(name, cls):
    assert type(_study.make_pruner(name)) is cls


def test_pruner_configs():
    p = _study.make_pruner({"_target_": "optuna.pruners.PatientPruner", "wrapped_pruner": "median", "patience": 2})
    assert isinstance(p._wrapped_pruner, optuna.pruners.MedianPruner) and p._patience == 2
    t = _study.make_pruner({"_target_": "optuna.pruners.ThresholdPruner", "upper": 10.0})
    assert isinstance(t, optuna.pruners.ThresholdPruner)
    with pytest.raises(SweepConfigError, match="ThresholdPruner"):  # neither lower nor upper
        _study.make_pruner("threshold")
    with pytest.raises(SweepConfigError, match="not a known pruner"):
        _study.make_pruner("medain")


@pytest.mark.parametrize("name,cls", [("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
                                      ("cmaes", optuna.samplers.CmaEsSampler), ("qmc", optuna.samplers.QMCSampler),
                                      ("nsgaii", optuna.samplers.NSGAIISampler)])
def test_sampler_by_name(name, cls):
    assert type(_study.make_sampler(name)) is cls


def test_lightning_hydra_template_sampler_block():
    s = _study.make_sampler({"_target_": "optuna.samplers.TPESampler", "seed": 1234, "n_startup_trials": 10})
    # seeded: a TPESampler rebuilt per trial from (seed, trial number)
    assert isinstance(s.inner, optuna.samplers.TPESampler) and s.inner._n_startup_trials == 10
    g = _study.make_sampler("grid", {"a": [1, 2]})
    assert isinstance(g, optuna.samplers.GridSampler)


def test_storage_spec(tmp_path):
    assert _study.storage_spec(None, "multirun/x", "/proj") == "/proj/multirun/x/optuna.journal"
    assert _study.storage_spec(None, "/abs/sweep", "/proj") == "/abs/sweep/optuna.journal"
    url = "postgresql://u:p@host:5432/db"
    assert _study.storage_spec(url, "s", "/proj") == url
    assert _study.storage_spec("studies/a.journal", "s", "/proj") == "/proj/studies/a.journal"
    with pytest.raises(SweepConfigError):
        _study.storage_spec("studies/a.db", "s", "/proj")


def test_directions():
    assert _study.directions_of("maximize") == ["maximize"]
    assert _study.directions_of(["minimize", "maximize"]) == ["minimize", "maximize"]
    assert _study.directions_of(None) == ["minimize"]  # not given (an application may fill it in first)
    with pytest.raises(SweepConfigError):
        _study.directions_of("max")


def test_objective_values():
    assert objective_values(1, 1) == [1.0]
    assert objective_values([1, 2.5], 2) == [1.0, 2.5]
    for bad in (float("nan"), float("inf"), "x", None):
        with pytest.raises(ValueError):
            objective_values(bad, 1)
    with pytest.raises(ValueError):
        objective_values([1.0], 2)


def test_format_value():
    assert [format_value(v) for v in (None, True, 0.1, 3, "histgb", "a b")] == \
        ["null", "true", "0.1", "3", "histgb", "'a b'"]


def _running(beat=None, started=None):
    attrs = {} if beat is None else {"heartbeat": beat}
    return SimpleNamespace(system_attrs=attrs, datetime_start=started)


def test_liveness():
    now = dt.datetime.now(dt.timezone.utc)
    fresh = now.isoformat()
    here = socket.gethostname()
    assert not is_dead(_running({"host": here, "pid": os.getpid(), "time": fresh, "interval": 30}), 30, now)
    # a pid that cannot exist on this host
    assert is_dead(_running({"host": here, "pid": 2 ** 22 + 12345, "time": fresh, "interval": 30}), 30, now)
    other = {"host": here + "-elsewhere", "pid": 1, "interval": 30}
    assert not is_dead(_running({**other, "time": (now - dt.timedelta(seconds=80)).isoformat()}), 30, now)
    assert is_dead(_running({**other, "time": (now - dt.timedelta(seconds=100)).isoformat()}), 30, now)
    assert not is_dead(_running(started=now - dt.timedelta(seconds=10)), 30, now)
    assert is_dead(_running(started=now - dt.timedelta(seconds=200)), 30, now)
