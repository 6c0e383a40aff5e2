"""The upload: legacy endpoint and web form, storage, dry run, duplicates, errors, deletion, recalibration."""

import io
import json
import subprocess
import threading
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from alerts.models import Alert
from calibration.models import FollowupPoint
from calibration.presenters import error_text
from tests.conftest import DATA, DECAM, STAR_DEC, STAR_G, STAR_G_ERR, STAR_RA

LDAC = DATA / "t90-osn-hd204827-R.ldac.fits"
LEGACY_KEYS = {
    "followup_id": (int, type(None)),
    "mag": float,
    "mag_err": float,
    "ra": float,
    "dec": float,
    "zeropoint": float,
    "outlier_fraction": float,
    "scatter": float,
    "npoints": int,
    "filter": str,
    "survey": str,
    "image_link": (str, type(None)),
}


@pytest.fixture(autouse=True)
def _media(media):
    """Every test here keeps its catalogs in its own temporary MEDIA_ROOT."""


def upload(client, hashtag, path="/cgi/upload", catalog=DECAM, **fields):
    data = {
        "EventID": "ivo://demo/GRB210605A field star",
        "MJD": "59373.1",
        "expTime": "60",
        "matchDist": "2",
        "forceFilter": "no",
        "outputFormat": "json",
        "noPlot": "1",
        "hashtag": hashtag,
    }
    data.update(fields)
    with open(catalog, "rb") as handle:
        data["sexCat"] = handle
        return client.post(path, {k: v for k, v in data.items() if v is not None})


def kept_files(media) -> list[Path]:
    root = Path(media) / "catalogs"
    return [p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts] if root.exists() else []


def test_upload_json_has_the_legacy_keys_and_types(observatory, star_alert, client, media):
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1")
    assert response.status_code == 200, response.content
    body = response.json()
    for key, kind in LEGACY_KEYS.items():
        assert isinstance(body[key], kind), (key, body[key])
    assert body["followup_id"] is None and body["image_link"] is None
    assert body["survey"] == "APASS" and body["filter"] == "g"
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_real_decam_star_agrees_with_apass(observatory, star_alert, client):
    _, hashtag = observatory
    body = upload(client, hashtag, dryRun="1").json()
    total = np.hypot(body["mag_err"], STAR_G_ERR)
    assert abs(body["mag"] - STAR_G) < 3 * total + 0.02, body
    assert body["npoints"] > 150
    assert 0.01 < body["scatter"] < 0.12
    assert abs(body["ra"] - STAR_RA) < 1 / 3600 and abs(body["dec"] - STAR_DEC) < 1 / 3600
    assert 0 < body["mag_err"] < 0.1


def test_stored_upload_keeps_catalog_and_answers_201(observatory, star_alert, client, media):
    obs, hashtag = observatory
    response = upload(client, hashtag, noPlot="0", comment="first night")
    assert response.status_code == 201, response.content
    body = response.json()
    point = FollowupPoint.objects.get(pk=body["followup_id"])
    assert point.observatory == obs and point.alert == star_alert and point.comment == "first night"
    assert point.mag == pytest.approx(body["mag"]) and point.filter == body["filter"]
    assert point.algorithm_version and point.details["stars"]
    files = kept_files(media)
    assert len(files) == 1 and files[0].name == point.catalog_sha256
    import hashlib

    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == point.catalog_sha256
    assert files[0].read_bytes() == DECAM.read_bytes()
    assert body["image_link"].endswith(f"/followup_plot/{point.pk}.png")
    plot = client.get(body["image_link"])
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png" and plot.content[:4] == b"\x89PNG"


