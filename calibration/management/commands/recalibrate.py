from itertools import groupby

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from calibration.models import FollowupPoint
from calibration.services import recalibrate_point
from gsafollowup.errors import DomainError
from jobs.services import NewJob, create_jobs


class Command(BaseCommand):
    help = (
        "Recompute stored points from their kept catalogs with the current algorithm (old values are kept)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--alert", help="IVORN of one alert")
        parser.add_argument("--all", action="store_true", help="every point with a kept catalog")
        parser.add_argument("--include-hidden", action="store_true")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="one background job per point, run by the workers (the default with --all)",
        )
        parser.add_argument("--sync", action="store_true", help="recompute here, one point after another")

    def handle(self, *args, **opts):
        if not opts["alert"] and not opts["all"]:
            raise CommandError("Give --alert IVORN or --all.")
        points = FollowupPoint.objects.filter(imported=False).exclude(catalog_sha256="")
        if not opts["include_hidden"]:
            points = points.visible()
        if opts["alert"]:
            points = points.filter(alert__ivorn=opts["alert"].strip())
        if opts["enqueue"] or (opts["all"] and not opts["sync"]):
            return self.fan_out(points)
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

    def fan_out(self, points) -> None:
        """One job per point in the bulk queue (after uploads), under each point's observatory."""
        rows = points.order_by("observatory_id", "pk").values_list("observatory_id", "pk")
        count = 0
        with transaction.atomic():
            for observatory_id, group in groupby(rows, key=lambda row: row[0]):
                new = [NewJob("recalibrate", f"follow-up {pk}", {"point": pk}) for _, pk in group]
                observatory = FollowupPoint.objects.filter(observatory_id=observatory_id).first().observatory
                create_jobs(new, observatory=observatory, queue="bulk")
                count += len(new)
        self.stdout.write(f"{count} recalibration jobs queued; the workers run them (manage.py run_worker).")
