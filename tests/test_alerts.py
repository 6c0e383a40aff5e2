"""Alerts: the legacy list format, new events (web form and legacy endpoint), legacy import."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from alerts.models import Alert, alert_name
from tests.conftest import DATA

LEGACY_LIST = DATA / "cpcs-legacy" / "list_of_alerts.json"


@pytest.fixture
def imported(db):
    call_command("import_legacy_alerts", str(LEGACY_LIST), stdout=StringIO())


def test_list_json_has_exactly_the_legacy_fields_and_types(imported, client):
    response = client.get("/list_of_alerts?format=json")
    assert response["Content-Type"] == "application/json"
    rows = json.loads(response.content)
    assert len(rows) == 676
    for row in rows:
        assert list(row) == ["id", "ivorn", "published", "ra", "dec", "nfollowup"]
        assert type(row["id"]) is int and type(row["ivorn"]) is str
        assert type(row["ra"]) is float and type(row["dec"]) is float and type(row["nfollowup"]) is int
        datetime.strptime(row["published"], "%Y-%m-%dT%H:%M:%S")


def test_list_json_round_trips_the_real_legacy_file(imported, client):
    legacy = {row["id"]: row for row in json.loads(LEGACY_LIST.read_text())}
    ours = json.loads(client.get("/followup/list_of_alerts?format=json").content)
    assert [row["id"] for row in ours] == sorted(legacy, reverse=True)
    for row in ours:
        old = legacy[row["id"]]
        assert (row["ivorn"], row["published"], row["ra"], row["dec"]) == (
            old["ivorn"],
            old["published"],
            old["ra"],
            old["dec"],
        )


def test_list_json_uses_the_legacy_layout(imported, client):
    body = client.get("/list_of_alerts?format=json&num=2").content.decode()
    assert body.startswith('[{"id":26623,"ivorn":"ivo://Gaia17asv","published":"2017-06-29T05:27:56",')
    assert ", \n " in body


def test_list_parameters(imported, client):
    assert len(json.loads(client.get("/list_of_alerts?format=json&num=5").content)) == 5
    assert json.loads(client.get("/list_of_alerts?format=json&observed_only=1").content) == []
    Alert.objects.create(ivorn="ivo://draft", ra=1, dec=2, published=None)
    published = json.loads(client.get("/list_of_alerts?format=json&published=1").content)
    assert "ivo://draft" not in [row["ivorn"] for row in published]
    assert published[0]["published"] >= published[-1]["published"]
    # Nonsense values are refused with a message rather than silently ignored.
    refused = client.get("/list_of_alerts?format=json&num=abc")
    assert refused.status_code == 400 and b"num must be a positive integer" in refused.content


def test_list_html_escapes_ivorn(client, db):
    Alert.objects.create(ivorn="ivo://<script>alert(1)</script>", ra=1, dec=2)
    body = client.get("/list_of_alerts").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_import_is_idempotent_and_keeps_ids(db):
    out = StringIO()
    call_command("import_legacy_alerts", str(LEGACY_LIST), stdout=out)
    assert "676 alerts created" in out.getvalue()
    out = StringIO()
    call_command("import_legacy_alerts", str(LEGACY_LIST), stdout=out)
    assert "0 alerts created, 676 already present" in out.getvalue()
    assert Alert.objects.count() == 676
    tt = Alert.objects.get(pk=26605)
    assert tt.ivorn == "ivo://TT Tri" and tt.name == "TT Tri"
    assert tt.published == datetime(2017, 6, 20, 5, 46, 3, tzinfo=UTC)
    # New alerts are numbered after the imported ones (the sequence was moved on).
    assert Alert.objects.create(ivorn="ivo://new", ra=1, dec=1).pk > 26623


def test_import_rejects_a_file_that_is_not_a_list(tmp_path, db):
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 1}')
    with pytest.raises(CommandError, match="not a JSON array"):
        call_command("import_legacy_alerts", str(bad))
    bad.write_text("[{")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_legacy_alerts", str(bad))
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    ("ivorn", "name"),
    [
        ("ivo://asassn/ ASASSN-14gp", "ASASSN-14gp"),
        ("ivo://Gaia16aye", "Gaia16aye"),
        ("ivo://PSR J1023+0038", "PSR J1023+0038"),
    ],
)
def test_alert_name(ivorn, name):
    assert alert_name(ivorn) == name


def post_event(client, hashtag, **fields):
    data = {
        "EventID": "ivo://Gaia24xyz",
        "ra": "10.5",
        "dec": "-20.25",
        "url": "https://gsaweb.example/Gaia24xyz",
        "hashtag": hashtag,
        "outputFormat": "json",
    }
    data.update(fields)
    return client.post("/cgi/newevent", {k: v for k, v in data.items() if v is not None})


def test_newevent_creates_and_echoes(observatory, client):
    _, hashtag = observatory
    response = post_event(client, hashtag, EventID="ivo://TT Tri")
    assert response.status_code == 201
    body = response.json()
    alert = Alert.objects.get(pk=body["id"])
    assert body["ivorn"] == alert.ivorn == "ivo://TT Tri"
    assert (body["ra"], body["dec"]) == (10.5, -20.25)


def test_newevent_html_output(observatory, client):
    _, hashtag = observatory
    response = post_event(client, hashtag, outputFormat="html")
    assert response.status_code == 201 and b"Event created" in response.content


def test_newevent_duplicate_is_409(observatory, client):
    _, hashtag = observatory
    first = post_event(client, hashtag).json()["id"]
    response = post_event(client, hashtag)
    assert response.status_code == 409
    assert str(first) in response.content.decode()
    assert Alert.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ra", "400", "ra must be between 0 and 360"),
        ("ra", "-1", "ra must be between 0 and 360"),
        ("dec", "91", "dec must be between -90 and 90"),
        ("ra", "12:30:00", "decimal degrees"),
        ("dec", "nan", "finite"),
        ("ra", None, "ra"),
        ("EventID", "   ", "EventID"),
        ("EventID", "ivo://x\x01y", "control character (U+0001)"),
        ("url", "javascript:alert(1)", "url must be"),
    ],
)
def test_newevent_bad_input_is_400_plain_text(observatory, client, field, value, message):
    _, hashtag = observatory
    response = post_event(client, hashtag, **{field: value})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert message in body and len(body) < 100 and body.count("\n") == 1
    assert not Alert.objects.exists()


def test_newevent_needs_a_hashtag(client, db):
    assert post_event(client, None).status_code == 401


def test_newevent_form_requires_login(client, db):
    response = client.get("/newevent/")
    assert response.status_code == 302


def test_newevent_form_shows_errors(observatory, client):
    _, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    response = client.post("/newevent/", {"EventID": "ivo://x", "ra": "500", "dec": "0"})
    assert response.status_code == 400 and b"ra must be between 0 and 360" in response.content
    assert not Alert.objects.exists()


def test_home_page_has_login_form_and_links(client, db):
    body = client.get("/").content.decode()
    assert 'name="hashtag"' in body and "/list_of_alerts" in body
    assert client.get("/followup/").status_code == 200
