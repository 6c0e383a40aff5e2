"""The test run's environment (pytest plugin, loaded with ``-p tests.environment``).

Tests use the development settings (DEBUG=1 in the environment; Django still runs the tests
with DEBUG off) unless the caller set DEBUG. With ``GSA_TEST_DB=postgres`` it runs initdb in
a temporary directory, starts the server on 127.0.0.1 with a free port
(``gsafollowup.testing.postgres``), points DATABASE_URL
at it before Django reads its settings, and stops it when the run ends. Without PostgreSQL
binaries the run is skipped with a message, unless ``GSA_REQUIRE_POSTGRES=1`` (CI), where
it fails.
"""

import os

import pytest

from gsafollowup.testing.postgres import TemporaryPostgres, find_binaries

_server: dict = {}


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
    server = TemporaryPostgres(bindir).start()
    _server["postgres"] = server
    os.environ["DATABASE_URL"] = server.url
    os.environ["GSA_TEST_PG_BINDIR"] = bindir
    os.environ["GSA_TEST_PG_DATADIR"] = server.datadir


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GSA_POSTGRES_SKIPPED") == "1":
        skip = pytest.mark.skip(reason="PostgreSQL binaries not found")
        for item in items:
            item.add_marker(skip)


def pytest_report_header(config):
    if _server:
        server = _server["postgres"]
        return f"database: PostgreSQL on 127.0.0.1:{server.port} (temporary, {server.datadir})"
    if os.environ.get("GSA_POSTGRES_SKIPPED") == "1":
        return "database: PostgreSQL run SKIPPED (binaries not found)"
    return "database: " + (os.environ.get("DATABASE_URL") or "SQLite (default)")


def pytest_unconfigure(config):
    if _server:
        _server.pop("postgres").stop()
