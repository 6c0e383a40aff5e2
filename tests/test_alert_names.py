"""One object under many names: aliases accepted wherever an IVORN is, the 1.5" neighbour check, merges."""

import json

import pytest

from alerts.models import Alert, AlertMerge, Alias
from alerts.services import add_alias, create_alert, import_legacy_alerts, merge_alerts, undo_merge
from calibration.models import FollowupPoint
from gsafollowup.errors import BadInput, Duplicate, Forbidden, NearbyAlert
from tests.conftest import LEGACY, import_legacy_lightcurve

ENTRIES = json.loads((LEGACY / "list_of_alerts.json").read_text())


@pytest.fixture
def twins(db):
    """The real legacy pair: one object under two ids (ASASSN-14fv and ASASSN14fv)."""
    import_legacy_alerts(
        [e for e in ENTRIES if e["ivorn"] in ("ivo://asassn/ASASSN-14fv", "ivo://asassn/ASASSN14fv")]
    )
    return Alert.objects.get(ivorn="ivo://asassn/ASASSN-14fv"), Alert.objects.get(
        ivorn="ivo://asassn/ASASSN14fv"
    )


def test_the_legacy_list_holds_the_twins_one_position_apart_by_far_less_than_1_5_arcsec(twins):
    from alerts.selectors import angular_distance_deg

    a, b = twins
    assert angular_distance_deg(a.ra, a.dec, b.ra, b.dec) * 3600 < 1.5


def test_an_alias_finds_the_alert_in_every_lookup(alert, client):
    add_alias(alert, "2016blz")
    add_alias(alert, "ZTF16aaaaaaa", Alias.Source.SURVEY)
    # get_alert_lc_data by alert_name: the legacy body echoes the IVORN, as for an IVORN.
    body = client.get("/get_alert_lc_data", {"alert_name": "2016blz"}).json()
    assert body["alert_name"] == "ivo://Gaia16aye"
    # Aliases match by twin key: case and the TNS prefix do not matter.
    for name in ("ztf16AAAAAAA", "SN 2016blz", "AT2016blz", " 2016blz "):
        assert client.get("/get_alert_lc", {"alert_name": name}).status_code == 200, name
    assert client.get("/get_alert_lc", {"alert_name": "2016bl"}).status_code == 404
    rows = client.get("/api/v1/alerts/", {"search": "ztf16aa"}).json()["results"]
    assert [r["id"] for r in rows] == [alert.pk] and rows[0]["aliases"] == ["2016blz", "ZTF16aaaaaaa"]


def test_an_alias_is_an_event_id_for_uploads(alert):
    from calibration.services import find_alert

    add_alias(alert, "2016blz")
    assert find_alert("2016blz") == alert and find_alert("ivo://Gaia16aye") == alert
    assert find_alert("Gaia16aye") == alert  # the bare name of an ivo:// IVORN


def test_a_name_of_one_alert_cannot_become_another_alert_or_alias(alert, observatory, client):
    _, hashtag = observatory
    add_alias(alert, "2016blz")
    other = Alert.objects.create(ivorn="ivo://other", ra=10, dec=10)
    for name in ("2016blz", "2016BLZ", "ivo://Gaia16aye", "gaia16aye"):
        with pytest.raises(Duplicate, match=r"Gaia16aye \(id"):
            add_alias(other, name)
    # Legacy newevent: 409 naming the existing alert, nothing created.
    response = client.post(
        "/cgi/newevent", {"EventID": "2016blz", "ra": "50", "dec": "5", "hashtag": hashtag}
    )
    assert response.status_code == 409 and "ivo://Gaia16aye" in response.content.decode()
    assert Alert.objects.count() == 2
    assert add_alias(alert, "2016blz") is None  # already its name: nothing changes


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "missing"), ("a\u200bb", "invisible"), ("x" * 300, "longer"), ("ZTF1, ZTF2", "one name")],
)
def test_hostile_aliases_are_refused(alert, name, message):
    with pytest.raises(BadInput, match=message):
        add_alias(alert, name)
    assert not Alias.objects.exists()


def test_a_new_alert_within_1_5_arcsec_is_offered_as_an_alias(alert, observatory, client):
    _, hashtag = observatory
    near = {"ra": alert.ra + 0.8 / 3600, "dec": alert.dec}
    with pytest.raises(NearbyAlert) as refused:
        create_alert(ivorn="ivo://ZTF16near", **near)
    assert refused.value.existing_id == alert.pk and "alias" in refused.value.message
    response = client.post(
        "/api/v1/alerts/",
        {"ivorn": "ivo://ZTF16near", **near},
        "application/json",
        HTTP_AUTHORIZATION=f"Hashtag {hashtag}",
    )
    error = response.json()["error"]
    assert response.status_code == 409
    assert (error["code"], error["existing_id"], error["suggest"]) == ("nearby_alert", alert.pk, "alias")
    legacy = client.post("/cgi/newevent", {"EventID": "ivo://ZTF16near", "hashtag": hashtag, **near})
    assert legacy.status_code == 409 and "ivo://Gaia16aye" in legacy.content.decode()
    # 2" away is another object; separate=1 creates one even closer.
    create_alert(ivorn="ivo://two-arcsec", ra=alert.ra, dec=alert.dec + 2 / 3600)
    created = client.post(
        "/cgi/newevent", {"EventID": "ivo://ZTF16near", "hashtag": hashtag, "separate": "1", **near}
    )
    assert created.status_code == 201


