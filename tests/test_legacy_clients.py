"""Real client programs of the old server, run against a live server on 127.0.0.1.

Archive harvesters written with mechanize open the home page, follow the link "Login", fill the
first form's hashtag and read their follow-ups. TOM systems (BHTOM) register an instrument with
POST /cgi/newuser and a curator's hashtag, then upload with the hashtag it answers.
"""

import json
import subprocess

import mechanize
import pytest
import requests

from calibration.models import FollowupPoint
from tests.conftest import DECAM
from tests.stack import curl_upload

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


def curl_newuser(url: str, **fields) -> tuple[int, str]:
    """POST /cgi/newuser with the real curl, as a shell script of a TOM would; (status, body)."""
    command = ["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"]
    for name, value in fields.items():
        command += ["--form-string", f"{name}={value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=90)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_a_tom_registers_an_instrument_with_curl_and_uploads_with_its_hashtag(
    live_server, curator_hashtag, star_alert, media, tmp_path
):
    fields = {"obsName": "BHTOM Test 0.5m", "lon": "20.81", "lat": "-32.38", "allow_upload": "1"}
    status, body = curl_newuser(
        f"{live_server.url}/followup/cgi/newuser", **fields, prefix="BHT05", hashtag=curator_hashtag
    )
    assert status == 200 and body.count("\n") == 1, body
    hashtag = body.strip().rsplit(": ", 1)[1]
    # The instrument's first upload with the answered hashtag, the legacy curl line.
    status, answer = curl_upload(
        live_server.url + "/followup", hashtag, DECAM, 59373.1, ivorn=star_alert.ivorn
    )
    assert status == 201, answer
    assert FollowupPoint.objects.get().observatory.prefix == "BHT05"
    # Registering the same prefix again is a conflict, and stores nothing.
    status, body = curl_newuser(
        f"{live_server.url}/cgi/newuser",
        **{**fields, "obsName": "Another"},
        prefix="BHT05",
        hashtag=curator_hashtag,
    )
    assert status == 409 and body == "The prefix BHT05 is in use already.\n"


def test_newuser_over_requests_refuses_an_observatory_hashtag_and_bad_coordinates(
    live_server, curator_hashtag, observatory
):
    _, observer = observatory
    data = {"obsName": "TOM 1m", "lon": "10", "lat": "95", "allow_upload": "0", "prefix": "TOM1m"}
    refused = requests.post(f"{live_server.url}/cgi/newuser", {**data, "hashtag": observer}, timeout=30)
    assert (
        refused.status_code == 403
        and refused.text == "Only a curator's hashtag may register an observatory.\n"
    )
    bad = requests.post(
        f"{live_server.url}/followup/cgi/newuser", {**data, "hashtag": curator_hashtag}, timeout=30
    )
    assert bad.status_code == 400 and bad.text == "lat must be between -90 and 90 degrees.\n"
    created = requests.post(
        f"{live_server.url}/followup/cgi/newuser",
        {**data, "lat": "45", "hashtag": curator_hashtag},
        timeout=30,
    )
    assert created.status_code == 200 and created.text.startswith("Created observatory TOM1m (inactive")
    assert created.text.rstrip("\n").rsplit(": ", 1)[1].startswith("TOM1m_")
