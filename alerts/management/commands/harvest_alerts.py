"""manage.py harvest_alerts SOURCE FILE...: load files from TNS, Gaia or GCN, or --download them.

Periodic harvesting (TNS deltas hourly, the Gaia index daily, GCN by listen_gcn) hooks in here:
the task engine's periodic task calls the same alerts.harvesting function with the downloaded
file, so a task and this command give the same result and the same per-row report.
"""

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from alerts import harvesting
from alerts.selectors import gaia_names_followed
from alerts.sources import download


def names_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Harvest alert sources from files: tns (tns_public_objects.csv, dump or delta), gaia (alerts.csv "
        "and lightcurve.csv files) or gcn (VOEvent XML packets). Re-harvesting a file changes nothing; "
        "refused rows are listed with their line numbers and the others are loaded."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", choices=["tns", "gaia", "gcn"])
        parser.add_argument("files", nargs="*")
        fetch = parser.add_argument_group("downloads (tns, gaia)")
        fetch.add_argument(
            "--download",
            action="store_true",
            help="tns: the public-objects dump (TNS_API_KEY, TNS_BOT_ID, TNS_BOT_NAME); gaia: alerts.csv "
            "and light curves from GAIA_ALERTS_URL",
        )
        fetch.add_argument(
            "--since",
            type=date.fromisoformat,
            help="tns --download: the daily deltas from this day (YYYY-MM-DD)",
        )
        fetch.add_argument(
            "--lightcurves",
            default="observed",
            help="gaia --download: 'observed' (Gaia alerts with follow-up points), 'none', or names a,b",
        )
        selection = parser.add_argument_group("TNS selection (default: settings TNS_SELECT_*)")
        selection.add_argument(
            "--type", type=names_list, dest="types", help="comma-separated TNS types, e.g. 'SN Ia,TDE'"
        )
        selection.add_argument("--max-mag", type=float, help="discovery magnitude at most")
        selection.add_argument("--dec-min", type=float)
        selection.add_argument("--dec-max", type=float)
        selection.add_argument("--max-age-days", type=float, help="discovered at most this many days ago")
        selection.add_argument("--names", type=names_list, help="comma-separated TNS names, always selected")
        parser.add_argument(
            "--no-gaia-alerts", action="store_true", help="gaia: keep the records, create no new alerts"
        )

    def handle(self, *args, **opts):
        source, files = opts["source"], opts["files"]
        if opts["download"]:
            if files:
                raise CommandError("Give files or --download, not both.")
            if source == "gcn":
                raise CommandError("GCN notices arrive by listen_gcn; --download is for tns and gaia.")
            with tempfile.TemporaryDirectory(prefix="gsa-harvest-") as scratch:
                try:
                    reports = self.download(source, Path(scratch), opts)
                except download.DownloadError as error:
                    raise CommandError(f"Download failed, nothing harvested from it: {error}") from None
                self.show(reports)
            return
        if not files:
            raise CommandError("Give the files to harvest, or --download.")
        if opts["since"]:
            raise CommandError("--since is for tns --download.")
        if source == "tns":
            reports = [harvesting.harvest_tns(files, self.selection(opts))]
        elif source == "gaia":
            # The index and light curves may come together: alerts.csv first, so curves find their alert.
            curves = [f for f in files if "lightcurve" in f.rsplit("/", 1)[-1].lower()]
            index = [f for f in files if f not in curves]
            reports = []
            if index:
                reports.append(
                    harvesting.harvest_gaia_index(index, False if opts["no_gaia_alerts"] else None)
                )
            if curves:
                reports.append(harvesting.harvest_gaia_lightcurve(curves))
        else:
            reports = [harvesting.harvest_gcn(files)]
        self.show(reports)

    def selection(self, opts):
        return harvesting.tns_selection_from_settings(
            types=opts["types"],
            max_mag=opts["max_mag"],
            dec_min=opts["dec_min"],
            dec_max=opts["dec_max"],
            max_age_days=opts["max_age_days"],
            names=opts["names"],
        )

    def download(self, source: str, scratch: Path, opts) -> list:
        """Fetch the source's files into ``scratch`` and harvest them as files given would be."""
        fetcher_options = dict(settings.HARVEST_DOWNLOAD)
        if source == "tns":
            paths = download.download_tns(
                settings.TNS_BASE_URL,
                settings.TNS_API_KEY,
                settings.TNS_BOT_ID,
                settings.TNS_BOT_NAME,
                scratch,
                since=opts["since"],
                today=datetime.now(UTC).date(),
                fetcher_options=fetcher_options,
            )
            self.stdout.write(f"downloaded {', '.join(p.name for p in paths)}")
            return [harvesting.harvest_tns(paths, self.selection(opts))]
        if opts["since"]:
            raise CommandError("--since is for tns --download (the Gaia index is always whole).")
        fetcher = download.Fetcher(
            user_agent=f"gsafollowup harvester (+{settings.GAIA_ALERTS_URL})", **fetcher_options
        )
        index = download.download_gaia_index(settings.GAIA_ALERTS_URL, scratch, fetcher)
        reports = [harvesting.harvest_gaia_index([index], False if opts["no_gaia_alerts"] else None)]
        wanted = opts["lightcurves"].strip()
        if wanted == "none":
            return reports
        names = gaia_names_followed() if wanted == "observed" else names_list(wanted)
        curves, errors = download.download_gaia_lightcurves(settings.GAIA_ALERTS_URL, scratch, names, fetcher)
        report = harvesting.harvest_gaia_lightcurve(curves)
        report.errors.extend(f"download: {error}" for error in errors)
        return [*reports, report]

    def show(self, reports) -> None:
        for report in reports:
            for note in report.notes:
                self.stdout.write(note)
            for error in report.errors:
                self.stderr.write(f"refused {error}")
            self.stdout.write(report.summary())
        if any(not r.read and r.errors for r in reports):
            raise CommandError("Nothing could be read; see the refused rows above.")