def test_a_curator_adds_the_suggested_alias_through_the_api(alert, curator_hashtag, observatory, client):
    _, hashtag = observatory
    url = f"/api/v1/alerts/{alert.pk}/aliases/"
    assert client.post(url, {"name": "ZTF16near"}, HTTP_AUTHORIZATION=f"Hashtag {hashtag}").status_code == 403
    answer = client.post(url, {"name": "ZTF16near"}, HTTP_AUTHORIZATION=f"Hashtag {curator_hashtag}")
    assert answer.status_code == 201 and answer.json()["aliases"] == ["ZTF16near"]
    again = client.post(url, {"name": "ztf16near"}, HTTP_AUTHORIZATION=f"Hashtag {curator_hashtag}")
    assert again.status_code == 200 and Alias.objects.count() == 1


def test_merge_moves_points_and_names_and_undo_restores_them(db):
    import_legacy_lightcurve(25477)  # ASASSN-14gy with three real points
    real = Alert.objects.get(pk=25477)
    twin = Alert.objects.create(ivorn="ivo://asassn/ASASSN14gy", ra=real.ra, dec=real.dec)
    points = list(FollowupPoint.objects.filter(alert=real).values_list("pk", flat=True))
    add_alias(real, "2014xyz")
    # Keep the new twin, merge the one with the points into it: points and the alias move.
    record = merge_alerts(twin, real)
    assert not Alert.objects.filter(pk=25477).exists()
    assert sorted(FollowupPoint.objects.filter(alert=twin).values_list("pk", flat=True)) == sorted(points)
    assert set(twin.aliases.values_list("name", flat=True)) == {"2014xyz", "ivo://asassn/ASASSN-14gy"}
    from calibration.services import find_alert

    assert find_alert("ivo://asassn/ASASSN-14gy") == twin  # old scripts keep working
    assert record.moved["points"] == points
    restored = undo_merge(record)
    assert restored.pk == 25477 and restored.ivorn == "ivo://asassn/ASASSN-14gy"
    assert (restored.ra, restored.dec, restored.published) == (real.ra, real.dec, real.published)
    assert sorted(FollowupPoint.objects.filter(alert=restored).values_list("pk", flat=True)) == sorted(points)
    assert list(restored.aliases.values_list("name", flat=True)) == ["2014xyz"]
    assert not twin.aliases.exists() and AlertMerge.objects.get().undone is not None
    with pytest.raises(BadInput, match="undone already"):
        undo_merge(record)


def test_merge_refuses_to_store_one_measurement_twice(db, make_observatory):
    obs, _ = make_observatory()
    a = Alert.objects.create(ivorn="ivo://a", ra=1, dec=1)
    b = Alert.objects.create(ivorn="ivo://b", ra=1, dec=1)
    for alert in (a, b):
        FollowupPoint.objects.create(
            alert=alert,
            observatory=obs,
            mjd=60000.5,
            filter="V",
            survey="APASS",
            mag=15.0,
            mag_err=0.01,
            calib_err=0.01,
            catalog_sha256="ab" * 32,
        )
    with pytest.raises(Forbidden, match="same measurement"):
        merge_alerts(a, b)
    assert Alert.objects.count() == 2 and not AlertMerge.objects.exists()


def test_admin_merge_and_undo(twins, curator, client):
    keep, other = twins
    # A real login: force_login has no client address, which django-axes cannot store on PostgreSQL.
    login = client.post("/admin/login/", {"username": "curator", "password": "a-long-curator-password"})
    assert login.status_code == 302
    changelist = "/admin/alerts/alert/"
    picked = {"action": "merge", "_selected_action": [keep.pk, other.pk]}
    page = client.post(changelist, picked)
    assert page.status_code == 200 and b"Keep:" in page.content
    done = client.post(changelist, {**picked, "apply": "1", "keep": keep.pk}, follow=True)
    assert b"Merged ivo://asassn/ASASSN14fv into ivo://asassn/ASASSN-14fv" in done.content
    assert list(Alert.objects.values_list("pk", flat=True)) == [keep.pk]
    record = AlertMerge.objects.get()
    assert record.merged_by == curator
    undone = client.post(
        "/admin/alerts/alertmerge/", {"action": "undo", "_selected_action": [record.pk]}, follow=True
    )
    assert b"Restored ivo://asassn/ASASSN14fv" in undone.content
    assert Alert.objects.count() == 2 and not Alias.objects.exists()
