"""backend=dask against backend=local: wall time, client memory, worker memory, on this machine.

The bench starts one ``distributed.LocalCluster`` itself (two worker processes x one thread, ``memory_limit``
per worker) and runs ``python train.py backend=dask backend.address=<it>`` as a child, so the child's peak RSS
(``common.measure``) is the client's alone; a thread polls the scheduler for every worker's memory while a run
trains (the largest value seen per worker, against its limit). The local baseline is the same command with
``backend=local n_jobs=2`` (both cores), run in the same script.

1. wall time at ``sample_size=large`` and ``complete``: dask / local (goal <= 1.3);
2. client peak RSS at every size (goal < 1 GiB);
3. ``data.total_rows`` = 5 x complete (12.2M rows) with ``backend.memory_limit`` per worker below the table's
   in-memory size: completes, every worker under its limit;
4. growth from complete (2.4M) to 12.2M rows: wall time, per-worker peak memory, test metrics.

Usage::

    python bench/bench_dask.py                 # everything (about 30-60 minutes on 2 loaded cores)
    python bench/bench_dask.py --quick         # small sizes, for a smoke run
    python bench/bench_dask.py --json out.json # also write the sections bench/run_all.py renders
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

GIB = 1 << 30
GOAL_WALL, GOAL_CLIENT = 1.3, GIB
COMPLETE = 2_434_601


def log(msg: str) -> None:
    print(msg, flush=True)


class WorkerMemory:
    """Polls the scheduler for each worker's memory (bytes) while a run trains; keeps the largest per worker."""

    def __init__(self, client):
        self.client, self.peak, self.limit = client, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                workers = self.client.sync(self.client.scheduler.identity, n_workers=-1)["workers"]
            except Exception:  # the scheduler busy or a worker restarting: try again
                workers = {}
            for addr, w in workers.items():
                used = float((w.get("metrics") or {}).get("memory") or 0)
                self.peak[addr] = max(self.peak.get(addr, 0.0), used)
                self.limit[addr] = float(w.get("memory_limit") or 0)
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def max_gib(self) -> float:
        return max(self.peak.values(), default=0.0) / GIB

    def under_limit(self) -> bool:
        return all(self.peak[a] < self.limit[a] for a in self.peak if self.limit.get(a))


def train(work: Path, name: str, overrides: list[str]) -> dict:
    run_dir = work / name
    cmd = common.python(str(ROOT / "train.py"), *overrides, "plots=false", f"cache_dir={work / 'cache'}",
                        f"hydra.run.dir={run_dir}")
    res = common.measure(cmd, log=work / f"{name}.log")
    if res["rc"] != 0:
        raise SystemExit(f"{name} failed (rc {res['rc']}):\n{res['tail']}")
    rep = json.loads((run_dir / "report.json").read_text())
    res["metrics"] = rep["metrics"]
    res["fit_s"] = rep["timings"].get("fit")
    log(f"  {name}: {res['seconds']:.1f} s, client peak {res['peak_rss_mib']:.0f} MiB, "
        f"mae {rep['metrics']['mae']:.4f}, class accuracy {rep['metrics']['class_accuracy']:.4f}")
    return res


