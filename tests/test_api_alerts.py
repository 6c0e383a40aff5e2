"""REST API for alerts: filters, cone, search, pagination, detail, create, light curve and downloads."""

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import votable

from alerts.models import Alert
from alerts.services import import_legacy_alerts
from calibration.models import FollowupPoint
from calibration.services import set_hidden
from tests.conftest import LEGACY, import_legacy_lightcurve

ENTRIES = json.loads((LEGACY / "list_of_alerts.json").read_text())


@pytest.fixture
def legacy_alerts(db):
    """The 676 real alerts of the old server's list, and the three real points of ASASSN-14gy."""
    import_legacy_alerts(ENTRIES)
    import_legacy_lightcurve(25477)


def auth(hashtag: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Hashtag {hashtag}"}


def all_pages(client, url: str) -> list[dict]:
    rows = []
    while url:
        body = client.get(url).json()
        rows += body["results"]
        url = body["next"]
    return rows


def error_of(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


def test_list_is_paginated_newest_first(legacy_alerts, client):
    body = client.get("/api/v1/alerts/?page_size=50").json()
    assert body["count"] == len(ENTRIES) == 676
    assert [a["id"] for a in body["results"]] == sorted((e["id"] for e in ENTRIES), reverse=True)[:50]
    assert body["previous"] is None and "page=2" in body["next"]
    ids = [a["id"] for a in all_pages(client, "/api/v1/alerts/?page_size=200")]
    assert sorted(ids) == sorted(e["id"] for e in ENTRIES) and len(set(ids)) == 676


def test_fields_of_an_alert(legacy_alerts, client):
    body = client.get("/api/v1/alerts/25477/").json()
    assert body["ivorn"] == "ivo://asassn/ASASSN-14gy" and body["name"] == "ASASSN-14gy"
    assert body["ra"] == pytest.approx(84.8125) and body["dec"] == pytest.approx(45.47389)
    assert body["published"] == "2014-09-20T05:33:29Z" and body["nfollowup"] == 3
    assert body["lightcurve"] == "http://testserver/api/v1/alerts/25477/lightcurve/"
    assert client.get("/followup/api/v1/alerts/25477/").json() == body


def test_observed_filter(legacy_alerts, client):
    observed = all_pages(client, "/api/v1/alerts/?observed=true&page_size=1000")
    assert [a["id"] for a in observed] == [25477]
    unobserved = client.get("/api/v1/alerts/?observed=false").json()
    assert unobserved["count"] == 675


def test_published_since_and_search(legacy_alerts, client):
    since = datetime(2017, 6, 1, tzinfo=UTC)
    expected = {
        e["id"] for e in ENTRIES if datetime.fromisoformat(e["published"]).replace(tzinfo=UTC) >= since
    }
    rows = all_pages(client, "/api/v1/alerts/?published_since=2017-06-01T00:00:00Z&page_size=1000")
    assert {a["id"] for a in rows} == expected and 0 < len(expected) < 676
    gaia17 = {e["id"] for e in ENTRIES if "gaia17" in e["ivorn"].lower()}
    rows = all_pages(client, "/api/v1/alerts/?search=gaia17&page_size=1000")
    assert {a["id"] for a in rows} == gaia17 and len(gaia17) > 10


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [
        (84.8, 45.5, 5.0),  # around ASASSN-14gy
        (0.5, 10.0, 20.0),  # across RA 0
        (359.0, -30.0, 25.0),  # across RA 360
        (180.0, 88.0, 10.0),  # holding the north pole
        (270.0, 60.0, 40.0),  # wide, high declination
        (34.5617083333, 49.056, 1e-6),  # Gaia17asv alone, to a micro-degree
    ],
)
def test_cone_agrees_with_astropy(legacy_alerts, client, ra, dec, radius):
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    coords = SkyCoord([e["ra"] for e in ENTRIES] * u.deg, [e["dec"] for e in ENTRIES] * u.deg)
    inside = centre.separation(coords) <= radius * u.deg
    expected = {e["id"] for e, hit in zip(ENTRIES, inside, strict=True) if hit}
    assert expected, "each cone holds real alerts"
    rows = all_pages(client, f"/api/v1/alerts/?cone={ra},{dec},{radius}&page_size=7")
    assert {a["id"] for a in rows} == expected
    assert [a["id"] for a in rows] == sorted(expected, reverse=True)


@pytest.mark.parametrize(
    "query",
    ["cone=1,2", "cone=a,b,c", "cone=10,95,1", "cone=10,10,0", "cone=nan,1,1", "published_since=yesterday"],
)
def test_bad_filters_are_400_bad_input(legacy_alerts, client, query):
    response = client.get(f"/api/v1/alerts/?{query}")
    assert response.status_code == 400 and error_of(response)["code"] == "bad_input"


def test_page_out_of_range_is_404(legacy_alerts, client):
    response = client.get("/api/v1/alerts/?page=99")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.get("/api/v1/alerts/1/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_create_needs_authentication(observatory, client):
    response = client.post(
        "/api/v1/alerts/", {"ivorn": "ivo://test/X", "ra": 1, "dec": 2}, "application/json"
    )
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Hashtag"
    response = client.post(
        "/api/v1/alerts/",
        {"ivorn": "ivo://test/X", "ra": 1, "dec": 2},
        "application/json",
        **auth("SAAO1m_bad"),
    )
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"
    assert not Alert.objects.exists()


def test_create_and_duplicate(observatory, client):
    obs, hashtag = observatory
    new = {"ivorn": "ivo://test/AT2026abc", "ra": 359.5, "dec": -12.25, "url": "https://example.org/x"}
    response = client.post("/api/v1/alerts/", new, "application/json", **auth(hashtag))
    assert response.status_code == 201, response.content
    body = response.json()
    alert = Alert.objects.get(pk=body["id"])
    assert (alert.ivorn, alert.ra, alert.dec, alert.url) == (new["ivorn"], 359.5, -12.25, new["url"])
    assert alert.created_by == obs.user and body["nfollowup"] == 0
    again = client.post("/api/v1/alerts/", new, "application/json", **auth(hashtag))
    assert again.status_code == 409
    assert error_of(again) == {
        "code": "duplicate",
        "message": f"Event {new['ivorn']} exists already (id {alert.pk}).",
        "existing_id": alert.pk,
    }


@pytest.mark.parametrize(
    "fields",
    [{"ra": 400}, {"dec": -91}, {"ivorn": ""}, {"ivorn": "ivo://x\x07y"}, {"url": "ftp://x"}, {"ra": "east"}],
)
def test_create_refuses_bad_values(observatory, client, fields):
    _, hashtag = observatory
    data = {"ivorn": "ivo://test/bad", "ra": 10, "dec": 10, **fields}
    response = client.post("/api/v1/alerts/", data, "application/json", **auth(hashtag))
    assert response.status_code == 400 and error_of(response)["code"] == "bad_input"
    assert not Alert.objects.exists()


def test_malformed_json_and_wrong_media_type(observatory, client):
    _, hashtag = observatory
    response = client.post("/api/v1/alerts/", "{not json", "application/json", **auth(hashtag))
    assert response.status_code == 400 and error_of(response)["code"] == "bad_input"
    response = client.post("/api/v1/alerts/", "x", "text/plain", **auth(hashtag))
    assert response.status_code == 415 and error_of(response)["code"] == "unsupported_media_type"
    response = client.put("/api/v1/alerts/", {}, "application/json", **auth(hashtag))
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    response = client.get("/api/v1/alerts/", HTTP_ACCEPT="text/html")
    assert response.status_code == 406 and error_of(response)["code"] == "not_acceptable"


def test_lightcurve_json_has_one_object_per_point(asassn14gy, client):
    body = client.get("/api/v1/alerts/25477/lightcurve/").json()
    assert body["alert"]["ivorn"] == "ivo://asassn/ASASSN-14gy"
    legacy = json.loads(client.get("/get_alert_lc_data?alert_id=25477").content)
    assert [p["id"] for p in body["points"]] == legacy["id"]
    for point, k in zip(body["points"], range(len(legacy["id"])), strict=True):
        assert point["mjd"] == legacy["mjd"][k] and point["mag"] == legacy["mag"][k]
        assert point["band"] == legacy["filter"][k] and point["survey"] == legacy["catalog"][k]
        assert point["observatory"] == legacy["observatory"][k]
        assert point["is_limit"] == (legacy["magerr"][k] == -1)
        assert point["mag_err"] == (None if point["is_limit"] else legacy["magerr"][k])
    assert sum(p["is_limit"] for p in body["points"]) == 1
    assert body["points"][0]["date"].startswith("2014-")
    assert set(body["downloads"]) == {"csv", "ecsv", "votable"}


def test_lightcurve_downloads(asassn14gy, client):
    links = client.get("/api/v1/alerts/25477/lightcurve/").json()["downloads"]
    response = client.get(links["csv"])
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    ids = list(
        FollowupPoint.objects.filter(alert_id=25477).order_by("mjd", "pk").values_list("pk", flat=True)
    )
    assert [int(r["id"]) for r in rows] == ids
    response = client.get(links["votable"])
    assert response["Content-Type"] == "application/x-votable+xml"
    table = votable.parse_single_table(io.BytesIO(response.content)).to_table()
    assert list(table["id"]) == ids and np.isclose(table["mag"][0], float(rows[0]["mag"]))
    assert "# %ECSV" in client.get(links["ecsv"]).content.decode()
    response = client.get("/api/v1/alerts/25477/lightcurve/xls/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.get("/api/v1/alerts/1/lightcurve/csv/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_hidden_points_leave_the_lightcurve(asassn14gy, client):
    point = FollowupPoint.objects.filter(alert_id=25477).first()
    set_hidden(point, True)  # the write path, which keeps the alert's stored count
    body = client.get("/api/v1/alerts/25477/lightcurve/").json()
    assert point.pk not in [p["id"] for p in body["points"]] and len(body["points"]) == 2
    assert body["alert"]["nfollowup"] == 2
