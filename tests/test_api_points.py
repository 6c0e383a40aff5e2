"""REST API for follow-up points, surveys and the calling observatory, on real catalogs."""

from pathlib import Path

import pytest

from calibration.models import FollowupPoint
from tests.conftest import DATA, DECAM, STAR_DEC, STAR_G, STAR_G_ERR, STAR_RA

BAD = DATA / "bad"


@pytest.fixture(autouse=True)
def _media(media):
    """Every test here keeps its catalogs in its own temporary MEDIA_ROOT."""


def auth(hashtag: str | None) -> dict:
    return {"HTTP_AUTHORIZATION": f"Hashtag {hashtag}"} if hashtag else {}


def api_upload(client, hashtag, catalog=DECAM, **fields):
    """POST /api/v1/points/ with the snake_case fields of the legacy upload."""
    data = {
        "event_id": "ivo://demo/GRB210605A field star",
        "mjd": "59373.1",
        "exp_time": "60",
        "match_dist": "2",
        "force_filter": "no",
    }
    data.update(fields)
    with open(catalog, "rb") as handle:
        data["catalog"] = handle
        return client.post(
            "/api/v1/points/", {k: v for k, v in data.items() if v is not None}, **auth(hashtag)
        )


def kept_files(media) -> list[Path]:
    root = Path(media) / "catalogs"
    return [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts] if root.exists() else []


def error_code(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]["code"]


def test_upload_stores_the_point_the_legacy_route_would(observatory, star_alert, client, media):
    obs, hashtag = observatory
    legacy = client.post(
        "/cgi/upload",
        {
            "EventID": star_alert.ivorn,
            "MJD": "59373.1",
            "matchDist": "2",
            "dryRun": "1",
            "outputFormat": "json",
            "noPlot": "1",
            "hashtag": hashtag,
            "sexCat": DECAM.open("rb"),
        },
    ).json()
    response = api_upload(client, hashtag, comment="API night 1")
    assert response.status_code == 201, response.content
    body = response.json()
    point = FollowupPoint.objects.get(pk=body["id"])
    assert point.observatory == obs and point.alert == star_alert and point.comment == "API night 1"
    assert point.exptime == 60 and point.mjd == 59373.1 and point.catalog_name == DECAM.name
    assert (body["survey"], body["band"]) == ("APASS", "g") == (legacy["survey"], legacy["filter"])
    assert body["mag"] == pytest.approx(legacy["mag"]) and body["npoints"] == legacy["npoints"]
    assert abs(body["mag"] - STAR_G) < 3 * (body["mag_err"] ** 2 + STAR_G_ERR**2) ** 0.5 + 0.02
    assert body["details"]["stars"] and body["algorithm_version"] == point.algorithm_version
    assert body["url"] == f"http://testserver/api/v1/points/{point.pk}/"
    assert body["plot"] == f"http://testserver/followup_plot/{point.pk}.png"
    assert client.get(body["plot"])["Content-Type"] == "image/png"
    assert [p.name for p in kept_files(media)] == [point.catalog_sha256]
    assert client.get(f"/api/v1/points/{point.pk}/").json() == body


def test_dry_run_stores_nothing(observatory, star_alert, client, media):
    _, hashtag = observatory
    response = api_upload(client, hashtag, dry_run="true")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] is None and body["url"] is None and body["plot"] is None
    assert body["band"] == "g" and body["details"]["stars"] and body["observatory"] == "SAAO 1m"
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_force_filter_from_the_surveys_listing(observatory, star_alert, client):
    _, hashtag = observatory
    listing = client.get("/api/v1/surveys/").json()
    assert "APASS/r" in listing["force_filter"]
    body = api_upload(client, hashtag, dry_run="1", force_filter="APASS/r").json()
    assert (body["survey"], body["band"]) == ("APASS", "r")


def test_duplicate_is_409_naming_the_stored_point(observatory, star_alert, client, media):
    _, hashtag = observatory
    first = api_upload(client, hashtag).json()
    response = api_upload(client, hashtag, mjd="59373.2")
    assert error_code(response, 409) == "duplicate"
    assert response.json()["error"]["existing_id"] == first["id"]
    assert FollowupPoint.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "catalog", "status", "code"),
    [
        ({"event_id": "ivo://nobody/knows"}, DECAM, 404, "unknown_event"),
        ({"mjd": "12"}, DECAM, 400, "bad_input"),
        ({"mjd": "yesterday"}, DECAM, 400, "bad_input"),
        ({"match_dist": "45"}, DECAM, 400, "bad_input"),
        ({"force_filter": "APASS/K"}, DECAM, 400, "bad_input"),
        ({"exp_time": "-3"}, DECAM, 400, "bad_input"),
        ({}, BAD / "binary-garbage.cat", 400, "bad_catalog"),
        ({}, BAD / "missing-magerr-column.cat", 400, "bad_catalog"),
        ({}, DATA / "t90-osn-hd204827-R.ldac.fits", 422, "calibration_failed"),
    ],
)
def test_upload_errors_store_nothing(observatory, star_alert, client, media, fields, catalog, status, code):
    _, hashtag = observatory
    assert error_code(api_upload(client, hashtag, catalog=catalog, **fields), status) == code
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_missing_catalog_and_authentication(observatory, star_alert, client, curator):
    _, hashtag = observatory
    fields = {"event_id": star_alert.ivorn, "mjd": "59373.1"}
    response = client.post("/api/v1/points/", fields, **auth(hashtag))
    assert error_code(response, 400) == "bad_input" and "catalog" in response.json()["error"]["message"]
    assert error_code(api_upload(client, None), 401) == "not_authenticated"
    assert error_code(api_upload(client, "SAAO1m_" + "0" * 32), 401) == "not_authenticated"
    client.force_login(curator)
    assert error_code(api_upload(client, None), 403) == "forbidden"


