"""Config composition and validation: presets win, real data is complete, objective, unknown keys, members."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict
from runhelpers import CONF, compose_train, report, train_in_process

from kaayko_exp.errors import ConfigError, DataError
from kaayko_exp.training.validate import check_enough_data, missing_keys, validate_train_config

# What each preset must resolve to, written out here (not read back from the preset files).
PRESETS = {
    "quick": {"model.name": "xgboost", "sample_size.name": "tiny", "sample_size.rows": 3000,
              "model.params.n_estimators": 50, "plots": False},
    "xgboost_large": {"model.name": "xgboost", "sample_size.name": "large", "sample_size.fraction": 0.2,
                      "features.name": "extended", "evaluation.cv_folds": 5},
    "honest_spots": {"split.name": "spots", "sample_size.name": "medium", "sample_size.fraction": 0.02,
                     "features.name": "extended"},
}


def _task(overrides: list[str]):
    cfg = compose_train(overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def test_every_preset_is_covered_here():
    assert {p.stem for p in (CONF / "experiment").glob("*.yaml")} == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_win_over_the_primary_config(preset):
    cfg = compose_train([f"experiment={preset}"])
    for key, expected in PRESETS[preset].items():
        assert OmegaConf.select(cfg, key) == expected, key


def test_command_line_overrides_win_over_presets():
    cfg = compose_train(["experiment=quick", "plots=true", "model.params.n_estimators=7", "sample_size=medium"])
    assert cfg.plots is True and cfg.model.params.n_estimators == 7 and cfg.sample_size.name == "medium"
    cfg = compose_train(["experiment=xgboost_large", "evaluation.cv_folds=3", "model=histgb"])
    assert cfg.evaluation.cv_folds == 3 and cfg.model.name == "histgb"


@pytest.mark.parametrize("overrides,expected", [
    ([], "small"),
    (["data=kaayko_csv", "data.path=x"], "complete"),
    (["data=parquet", "data.path=x"], "complete"),
    (["data=kaayko_csv", "data.path=x", "sample_size=tiny"], "tiny"),
    (["data=kaayko_csv", "data.path=x", "experiment=honest_spots"], "medium"),
])
def test_real_sources_default_to_the_complete_table(overrides, expected):
    cfg = compose_train(overrides)
    assert cfg.sample_size.name == expected
    assert cfg.hydra.runtime.choices["sample_size"] == expected


def test_objective_defaults_to_the_validation_set():
    cfg = _task([])
    assert cfg.evaluation.objective == "val_rmse"
    validate_train_config(cfg)
    validate_train_config(_task(["evaluation.objective=cv_mae", "evaluation.cv_folds=3"]))


@pytest.mark.parametrize("overrides,needle", [
    (["evaluation.objective=test_rmse"], "the test set is reported, never optimised"),
    (["evaluation.objective=test_class_accuracy"], "val_class_accuracy"),
    (["evaluation.objective=external_rmse", "evaluation.external=x"], "never optimised"),
    (["evaluation.objective=cv_rmse"], "evaluation.cv_folds=5"),
    (["split.val_fraction=0"], "evaluation.objective=cv_rmse"),
    (["evaluation.objective=val_bogus"], "<set>_<metric>"),
])
def test_objectives_that_cannot_be_optimised_are_refused(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("<", ".").replace(">", ".")):
        validate_train_config(_task(overrides))


@pytest.mark.parametrize("override,needle", [
    ("+modle=xgboost", "'modle' .* Did you mean 'model'"),
    ("+evaluation.cv_fold=3", "'evaluation.cv_fold' .* Did you mean 'evaluation.cv_folds'"),
    ("+sample_size.row=10", "Did you mean 'sample_size.rows'"),
    ("+zzz=1", "'zzz' is not a kaayko-exp setting"),
])
def test_keys_added_with_plus_must_exist(override, needle):
    with pytest.raises(ConfigError, match=needle):
        validate_train_config(_task([override]))


def test_the_config_schema_is_built_once_per_process_not_per_trial(monkeypatch):
    # every sweep trial validates its config: the typed schema is the same for all of them
    validate_train_config(_task([]))
    built = []
    real = OmegaConf.structured
    monkeypatch.setattr(OmegaConf, "structured", lambda *a, **k: (built.append(a), real(*a, **k))[1])
    validate_train_config(_task(["model.params.max_depth=3"]))
    validate_train_config(_task(["seed=3"]))
    with pytest.raises(ConfigError, match="Did you mean 'model'"):
        validate_train_config(_task(["+modle=xgboost"]))
    assert built == []


def test_free_form_params_and_required_but_missing_keys_are_not_unknown():
    validate_train_config(_task(["model.params.max_depth=3"]))
    with pytest.raises(ConfigError, match="data.path"):
        validate_train_config(_task(["data=kaayko_csv"]))


@pytest.mark.parametrize("overrides", [[], ["data.path=???"], ["+model.params.extra=???", "split.lakes=[a,???]"]])
def test_missing_values_are_found_as_omegaconf_finds_them(overrides):
    cfg = _task([])
    with open_dict(cfg):
        for o in overrides:
            key, value = o.lstrip("+").split("=", 1)
            OmegaConf.update(cfg, key, OmegaConf.create({"v": value.strip("[]").split(",")})["v"]
                             if value.startswith("[") else value, force_add=True)
    assert sorted(missing_keys(cfg)) == sorted(OmegaConf.missing_keys(cfg))
    assert len(missing_keys(cfg)) == sum(o.count("???") for o in overrides)


def _frame(rows: int, lakes: int) -> pd.DataFrame:
    return pd.DataFrame({"lake": [f"L{i % lakes}" for i in range(rows)]})


def test_a_sample_too_small_for_the_split_stops_with_the_counts_and_the_fix():
    cfg = _task(["data=kaayko_csv", "data.path=tests/data/kaayko_sample", "sample_size=small"])
    info = {"source_rows": 10_848, "path": "tests/data/kaayko_sample", "sample": {"name": "small"}}
    with pytest.raises(ConfigError, match=r"sample_size=small keeps 22 of the 10,848 rows .*\(5 lake\(s\)\).*"
                                          r"sample_size=complete"):
        check_enough_data(_frame(22, 5), info, cfg)
    with pytest.raises(ConfigError, match=r"1 lake\(s\).*3 lakes"):
        check_enough_data(_frame(5_000, 1), info, cfg)
    check_enough_data(_frame(5_000, 5), info, cfg)
    whole = {"source_rows": 500, "path": "tiny.parquet", "sample": {"name": "complete"}}
    with pytest.raises(DataError, match="tiny.parquet holds 500 rows from 5 lake"):
        check_enough_data(_frame(500, 5), whole, cfg)


def test_a_synthetic_sample_below_the_minimum_is_refused_up_front():
    with pytest.raises(ConfigError, match="keeps 200 rows"):
        validate_train_config(_task(["sample_size.rows=200"]))


def test_ensemble_members_are_composed_into_the_config():
    cfg = _task(["model=ensemble"])
    assert cfg.model.members == ["xgboost", "histgb", "random_forest"]
    assert cfg.model.member_configs.xgboost.params.max_depth == 6
    assert cfg.model.member_configs.ridge.params.alpha == 1.0
    validate_train_config(cfg)
    with pytest.raises(ConfigError, match="'nope'.*Known models"):
        validate_train_config(_task(["model=ensemble", "model.members=[xgboost,nope]"]))


def test_ensemble_members_are_saved_with_the_run_and_fitted_from_it(tmp_path, monkeypatch):
    from kaayko_exp import models

    def no_conf(*_a, **_k):
        raise AssertionError("the ensemble read conf/ at fit time")

    monkeypatch.setattr(models, "member_config", no_conf)
    monkeypatch.setattr(models, "conf_dir", no_conf)
    value, run_dir = train_in_process(tmp_path, ["model=ensemble", "model.members=[xgboost,ridge]",
                                                 "model.member_configs.xgboost.params.n_estimators=20",
                                                 "model.member_configs.ridge.params.alpha=7.5"])
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert saved.model.member_configs.xgboost.params.max_depth == 6
    assert saved.model.member_configs.ridge.params.alpha == 7.5
    meta = json.loads(next((run_dir / "model").glob("members/*-ridge/model.json")).read_text())
    assert meta["params"]["alpha"] == 7.5  # the fitted member used the run's config, not conf/model/ridge.yaml
    assert value == pytest.approx(report(run_dir)["val"]["metrics"]["rmse"])
