"""The production configuration on 127.0.0.1: gunicorn, PostgreSQL, DEBUG off, whitenoise.

A real curl runs the legacy upload with the real DECam catalog, then the light curve is
fetched; static files, the error pages and the access log are checked as a visitor sees them.
Old scripts have http:// in them: with the production default SECURE_SSL_REDIRECT=1 the legacy
routes still answer plain http (LEGACY_PLAIN_HTTP), and every other page is redirected.
"""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from gsafollowup.testing.production import ProductionServer
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


# ---------------------------------------------------------------- plain http for old scripts

LEGACY_GETS = ("get_alert_lc_data?alert_id={id}", "get_alert_lc?alert_id={id}", "list_of_alerts")
LEGACY_POSTS = ("cgi/upload", "cgi/newevent", "cgi/delpoint", "cgi/newuser")
REDIRECTED = (
    "",
    "followup/",
    "login/",
    "upload/",
    "newevent/",
    "api/v1/alerts/",
    "admin/",
    "static/css/site.css",
)


@contextmanager
def second_server(stack, **env):
    """Another gunicorn on the stack's database and static files, with these settings changed."""
    settings = {"STATIC_ROOT": str(stack.server.workdir / "static"), **env}
    server = ProductionServer(stack.postgres.url, workers=1, env=settings)
    try:
        server.start_gunicorn()
        yield server
    finally:
        server.stop()


def curl_head(url: str, *options: str) -> tuple[int, str, str]:
    """Status, redirect target and response headers of one request by the real curl (no -L)."""
    command = [
        "curl",
        "-sS",
        "--max-time",
        "60",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
    ]
    done = subprocess.run([*command, *options, url], capture_output=True, text=True, check=True, timeout=90)
    headers, _, last = done.stdout.rpartition("\n")
    status, _, target = last.partition(" ")
    return int(status), target, headers


def distinct_catalog(directory, tag: str):
    """The real catalog made distinct by a trailing comment line (one catalog is stored once)."""
    path = directory / f"{tag}.cat"
    path.write_bytes(DECAM.read_bytes() + f"# {tag}\n".encode())
    return path


def test_old_scripts_with_http_urls_are_answered_over_plain_http_while_pages_redirect(stack, tmp_path):
    with second_server(stack, SECURE_SSL_REDIRECT="1") as server:
        # The VaST-style curl line with http:// in it: stored, under the prefix and at the root.
        catalog = distinct_catalog(tmp_path, "plain-http")
        status, body = curl_upload(server.url + "/followup", stack.hashtag, catalog, 59375.3)
        assert status == 201, body
        followup_id = json_or_text(body)["followup_id"]
        assert stack.sql("SELECT count(*) FROM calibration_followuppoint WHERE id = %s", (followup_id,)) == [
            (1,)
        ]
        status, body = curl_upload(server.url, stack.hashtag, DECAM, 59375.4, dry_run=True)
        assert status == 200 and json_or_text(body)["filter"] == "g", body
        alert = stack.alert_id()
        for prefix in ("/", "/followup/"):
            for route in LEGACY_GETS:
                status, _, headers = curl_head(server.url + prefix + route.format(id=alert))
                assert status == 200, (prefix, route)
                assert "strict-transport-security" not in headers.lower()
            status, _, _ = curl_head(f"{server.url}{prefix}list_of_followups?hashtag={stack.hashtag}")
            assert status == 200
            for route in LEGACY_POSTS:
                # Without a hashtag: refused by the view itself, not redirected by the middleware.
                status, _, _ = curl_head(server.url + prefix + route, "-d", "x=1")
                assert status == 401, (prefix, route)
        for path in REDIRECTED:
            status, target, _ = curl_head(f"{server.url}/{path}")
            assert status == 301 and target == f"https://127.0.0.1:{server.port}/{path}", path
        # /health stays exempt for local probes.
        assert curl_head(server.url + "/health")[0] == 200


def test_legacy_plain_http_off_redirects_the_legacy_routes_too(stack, tmp_path):
    before = stack.sql("SELECT count(*) FROM calibration_followuppoint")
    with second_server(stack, SECURE_SSL_REDIRECT="1", LEGACY_PLAIN_HTTP="0") as server:
        # What old scripts saw before: an empty 301, curl exits 0, nothing stored.
        catalog = distinct_catalog(tmp_path, "redirected")
        status, body = curl_upload(server.url + "/followup", stack.hashtag, catalog, 59376.5)
        assert status == 301 and body == ""
        status, target, _ = curl_head(f"{server.url}/list_of_alerts")
        assert status == 301 and target == f"https://127.0.0.1:{server.port}/list_of_alerts"
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint") == before