def test_too_large_is_413(observatory, star_alert, client, settings):
    _, hashtag = observatory
    settings.MAX_UPLOAD_MB = 0.1
    assert error_code(api_upload(client, hashtag), 413) == "too_large"


def test_json_body_is_415(observatory, client):
    _, hashtag = observatory
    response = client.post("/api/v1/points/", {"mjd": 1}, "application/json", **auth(hashtag))
    assert error_code(response, 415) == "unsupported_media_type"


def test_throttles_answer_429_with_retry_after(observatory, client, settings):
    _, hashtag = observatory
    settings.API_THROTTLE_RATES = {"anon": "2/min", "user": "3/min"}
    assert [client.get("/api/v1/surveys/").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/surveys/")
    assert error_code(response, 429) == "throttled" and 1 <= int(response["Retry-After"]) <= 60
    # Authenticated calls count per account, apart from the anonymous ones of the same address.
    statuses = [client.get("/api/v1/surveys/", **auth(hashtag)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_anonymous_calls_are_counted_by_the_anonymous_rate_only(client, settings, db):
    settings.API_THROTTLE_RATES = {"anon": "5/min", "user": "2/min"}
    assert [client.get("/api/v1/surveys/").status_code for _ in range(6)] == [200] * 5 + [429]


def test_wrong_hashtag_lockout_is_429_with_retry_after(observatory, client, settings):
    settings.HASHTAG_FAILURE_LIMIT = 2
    for _ in range(2):
        assert client.get("/api/v1/observatories/me", **auth("nope")).status_code == 401
    response = client.get("/api/v1/observatories/me", **auth("nope"))
    assert error_code(response, 429) == "throttled"
    assert response["Retry-After"] == str(settings.HASHTAG_FAILURE_WINDOW)


@pytest.fixture
def points(asassn14gy, make_observatory, star_alert, client):
    """Three real legacy points of ASASSN-14gy and one DECam point uploaded by observatory A."""
    obs_a, tag_a = make_observatory("A")
    obs_b, tag_b = make_observatory("B")
    uploaded = api_upload(client, tag_a).json()
    return {
        "a": (obs_a, tag_a),
        "b": (obs_b, tag_b),
        "uploaded": uploaded["id"],
        "uploaded_alert": star_alert.pk,
        "legacy": asassn14gy,
    }


def ids(client, query="", hashtag=None) -> list[int]:
    body = client.get(f"/api/v1/points/?{query}", **auth(hashtag)).json()
    return [p["id"] for p in body["results"]]


def test_list_filters(points, client):
    legacy = list(FollowupPoint.objects.filter(alert=points["legacy"]).order_by("mjd", "pk"))
    uploaded = points["uploaded"]
    assert sorted(ids(client)) == sorted([p.pk for p in legacy] + [uploaded])
    assert ids(client, f"alert={points['legacy'].pk}") == [p.pk for p in legacy]
    assert ids(client, "observatory=Observatory A") == [uploaded]
    everything = legacy + [FollowupPoint.objects.get(pk=uploaded)]
    for band in {p.filter for p in everything}:
        assert sorted(ids(client, f"band={band}")) == sorted(p.pk for p in everything if p.filter == band)
    assert ids(client, f"survey=APASS&alert={points['uploaded_alert']}") == [uploaded]
    assert ids(client, "survey=NoSuchSurvey") == []
    assert ids(client, "limits=true") == [p.pk for p in legacy if p.is_limit]
    detections = [p.pk for p in legacy if not p.is_limit] + [uploaded]
    assert sorted(ids(client, "limits=false")) == sorted(detections)
    assert ids(client, "mjd_min=59373.1") == [uploaded] == ids(client, "mjd_min=59000&mjd_max=59373.1")
    assert ids(client, "mjd_max=59373.09") == [p.pk for p in legacy]
    mjd = legacy[0].mjd
    assert ids(client, f"mjd_min={mjd}&mjd_max={mjd}") == [p.pk for p in legacy if p.mjd == mjd]
    assert ids(client, "mjd_min=59373.2") == []
    body = client.get("/api/v1/points/?page_size=2").json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"]
    limit = next(p for p in client.get("/api/v1/points/?limits=true").json()["results"])
    assert limit["is_limit"] and limit["mag_err"] is None
    assert error_code(client.get("/api/v1/points/?mjd_min=early"), 400) == "bad_input"


def test_hidden_points_only_their_owner_sees(points, client):
    (_, tag_a), (_, tag_b) = points["a"], points["b"]
    pk = points["uploaded"]
    assert client.delete(f"/api/v1/points/{pk}/", **auth(tag_a)).status_code == 204
    assert FollowupPoint.objects.get(pk=pk).hidden
    assert pk in ids(client, hashtag=tag_a) and pk not in ids(client, hashtag=tag_b) and pk not in ids(client)
    mine = client.get(f"/api/v1/points/{pk}/", **auth(tag_a))
    assert mine.status_code == 200 and mine.json()["hidden"] is True
    assert error_code(client.get(f"/api/v1/points/{pk}/", **auth(tag_b)), 404) == "not_found"
    assert error_code(client.get(f"/api/v1/points/{pk}/"), 404) == "not_found"
    assert error_code(client.delete(f"/api/v1/points/{pk}/", **auth(tag_b)), 404) == "not_found"


def test_delete_permissions(points, client, curator):
    (_, tag_a), (_, tag_b) = points["a"], points["b"]
    pk = points["uploaded"]
    assert error_code(client.delete(f"/api/v1/points/{pk}/"), 401) == "not_authenticated"
    assert error_code(client.delete(f"/api/v1/points/{pk}/", **auth(tag_b)), 403) == "forbidden"
    assert not FollowupPoint.objects.get(pk=pk).hidden
    legacy = FollowupPoint.objects.filter(alert=points["legacy"]).first()
    assert error_code(client.delete(f"/api/v1/points/{legacy.pk}/", **auth(tag_a)), 403) == "forbidden"
    client.force_login(curator)
    assert client.delete(f"/api/v1/points/{legacy.pk}/").status_code == 204
    assert FollowupPoint.objects.get(pk=legacy.pk).hidden
    assert error_code(client.delete("/api/v1/points/999999/"), 404) == "not_found"


def test_surveys_listing(apass, client):
    body = client.get("/api/v1/surveys/").json()
    [apass_entry] = body["surveys"]
    assert apass_entry["survey"] == "APASS" and apass_entry["stars"] > 1000
    assert set(apass_entry["bands"]) >= {"B", "V", "g", "r", "i"}
    assert 0 < apass_entry["coverage_deg2"] < 10 and 0 < apass_entry["sky_fraction"] < 1e-3
    assert {b["band"]: b["surveys"] for b in body["bands"]}["V"] == ["APASS"]
    assert body["force_filter"][0] == "no" and {"APASS/any", "APASS/V", "any/V"} <= set(body["force_filter"])
    assert "APASS/K" not in body["force_filter"]
    assert apass_entry["covers"] is None


def test_surveys_covering_a_position(apass, client):
    # The APASS extract is the GRB 210605A field around the DECam star; nothing near the pole.
    [here] = client.get(f"/api/v1/surveys/?ra={STAR_RA}&dec={STAR_DEC}").json()["surveys"]
    [there] = client.get("/api/v1/surveys/?ra=10&dec=85").json()["surveys"]
    assert here["covers"] is True and there["covers"] is False
    response = client.get("/api/v1/surveys/?ra=10")
    assert error_code(response, 400) == "bad_input"
    assert "both ra and dec" in response.json()["error"]["message"]
    assert error_code(client.get("/api/v1/surveys/?ra=10&dec=91"), 400) == "bad_input"


def test_observatory_me(observatory, client, curator):
    obs, hashtag = observatory
    body = client.get("/api/v1/observatories/me", **auth(hashtag)).json()
    assert body == {
        "id": obs.pk,
        "name": "SAAO 1m",
        "prefix": "SAAO1m",
        "longitude": pytest.approx(20.8),
        "latitude": pytest.approx(-32.4),
        "altitude": None,
        "filters": ["V", "R"],
        "contact": "",
        "active": True,
        "points": 0,
        "active_hashtags": 1,
    }
    assert hashtag not in client.get("/api/v1/observatories/me", **auth(hashtag)).content.decode()
    assert error_code(client.get("/api/v1/observatories/me"), 401) == "not_authenticated"
    client.force_login(curator)
    assert error_code(client.get("/api/v1/observatories/me"), 404) == "not_found"


@pytest.mark.postgres_only
def test_database_down_is_503(transactional_db, client):
    """A real refused connection (PostgreSQL on a port where nothing listens) answers 503 unavailable."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs a server database (SQLite's test database is in memory)")
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(int(port) + 1)
    try:
        response = client.get("/api/v1/alerts/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert error_code(response, 503) == "unavailable"
    assert client.get("/api/v1/alerts/").status_code == 200
