"""Time harvesting and the alert list in a scratch database (never the real one).

Generates a TNS public-objects dump (150,000 rows by default) and a Gaia index (26,000 alerts) in
their real layouts, harvests them, harvests them again (nothing may change), then times the alert
list page and its search with --alerts alerts in the database. Figures print beside their goals.
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings

from alerts.harvesting import harvest_gaia_index, harvest_tns
from alerts.management.commands.bench_lightcurve import PLAIN_STATIC, measure
from alerts.models import Alert
from alerts.sources.tns import TnsSelection

TNS_HEADER = (
    '"objid","name_prefix","name","ra","declination","redshift","typeid","type","reporting_groupid",'
    '"reporting_group","source_groupid","source_group","discoverydate","discoverymag","discmagfilter",'
    '"filter","reporters","time_received","internal_names","creationdate","lastmodified"'
)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def suffix(k: int, width: int = 4) -> str:
    return "".join(LETTERS[(k // 26**i) % 26] for i in reversed(range(width)))


def write_tns(path: Path, rows: int, rng) -> None:
    ra, dec, mag = (
        rng.uniform(0, 360, rows),
        np.degrees(np.arcsin(rng.uniform(-1, 1, rows))),
        rng.uniform(14, 22, rows),
    )
    kinds = ("SN Ia", "SN II", "", "", "TDE", "CV")
    with open(path, "w", encoding="utf-8") as out:
        out.write('"2026-01-01 00:00:00"\n' + TNS_HEADER + "\n")
        for k in range(rows):
            name = f"{2016 + k % 10}{suffix(k)}"
            out.write(
                f'"{k}","AT","{name}","{ra[k]:.6f}","{dec[k]:.6f}","","","{kinds[k % 6]}",'
                '"1","ZTF","1","ZTF",'
                f'"2025-{1 + k % 12:02d}-01 00:00:00","{mag[k]:.2f}","110","r","X","2025-01-01","ZTF{k:09d}",'
                '"2025-01-01","2025-01-01"\n'
            )


def write_gaia(path: Path, rows: int, rng) -> None:
    ra, dec = rng.uniform(0, 360, rows), np.degrees(np.arcsin(rng.uniform(-1, 1, rows)))
    with open(path, "w", encoding="utf-8") as out:
        out.write("#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,Published,Comment\n")
        for k in range(rows):
            name = f"Gaia{14 + k % 12}{suffix(k, 3)}"
            out.write(
                f"{name},2020-01-01 00:00:00,{ra[k]:.5f},{dec[k]:.5f},18.5,,,unknown,"
                "2020-01-02 00:00:00,bench\n"
            )


class Command(BaseCommand):
    help = "Benchmark harvesting (TNS dump, Gaia index) and the alert list page in a scratch database."

    def add_arguments(self, parser):
        parser.add_argument("--tns-rows", type=int, default=150_000)
        parser.add_argument("--gaia-rows", type=int, default=26_000)
        parser.add_argument("--alerts", type=int, default=50_000, help="alerts in the database for the list")
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--postgres", action="store_true", help="a temporary PostgreSQL server")

    def handle(self, *args, **opts):
        if opts["postgres"]:
            return self.run_on_postgres(opts)
        production = override_settings(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC}},
        )
        with tempfile.TemporaryDirectory(prefix="gsa-bench-") as scratch, production:
            if connection.vendor == "sqlite":
                connection.settings_dict.setdefault("TEST", {})["NAME"] = str(Path(scratch) / "bench.sqlite3")
            old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
            try:
                self.run(Path(scratch), opts)
            finally:
                connection.creation.destroy_test_db(old_name, verbosity=0)

    def line(self, label: str, value: str, goal: str = "") -> None:
        self.stdout.write(f"{label:<44}{value:>16}   {goal}")

    def run(self, scratch: Path, opts: dict) -> None:
        rng = np.random.default_rng(18)
        tns_path, gaia_path = scratch / "tns_public_objects.csv", scratch / "alerts.csv"
        write_tns(tns_path, opts["tns_rows"], rng)
        write_gaia(gaia_path, opts["gaia_rows"], rng)
        self.stdout.write(
            f"{connection.vendor}: {opts['tns_rows']} TNS rows, {opts['gaia_rows']} Gaia alerts"
        )
        # The SNe Ia brighter than 14.1 are some 300 alerts: what a curator would select.
        selection = TnsSelection(types=frozenset({"SN Ia"}), max_mag=14.1)
        for label in ("TNS dump, first harvest", "TNS dump, same file again"):
            start = time.perf_counter()
            report = harvest_tns([tns_path], selection)
            seconds = time.perf_counter() - start
            self.line(label, f"{seconds:.1f} s", "goal: full refresh <= 60 s")
            self.line("  rows/s", f"{opts['tns_rows'] / seconds:,.0f}", f"changed {report.changed}")
        for label in ("Gaia index, first harvest", "Gaia index, same file again"):
            start = time.perf_counter()
            report = harvest_gaia_index([gaia_path])
            seconds = time.perf_counter() - start
            self.line(
                label, f"{seconds:.1f} s", f"{report.alerts_created} alerts created, changed {report.changed}"
            )
            self.line("  rows/s", f"{opts['gaia_rows'] / seconds:,.0f}", "")
        missing = opts["alerts"] - Alert.objects.count()
        if missing > 0:
            ra, dec = rng.uniform(0, 360, missing), np.degrees(np.arcsin(rng.uniform(-1, 1, missing)))
            Alert.objects.bulk_create(
                (
                    Alert(ivorn=f"ivo://bench/X{k}", ivorn_key=f"ivo://bench/x{k}", ra=ra[k], dec=dec[k])
                    for k in range(missing)
                ),
                batch_size=5000,
            )
        self.stdout.write(f"alert list with {Alert.objects.count()} alerts, {opts['repeat']} requests each:")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No directory at")
            handler = WSGIHandler()
        self.observe(rng)
        cases = [
            ("list page 1 (newest first)", "/list_of_alerts"),
            ("list sorted by name, page 100", "/list_of_alerts?sort=name&page=100"),
            ("list sorted by -name, page 100", "/list_of_alerts?sort=-name&page=100"),
            ("list sorted by ra, page 100", "/list_of_alerts?sort=ra&page=100"),
            ("list sorted by -dec, page 100", "/list_of_alerts?sort=-dec&page=100"),
            ("list sorted by -published, page 100", "/list_of_alerts?sort=-published&page=100"),
            ("list sorted by -points, page 1", "/list_of_alerts?sort=-points"),
            ("list sorted by points, page 100", "/list_of_alerts?sort=points&page=100"),
            ("list sorted by -latest, page 1", "/list_of_alerts?sort=-latest"),
            ("list sorted by latest, page 100", "/list_of_alerts?sort=latest&page=100"),
            ("list sorted by name, last page (1000)", "/list_of_alerts?sort=name&page=1000"),
            ("observed only, by -latest", "/list_of_alerts?observed_only=1&sort=-latest"),
            ("home page (recently observed)", "/"),
            ("search by alias (ZTF000001234)", "/list_of_alerts?q=ZTF000001234"),
            ("search by part of a name (Gaia16a)", "/list_of_alerts?q=Gaia16a"),
            ("cone 1 deg", "/list_of_alerts?cone=120,10,1"),
            ("API search", "/api/v1/alerts/?search=Gaia16ab"),
        ]
        for label, url in cases:
            row = measure(handler, url, opts["repeat"])
            self.line(label, f"p50 {row['median']:.0f} ms", f"p95 {row['p95']:.0f} ms; goal p50 <= 100 ms")

    def observe(self, rng) -> None:
        """Give 5% of the alerts follow-up points (1 to 20 each), as the list sorts by them.

        Stored in bulk and then refreshed by the service the write path calls, so the stored
        count and latest point are the ones an upload would leave.
        """
        from alerts.services import refresh_followup_stats
        from calibration.models import FollowupPoint
        from observers.models import Observatory

        user = get_user_model().objects.create(username="bench-observer")
        observatory = Observatory.objects.create(
            name="Bench", prefix="Bench", longitude=0, latitude=0, user=user
        )
        ids = list(Alert.objects.values_list("pk", flat=True))
        chosen = rng.choice(ids, size=len(ids) // 20, replace=False)
        points = []
        for pk in chosen:
            for k in range(int(rng.integers(1, 21))):
                mjd = float(60000 + rng.uniform(0, 700))
                points.append(
                    FollowupPoint(
                        alert_id=int(pk),
                        observatory=observatory,
                        mjd=mjd,
                        survey="APASS",
                        filter="V",
                        mag=float(rng.uniform(14, 19)),
                        mag_err=0.05,
                        catalog_sha256=f"{pk:032x}{k:032x}",
                    )
                )
        FollowupPoint.objects.bulk_create(points, batch_size=5000)
        start = time.perf_counter()
        for first in range(0, len(chosen), 500):
            refresh_followup_stats(*(int(pk) for pk in chosen[first : first + 500]))
        self.line(
            f"{len(points)} points on {len(chosen)} alerts",
            f"{(time.perf_counter() - start) / len(chosen) * 1000:.2f} ms",
            "refresh_followup_stats per alert",
        )

    def run_on_postgres(self, opts: dict) -> None:
        """Run this command again in a child process pointed at a temporary PostgreSQL server."""
        from gsafollowup.testing.postgres import start_temporary_postgres

        server = start_temporary_postgres()
        if server is None:
            raise CommandError("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
        try:
            command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench_alerts"]
            for key in ("tns_rows", "gaia_rows", "alerts", "repeat"):
                command += [f"--{key.replace('_', '-')}", str(opts[key])]
            subprocess.run(command, env={**os.environ, "DATABASE_URL": server.url}, check=True)
        finally:
            server.stop()
