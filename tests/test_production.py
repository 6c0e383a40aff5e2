"""The production configuration on 127.0.0.1: gunicorn, PostgreSQL, DEBUG off, whitenoise.

A real curl runs the legacy upload with the real DECam catalog, then the light curve is
fetched; static files, the error pages and the access log are checked as a visitor sees them.
"""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.stack import DECAM, ROOT, curl_upload, http_get, json_or_text, production_stack

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def stack():
    with production_stack(workers=2) as running:
        yield running


def test_the_legacy_curl_upload_stores_a_point_and_the_light_curve_shows_it(stack):
    status, body = curl_upload(stack.url, stack.hashtag, DECAM, 59373.1)
    assert status == 201, body
    answer = json_or_text(body)
    assert answer["filter"] == "g" and abs(answer["mag"] - 15.291) < 0.1
    followup_id = answer["followup_id"]
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint WHERE id = %s", (followup_id,)) == [(1,)]

    status, _, data = http_get(f"{stack.url}/get_alert_lc_data?alert_id={stack.alert_id()}")
    assert status == 200
    assert f"{answer['mag']:.3f}"[:6] in data.decode()
    status, _, page = http_get(f"{stack.url}/followup/get_alert_lc?alert_id={stack.alert_id()}")
    assert status == 200 and b"GRB210605A-field-star" in page

    # The same upload again is a duplicate, answered in the legacy plain-text format.
    status, body = curl_upload(stack.url, stack.hashtag, DECAM, 59373.1)
    assert status == 409 and f"follow-up {followup_id}" in body


def test_a_dry_run_through_the_followup_prefix_stores_nothing(stack):
    before = stack.sql("SELECT count(*) FROM calibration_followuppoint")
    status, body = curl_upload(stack.url + "/followup", stack.hashtag, DECAM, 59374.2, dry_run=True)
    assert status == 200, body
    assert json_or_text(body)["filter"] == "g"
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint") == before


def test_static_files_are_served_by_whitenoise_with_hashed_names(stack):
    status, _, page = http_get(stack.url + "/")
    assert status == 200
    stylesheet = re.search(rb'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, "the page links the hashed stylesheet of the manifest storage"
    status, headers, css = http_get(stack.url + stylesheet.group(1).decode())
    assert status == 200 and headers["Content-Type"].startswith("text/css") and css
    assert "immutable" in headers["Cache-Control"]


def test_debug_is_off_and_errors_show_no_traceback(stack):
    status, _, body = http_get(stack.url + "/no/such/page")
    assert status == 404
    assert b"URLconf" not in body and b"Traceback" not in body
    status, _, body = http_get(stack.url + "/get_alert_lc_data?alert_id=999999999")
    assert status == 404 and b"Traceback" not in body


def test_an_unknown_host_is_refused(stack):
    request = urllib.request.Request(stack.url + "/health", headers={"Host": "evil.example.org"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400


def test_the_access_log_keeps_no_query_string(stack):
    status, _, _ = http_get(f"{stack.url}/list_of_followups?hashtag={stack.hashtag}&format=json")
    assert status == 200
    line = '"GET /list_of_followups HTTP/1.1" 200'
    # The worker writes its access line just after the response; give it a moment.
    for _ in range(100):
        log = stack.server.access_log()
        if line in log:
            break
        time.sleep(0.1)
    assert line in log
    assert stack.hashtag not in log and stack.hashtag not in stack.server.log()


def test_check_deploy_is_clean_with_the_production_environment(stack):
    env_overrides = {"ALLOWED_HOSTS": "gsa.example.org"}
    environment = {**stack.server.env, **env_overrides}
    environment.pop("SECURE_SSL_REDIRECT")  # a real deployment keeps the default (on)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--database", "default", "--fail-level=WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
