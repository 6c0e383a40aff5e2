"""Fill the development database with real demo data and print a demo hashtag."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from alerts.services import import_legacy_alerts, load_legacy_alert_file
from calibration.ingest import ingest_refcat
from calibration.legacy_points import ImportCounts, import_legacy_file, legacy_files
from calibration.models import ReferenceCatalog
from observers.models import Hashtag, Observatory
from observers.services import create_observatory

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
DEMO_PREFIX = "DEMO"
DEMO_REFERENCES = DEMO_DIR / "apass-dr10-grb210605a-field.csv"


class Command(BaseCommand):
    help = "Load the real demo data (idempotent) and print a fresh demo hashtag and the URL."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the server will listen")

    def handle(self, *args, **opts):
        counts = import_legacy_alerts(load_legacy_alert_file(DEMO_DIR / "list_of_alerts.json"))
        self.stdout.write(f"Legacy alerts: {counts['created']} new, {counts['unchanged']} already loaded.")
        apass = ReferenceCatalog.objects.filter(survey="APASS").first()
        if apass is None:
            loaded = ingest_refcat("APASS", DEMO_REFERENCES, format_name="apass-dr10")
            self.stdout.write(
                f"Reference stars: APASS {loaded.version}, {loaded.stars} stars (GRB 210605A field)."
            )
        else:
            self.stdout.write(f"Reference stars: APASS {apass.version}, {apass.stars} stars already loaded.")
        # Real light curves of the old server, so that a newcomer sees data at once.
        points = ImportCounts()
        for path in legacy_files(DEMO_DIR / "lightcurves"):
            points.add(import_legacy_file(path)[1])
        self.stdout.write(f"Light curves: {points.created} points new, {points.unchanged} already loaded.")
        observatory = Observatory.objects.filter(prefix=DEMO_PREFIX).first()
        if observatory is None:
            observatory, _ = create_observatory(
                name="Demo Observatory",
                prefix=DEMO_PREFIX,
                longitude=-70.81,
                latitude=-30.17,
                altitude=2207.0,
                filters=["g", "r", "i"],
                contact="demo@localhost",
                issue=False,
            )
        # Only the newest demo hashtag works, so an old printed one cannot linger.
        for old in Hashtag.objects.filter(observatory=observatory, revoked_at__isnull=True):
            old.revoke()
        hashtag = observatory.issue_hashtag(label="demo")
        url = opts["url"]
        self.stdout.write(f"Open {url} and log in with the demo hashtag, or use it in scripts.")
        self.stdout.write(f"Demo hashtag: {hashtag}")
