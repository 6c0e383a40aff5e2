"""The alert list (search by name or alias, cone, sort, pages with a count) and the alert's page."""

import re

import pytest

from alerts.models import Alert, GaiaPoint
from alerts.services import add_alias, merge_alerts, undo_merge
from calibration.models import FollowupPoint
from calibration.services import set_hidden
from tests.conftest import alerts_on_a_line


@pytest.fixture
def many(db):
    """120 alerts on a line of RA, every tenth with an alias."""
    return alerts_on_a_line()


def names_on(body: str) -> list[str]:
    return re.findall(r'<a href="/alerts/\d+/">([^<]+)</a>', body)


def test_list_pages_with_a_count_and_sorts(many, client):
    body = client.get("/list_of_alerts").content.decode()
    assert "120 alerts, page 1 of 3" in body and len(names_on(body)) == 50
    assert names_on(body)[0] == "bench/A119"  # newest first, names without ivo://
    last = client.get("/list_of_alerts?page=3").content.decode()
    assert len(names_on(last)) == 20
    by_ra = names_on(client.get("/list_of_alerts?sort=ra").content.decode())
    assert by_ra[:2] == ["bench/A000", "bench/A001"]
    assert "sort=-ra" in client.get("/list_of_alerts?sort=ra").content.decode()  # click again: the other way
    refused = client.get("/list_of_alerts?sort=password")
    assert refused.status_code == 400 and b"sort must be one of" in refused.content


def test_list_search_by_alias_and_cone(many, client):
    body = client.get("/list_of_alerts", {"q": "2024X01"}).content.decode()
    assert names_on(body) == ["bench/A010"] and "1 alert" in body
    cone = client.get("/list_of_alerts", {"cone": "10.0,10.0,0.6"}).content.decode()
    # RA 9.5, 10.0 and 10.5 lie within 0.6 deg at Dec 10 (0.49 deg on the sky); 9.0 and 11.0 do not.
    assert sorted(names_on(cone)) == ["bench/A019", "bench/A020", "bench/A021"]
    assert client.get("/list_of_alerts", {"cone": "1,2"}).status_code == 400
    # The legacy JSON list is unchanged by the page's parameters.
    assert len(client.get("/list_of_alerts?format=json&num=5").json()) == 5


def test_home_lists_recently_observed_first(asassn14gy, client):
    Alert.objects.create(ivorn="ivo://never-observed", ra=5, dec=5)
    body = client.get("/").content.decode()
    assert "Recently observed" in body and names_on(body) == ["asassn/ASASSN-14gy"]


def test_alert_page_names_position_links_gaia_series_and_upload(db, client):
    alert = Alert.objects.create(ivorn="ivo://Gaia16aye", ra=295.79574, dec=30.07638)
    add_alias(alert, "2016dai")
    GaiaPoint.objects.bulk_create(
        GaiaPoint(alert=alert, jd_tcb=2457600.5 + k, mjd=57600.0 + k, mag=15.5 + 0.1 * k, mag_err=0.005)
        for k in range(3)
    )
    body = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "2016dai" in body and "19:43:10.98" in body and "+30:04:35.0" in body
    assert "https://www.wis-tns.org/object/2016dai" in body
    assert "https://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia16aye/" in body
    assert "3 Gaia transits" in body and "approximate" in body
    assert "Gaia G (alerts; approx. errors)" in body  # its own trace in the figure
    assert "/upload/?EventID=ivo%3A%2F%2FGaia16aye" in body
    assert client.get(f"/alerts/{alert.pk + 1}/").status_code == 404


def test_upload_form_is_filled_for_the_alert(observatory, client):
    _, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    body = client.get("/upload/?EventID=ivo://Gaia16aye").content.decode()
    assert 'value="ivo://Gaia16aye"' in body


def stats(alert_id: int) -> tuple:
    alert = Alert.objects.get(pk=alert_id)
    return alert.nfollowup, alert.latest_mjd, alert.latest_filter, alert.latest_is_limit


def test_latest_point_is_kept_by_every_write_of_points(asassn14gy):
    """Legacy import, hide/restore and merge/undo all keep the stored count and latest point."""
    # Two of the real points share an MJD: the later id is the latest, as the list shows it.
    points = list(FollowupPoint.objects.filter(alert=asassn14gy).order_by("mjd", "pk"))
    newest = points[-1]
    assert stats(25477) == (3, newest.mjd, newest.filter, newest.is_limit)
    set_hidden(newest, True)
    assert stats(25477) == (2, points[-2].mjd, points[-2].filter, points[-2].is_limit)
    set_hidden(newest, False)
    assert stats(25477)[:2] == (3, newest.mjd)
    other = Alert.objects.create(ivorn="ivo://other/ASASSN-14gy-twin", ra=1.0, dec=1.0)
    record = merge_alerts(other, asassn14gy)
    assert stats(other.pk)[:2] == (3, newest.mjd)
    undo_merge(record)
    assert stats(other.pk) == (0, None, "", None) and stats(25477)[:2] == (3, newest.mjd)


def test_list_sorts_by_points_and_latest_with_unobserved_last(asassn14gy, many, client):
    for sort in ("points", "-points"):
        names = names_on(client.get("/list_of_alerts", {"sort": sort}).content.decode())
        assert (names[0] == "asassn/ASASSN-14gy") is sort.startswith("-")
    for sort in ("latest", "-latest"):
        # Whichever way, the only observed alert comes first: never-observed alerts go last.
        assert (
            names_on(client.get("/list_of_alerts", {"sort": sort}).content.decode())[0]
            == "asassn/ASASSN-14gy"
        )
    deep = client.get("/list_of_alerts", {"sort": "name", "page": 3}).content.decode()
    assert "121 alerts, page 3 of 3" in deep and names_on(deep)[-1] == "bench/A119"
    assert "ASASSN-14gy" not in deep  # 'asassn/...' sorts before 'bench/...'
