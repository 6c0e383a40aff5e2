"""A bounded load generator against the production configuration on 127.0.0.1.

    python -m calibration.benchmarks.load [--duration 120] [--rate 4] [--workers 5]
    python -m calibration.benchmarks.load --find-max [--step-duration 40] [--rate 2] [--step 1]

Starts a temporary PostgreSQL and gunicorn (gsafollowup.testing.production) with the real
demo data, then sends requests at a fixed rate (open loop: each request has a scheduled start,
and its latency counts from that moment, so a server that falls behind shows it) from a
bounded pool of client threads, for ``--duration`` seconds. The mix:

* upload: a stored legacy upload (the real DECam catalog of demo/, made distinct by a comment
  line, with a distinct MJD), expected 201;
* dry: the same as a dry run, expected 200;
* alerts: GET /list_of_alerts?format=json, expected 200;
* lightcurve: GET /get_alert_lc_data for the demo alert, expected 200.

It prints the throughput, p50/p95/p99 latency and error counts per kind, the 5xx count, and
the lost points: uploads answered 201 whose point is not in the database afterwards. A rate
is *sustained* when there is no 5xx, no connection error, no lost point, every request was
started on time (the client pool never ran dry) and the p95 latency stays under
``--max-p95``. ``--find-max`` raises the rate step by step and reports the highest sustained
one. Nothing is asserted; the exit status is 0.
"""

import argparse
import itertools
import os
import platform
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import requests

from calibration.benchmarks.upload import percentile
from gsafollowup.testing.postgres import find_binaries
from gsafollowup.testing.production import DEMO_ALERT, DEMO_CATALOG, demo_stack

MIX = {"upload": 0.2, "dry": 0.2, "alerts": 0.3, "lightcurve": 0.3}
EXPECTED = {"upload": 201, "dry": 200, "alerts": 200, "lightcurve": 200}


class Load:
    """One run at one rate: the requests, their outcomes, and the report."""

    def __init__(self, stack, rate: float, duration: float, clients: int, seed: int = 1):
        self.stack = stack
        self.rate = rate
        self.duration = duration
        self.clients = clients
        self.random = random.Random(seed)
        self.catalog = DEMO_CATALOG.read_bytes()
        self.alert_id = stack.alert_id()
        self.outcomes: list[tuple[str, float, int | None, float]] = []  # kind, mjd, status, latency
        self.late = 0
        self.lock = threading.Lock()

    def upload(self, mjd: float, dry_run: bool) -> int:
        data = {
            "EventID": DEMO_ALERT,
            "hashtag": self.stack.hashtag,
            "MJD": repr(mjd),
            "matchDist": "2",
            "noPlot": "1",
            "outputFormat": "json",
            "dryRun": "1" if dry_run else "0",
        }
        content = self.catalog + f"# load upload {mjd!r}\n".encode()
        files = {"sexCat": ("load.cat", content)}
        return requests.post(self.stack.url + "/cgi/upload", data=data, files=files, timeout=120).status_code

    def request(self, kind: str, mjd: float, scheduled: float) -> None:
        try:
            if kind in ("upload", "dry"):
                status = self.upload(mjd, dry_run=kind == "dry")
            elif kind == "alerts":
                status = requests.get(self.stack.url + "/list_of_alerts?format=json", timeout=120).status_code
            else:
                url = f"{self.stack.url}/get_alert_lc_data?alert_id={self.alert_id}"
                status = requests.get(url, timeout=120).status_code
        except requests.RequestException:
            status = None
        latency = time.perf_counter() - scheduled
        with self.lock:
            self.outcomes.append((kind, mjd, status, latency))

    def run(self, mjd_counter) -> dict:
        """Send requests at the rate for the duration; wait for the last answers; report."""
        kinds, weights = zip(*MIX.items(), strict=True)
        in_flight = threading.BoundedSemaphore(self.clients)

        def task(kind, mjd, scheduled):
            try:
                self.request(kind, mjd, scheduled)
            finally:
                in_flight.release()

        start = time.perf_counter()
        with ThreadPoolExecutor(self.clients) as pool:
            for n in itertools.count():
                scheduled = start + n / self.rate
                if scheduled - start >= self.duration:
                    break
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if not in_flight.acquire(blocking=False):
                    # Every client thread is waiting for the server: the request starts late.
                    self.late += 1
                    in_flight.acquire()
                kind = self.random.choices(kinds, weights)[0]
                pool.submit(task, kind, next(mjd_counter), scheduled)
        elapsed = time.perf_counter() - start
        return self.report(elapsed)

    def report(self, elapsed: float) -> dict:
        by_kind = defaultdict(list)
        for outcome in self.outcomes:
            by_kind[outcome[0]].append(outcome)
        acknowledged = [mjd for kind, mjd, status, _ in self.outcomes if kind == "upload" and status == 201]
        stored = set()
        if acknowledged:
            rows = self.stack.sql(
                "SELECT mjd FROM calibration_followuppoint WHERE mjd = ANY(%s) AND NOT hidden",
                (acknowledged,),
            )
            stored = {row[0] for row in rows}
        lost = [mjd for mjd in acknowledged if mjd not in stored]
        kinds = {}
        for kind, outcomes in sorted(by_kind.items()):
            latencies = [o[3] for o in outcomes]
            statuses = Counter(o[2] for o in outcomes)
            kinds[kind] = {
                "n": len(outcomes),
                "per_s": len(outcomes) / elapsed,
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "p99": percentile(latencies, 99),
                "errors": {s: c for s, c in statuses.items() if s != EXPECTED[kind]},
            }
        latencies = [o[3] for o in self.outcomes]
        statuses = Counter(o[2] for o in self.outcomes)
        return {
            "rate": self.rate,
            "elapsed": elapsed,
            "n": len(self.outcomes),
            "per_s": len(self.outcomes) / elapsed,
            "p95": percentile(latencies, 95) if latencies else 0.0,
            "kinds": kinds,
            "5xx": sum(c for s, c in statuses.items() if s is not None and s >= 500),
            "connection_errors": statuses.get(None, 0),
            "lost": len(lost),
            "late": self.late,
        }


