"""The test run's environment (pytest plugin, loaded with ``-p tests.environment``).

Tests use the development settings (DEBUG=1 in the environment; Django still runs the tests
with DEBUG off) unless the caller set DEBUG. With ``GSA_TEST_DB=postgres`` it runs initdb in
a temporary directory, starts the server on 127.0.0.1 with a free port, points DATABASE_URL
at it before Django reads its settings, and stops it when the run ends. Without PostgreSQL
binaries the run is skipped with a message, unless ``GSA_REQUIRE_POSTGRES=1`` (CI), where
it fails.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

_server = {}


def find_binaries() -> str | None:
    """Directory holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if os.access(os.path.join(directory, "initdb"), os.X_OK):
            return directory
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run its programs as the 'postgres' account then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def start(bindir: str) -> dict:
    """initdb + pg_ctl start in a fresh temporary directory; returns the server's facts."""
    workdir = tempfile.mkdtemp(prefix="gsa-pg-")
    datadir = os.path.join(workdir, "data")
    port = free_port()
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        _as_user([f"{bindir}/initdb", "-D", datadir, "-U", "gsa", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={workdir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        _as_user(
            [
                f"{bindir}/pg_ctl",
                "-D",
                datadir,
                "-l",
                os.path.join(workdir, "log"),
                "-o",
                options,
                "-w",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    url = f"postgres://gsa@127.0.0.1:{port}/postgres"
    return {"bindir": bindir, "datadir": datadir, "workdir": workdir, "port": port, "url": url}


def stop(server: dict) -> None:
    subprocess.run(
        _as_user([f"{server['bindir']}/pg_ctl", "-D", server["datadir"], "-m", "immediate", "stop"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.2)
    shutil.rmtree(server["workdir"], ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if not os.environ.get("DEBUG"):
        os.environ["DEBUG"] = "1"
    if os.environ.get("GSA_TEST_DB") != "postgres":
        return
    bindir = find_binaries()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: the PostgreSQL test run is skipped."
        if os.environ.get("GSA_REQUIRE_POSTGRES") == "1":
            raise pytest.UsageError(
                message.replace("is skipped", "is required here (GSA_REQUIRE_POSTGRES=1)")
            )
        print(message + " Install PostgreSQL (apt-get install postgresql) to run it.")
        os.environ["GSA_POSTGRES_SKIPPED"] = "1"
        return
    server = start(bindir)
    _server.update(server)
    os.environ["DATABASE_URL"] = server["url"]
    os.environ["GSA_TEST_PG_BINDIR"] = bindir
    os.environ["GSA_TEST_PG_DATADIR"] = server["datadir"]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GSA_POSTGRES_SKIPPED") == "1":
        skip = pytest.mark.skip(reason="PostgreSQL binaries not found")
        for item in items:
            item.add_marker(skip)


def pytest_report_header(config):
    if _server:
        return f"database: PostgreSQL on 127.0.0.1:{_server['port']} (temporary, {_server['datadir']})"
    if os.environ.get("GSA_POSTGRES_SKIPPED") == "1":
        return "database: PostgreSQL run SKIPPED (binaries not found)"
    return "database: " + (os.environ.get("DATABASE_URL") or "SQLite (default)")


def pytest_unconfigure(config):
    if _server:
        stop(_server)
        _server.clear()
