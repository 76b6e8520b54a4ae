"""Seeded samplers that never replay: each trial's randomness comes from (seed, trial number).

A sampler built once per process from a fixed seed restarts its random stream in every process: a resumed
sweep (or a second worker on the same study) would draw the first trials' parameters again. Instead, the
sweeper builds a fresh sampler for every trial with a seed derived from the configured seed and that
trial's study number (known in ``before_trial``, before anything is sampled). Trial numbers are unique in a
study, so workers never share a stream, and a resumed sweep draws what an uninterrupted one would have.
The samplers keep their state in the study storage (trials, system attrs), so a fresh one loses nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

from optuna.samplers import BaseSampler


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed mixing the configured seed and a trial number (stable across runs and platforms)."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])


class PerTrialSeededSampler(BaseSampler):
    """Delegates to ``factory(trial_seed(seed, trial.number))``, rebuilt in ``before_trial`` of each trial.

    The sweeper asks (and fills) one trial at a time from one thread, so the current inner sampler is the
    one of the trial being sampled.
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = int(seed)
        self._inner = factory(self._seed)

    @property
    def inner(self) -> BaseSampler:
        return self._inner

    def __str__(self) -> str:
        return f"{type(self._inner).__name__}(seed={self._seed}, per trial)"

    def before_trial(self, study: Any, trial: Any) -> None:
        self._inner = self._factory(trial_seed(self._seed, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> Dict[str, Any]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Dict[str, Any]) -> Dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Optional[Sequence[float]]) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()
