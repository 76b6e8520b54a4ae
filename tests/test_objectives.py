"""Objectives and sweeps (issue 16, items 3, 12, 13, 14a): every objective metric knows its direction, a sweep is
checked before it starts (nothing written when refused), list objectives give a Pareto front, and
lightning-hydra-template study files are accepted as the README says."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import open_dict, read_write
from runhelpers import FAST, ROOT, cli, compose_train, report, train_in_process

from kaayko_exp.errors import ConfigError
from kaayko_exp.training.objectives import check_directions, objective_names
from kaayko_exp.training.sweep_check import check_sweep

pytest.importorskip("hydra_plugins.optuna5_sweeper")

# What each metric needs, written out here (not read from the code under test).
HIGHER_IS_BETTER = ("r2", "class_accuracy", "within_half", "skill_accuracy")
LOWER_IS_BETTER = ("rmse", "mae")
SPACE = "model.params.max_depth=int(interval(3,5))"
QUICK = ["sample_size=tiny", "n_jobs=1", "plots=false", "model.params.n_estimators=10",
         "evaluation.permutation_repeats=1", "hydra.sweeper.write_plots=false"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _refused(proc, root: Path, *words: str) -> str:
    """One paragraph on stderr, exit status 2, no traceback, nothing written under ``root``."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    message = proc.stderr.strip()
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    assert _files(root) == [], _files(root)
    return message


# ---------------------------------------------------------------------------- item 3: directions
@pytest.mark.parametrize("metric", HIGHER_IS_BETTER + LOWER_IS_BETTER)
def test_a_sweep_without_a_direction_gets_the_one_its_objective_needs(metric):
    cfg = compose_train(["hydra/sweeper=optuna", f"evaluation.objective=val_{metric}"])
    check_sweep(cfg)
    assert cfg.hydra.sweeper.direction == ("maximize" if metric in HIGHER_IS_BETTER else "minimize")


@pytest.mark.parametrize("objective,given", [("val_class_accuracy", "minimize"), ("val_r2", "minimize"),
                                             ("val_mae", "maximize"), ("cv_within_half", "minimize")])
def test_a_direction_that_contradicts_the_objective_is_refused(objective, given):
    cfg = compose_train(["hydra/sweeper=optuna", f"evaluation.objective={objective}", "evaluation.cv_folds=3",
                         f"hydra.sweeper.direction={given}"])
    with pytest.raises(ConfigError, match=f"needs {'minimize' if given == 'maximize' else 'maximize'}"):
        check_sweep(cfg)


def test_a_matching_direction_is_kept():
    cfg = compose_train(["hydra/sweeper=optuna", "evaluation.objective=val_r2", "hydra.sweeper.direction=maximize"])
    check_sweep(cfg)
    assert cfg.hydra.sweeper.direction == "maximize"


def test_minimising_class_accuracy_is_refused_before_anything_is_written(tmp_path):
    proc = cli("train.py", ["-m", "hydra/sweeper=optuna", "evaluation.objective=val_class_accuracy",
                            "hydra.sweeper.direction=minimize", SPACE, *QUICK], cwd=tmp_path)
    _refused(proc, tmp_path, "hydra.sweeper.direction=maximize", "val_class_accuracy")


def test_a_real_sweep_on_class_accuracy_maximises_it(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli("train.py", ["-m", "hydra/sweeper=optuna", "evaluation.objective=val_class_accuracy", SPACE,
                            "hydra.sweeper.n_trials=1", f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}",
                            *QUICK])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "hydra.sweeper.direction=maximize, derived from evaluation.objective=val_class_accuracy" in proc.stdout
    assert json.loads((sweep / "sweep.json").read_text())["directions"] == ["maximize"]


# ---------------------------------------------------------------------------- item 14a: test_* before the study
@pytest.mark.parametrize("sweeper", [["hydra/sweeper=optuna", SPACE], ["model.params.max_depth=3,4"]])
def test_a_test_set_objective_is_refused_before_the_sweep_starts(tmp_path, sweeper):
    proc = cli("train.py", ["-m", *sweeper, "evaluation.objective=test_rmse", *QUICK[:-1]], cwd=tmp_path)
    _refused(proc, tmp_path, "the test set is reported, never optimised")


@pytest.mark.parametrize("where", ["command line", "sweeper params"])
def test_a_swept_cv_fold_count_is_left_to_the_trials(where):
    # cv_rmse needs cv_folds >= 2; with cv_folds swept, the base config's 0 is not what the trials get
    cfg = compose_train(["hydra/sweeper=optuna", "evaluation.objective=cv_rmse"])
    with pytest.raises(ConfigError, match="needs cross-validation"):
        check_sweep(cfg)
    with read_write(cfg), open_dict(cfg):
        if where == "command line":
            cfg.hydra.overrides.task = ["evaluation.objective=cv_rmse", "evaluation.cv_folds=2,3"]
        else:
            cfg.hydra.sweeper.params = {"evaluation.cv_folds": "choice(2,3)"}
    check_sweep(cfg)


