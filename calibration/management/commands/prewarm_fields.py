from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alerts.models import Alert
from calibration.archives import ARCHIVES
from calibration.references import REMOTE, source_of
from calibration.remote import prewarm

#: Default cone radius (degrees): holds a 50' x 50' frame centred on the alert.
DEFAULT_RADIUS = 0.6


class Command(BaseCommand):
    help = (
        "Fetch from the public archives and keep in the database the reference stars around alerts, "
        "for the surveys whose source is 'remote' (or those named with --surveys)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--alerts", nargs="+", default=[], metavar="IVORN", help="IVORNs of alerts, or 'all'"
        )
        parser.add_argument("--file", help="A text file of IVORNs, one per line (# starts a comment)")
        parser.add_argument(
            "--radius",
            type=float,
            default=DEFAULT_RADIUS,
            help=f"Cone radius, degrees (default {DEFAULT_RADIUS})",
        )
        parser.add_argument(
            "--surveys",
            nargs="+",
            choices=sorted(ARCHIVES),
            help="Surveys to fetch (default: those whose REFERENCE_SOURCES entry is 'remote')",
        )

    def handle(self, *args, **opts):
        if not 0 < opts["radius"] <= 5:
            raise CommandError("--radius must be between 0 and 5 degrees.")
        surveys = opts["surveys"] or [s for s in sorted(ARCHIVES) if source_of(s) == REMOTE]
        if not surveys:
            raise CommandError(
                "No survey has the source 'remote' in REFERENCE_SOURCES; name some with --surveys."
            )
        alerts = self.alerts(opts["alerts"], opts["file"])
        if not alerts:
            raise CommandError("No alerts given: use --alerts IVORN ..., --alerts all, or --file.")
        fields = [(alert.ivorn, alert.ra, alert.dec) for alert in alerts]
        self.stdout.write(f"{len(fields)} fields, radius {opts['radius']} deg, surveys {', '.join(surveys)}")
        failures = 0
        for report in prewarm(fields, opts["radius"], surveys):
            self.stdout.write(
                f"{report.survey}: {report.stars} stars stored from {report.fetched} fields fetched, "
                f"{report.covered} fields already covered, {len(report.failed)} failed"
            )
            for ivorn, reason in report.failed:
                self.stderr.write(f"  {report.survey} {ivorn}: {reason}")
            failures += len(report.failed)
        if failures:
            raise CommandError(f"{failures} field fetches failed; run again later to fetch them.")

    def alerts(self, names: list[str], file: str | None) -> list[Alert]:
        if names == ["all"]:
            return list(Alert.objects.order_by("pk"))
        wanted = [name.strip() for name in names if name.strip()]
        if file:
            try:
                lines = Path(file).read_text().splitlines()
            except OSError as error:
                raise CommandError(f"Cannot read {file}: {error.strerror}") from None
            wanted += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        found = {alert.ivorn: alert for alert in Alert.objects.filter(ivorn__in=wanted)}
        unknown = [name for name in wanted if name not in found]
        if unknown:
            raise CommandError(f"Unknown alert(s): {', '.join(unknown[:5])}")
        return [found[name] for name in dict.fromkeys(wanted)]
