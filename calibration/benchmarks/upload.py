"""Upload latency and throughput of the legacy endpoint on the production configuration.

    python -m calibration.benchmarks.upload [--repeat 40] [--workers 2] [--stars 1e6] [--seconds 15]

Starts a temporary PostgreSQL and gunicorn on 127.0.0.1 (gsafollowup.testing.production) with
SERVER_TIMING on, loads the real demo data (the 2,865 APASS stars of the GRB 210605A field)
and ``--stars`` synthetic Gaia-like stars written as calibration.benchmarks.refcat writes them
(50,000 stars/deg^2 in a disc around RA 270, Dec -30, away from the demo field, so that the
answer stays the demo's APASS g one while the table holds over a million rows of two surveys).
Then it sends to POST /cgi/upload, one request at a time: ``--repeat`` dry runs of the real
DECam catalog of demo/ (9,400 sources), ``--repeat`` dry runs of its 1,000 sources nearest the
demo target, and ``--repeat`` stored uploads (each a distinct catalog and MJD); then
``--seconds`` of dry runs from 4 concurrent clients. Latency is measured by the client, end to
end over HTTP; the server's Server-Timing header gives each stage. Nothing is asserted.
"""

import argparse
import os
import platform
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

from calibration.catalogs import read_catalog
from gsafollowup.testing.postgres import find_binaries
from gsafollowup.testing.production import DEMO_ALERT, DEMO_CATALOG, demo_stack

#: Goals of issue 21 (seconds, median) and of the concurrent run (uploads per second).
GOALS = {"dry run 9.4k": 0.040, "dry run 1k": 0.020, "stored 9.4k": 0.060}
THROUGHPUT_GOAL = 30.0
CLIENTS = 4
TARGET = (24.088671351, -48.679764368)
STAGES = ("parse", "hashtag", "database", "read", "cone", "calibrate", "plot", "kept file")
_TIMING = re.compile(r"([\w ]+);dur=([\d.]+)")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the sorted values."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def send(session, url: str, hashtag: str, content: bytes, mjd: float, dry_run: bool) -> tuple[float, dict]:
    """One legacy upload: its latency in seconds and the server's stage times (ms)."""
    data = {
        "EventID": DEMO_ALERT,
        "hashtag": hashtag,
        "MJD": repr(mjd),
        "matchDist": "2",
        "noPlot": "1",
        "outputFormat": "json",
        "dryRun": "1" if dry_run else "0",
    }
    start = time.perf_counter()
    response = session.post(
        url + "/cgi/upload", data=data, files={"sexCat": ("test.cat", content)}, timeout=120
    )
    elapsed = time.perf_counter() - start
    if response.status_code != (200 if dry_run else 201):
        raise SystemExit(f"upload answered {response.status_code}: {response.text[:200]}")
    stages = {
        name.strip(): float(ms) for name, ms in _TIMING.findall(response.headers.get("Server-Timing", ""))
    }
    return elapsed, stages


def small_catalog(content: bytes, size: int) -> bytes:
    """The header and the ``size`` rows nearest the demo target: a 1,000-source frame of the same sky."""
    catalog = read_catalog(content)
    distance = np.hypot((catalog.ra - TARGET[0]) * np.cos(np.radians(TARGET[1])), catalog.dec - TARGET[1])
    keep = set(np.argsort(distance)[:size].tolist())
    lines = content.decode().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    rows = [line for line in lines if not line.startswith("#") and line.strip()]
    return "".join(header + [row for i, row in enumerate(rows) if i in keep]).encode()


def load_gaia_like(stack, stars: int, workdir: Path) -> float:
    """Write ``stars`` Gaia-like stars and ingest them into the stack's database; seconds taken."""
    from calibration.benchmarks import refcat

    started = time.perf_counter()
    source = workdir / "gaia-like.csv"
    gaia_row = "%d,%.9f,%.9f" + ",%.6f,%.3f" * 3 + "\n"
    refcat.write_csv(
        source, refcat.GAIA_HEADER, gaia_row, refcat.gaia_blocks(stars, np.random.default_rng(2021)), ""
    )
    stack.server.manage("ingest_refcat", "GaiaDR3", str(source), "--format", "gaia-dr3")
    import psycopg2

    # Measured in the steady state, as the refcat benchmark does: not during autovacuum's first pass.
    connection = psycopg2.connect(stack.postgres.url)
    try:
        connection.autocommit = True  # VACUUM cannot run inside a transaction
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) calibration_referencestar")
            cursor.execute("CHECKPOINT")
    finally:
        connection.close()
    source.unlink()
    return time.perf_counter() - started


