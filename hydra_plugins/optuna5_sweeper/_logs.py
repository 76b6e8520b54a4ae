"""One log format for a sweep: Optuna's records go through Python logging (Hydra's handlers and format), and the
joblib launcher's per-launch chatter is reduced to the job line, with the job's own number.

The sweeper launches one job per ``launcher.launch`` call, so the joblib launcher would log, for every trial,
``Joblib.Parallel(n_jobs=...,backend=loky,...) is launching 1 jobs``, ``Launching jobs, sweep output dir : ...``
and ``#0 : <overrides>`` (its index within the batch, always 0). The filter drops the first two (the sweep
directory and the settings are the same for every trial) and numbers the job line as the basic launcher does.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Optional

JOBLIB_LOGGER = "hydra_plugins.hydra_joblib_launcher._core"
_DROP = ("Joblib.Parallel(", "Launching jobs, sweep output dir")
_JOB_LINE = re.compile(r"^\t#\d+ : ")
_local = threading.local()


def route_optuna_logs() -> None:
    """Optuna's log records propagate to the root logger instead of its own stderr handler and format."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


class _JoblibLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith(_DROP):
            return False
        job = getattr(_local, "job_num", None)
        if job is not None and _JOB_LINE.match(msg):
            record.msg = _JOB_LINE.sub(f"\t#{job} : ", msg, count=1)
        return True


_FILTER = _JoblibLines()


def quiet_joblib_launcher() -> None:
    """Install the filter on the joblib launcher's logger (once)."""
    logger = logging.getLogger(JOBLIB_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def set_job(job_num: Optional[int]) -> None:
    """The job this thread is launching (its launcher log line carries this number); None when done."""
    _local.job_num = job_num
