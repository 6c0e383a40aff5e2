"""Observatories, hashtags (digest-only storage) and the four legacy authentication routes."""

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from observers.models import Hashtag, Observatory, normalise_longitude

NEW_EVENT = "/cgi/newevent"


def new_event_data(ivorn="ivo://Gaia24abc", **extra):
    return {"EventID": ivorn, "ra": "123.4", "dec": "-45.6", "outputFormat": "json", **extra}


@pytest.mark.parametrize(("given", "stored"), [(340.0, -20.0), (360.0, 0.0), (-180.0, -180.0), (20.8, 20.8)])
def test_longitude_is_normalised_east_positive(make_observatory, given, stored):
    observatory, _ = make_observatory(longitude=given)
    observatory.refresh_from_db()
    assert observatory.longitude == pytest.approx(stored)


def test_longitude_out_of_range_is_refused(make_observatory):
    with pytest.raises(Exception, match="outside -180..360"):
        make_observatory(longitude=400.0)
    assert normalise_longitude(-180) == -180


def test_create_observatory_prints_hashtag_alone_on_last_line(db):
    out = StringIO()
    call_command(
        "create_observatory",
        "--name",
        "LCO 1m",
        "--prefix",
        "LCO1m",
        "--lon",
        "-70.8",
        "--lat",
        "-30.2",
        "--altitude",
        "2198",
        "--filters",
        "V,R,I",
        stdout=out,
    )
    last = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"LCO1m_[0-9a-f]{32}", last)
    observatory = Observatory.objects.get(prefix="LCO1m")
    assert observatory.filters == ["V", "R", "I"]
    assert observatory.altitude == 2198
    assert Hashtag.objects.find(last).observatory == observatory


def test_create_observatory_refuses_duplicate_prefix(db):
    call_command(
        "create_observatory", "--name", "A", "--prefix", "AAA", "--lon", "1", "--lat", "2", stdout=StringIO()
    )
    with pytest.raises(CommandError):
        call_command(
            "create_observatory",
            "--name",
            "B",
            "--prefix",
            "AAA",
            "--lon",
            "1",
            "--lat",
            "2",
            stdout=StringIO(),
        )


def test_issue_hashtag_command(observatory):
    obs, first = observatory
    out = StringIO()
    call_command("issue_hashtag", "SAAO1m", stdout=out)
    second = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"SAAO1m_[0-9a-f]{32}", second) and second != first
    assert Hashtag.objects.find(first) and Hashtag.objects.find(second)
    with pytest.raises(CommandError):
        call_command("issue_hashtag", "NOPE", stdout=StringIO())


def test_only_the_digest_is_stored(observatory):
    obs, clear = observatory
    row = Hashtag.objects.get(observatory=obs)
    assert row.digest == hashlib.sha256(clear.encode()).hexdigest()
    secret = clear.split("_", 1)[1]
    for value in Hashtag.objects.values_list(flat=False):
        assert all(secret not in str(field) for field in value)


def test_legacy_hashtag_imported_unchanged(observatory, client):
    obs, _ = observatory
    call_command("import_hashtag", "SAAO1m", "old-style-Key.42", stdout=StringIO())
    response = client.post(NEW_EVENT, new_event_data(hashtag="old-style-Key.42"))
    assert response.status_code == 201


@pytest.mark.parametrize("route", ["form", "query", "cookie", "header"])
def test_each_hashtag_route_authenticates(observatory, client, route):
    _, hashtag = observatory
    data, path = new_event_data(), NEW_EVENT
    if route == "form":
        data["hashtag"] = hashtag
    elif route == "query":
        path += f"?hashtag={hashtag}"
    elif route == "cookie":
        client.cookies["hashtag"] = hashtag
    response = client.post(
        path, data, **({"HTTP_AUTHORIZATION": f"Hashtag {hashtag}"} if route == "header" else {})
    )
    assert response.status_code == 201, response.content
    assert response.json()["ivorn"] == "ivo://Gaia24abc"
    assert Hashtag.objects.get(observatory__prefix="SAAO1m").last_used_at is not None


def test_session_route_via_login_form(observatory):
    from django.test import Client

    _, hashtag = observatory
    browser = Client(enforce_csrf_checks=True)
    home = browser.get("/")
    token = home.cookies["csrftoken"].value
    response = browser.post("/login/", {"hashtag": hashtag, "csrfmiddlewaretoken": token, "next": "/"})
    assert response.status_code == 302
    page = browser.get("/newevent/")
    assert page.status_code == 200 and b"SAAO 1m" in page.content
    token = page.cookies.get("csrftoken", home.cookies["csrftoken"]).value
    created = browser.post(
        "/newevent/", {"EventID": "ivo://TT Tri", "ra": "23.0", "dec": "29.8", "csrfmiddlewaretoken": token}
    )
    assert created.status_code == 302
    from alerts.models import Alert

    assert Alert.objects.get(ivorn="ivo://TT Tri").created_by.observatory.prefix == "SAAO1m"


