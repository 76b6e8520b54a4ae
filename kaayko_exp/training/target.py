"""Accept or refuse a single run's target directory before Hydra writes anything.

Hydra creates the run directory, writes ``.hydra/`` and opens the job's log file
before the task runs, so a check made in the task comes too late: a fresh start
into an existing run would already have overwritten its saved config. This Hydra
callback (``hydra.callbacks.run_target`` in conf/train.yaml) runs on the composed
config first: a fresh start into a directory an earlier start wrote to is refused,
and a resume must log into its own run with Hydra's config files switched off
(``kaayko_exp.cli.resume_argv`` arranges both). A refusal prints one paragraph and
exits 2 with nothing written. Sweeps (multirun) are not affected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from kaayko_exp.errors import ConfigError, exit_on_user_error


def check(cfg: DictConfig) -> None:
    """Raise a :class:`KaaykoError` when the run of the composed ``cfg`` (with its hydra node) may not start."""
    from kaayko_exp.runs.rundir import occupied, shown

    run_dir = Path(str(cfg.hydra.run.dir)).expanduser()
    resume = OmegaConf.select(cfg, "resume", default=None)
    if resume:
        if run_dir.resolve() != Path(str(resume)).expanduser().resolve() or cfg.hydra.output_subdir is not None:
            raise ConfigError(
                f"resume={resume} continues that run in its own directory and keeps its saved config, but here "
                f"Hydra would write to {shown(run_dir)} (output_subdir {cfg.hydra.output_subdir}). Give resume= on "
                "the command line, without hydra.run.dir or hydra.output_subdir: "
                f"`python train.py resume={resume}`."
            )
        return
    refusal = occupied(run_dir)
    if refusal is not None:
        raise refusal
    from kaayko_exp.tracking import check_logger, prestart

    check_logger(cfg)  # a bad logger setting stops here, before Hydra writes the run directory
    prestart(cfg)  # logger=mlflow: MLflow's imports overlap the run's own start-up, in the tracker's process


class RunTarget(Callback):
    """Hydra callback: :func:`check` before a single run starts."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_user_error(check, config)
