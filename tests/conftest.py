"""Shared fixtures: observatories with hashtags, curators, and the real data files."""

import json
import os
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

DATA = Path(__file__).parent / "data"
DECAM = DATA / "decam-grb210605a-g-night1.cat"
APASS = DATA / "apass-dr10-grb210605a-field.csv"
# A real, isolated, unsaturated star of the DECam frame; APASS DR10 gives g = 15.291 +- 0.012.
STAR_RA, STAR_DEC, STAR_G, STAR_G_ERR = 24.088671351, -48.679764368, 15.291, 0.012
# Wrong-hashtag counts and the cache (API throttles) are database tables, so each test's
# rollback empties them.


@pytest.fixture
def make_observatory(db):
    """Factory: an observatory and its clear hashtag."""
    from observers.services import create_observatory

    counter = {"n": 0}

    def make(prefix=None, **fields):
        counter["n"] += 1
        prefix = prefix or f"OBS{counter['n']}"
        fields.setdefault("name", f"Observatory {prefix}")
        fields.setdefault("longitude", 20.8)
        fields.setdefault("latitude", -32.4)
        return create_observatory(prefix=prefix, **fields)

    return make


@pytest.fixture
def observatory(make_observatory):
    """(observatory, hashtag) for a fresh active observatory."""
    return make_observatory("SAAO1m", name="SAAO 1m", filters=["V", "R"])


@pytest.fixture
def curator(db, django_user_model):
    return django_user_model.objects.create_user(
        "curator", password="a-long-curator-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def curator_hashtag(curator):
    """The clear hashtag of the curator account (scripts that act as a curator: /cgi/newuser)."""
    from observers.services import issue_curator_hashtag

    return issue_curator_hashtag(curator, "CUR")


@pytest.fixture
def alert(db):
    from alerts.models import Alert

    return Alert.objects.create(ivorn="ivo://Gaia16aye", ra=296.0, dec=30.0)


LEGACY = DATA / "cpcs-legacy"


def import_legacy_lightcurve(alert_id: int) -> str:
    """Import one real legacy light curve and just its alert (quicker than the whole list)."""
    from alerts.services import import_legacy_alerts

    entries = json.loads((LEGACY / "list_of_alerts.json").read_text())
    import_legacy_alerts([entry for entry in entries if entry["id"] == alert_id])
    out = StringIO()
    path = LEGACY / "lightcurves" / f"alert-{alert_id}.json"
    call_command("import_legacy_lightcurves", str(path), stdout=out)
    return out.getvalue()


@pytest.fixture
def asassn14gy(db):
    """Alert 25477 (ASASSN-14gy) with its three real points: two detections and a limit."""
    from alerts.models import Alert

    import_legacy_lightcurve(25477)
    return Alert.objects.get(pk=25477)


# Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOST = "127.0.0.1"
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "artifacts"
# The live server must listen where the browser may go: only 127.0.0.1.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", LOCAL_HOST)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's); skipped where it is missing, except in CI where it must be."""
    if not os.access(CHROMIUM, os.X_OK):
        from tests.stack import missing_tool

        missing_tool(f"{CHROMIUM} not found: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, so Django's async-safety check
    # would refuse the tests' own (synchronous) ORM calls. Browser tests run last (see
    # pytest_collection_modifyitems), so this setting never reaches the other tests.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary user-data directory of its own.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def pytest_collection_modifyitems(config, items):
    """Run the browser tests last, after every test that does not need Playwright's event loop."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture
def outside_requests():
    """URLs the browser tried to reach outside 127.0.0.1 (refused by the page fixture)."""
    return []


@pytest.fixture
def page(browser, live_server, outside_requests):
    """A fresh browser tab; every request is intercepted and any outside 127.0.0.1 is refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside = outside_requests

    def only_local(route):
        if urlsplit(route.request.url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
    assert outside == [], f"the page requested outside {LOCAL_HOST}: {outside}"


@pytest.fixture
def media(settings, tmp_path):
    """A temporary MEDIA_ROOT (kept catalogs) for one test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def apass(db):
    """The real APASS DR10 extract of the GRB 210605A field, loaded as reference stars."""
    call_command("ingest_refcat", "APASS", str(APASS), stdout=StringIO(), stderr=StringIO())


@pytest.fixture
def star_alert(apass):
    """An alert on a real star of the DECam catalog (see STAR_*)."""
    from alerts.models import Alert

    return Alert.objects.create(ivorn="ivo://demo/GRB210605A field star", ra=STAR_RA, dec=STAR_DEC)


def alerts_on_a_line(count: int = 120) -> list:
    """``count`` alerts on a line of RA (0.5 degree apart), every tenth with an alias."""
    from alerts.models import Alert
    from alerts.services import add_alias

    alerts = Alert.objects.bulk_create(
        Alert(ivorn=f"ivo://bench/A{k:03d}", ivorn_key=f"ivo://bench/a{k:03d}", ra=k * 0.5, dec=10.0)
        for k in range(count)
    )
    for alert in alerts[::10]:
        add_alias(alert, f"2024x{alert.ivorn[-3:]}")
    return alerts