def concurrent(stack, content: bytes, seconds: float) -> tuple[int, int, float]:
    """Dry runs from CLIENTS threads for ``seconds``: (answered, errors, elapsed)."""
    done, errors = [0] * CLIENTS, [0] * CLIENTS
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        session = requests.Session()
        while time.perf_counter() < stop:
            try:
                send(session, stack.url, stack.hashtag, content, 59300.0, dry_run=True)
                done[index] += 1
            except (SystemExit, requests.RequestException):
                errors[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), sum(errors), time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40, help="uploads of each kind (default 40)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--stars", type=float, default=1e6, help="Gaia-like stars loaded (default 1e6)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the concurrent run")
    opts = parser.parse_args(argv)
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql.")
    catalog = DEMO_CATALOG.read_bytes()
    catalogs = {"9.4k": catalog, "1k": small_catalog(catalog, 1000)}
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory() as workdir,
        demo_stack(bindir, workers=opts.workers, env={"SERVER_TIMING": "1"}) as stack,
    ):
        load_seconds = load_gaia_like(stack, int(opts.stars), Path(workdir)) if opts.stars else 0.0
        stored_stars = stack.sql("SELECT count(*) FROM calibration_referencestar")[0][0]
        session = requests.Session()
        # Warm up every worker (imports, first database connection, caches) before measuring.
        for _ in range(opts.workers * 3):
            for content in catalogs.values():
                send(session, stack.url, stack.hashtag, content, 59300.0, dry_run=True)
        figures = {kind: [] for kind in GOALS}
        stages = {kind: [] for kind in GOALS}
        for i in range(opts.repeat):
            for size, content in catalogs.items():
                elapsed, timing = send(session, stack.url, stack.hashtag, content, 59300.0, dry_run=True)
                figures[f"dry run {size}"].append(elapsed)
                stages[f"dry run {size}"].append(timing)
            distinct = catalog + f"# benchmark upload {i}\n".encode()
            elapsed, timing = send(session, stack.url, stack.hashtag, distinct, 59000.0 + i, dry_run=False)
            figures["stored 9.4k"].append(elapsed)
            stages["stored 9.4k"].append(timing)
        throughput = {size: concurrent(stack, content, opts.seconds) for size, content in catalogs.items()}
    print(
        f"Upload latency, POST /cgi/upload, gunicorn {opts.workers} workers + PostgreSQL on 127.0.0.1;"
        f" {stored_stars:,} reference stars stored"
        f" (APASS demo field + Gaia-like, loaded in {load_seconds:.0f} s)"
    )
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
        f"Python {platform.python_version()}"
    )
    print(f"{'kind':<14}{'n':>4}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}   goal (p50)")
    for kind, values in figures.items():
        p50 = percentile(values, 50)
        verdict = "met" if p50 <= GOALS[kind] else "MISSED"
        print(
            f"{kind:<14}{len(values):>4}{1000 * p50:>8.1f}{1000 * percentile(values, 95):>8.1f}"
            f"{1000 * max(values):>8.1f}   <= {1000 * GOALS[kind]:.0f} ms: {verdict}"
        )
    print(
        "\nserver stages, p50 ms (Server-Timing; other = server total minus the stages,"
        " client = HTTP minus server)"
    )
    print(f"{'kind':<14}" + "".join(f"{name:>10}" for name in (*STAGES, "other", "server", "client")))
    for kind, timings in stages.items():
        cells = [percentile([t.get(name, 0.0) for t in timings], 50) for name in STAGES]
        others = [t.get("total", 0.0) - sum(t.get(name, 0.0) for name in STAGES) for t in timings]
        totals = [t.get("total", 0.0) for t in timings]
        clients = [1000 * e - t.get("total", 0.0) for e, t in zip(figures[kind], timings, strict=True)]
        cells += [percentile(others, 50), percentile(totals, 50), percentile(clients, 50)]
        print(f"{kind:<14}" + "".join(f"{value:>10.1f}" for value in cells))
    print(f"\n{CLIENTS} concurrent clients, dry runs, {opts.seconds:g} s each")
    for size, (done, errors, elapsed) in throughput.items():
        rate = done / elapsed
        verdict = "met" if rate >= THROUGHPUT_GOAL and not errors else "MISSED"
        print(
            f"  {size:<5} catalog: {rate:6.1f} uploads/s, {errors} errors   goal >= {THROUGHPUT_GOAL:.0f}/s,"
            f" no error: {verdict}"
        )


if __name__ == "__main__":
    main()
