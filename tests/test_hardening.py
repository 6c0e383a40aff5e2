"""Hostile conditions on the real stack: full or read-only storage, a bare migrate, huge ids and forms."""

import json
import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

from tests.stack import DECAM, ROOT, curl_upload, http_get, missing_tool, production_stack


@pytest.fixture(scope="module")
def stack():
    with production_stack(workers=1) as running:
        yield running


@contextmanager
def storage_mounted(path, *options: str):
    """A tiny tmpfs over ``path`` (root only): full with a filler file, or read-only."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        missing_tool(f"cannot mount a tmpfs to fill the storage: {mounted.stderr.strip()}")
    try:
        if "full" in options:
            filler = path / "filler"
            with open(filler, "wb", buffering=0) as handle:
                try:
                    while True:
                        handle.write(b"\0" * 4096)
                except OSError:
                    pass
        if "ro" in options:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def api_upload(stack, mjd: float) -> tuple[int, dict]:
    done = subprocess.run(
        [
            "curl", "-sS", "-w", "\n%{http_code}", "-H", f"Authorization: Hashtag {stack.hashtag}",
            "-F", "event_id=ivo://gsafollowup/demo/GRB210605A-field-star", "-F", f"mjd={mjd}",
            "-F", "match_dist=2", "-F", f"catalog=@{DECAM}", f"{stack.url}/api/v1/points/",
        ],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


@pytest.mark.live
@pytest.mark.parametrize("condition", ["full", "ro"])
def test_full_or_read_only_storage_answers_507_in_the_routes_format(stack, condition, tmp_path):
    points = stack.sql("SELECT count(*) FROM calibration_followuppoint")
    catalog = tmp_path / "night.cat"
    catalog.write_bytes(DECAM.read_bytes() + f"# {condition}\n".encode())
    mjd = {"full": 59380.1, "ro": 59381.1}[condition]
    with storage_mounted(stack.server.media_root, condition):
        status, body = curl_upload(stack.url, stack.hashtag, catalog, mjd)
        assert status == 507, body
        assert "storage" in body and body.count("\n") == 1 and len(body) < 100
        status, answer = api_upload(stack, mjd + 0.5)
        assert status == 507 and answer["error"]["code"] == "storage_unavailable", answer
        status, _, health = http_get(f"{stack.url}/health")
        assert status == 503 and b"storage cannot be written" in health, health
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint") == points
    # Once the storage is back, the same upload is stored and health is ok again.
    assert http_get(f"{stack.url}/health")[0] == 200
    status, body = curl_upload(stack.url, stack.hashtag, catalog, mjd)
    assert status == 201, body


def test_migrate_alone_makes_a_server_that_takes_new_events(tmp_path):
    """docs/deploy.md's steps without createcachetable: the cache table comes with the migrations."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    script = (
        "from django.contrib.auth.models import User; from django.test import Client;"
        "from observers.services import create_observatory;"
        "_, tag = create_observatory(name='Fresh', prefix='Fresh', longitude=0, latitude=0);"
        "r = Client(HTTP_HOST='localhost').post('/cgi/newevent', {'EventID': 'ivo://fresh/1',"
        " 'ra': '1', 'dec': '2', 'hashtag': tag, 'outputFormat': 'json'});"
        "print(r.status_code, r.content.decode())"
    )
    done = subprocess.run(
        [*manage, "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert "201 {" in done.stdout, done.stdout + done.stderr


@pytest.mark.django_db(transaction=True)
def test_a_missing_table_says_to_run_migrate_not_that_the_database_is_down(client):
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(settings.CACHES['default']['LOCATION'])}")
    try:
        # The API's throttles count in the cache table.
        response = client.get("/api/v1/alerts/")
        assert response.status_code == 503
        assert response.json()["error"]["message"] == (
            "The server's database is not set up: its operator must run 'migrate'."
        )
    finally:
        call_command("createcachetable", verbosity=0)


@pytest.mark.django_db
def test_an_id_beyond_64_bits_is_a_400_not_a_500(client):
    response = client.get("/api/v1/points/?alert=99999999999999999999")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_input" and "alert" in response.json()["error"]["message"]
    assert client.get(f"/api/v1/points/?alert={2**63 - 1}").json()["count"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("what", ["fields", "files"])
def test_too_many_fields_or_files_answer_in_the_routes_format(client, what):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if what == "fields":
        body, words = {f"f{k}": "x" for k in range(1001)}, "Too many form fields (over 1000)"
    else:
        body, words = {f"f{k}": SimpleUploadedFile(f"{k}.cat", b"x") for k in range(101)}, "Too many files"
    legacy = client.post("/followup/cgi/upload", body)
    assert legacy.status_code == 400 and legacy["Content-Type"].startswith("text/plain")
    assert legacy.content.decode().startswith(words) and legacy.content.count(b"\n") == 1
    api = client.post("/api/v1/points/", body)
    assert api.status_code == 400 and api.json()["error"]["message"].startswith(words)
    page = client.post("/newevent/", body)
    assert page.status_code in (302, 400)  # the form needs a login first; a page, never a traceback


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(make_observatory, alert, client):
    import csv
    import io

    from calibration.models import FollowupPoint

    names = ['=HYPERLINK("http://evil.example","x")', "+1", "-cmd", "@SUM(A1)", "Plain 1m"]
    for k, name in enumerate(names):
        observatory, _ = make_observatory(prefix=f"CSV{k}", name=name)
        FollowupPoint.objects.create(
            alert=alert, observatory=observatory, mjd=59000 + k, survey="APASS", filter="V", mag=15.0,
            mag_err=-1 if k == 0 else 0.02, is_limit=k == 0, calib_err=0.01, catalog_sha256=f"{k:064x}",
        )  # fmt: skip
    legacy = f"/get_alert_lc_data?alert_id={alert.pk}&format=csv"
    for path in (legacy, f"/api/v1/alerts/{alert.pk}/lightcurve/csv/"):
        rows = list(csv.DictReader(io.StringIO(client.get(path).content.decode())))
        assert [row["observatory"] for row in rows] == [
            '\'=HYPERLINK("http://evil.example","x")',
            "'+1",
            "'-cmd",
            "'@SUM(A1)",
            "Plain 1m",
        ]
        # Numbers stay numbers: a limit's magerr is still -1.
        assert rows[0]["magerr"] == "-1.0" and rows[1]["magerr"] == "0.02"


@pytest.mark.parametrize(
    ("ivorn", "words"),
    [
        ("ivo://Gaia16aye\u200b", "U+200B"),  # zero-width space
        ("ivo://Gaia16\u202eeya", "U+202E"),  # right-to-left override
        ("ivo://Gaia16\u0085aye", "U+0085"),  # C1 control (next line)
        ("ivo://Gaia\u202816aye", "U+2028"),  # line separator
    ],
)
def test_invisible_characters_are_refused_in_ivorns(observatory, client, ivorn, words):
    from alerts.models import Alert

    _, hashtag = observatory
    response = client.post("/cgi/newevent", {"EventID": ivorn, "ra": "1", "dec": "2", "hashtag": hashtag})
    assert response.status_code == 400 and words in response.content.decode()
    api = client.post(
        "/api/v1/alerts/", {"ivorn": ivorn, "ra": 1, "dec": 2}, HTTP_AUTHORIZATION=f"Hashtag {hashtag}"
    )
    assert api.status_code == 400 and words in api.json()["error"]["message"]
    assert not Alert.objects.exists()


def test_ivorns_are_normalised_and_twins_refused(observatory, client):
    from alerts.models import Alert

    _, hashtag = observatory

    places = iter(range(100))

    def post(ivorn):
        # Each at its own place: a new alert within 1.5" of another is offered as its alias.
        ra = str(1 + next(places) * 0.01)
        return client.post(
            "/cgi/newevent",
            {"EventID": ivorn, "ra": ra, "dec": "2", "hashtag": hashtag, "outputFormat": "json"},
        )

    # NFC: "e" + combining acute is stored as the one character "é".
    created = post("  ivo://Caf\u0065\u0301 star ")
    assert created.status_code == 201 and created.json()["ivorn"] == "ivo://Caf\u00e9 star"
    original = post("ivo://Gaia16aye").json()["id"]
    for twin in ("ivo://Gaia16\u0430ye", "ivo://GAIA16AYE", "ivo://\uff27aia16aye", "ivo://Caf\u00c9 STAR"):
        response = post(twin)
        assert response.status_code == 409, twin
        assert "reads the same as" in response.content.decode()
    assert f"(id {original})" in post("ivo://gaia16aye").content.decode()
    assert Alert.objects.count() == 2
    # A different name is not a twin, even when ASCII letters look alike (l and 1).
    assert post("ivo://Gaia16ayl").status_code == 201
    # Uploads and light curves find the alert under its normal form.
    assert client.get("/get_alert_lc_data", {"alert_name": "ivo://Caf\u0065\u0301 star"}).status_code == 200


def test_publication_more_than_a_day_ahead_is_refused(observatory, client):
    from datetime import UTC, datetime, timedelta

    from alerts.models import Alert

    _, hashtag = observatory
    auth = {"HTTP_AUTHORIZATION": f"Hashtag {hashtag}"}
    far = client.post(
        "/api/v1/alerts/",
        {"ivorn": "ivo://x/1", "ra": 1, "dec": 2, "published": "9999-01-01T00:00:00Z"},
        **auth,
    )
    assert far.status_code == 400 and "future" in far.json()["error"]["message"]
    soon = (datetime.now(UTC) + timedelta(hours=12)).isoformat()
    assert (
        client.post(
            "/api/v1/alerts/", {"ivorn": "ivo://x/2", "ra": 1, "dec": 2, "published": soon}, **auth
        ).status_code
        == 201
    )
    assert list(Alert.objects.values_list("ivorn", flat=True)) == ["ivo://x/2"]


def test_curator_login_is_locked_out_after_wrong_passwords(django_user_model, client):
    """40 wrong passwords then the right one used to log in; django-axes stops it at the limit."""
    from django.test import Client

    django_user_model.objects.create_superuser("curator", "c@example.org", "right-password-1")

    def login(browser, password, address="192.0.2.10"):
        return browser.post(
            "/admin/login/?next=/admin/",
            {"username": "curator", "password": password},
            REMOTE_ADDR=address,
        )

    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    assert login(client, "wrong").status_code == 429  # the fifth locks the account out here
    locked = login(client, "right-password-1")
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # not logged in
    # The same account from another address, and hashtag logins, are not affected.
    other = Client()
    assert login(other, "right-password-1", address="198.51.100.7").status_code == 302
    assert other.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "ending", ["revoke every hashtag", "deactivate the observatory", "revoke the one used"]
)
def test_a_session_ends_when_its_hashtag_is_revoked_or_its_observatory_deactivated(
    observatory, star_alert, client, media, ending
):
    from calibration.models import FollowupPoint
    from observers.models import Hashtag

    obs, hashtag = observatory
    other = obs.issue_hashtag(label="second")
    assert client.post("/login/", {"hashtag": hashtag}).status_code == 302
    assert client.get("/upload/").status_code == 200  # logged in
    if ending == "revoke every hashtag":
        for tag in Hashtag.objects.filter(observatory=obs):
            tag.revoke()
    elif ending == "deactivate the observatory":
        obs.active = False
        obs.save()
    else:
        Hashtag.objects.find(hashtag).revoke()
    with open(DECAM, "rb") as catalog:
        form = client.post("/upload/", {"EventID": star_alert.ivorn, "MJD": "59373.1", "sexCat": catalog})
    assert form.status_code == 302 and "next=/upload/" in form.url  # sent to log in again
    with open(DECAM, "rb") as catalog:
        api = client.post(
            "/api/v1/points/", {"event_id": star_alert.ivorn, "mjd": 59373.2, "catalog": catalog}
        )
    assert api.status_code == 401, api.content
    assert not FollowupPoint.objects.exists()
    assert "_auth_user_id" not in client.session
    if ending == "revoke the one used":
        # The observatory's other hashtag still opens a new session.
        assert client.post("/login/", {"hashtag": other}).status_code == 302
        assert client.get("/upload/").status_code == 200
