"""``python predict.py run=<run> input=<parquet dir or glob> output=<dir> backend=dask``: batch scoring on a cluster.

The input is read with ``dask.dataframe.read_parquet`` (only the columns the input policy can use). Each
partition is scored on its worker by the run's :class:`~kaayko_exp.serving.predictor.Predictor` (loaded on the
worker from the run directory, its artifacts verified, once per worker process): the same input policy,
derived fields, feature code and safety layer as the local path, so the rows are the local path's. Each
worker writes its partition as ``part-NNNNN.parquet`` (the local output's columns and types) into a temporary
directory beside ``output``, which replaces ``output`` only once every partition is written. The run
directory and the output must be on a filesystem the workers share.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from kaayko_exp.errors import ConfigError, PredictionInputError

log = logging.getLogger(__name__)

_PREDICTORS: dict[tuple[str, Optional[str]], Any] = {}  # per worker process


def _predictor(run: str, safety_json: Optional[str]) -> Any:
    import json

    from kaayko_exp.serving.predictor import Predictor

    key = (run, safety_json)
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        _PREDICTORS[key] = Predictor.load(run, safety=None if safety_json is None else json.loads(safety_json))
    return _PREDICTORS[key]


def score_partition(part: Any, index: int, run: str, safety_json: Optional[str], out_dir: str) -> int:
    """On a worker: score one input partition with the run's Predictor and write it; returns its rows."""
    import pyarrow.parquet as pq

    from kaayko_exp import atomic
    from kaayko_exp.serving.predictor import _arrow_table

    try:
        result = _predictor(run, safety_json).predict(part.reset_index(drop=True))
    except PredictionInputError as exc:
        raise PredictionInputError(f"input partition {index} (rows counted from its start): {exc}") from None
    table = _arrow_table(result)
    path = Path(out_dir) / f"part-{index:05d}.parquet"
    atomic.write_with(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return int(len(result))


def _columns(path: str, wanted: tuple[str, ...]) -> list[str]:
    """The input's columns the predictor can use (read only those)."""
    import pyarrow.dataset as ds

    try:
        names = ds.dataset(path if not any(c in path for c in "*?[") else sorted(_glob(path)),
                           format="parquet").schema.names
    except (OSError, ValueError) as exc:
        raise PredictionInputError(
            f"input={path} cannot be read as parquet ({' '.join(str(exc).split())}). With backend=dask, pass a "
            "directory of .parquet files or a glob such as 'weather/*.parquet'."
        ) from None
    return [c for c in names if c in set(wanted)]


def _glob(pattern: str) -> list[str]:
    import glob

    found = glob.glob(pattern)
    if not found:
        raise PredictionInputError(f"input={pattern} matches no file. Pass a directory of .parquet files or a glob "
                                   "that matches some.")
    return found


def predict_dataset(client: Any, run: str, safety: Any, input_path: str, output: str) -> tuple[int, int]:
    """Score ``input_path`` into the directory ``output``; returns (rows, partitions)."""
    import dask
    import dask.dataframe as dd
    import json

    from kaayko_exp.serving.predictor import Predictor

    src = str(input_path)
    if not Path(src).exists() and not any(c in src for c in "*?["):
        raise PredictionInputError(f"input={src} does not exist. With backend=dask, pass a directory of .parquet "
                                   "files or a glob such as 'weather/*.parquet'.")
    dst = Path(output)
    if dst.suffix.lower() in (".csv",):
        raise ConfigError(f"output={dst}: backend=dask writes a partitioned parquet dataset; give a directory "
                          "(e.g. output=outputs/scores/).")
    if dst.exists() and not dst.is_dir():
        raise ConfigError(f"output={dst} is a file; backend=dask writes a directory of parquet parts. Choose a "
                          "new directory.")
    run_path = str(Path(run).resolve())
    safety_json = None if safety is None else json.dumps(safety)
    predictor = Predictor.load(run_path, safety=safety)  # refuses a damaged run here, before the workers start
    columns = _columns(src, predictor.plan.reads())
    ddf = dd.read_parquet(src, columns=columns)
    tmp = dst.parent / f".{dst.name}.tmp-{int(time.time() * 1000)}"
    tmp.mkdir(parents=True)
    try:
        tasks = [dask.delayed(score_partition)(part, i, run_path, safety_json, str(tmp))
                 for i, part in enumerate(ddf.to_delayed())]
        counts = client.compute(tasks, sync=True)
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return int(sum(counts)), len(counts)


def run(cfg: DictConfig) -> None:
    """``predict.py``'s batch mode with ``backend=dask`` (the other modes run in this process)."""
    from kaayko_exp.cluster.session import open_cluster
    from kaayko_exp.serving.cli import _setup_logging

    _setup_logging(cfg.get("log_level", "INFO"))
    if not cfg.run:
        raise ConfigError("Pass the run directory to predict with: run=outputs/<date>/<time>.")
    if cfg.row is not None or cfg.serve.port is not None:
        raise ConfigError("backend=dask scores batch inputs only (input=<parquet dir or glob> output=<dir>); score "
                          "one row or serve HTTP with backend=local (the default).")
    if not cfg.output:
        raise ConfigError(f"input={cfg.input} needs output=<dir> (backend=dask writes a partitioned parquet).")
    safety = OmegaConf.to_container(cfg.safety, resolve=True) if cfg.get("safety") is not None else None
    t0 = time.perf_counter()
    with open_cluster(cfg.backend) as session:
        with session.client.as_current():
            rows, parts = predict_dataset(session.client, str(cfg.run), safety, str(cfg.input), str(cfg.output))
    log.info("wrote %s predictions in %d partitions to %s in %.1f s", f"{rows:,}", parts, cfg.output,
             time.perf_counter() - t0)
    print(f"Wrote {rows:,} predictions ({parts} partitions) to {cfg.output}", file=sys.stderr)
