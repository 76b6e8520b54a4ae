"""Ctrl-C / SIGTERM handling for a running pipeline.

While a fit is running, the first signal only sets a flag on :class:`StopSignals`
(a fit callback): the checkpoint callback saves the state of the next step and
``StopSignals`` then raises :class:`RunInterrupted` (a finished sub-fit is kept
before it raises). Outside a fit (or on a second signal) the exception is raised at
once. The pipeline then marks the run ``interrupted``.

A sweep job of the ``optuna`` sweeper runs in a worker thread of the sweep process, where no signal
handler runs: the sweeper's main thread catches the signal and raises a flag, which
:class:`StopSignals` polls (:func:`sweep_stop_signal`) at every step and between stages, so the job
checkpoints and stops the same way.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Optional

from kaayko_exp.models.callbacks import FitCallback, Saver

log = logging.getLogger("kaayko_exp.fit")


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM (a KeyboardInterrupt, so libraries don't swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class WorkerLost(RunInterrupted):
    """backend=dask: a worker left the cluster while the fit ran; the run stops as interrupted, its checkpoint
    kept (``message`` is the paragraph already logged)."""

    def __init__(self, message: str):
        KeyboardInterrupt.__init__(self, message)
        self.signum = 0
        self.signal_name = "worker lost"
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_WORKER_LOST


#: exit status of a run stopped because a Dask worker left the cluster (EX_TEMPFAIL: try again with resume=)
EXIT_WORKER_LOST = 75


class StopSignals(FitCallback):
    """Stops a fit at the next step after a stop request (put it after the checkpoint callback)."""

    def __init__(self) -> None:
        self.pending: Optional[int] = None
        self.depth = 0  # fits running (an ensemble member runs inside its ensemble's fit)
        self.poll: Optional[Callable[[], Optional[int]]] = None  # a stop flag raised elsewhere (sweep threads)

    @property
    def in_fit(self) -> bool:
        return self.depth > 0

    def requested(self) -> bool:
        if self.pending is None and self.poll is not None:
            signum = self.poll()
            if signum is not None:
                self.request(signum)
        return self.pending is not None

    def check(self) -> None:
        """Between stages: stop now when a stop was requested (only a polled flag can be pending here)."""
        if self.requested():
            self._stop()

    def request(self, signum: int) -> None:
        self.pending = signum
        log.warning("stop requested (signal %d): saving a checkpoint at the next round", signum)

    def before_fit(self, key: str, total: int, unit: str = "step") -> None:
        self.depth += 1

    def after_step(self, key: str, done: int, total: int, score: Optional[float] = None,
                   save: Optional[Saver] = None) -> None:
        if self.requested() and done < total:
            self._stop()

    def after_fit(self, key: str, save: Optional[Saver] = None) -> None:
        self.depth = max(0, self.depth - 1)
        if self.requested():
            self._stop()

    def _stop(self) -> None:
        signum, self.pending, self.depth = self.pending, None, 0
        raise RunInterrupted(signum)


def sweep_stop_signal() -> Optional[int]:
    """The signal that asked the sweep process running this job to stop, or None (no such sweep here)."""
    trial_api = sys.modules.get("hydra_plugins.optuna5_sweeper.trial")  # loaded by a sweeper in this process
    stop_requested = getattr(trial_api, "stop_requested", None)
    return stop_requested() if stop_requested is not None else None


@contextlib.contextmanager
def interruptible(stop: StopSignals) -> Iterator[None]:
    """Install SIGINT/SIGTERM handlers that defer to ``stop`` during a fit and raise at once otherwise.

    Off the main thread (a sweep job) ``stop`` polls the sweep's stop flag instead."""
    if threading.current_thread() is not threading.main_thread():
        stop.poll = sweep_stop_signal
        try:
            yield
        finally:
            stop.poll = None
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.in_fit and stop.pending is None:
            stop.request(signum)
            return
        raise RunInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
