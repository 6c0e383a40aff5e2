"""Shared fixtures: observatories with hashtags, curators, and the real data files."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

DATA = Path(__file__).parent / "data"
# The cache (wrong-hashtag counters) is a database table, so each test's rollback empties it.


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

