"""Access control: throttling, CSRF, production cookies, who sees and deletes what, curators, hashtag
secrecy in pages and logs, HTML escaping of user strings, and file names that never become paths."""

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db.models import F
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path

from alerts.models import Alert
from calibration.models import FollowupPoint
from gsafollowup.redaction import REDACTED, redact
from gsafollowup.testing.postgres import free_port
from tests.conftest import DECAM, STAR_DEC, STAR_RA

ROOT = Path(__file__).resolve().parent.parent
IVORN = "ivo://demo/GRB210605A field star"
WRONG = "SAAO1m_" + "0" * 32


def boom(request):
    """A view with a bug that puts the request's hashtag in an exception (for the log test)."""
    raise ValueError(f"could not use {request.GET.get('hashtag')}")


def ok(request):
    return HttpResponse("ok")


# Used by @pytest.mark.urls below: the project's URLs plus the failing view.
urlpatterns = [path("boom", boom), path("", include("gsafollowup.urls"))]


@pytest.fixture(autouse=True)
def _media(media):
    """Every test keeps its catalogs in its own temporary MEDIA_ROOT."""


@pytest.fixture
def field_alert(db):
    return Alert.objects.create(ivorn=IVORN, ra=STAR_RA, dec=STAR_DEC)


def make_point(observatory, alert, hidden=False, mjd=59373.1):
    return FollowupPoint.objects.create(
        alert=alert,
        observatory=observatory,
        mjd=mjd,
        filter="g",
        survey="APASS",
        mag=15.3,
        mag_err=0.02,
        hidden=hidden,
    )


def upload_data(hashtag=None, **extra):
    data = {"EventID": IVORN, "MJD": "59373.1", "matchDist": "2", "outputFormat": "json", "noPlot": "1"}
    if hashtag is not None:
        data["hashtag"] = hashtag
    data.update(extra)
    return data


def secret(hashtag: str) -> str:
    return hashtag.rsplit("_", 1)[1]


# ---------------------------------------------------------------- throttling of wrong hashtags


def send(client, route: str, hashtag: str, point_id: int):
    """One authenticated request to a route that takes a hashtag."""
    if route == "/cgi/upload":
        with open(DECAM, "rb") as handle:
            return client.post(route, {**upload_data(hashtag), "sexCat": handle})
    if route == "/cgi/newevent":
        return client.post(route, {"EventID": "ivo://new", "ra": "1", "dec": "2", "hashtag": hashtag})
    if route == "/cgi/delpoint":
        return client.post(route, {"followupid": point_id, "hashtag": hashtag})
    if route == "/list_of_followups":
        return client.get(route, {"hashtag": hashtag, "format": "json"})
    return client.post("/login/", {"hashtag": hashtag}, follow=True)


LOCKED = "Too many wrong hashtags from your address; try again in 5 min."


@pytest.mark.parametrize(
    "route", ["/cgi/upload", "/cgi/newevent", "/cgi/delpoint", "/list_of_followups", "/login/"]
)
def test_wrong_hashtags_lock_out_wrong_ones_on_every_route_never_the_right_one(
    observatory, field_alert, client, settings, route, request
):
    obs, good = observatory
    if route == "/cgi/upload":
        request.getfixturevalue("apass")  # reference stars, so that the right hashtag's upload is stored
    point = make_point(obs, field_alert, mjd=59000.5)
    settings.HASHTAG_FAILURE_LIMIT = 3
    for _ in range(3):
        response = send(client, route, WRONG, point.pk)
        if route == "/login/":
            assert b"Unknown or revoked hashtag" in response.content
        else:
            assert response.status_code == 401
    # Locked out: the next wrong hashtag is refused unchecked, and nothing happens.
    locked = send(client, route, WRONG[:-1] + "1", point.pk)
    text = locked.content.decode()
    assert LOCKED in text
    if route == "/login/":
        assert "_auth_user_id" not in client.session
    else:
        assert locked.status_code == 429 and locked["Content-Type"].startswith("text/plain")
    assert secret(good) not in text and secret(WRONG) not in text
    assert not Alert.objects.filter(ivorn="ivo://new").exists()
    assert FollowupPoint.objects.count() == 1 and not FollowupPoint.objects.get().hidden
    # The right hashtag from the same address still works: one stale key on a shared host (a
    # TOM server) must not lock out everybody behind that host.
    right = send(client, route, good, point.pk)
    expected = {"/cgi/upload": 201, "/cgi/newevent": 201, "/cgi/delpoint": 200, "/list_of_followups": 200}
    if route == "/login/":
        assert "_auth_user_id" in client.session and LOCKED not in right.content.decode()
    else:
        assert right.status_code == expected[route], right.content[:200]
    if route == "/cgi/upload":
        assert FollowupPoint.objects.count() == 2
    assert Alert.objects.filter(ivorn="ivo://new").exists() == (route == "/cgi/newevent")
    assert FollowupPoint.objects.get(pk=point.pk).hidden == (route == "/cgi/delpoint")