def test_dry_run_image_link_is_the_bare_base64_png(observatory, star_alert, client, media):
    """BHTOM's page writes ``data:image/png;base64,{{ image_link }}``: the link must be bare base64."""
    import base64
    import io

    from PIL import Image

    _, hashtag = observatory
    body = upload(client, hashtag, dryRun="1", noPlot="0").json()
    assert not body["image_link"].startswith("data:")
    bhtom_src = "data:image/png;base64," + body["image_link"]
    assert body["image_data_uri"] == bhtom_src
    png = base64.b64decode(bhtom_src.split(",", 1)[1], validate=True)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []
    # A stored point links its plot's URL; no data URI there.
    stored = upload(client, hashtag, noPlot="0").json()
    assert stored["image_link"].startswith("http") and stored["image_data_uri"] is None


def test_html_output_shows_numbers_plot_and_lightcurve_link(observatory, star_alert, client):
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1", outputFormat="html", noPlot="0")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Dry run: nothing stored" in page and "APASS/g" in page
    assert "calibration-figure" in page and "plotly" in page
    assert f"alert_id={star_alert.pk}" in page


def test_followup_prefix_and_ldac_catalog(observatory, apass, client):
    _, hashtag = observatory
    Alert.objects.create(ivorn="ivo://elsewhere", ra=322.25, dec=58.75)
    response = upload(
        client, hashtag, path="/followup/cgi/upload", catalog=LDAC, EventID="ivo://elsewhere", dryRun="1"
    )
    # The APASS extract does not cover the T90 field: a clear 422, nothing stored.
    assert response.status_code == 422
    assert "reference" in response.content.decode().lower() or "outside" in response.content.decode().lower()


def test_duplicates_are_refused_with_the_existing_id(observatory, star_alert, client, media):
    _, hashtag = observatory
    first = upload(client, hashtag).json()["followup_id"]
    again = upload(client, hashtag)
    assert again.status_code == 409
    assert str(first) in again.content.decode()
    # Same image at another MJD is still the same catalog for this alert.
    other_mjd = upload(client, hashtag, MJD="59374.2")
    assert other_mjd.status_code == 409
    assert FollowupPoint.objects.count() == 1 and len(kept_files(media)) == 1
    # A dry run of a stored point is fine (it stores nothing).
    assert upload(client, hashtag, dryRun="1").status_code == 200


def test_same_mjd_and_band_from_another_catalog_is_a_duplicate(
    observatory, star_alert, client, tmp_path, media
):
    _, hashtag = observatory
    assert upload(client, hashtag).status_code == 201
    modified = tmp_path / "copy.cat"
    modified.write_bytes(DECAM.read_bytes() + b"\n")
    response = upload(client, hashtag, catalog=modified)
    assert response.status_code == 409
    assert FollowupPoint.objects.count() == 1 and len(kept_files(media)) == 1


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"EventID": "ivo://nope"}, 404, "Unknown event"),
        ({"MJD": None}, 400, "MJD"),
        ({"MJD": "abc"}, 400, "MJD"),
        ({"MJD": "1e9"}, 400, "MJD"),
        ({"expTime": "-5"}, 400, "expTime"),
        ({"matchDist": "500"}, 400, "matchDist"),
        ({"dryRun": "maybe"}, 400, "dryRun"),
        ({"outputFormat": "xml"}, 400, "outputFormat"),
        ({"forceFilter": "APASS/Q"}, 400, "unknown band 'Q'"),
        ({"forceFilter": "garbage"}, 400, "forceFilter"),
        ({"hashtag": "SAAO1m_" + "0" * 32}, 401, "hashtag"),
        ({"hashtag": None}, 401, "hashtag"),
    ],
)
def test_errors_are_one_line_and_store_nothing(observatory, star_alert, client, media, fields, status, words):
    fields = dict(fields)
    hashtag = fields.pop("hashtag", observatory[1])
    response = upload(client, hashtag, **fields)
    if status is None:
        assert response.status_code in (400, 422)
    else:
        assert response.status_code == status
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert body.count("\n") == 1 and len(body) < 100
    assert words.lower() in body.lower(), body
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_bad_catalog_is_400_and_stores_nothing(observatory, star_alert, client, tmp_path, media):
    _, hashtag = observatory
    garbage = tmp_path / "garbage.cat"
    garbage.write_bytes(b"\x00\x01\x02 not a catalog at all \xff" * 50)
    response = upload(client, hashtag, catalog=garbage)
    assert response.status_code == 400
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_missing_catalog_field_is_400(observatory, star_alert, client):
    _, hashtag = observatory
    response = client.post("/cgi/upload", {"EventID": star_alert.ivorn, "MJD": "59373.1", "hashtag": hashtag})
    assert response.status_code == 400 and "sexCat" in response.content.decode()


