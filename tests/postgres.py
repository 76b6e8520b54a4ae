"""A throw-away PostgreSQL server for tests: initdb into a temp dir, start on a free loopback port, stop.

Binaries: ``$KAAYKO_PG_BIN`` if set, else ``initdb`` on PATH, else the newest Debian/Ubuntu
``/usr/lib/postgresql/<ver>/bin``. PostgreSQL refuses to run as root, so when the tests run as root the
server runs as the system ``postgres`` user (created by the Debian package) through ``runuser``; its data
dir is a fresh ``mkdtemp`` owned by that user (pytest's ``tmp_path`` is private to root). Authentication is
``trust`` on loopback only. Without a server (or without psycopg2) the fixture skips with the reason,
unless ``KAAYKO_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where it fails instead so CI never skips.

Use ``from postgres import postgres_server, postgres_url  # noqa: F401`` in a test module; ``postgres_url`` yields an
SQLAlchemy URL ``postgresql+psycopg2://kaayko@127.0.0.1:<port>/<db>`` to a fresh database per test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Optional

import pytest

SUPERUSER = "kaayko"


def find_bin_dir() -> Optional[Path]:
    """The directory holding initdb/pg_ctl/postgres, or None."""
    env = os.environ.get("KAAYKO_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(newest).parent


def _run_as() -> tuple[list[str], Optional[str]]:
    """(command prefix, user name) to run server binaries: nothing for a normal user, runuser for root."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no 'postgres' system user to run the server as")
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root and 'runuser' is missing (needed to start postgres as 'postgres')")
    return [runuser, "-u", "postgres", "--"], "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One initdb'd cluster on 127.0.0.1:<port>; ``start()`` then ``stop()`` (removes everything)."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.prefix, self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="kaayko-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.started = False

    def _as_server_user(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, *args], check=True, capture_output=True, text=True, timeout=120, **kw)

    def start(self) -> None:
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._as_server_user([str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                              "--auth=trust", "--encoding=UTF8", "--no-sync"])
        self._pg_ctl_start()

    def _pg_ctl_start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c max_connections=100")
        self._as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                              "-o", options, "-w", "-t", "60", "start"])
        self.started = True

    def restart(self) -> float:
        """Stop the server at once (every client connection is cut, as in a crash or failover) and start it
        again on the same port; returns the seconds it was down."""
        import time

        t0 = time.monotonic()
        self._as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        self.started = False
        self._pg_ctl_start()
        return time.monotonic() - t0

    def create_database(self) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        import psycopg2

        name = "t_" + uuid.uuid4().hex[:12]
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def log_tail(self) -> str:
        log = self.root / "log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        try:
            if self.started:
                self._as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                      "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str):
    if os.environ.get("KAAYKO_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (KAAYKO_REQUIRE_POSTGRES=1) but {reason}")
    pytest.skip(f"no PostgreSQL server for this test: {reason} "
                "(Debian: apt-get install -y postgresql; or set KAAYKO_PG_BIN to the dir holding initdb)")


@pytest.fixture(scope="session")
def postgres_server():
    """A running PostgreSQL server for the whole session (skips with the reason when unavailable)."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("the psycopg2 driver is not installed (pip install -e '.[postgres]')")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        _unavailable("no initdb found on PATH or under /usr/lib/postgresql/*/bin")
    try:
        server = PostgresServer(bin_dir)
    except RuntimeError as exc:
        _unavailable(str(exc))
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        server.stop()
        _unavailable(f"the server did not start: {exc.stderr or exc.stdout}\n{server.log_tail()}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """URL of a fresh database on the session's server."""
    return postgres_server.create_database()