def test_failures_through_every_channel_count_together(observatory, client, settings):
    _, good = observatory
    settings.HASHTAG_FAILURE_LIMIT = 4
    data = {"EventID": "ivo://new", "ra": "1", "dec": "2"}
    assert client.post(f"/cgi/newevent?hashtag={WRONG}", data).status_code == 401
    assert client.post("/cgi/newevent", data, HTTP_AUTHORIZATION=f"Hashtag {WRONG}").status_code == 401
    client.cookies["hashtag"] = WRONG
    assert client.post("/cgi/newevent", data, HTTP_ORIGIN="http://testserver").status_code == 401
    del client.cookies["hashtag"]
    assert client.post("/cgi/newevent", {**data, "hashtag": WRONG}).status_code == 401
    assert client.post("/cgi/newevent", data, HTTP_AUTHORIZATION=f"Hashtag {WRONG}").status_code == 429
    assert client.post("/cgi/newevent", {**data, "hashtag": good}).status_code == 201


def wrong_from(client, address: str) -> int:
    """One wrong hashtag from this client address; the status."""
    return client.get("/list_of_followups", {"hashtag": WRONG}, REMOTE_ADDR=address).status_code


def test_an_ipv6_64_counts_as_one_address_and_ipv4_addresses_each_count_alone(client, settings, db):
    settings.HASHTAG_FAILURE_LIMIT = 3
    # Three addresses of one IPv6 /64 (one host may use any of them) lock the whole /64 ...
    assert [wrong_from(client, f"2001:db8:1:2::{n}") for n in (1, 2, 3)] == [401] * 3
    assert wrong_from(client, "2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
    # ... and no other /64.
    assert wrong_from(client, "2001:db8:1:3::1") == 401
    # IPv4 addresses count alone; an IPv4-mapped IPv6 address is that IPv4 address.
    assert [wrong_from(client, "192.0.2.1") for _ in range(3)] == [401] * 3
    assert wrong_from(client, "::ffff:192.0.2.1") == 429
    assert wrong_from(client, "192.0.2.2") == 401
    from observers.models import HashtagFailure

    counts = dict(HashtagFailure.objects.values_list("address", "count"))
    assert counts == {"2001:db8:1:2::/64": 3, "2001:db8:1:3::/64": 1, "192.0.2.1": 3, "192.0.2.2": 1}


def test_a_lock_out_ends_with_its_window_and_counting_restarts(observatory, client, settings):
    from datetime import timedelta

    from observers.models import HashtagFailure

    settings.HASHTAG_FAILURE_LIMIT = 2
    assert [wrong_from(client, "192.0.2.7") for _ in range(3)] == [401, 401, 429]
    assert HashtagFailure.objects.get().count == 2  # refused unchecked: not counted again
    HashtagFailure.objects.update(window_start=F("window_start") - timedelta(seconds=301))
    assert wrong_from(client, "192.0.2.7") == 401
    assert HashtagFailure.objects.get().count == 1


def test_during_a_lock_out_only_hashtags_of_the_issued_form_are_looked_up(observatory, client, settings):
    obs, good = observatory
    # An imported legacy key may be short: during a lock-out it is refused unchecked, so that it
    # cannot be guessed at full speed; an issued hashtag (128 random bits) still works.
    obs.import_hashtag("old-Key.42")
    settings.HASHTAG_FAILURE_LIMIT = 1
    assert client.get("/list_of_followups", {"hashtag": "old-Key.41"}).status_code == 401
    assert client.get("/list_of_followups", {"hashtag": "old-Key.42"}).status_code == 429
    assert client.get("/list_of_followups", {"hashtag": good}).status_code == 200
    assert (
        client.get("/list_of_followups", {"hashtag": "old-Key.42"}, REMOTE_ADDR="192.0.2.9").status_code
        == 200
    )


@pytest.mark.postgres_only
def test_concurrent_wrong_hashtags_are_each_counted_exactly_once(transactional_db, settings):
    """Several threads, each with its own PostgreSQL session, count wrong hashtags at once.

    Three races: creating the address's row, incrementing it, and restarting a window that is
    over. No count may be lost in any of them.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from observers.models import HashtagFailure

    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent sessions of a server database (SQLite's test database is in memory)")
    threads, each = 8, 25

    def count(start: threading.Barrier) -> None:
        try:
            start.wait()
            for _ in range(each):
                HashtagFailure.objects.record("198.51.100.4", 300)
        finally:
            connection.close()  # each thread's own session

    def run_all() -> None:
        start = threading.Barrier(threads)
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(count, start) for _ in range(threads)]:
                done.result(timeout=120)  # re-raises a thread's error here

    run_all()  # no row yet: every thread races to create it
    assert HashtagFailure.objects.get(address="198.51.100.4").count == threads * each
    expired = timezone.now() - timedelta(seconds=600)
    HashtagFailure.objects.filter(address="198.51.100.4").update(count=999, window_start=expired)
    run_all()  # the window is over: every thread races to restart it
    row = HashtagFailure.objects.get(address="198.51.100.4")
    assert row.count == threads * each and row.window_start > expired


# ---------------------------------------------------------------- CSRF on every session form


def csrf_client(hashtag: str) -> Client:
    """A browser-like client (CSRF enforced) logged in through the login form."""
    browser = Client(enforce_csrf_checks=True)
    token = browser.get("/").cookies["csrftoken"].value
    response = browser.post("/login/", {"hashtag": hashtag, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and "_auth_user_id" in browser.session
    return browser


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/upload/", {"EventID": IVORN, "MJD": "59373.1"}),
        ("/newevent/", {"EventID": "ivo://csrf", "ra": "1", "dec": "2"}),
        ("/logout/", {}),
        ("/cgi/upload", upload_data()),
        ("/cgi/newevent", {"EventID": "ivo://csrf", "ra": "1", "dec": "2"}),
        ("/cgi/delpoint", {"followupid": "POINT"}),
    ],
)
def test_session_posts_without_a_csrf_token_are_refused(observatory, field_alert, path, data):
    obs, hashtag = observatory
    point = make_point(obs, field_alert)
    browser = csrf_client(hashtag)
    data = {k: (point.pk if v == "POINT" else v) for k, v in data.items()}
    with open(DECAM, "rb") as handle:
        response = browser.post(path, {**data, "sexCat": handle} if "upload" in path else data)
    assert response.status_code == 403, response.content[:300]
    assert "_auth_user_id" in browser.session
    assert not Alert.objects.filter(ivorn="ivo://csrf").exists()
    assert FollowupPoint.objects.count() == 1 and not FollowupPoint.objects.get().hidden


def test_the_same_session_posts_with_the_token_work(observatory, field_alert):
    obs, hashtag = observatory
    point = make_point(obs, field_alert)
    browser = csrf_client(hashtag)
    token = browser.cookies["csrftoken"].value
    created = browser.post(
        "/newevent/", {"EventID": "ivo://csrf", "ra": "1", "dec": "2", "csrfmiddlewaretoken": token}
    )
    assert created.status_code == 302 and Alert.objects.filter(ivorn="ivo://csrf").exists()
    hidden = browser.post(
        "/cgi/delpoint", {"followupid": point.pk, "outputFormat": "json"}, HTTP_X_CSRFTOKEN=token
    )
    assert hidden.status_code == 200 and FollowupPoint.objects.get().hidden


def test_admin_forms_need_the_csrf_token(curator):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(curator)
    response = browser.post("/admin/observers/observatory/add/", {"name": "X", "prefix": "X"})
    assert response.status_code == 403
    assert browser.post("/admin/logout/").status_code == 403


def test_a_hashtag_cookie_authenticates_an_unsafe_request_only_from_this_site(observatory):
    """A browser sends the cookie with any site's form post: Origin or Referer must be this site."""
    _, hashtag = observatory
    browser = Client()
    browser.cookies["hashtag"] = hashtag

    def post(ivorn, **headers):
        # Each at its own place: a new alert within 1.5" of another is offered as its alias.
        ra = str(1 + len(Alert.objects.all()) * 0.01)
        return browser.post("/cgi/newevent", {"EventID": ivorn, "ra": ra, "dec": "2"}, **headers)

    forged = [
        post("ivo://forged/1", HTTP_SEC_FETCH_SITE="cross-site"),
        post("ivo://forged/2", HTTP_SEC_FETCH_SITE="same-site", HTTP_ORIGIN="https://evil.example"),
        post("ivo://forged/3", HTTP_ORIGIN="https://evil.example"),
        post("ivo://forged/4", HTTP_ORIGIN="null"),
        post("ivo://forged/5", HTTP_REFERER="https://evil.example/page"),
        post("ivo://forged/6", HTTP_ORIGIN="http://testserver.evil.example"),
        post("ivo://forged/7"),  # neither Origin nor Referer: nothing shows where it came from
    ]
    assert [r.status_code for r in forged] == [401] * len(forged)
    assert not Alert.objects.filter(ivorn__startswith="ivo://forged").exists()
    assert post("ivo://mine/1", HTTP_ORIGIN="http://testserver").status_code == 201
    assert post("ivo://mine/2", HTTP_REFERER="http://testserver/newevent/").status_code == 201
    # The other ways of sending the hashtag are not affected (scripts use them).
    assert browser.get("/list_of_followups?format=json").status_code == 200
    plain = Client()
    assert (
        plain.post(
            "/cgi/newevent", {"EventID": "ivo://mine/3", "ra": "5", "dec": "2", "hashtag": hashtag}
        ).status_code
        == 201
    )


# ---------------------------------------------------------------- production settings


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "q7#Lw2!v9Zr8$Tn5^Xb3&Kp6*Md1(Hs4)Jc0-Fg7+Yt2=Ue5-aB9cD8eF7",
    "ALLOWED_HOSTS": "gsa.example.org",
}
PROBE = """
import json
from django.conf import settings as s
from django.test import Client
names = ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS",
         "SECURE_REFERRER_POLICY", "DEBUG"]
out = {n: getattr(s, n) for n in names}
c = Client(HTTP_HOST="gsa.example.org")
plain = c.get("/newevent/")
out["http_status"], out["http_location"] = plain.status_code, plain.get("Location")
legacy = c.get("/followup/list_of_alerts")
out["legacy_http"] = [legacy.status_code, legacy.get("Strict-Transport-Security")]
secure = c.get("/", secure=True)
out["https_status"] = secure.status_code
out["headers"] = dict(secure.headers)
cookie = secure.cookies["csrftoken"]
out["csrf_cookie"] = {k: cookie[k] for k in ("secure", "samesite", "httponly")}
print("PROBE" + json.dumps(out))
"""


