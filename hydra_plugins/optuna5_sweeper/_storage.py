"""A database storage that rides out a short outage: transient errors are retried with backoff.

A restarted or briefly unreachable database server breaks the pooled connections of every worker. The
engine pings a connection before using it (``pool_pre_ping``), and every storage call that fails with a
connection-level error (the server closed the connection, refused it, a network error) is retried with
exponential backoff for ``retry_s`` seconds (``hydra.sweeper.storage_retry_s``); after that
:class:`StorageUnavailableError` says so in one paragraph. Errors of the data itself are not retried.

Calls made inside :func:`no_wait` (a job's intermediate report, the heartbeat) are tried once: the caller
keeps working and tries again later instead of blocking its training loop.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from typing import Any, Callable, Iterator

from hydra_plugins.optuna5_sweeper._study import hide_password
from hydra_plugins.optuna5_sweeper.errors import SweeperError

log = logging.getLogger(__name__)

DEFAULT_RETRY_S = 60.0
_local = threading.local()


class StorageUnavailableError(SweeperError):
    """The study's database could not be reached (at the start, or for longer than the retry window)."""


@contextlib.contextmanager
def no_wait() -> Iterator[None]:
    """Storage calls of this thread inside the block are tried once (no retry)."""
    before = getattr(_local, "no_wait", False)
    _local.no_wait = True
    try:
        yield
    finally:
        _local.no_wait = before


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a lost or refused database connection."""
    try:
        from sqlalchemy import exc as sa
    except ImportError:  # pragma: no cover - RDB storages need sqlalchemy
        return False
    seen = set()
    e: Any = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError)):
            return True
        if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
            return True
        if type(e).__module__.startswith("psycopg") and type(e).__name__ in ("OperationalError", "InterfaceError"):
            return True
        e = e.__cause__ or e.__context__
    return False


def _first_line(exc: BaseException) -> str:
    e: Any = exc
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return text[0] if text else type(e).__name__


def unavailable(url: str, exc: BaseException, waited: float) -> StorageUnavailableError:
    if not waited:
        return StorageUnavailableError(
            f"The study storage {hide_password(url)} cannot be reached: {_first_line(exc)}. Check that the database "
            "server runs and that the URL's host, port, user, password and database name are right."
        )
    return StorageUnavailableError(
        f"The study storage {hide_password(url)} stopped answering and was retried for {waited:.0f} s "
        f"(hydra.sweeper.storage_retry_s): {_first_line(exc)}. The sweep stopped; its running trials were asked to "
        "stop at a checkpoint. When the database is back, run the same command again: the study lives in the "
        "database and its unfinished trials are queued again."
    )


def _retrying(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        delay = 0.1
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                waited = time.monotonic() - start
                if getattr(_local, "no_wait", False):
                    raise
                if waited >= self.retry_s:
                    raise unavailable(self.url, exc, waited) from None
                log.warning("storage %s: %s (%s); retrying for up to %.0f s more", hide_password(self.url), name,
                            _first_line(exc), self.retry_s - waited)
                time.sleep(min(delay, max(0.0, self.retry_s - waited)))
                delay = min(delay * 2, 5.0)
    return call


from optuna.storages import BaseStorage, RDBStorage  # noqa: E402  (this module is imported only for RDB URLs)


class RetryingRDBStorage(RDBStorage):
    """RDBStorage whose public calls retry transient errors for ``retry_s`` seconds."""

    retry_s = DEFAULT_RETRY_S


for _name, _member in vars(BaseStorage).items():
    if not _name.startswith("_") and callable(_member) and _name != "remove_session":
        setattr(RetryingRDBStorage, _name, _retrying(_name, getattr(RDBStorage, _name)))


def rdb_storage(url: str, retry_s: float = DEFAULT_RETRY_S) -> RDBStorage:
    """An Optuna RDBStorage with pre-pinged connections whose calls retry transient errors; a database that
    cannot be reached when it is opened is :class:`StorageUnavailableError` at once."""
    try:
        storage = RetryingRDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as exc:
        if is_transient(exc):
            raise unavailable(url, exc, 0.0) from None
        raise
    storage.retry_s = float(retry_s)
    return storage
