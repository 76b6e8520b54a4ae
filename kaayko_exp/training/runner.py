"""Start a run or resume one: the body of ``train.py``.

A fresh run validates the config, creates the manifest in Hydra's output
directory and executes the pipeline. ``resume=<dir>`` reloads that run's saved
config, refuses overrides that would change its result, verifies every artifact
and continues where the manifest says it stopped.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from kaayko_exp.errors import ConfigError, RunDirError

log = logging.getLogger(__name__)

# Overrides that may differ on resume without changing the result.
HARMLESS_ON_RESUME = ("resume", "hydra", "n_jobs", "plots", "cache_dir", "checkpointing.heartbeat_seconds",
                      "checkpointing.keep_last")
OBJECTIVE_SETS = ("test", "val", "cv", "external")
OBJECTIVE_METRICS = ("mae", "rmse", "r2", "class_accuracy", "within_half", "skill_accuracy")


def validate_train_config(cfg: DictConfig) -> None:
    """Checks the types cannot express; raise ConfigError before any work starts."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        hint = " (e.g. data=kaayko_csv data.path=tests/data/kaayko_sample)" if "data.path" in missing else ""
        raise ConfigError(
            f"These settings have no value and must be given on the command line: {', '.join(missing)}{hint}."
        )
    if cfg.data.source != "synthetic" and not cfg.data.path:
        raise ConfigError(
            f"data={cfg.data.source} needs the location of the data: add data.path=<dir or file>, e.g. "
            "data=kaayko_csv data.path=tests/data/kaayko_sample (a directory of <Lake>/<YYYY-MM>.csv files) or "
            "data=parquet data.path='/data/kaayko/*.parquet'."
        )
    ss = cfg.sample_size
    if ss.rows is not None and ss.rows <= 0:
        raise ConfigError(f"sample_size.rows={ss.rows}: the row count must be a positive integer, e.g. sample_size.rows=5000.")
    if ss.fraction is not None and not 0 < ss.fraction <= 1:
        raise ConfigError(
            f"sample_size.fraction={ss.fraction}: a fraction of the source must be in (0, 1]; use e.g. 0.02 for 2 %, "
            "or sample_size.rows=N for an exact count."
        )
    sp = cfg.split
    if not 0 < sp.test_fraction < 1:
        raise ConfigError(f"split.test_fraction={sp.test_fraction} must be between 0 and 1 (exclusive), e.g. 0.2.")
    if not 0 <= sp.val_fraction < 1:
        raise ConfigError(f"split.val_fraction={sp.val_fraction} must be in [0, 1), e.g. 0.1 (0 disables validation).")
    if sp.test_months < 1:
        raise ConfigError(f"split.test_months={sp.test_months} must be at least 1.")
    ev = cfg.evaluation
    if ev.cv_folds == 1 or ev.cv_folds < 0:
        raise ConfigError(f"evaluation.cv_folds={ev.cv_folds}: use 0 (no cross-validation) or K >= 2 folds.")
    where, _, metric = ev.objective.partition("_")
    if where not in OBJECTIVE_SETS or metric not in OBJECTIVE_METRICS:
        raise ConfigError(
            f"evaluation.objective={ev.objective} is not <set>_<metric>; sets: {', '.join(OBJECTIVE_SETS)}; "
            f"metrics: {', '.join(OBJECTIVE_METRICS)} (e.g. test_rmse, cv_mae)."
        )
    if where == "cv" and ev.cv_folds < 2:
        raise ConfigError(f"evaluation.objective={ev.objective} needs cross-validation: add evaluation.cv_folds=5.")
    if where == "external" and not ev.external:
        raise ConfigError(f"evaluation.objective={ev.objective} needs an external set: add evaluation.external=<path>.")
    if where == "val" and sp.val_fraction == 0:
        raise ConfigError(f"evaluation.objective={ev.objective} needs a validation set: set split.val_fraction > 0.")
    ck = cfg.checkpointing
    if ck.every < 0 or ck.keep_last < 1:
        raise ConfigError(
            f"checkpointing.every={ck.every}, keep_last={ck.keep_last}: every must be >= 0 (0: stage boundaries "
            "only) and keep_last >= 1."
        )
    if cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} must be a non-negative integer.")
    from kaayko_exp.features.spec import validate_features_config
    from kaayko_exp.models import validate_model_config

    validate_features_config(cfg.features)
    # real sources have no row count before loading: size limits are checked again when the model is built
    validate_model_config(cfg.model, n_rows=planned_rows(cfg) or 0, features=cfg.features)


def planned_rows(cfg: DictConfig) -> Optional[int]:
    """Rows the run will train on, as far as the config tells (None for real data without an exact count)."""
    ss = cfg.sample_size
    if ss.rows is not None:
        return int(ss.rows)
    if cfg.data.source == "synthetic":
        return int(round(cfg.data.total_rows * (ss.fraction if ss.fraction is not None else 1.0)))
    return None


def _hydra_info() -> tuple[Path, dict[str, str], list[str]]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and v is not None}
    return Path(hc.runtime.output_dir), dict(choices), list(hc.overrides.task)


