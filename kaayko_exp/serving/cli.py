"""What ``python predict.py`` does once Hydra has composed its config.

Exactly one mode per call: ``serve.port=`` (HTTP), ``input=`` + ``output=`` (batch
file), or ``row=`` (one row: a mapping on the command line, or ``row=-`` to read a
JSON object from stdin). Results go to stdout (single row) or the output file;
logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

from kaayko_exp.errors import ConfigError, PredictionInputError

log = logging.getLogger(__name__)

USAGE = (
    "Choose one mode: input=<file|dir> output=<preds.parquet|preds.csv> (batch), "
    "'row={temp_c: 22.5, wind_kph: 12, ...}' or row=- with a JSON object on stdin (one row), "
    "or serve.port=8080 (HTTP server)."
)


def _setup_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_kaayko_predict", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        handler._kaayko_predict = True  # type: ignore[attr-defined]
        # the entry point's error wrapper prints user errors itself; do not print them twice
        handler.addFilter(lambda r: not (r.name == "__main__" and r.levelno >= logging.ERROR))
        root.addHandler(handler)
    try:
        root.setLevel(str(level).upper())
    except ValueError:
        raise ConfigError(f"log_level={level!r} is not a logging level (DEBUG, INFO, WARNING, ERROR).") from None


def _read_row(cfg: DictConfig) -> dict[str, Any]:
    row = cfg.row
    if isinstance(row, str):
        if row != "-":
            raise ConfigError(f"row={row!r}: pass a mapping ('row={{temp_c: 22.5, ...}}') or row=- to read one "
                              "JSON object from stdin.")
        text = sys.stdin.read()
        try:
            row = json.loads(text)
        except ValueError as exc:
            raise PredictionInputError(f"stdin is not a JSON object ({exc}). Pipe one object like "
                                       "{\"temp_c\": 22.5, \"wind_kph\": 12, ...}.") from None
        if not isinstance(row, dict):
            raise PredictionInputError(f"stdin holds a JSON {type(row).__name__}; pipe one JSON object. For many "
                                       "rows use input=<file> output=<file>.")
        return row
    if OmegaConf.is_config(row):
        return OmegaConf.to_container(row, resolve=True)  # type: ignore[return-value]
    if isinstance(row, dict):
        return row
    raise ConfigError(f"row must be a mapping or '-', got {type(row).__name__}.")


def run(cfg: DictConfig) -> None:
    _setup_logging(cfg.get("log_level", "INFO"))
    modes = [name for name, on in (("serve", cfg.serve.port is not None), ("batch", cfg.input is not None),
                                   ("row", cfg.row is not None)) if on]
    if not cfg.run:
        raise ConfigError(f"Pass the run directory to predict with: run=outputs/<date>/<time>. {USAGE}")
    if len(modes) != 1:
        what = "no mode was given" if not modes else f"several modes were given ({', '.join(modes)})"
        raise ConfigError(f"predict.py: {what}. {USAGE}")
    if cfg.format not in ("text", "json"):
        raise ConfigError(f"format={cfg.format!r}: use text or json.")

    from kaayko_exp.serving.predictor import Predictor

    safety = OmegaConf.to_container(cfg.safety, resolve=True) if cfg.get("safety") is not None else None
    predictor = Predictor.load(cfg.run, safety=safety)
    mode = modes[0]
    if mode == "serve":
        from kaayko_exp.serving.http import serve

        serve(predictor, cfg.serve)
    elif mode == "batch":
        if not cfg.output:
            raise ConfigError(f"input={cfg.input} needs output=<preds.parquet|preds.csv>.")
        from kaayko_exp.serving.predictor import predict_file

        n = predict_file(predictor, cfg.input, cfg.output, int(cfg.batch_size))
        print(f"Wrote {n:,} predictions to {cfg.output}", file=sys.stderr)
    else:
        from kaayko_exp.serving.predictor import advice

        result = predictor.predict_one(_read_row(cfg))
        if cfg.format == "json":
            print(json.dumps(result, allow_nan=False))
        else:
            print(advice(result))
