"""SIGINT/SIGTERM during a sweep: the main thread turns the first signal into a stop request for the jobs.

The jobs of ``hydra/launcher=basic`` run in worker threads, where Python never runs signal handlers, so
the sweeper installs its own for the length of the loop: the first signal sets the flag that jobs poll
(``trial.stop_requested()``) and no further trial is started; a second signal ends the process at once
(its running trials stay RUNNING and are recovered by the next sweep, as after a crash).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any, Dict, Optional

from hydra_plugins.optuna5_sweeper._liveness import stop_file
from hydra_plugins.optuna5_sweeper.trial import _set_stop, stop_requested

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopOnSignal:
    """Context manager: handlers installed in the main thread (elsewhere it does nothing)."""

    def __init__(self) -> None:
        self._previous: Dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if stop_requested() is None:
            request_stop(signum)
            log.warning("%s: stopping the running trial(s) at their next step (a second signal exits at once)",
                        signal_name(signum))
            return
        print(f"{signal_name(signum)} again: exiting now; the running trial(s) stay RUNNING and the next sweep in "
              "this directory recovers them", file=sys.stderr, flush=True)
        os._exit(exit_code(signum))

    def __enter__(self) -> "StopOnSignal":
        _set_stop(None)
        _remove(stop_file(os.getpid()))
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}
        _remove(stop_file(os.getpid()))

    @staticmethod
    def requested() -> Optional[int]:
        return stop_requested()


def request_stop(signum: int) -> None:
    """Ask the running jobs to stop as if ``signum`` had been received (the sweep ends after them): the flag
    for jobs in this process's threads, a file for jobs in worker processes (``_liveness.EndsWithSweep``)."""
    _set_stop(signum)
    try:
        with open(stop_file(os.getpid()), "w") as fh:
            fh.write(str(int(signum)))
    except OSError as exc:
        log.warning("jobs in worker processes were not told to stop: %s", exc)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
