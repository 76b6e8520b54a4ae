"""Start a run or resume one: the body of ``train.py``.

A fresh run validates the config, creates the manifest in Hydra's output
directory (with the hash of the config Hydra saved) and executes the pipeline.
``resume=<dir>`` reloads that run's saved config, verified against that hash,
refuses overrides that would change its result, verifies every artifact and
continues where the manifest says it stopped. Which directory a command may
write to is decided earlier, before Hydra writes: see :mod:`kaayko_exp.training.target`.

Inside a sweep (Hydra multirun) a job whose directory already holds a run of the
same config hash (a resumed sweep, a re-queued trial) reuses it: a completed run
returns its objective without retraining, an unfinished one is resumed from its
checkpoint, a pruned one is pruned again; another config is refused. When the
sweep runs several trials at once through a parallel launcher, ``n_jobs=-1``
becomes the cores divided by the sweeper's ``n_jobs``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from kaayko_exp.cluster.session import backend_session
from kaayko_exp.errors import ConfigError, RunDirError
from kaayko_exp.training.pipeline import RESULT_NEUTRAL
from kaayko_exp.training.validate import validate_train_config

log = logging.getLogger(__name__)

# Overrides a resume accepts: Hydra's own and the settings that do not change the result (training.pipeline).
HARMLESS_ON_RESUME = ("hydra", *RESULT_NEUTRAL)


def _hydra_info() -> tuple[Path, dict[str, str], list[str]]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/") and "@" not in k and v is not None}
    return Path(hc.runtime.output_dir), dict(choices), list(hc.overrides.task)


def _sweep_info() -> Optional[tuple[int, str]]:
    """``(trials run at once, launcher)`` when this job is part of a multirun, else ``None``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    n_jobs = OmegaConf.select(hc, "sweeper.n_jobs", default=1)
    launcher = str(hc.runtime.choices.get("hydra/launcher") or "basic")
    return int(n_jobs) if isinstance(n_jobs, int) else 1, launcher