def sustained(report: dict, max_p95: float) -> bool:
    return (
        report["5xx"] == 0
        and report["connection_errors"] == 0
        and report["lost"] == 0
        and report["late"] == 0
        and all(not k["errors"] for k in report["kinds"].values())
        and report["p95"] <= max_p95
    )


def print_report(report: dict, max_p95: float) -> None:
    verdict = "sustained" if sustained(report, max_p95) else "NOT sustained"
    print(
        f"\nrate {report['rate']:g}/s for {report['elapsed']:.0f} s: {report['n']} requests, "
        f"{report['per_s']:.2f}/s answered; 5xx {report['5xx']}, connection errors "
        f"{report['connection_errors']}, lost points {report['lost']}, "
        f"started late {report['late']}: {verdict}"
    )
    print(f"  {'kind':<11}{'n':>6}{'per s':>8}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}  errors")
    for kind, k in report["kinds"].items():
        errors = ", ".join(f"{s}: {c}" for s, c in k["errors"].items()) or "none"
        figures = f"{k['n']:>6}{k['per_s']:>8.2f}{k['p50']:>8.3f}{k['p95']:>8.3f}{k['p99']:>8.3f}"
        print(f"  {kind:<11}{figures}  {errors}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds per rate (default 120)")
    parser.add_argument(
        "--rate", type=float, default=4, help="requests per second (start rate with --find-max)"
    )
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default 2 x cores + 1)")
    parser.add_argument("--clients", type=int, default=32, help="client threads at most (default 32)")
    parser.add_argument("--max-p95", type=float, default=5.0, help="p95 latency (s) still sustained")
    parser.add_argument("--find-max", action="store_true", help="raise the rate until it is not sustained")
    parser.add_argument("--step", type=float, default=1.0, help="rate increment for --find-max")
    parser.add_argument("--step-duration", type=float, default=40, help="seconds per step for --find-max")
    opts = parser.parse_args(argv)
    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql.")
    workers = opts.workers or (os.cpu_count() or 1) * 2 + 1
    load = os.getloadavg()[0]
    print(
        f"Load: gunicorn {workers} workers + PostgreSQL on 127.0.0.1, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at start, Python {platform.python_version()}; "
        f"mix {', '.join(f'{k} {v:.0%}' for k, v in MIX.items())}",
        flush=True,
    )
    mjds = (50000.0 + n for n in itertools.count())
    best = None
    with demo_stack(bindir, workers=workers) as stack:
        rate = opts.rate
        while True:
            duration = opts.step_duration if opts.find_max else opts.duration
            report = Load(stack, rate, duration, opts.clients).run(mjds)
            print_report(report, opts.max_p95)
            if not opts.find_max:
                break
            if not sustained(report, opts.max_p95):
                break
            best = rate
            rate += opts.step
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")
    if opts.find_max:
        print(f"highest sustained rate: {best if best is not None else 'none'} requests/s")


if __name__ == "__main__":
    main()