@pytest.mark.parametrize("prefix", ["/", "/followup/"])
def test_the_login_page_stays_under_its_prefix_and_never_sends_elsewhere(client, db, prefix):
    home = client.get(prefix).content.decode()
    assert f'<a href="{prefix}login/">Login</a>' in home
    page = client.get(f"{prefix}login/", {"next": "https://evil.example.org/"}).content.decode()
    assert f'<form method="post" action="{prefix}login/">' in page and 'name="hashtag"' in page
    assert f'name="next" value="{prefix}"' in page and "evil" not in page
    kept = client.get(f"{prefix}login/", {"next": f"{prefix}list_of_followups"}).content.decode()
    assert f'name="next" value="{prefix}list_of_followups"' in kept


def test_login_form_without_csrf_token_is_refused(observatory):
    from django.test import Client

    _, hashtag = observatory
    response = Client(enforce_csrf_checks=True).post("/login/", {"hashtag": hashtag})
    assert response.status_code == 403


def test_wrong_login_shows_message_and_no_session(client, db):
    response = client.post("/login/", {"hashtag": "SAAO1m_" + "0" * 32}, follow=True)
    assert b"Unknown or revoked hashtag" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("case", ["wrong", "revoked", "inactive", "missing"])
def test_bad_hashtags_are_refused(observatory, client, case):
    obs, hashtag = observatory
    if case == "wrong":
        hashtag = "SAAO1m_" + "f" * 32
    elif case == "revoked":
        Hashtag.objects.get(observatory=obs).revoke()
    elif case == "inactive":
        Observatory.objects.filter(pk=obs.pk).update(active=False)
    data = new_event_data() if case == "missing" else new_event_data(hashtag=hashtag)
    response = client.post(NEW_EVENT, data)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert body.count("\n") == 1 and len(body) < 100
    assert "f" * 32 not in body
    from alerts.models import Alert

    assert not Alert.objects.exists()


def test_wrong_hashtags_are_throttled(observatory, client, settings):
    _, good = observatory
    settings.HASHTAG_FAILURE_LIMIT = 5
    for _ in range(5):
        assert client.post(NEW_EVENT, new_event_data(hashtag="nope_" + "0" * 32)).status_code == 401
    locked = client.post(NEW_EVENT, new_event_data(hashtag=good))
    assert locked.status_code == 429
    assert "Too many wrong hashtags" in locked.content.decode()
    # The lock-out is per client address: another address still gets in.
    other = client.post(NEW_EVENT, new_event_data(hashtag=good), REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 201


def test_login_form_is_throttled(observatory, client, settings):
    _, good = observatory
    settings.HASHTAG_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/login/", {"hashtag": "bad"})
    response = client.post("/login/", {"hashtag": good}, follow=True)
    assert b"Too many wrong hashtags" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_pages_load_for_curator(curator, observatory, client):
    client.force_login(curator)
    obs, _ = observatory
    for url in [
        "/admin/",
        "/admin/observers/observatory/",
        f"/admin/observers/observatory/{obs.pk}/change/",
        "/admin/observers/observatory/add/",
        "/admin/observers/hashtag/",
        "/admin/alerts/alert/",
        "/admin/alerts/alert/add/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert obs.hashtags.first().digest not in response.content.decode()


def test_admin_refuses_observer(observatory, client):
    obs, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    assert "_auth_user_id" in client.session
    response = client.get("/admin/observers/observatory/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_issue_action_shows_hashtag_once(curator, observatory, client):
    obs, _ = observatory
    client.force_login(curator)
    response = client.post(
        "/admin/observers/observatory/",
        {"action": "issue_hashtag", "_selected_action": [obs.pk]},
        follow=True,
    )
    found = re.findall(r"SAAO1m_[0-9a-f]{32}", response.content.decode())
    assert len(found) == 1
    assert Hashtag.objects.find(found[0]).observatory == obs
    again = client.get("/admin/observers/observatory/").content.decode()
    assert found[0] not in again


def test_admin_revoke_action(curator, observatory, client):
    obs, hashtag = observatory
    client.force_login(curator)
    client.post("/admin/observers/observatory/", {"action": "revoke_hashtags", "_selected_action": [obs.pk]})
    assert Hashtag.objects.find(hashtag) is None


def test_admin_creates_observatory_with_legacy_hashtag(curator, client):
    client.force_login(curator)
    response = client.post(
        "/admin/observers/observatory/add/",
        {
            "name": "Old Scope",
            "prefix": "OLD",
            "longitude": "350",
            "latitude": "10",
            "altitude": "",
            "filters": '["V"]',
            "contact": "",
            "active": "on",
            "legacy_hashtag": "legacy-secret-123",
            "hashtags-TOTAL_FORMS": "0",
            "hashtags-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    observatory = Observatory.objects.get(prefix="OLD")
    assert observatory.longitude == pytest.approx(-10.0)
    assert Hashtag.objects.find("legacy-secret-123").observatory == observatory
