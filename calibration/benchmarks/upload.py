"""Upload latency of the legacy endpoint on the production configuration.

    python -m calibration.benchmarks.upload [--repeat 40] [--workers 2]

Starts a temporary PostgreSQL and gunicorn on 127.0.0.1 (gsafollowup.testing.production),
loads the real demo data, then sends the real DECam catalog of demo/ (9,400 sources, 295
APASS calibrators) to POST /cgi/upload one request at a time: ``--repeat`` dry runs and
``--repeat`` stored uploads (each a distinct catalog and MJD). The latency is measured by the
client, end to end over HTTP. Figures are printed with the goals; nothing is asserted.
"""

import argparse
import os
import platform
import statistics
import time

import requests

from gsafollowup.testing.postgres import find_binaries
from gsafollowup.testing.production import DEMO_ALERT, DEMO_CATALOG, demo_stack

#: Goals for a 9,400-source catalog on one idle core (seconds, 95th percentile).
GOALS = {"dry run": 1.0, "stored": 1.5}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the sorted values."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def send(url: str, hashtag: str, content: bytes, mjd: float, dry_run: bool) -> float:
    """One legacy upload; its latency in seconds (raises on any answer but 200/201)."""
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
    response = requests.post(
        url + "/cgi/upload", data=data, files={"sexCat": ("test.cat", content)}, timeout=120
    )
    elapsed = time.perf_counter() - start
    if response.status_code != (200 if dry_run else 201):
        raise SystemExit(f"upload answered {response.status_code}: {response.text[:200]}")
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40, help="uploads of each kind (default 40)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    opts = parser.parse_args(argv)
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql.")
    catalog = DEMO_CATALOG.read_bytes()
    load = os.getloadavg()[0]
    with demo_stack(bindir, workers=opts.workers) as stack:
        # Warm up every worker (imports, first database connection) before measuring.
        for _ in range(opts.workers * 2):
            send(stack.url, stack.hashtag, catalog, 59300.0, dry_run=True)
        figures = {"dry run": [], "stored": []}
        for i in range(opts.repeat):
            figures["dry run"].append(send(stack.url, stack.hashtag, catalog, 59300.0, dry_run=True))
            distinct = catalog + f"# benchmark upload {i}\n".encode()
            figures["stored"].append(send(stack.url, stack.hashtag, distinct, 59000.0 + i, dry_run=False))
    print(
        f"Upload latency, POST /cgi/upload, {DEMO_CATALOG.name} ({len(catalog) / 1e6:.1f} MB), "
        f"gunicorn {opts.workers} workers + PostgreSQL on 127.0.0.1, one request at a time"
    )
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, "
        f"Python {platform.python_version()}"
    )
    print(f"{'kind':<10}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'mean s':>9}   goal (p95)")
    for kind, values in figures.items():
        p95 = percentile(values, 95)
        verdict = "met" if p95 <= GOALS[kind] else "MISSED"
        print(
            f"{kind:<10}{len(values):>5}{percentile(values, 50):>9.3f}{p95:>9.3f}{max(values):>9.3f}"
            f"{statistics.fmean(values):>9.3f}   <= {GOALS[kind]:.1f} s: {verdict}"
        )


if __name__ == "__main__":
    main()
