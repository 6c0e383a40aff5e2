"""Shared fixtures: observatories with hashtags, curators, and the real data files."""

from pathlib import Path

import pytest

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
