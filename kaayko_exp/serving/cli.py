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
    "'row={\"lake\": \"Lake Mead\", \"datetime\": \"2025-07-01 14:00\", \"temp_c\": 22.5, ...}' or row=- with a "
    "JSON object on stdin (one row), "
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


def rewrite_row_argument(argv: list[str]) -> list[str]:
    """Let ``row=<JSON object>`` through Hydra's override grammar (call on ``sys.argv[1:]`` before Hydra).

    Hydra parses ``row={"temp_c": 22.5}`` as its own dict syntax, which rejects quoted
    keys. A ``row=`` / ``+row=`` / ``++row=`` argument whose value parses as JSON is
    rewritten into a Hydra quoted string (``row='{...}'``) that :func:`_read_row` decodes;
    single quotes and ``$`` inside it are written as JSON escapes so neither Hydra's
    quoting nor OmegaConf's interpolation touches them. Hydra's own form
    (``'row={temp_c: 22.5}'``) is not JSON and passes unchanged; a value that is neither (a
    malformed JSON object) raises :class:`PredictionInputError` with JSON's own diagnosis.
    """
    out = []
    for arg in argv:
        for prefix in ("row=", "+row=", "++row="):
            if arg.startswith(prefix):
                value = arg[len(prefix):].strip()
                if value.startswith("{"):
                    try:
                        obj = json.loads(value)
                    except (ValueError, RecursionError):
                        if not _hydra_accepts(arg):  # neither JSON nor Hydra's form: say what is wrong as JSON
                            _json_object(value, prefix)
                        break  # Hydra's own form
                    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
                    arg = prefix + "'" + text.replace("'", "\\u0027").replace("$", "\\u0024") + "'"
                break
        out.append(arg)
    return out


def _hydra_accepts(arg: str) -> bool:
    """Whether ``arg`` parses as a Hydra override (e.g. ``row={temp_c: 22.5}``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        OverridesParser.create().parse_override(arg)
    except HydraException:  # the grammar's syntax error (OverrideParseException is one)
        return False
    return True


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(text)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise PredictionInputError(f"{where} is not a JSON object ({detail}). Pass one object like "
                                   "{\"lake\": \"Lake Mead\", \"datetime\": \"2025-07-01 14:00\", \"temp_c\": 22.5, "
                                   "...}.") from None
    if not isinstance(row, dict):
        raise PredictionInputError(f"{where} holds a JSON {type(row).__name__}; pass one JSON object. For many "
                                   "rows use input=<file> output=<file>.")
    return row


def _read_row(cfg: DictConfig) -> dict[str, Any]:
    """The single row of ``row=``: Hydra's mapping, a JSON object (see :func:`rewrite_row_argument`),
    or ``-`` for one JSON object on stdin."""
    row = cfg.row
    if isinstance(row, str):
        if row.strip() == "-":
            return _json_object(sys.stdin.read(), "stdin")
        if row.lstrip().startswith("{"):
            return _json_object(row, "row=")
        raise ConfigError(f"row={row!r}: pass a JSON object ('row={{\"temp_c\": 22.5, ...}}'), Hydra's mapping "
                          "('row={temp_c: 22.5, ...}') or row=- to read one JSON object from stdin.")
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
