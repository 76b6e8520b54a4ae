"""Ctrl-C / SIGTERM handling for a running pipeline.

While a fit loop is reporting through the hooks, the first signal only sets a
flag: the next ``hooks.step`` saves a checkpoint at that exact round and raises
:class:`RunInterrupted`. Outside a fit (or on a second signal) the exception is
raised at once. The pipeline then marks the run ``interrupted``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM (a KeyboardInterrupt, so libraries don't swallow it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def interruptible(hooks: Any) -> Iterator[None]:
    """Install SIGINT/SIGTERM handlers that route through ``hooks.request_stop``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if hooks.in_fit and hooks.stop_requested is None:
            hooks.request_stop(signum)
            return
        raise RunInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
