"""A sweep job's set-up: Hydra's ``run_job`` against the sweeper's own (hydra_plugins/optuna5_sweeper/_launch.py).

Usage: python bench/bench_job.py [--repeats N] [--json PATH]

Both run the same job config (``hparams_search=xgboost``, a trial's ``model.params.max_depth`` override, from the
sweeper's caching loader as in a sweep) with a task that does nothing, alternately in one process, so the
difference is what each costs a trial before and after its task: setting Hydra's config, copying the config,
writing ``.hydra/{config,hydra,overrides}.yaml``, the job's logging config. CPU and wall milliseconds per job,
medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

sys.path.insert(0, str(common.ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=60, help="jobs per side, alternating (default 60)")
    ap.add_argument("--json", default=None, help="write the result section here (for bench/run_all.py)")
    args = ap.parse_args()

    from hydra._internal.callbacks import Callbacks
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.utils import run_job, setup_globals
    from hydra.types import HydraContext, RunMode
    from omegaconf import open_dict

    import hydra_plugins.optuna5_sweeper.config  # noqa: F401  (registers hydra/sweeper=optuna)
    import kaayko_exp.config  # noqa: F401  (registers train_schema)
    from hydra_plugins.optuna5_sweeper import _launch
    from hydra_plugins.optuna5_sweeper._compose import CachingConfigLoader

    setup_globals()
    loader = CachingConfigLoader(ConfigLoaderImpl(config_search_path=create_config_search_path(
        str(common.ROOT / "conf"))))
    times: dict[str, list[tuple[float, float]]] = {"hydra": [], "plugin": []}
    with tempfile.TemporaryDirectory() as tmp:
        master = loader.load_configuration("train", overrides=["hparams_search=xgboost", f"hydra.sweep.dir={tmp}"],
                                           run_mode=RunMode.MULTIRUN)
        context = HydraContext(config_loader=loader, callbacks=Callbacks())

        def job(i: int):
            cfg = loader.load_sweep_config(master, ["hparams_search=xgboost", f"model.params.max_depth={3 + i % 7}"])
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = i
            return cfg

        def nothing(cfg) -> float:
            return 0.0

        for i in range(args.repeats + 2):  # the first two of each side warm caches and are not counted
            for side in (("hydra", "plugin") if i % 2 else ("plugin", "hydra")):
                cfg = job(2 * i + (side == "plugin"))
                cpu, wall = time.process_time(), time.perf_counter()
                if side == "hydra":
                    run_job(task_function=nothing, config=cfg, job_dir_key="hydra.sweep.dir",
                            job_subdir_key="hydra.sweep.subdir", hydra_context=context)
                else:
                    _launch.run_job(context, nothing, cfg)
                if i >= 2:
                    times[side].append((time.process_time() - cpu, time.perf_counter() - wall))
    med = {side: (1000 * statistics.median(c for c, _ in t), 1000 * statistics.median(w for _, w in t))
           for side, t in times.items()}
    rows = [["Hydra's run_job (hydra/launcher=basic)", f"{med['hydra'][0]:.1f}", f"{med['hydra'][1]:.1f}", "1.00"],
            ["the sweeper's run_job (_launch.py)", f"{med['plugin'][0]:.1f}", f"{med['plugin'][1]:.1f}",
             f"{med['plugin'][0] / med['hydra'][0]:.2f}"]]
    section = common.section(
        "Sweep job set-up", ["job runner", "CPU ms a job", "wall ms a job", "CPU ratio"], rows,
        intro=("`python bench/bench_job.py`: the same `hparams_search=xgboost` job configs, a task that does "
               "nothing, Hydra's `run_job` and the sweeper's alternately in one process; medians of "
               f"{args.repeats} jobs each."),
        notes=["Both write the job's `.hydra/` files and set its Hydra config and logging; the sweeper's sets "
               "Hydra's config once, copies the job config once (pickle) and writes YAML with libyaml."])
    common.print_sections([section])
    common.write_results(args.json, [section])


if __name__ == "__main__":
    main()
