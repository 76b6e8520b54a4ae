"""Score weather rows with a trained run: batch files, one row, or an HTTP server.

    python predict.py run=<run dir> input=<file.parquet|file.csv|dir> output=<preds.parquet|preds.csv>
    python predict.py run=<run dir> 'row={"lake": "Lake Mead", "datetime": "2025-07-01 14:00", ...}'   [format=json]
    echo '{"lake": "Lake Mead", ...}' | python predict.py run=<run dir> row=-
    python predict.py run=<run dir> serve.port=8080
    python predict.py run=<run dir> input=<parquet dir or glob> output=<dir> backend=dask   # on a Dask cluster
    python predict.py --help

See kaayko_exp/serving/: predictor.py (outputs), inputs.py (the input policy), safety.py (safety layer),
http.py (HTTP routes) and cli.py (this command's modes).
"""

import sys

import hydra
from omegaconf import DictConfig

from kaayko_exp import config as _config  # noqa: F401  (registers the schemas)
from kaayko_exp.cli import run_entry_point, task


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@task
def main(cfg: DictConfig) -> None:
    if cfg.backend.name == "dask" and cfg.input is not None:  # batch scoring partition by partition on a cluster
        from kaayko_exp.cluster.predict import run
    else:
        from kaayko_exp.serving.cli import run

    run(cfg)


if __name__ == "__main__":
    def _entry() -> None:
        from kaayko_exp.serving.cli import rewrite_row_argument

        sys.argv[1:] = rewrite_row_argument(sys.argv[1:])  # row='{"lake": ...}' (JSON) as Hydra accepts it
        main()

    run_entry_point(_entry)