# ---------------------------------------------------------------------------- item 12: several objectives
def test_directions_are_checked_one_per_objective():
    cfg = compose_train(["evaluation.objective=[val_rmse,val_class_accuracy]"])
    assert objective_names(cfg) == ["val_rmse", "val_class_accuracy"]
    assert check_directions(cfg, None) == ["minimize", "maximize"]
    with pytest.raises(ConfigError, match="one direction per objective"):
        check_directions(cfg, ["minimize"])
    with pytest.raises(ConfigError, match=r"direction=\[minimize,maximize\]"):
        check_directions(cfg, ["minimize", "minimize"])


def _dominated(a: list[float], b: list[float]) -> bool:
    """``a`` is dominated by ``b`` when every objective is minimised."""
    return all(y <= x for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b))


def test_a_multi_objective_sweep_gives_a_pareto_front_in_its_results_and_the_compare_report(tmp_path):
    sweep = tmp_path / "sweep"
    # the README's command (the issue's), with a tiny sample
    proc = cli("train.py", ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=nsgaii",
                            "hydra.sweeper.direction=[minimize,minimize]", "evaluation.objective=[val_rmse,val_mae]",
                            "model.params.max_depth=int(interval(3,10))",
                            "hydra.sweeper.n_trials=4", f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}",
                            *QUICK])
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = json.loads((sweep / "sweep.json").read_text())["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 4
    for t in trials:  # each trial returned its two validation metrics, as its report.json has them
        rep = report(sweep / t["run_dir"])
        assert t["values"] == pytest.approx([rep["val"]["metrics"]["rmse"], rep["val"]["metrics"]["mae"]])
        assert rep["objective"]["names"] == ["val_rmse", "val_mae"]
    front = sorted(t["number"] for t in trials if not any(_dominated(t["values"], o["values"]) for o in trials))
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert sorted(s["number"] for s in results["solutions"]) == front

    out = tmp_path / "cmp"
    done = subprocess.run([sys.executable, "-m", "kaayko_exp.compare", str(sweep), "--report", str(out),
                           "--format", "csv"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout.split("\n\n")[0])))
    assert sorted(int(r["trial"]) for r in rows if r["pareto"] == "yes") == front
    md = (out / "comparison.md").read_text()
    section = md.split("## Pareto front", 1)[1].split("\n## ", 1)[0]
    assert "val_rmse, val_mae" in section
    assert sorted(int(line.split()[2].rstrip(":")) for line in section.splitlines() if line.startswith("- trial")) \
        == front


# ---------------------------------------------------------------------------- item 13: lightning-hydra-template
LHT_FILE = """# @package _global_
defaults:
  - override /hydra/sweeper: optuna

optimized_metric: "val_mae"

hydra:
  mode: "MULTIRUN"
  sweeper:
{target}    storage: null
    study_name: null
    n_jobs: 1
    direction: minimize
    n_trials: 1
    sampler:
      _target_: optuna.samplers.TPESampler
      seed: 1234
      n_startup_trials: 10
    params:
      model.params.max_depth: choice(3, 4)
"""
LHT_TARGET = "    _target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper\n"


def _lht(tmp_path: Path, target: str) -> list[str]:
    conf = tmp_path / "extra" / "hparams_search"
    conf.mkdir(parents=True)
    (conf / "lht.yaml").write_text(LHT_FILE.format(target=target))
    return ["hparams_search=lht", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"]


def test_a_lightning_hydra_template_sweeper_target_line_is_one_paragraph(tmp_path):
    args = _lht(tmp_path, LHT_TARGET)
    work = tmp_path / "work"
    work.mkdir()
    proc = cli("train.py", [*args, *QUICK], cwd=work)
    _refused(proc, work, "hydra.sweeper._target_=hydra_plugins.hydra_optuna_sweeper", "Delete the `_target_:` line")


def test_a_lightning_hydra_template_file_without_its_target_line_sweeps_its_optimized_metric(tmp_path):
    args = _lht(tmp_path, "")
    sweep = tmp_path / "sweep"
    proc = cli("train.py", [*args, *QUICK, f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "optimized_metric=val_mae (lightning-hydra-template's key) is used as evaluation.objective" in proc.stdout
    trial = json.loads((sweep / "sweep.json").read_text())["trials"][0]
    rep = report(sweep / trial["run_dir"])
    assert rep["objective"]["name"] == "val_mae"
    assert trial["values"] == [pytest.approx(rep["val"]["metrics"]["mae"])]


def test_optimized_metric_stands_for_the_objective_with_a_note(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="kaayko_exp"):
        value, run = train_in_process(tmp_path, ["model=ridge", "optimized_metric=val_within_half"])
    assert report(run)["objective"]["name"] == "val_within_half"
    assert value == pytest.approx(report(run)["val"]["metrics"]["within_half"])
    assert "optimized_metric=val_within_half (lightning-hydra-template's key)" in caplog.text


def test_optimized_metric_and_a_different_objective_are_refused():
    cfg = compose_train([*FAST, "optimized_metric=val_mae", "evaluation.objective=val_r2"])
    with pytest.raises(ConfigError, match="disagree"):
        objective_names(cfg)