def test_too_large_upload_is_413(observatory, star_alert, client, settings, media):
    _, hashtag = observatory
    settings.MAX_UPLOAD_MB = 0.5
    response = upload(client, hashtag)
    assert response.status_code == 413
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


def test_curator_without_observatory_cannot_upload(curator, star_alert, client):
    client.force_login(curator)
    response = upload(client, None)
    assert response.status_code in (401, 403)


def test_alert_outside_the_catalog_field_is_422(observatory, apass, client):
    _, hashtag = observatory
    Alert.objects.create(ivorn="ivo://far away", ra=200.0, dec=10.0)
    response = upload(client, hashtag, EventID="ivo://far away")
    assert response.status_code == 422 and "outside" in response.content.decode()


def test_non_detection_gives_an_upper_limit(observatory, apass, client):
    _, hashtag = observatory
    # An empty patch of sky inside the frame (no source within 10").
    Alert.objects.create(ivorn="ivo://nothing here", ra=24.2, dec=-48.75)
    body = upload(client, hashtag, EventID="ivo://nothing here", dryRun="1", matchDist="-1").json()
    assert body["mag_err"] == -1.0 and body["is_limit"] is True
    assert 20 < body["mag"] < 27


def test_stored_limit(observatory, apass, client):
    _, hashtag = observatory
    Alert.objects.create(ivorn="ivo://nothing here", ra=24.2, dec=-48.75)
    response = upload(client, hashtag, EventID="ivo://nothing here")
    assert response.status_code == 201
    point = FollowupPoint.objects.get()
    assert point.is_limit and point.mag_err == -1


def test_delpoint_owner_curator_and_others(make_observatory, star_alert, client, curator):
    owner, owner_tag = make_observatory("OWN")
    other, other_tag = make_observatory("OTH")
    pk = upload(client, owner_tag).json()["followup_id"]
    refused = client.post("/cgi/delpoint", {"followupid": pk, "hashtag": other_tag})
    assert refused.status_code == 403
    assert not FollowupPoint.objects.get(pk=pk).hidden
    assert client.post("/cgi/delpoint", {"followupid": "x", "hashtag": owner_tag}).status_code == 400
    assert client.post("/cgi/delpoint", {"followupid": 999999, "hashtag": owner_tag}).status_code == 404
    assert client.post("/cgi/delpoint", {"followupid": pk}).status_code == 401
    done = client.post("/cgi/delpoint", {"followupid": pk, "hashtag": owner_tag, "outputFormat": "json"})
    assert done.status_code == 200 and done.json() == {"followup_id": pk, "hidden": True}
    assert FollowupPoint.objects.get(pk=pk).hidden
    # Hidden points do not block a new upload of the same data.
    again = upload(client, owner_tag)
    assert again.status_code == 201
    client.force_login(curator)
    response = client.post(
        "/cgi/delpoint", {"followupid": again.json()["followup_id"], "outputFormat": "json"}
    )
    assert response.status_code == 200


def test_list_of_followups(make_observatory, star_alert, client):
    _, tag_a = make_observatory("AAA")
    _, tag_b = make_observatory("BBB")
    pk = upload(client, tag_a).json()["followup_id"]
    assert client.get("/list_of_followups").status_code == 401
    mine = json.loads(client.get(f"/list_of_followups?format=json&hashtag={tag_a}").content)
    assert [row["followup_id"] for row in mine] == [pk]
    assert json.loads(client.get(f"/list_of_followups?format=json&hashtag={tag_b}").content) == []
    page = client.get(f"/list_of_followups?hashtag={tag_a}")
    assert page.status_code == 200 and str(pk).encode() in page.content


