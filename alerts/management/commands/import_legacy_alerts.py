from django.core.management.base import BaseCommand, CommandError

from alerts.services import import_legacy_alerts, load_legacy_alert_file
from gsafollowup.errors import BadInput


class Command(BaseCommand):
    help = (
        "Load a legacy list_of_alerts?format=json file, keeping alert ids; running it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, **opts):
        try:
            counts = import_legacy_alerts(load_legacy_alert_file(opts["file"]))
        except BadInput as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"{counts['created']} alerts created, {counts['unchanged']} already present, "
            f"{counts['conflicts']} skipped (id or IVORN taken by a different alert)."
        )
