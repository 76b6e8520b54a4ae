"""Train one paddle-score model: `python train.py [group=option ...] [key=value ...]`.

See `python train.py --help` for the config groups and examples.
"""

import sys

import hydra
from omegaconf import DictConfig

from kaayko_exp import config as _config  # noqa: F401  (registers the schemas)
from kaayko_exp.cli import exit_without_teardown, resume_argv, run_entry_point, task


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@task
def main(cfg: DictConfig) -> float:
    from kaayko_exp.training.runner import main as run

    return run(cfg)


if __name__ == "__main__":
    def _entry() -> None:
        sys.argv = resume_argv(sys.argv)
        main()

    run_entry_point(_entry)
    exit_without_teardown()  # a finished plain run: skip the interpreter's teardown (kaayko_exp.cli)