def test_recalibrate_command_records_old_and_new(observatory, star_alert, client):
    _, hashtag = observatory
    pk = upload(client, hashtag).json()["followup_id"]
    point = FollowupPoint.objects.get(pk=pk)
    star_alert.refresh_from_db()
    # The upload stored the alert's latest point and count (what the alert list sorts by).
    assert (star_alert.nfollowup, star_alert.latest_mjd, star_alert.latest_mag) == (1, point.mjd, point.mag)
    FollowupPoint.objects.filter(pk=pk).update(mag=99.0, algorithm_version="old")
    Alert.objects.filter(pk=star_alert.pk).update(latest_mag=99.0)
    out = StringIO()
    call_command("recalibrate", "--alert", star_alert.ivorn, stdout=out)
    assert "1 recalibrated" in out.getvalue()
    point = FollowupPoint.objects.get(pk=pk)
    assert abs(point.mag - STAR_G) < 0.1
    star_alert.refresh_from_db()
    assert star_alert.latest_mag == point.mag and star_alert.latest_filter == point.filter
    history = point.details["history"]
    assert history[-1]["old"]["mag"] == 99.0 and history[-1]["old"]["algorithm_version"] == "old"


def test_admin_finds_shows_and_cleans_points(observatory, star_alert, client, curator, media):
    _, hashtag = observatory
    pk = upload(client, hashtag, noPlot="0").json()["followup_id"]
    client.force_login(curator)
    base = "/admin/calibration/followuppoint/"
    assert f"{base}{pk}/change/" in client.get(base, {"q": "GRB210605A"}).content.decode()
    assert f"{base}{pk}/change/" not in client.get(base, {"q": "Gaia16aye"}).content.decode()
    filtered = client.get(base, {"filter__exact": "g", "hidden__exact": "0"})
    assert f"{base}{pk}/change/" in filtered.content.decode()
    page = client.get(f"{base}{pk}/change/").content.decode()
    assert f'src="/followup_plot/{pk}.png"' in page and f"{base}{pk}/catalog/" in page
    plot = client.get(f"/followup_plot/{pk}.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    download = client.get(f"{base}{pk}/catalog/")
    assert b"".join(download.streaming_content) == DECAM.read_bytes()

    def act(action):
        response = client.post(base, {"action": action, "_selected_action": [pk]}, follow=True)
        assert response.status_code == 200
        return FollowupPoint.objects.get(pk=pk)

    assert act("hide").hidden
    assert not client.get(f"/get_alert_lc_data?alert_id={star_alert.pk}").json()["id"]
    assert not act("unhide").hidden
    assert client.get(f"/get_alert_lc_data?alert_id={star_alert.pk}").json()["id"] == [pk]
    FollowupPoint.objects.filter(pk=pk).update(mag=99.0)
    assert abs(act("recalibrate").mag - STAR_G) < 0.1


def test_web_form_upload(observatory, star_alert, client, media):
    _, hashtag = observatory
    assert client.get("/upload/").status_code == 302
    client.post("/login/", {"hashtag": hashtag})
    assert client.get("/upload/").status_code == 200
    with open(DECAM, "rb") as handle:
        response = client.post(
            "/upload/",
            {
                "EventID": star_alert.ivorn,
                "MJD": "59373.1",
                "expTime": "60",
                "matchDist": "auto",
                "forceFilter": "no",
                "sexCat": handle,
            },
        )
    assert response.status_code == 201
    assert b"Stored as follow-up" in response.content
    assert FollowupPoint.objects.count() == 1


def test_web_form_shows_errors(observatory, star_alert, client, media):
    _, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    with open(DECAM, "rb") as handle:
        response = client.post("/upload/", {"EventID": "ivo://unknown", "MJD": "59373.1", "sexCat": handle})
    assert response.status_code == 404 and b"Unknown event" in response.content
    assert FollowupPoint.objects.count() == 0 and kept_files(media) == []


@pytest.mark.live
def test_the_literal_legacy_curl_command(observatory, star_alert, live_server, tmp_path):
    _, hashtag = observatory
    (tmp_path / "test.cat").write_bytes(DECAM.read_bytes())
    command = (
        f"curl -s -F matchDist=2 -F EventID='ivo://demo/GRB210605A field star' "
        f'-F sexCat="@test.cat;filename=test.cat" -F "hashtag={hashtag}" -F "MJD=59373.1" -F expTime=60 '
        f"-F noPlot=1 -F forceFilter=no -F dryRun=1 -F outputFormat=json {live_server.url}/cgi/upload"
    )
    result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    body = json.loads(result.stdout)
    assert abs(body["mag"] - STAR_G) < 0.1 and body["followup_id"] is None
    stored = subprocess.run(
        command.replace("dryRun=1", "dryRun=0"),
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(stored.stdout)["followup_id"] == FollowupPoint.objects.get().pk


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_identical_uploads_store_one(make_observatory, apass, media):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")
    from django.test import Client

    Alert.objects.create(ivorn="ivo://demo/GRB210605A field star", ra=STAR_RA, dec=STAR_DEC)
    _, hashtag = make_observatory("RACE")
    statuses = []
    barrier = threading.Barrier(2)

    def send():
        barrier.wait()
        try:
            statuses.append(upload(Client(), hashtag).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
    assert FollowupPoint.objects.count() == 1 and len(kept_files(media)) == 1


def test_one_catalog_is_stored_once_per_band(observatory, star_alert, client, tmp_path, media):
    """Observers force each band in turn on one frame; the old server kept every such pair."""
    _, hashtag = observatory
    g = upload(client, hashtag, forceFilter="APASS/g")
    r = upload(client, hashtag, forceFilter="APASS/r")
    assert (g.status_code, r.status_code) == (201, 201), r.content
    points = {p.filter: p for p in FollowupPoint.objects.all()}
    assert set(points) == {"g", "r"} and len(kept_files(media)) == 1
    assert points["r"].catalog_sha256 == points["g"].catalog_sha256
    # The same catalog in a band it holds already: 409 naming the point of that band.
    again = upload(client, hashtag, forceFilter="APASS/r", MJD="59374.2")
    assert again.status_code == 409
    assert again.content.decode() == f"Duplicate: follow-up {points['r'].pk} holds this point in APASS/r.\n"
    automatic = upload(client, hashtag)
    assert automatic.status_code == 409 and f"follow-up {points['g'].pk} " in automatic.content.decode()
    # Another catalog of the same night and band from the same observatory is the same point.
    other = tmp_path / "other.cat"
    other.write_bytes(DECAM.read_bytes() + b"\n")
    same_night = upload(client, hashtag, catalog=other, forceFilter="APASS/r")
    assert same_night.status_code == 409 and f"follow-up {points['r'].pk} " in same_night.content.decode()
    assert FollowupPoint.objects.count() == 2 and len(kept_files(media)) == 1


@pytest.mark.django_db(transaction=True)
def test_database_allows_a_catalog_once_per_band(observatory, star_alert, client):
    from django.db import IntegrityError, transaction

    _, hashtag = observatory
    assert upload(client, hashtag, forceFilter="APASS/g").status_code == 201
    point = FollowupPoint.objects.get()
    copy = {f.attname: getattr(point, f.attname) for f in point._meta.concrete_fields if not f.primary_key}
    FollowupPoint.objects.create(**{**copy, "filter": "r", "mjd": point.mjd + 1})
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowupPoint.objects.create(**{**copy, "mjd": point.mjd + 2})


def test_exptime_zero_means_unknown(observatory, star_alert, client):
    """VaST's send_image_to_CPCS.sh sends expTime=0 when it cannot read the exposure."""
    _, hashtag = observatory
    response = upload(client, hashtag, expTime="0")
    assert response.status_code == 201, response.content
    assert FollowupPoint.objects.get().exptime is None
    negative = upload(client, hashtag, expTime="-0.5", MJD="59374.2")
    assert negative.status_code == 400 and b"expTime" in negative.content


def test_any_band_that_leaves_one_survey_is_forced(observatory, star_alert, client):
    """any/V in a field only APASS covers gives the answer APASS/V gives, not a 422."""
    _, hashtag = observatory
    forced = upload(client, hashtag, forceFilter="APASS/V", dryRun="1")
    anyv = upload(client, hashtag, forceFilter="any/V", dryRun="1")
    assert forced.status_code == 200, forced.content
    assert anyv.status_code == 200, anyv.content
    a, b = forced.json(), anyv.json()
    assert (b["survey"], b["filter"]) == ("APASS", "V")
    assert b["mag"] == a["mag"] and b["mag_err"] == a["mag_err"]
    assert "forced_band_failed_guards" in a["flags"] and b["flags"] == a["flags"]
    assert upload(client, hashtag, forceFilter="APASS/any", dryRun="1").json()["filter"] == "g"


def test_stored_errors_are_counted_once_in_every_light_curve_output(observatory, star_alert, client):
    """magerr is the statistical part everywhere; the upload's mag_err is the total."""
    from astropy.io import votable
    from astropy.table import Table

    _, hashtag = observatory
    answer = upload(client, hashtag).json()
    stat, calib, total = answer["mag_err_stat"], answer["calib_err"], answer["mag_err"]
    assert total == pytest.approx(np.hypot(stat, calib)) and calib > 0
    point = FollowupPoint.objects.get()
    assert (point.mag_err, point.calib_err) == (pytest.approx(stat), pytest.approx(calib))
    assert point.total_err == pytest.approx(total)

    query = f"alert_id={star_alert.pk}"
    legacy = client.get(f"/get_alert_lc_data?{query}").json()
    assert legacy["magerr"] == [pytest.approx(stat)] and legacy["caliberr"] == [pytest.approx(calib)]
    api = client.get(f"/api/v1/alerts/{star_alert.pk}/lightcurve/").json()
    row = api["points"][0] if "points" in api else api[0]
    assert (row["mag_err"], row["calib_err"]) == (pytest.approx(stat), pytest.approx(calib))
    detail = client.get(f"/api/v1/points/{point.pk}/").json()
    assert (detail["mag_err"], detail["calib_err"]) == (pytest.approx(stat), pytest.approx(calib))
    assert detail["total_err"] == pytest.approx(total)
    csv = client.get(f"/get_alert_lc_data?{query}&format=csv").content.decode()
    row = Table.read(csv, format="ascii.csv")[0]
    assert (row["magerr"], row["caliberr"]) == (pytest.approx(stat), pytest.approx(calib))
    xml = client.get(f"/get_alert_lc_data?{query}&format=votable").content
    table = votable.parse_single_table(io.BytesIO(xml))
    assert float(table.array["magerr"][0]) == pytest.approx(stat, rel=1e-6)
    mine = client.get("/list_of_followups", {"format": "json", "hashtag": hashtag}).json()[0]
    assert mine["mag_err"] == pytest.approx(stat) and mine["total_err"] == pytest.approx(total)
    page = client.get(f"/followup_point/{point.pk}/").content.decode()
    # Errors as people write them: a statistical error of 0.0004 is not shown as 0.000.
    shown = f"{error_text(stat)} / {error_text(calib)} mag"
    assert f"± {total:.3f}" in page and shown in page and float(error_text(stat)) > 0


def test_unknown_extra_fields_are_ignored(observatory, star_alert, client):
    """BHTOM sends fits_id with every upload; the contract says unknown fields are ignored."""
    _, hashtag = observatory
    response = upload(client, hashtag, fits_id="4711", observatory_name="x", dryRun="1")
    assert response.status_code == 200, response.content
