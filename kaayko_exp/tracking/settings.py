"""The ``logger`` config group checked before any work (a bad setting: one paragraph, exit status 2)."""

from __future__ import annotations

import importlib.util
from typing import Any

from kaayko_exp.errors import ConfigError

LOGGERS = ("none", "mlflow")
URI_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def logger_on(cfg: Any) -> bool:
    from omegaconf import OmegaConf

    return str(OmegaConf.select(cfg, "logger.name", default="none") or "none") != "none"


def check_logger(cfg: Any) -> None:
    """Refuse an unknown logger, a tracking URI MLflow cannot use, a bad ``log_every`` or a missing mlflow."""
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, "logger", default=None)
    name = str(OmegaConf.select(cfg, "logger.name", default="none") or "none")
    if name not in LOGGERS:
        raise ConfigError(f"logger.name={name!r} is not a logger; use logger=none (the default) or logger=mlflow.")
    if name == "none" or node is None:
        return
    uri = str(node.get("tracking_uri") or "")
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if scheme not in URI_SCHEMES:
        hint = (" MLflow's file store (a plain folder or file: URI) is deprecated and refused by current MLflow "
                "versions." if scheme in ("", "file") else "")
        raise ConfigError(
            f"logger.tracking_uri={uri!r} is not a tracking URI MLflow can log to.{hint} Use "
            "logger.tracking_uri=sqlite:///outputs/mlflow.db (the default: a database file, relative to the "
            "working directory) or logger.tracking_uri=http://host:5000 (a tracking server)."
        )
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        raise ConfigError(
            f"logger.tracking_uri={uri!r}: a SQLite URI names its file after three slashes "
            "(sqlite:///outputs/mlflow.db, relative; sqlite:////abs/path/mlflow.db, absolute)."
        )
    if not str(node.get("experiment_name") or "").strip():
        raise ConfigError("logger.experiment_name is empty; name the MLflow experiment, e.g. "
                          "logger.experiment_name=kaayko-exp.")
    every = node.get("log_every")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"logger.log_every={every!r} must be a whole number >= 1 (the validation score is "
                          "logged every that many boosting rounds / trees). Use e.g. logger.log_every=10.")
    timeout = node.get("timeout_s")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"logger.timeout_s={timeout!r} must be a number of seconds > 0, e.g. logger.timeout_s=60.")
    live = node.get("live_after_s", 60)
    if not isinstance(live, (int, float)) or isinstance(live, bool) or live < 0:
        raise ConfigError(f"logger.live_after_s={live!r} must be a number of seconds >= 0 (0: the run shows in MLflow "
                          "from its first second; 60: a run shorter than a minute is uploaded when it ends).")
    missing = [m for m in ("mlflow", *(("sqlalchemy", "alembic") if scheme not in ("http", "https", "databricks")
                                       else ())) if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"logger=mlflow with logger.tracking_uri={uri} needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install the extra with "
            "`pip install -e \".[mlflow]\"`, or run with logger=none."
        )
