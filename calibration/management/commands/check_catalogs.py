from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError

from calibration.models import FollowupPoint
from calibration.uploads import catalog_root, sweep_catalogs


class Command(BaseCommand):
    help = (
        "Check the kept catalogs under MEDIA_ROOT/catalogs against the follow-up points: report files "
        "no point names (orphans, e.g. after a worker was killed mid-upload), interrupted writes, "
        "points whose file is missing and, with --verify, files whose SHA-256 changed. "
        "--delete removes orphans and interrupted writes older than --min-age."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="remove orphans and interrupted writes")
        parser.add_argument(
            "--verify", action="store_true", help="read every kept file and check its SHA-256"
        )
        parser.add_argument(
            "--min-age",
            type=float,
            default=3600,
            help="seconds a file must be old to count as orphan (default 3600: uploads in progress are left)",
        )

    def handle(self, *args, **opts):
        if opts["min_age"] < 0:
            raise CommandError("--min-age must be 0 or more seconds.")
        referenced = defaultdict(list)
        # Hidden points count too: their catalog is kept for the curators.
        rows = FollowupPoint.objects.exclude(catalog_sha256="").values_list("catalog_sha256", "pk")
        for sha256, pk in rows.iterator():
            referenced[sha256].append(pk)
        found = sweep_catalogs(
            referenced, min_age=opts["min_age"], verify=opts["verify"], delete=opts["delete"]
        )

        self.stdout.write(f"{catalog_root()}: {found.kept} kept catalogs named by follow-up points.")
        for path in found.orphans:
            self.stdout.write(f"orphan (no follow-up point names it): {path}")
        for path in found.leftovers:
            self.stdout.write(f"interrupted write: {path}")
        if opts["delete"]:
            self.stdout.write(f"{found.removed} files removed.")
        elif found.orphans or found.leftovers:
            self.stdout.write(
                f"{len(found.orphans) + len(found.leftovers)} files to remove: run with --delete."
            )
        problems = []
        for sha256, ids in sorted(found.missing.items()):
            problems.append(f"missing file {sha256} of follow-up {', '.join(map(str, sorted(ids)))}")
        for sha256 in found.corrupt:
            problems.append(f"content changed: {sha256} no longer has that SHA-256")
        for line in problems:
            self.stderr.write(line)
        if problems:
            raise CommandError(
                f"{len(problems)} kept catalogs missing or damaged: restore them from the backup."
            )
        self.stdout.write(
            "No catalog is missing." + (" Every file matches its SHA-256." if opts["verify"] else "")
        )
