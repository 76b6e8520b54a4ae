"""The ready studies (conf/hparams_search/*.yaml): pruners that wait for several finished trials and are fair to slow
learners (a share of the fit before judging, or a projection of the curve),
and the figure the xgboost preset states is the one bench/bench_sweep.py measured (bench/results.md)."""

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import hydra_plugins.optuna5_sweeper.config  # noqa: F401  (registers hydra/sweeper=optuna)
import kaayko_exp.config  # noqa: F401  (registers train_schema)

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*.yaml"))
BUDGET_KEYS = ("n_estimators", "max_iter")  # boosting rounds / trees / iterations: the pruning step counter


def _compose(preset):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"hparams_search={preset}"], return_hydra_config=True)


@pytest.mark.parametrize("preset", PRESETS)
def test_a_preset_pruner_waits_for_several_finished_trials_and_is_fair_to_slow_learners(preset):
    cfg = _compose(preset)
    pruner = cfg.hydra.sweeper.pruner
    budget = next(cfg.model.params[k] for k in BUDGET_KEYS if k in cfg.model.params)
    assert pruner.n_startup_trials >= 4  # a median or best of two finished trials is one lucky draw
    assert cfg.hydra.sweeper.sampler.n_startup_trials >= pruner.n_startup_trials
    if str(pruner._target_).endswith(".ProjectionPruner"):
        # it projects each trial's curve to the last round from its values at s/2 and s, so it may judge early,
        # but never on fewer than two reports of the curve
        every = cfg.pruning.report_every
        assert pruner.n_warmup_steps >= 2 * every and pruner.n_warmup_steps < budget, (preset, pruner, every)
    else:
        # a pruner comparing trials at the same step: a trial with a small learning rate trails early and may still
        # end best, so judge it only once a third of its rounds ran
        assert pruner.n_warmup_steps >= budget / 3, (preset, pruner.n_warmup_steps, budget)


def _measured():
    text = (ROOT / "bench" / "results.md").read_text(encoding="utf-8")
    part = text.split("### Optuna sweep: pruning", 1)[1].split("\n### ", 1)[0]
    ratio = re.search(r"median time ratio pruner / no pruner: ([0-9.]+)", part)
    gap = re.search(r"median best value with pruning vs without: ([+-][0-9.]+ %)", part)
    assert ratio and gap, "bench/results.md has no medians over seeds: python bench/run_all.py --only sweep"
    return part, ratio.group(1), gap.group(1)


def test_the_xgboost_preset_states_the_figure_bench_sweep_measured():
    part, ratio, gap = _measured()
    assert "`python train.py -m hparams_search=xgboost`" in part, "results.md measured another sweep"
    comment = "\n".join(line for line in (ROOT / "conf" / "hparams_search" / "xgboost.yaml").read_text().splitlines()
                        if "#" in line)
    assert "python bench/bench_sweep.py" in comment
    assert f"time ratio {ratio}" in comment and f"best value {gap}" in comment, (ratio, gap, comment)
