from django.core.management.base import BaseCommand, CommandError

from calibration.models import FollowupPoint
from calibration.services import recalibrate_point
from gsafollowup.errors import DomainError


class Command(BaseCommand):
    help = (
        "Recompute stored points from their kept catalogs with the current algorithm (old values are kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--alert", help="IVORN of one alert")
        parser.add_argument("--all", action="store_true", help="every point with a kept catalog")
        parser.add_argument("--include-hidden", action="store_true")

    def handle(self, *args, **opts):
        if not opts["alert"] and not opts["all"]:
            raise CommandError("Give --alert IVORN or --all.")
        points = FollowupPoint.objects.filter(imported=False).exclude(catalog_sha256="")
        if not opts["include_hidden"]:
            points = points.visible()
        if opts["alert"]:
            points = points.filter(alert__ivorn=opts["alert"].strip())
        done = failed = 0
        for point in points.select_related("alert", "observatory").order_by("pk"):
            try:
                change = recalibrate_point(point)
            except DomainError as error:
                failed += 1
                self.stderr.write(f"follow-up {point.pk}: {error.message}")
                continue
            done += 1
            old, new = change["old"], change["new"]
            self.stdout.write(
                f"follow-up {point.pk}: {old['survey']}/{old['filter']} {old['mag']:.3f}±{old['mag_err']:.3f}"
                f" -> {new['survey']}/{new['filter']} {new['mag']:.3f}±{new['mag_err']:.3f}"
            )
        self.stdout.write(f"{done} recalibrated, {failed} failed.")