def main(cfg: DictConfig) -> float:
    """``train.py``'s task function body."""
    out_dir, choices, overrides = _hydra_info()
    if cfg.resume:
        return resume(Path(cfg.resume), cfg, overrides)
    return start(cfg, out_dir, choices, overrides)


def start(cfg: DictConfig, out_dir: Path, choices: dict[str, str], overrides: list[str]) -> float:
    from kaayko_exp.runs.rundir import RunDir
    from kaayko_exp.training.pipeline import STAGES, config_hash

    validate_train_config(cfg)
    run = RunDir.create(out_dir, stages=STAGES, config_hash=config_hash(cfg), choices=choices, overrides=overrides)
    return _execute(run, cfg, "start")


def _execute(run: Any, cfg: DictConfig, event: str) -> float:
    from kaayko_exp.training.interrupts import RunInterrupted
    from kaayko_exp.training.pipeline import execute

    run.claim(cfg.checkpointing.heartbeat_seconds)
    run.event(event, argv=sys.argv[1:])
    log.info("run directory: %s", run.path)
    try:
        value = execute(cfg, run)
    except RunInterrupted as exc:
        sys.exit(exc.exit_code)
    finally:
        run.release()
    summarise(run)
    return value


def summarise(run: Any) -> None:
    """Log the run directory and a short metrics table."""
    import json

    report = run.path / "report.json"
    if not report.exists():
        return
    data = json.loads(report.read_text())
    rows = [("model", data.get("metrics", {}))]
    for name, block in (data.get("baselines") or {}).items():
        rows.append((f"baseline: {name}", block))
    cols = ("rmse", "mae", "r2", "class_accuracy", "within_half")
    lines = [f"{'held-out test set':<26}" + "".join(f"{c:>15}" for c in cols)]
    for label, m in rows:
        vals = [m.get(c) for c in cols]
        lines.append(f"{label:<26}" + "".join(f"{(float('nan') if v is None else v):>15.4f}" for v in vals))
    log.info("results (%s)\n%s", run.path, "\n".join(lines))
    print(f"run directory: {run.path}", flush=True)


def _override_key(override: str) -> tuple[str, str]:
    key, _, value = override.lstrip("+~").partition("=")
    return key, value


# Libraries whose versions decide whether saved checkpoints and models can be continued exactly.
VERSION_BOUND = ("kaayko-exp", "xgboost", "scikit-learn", "skops", "numpy")


def _check_versions(run: Any) -> None:
    from kaayko_exp.runs.rundir import package_versions

    now = package_versions()
    saved = run.manifest.get("package", {})
    diff = [f"{k} {saved.get(k)} -> {now.get(k)}" for k in VERSION_BOUND if saved.get(k) != now.get(k)]
    if diff:
        raise RunDirError(
            f"{run.path} was started with other package versions ({'; '.join(diff)}), so its checkpoints cannot "
            "be continued to the same answer. Resume it in an environment with the original versions (see "
            "manifest.json's \"package\"), or start a fresh run."
        )


def resume(path: Path, cfg: DictConfig, overrides: list[str]) -> float:
    from kaayko_exp.evaluation.metrics import objective_value
    from kaayko_exp.runs.rundir import RunDir

    run = RunDir.open(path)
    saved_path = path / ".hydra" / "config.yaml"
    if not saved_path.exists():
        raise RunDirError(
            f"{path} has a manifest but no .hydra/config.yaml, so its configuration cannot be reloaded. "
            "Restore the file or start a fresh run."
        )
    saved = OmegaConf.load(saved_path)
    choices = run.manifest["config"].get("choices", {})
    changed = []
    for item in overrides:
        key, value = _override_key(item)
        if key.split(".")[0] in HARMLESS_ON_RESUME or key in HARMLESS_ON_RESUME:
            continue
        if key in choices:
            if str(choices[key]) != value:
                changed.append(f"{key}: {choices[key]} -> {value}")
            continue
        old, new = OmegaConf.select(saved, key, default="<unset>"), OmegaConf.select(cfg, key, default="<unset>")
        if old != new:
            changed.append(f"{key}: {old} -> {new}")
    if changed:
        raise ConfigError(
            f"resume={path}: these overrides would change the run's result, so they are refused: "
            f"{'; '.join(changed)}. Resume without them, or start a new run with them."
        )
    if run.manifest["status"] == "completed":
        run.verify()
        log.info("%s is already complete; nothing to do", path)
        print(f"{path} is already complete; nothing changed.", flush=True)
        import json

        report = json.loads((path / "report.json").read_text())
        return objective_value(report, report["objective"]["name"])
    run.verify()
    _check_versions(run)
    harmless = {k: OmegaConf.select(cfg, k) for k in ("n_jobs", "plots", "cache_dir")}
    merged = OmegaConf.merge(saved, {"resume": str(path), **harmless,
                                     "checkpointing": {"heartbeat_seconds": cfg.checkpointing.heartbeat_seconds,
                                                       "keep_last": cfg.checkpointing.keep_last}})
    return _execute(run, merged, "resume")
