"""Real client programs of the old server, run against a live server on 127.0.0.1.

Archive harvesters written with mechanize open the home page, follow the link "Login", fill the
first form's hashtag and read their follow-ups.
"""

import json

import mechanize
import pytest

from calibration.models import FollowupPoint

pytestmark = pytest.mark.live


def stored_point(observatory, alert) -> FollowupPoint:
    return FollowupPoint.objects.create(
        alert=alert, observatory=observatory, mjd=57500.25, filter="V", survey="APASS", mag=14.2, mag_err=0.03
    )


def harvester() -> mechanize.Browser:
    """A mechanize browser as harvesting scripts set it up (no robots.txt, no refresh handling)."""
    browser = mechanize.Browser()
    browser.set_handle_robots(False)
    browser.set_handle_refresh(False)
    return browser


@pytest.mark.parametrize("prefix", ["/followup/", "/"])
def test_a_mechanize_harvester_logs_in_through_the_login_link(live_server, observatory, alert, prefix):
    obs, hashtag = observatory
    point = stored_point(obs, alert)
    browser = harvester()
    browser.open(live_server.url + prefix)
    browser.follow_link(text="Login")
    assert browser.geturl() == f"{live_server.url}{prefix}login/"
    browser.select_form(nr=0)
    browser.form["hashtag"] = hashtag
    browser.submit()
    assert browser.response().code == 200 and b"Logged in as SAAO 1m" in browser.response().read()
    listed = browser.open(f"{live_server.url}{prefix}list_of_followups?format=json")
    rows = json.loads(listed.read())
    assert [row["followup_id"] for row in rows] == [point.pk]
    page = browser.open(f"{live_server.url}{prefix}list_of_followups").read().decode()
    assert f"{point.pk}" in page and "SAAO 1m" in page
    # Logged in, the page offers "Log out" instead of the link.
    browser.open(live_server.url + prefix)
    with pytest.raises(mechanize.LinkNotFoundError):
        browser.find_link(text="Login")


def test_a_wrong_hashtag_through_the_login_link_gives_no_session(live_server, observatory):
    browser = harvester()
    browser.open(live_server.url + "/followup/")
    browser.follow_link(text="Login")
    browser.select_form(nr=0)
    browser.form["hashtag"] = "SAAO1m_" + "0" * 32
    browser.submit()
    assert b"Unknown or revoked hashtag" in browser.response().read()
    with pytest.raises(mechanize.HTTPError) as refused:
        browser.open(live_server.url + "/followup/list_of_followups")
    assert refused.value.code == 401
