from django.core.management.base import BaseCommand, CommandError

from alerts.services import import_legacy_alerts, load_legacy_alert_file
from calibration.legacy_points import ImportCounts, import_legacy_file, legacy_files
from gsafollowup.errors import BadInput, NotFound


class Command(BaseCommand):
    help = (
        "Import legacy get_alert_lc_data files (alert-N.json, N = alert id) as stored points, keeping "
        "the old follow-up ids; running it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="FILE_OR_DIR", help="an alert-N.json file or a folder of them")
        parser.add_argument(
            "--alert-id-map",
            metavar="list_of_alerts.json",
            help="the legacy alert list, imported first so that the alert ids resolve",
        )

    def handle(self, *args, **opts):
        try:
            if opts["alert_id_map"]:
                counts = import_legacy_alerts(load_legacy_alert_file(opts["alert_id_map"]))
                self.stdout.write(f"Alerts: {counts['created']} new, {counts['unchanged']} already present.")
            files = legacy_files(opts["path"])
        except BadInput as error:
            raise CommandError(error.message) from error
        total, failed = ImportCounts(), []
        for path in files:
            try:
                alert_id, counts = import_legacy_file(path)
            except (BadInput, NotFound) as error:
                failed.append(path.name)
                self.stderr.write(f"{path.name}: {error.message}")
                continue
            total.add(counts)
            self.stdout.write(
                f"{path.name} (alert {alert_id}): {counts.created} new, {counts.unchanged} already present"
                + (f", {counts.conflicts} id conflicts skipped" if counts.conflicts else "")
            )
        self.stdout.write(
            f"{total.created} points imported, {total.unchanged} already present, {total.conflicts} "
            f"conflicts, {total.observatories} placeholder observatories created."
        )
        if failed:
            raise CommandError(f"{len(failed)} of {len(files)} files not imported: {', '.join(failed)}")