def _plain_run() -> bool:
    """A ``python train.py`` run (not a multirun job, nor a task called without Hydra, as tests do)."""
    try:
        return _sweep_info() is None
    except ValueError:  # HydraConfig was not set
        return False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def sweep_threads(n_jobs: int, parallel_trials: int, launcher: str, cores: int) -> Optional[int]:
    """Threads per trial when a sweep runs ``parallel_trials`` at once through a parallel ``launcher``
    and the config asks for all cores (``n_jobs`` <= 0); ``None`` when nothing changes."""
    if int(n_jobs) > 0 or parallel_trials <= 1 or launcher == "basic":
        return None
    return max(1, cores // parallel_trials)


def main(cfg: DictConfig) -> float:
    """``train.py``'s task function body."""
    out_dir, choices, overrides = _hydra_info()
    if cfg.resume:
        return resume(Path(cfg.resume), cfg, overrides)
    sweep = _sweep_info()
    if sweep is not None:
        threads = sweep_threads(cfg.n_jobs, *sweep, cores=available_cores())
        if threads is not None:
            log.info("n_jobs=%s with %d trials at once (%s launcher): %d threads per trial on %d cores",
                     cfg.n_jobs, sweep[0], sweep[1], threads, available_cores())
            cfg.n_jobs = threads
        from kaayko_exp.runs.rundir import MANIFEST

        if (out_dir / MANIFEST).exists():
            return rerun_in_sweep(out_dir, cfg, overrides)
    return start(cfg, out_dir, choices, overrides)


def rerun_in_sweep(path: Path, cfg: DictConfig, overrides: list[str]) -> float:
    """A sweep job whose directory already holds a run: reuse a completed one, resume an unfinished one."""

    from kaayko_exp.runs.rundir import RunDir
    from kaayko_exp.training.pipeline import config_hash
    from kaayko_exp.training.pruning import pruned_error

    run = RunDir.open(path)
    saved_hash = (run.manifest.get("config") or {}).get("hash")
    if saved_hash != config_hash(cfg):
        raise RunDirError(
            f"{run.shown} already holds a run of another configuration (config hash {str(saved_hash)[:12]}, this "
            f"trial's {config_hash(cfg)[:12]}), so this sweep job cannot reuse or resume it. The sweep directory "
            "belongs to another study or its overrides changed: resume it with `python train.py resume=<sweep "
            "dir>` and the original overrides, or choose a new hydra.sweep.dir."
        )
    status = run.manifest.get("status")
    if status == "completed":
        run.verify()
        name, value = _saved_objective(run)
        log.info("%s: completed earlier with the same config; reusing its result (%s=%s), not retraining",
                 run.shown, name, value)
        return value
    if status == "pruned":
        log.info("%s was pruned earlier with the same config; pruned again without training", run.shown)
        raise pruned_error(f"{run.shown} was pruned earlier")
    log.info("%s: an unfinished run (%s) of the same config; resuming it from its checkpoint", run.shown, status)
    # n_jobs: this job's thread split, not the value saved with the run
    return resume(path, cfg, [*overrides, f"n_jobs={cfg.n_jobs}"])


def start(cfg: DictConfig, out_dir: Path, choices: dict[str, str], overrides: list[str]) -> float:
    from kaayko_exp.runs.rundir import RunDir
    from kaayko_exp.training.objectives import note_alias
    from kaayko_exp.training.pipeline import STAGES, config_hash
    from kaayko_exp.training.pruning import report_every

    validate_train_config(cfg)
    note_alias(cfg)
    report_every(cfg)
    composed = config_hash(cfg)
    with backend_session(cfg) as session:  # backend=dask: the cluster answers before the run directory exists
        run = RunDir.create(out_dir, stages=STAGES, config_hash=composed, choices=choices, overrides=overrides,
                            saved_config_hash=_saved_config_hash(out_dir, composed))
        return _execute(run, cfg, "start", session)


def _saved_config_hash(out_dir: Path, composed: str) -> Optional[str]:
    """The config hash of the config file Hydra saved for this start (what a resume will reload), if any.

    Hydra saved that file from this very config just before calling the task (``hydra.core.utils.run_job``;
    a start into a directory holding a run is refused before Hydra writes), so its hash is ``composed``: the
    file is not read back and parsed (a YAML parse per sweep trial). A resume verifies the file against it,
    so a YAML round trip that changed a value could only refuse a resume, never continue with other settings;
    tests/test_resume.py checks the round trip for every model and preset.
    """
    from kaayko_exp.runs.rundir import SAVED_CONFIG

    return composed if (out_dir / SAVED_CONFIG).is_file() else None


def _load_saved_config(run: Any) -> DictConfig:
    """The run's saved config, verified against the hash its manifest recorded at the start.

    Hydra's ``.hydra/config.yaml`` is what a resume continues with, so it is trusted only
    when it still hashes to what the run started with (``config.saved_hash``; runs made
    before it was recorded: ``config.hash``, the composed config's).
    """
    from kaayko_exp.runs.rundir import SAVED_CONFIG
    from kaayko_exp.training.pipeline import config_hash

    saved_path = run.path / SAVED_CONFIG
    if not saved_path.exists():
        raise RunDirError(
            f"{run.shown} has a manifest but no {SAVED_CONFIG}, so its configuration cannot be reloaded. "
            "Restore the file or start a fresh run."
        )
    saved = OmegaConf.load(saved_path)
    recorded = run.manifest.get("config") or {}
    expected = recorded.get("saved_hash") or recorded.get("hash")
    found = config_hash(saved)
    if found != expected:
        raise RunDirError(
            f"{run.shown}: its saved config {SAVED_CONFIG} was changed since the run started (config hash "
            f"{found[:12]}, the manifest recorded {str(expected)[:12]}), so continuing would train the rest of "
            "the run with other settings than its start. Nothing was changed. Restore the file from a backup, "
            "or start a fresh run with the settings you want."
        )
    return saved


def _execute(run: Any, cfg: DictConfig, event: str, session: Any = None) -> float:
    from kaayko_exp.training.interrupts import RunInterrupted
    from kaayko_exp.training.pipeline import execute

    before = run.manifest_bytes() if event == "resume" else None
    run.claim(cfg.checkpointing.heartbeat_seconds, event={"event": event, "argv": sys.argv[1:]})  # one write
    log.info("run directory: %s", run.shown)
    if _plain_run():  # its fit and report libraries load while its data stages run
        from kaayko_exp.training.prefetch import modules_for, prefetch

        prefetch(modules_for(cfg))
    try:
        value = execute(cfg, run, session=session)
    except RunInterrupted as exc:
        sys.exit(exc.exit_code)
    except RunDirError:  # e.g. the rebuilt dataset differs: a refused resume leaves the manifest as it was
        if before is not None:
            run.undo_claim(before)
        raise
    finally:
        run.release()
    summarise(run)
    return value


def summarise(run: Any) -> None:
    """Log the run directory and a short metrics table."""
    from kaayko_exp.evaluation.report import REPORT_JSON, read_report

    if not (run.path / REPORT_JSON).exists():
        return
    report = read_report(run.path)
    rows = [("model", report.metrics), *((f"baseline: {name}", block) for name, block in report.baselines.items())]
    cols = ("rmse", "mae", "r2", "class_accuracy", "within_half")
    lines = [f"{'held-out test set':<26}" + "".join(f"{c:>15}" for c in cols)]
    for label, m in rows:
        vals = [m.get(c) for c in cols]
        lines.append(f"{label:<26}" + "".join(f"{(float('nan') if v is None else v):>15.4f}" for v in vals))
    log.info("results (%s)\n%s", run.shown, "\n".join(lines))
    print(f"run directory: {run.shown}", flush=True)


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
    """Continue the run in ``path`` (absolute, or relative to the working directory).

    The run's OS lock is taken first, so of two resumes started at once exactly one
    proceeds; the other is refused before it reads or writes anything else.
    """
    from kaayko_exp.runs.rundir import RunDir

    run = RunDir.open(path)  # run.path is absolute from here on; messages show run.shown
    run.lock()
    try:
        return _resume_locked(run, cfg, overrides)
    finally:
        run.release()


def _resume_locked(run: Any, cfg: DictConfig, overrides: list[str]) -> float:
    saved = _load_saved_config(run)
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
            f"resume={run.shown}: these overrides would change the run's result, so they are refused: "
            f"{'; '.join(changed)}. Resume without them, or start a new run with them."
        )
    if run.manifest["status"] == "completed":
        run.verify()
        log.info("%s is already complete; nothing to do", run.shown)
        print(f"{run.shown} is already complete; nothing changed.", flush=True)

        return _saved_objective(run)[1]
    run.verify()
    _check_versions(run)
    resumed = resume_config(saved, cfg, overrides, run.path)
    from kaayko_exp.tracking import check_logger

    check_logger(resumed)
    with backend_session(resumed) as session:
        return _execute(run, resumed, "resume", session)


# Settings that may differ on resume: the run's saved values, unless given on the resume's command line.
KEPT_ON_RESUME = tuple(k for k in RESULT_NEUTRAL if k != "resume")


def _saved_objective(run: Any) -> tuple[str, Any]:
    """The objective a completed run's report.json recorded (read through the typed reader): its name and
    what the task returns (a float, or a list for several objectives)."""
    from kaayko_exp.evaluation.report import read_report
    from kaayko_exp.training.objectives import task_value

    objective = read_report(run.path).objective or {}
    return str(objective.get("names") or objective.get("name")), task_value(objective)


def resume_config(saved: DictConfig, cfg: DictConfig, overrides: list[str], path: Path) -> DictConfig:
    """The config a resume runs with: the run's saved config; of :data:`KEPT_ON_RESUME`, only
    those named on the command line (``overrides``) take the freshly composed value."""
    given = {_override_key(item)[0] for item in overrides}
    merged = OmegaConf.merge(saved, {"resume": str(path)})
    for key in KEPT_ON_RESUME:
        if key in given or OmegaConf.select(saved, key, default="<unset>") == "<unset>":
            OmegaConf.update(merged, key, OmegaConf.select(cfg, key), force_add=True)
    return merged
