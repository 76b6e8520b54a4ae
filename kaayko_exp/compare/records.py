"""One compared run, as read from its saved files (report.json, manifest.json, .hydra/config.yaml).

The comparison never retrains and never loads a model: everything it shows comes from a
:class:`RunRecord`. Per-lake win rates read ``predictions/test.parquet`` lazily, only when needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class TrialInfo:
    """Where a run is one trial of a sweep: its number, state and objective value(s) in the study."""

    sweep_dir: Path
    number: int
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING | WAITING
    values: Optional[list[float]] = None
    pareto: bool = False  # on the Pareto front of a multi-objective sweep


@dataclass
class RunRecord:
    """A run directory as the comparison sees it."""

    path: Path  # the run directory (absolute)
    shown: str  # the path as the user should read it (relative to the cwd when below it)
    status: str  # the manifest's status: completed | running | failed | interrupted | pruned
    model: Optional[str] = None  # model.name from the saved config
    choices: dict[str, str] = field(default_factory=dict)  # Hydra group choices (model, sample_size, ...)
    params: dict[str, Any] = field(default_factory=dict)  # the resolved saved config, flattened: "a.b.c" -> value
    metrics: dict[str, float] = field(default_factory=dict)  # headline held-out test metrics (report.json "metrics")
    val_metrics: dict[str, float] = field(default_factory=dict)
    cv_mean: dict[str, float] = field(default_factory=dict)
    cv_std: dict[str, float] = field(default_factory=dict)
    objective: Optional[dict[str, Any]] = None  # {"name", "value"}
    train_seconds: Optional[float] = None  # wall time of the run's stages
    rows: Optional[int] = None  # rows the run trained on (train part)
    test_set: Optional[dict[str, Any]] = None  # {"n", "split_sha256", "labels_sha256"}: "same test set" is checked
    trial: Optional[TrialInfo] = None
    run_id: Optional[str] = None  # the manifest's run id
    note: Optional[str] = None  # why a row has no metrics (no report yet, trial without a run dir)

    def value(self, metric: str) -> Optional[float]:
        """A metric by the name users type: ``mae`` (held-out test), ``val_mae``, ``cv_mae`` (CV mean),
        ``objective`` or ``trial_value``; None when the run has none."""
        if metric == "objective":
            v = (self.objective or {}).get("value")
        elif metric == "trial_value":
            v = self.trial.values[0] if self.trial and self.trial.values else None
        elif metric.startswith("val_"):
            v = self.val_metrics.get(metric[4:])
        elif metric.startswith("cv_"):
            v = self.cv_mean.get(metric[3:])
        else:
            v = self.metrics.get(metric)
        return None if v is None or v != v else float(v)  # NaN (null in the report) reads as missing

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions" / "test.parquet"
