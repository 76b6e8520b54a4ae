"""A Hydra sweeper on Optuna 5: pruning from inside jobs, resumable crash-safe studies, parallel trials.

Generic: it knows nothing of the application it sweeps. Select it with ``hydra/sweeper=optuna``.
"""

__version__ = "0.1.0"
