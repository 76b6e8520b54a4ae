"""The projection pruner (hydra/sweeper/pruner=projection) on synthetic validation curves: a slow learner that ends
best is kept where the median pruner stops it, a trial that flattened above the finished ones is stopped, and
nothing is judged before the warm-up, with too few finished trials, or once the fit has run its rounds."""

from __future__ import annotations

from datetime import datetime, timedelta

import optuna
import pytest
from hydra import compose, initialize_config_dir

from hydra_plugins.optuna5_sweeper import _study
from hydra_plugins.optuna5_sweeper._projection import ProjectionPruner
from tests.test_sweeper_config import CONF

ROUNDS, PHASE_END, EVERY = 300, 1000, 10  # a 300-round fit reports every 10 rounds, its final value at step 1000


def curve(floor: float, scale: float, power: float, upto: int = ROUNDS) -> dict[int, float]:
    """A boosting-like validation RMSE: ``floor + scale * t**-power`` every EVERY rounds, then the phase end."""
    values = {t: floor + scale * t ** -power for t in range(EVERY, upto + 1, EVERY)}
    if upto == ROUNDS:
        values[PHASE_END] = values[ROUNDS]
    return values


# finished trials that learn fast (high learning rate): good early, flat later
FAST = [curve(0.060, 0.5, 1.0), curve(0.062, 0.4, 0.8), curve(0.064, 0.6, 1.0), curve(0.070, 0.3, 1.0)]
SLOW_BEST = curve(0.040, 5.0, 1.0)       # 0.09 at round 100 (the worst there), 0.057 at the end (the best)
FLAT_WORSE = curve(0.080, 0.2, 1.0)      # 0.082 at round 100 and flat: ends above every finished trial


def study_with(finished, direction="minimize"):
    sign = -1.0 if direction == "maximize" else 1.0
    study = optuna.create_study(direction=direction)
    for values in finished:
        study.add_trial(optuna.trial.create_trial(
            value=sign * values[PHASE_END], intermediate_values={s: sign * v for s, v in values.items()}))
    return study


def first_pruned_step(pruner, study, values, direction="minimize"):
    """The step at which ``pruner`` stops a trial reporting ``values`` (its fit's steps, in order), or None."""
    sign = -1.0 if direction == "maximize" else 1.0
    trial = study.ask()
    for step in sorted(s for s in values if s <= ROUNDS):
        trial.report(sign * values[step], step)
        if pruner.prune(study, study._storage.get_trial(trial._trial_id)):
            return step
    return None


def test_a_slow_learner_that_ends_best_is_kept_where_the_median_pruner_stops_it():
    study = study_with(FAST)
    assert SLOW_BEST[ROUNDS] < min(v[PHASE_END] for v in FAST)  # the scenario: it ends best ...
    assert first_pruned_step(optuna.pruners.MedianPruner(4, 100), study, SLOW_BEST) == 100  # ... median stops it
    assert first_pruned_step(ProjectionPruner(4, 100), study, SLOW_BEST) is None


def test_a_trial_that_flattened_above_the_finished_ones_is_pruned_at_the_first_judged_step():
    assert first_pruned_step(ProjectionPruner(4, 100), study_with(FAST), FLAT_WORSE) == 100


def test_margin_and_rank_loosen_the_bar():
    study = study_with(FAST)
    near = curve(0.0615, 0.5, 1.0)  # ends 0.063: worse than the best finished (0.0617), better than the 2nd
    assert first_pruned_step(ProjectionPruner(4, 100), study, near) is not None
    assert first_pruned_step(ProjectionPruner(4, 100, rank=2), study, near) is None
    assert first_pruned_step(ProjectionPruner(4, 100, margin=0.05), study, near) is None


def test_maximized_values_are_judged_the_same_way():
    study = study_with(FAST, "maximize")
    assert first_pruned_step(ProjectionPruner(4, 100), study, SLOW_BEST, "maximize") is None
    assert first_pruned_step(ProjectionPruner(4, 100), study, FLAT_WORSE, "maximize") == 100


def test_nothing_is_judged_before_the_warm_up_with_few_finished_trials_or_after_the_last_round():
    assert first_pruned_step(ProjectionPruner(4, 150), study_with(FAST), FLAT_WORSE) == 150
    assert first_pruned_step(ProjectionPruner(5, 100), study_with(FAST), FLAT_WORSE) is None
    late = {s: v for s, v in FLAT_WORSE.items() if s >= ROUNDS}  # reports from the last round on only
    assert first_pruned_step(ProjectionPruner(4, 0), study_with(FAST), late) is None


def running(values, step, seconds):
    """A running trial that reported ``values`` up to ``step`` and started ``seconds`` ago."""
    return optuna.trial.FrozenTrial(
        number=99, trial_id=99, state=optuna.trial.TrialState.RUNNING, value=None,
        datetime_start=datetime.now() - timedelta(seconds=seconds), datetime_complete=None, params={},
        distributions={}, user_attrs={}, system_attrs={},
        intermediate_values={s: v for s, v in values.items() if s <= step})


