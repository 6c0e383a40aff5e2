"""Time the light-curve endpoints for a large alert in a scratch database (never the real one)."""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client, RequestFactory, override_settings

from alerts.models import Alert
from calibration.models import FollowupPoint
from observers.services import create_observatory

BANDS = ("B", "V", "g", "r", "i")
SURVEYS = ("APASS", "PS1")
PLAIN_STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"


def fill_alert(npoints: int, seed: int = 1) -> tuple[Alert, object]:
    """An alert with npoints visible points (10 % limits, 3 observers, 5 bands, 2 surveys) and 1 % hidden."""
    rng = np.random.default_rng(seed)
    alert = Alert.objects.create(ivorn="ivo://bench/Gaia99big", ra=280.5, dec=-30.25)
    observatories = [
        create_observatory(name=f"Bench {k}", prefix=f"BENCH{k}", issue=False)[0] for k in range(3)
    ]
    total = npoints + npoints // 100
    mjd = 57000.0 + np.sort(rng.uniform(0, 1500, total))
    limit = rng.random(total) < 0.1
    mag = 17 + 2 * np.sin(mjd / 90.0) + rng.normal(0, 0.05, total)
    FollowupPoint.objects.bulk_create(
        (
            FollowupPoint(
                alert=alert,
                observatory=observatories[k % 3],
                mjd=float(mjd[k]),
                survey=SURVEYS[k % 2],
                filter=BANDS[k % 5],
                mag=float(mag[k] + 3 * limit[k]),
                mag_err=-1.0 if limit[k] else float(rng.uniform(0.01, 0.2)),
                calib_err=float(rng.uniform(0.01, 0.05)),
                is_limit=bool(limit[k]),
                catalog_sha256=f"{k:064x}",
                hidden=k >= npoints,
            )
            for k in range(total)
        ),
        batch_size=2000,
    )
    return alert, observatories[0].user


def serve(handler: WSGIHandler, environ: dict) -> tuple[str, bytes]:
    """One request through Django's WSGI handler, as a server would make it; (status, body)."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = status

    body = b"".join(handler(environ, start_response))
    return answer["status"], body


def measure(handler: WSGIHandler, url: str, repeat: int, cookie: str = "") -> dict:
    """Server times of repeated GETs (after two warm-up requests), in milliseconds."""
    factory = RequestFactory()
    times, size = [], 0
    for k in range(repeat + 2):
        environ = factory.get(url, secure=True, HTTP_COOKIE=cookie).environ
        start = time.perf_counter()
        status, body = serve(handler, environ)
        elapsed = (time.perf_counter() - start) * 1000
        if not status.startswith("200"):
            raise CommandError(f"{url} answered {status}")
        if k >= 2:
            times.append(elapsed)
        size = len(body)
    times.sort()
    return {
        "median": statistics.median(times),
        "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        "max": times[-1],
        "size": size,
    }


class Command(BaseCommand):
    help = (
        "Build an alert with --points points in a scratch database (a temporary SQLite file, or with "
        "--postgres a throw-away PostgreSQL server) and print the median and p95 server time of "
        "get_alert_lc_data (JSON, CSV, ECSV, VOTable) and get_alert_lc."
    )

    def add_arguments(self, parser):
        parser.add_argument("--points", type=int, default=10_000)
        parser.add_argument("--repeat", type=int, default=30)
        parser.add_argument(
            "--postgres", action="store_true", help="use a temporary PostgreSQL server (Debian's binaries)"
        )

    def handle(self, *args, **opts):
        if opts["postgres"]:
            return self.run_on_postgres(opts)
        engine = connection.vendor
        # Production-like: no debug query log, plain static URLs (no collectstatic manifest needed).
        production = override_settings(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC}},
        )
        with tempfile.TemporaryDirectory(prefix="gsa-bench-") as scratch, production:
            if engine == "sqlite":
                # A file like the real default, not the in-memory database Django tests would use.
                connection.settings_dict.setdefault("TEST", {})["NAME"] = str(Path(scratch) / "bench.sqlite3")
            old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
            try:
                self.run(engine, opts)
            finally:
                connection.creation.destroy_test_db(old_name, verbosity=0)

    def run(self, engine: str, opts: dict) -> None:
        start = time.perf_counter()
        alert, owner = fill_alert(opts["points"])
        self.stdout.write(
            f"{engine}: alert {alert.pk} with {opts['points']} visible points built in "
            f"{time.perf_counter() - start:.1f} s; server time of {opts['repeat']} requests each "
            "through Django's WSGI handler (no network):"
        )
        browser = Client()
        browser.force_login(owner)
        owner_cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
        data, page = f"/get_alert_lc_data?alert_id={alert.pk}", f"/get_alert_lc?alert_id={alert.pk}"
        cases = [
            ("get_alert_lc_data JSON", data, ""),
            ("get_alert_lc_data CSV", f"{data}&format=csv", ""),
            ("get_alert_lc_data ECSV", f"{data}&format=ecsv", ""),
            ("get_alert_lc_data VOTable", f"{data}&format=votable", ""),
            ("get_alert_lc page", page, ""),
            ("get_alert_lc page (owner)", page, owner_cookie),
        ]
        with warnings.catch_warnings():
            # Whitenoise warns that STATIC_ROOT is missing; static files are not benchmarked.
            warnings.filterwarnings("ignore", message="No directory at")
            handler = WSGIHandler()
        self.stdout.write(f"{'request':<28}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'size':>11}")
        for label, url, cookie in cases:
            row = measure(handler, url, opts["repeat"], cookie)
            self.stdout.write(
                f"{label:<28}{row['median']:>10.1f}{row['p95']:>9.1f}{row['max']:>9.1f}"
                f"{row['size'] / 1e6:>8.2f} MB"
            )

    def run_on_postgres(self, opts: dict) -> None:
        """Run this command again in a child process pointed at a temporary PostgreSQL server."""
        from gsafollowup.testing.postgres import start_temporary_postgres

        server = start_temporary_postgres()
        if server is None:
            raise CommandError("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        try:
            command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench_lightcurve"]
            command += ["--points", str(opts["points"]), "--repeat", str(opts["repeat"])]
            subprocess.run(command, env={**os.environ, "DATABASE_URL": server.url}, check=True)
        finally:
            server.stop()
