"""A temporary PostgreSQL server on 127.0.0.1: initdb in a temporary directory, a free port.

Used by the test run (``GSA_TEST_DB=postgres``), the reliability tests, the benchmarks and the
load generator. Durability is traded for speed (fsync off): the data is thrown away at the end.
When run as root, PostgreSQL's programs run as the ``postgres`` account (it refuses root).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import psycopg2

USER = "gsa"


def find_binaries() -> str | None:
    """Directory holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb and shutil.which("pg_ctl") else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run its programs as the 'postgres' account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class TemporaryPostgres:
    """One throw-away server: ``start()``, ``url``, ``stop_server()``/``start_server()``, ``stop()``."""

    bindir: str
    workdir: str = ""
    datadir: str = ""
    port: int = 0
    max_connections: int = 300

    @property
    def url(self) -> str:
        return f"postgres://{USER}@127.0.0.1:{self.port}/postgres"

    def start(self) -> "TemporaryPostgres":
        """initdb in a fresh temporary directory and start the server on a free port."""
        self.workdir = tempfile.mkdtemp(prefix="gsa-pg-")
        self.datadir = os.path.join(self.workdir, "data")
        self.port = free_port()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        initdb = [f"{self.bindir}/initdb", "-D", self.datadir, "-U", USER, "--auth=trust", "-E", "UTF8"]
        subprocess.run(as_server_user([*initdb, "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
        self.start_server()
        return self

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        command = [f"{self.bindir}/pg_ctl", "-D", self.datadir, *args]
        subprocess.run(
            as_server_user(command), check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def start_server(self) -> None:
        """Start (or restart after ``stop_server``) on the same port and data directory."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={self.max_connections}"
        )
        self._pg_ctl("-l", os.path.join(self.workdir, "log"), "-o", options, "-w", "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (``mode`` as pg_ctl's -m: smart, fast, immediate)."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once a connection succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.url, connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        if self.datadir:
            self.stop_server("immediate")
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.datadir = ""


def start_temporary_postgres() -> TemporaryPostgres | None:
    """A started temporary server, or None when the PostgreSQL binaries are not installed."""
    bindir = find_binaries()
    return TemporaryPostgres(bindir).start() if bindir else None