def timed_study(finished, seconds):
    """``finished`` trials that each took ``seconds`` (300 rounds: ``seconds / 300`` a step)."""
    study = optuna.create_study()
    end = datetime.now() - timedelta(hours=1)
    for values in finished:
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=optuna.trial.TrialState.COMPLETE, value=values[PHASE_END],
            datetime_start=end - timedelta(seconds=seconds), datetime_complete=end, params={}, distributions={},
            user_attrs={}, system_attrs={}, intermediate_values=values))
    return study


def test_a_slow_trial_must_promise_a_clear_gain_a_cheap_one_only_to_beat_the_best():
    study = timed_study(FAST, seconds=30.0)  # 0.1 s a step
    slightly_better = curve(0.059, 0.5, 1.0)  # ends 0.0607: 1.6 % better than the best finished (0.0617)
    much_better = curve(0.050, 0.5, 1.0)      # ends 0.0517: 16 % better
    pruner = ProjectionPruner(4, 100, slow_factor=2.0, slow_gain=0.05)
    assert not pruner.prune(study, running(slightly_better, 100, seconds=10.0))  # as fast as the finished ones
    assert pruner.prune(study, running(slightly_better, 100, seconds=60.0))      # 6x slower per step
    assert not pruner.prune(study, running(much_better, 100, seconds=60.0))
    assert not ProjectionPruner(4, 100).prune(study, running(slightly_better, 100, seconds=60.0))  # cost off


def test_cost_is_the_cpu_time_of_the_judging_thread_not_the_wall_clock(monkeypatch):
    # finished trials judged in this process at 0.1 CPU s a step; a running trial's cost is its own CPU seconds
    # per step, whatever the wall clock says (here every trial's wall clock says "instant")
    from types import SimpleNamespace

    from hydra_plugins.optuna5_sweeper import _projection

    clock = [0.0]
    monkeypatch.setattr(_projection, "time", SimpleNamespace(thread_time=lambda: clock[0]))
    pruner = ProjectionPruner(4, 100, slow_factor=2.0, slow_gain=0.05)
    study = optuna.create_study(pruner=pruner)

    def run(values, cpu_per_step, finish):
        trial = study.ask()
        for step in sorted(s for s in values if s <= ROUNDS):
            clock[0] += cpu_per_step * EVERY
            trial.report(values[step], step)
            if pruner.prune(study, study._storage.get_trial(trial._trial_id)):
                return step
        if finish:
            trial.report(values[PHASE_END], PHASE_END)
            study.tell(trial, values[PHASE_END])
        return None

    for values in FAST:
        assert run(values, 0.1, finish=True) is None
    slightly_better = curve(0.059, 0.5, 1.0)  # 1.6 % better than the best finished trial: not enough when slow
    assert run(slightly_better, 0.6, finish=False) == 100  # 6x their CPU per step
    assert run(slightly_better, 0.1, finish=False) is None  # as cheap as they were
    assert _projection.cpu_per_step(study, 0, ROUNDS) == pytest.approx(0.1)


@pytest.mark.parametrize("bad", ["rank=5", "slow_factor=0", "slow_gain=1.5", "margin=-0.1", "horizon=0",
                                 "interval_steps=0", "ratio_quantile=0", "ratio_quantile=1.5"])
def test_impossible_settings_are_refused_before_the_sweep(bad):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        node = compose("config", overrides=["hydra/sweeper=optuna", "hydra/sweeper/pruner=projection",
                                            f"hydra.sweeper.pruner.{bad}"], return_hydra_config=True).hydra.sweeper
    with pytest.raises(_study.SweepConfigError, match="ProjectionPruner"):
        _study.make_pruner(node.pruner)


def test_the_config_group_builds_the_pruner_with_its_fields():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        node = compose("config", overrides=["hydra/sweeper=optuna", "hydra/sweeper/pruner=projection",
                                            "hydra.sweeper.pruner.rank=2", "hydra.sweeper.pruner.n_warmup_steps=50"],
                       return_hydra_config=True).hydra.sweeper
    built = _study.make_pruner(node.pruner)
    assert isinstance(built, ProjectionPruner) and built._rank == 2 and built._n_warmup_steps == 50


def test_a_lower_ratio_quantile_stops_a_flattening_trial_that_one_slow_finished_trial_kept_alive():
    # a finished trial still far from its best at its end (a very low learning rate): its gain after round 100
    # is 1.33x its gain over rounds 50-100, where the other finished trials' is 0.67-0.79x
    still_falling = curve(0.0, 0.3, 0.2)
    study = study_with([*FAST, still_falling])
    flattening = curve(0.060, 1.0, 1.0)  # ends 0.0633, worse than the best finished trial (0.0617)
    assert first_pruned_step(ProjectionPruner(4, 100, ratio_quantile=0.8), study, flattening) == 100
    late = first_pruned_step(ProjectionPruner(4, 100), study, flattening)  # the largest ratio: kept at round 100
    assert late is None or late > 100
