"""The production stack of the end-to-end tests: a temporary PostgreSQL and gunicorn on 127.0.0.1.

The stack is skipped only where the PostgreSQL binaries are missing, and then fails instead
when GSA_REQUIRE_POSTGRES=1 (CI). The database is loaded with the real demo data (APASS DR10
stars of the GRB 210605A field, the demo alert on a DECam star, the demo observatory).
"""

import json
import os
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from gsafollowup.testing.postgres import find_binaries
from gsafollowup.testing.production import DEMO_ALERT, demo_stack

ROOT = Path(__file__).resolve().parent.parent
DECAM = ROOT / "tests" / "data" / "decam-grb210605a-g-night1.cat"


def missing_tool(reason: str):
    """A system tool the tests need is absent: skip here, fail in CI (GSA_REQUIRE_POSTGRES=1)."""
    if os.environ.get("GSA_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason + " (required in CI: GSA_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def postgres_bindir() -> str:
    """The PostgreSQL binaries, or skip (fail under GSA_REQUIRE_POSTGRES=1)."""
    bindir = find_binaries()
    if bindir is None:
        missing_tool("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    return bindir


def http_get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """Status, headers and body of a GET, error statuses included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@contextmanager
def production_stack(workers: int = 3, env: dict | None = None):
    """The demo stack (gsafollowup.testing.production.DemoStack), or skip without PostgreSQL."""
    with demo_stack(postgres_bindir(), workers=workers, env=env) as stack:
        yield stack


def curl_upload(url: str, hashtag: str, catalog: Path, mjd: float, *, dry_run=False, ivorn=DEMO_ALERT):
    """The legacy curl line of LEGACY_API.md, run with the real curl; returns (status, body)."""
    command = [
        "curl", "-sS", "--max-time", "120", "-w", "\n%{http_code}",
        "-F", "matchDist=2",
        "-F", f"EventID={ivorn}",
        "-F", f"sexCat=@{catalog};filename=test.cat",
        "-F", f"hashtag={hashtag}",
        "-F", f"MJD={mjd}",
        "-F", "expTime=60",
        "-F", "noPlot=1",
        "-F", "forceFilter=no",
        "-F", f"dryRun={1 if dry_run else 0}",
        "-F", "outputFormat=json",
        f"{url}/cgi/upload",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=180)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def json_or_text(body: str):
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return body