def manage(*args, env: dict, timeout=120):
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_production_settings_and_headers(tmp_path):
    env = {
        **PRODUCTION,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    for command in (("migrate", "-v0"), ("createcachetable",), ("collectstatic", "--noinput", "-v0")):
        assert manage(*command, env=env).returncode == 0
    result = manage("shell", "-c", PROBE, env=env)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.split("PROBE", 1)[1])
    assert probe["DEBUG"] is False
    assert probe["SESSION_COOKIE_SECURE"] and probe["CSRF_COOKIE_SECURE"] and probe["SESSION_COOKIE_HTTPONLY"]
    assert probe["SESSION_COOKIE_SAMESITE"] == probe["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert probe["SECURE_SSL_REDIRECT"] and probe["SECURE_HSTS_SECONDS"] >= 31536000
    assert probe["SECURE_CONTENT_TYPE_NOSNIFF"] and probe["X_FRAME_OPTIONS"] == "DENY"
    # Plain http is sent to https, except the legacy routes old scripts call with http:// (no
    # HSTS there: browsers ignore it over http); the https page carries HSTS and a Secure cookie.
    assert probe["http_status"] == 301 and probe["http_location"] == "https://gsa.example.org/newevent/"
    assert probe["legacy_http"] == [200, None]
    assert probe["https_status"] == 200
    headers = probe["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert probe["csrf_cookie"]["secure"] is True and probe["csrf_cookie"]["samesite"] == "Lax"
    deploy = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert deploy.returncode == 0 and "no issues" in deploy.stdout, deploy.stdout + deploy.stderr


def test_the_session_cookie_is_httponly_and_samesite(observatory, client):
    _, hashtag = observatory
    response = client.post("/login/", {"hashtag": hashtag})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert hashtag not in cookie.value


# ---------------------------------------------------------------- others' points


def test_an_observer_neither_sees_others_hidden_points_nor_deletes_others_points(
    make_observatory, field_alert, client
):
    mine, my_tag = make_observatory("MINE")
    theirs, _ = make_observatory("THEIRS")
    their_hidden = make_point(theirs, field_alert, hidden=True, mjd=59373.2)
    their_visible = make_point(theirs, field_alert, mjd=59373.3)
    my_hidden = make_point(mine, field_alert, hidden=True, mjd=59373.4)
    client.post("/login/", {"hashtag": my_tag})
    for url in (f"/followup_point/{their_hidden.pk}/", f"/followup_plot/{their_hidden.pk}.png"):
        assert client.get(url).status_code == 404
    assert client.get(f"/followup_point/{my_hidden.pk}/").status_code == 200
    data = client.get("/get_alert_lc_data", {"alert_id": field_alert.pk}).json()
    assert data["id"] == [their_visible.pk]
    listed = client.get("/list_of_followups", {"format": "json"}).json()
    assert listed == []  # mine is hidden; theirs are not mine
    page = client.get("/get_alert_lc", {"alert_id": field_alert.pk}).content.decode()
    assert f'value="{their_visible.pk}">Delete' not in page
    refused = client.post("/cgi/delpoint", {"followupid": their_visible.pk})
    assert refused.status_code == 403 and "belongs to another observatory" in refused.content.decode()
    unknown = client.post("/cgi/delpoint", {"followupid": their_hidden.pk})
    assert unknown.status_code == 404  # a hidden point of others does not even exist for me
    assert not FollowupPoint.objects.get(pk=their_visible.pk).hidden
    anonymous = Client()
    assert anonymous.get(f"/followup_point/{my_hidden.pk}/").status_code == 404
    assert anonymous.post("/cgi/delpoint", {"followupid": their_visible.pk}).status_code == 401


# ---------------------------------------------------------------- curators are staff accounts


def test_admin_is_for_staff_accounts_only(observatory, client, django_user_model):
    obs, hashtag = observatory
    assert not obs.user.is_staff and not obs.user.has_usable_password()
    django_user_model.objects.create_user("someone", password="a-long-enough-password-42")
    login = client.post("/admin/login/", {"username": "someone", "password": "a-long-enough-password-42"})
    assert login.status_code == 200 and b"staff account" in login.content
    assert client.get("/admin/").status_code == 302
    for username, password in ((obs.user.username, hashtag), (hashtag, hashtag)):
        refused = client.post("/admin/login/", {"username": username, "password": password})
        assert refused.status_code == 200 and "_auth_user_id" not in client.session
    client.post("/login/", {"hashtag": hashtag})
    for url in ("/admin/", "/admin/observers/observatory/", "/admin/calibration/followuppoint/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    # Nor does a hashtag sent with the request open the admin.
    assert Client().get("/admin/", {"hashtag": hashtag}).status_code == 302


def test_a_curator_cannot_upload_as_an_observatory(curator, field_alert, client):
    client.force_login(curator)
    with open(DECAM, "rb") as handle:
        response = client.post("/cgi/upload", {**upload_data(), "sexCat": handle})
    assert response.status_code == 403 and FollowupPoint.objects.count() == 0


# ---------------------------------------------------------------- no hashtag in pages


def test_no_page_or_error_shows_a_hashtag(observatory, field_alert, client, settings):
    obs, hashtag = observatory
    point = make_point(obs, field_alert)
    key = secret(hashtag)
    requests_made = [
        client.get("/", {"hashtag": hashtag}),
        client.get("/list_of_alerts", {"hashtag": hashtag}),
        client.get("/list_of_alerts", {"hashtag": hashtag, "format": "json"}),
        client.get("/get_alert_lc", {"alert_id": field_alert.pk, "hashtag": hashtag}),
        client.get("/get_alert_lc_data", {"alert_id": field_alert.pk, "hashtag": hashtag}),
        client.get("/list_of_followups", {"hashtag": hashtag}),
        client.get("/list_of_followups", {"hashtag": hashtag, "format": "json"}),
        client.get(f"/followup_point/{point.pk}/", {"hashtag": hashtag}),
        client.post("/cgi/newevent", {"EventID": "ivo://n", "ra": "1", "dec": "2", "hashtag": hashtag}),
        client.post("/cgi/newevent", {"EventID": "ivo://n", "ra": "x", "dec": "2", "hashtag": hashtag}),
        client.post("/cgi/upload", {**upload_data(hashtag), "MJD": hashtag}),
        client.post("/cgi/delpoint", {"followupid": hashtag, "hashtag": hashtag}),
        client.post("/cgi/delpoint", {"followupid": point.pk, "hashtag": hashtag}),
        client.get("/get_alert_lc", {"alert_name": hashtag}),
        client.get("/list_of_alerts", {"num": hashtag}),
        client.post("/login/", {"hashtag": hashtag}, follow=True),
        client.get("/upload/"),
        client.get("/newevent/"),
        # (A form shown again keeps what was typed in its fields, as every form does: not tested here.)
        client.post("/newevent/", {"EventID": "ivo://n", "ra": "x", "dec": "0"}),
    ]
    settings.HASHTAG_FAILURE_LIMIT = 1
    requests_made.append(client.post("/cgi/newevent", {"hashtag": hashtag + "0"}))
    # A wrong hashtag of the issued form (looked up even during the lock-out) and a malformed one.
    requests_made.append(
        client.post("/cgi/newevent", {"hashtag": hashtag[:-1] + ("1" if hashtag[-1] == "0" else "0")})
    )
    requests_made.append(client.post("/cgi/newevent", {"hashtag": hashtag + "0"}))
    for response in requests_made:
        body = response.content.decode()
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        assert key not in body and key not in headers, (response.status_code, body[:300])
    assert [r.status_code for r in requests_made[-3:]] == [401, 429, 429]


# ---------------------------------------------------------------- no hashtag in logs


def filtered_handlers():
    """The configured handlers that redact (every one of the project's LOGGING)."""
    seen = []
    for name in ("", "django", "django.server", "django.request", "calibration.services"):
        for handler in logging.getLogger(name).handlers:
            if any(type(f).__name__ == "RedactHashtags" for f in handler.filters) and handler not in seen:
                seen.append(handler)
    return seen


@pytest.fixture
def log_output():
    """Everything the project's own log handlers write during the test."""
    buffer = io.StringIO()
    handlers = [h for h in filtered_handlers() if isinstance(h, logging.StreamHandler)]
    assert {"console", "server"} <= {h.name for h in handlers}
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def test_every_logger_of_the_project_goes_through_the_filter():
    for name in ("django", "django.request", "django.server", "django.security.csrf", "calibration", ""):
        logger = logging.getLogger(name)
        while logger is not None:
            for handler in logger.handlers:
                if not type(handler).__module__.startswith("_pytest"):  # pytest's own capture
                    assert any(type(f).__name__ == "RedactHashtags" for f in handler.filters), (name, handler)
            logger = logger.parent if logger.propagate else None


@pytest.mark.urls("tests.test_access_control")
def test_a_request_error_log_never_holds_the_hashtag(observatory, log_output):
    _, hashtag = observatory
    client = Client(raise_request_exception=False)
    response = client.get("/boom", {"hashtag": hashtag})
    assert response.status_code == 500 and secret(hashtag) not in response.content.decode()
    client.get("/list_of_followups", {"hashtag": WRONG})  # a 401, logged by django.request
    client.post("/cgi/newevent", {"hashtag": hashtag}, HTTP_AUTHORIZATION=f"Hashtag {hashtag}")
    text = log_output.getvalue()
    assert "Internal Server Error: /boom" in text and "ValueError: could not use SAAO1m_" + REDACTED in text
    assert "Unauthorized: /list_of_followups" in text
    assert secret(hashtag) not in text and secret(WRONG) not in text


def test_error_reports_hide_the_hashtag(observatory, rf):
    from django.views.debug import get_exception_reporter_class

    _, hashtag = observatory
    request = rf.post(
        f"/cgi/upload?hashtag={hashtag}", {"hashtag": hashtag}, HTTP_AUTHORIZATION=f"Hashtag {hashtag}"
    )
    try:
        raise ValueError("boom")
    except ValueError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
        text, page = reporter.get_traceback_text(), reporter.get_traceback_html()
    assert "boom" in text and "boom" in page
    assert secret(hashtag) not in text and secret(hashtag) not in page


def test_the_runserver_request_log_is_redacted(observatory, tmp_path):
    """A real server process: its request lines (with the hashtag in the query) and warnings."""
    _, hashtag = observatory
    env = {"DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "MEDIA_ROOT": str(tmp_path)}
    for command in (("migrate", "-v0"), ("createcachetable",)):
        assert manage(*command, env=env).returncode == 0
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL")}
    environment.update(env)
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(base + "/list_of_alerts", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        requests.get(base + "/list_of_followups", params={"hashtag": hashtag}, timeout=10)
        requests.get(base + "/get_alert_lc", params={"alert_id": "x", "hashtag": "legacy-Key.42"}, timeout=10)
        requests.post(base + "/cgi/newevent", data={"hashtag": hashtag}, timeout=10)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    text = log.read_text()
    assert "GET /list_of_followups?hashtag=" + REDACTED in text, text
    assert "GET /get_alert_lc?alert_id=x&hashtag=" + REDACTED in text
    assert secret(hashtag) not in text and "legacy-Key.42" not in text


def test_redaction_keeps_the_prefix_and_ordinary_words():
    tag = "SAAO1m_0123456789abcdef0123456789abcdef"
    assert redact(f"user {tag} logged") == f"user SAAO1m_{REDACTED} logged"
    assert (
        redact("POST /cgi/upload?x=1&hashtag=old-Key.42&y=2")
        == f"POST /cgi/upload?x=1&hashtag={REDACTED}&y=2"
    )
    assert (
        redact("{'HTTP_AUTHORIZATION': 'Hashtag abc'}")
        == "{'HTTP_AUTHORIZATION': 'Hashtag " + REDACTED + "'}"
    )
    assert redact("A hashtag is required (form field, query parameter or cookie).").endswith("cookie).")


# ---------------------------------------------------------------- HTML escaping of user strings

XSS_IVORN = "ivo://xss/<script>window.__xss='ivorn'</script><img src=x onerror=\"window.__xss='img'\">'&"
XSS_ALERT_COMMENT = "<script>window.__xss='alert comment'</script>"
XSS_NAME = "<img src=x onerror=window.__xss='name'>Obs"
XSS_COMMENT = "<svg onload=window.__xss='comment'>"
XSS_FILE = "<img src=x onerror=window.__xss='file'>.cat"
PAYLOADS = (XSS_IVORN, XSS_ALERT_COMMENT, XSS_NAME, XSS_COMMENT, XSS_FILE)


def multipart_upload(client, fields: dict, filename: str, content: bytes):
    """POST /cgi/upload with a file name the test client would otherwise reduce to a base name."""
    boundary = "gsa-7f3c9d"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="sexCat"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.post(
        "/cgi/upload", b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}"
    )


@pytest.fixture
def hostile(make_observatory, apass, client):
    """An alert, an observatory, a stored point and its kept file, all named with HTML payloads."""
    obs, hashtag = make_observatory("XSS", name=XSS_NAME)
    created = client.post(
        "/cgi/newevent",
        {
            "EventID": XSS_IVORN,
            "ra": STAR_RA,
            "dec": STAR_DEC,
            "comment": XSS_ALERT_COMMENT,
            "hashtag": hashtag,
        },
    )
    assert created.status_code == 201
    fields = {**upload_data(hashtag, EventID=XSS_IVORN, comment=XSS_COMMENT), "outputFormat": "html"}
    stored = multipart_upload(client, fields, XSS_FILE, DECAM.read_bytes())
    assert stored.status_code == 201, stored.content[:300]
    point = FollowupPoint.objects.get()
    assert point.catalog_name == XSS_FILE and point.comment == XSS_COMMENT
    return {"hashtag": hashtag, "point": point, "alert": point.alert, "pages": [created, stored]}


def assert_escaped(body: str) -> None:
    for payload in PAYLOADS:
        assert payload not in body
    for tag in ("<script>window", "<img src=x", "<svg onload"):
        assert tag not in body, tag


def test_user_strings_are_escaped_on_every_page(hostile, client, curator):
    alert, point, hashtag = hostile["alert"], hostile["point"], hostile["hashtag"]
    for response in hostile["pages"]:
        assert_escaped(response.content.decode())
    client.post("/login/", {"hashtag": hashtag})
    urls = [
        "/",
        "/list_of_alerts",
        f"/get_alert_lc?alert_id={alert.pk}",
        f"/followup_point/{point.pk}/",
        "/list_of_followups",
    ]
    shown = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        shown[url] = response.content.decode()
        assert_escaped(shown[url])
    assert "&lt;script&gt;window.__xss=" in shown["/list_of_alerts"]
    assert (
        "&lt;img src=x onerror=window.__xss=&#x27;name&#x27;&gt;Obs"
        in shown[f"/get_alert_lc?alert_id={alert.pk}"]
    )
    deleted = client.post("/cgi/delpoint", {"followupid": point.pk, "outputFormat": "html"})
    assert deleted.status_code == 200
    assert_escaped(deleted.content.decode())
    client.force_login(curator)
    for url in (
        "/admin/calibration/followuppoint/",
        f"/admin/calibration/followuppoint/{point.pk}/change/",
        f"/admin/alerts/alert/{alert.pk}/change/",
        f"/admin/observers/observatory/{point.observatory_id}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_escaped(response.content.decode())
    download = client.get(f"/admin/calibration/followuppoint/{point.pk}/catalog/")
    assert download["Content-Disposition"] == f'attachment; filename="followup-{point.pk}.cat"'


@pytest.mark.browser
def test_no_injected_script_runs_in_chromium(hostile, page, live_server, curator):
    alert, point, hashtag = hostile["alert"], hostile["point"], hostile["hashtag"]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/")
    page.fill("#id_hashtag", hashtag)
    page.click("button:has-text('Log in')")
    urls = ["/", "/list_of_alerts", f"/get_alert_lc?alert_id={alert.pk}", f"/followup_point/{point.pk}/"]
    urls += ["/list_of_followups"]
    for url in urls:
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
        if "get_alert_lc" in url:
            page.wait_for_selector("#lightcurve[data-ready='1']")
            page.locator("#lightcurve .scatterlayer .point").first.hover(force=True)
        assert page.evaluate("window.__xss") is None, url
    # The strings are shown as text, exactly as typed.
    page.goto(f"{live_server.url}/get_alert_lc?alert_id={alert.pk}")
    assert XSS_IVORN in page.locator("dl.facts").text_content()
    assert XSS_ALERT_COMMENT in page.locator("dl.facts").text_content()
    assert XSS_NAME in page.locator("#points tbody").text_content()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", curator.username)
    page.fill("#id_password", "a-long-curator-password")
    page.click("input[type=submit]")
    for url in (
        "/admin/calibration/followuppoint/",
        f"/admin/alerts/alert/{alert.pk}/change/",
        f"/admin/calibration/followuppoint/{point.pk}/change/",
    ):
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, url
    assert XSS_FILE in page.locator("#content").text_content()
    assert dialogs == []


# ---------------------------------------------------------------- file names are never paths


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd",
        "../../../../tmp/gsa-evil.cat",
        "/etc/passwd",
        "..\\..\\windows\\system32\\evil.cat",
        "a/b/../../../c.cat",
        "....//....//evil.cat",
        "%2e%2e%2fevil.cat",
        "evil\x00.cat",
        ".",
        "",
    ],
)
def test_uploaded_file_names_never_become_paths(observatory, apass, client, media, tmp_path, filename):
    _, hashtag = observatory
    Alert.objects.create(ivorn=IVORN, ra=STAR_RA, dec=STAR_DEC)
    outside = tmp_path.parent
    before = {p for p in outside.rglob("*") if p.is_file()}
    response = multipart_upload(client, upload_data(hashtag), filename, DECAM.read_bytes())
    assert response.status_code in (201, 400), response.content[:300]
    after = {p for p in outside.rglob("*") if p.is_file()}
    created = after - before
    kept = [p for p in created if ".locks" not in p.parts]
    assert all(Path(media) in p.parents for p in created), created
    if response.status_code == 201:
        point = FollowupPoint.objects.get()
        assert kept == [Path(media) / "catalogs" / point.catalog_sha256[:2] / point.catalog_sha256]
        assert "/" not in point.catalog_name and "\\" not in point.catalog_name.replace("\\\\", "")
        assert ".." not in Path(point.catalog_name).parts
    else:
        assert kept == [] and FollowupPoint.objects.count() == 0
    assert not Path("/tmp/gsa-evil.cat").exists()
    assert not re.search(r"evil", " ".join(str(p) for p in kept))
