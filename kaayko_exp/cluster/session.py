"""Open the Dask cluster of a ``backend=dask`` run: start a LocalCluster or join a running scheduler."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from kaayko_exp.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("local", "dask")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SchedulerUnreachable(ConfigError):
    """The configured scheduler did not answer (or showed no worker) within ``backend.connect_timeout``."""


@dataclass
class ClusterSession:
    """A connected client and what it is connected to (``info`` goes into the manifest and report)."""

    client: Any
    info: dict[str, Any] = field(default_factory=dict)


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    """A setting of a config node (DictConfig, dataclass or plain dict); ``default`` when absent."""
    if isinstance(cfg, dict):
        return cfg.get(name, default)
    from kaayko_exp.data.sampling import cfg_get

    return cfg_get(cfg, name, default)


def _memory_limit(value: Any) -> Any:
    """``backend.memory_limit`` as LocalCluster takes it: "auto", a size ("4GiB", bytes) or 0/None for none."""
    if value in (None, "", 0, "0", "none", "None"):
        return 0
    return value


def _describe(client: Any, kind: str, address: str) -> dict[str, Any]:
    workers = (client.scheduler_info(n_workers=-1) or {}).get("workers", {})
    threads = sorted({int(w.get("nthreads", 0)) for w in workers.values()})
    memory = sorted({int(w.get("memory_limit") or 0) for w in workers.values()})
    return {
        "address_kind": kind, "address": address, "workers": len(workers),
        "threads_per_worker": threads[0] if len(threads) == 1 else threads,
        "memory_limit": (memory[0] or None) if len(memory) == 1 else memory,
        "dashboard": getattr(client, "dashboard_link", None),
    }


def _summary(info: dict[str, Any]) -> str:
    """One line for the log: what the run computes on, and where its dashboard is."""
    import importlib.util

    from dask.utils import format_bytes

    where = {"local": "a LocalCluster at", "address": "joined the scheduler at",
             "scheduler_file": "joined the scheduler at"}[info["address_kind"]]
    memory = info["memory_limit"]
    memory = format_bytes(memory) if isinstance(memory, int) else (memory or "no limit")
    dashboard = info["dashboard"]
    if importlib.util.find_spec("bokeh") is None:
        dashboard = f"{dashboard} (served once bokeh is installed: pip install bokeh)"
    return (f"{where} {info['address']}, {info['workers']} worker(s) x {info['threads_per_worker']} thread(s), "
            f"memory limit {memory} per worker; dashboard {dashboard}")


def _unreachable(where: str, timeout: float, reason: str) -> SchedulerUnreachable:
    return SchedulerUnreachable(
        f"backend=dask could not reach the Dask scheduler at {where} within backend.connect_timeout={timeout:g} s "
        f"({reason}). Check that the scheduler is running and that this machine can reach that address and port "
        "(firewall, host name), or raise backend.connect_timeout; leave backend.address and "
        "backend.scheduler_file null to start a LocalCluster on this machine instead, or use backend=local."
    )


def _wait_for_a_worker(client: Any, where: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise SchedulerUnreachable(
            f"backend=dask reached the Dask scheduler at {where}, but it had no worker after "
            f"backend.connect_timeout={timeout:g} s ({type(exc).__name__}). Start workers for it "
            f"(`dask worker {where}`), or raise backend.connect_timeout."
        ) from None


def _join(backend_cfg: Any, timeout: float) -> tuple[Any, str, str]:
    from distributed import Client

    address = _get(backend_cfg, "address")
    scheduler_file = _get(backend_cfg, "scheduler_file")
    if scheduler_file:
        path = Path(str(scheduler_file)).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"backend.scheduler_file={scheduler_file}: no such file. Point it at the JSON file that "
                "`dask scheduler --scheduler-file <path>` wrote (on a filesystem this machine sees)."
            )
        where, kind, kwargs = f"{path} (scheduler file)", "scheduler_file", {"scheduler_file": str(path)}
    else:
        where, kind, kwargs = str(address), "address", {"address": str(address)}
    started = time.monotonic()
    try:
        client = Client(timeout=timeout, **kwargs)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise _unreachable(where, timeout, reason) from None
    try:
        _wait_for_a_worker(client, where, max(1.0, timeout - (time.monotonic() - started)))
    except BaseException:
        client.close()
        raise
    return client, kind, client.scheduler.address


def _start_local(backend_cfg: Any) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    n_workers = int(_get(backend_cfg, "n_workers", 2))
    threads = int(_get(backend_cfg, "threads_per_worker", 1))
    memory = _memory_limit(_get(backend_cfg, "memory_limit", "auto"))
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads, memory_limit=memory,
                           processes=True, dashboard_address=_get(backend_cfg, "dashboard_address", ":8787"))
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def check_backend(backend_cfg: Any) -> None:
    """Refuse ``backend.*`` values no cluster can run with (ConfigError), before anything starts."""
    address, scheduler_file = _get(backend_cfg, "address"), _get(backend_cfg, "scheduler_file")
    if address and scheduler_file:
        raise ConfigError(
            f"backend.address={address} and backend.scheduler_file={scheduler_file} both name a scheduler. "
            "Give one of them (or neither, to start a LocalCluster)."
        )
    n_workers, threads = _get(backend_cfg, "n_workers", 2), _get(backend_cfg, "threads_per_worker", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (n_workers, threads)):
        raise ConfigError(f"backend.n_workers={n_workers}, backend.threads_per_worker={threads}: both must be "
                          "whole numbers of at least 1 (e.g. backend.n_workers=2 backend.threads_per_worker=1).")
    memory = _memory_limit(_get(backend_cfg, "memory_limit", "auto"))
    try:
        from dask.utils import parse_bytes

        if memory not in (0, "auto"):
            parse_bytes(memory)
    except (ValueError, TypeError):
        raise ConfigError(f"backend.memory_limit={memory!r} is not a size. Use e.g. 4GiB, 800MB, auto "
                          "(system memory / n_workers) or null (no limit).") from None
    timeout = _get(backend_cfg, "connect_timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"backend.connect_timeout={timeout} must be a positive number of seconds, e.g. 10.")
    level = _get(backend_cfg, "log_level", "WARNING")
    if not isinstance(level, str) or level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"backend.log_level={level!r} is not a logging level. Use one of "
                          f"{', '.join(_LOG_LEVELS)} (default WARNING; INFO logs every worker and comm event).")
    rows = _get(backend_cfg, "partition_rows", 250_000)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1000:
        raise ConfigError(f"backend.partition_rows={rows!r} must be a whole number of at least 1000 rows per "
                          "partition (default 250000; a partition of 250,000 rows is about 23 MiB as a frame).")


@contextlib.contextmanager
def open_cluster(backend_cfg: Any) -> Iterator[ClusterSession]:
    """Connect to the cluster ``backend_cfg`` names; close what was started here on exit (see the package
    docstring). Raises :class:`SchedulerUnreachable` (exit 2) within ``backend.connect_timeout`` seconds when
    the scheduler does not answer."""
    check_backend(backend_cfg)
    timeout = float(_get(backend_cfg, "connect_timeout", 10.0))
    # distributed logs through the root logger, so Hydra writes its messages into train.log
    logging.getLogger("distributed").setLevel(str(_get(backend_cfg, "log_level", "WARNING")).upper())
    cluster = None
    if _get(backend_cfg, "address") or _get(backend_cfg, "scheduler_file"):
        client, kind, address = _join(backend_cfg, timeout)
    else:
        cluster, client = _start_local(backend_cfg)
        kind, address = "local", cluster.scheduler_address
    try:
        session = ClusterSession(client=client, info=_describe(client, kind, address))
        log.info("dask: %s", _summary(session.info))
        yield session
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def backend_session(cfg: Any) -> Iterator[Optional[ClusterSession]]:
    """None for ``backend=local`` (and configs saved before the backend group existed); else the cluster."""
    backend = _get(cfg, "backend")
    name = str(_get(backend, "name", "local"))
    if name not in BACKENDS:
        raise ConfigError(f"backend={name} is not known; choose backend=local (default) or backend=dask.")
    if name == "local":
        yield None
        return
    with open_cluster(backend) as session:
        yield session