def table_bytes(rows: int) -> int:
    """In-memory size of ``rows`` rows of the table (pandas, as the local backend holds it), from a sample."""
    from omegaconf import OmegaConf

    from kaayko_exp.data import load_dataset

    cfg = OmegaConf.create({"data": {"source": "synthetic", "total_rows": COMPLETE, "label_noise": 0.0},
                            "sample": {"name": "custom", "rows": 20_000, "fraction": None}})
    try:
        frame, _ = load_dataset(cfg.data, cfg.sample, seed=42, cache_dir=None)
    except Exception:  # a config shape this bench does not know: estimate from the schema's 35 columns
        return rows * 35 * 8
    return int(frame.memory_usage(deep=True).sum() / len(frame) * rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--json", help="write the result sections here (bench/run_all.py)")
    ap.add_argument("--trees", type=int, default=300, help="boosting rounds of every run (model default 300)")
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    sizes = [("small", ["sample_size=small"]), ("medium", ["sample_size=medium"])] if args.quick else \
        [("large", ["sample_size=large"]), ("complete", ["sample_size=complete"])]
    big_rows = 60_000 if args.quick else 5 * COMPLETE
    base_rows = 12_000 if args.quick else COMPLETE
    common_args = ["model=xgboost", f"model.params.n_estimators={args.trees}"]
    work = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    load = os.getloadavg()
    try:
        big_table = table_bytes(big_rows)
        limit = int(min(0.8 * big_table, 6 * GIB)) if not args.quick else int(2 * GIB)
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          memory_limit=limit) as lc, Client(lc, set_as_default=False) as client:
            dask_args = ["backend=dask", f"backend.address={lc.scheduler_address}"]
            rows_wall, rows_mem = [], []
            for name, size in sizes:
                log(f"{name}: backend=local n_jobs=2, then backend=dask (2 workers x 1 thread)")
                local = train(work, f"local_{name}", [*common_args, *size, "n_jobs=2"])
                with WorkerMemory(client) as wm:
                    dask = train(work, f"dask_{name}", [*common_args, *size, *dask_args])
                ratio = dask["seconds"] / local["seconds"]
                rows_wall.append([name, f"{local['seconds']:.1f}", f"{dask['seconds']:.1f}", f"{ratio:.2f}",
                                  f"{local['metrics']['mae']:.4f} / {dask['metrics']['mae']:.4f}",
                                  f"{local['metrics']['class_accuracy']:.4f} / {dask['metrics']['class_accuracy']:.4f}",
                                  common.goal(ratio <= GOAL_WALL)])
                rows_mem.append([name, f"{dask['peak_rss_mib']:.0f}", f"{local['peak_rss_mib']:.0f}",
                                 f"{wm.max_gib():.2f}", common.goal(dask["peak_rss_mib"] * common.MIB < GOAL_CLIENT)])
            growth = []
            if not args.quick:  # sample_size=complete above is the 2.4M-row point
                growth.append((base_rows, dask, wm.max_gib(), wm.under_limit()))
            for rows in ((base_rows, big_rows) if args.quick else (big_rows,)):
                log(f"{rows:,} rows on the cluster (backend.memory_limit {limit / GIB:.2f} GiB per worker; the table "
                    f"in memory: {big_table * rows / big_rows / GIB:.2f} GiB)")
                with WorkerMemory(client) as wm:
                    res = train(work, f"dask_{rows}", [*common_args, f"data.total_rows={rows}",
                                                       "sample_size=complete", *dask_args])
                growth.append((rows, res, wm.max_gib(), wm.under_limit()))
                rows_mem.append([f"{rows:,} rows", f"{res['peak_rss_mib']:.0f}", "", f"{wm.max_gib():.2f}",
                                 common.goal(res["peak_rss_mib"] * common.MIB < GOAL_CLIENT)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cmd = "python bench/bench_dask.py" + (" --quick" if args.quick else "") + \
        (f" --trees {args.trees}" if args.trees != 300 else "")
    where = f"`{cmd}`, load average {load[0]:.1f} at the start on this 2-core machine shared with other work"
    sections = [
        common.section(
            "backend=dask: wall time against backend=local",
            ["size", "local s", "dask s", "dask / local", "test MAE local / dask", "class accuracy local / dask",
             f"goal <= {GOAL_WALL}"], rows_wall,
            intro=f"`python train.py model=xgboost model.params.n_estimators={args.trees} sample_size=<size>` with "
                  "`n_jobs=2` (local) or `backend=dask` joined to a LocalCluster of 2 workers x 1 thread started by "
                  f"the bench; wall time of the whole command. {where}.",
            notes=["The dask fit runs in chunks of `checkpointing.every` rounds, and XGBoost rebuilds each worker's "
                   "quantile matrix at every chunk (one `xgboost.dask.train` call per chunk); the split and the "
                   "features pass through the scheduler, while the synthetic partitions are generated on both "
                   "workers at once. Single wall times on a shared machine move by tens of percent."]),
        common.section(
            "backend=dask: memory",
            ["run", "client peak MiB", "local peak MiB", "largest worker GiB", "client goal < 1 GiB"], rows_mem,
            intro="Client: the train.py process's own peak RSS (the cluster is the bench's). Workers: the largest "
                  "memory the scheduler reported for any worker during the run (polled every 0.5 s)."),
        common.section(
            "backend=dask: growth from complete to 5 x complete",
            ["rows", "wall s", "fit s", "largest worker GiB", "worker limit GiB", "under limit", "test MAE",
             "class accuracy"],
            [[f"{rows:,}", f"{res['seconds']:.1f}", f"{res['fit_s'] or 0:.1f}", f"{mem:.2f}", f"{limit / GIB:.2f}",
              common.goal(ok), f"{res['metrics']['mae']:.4f}", f"{res['metrics']['class_accuracy']:.4f}"]
             for rows, res, mem, ok in growth],
            intro=f"`data.total_rows=<rows> sample_size=complete backend=dask`, backend.memory_limit "
                  f"{limit / GIB:.2f} GiB per worker while the {big_rows:,}-row table takes about "
                  f"{big_table / GIB:.2f} GiB in memory as one pandas frame.",
            notes=[f"Wall time grows {growth[1][1]['seconds'] / growth[0][1]['seconds']:.1f}x and the largest worker's "
                   f"memory {growth[1][2] / max(growth[0][2], 1e-9):.1f}x for {big_rows / base_rows:.0f}x the rows."]),
    ]
    common.write_results(args.json, sections)
    for s in sections:
        log(f"\n{s['heading']}\n" + "\n".join(" | ".join(map(str, r)) for r in [s["header"], *s["rows"]]))


if __name__ == "__main__":
    main()
