"""manage.py harvest_alerts SOURCE FILE...: load files already downloaded from TNS, Gaia or GCN.

Periodic harvesting (TNS deltas hourly, the Gaia index daily, GCN by listen_gcn) hooks in here:
the task engine's periodic task calls the same alerts.harvesting function with the downloaded
file, so a task and this command give the same result and the same per-row report.
"""

from django.core.management.base import BaseCommand, CommandError

from alerts import harvesting


def names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Harvest alert sources from files: tns (tns_public_objects.csv, dump or delta), gaia (alerts.csv "
        "and lightcurve.csv files) or gcn (VOEvent XML packets). Re-harvesting a file changes nothing; "
        "refused rows are listed with their line numbers and the others are loaded."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", choices=["tns", "gaia", "gcn"])
        parser.add_argument("files", nargs="+")
        selection = parser.add_argument_group("TNS selection (default: settings TNS_SELECT_*)")
        selection.add_argument(
            "--type", type=names, dest="types", help="comma-separated TNS types, e.g. 'SN Ia,TDE'"
        )
        selection.add_argument("--max-mag", type=float, help="discovery magnitude at most")
        selection.add_argument("--dec-min", type=float)
        selection.add_argument("--dec-max", type=float)
        selection.add_argument("--max-age-days", type=float, help="discovered at most this many days ago")
        selection.add_argument("--names", type=names, help="comma-separated TNS names, always selected")
        parser.add_argument(
            "--no-gaia-alerts", action="store_true", help="gaia: keep the records, create no new alerts"
        )

    def handle(self, *args, **opts):
        source, files = opts["source"], opts["files"]
        if source == "tns":
            selection = harvesting.tns_selection_from_settings(
                types=opts["types"],
                max_mag=opts["max_mag"],
                dec_min=opts["dec_min"],
                dec_max=opts["dec_max"],
                max_age_days=opts["max_age_days"],
                names=opts["names"],
            )
            reports = [harvesting.harvest_tns(files, selection)]
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
        for report in reports:
            for note in report.notes:
                self.stdout.write(note)
            for error in report.errors:
                self.stderr.write(f"refused {error}")
            self.stdout.write(report.summary())
        if any(not r.read and r.errors for r in reports):
            raise CommandError("Nothing could be read; see the refused rows above.")
