"""A pruner fair to slow learners: it judges a trial by where its validation curve is heading, not where it is.

A pruner that compares trials at the same step (median, percentile) keeps the fast learners (a high learning rate,
deep trees) and stops the slow ones that would have ended best; TPE then ranks those pruned trials below the
finished ones and is steered towards the costly fast learners. :class:`ProjectionPruner` projects each trial to the
end of its fit instead, calibrated on the study's own finished trials: at step ``s`` a trial may still gain, by
its last value, ``R`` times what it gained over the second half of its steps so far (from step ``s/2`` to ``s``),
where ``R`` is the largest such ratio any finished trial showed at the same step (its final value against its
values at ``s/2`` and ``s``), or with ``ratio_quantile`` < 1 that quantile of the finished trials' ratios (the
largest is often that of a trial with a learning rate so low that it was still far from its best at its end:
every running trial would then look as promising as that one). A trial is pruned only when even that
projection is worse than the ``rank``-th best finished trial's final value by more than ``margin``. A slow
learner still improving fast projects far and is kept; a trial whose curve flattened above the best finished
values is stopped.

Cost (``slow_factor``, off by default): a trial that takes more than ``slow_factor`` times the finished trials'
median seconds per step is kept only if its projection beats the reference by ``slow_gain`` (a share). Deep trees
cost several times a shallow trial per round; one that promises little over the best finished trial is the one to
stop, and a sampler that ranks pruned trials below finished ones then spends the study's time on cheaper ones.
Seconds per step are CPU seconds of the thread that runs the trial's fit and asks this pruner (the job's thread:
XGBoost trains in it, or leads its team of threads from it), between the trial's first and latest judged steps,
as judged in this process: another process or trial loading the machine does not change them, so a seeded sweep
prunes the same trials when it runs again (with wall-clock seconds, a busier machine made other trials "slow").
Where a trial was not judged in this process (a study resumed by another process, a trial of another worker) its
wall-clock seconds since it started stand in.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


#: (storage, study, trial number) -> [(judged step, CPU seconds of the judging thread then)], for every trial judged
#: in this process. Module-wide: each sweep job asks a pruner of its own (trial.py), in the thread of its fit.
_JUDGED: Dict[Tuple[int, int, int], List[Tuple[int, float]]] = {}


def _judged_key(study: "optuna.study.Study", number: int) -> Tuple[int, int, int]:
    return id(study._storage), study._study_id, number


def cpu_per_step(study: "optuna.study.Study", number: int, horizon: int) -> Optional[float]:
    """CPU seconds per step of trial ``number`` between its first and latest judged steps up to ``horizon`` (the
    fit's last step: a phase-end value comes later), as judged in this process; or None."""
    seen = [(s, c) for s, c in _JUDGED.get(_judged_key(study, number), ()) if s <= horizon]
    if len(seen) < 2 or seen[-1][0] <= seen[0][0]:
        return None
    return (seen[-1][1] - seen[0][1]) / (seen[-1][0] - seen[0][0])


def value_at(curve: Dict[int, float], step: float) -> Optional[float]:
    """The value reported at the last step at or before ``step``, or None."""
    steps = [s for s in curve if s <= step]
    return curve[max(steps)] if steps else None


def gain_ratio(curve: Dict[int, float], final: float, step: int) -> Optional[float]:
    """What a finished trial still gained after ``step`` (to ``final``) over what it gained from ``step / 2`` to
    ``step`` ("lower is better" values); None when it did not improve over that half."""
    now, half = value_at(curve, step), value_at(curve, step / 2)
    if now is None or half is None or half <= now:
        return None
    return (now - final) / (half - now)


def projected_final(curve: Dict[int, float], step: int, ratio: float) -> float:
    """The final value of a running trial at ``step`` that still gains ``ratio`` times its last half's gain."""
    now, half = curve[step], value_at(curve, step / 2)
    return now if half is None or half <= now else now - ratio * (half - now)


class ProjectionPruner(optuna.pruners.BasePruner):
    """Prunes a trial whose projected final value (see the module) is still worse than the ``rank``-th best final
    value of the finished trials by more than ``margin`` (a share of that value).

    ``n_startup_trials``: finished trials needed before any pruning (``rank`` of them at most); ``n_warmup_steps``:
    steps a trial runs before it is judged; ``interval_steps``: judge every that many steps after the warm-up;
    ``horizon``: the fit's last step, after which nothing is pruned (null: the finished trials' last report before
    their final value, which the job reports at its phase end; kaayko_exp/training/pruning.py); ``slow_factor`` and
    ``slow_gain``: see the module (null: cost is not considered); ``ratio_quantile``: which finished trial's gain
    ratio projects (1.0 the largest, 0.5 the median: the lower, the sooner a flattening curve is stopped)."""

    def __init__(self, n_startup_trials: int = 4, n_warmup_steps: int = 0, interval_steps: int = 1,
                 horizon: Optional[int] = None, rank: int = 1, margin: float = 0.0,
                 slow_factor: Optional[float] = None, slow_gain: float = 0.05, ratio_quantile: float = 1.0) -> None:
        if n_startup_trials < 1 or not 1 <= rank <= n_startup_trials:
            raise ValueError(f"need 1 <= rank ({rank}) <= n_startup_trials ({n_startup_trials})")
        if n_warmup_steps < 0 or interval_steps < 1 or margin < 0:
            raise ValueError("need n_warmup_steps >= 0, interval_steps >= 1 and margin >= 0")
        if (slow_factor is not None and slow_factor <= 0) or not 0 <= slow_gain < 1:
            raise ValueError("need slow_factor > 0 (or null) and 0 <= slow_gain < 1")
        if not 0 < ratio_quantile <= 1:
            raise ValueError(f"ratio_quantile={ratio_quantile} must be in (0, 1]")
        if horizon is not None and horizon < 1:
            raise ValueError(f"horizon={horizon} must be a step >= 1 or null")
        self._n_startup_trials = n_startup_trials
        self._n_warmup_steps = n_warmup_steps
        self._interval_steps = interval_steps
        self._horizon = horizon
        self._rank = rank
        self._margin = margin
        self._slow_factor = slow_factor
        self._slow_gain = slow_gain
        self._ratio_quantile = ratio_quantile

    def _is_slow(self, study: "optuna.study.Study", trial: FrozenTrial, step: int, finished: Sequence[FrozenTrial],
                 horizon: int) -> bool:
        """Whether ``trial`` took more than ``slow_factor`` times the finished trials' median seconds per step so
        far: CPU seconds where this pruner judged it and finished trials, wall-clock seconds otherwise."""
        mine = cpu_per_step(study, trial.number, horizon)
        theirs = sorted(c for c in (cpu_per_step(study, t.number, horizon) for t in finished)
                        if c is not None)
        if mine is not None and theirs:
            return mine > self._slow_factor * theirs[len(theirs) // 2]
        return _is_slow_by_wall_clock(trial, step, finished, horizon, self._slow_factor)

    def prune(self, study: "optuna.study.Study", trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is not None and self._slow_factor is not None:
            _JUDGED.setdefault(_judged_key(study, trial.number), []).append((step, time.thread_time()))
        if step is None or step < self._n_warmup_steps or (step - self._n_warmup_steps) % self._interval_steps:
            return False
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.value is not None and math.isfinite(t.value)]
        if len(finished) < self._n_startup_trials:
            return False
        horizon = self._horizon or _fit_end(finished)
        if horizon is None or step >= horizon:
            return False  # nothing left to save: the trial finishes and the sampler learns its value
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0  # work on "lower is better"
        curves = [({s: sign * v for s, v in t.intermediate_values.items()}, sign * t.value) for t in finished]
        ratios = [r for r in (gain_ratio(c, final, step) for c, final in curves) if r is not None]
        if not ratios:
            return False
        reference = sorted(final for _, final in curves)[self._rank - 1]
        mine = {s: sign * v for s, v in trial.intermediate_values.items() if math.isfinite(v)}
        if step not in mine:
            return False
        bar = reference + self._margin * abs(reference)
        if self._slow_factor is not None and self._is_slow(study, trial, step, finished, horizon):
            bar = reference - self._slow_gain * abs(reference)
        return projected_final(mine, step, quantile(ratios, self._ratio_quantile)) > bar


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (non-empty) as the smallest value with at least a share ``q`` of them at
    or below it: 1.0 the largest, 0.5 the lower median."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def _fit_end(finished: Sequence[FrozenTrial]) -> Optional[int]:
    """The last step at which the finished trials reported during their fit (before their phase-end value)."""
    ends = [sorted(t.intermediate_values)[-2] for t in finished if len(t.intermediate_values) >= 2]
    return max(ends) if ends else None


def _is_slow_by_wall_clock(trial: FrozenTrial, step: int, finished: Sequence[FrozenTrial], horizon: int,
                           factor: float) -> bool:
    """Whether ``trial`` took more than ``factor`` times the finished trials' median wall-clock seconds per step
    since it started."""
    if trial.datetime_start is None:
        return False
    per_step = sorted((t.datetime_complete - t.datetime_start).total_seconds() / horizon for t in finished
                      if t.datetime_start is not None and t.datetime_complete is not None)
    if not per_step:
        return False
    now = datetime.now(trial.datetime_start.tzinfo)
    return (now - trial.datetime_start).total_seconds() / step > factor * per_step[len(per_step) // 2]
