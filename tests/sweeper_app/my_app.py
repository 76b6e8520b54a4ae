"""A tiny Hydra app for the optuna5 sweeper tests: minimise a quadratic through a fake fit loop.

Each job writes one line per fit step to <job dir>/steps.txt (so tests can count the steps run),
reports the running value to its trial and stops at once when the trial should be pruned.
"""

import gc
import math
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


def objective(cfg: DictConfig) -> float:
    base = (float(cfg.x) - 2.0) ** 2 + (float(cfg.y) - 1.0) ** 2
    if cfg.model.name == "cubic":
        base += abs(float(cfg.x) - 2.0) ** 3 + 0.5 * cfg.model.depth
    return base * float(cfg.model.scale)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    import optuna

    from hydra_plugins.optuna5_sweeper.trial import current_trial

    hc = HydraConfig.get()
    job_num = hc.job.num
    job_dir = Path(hc.runtime.output_dir)
    trial = current_trial()
    (job_dir / "frozen.txt").write_text(str(gc.get_freeze_count()))  # what the sweep process had frozen
    final = objective(cfg)
    for step in range(cfg.steps):
        value = final + (cfg.steps - step) / cfg.steps  # falls towards the final value
        with open(job_dir / "steps.txt", "a") as fh:
            fh.write(f"{step}\n")
        if trial is not None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if job_num == cfg.kill_at_job and step == 0:
            marker = Path(hc.sweep.dir) / "killed.marker"
            if not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
    if 0 <= cfg.fail_from_job <= job_num:
        raise RuntimeError(f"job {job_num} broke on purpose")
    if job_num == cfg.nan_at_job:
        return math.nan
    return [final, float(cfg.x)] if cfg.multi else final


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:  # Hydra reports a sweeper/config error in one paragraph and exits 1
        sys.exit(2 if exc.code == 1 else exc.code)
