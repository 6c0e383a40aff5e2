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
    headers = {}
    if route == "cookie":
        # As a browser on this site sends it: an unsafe request authenticated by the cookie
        # must come from this site (observers.auth.cookie_may_authenticate).
        client.cookies["hashtag"] = hashtag
        headers["HTTP_ORIGIN"] = "http://testserver"
    elif route == "header":
        headers["HTTP_AUTHORIZATION"] = f"Hashtag {hashtag}"
    response = client.post(path, data, **headers)
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


def test_wrong_hashtags_are_throttled_but_the_right_one_is_not(observatory, client, settings):
    _, good = observatory
    settings.HASHTAG_FAILURE_LIMIT = 5
    for _ in range(5):
        assert client.post(NEW_EVENT, new_event_data(hashtag="nope_" + "0" * 32)).status_code == 401
    locked = client.post(NEW_EVENT, new_event_data(hashtag="nope_" + "1" * 32))
    assert locked.status_code == 429
    assert "Too many wrong hashtags" in locked.content.decode()
    # The right hashtag from the locked-out address still works.
    assert client.post(NEW_EVENT, new_event_data(hashtag=good)).status_code == 201
    # The lock-out is per client address: another address's wrong hashtags are still checked.
    other = client.post(NEW_EVENT, new_event_data(hashtag="nope_" + "1" * 32), REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 401


def test_login_form_is_throttled_for_wrong_hashtags_only(observatory, client, settings):
    _, good = observatory
    settings.HASHTAG_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/login/", {"hashtag": "bad"})
    response = client.post("/login/", {"hashtag": "bad"}, follow=True)
    assert b"Too many wrong hashtags" in response.content
    assert "_auth_user_id" not in client.session
    response = client.post("/login/", {"hashtag": good}, follow=True)
    assert b"Logged in as SAAO 1m" in response.content and "_auth_user_id" in client.session


def test_admin_pages_load_for_curator(curator, observatory, client):
    client.force_login(curator)
    obs, _ = observatory
    for url in [
        "/admin/",
        "/admin/observers/observatory/",
        f"/admin/observers/observatory/{obs.pk}/change/",
        "/admin/observers/observatory/add/",
        "/admin/observers/hashtag/",
        "/admin/observers/hashtagfailure/",
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


# ---------------------------------------------------------------- curators' hashtags and /cgi/newuser

NEW_USER = "/cgi/newuser"


def new_user_data(hashtag, **fields):
    data = {
        "obsName": "BHTOM Test 0.5m",
        "lon": "340.5",
        "lat": "-24.6",
        "allow_upload": "1",
        "prefix": "BHT05",
    }
    data.update(fields, hashtag=hashtag)
    return {k: v for k, v in data.items() if v is not None}


def test_a_curator_hashtag_is_issued_by_command_for_staff_accounts_only(curator, django_user_model):
    out = StringIO()
    call_command("issue_curator_hashtag", curator.username, "--prefix", "CUR", stdout=out)
    hashtag = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"CUR_[0-9a-f]{32}", hashtag)
    found = Hashtag.objects.find(hashtag)
    assert found.observatory.user == curator and found.observatory.name == "Curator curator"
    # A second one goes to the same observatory; revoking works as for any hashtag.
    call_command("issue_curator_hashtag", curator.username, stdout=StringIO())
    assert Observatory.objects.get(user=curator).hashtags.count() == 2
    django_user_model.objects.create_user("plain", password="a-long-enough-password-42")
    with pytest.raises(CommandError, match="not an active staff"):
        call_command("issue_curator_hashtag", "plain", stdout=StringIO())
    with pytest.raises(CommandError, match="No account"):
        call_command("issue_curator_hashtag", "nobody", stdout=StringIO())
    assert not Observatory.objects.filter(user__username="plain").exists()


def test_a_curator_hashtag_neither_uploads_nor_opens_a_session(curator_hashtag, alert, client):
    from tests.conftest import DECAM

    with open(DECAM, "rb") as catalog:
        data = {"EventID": alert.ivorn, "MJD": "59373.1", "hashtag": curator_hashtag, "sexCat": catalog}
        response = client.post("/cgi/upload", data)
    assert response.status_code == 403 and b"curators use the admin" in response.content
    login = client.post("/login/", {"hashtag": curator_hashtag}, follow=True)
    assert b"curators log in at /admin/" in login.content and "_auth_user_id" not in client.session
    assert (
        client.get("/api/v1/observatories/me", HTTP_AUTHORIZATION=f"Hashtag {curator_hashtag}").status_code
        == 404
    )
    # As a curator it lists everybody's points (like a curator's session).
    assert client.get("/list_of_followups", {"hashtag": curator_hashtag, "format": "json"}).status_code == 200


@pytest.mark.parametrize("prefix", ["", "/followup"])
def test_newuser_registers_an_observatory_with_a_curator_hashtag(curator_hashtag, client, prefix):
    response = client.post(prefix + NEW_USER, new_user_data(curator_hashtag))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert body.count("\n") == 1 and body.endswith("\n")
    hashtag = body.rstrip("\n").rsplit(": ", 1)[1]
    assert re.fullmatch(r"BHT05_[0-9a-f]{32}", hashtag)
    observatory = Observatory.objects.get(prefix="BHT05")
    assert observatory.name == "BHTOM Test 0.5m" and observatory.active
    assert observatory.longitude == pytest.approx(-19.5) and observatory.latitude == pytest.approx(-24.6)
    assert not observatory.user.is_staff and not observatory.user.has_usable_password()
    assert Hashtag.objects.find(hashtag).observatory == observatory
    # The new hashtag works at once.
    assert client.post(NEW_EVENT, new_event_data(hashtag=hashtag)).status_code == 201


def test_newuser_with_allow_upload_0_creates_an_inactive_observatory(curator_hashtag, client):
    response = client.post(NEW_USER, new_user_data(curator_hashtag, allow_upload="0"))
    assert response.status_code == 200
    hashtag = response.content.decode().strip().rsplit(": ", 1)[1]
    observatory = Observatory.objects.get(prefix="BHT05")
    assert not observatory.active
    assert client.post(NEW_EVENT, new_event_data(hashtag=hashtag)).status_code == 401
    Observatory.objects.filter(pk=observatory.pk).update(active=True)
    assert client.post(NEW_EVENT, new_event_data(hashtag=hashtag)).status_code == 201


NEW_USER_ERRORS = [
    # (fields changed, status, words of the message)
    ({"prefix": "SAAO1m"}, 409, "prefix SAAO1m is in use"),
    ({"prefix": "saao1M"}, 409, "prefix saao1M is in use"),
    ({"obsName": "SAAO 1m"}, 409, "name exists already"),
    ({"lon": "x"}, 400, "lon and lat must be decimal degrees"),
    ({"lat": "91"}, 400, "lat must be between -90 and 90"),
    ({"lat": "-90.5"}, 400, "lat must be between -90 and 90"),
    ({"lon": "400"}, 400, "lon must be between -180 and 360"),
    ({"lon": "-181"}, 400, "lon must be between -180 and 360"),
    ({"lon": "nan"}, 400, "finite"),
    ({"lat": "inf"}, 400, "finite"),
    ({"lat": "12°"}, 400, "decimal degrees"),
    ({"lon": None}, 400, "lon: This field is required"),
    ({"lat": None}, 400, "lat: This field is required"),
    ({"obsName": None}, 400, "obsName: This field is required"),
    ({"obsName": "  "}, 400, "obsName: This field may not be blank"),
    ({"obsName": "x" * 101}, 400, "obsName must be 1 to 100"),
    ({"obsName": "Obs\x07"}, 400, "printable"),
    ({"prefix": None}, 400, "prefix: This field is required"),
    ({"prefix": "BH T"}, 400, "prefix: up to 32 letters"),
    ({"prefix": "_BHT"}, 400, "prefix: up to 32 letters"),
    ({"prefix": "B" * 33}, 400, "prefix: up to 32 letters"),
    ({"allow_upload": None}, 400, "allow_upload: This field is required"),
    ({"allow_upload": "2"}, 400, "allow_upload must be 1 or 0"),
]


@pytest.mark.parametrize(("fields", "status", "words"), NEW_USER_ERRORS)
def test_newuser_errors_are_one_line_and_store_nothing(
    curator_hashtag, observatory, client, django_user_model, fields, status, words
):
    before = (Observatory.objects.count(), Hashtag.objects.count(), django_user_model.objects.count())
    response = client.post(NEW_USER, new_user_data(curator_hashtag, **fields))
    assert response.status_code == status
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/plain") and body.count("\n") == 1 and len(body) < 100
    assert words in body, body
    assert (Observatory.objects.count(), Hashtag.objects.count(), django_user_model.objects.count()) == before


@pytest.mark.parametrize("who", ["observatory", "none", "wrong", "revoked"])
def test_newuser_needs_a_curator_hashtag(curator, curator_hashtag, observatory, client, who):
    _, observer_hashtag = observatory
    if who == "revoked":
        Hashtag.objects.get(observatory__user=curator).revoke()
    hashtag = {"observatory": observer_hashtag, "none": None, "wrong": "CUR_" + "0" * 32}.get(
        who, curator_hashtag
    )
    response = client.post("/followup" + NEW_USER, new_user_data(hashtag))
    assert response.status_code == (403 if who == "observatory" else 401)
    body = response.content.decode()
    assert body.count("\n") == 1 and len(body) < 100
    if who == "observatory":
        assert "Only a curator's hashtag may register" in body
    assert not Observatory.objects.filter(prefix="BHT05").exists()


def test_newuser_answers_post_only(curator_hashtag, client):
    response = client.get(NEW_USER, {"hashtag": curator_hashtag})
    assert response.status_code == 405 and not Observatory.objects.filter(prefix="BHT05").exists()
