"""Score weather rows with a trained run: batch files, one row, or an HTTP server.

    python predict.py run=<run dir> input=<file.parquet|file.csv|dir> output=<preds.parquet|preds.csv>
    python predict.py run=<run dir> 'row={temp_c: 22.5, wind_kph: 12, ...}'   [format=json]
    echo '{"temp_c": 22.5, ...}' | python predict.py run=<run dir> row=-
    python predict.py run=<run dir> serve.port=8080

See kaayko_exp/predictor.py (outputs), kaayko_exp/requests.py (input policy),
kaayko_exp/safety.py (safety layer) and kaayko_exp/serve.py (HTTP routes).
"""

import hydra
from omegaconf import DictConfig

from kaayko_exp import config as _config  # noqa: F401  (registers the schemas)
from kaayko_exp.cli import run_entry_point, task


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@task
def main(cfg: DictConfig) -> None:
    from kaayko_exp.serving.cli import run

    run(cfg)


if __name__ == "__main__":
    run_entry_point(main)
