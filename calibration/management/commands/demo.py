"""Fill the development database with real demo data and print a demo hashtag."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from alerts.models import Alert
from alerts.services import create_alert, import_legacy_alerts, load_legacy_alert_file
from calibration.ingest import ingest_refcat
from calibration.legacy_points import ImportCounts, import_legacy_file, legacy_files
from calibration.models import ReferenceCatalog
from observers.models import Hashtag, Observatory
from observers.services import create_observatory

DEMO_DIR = Path(settings.BASE_DIR) / "demo"
DEMO_PREFIX = "DEMO"
DEMO_REFERENCES = DEMO_DIR / "apass-dr10-grb210605a-field.csv"
DEMO_CATALOG = DEMO_DIR / "decam-grb210605a-g-night1.cat"
# A real star of the DECam catalog (APASS g = 15.291 +- 0.012), posing as an alert so that the
# printed curl line calibrates something real.
DEMO_ALERT = {
    "ivorn": "ivo://gsafollowup/demo/GRB210605A-field-star",
    "ra": 24.088671351,
    "dec": -48.679764368,
    "comment": "Demo: a real star of the DECam catalog in demo/ (APASS g = 15.291 +- 0.012)",
}


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
        if not Alert.objects.filter(ivorn=DEMO_ALERT["ivorn"]).exists():
            create_alert(**DEMO_ALERT)
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
        self.stdout.write("A real calibration (dry run, stores nothing) of the demo DECam catalog:")
        self.stdout.write(demo_curl(hashtag, url))
        self.stdout.write(f"Demo hashtag: {hashtag}")


def demo_curl(hashtag: str, url: str) -> str:
    """The legacy curl line of LEGACY_API.md, filled in for the demo alert and catalog."""
    return (
        f"curl -F matchDist=2 -F EventID='{DEMO_ALERT['ivorn']}'"
        f' -F sexCat="@{DEMO_CATALOG};filename=test.cat" -F "hashtag={hashtag}" -F "MJD=59373.1"'
        f" -F expTime=60 -F noPlot=1 -F forceFilter=no -F dryRun=1 -F outputFormat=json"
        f" {url.rstrip('/')}/cgi/upload"
    )
