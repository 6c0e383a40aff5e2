"""The nginx example of docs/deploy.md, run for real in front of the production stack.

The server block is taken from the documentation itself (so the documented example is the one
tested), with only what a loopback test cannot have changed: TLS off, free ports, paths in a
temporary directory. Through it the legacy curl upload under /followup/ must work, also over
plain http on the port-80 server (old scripts have http:// in them) where other pages are
redirected to https, the access log must keep no query string, and a client forging
X-Forwarded-For must not escape the wrong-hashtag lock-out (TRUSTED_PROXY_COUNT=1 believes
only the entry nginx appends).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from gsafollowup.testing.postgres import free_port
from tests.stack import DECAM, ROOT, curl_upload, http_get, json_or_text, missing_tool, production_stack

pytestmark = pytest.mark.live

FAILURE_LIMIT = 3


def documented_nginx_block() -> str:
    """The ```nginx block of docs/deploy.md."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    return re.search(r"```nginx\n(.*?)```", text, re.S).group(1)


def loopback_config(block: str, workdir: Path, plain: int, listen: int, upstream: int) -> str:
    """The documented block on 127.0.0.1 without TLS, wrapped in a minimal nginx.conf.

    The port-80 server listens on ``plain``; the TLS server on ``listen`` without TLS, and it
    forwards the scheme as https, which is what it sends once TLS is on.
    """
    preamble, http_server, tls_server = block.split("server {")
    http_server = http_server.replace("listen 80;", f"listen 127.0.0.1:{plain};")
    tls_server = re.sub(
        r"\n\s*#[^\n]*\n(\s*)listen 443 ssl http2;", rf"\n\1listen 127.0.0.1:{listen};", tls_server
    )
    tls_server = re.sub(r"\n\s*ssl_certificate\S* [^\n]*;", "", tls_server)
    tls_server = tls_server.replace("X-Forwarded-Proto $scheme", "X-Forwarded-Proto https")
    block = "server {".join((preamble, http_server, tls_server))
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    block = block.replace("/var/log/nginx/gsafollowup.log", str(workdir / "access.log"))
    assert "ssl" not in block and f"127.0.0.1:{listen};" in block and f"127.0.0.1:{plain};" in block, block
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {workdir / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'};\n"
        f"events {{}}\nhttp {{\n{temp}\n{block}}}\n"
    )


@contextmanager
def nginx(upstream_port: int):
    """nginx with the documented configuration, in front of 127.0.0.1:upstream_port."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        missing_tool("nginx not found: apt-get install nginx")
    workdir = Path(tempfile.mkdtemp(prefix="gsa-nginx-"))
    port, plain_port = free_port(), free_port()
    config = workdir / "nginx.conf"
    config.write_text(loopback_config(documented_nginx_block(), workdir, plain_port, port, upstream_port))
    checked = subprocess.run(
        [binary, "-t", "-q", "-p", str(workdir), "-c", str(config)], capture_output=True, text=True
    )
    assert checked.returncode == 0, f"nginx refuses the documented configuration: {checked.stderr}"
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url, plain_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{plain_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {process.stderr.read()}") from None
                time.sleep(0.1)
        yield url, plain_url, workdir
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def proxied():
    # SECURE_SSL_REDIRECT on, as in a real deployment: requests from the port-80 server arrive
    # with X-Forwarded-Proto: http, those from the TLS server with https.
    env = {
        "TRUSTED_PROXY_COUNT": "1",
        "HASHTAG_FAILURE_LIMIT": str(FAILURE_LIMIT),
        "SECURE_SSL_REDIRECT": "1",
    }
    with production_stack(workers=2, env=env) as stack, nginx(stack.server.port) as (url, plain_url, workdir):
        yield stack, url, plain_url, workdir


@pytest.fixture
def no_lockouts(proxied):
    """Each test starts without counted wrong hashtags (or API throttle counts)."""
    stack = proxied[0]
    stack.sql("DELETE FROM observers_hashtagfailure; DELETE FROM gsafollowup_cache")
    yield
    stack.sql("DELETE FROM observers_hashtagfailure; DELETE FROM gsafollowup_cache")


def test_the_legacy_upload_and_the_light_curve_work_under_followup_through_nginx(proxied, no_lockouts):
    stack, url, _, _ = proxied
    status, body = curl_upload(url + "/followup", stack.hashtag, DECAM, 59380.3)
    assert status == 201, body
    answer = json_or_text(body)
    assert answer["filter"] == "g"
    status, _, data = http_get(f"{url}/followup/get_alert_lc_data?alert_id={stack.alert_id()}")
    assert status == 200 and f"{answer['mag']:.3f}"[:6] in data.decode()
    status, _, page = http_get(f"{url}/followup/get_alert_lc?alert_id={stack.alert_id()}")
    assert status == 200 and b"GRB210605A-field-star" in page
    # The new API answers behind the same proxy, at the root.
    status, _, data = http_get(f"{url}/api/v1/points/{answer['followup_id']}/")
    assert status == 200 and json_or_text(data.decode())["id"] == answer["followup_id"]


def test_an_old_script_with_an_http_url_uploads_through_the_port_80_server(proxied, no_lockouts, tmp_path):
    stack, _, plain, _ = proxied
    # The legacy curl line with http:// in it, as every old client script has: stored. (The
    # catalog is made distinct by a comment line: one catalog is stored once per alert.)
    catalog = tmp_path / "plain-http.cat"
    catalog.write_bytes(DECAM.read_bytes() + b"# over plain http\n")
    status, body = curl_upload(plain + "/followup", stack.hashtag, catalog, 59382.5)
    assert status == 201, body
    followup_id = json_or_text(body)["followup_id"]
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint WHERE id = %s", (followup_id,)) == [(1,)]
    for prefix in ("/", "/followup/"):
        answer = requests.get(
            f"{plain}{prefix}get_alert_lc_data",
            {"alert_id": stack.alert_id()},
            allow_redirects=False,
            timeout=60,
        )
        assert answer.status_code == 200 and followup_id in answer.json()["id"]
        for route in ("get_alert_lc", "list_of_alerts", "list_of_followups"):
            params = {"alert_id": stack.alert_id(), "hashtag": stack.hashtag}
            answer = requests.get(plain + prefix + route, params, allow_redirects=False, timeout=60)
            assert answer.status_code == 200, (prefix, route)
        for route in ("cgi/newevent", "cgi/delpoint", "cgi/newuser"):
            # Passed on and refused by the view for want of a hashtag, not redirected.
            answer = requests.post(plain + prefix + route, {"x": "1"}, allow_redirects=False, timeout=60)
            assert answer.status_code == 401, (prefix, route)
    # Everything else is sent to https by nginx.
    for path in ("/", "/followup/", "/login/", "/upload/", "/api/v1/alerts/", "/admin/", "/cgi/upload/x"):
        answer = requests.get(plain + path, allow_redirects=False, timeout=60)
        assert answer.status_code == 301 and answer.headers["Location"] == f"https://127.0.0.1{path}", path


def test_the_access_log_keeps_no_query_string(proxied, no_lockouts):
    stack, url, _, workdir = proxied
    secret = "not-a-real-hashtag-but-looks-like-one"
    status, _, _ = http_get(f"{url}/followup/get_alert_lc?alert_id={stack.alert_id()}&hashtag={secret}")
    assert status in (200, 401, 403)
    time.sleep(0.5)  # nginx writes its access log line when the response is done
    log = (workdir / "access.log").read_text()
    assert "/followup/get_alert_lc" in log
    assert secret not in log and "alert_id=" not in log


def test_a_forged_x_forwarded_for_does_not_escape_the_hashtag_lockout(proxied, no_lockouts):
    stack, url, _, _ = proxied
    wrong = "DEMO_" + "0" * 32
    for attempt in range(FAILURE_LIMIT):
        forged = {"X-Forwarded-For": f"203.0.113.{attempt + 1}"}
        status, _, _ = http_get(
            f"{url}/api/v1/observatories/me", {**forged, "Authorization": f"Hashtag {wrong}"}
        )
        assert status == 401
    # Every attempt came from the address nginx saw (127.0.0.1), so that address is locked out
    # for wrong hashtags, even with yet another forged entry ...
    forged = {"X-Forwarded-For": "198.51.100.7", "Authorization": f"Hashtag {wrong}"}
    status, _, body = http_get(f"{url}/api/v1/observatories/me", forged)
    assert status == 429, body
    assert b"Too many wrong hashtags" in body
    assert stack.sql("SELECT address, count FROM observers_hashtagfailure") == [("127.0.0.1", FAILURE_LIMIT)]
    # ... while the right hashtag from that address still works (a shared host is not locked out).
    forged["Authorization"] = f"Hashtag {stack.hashtag}"
    status, _, body = http_get(f"{url}/api/v1/observatories/me", forged)
    assert status == 200, body


def test_a_body_over_the_documented_limit_is_refused_by_nginx_before_the_server(
    proxied, no_lockouts, tmp_path
):
    stack, url, _, _ = proxied
    before = stack.sql("SELECT count(*) FROM calibration_followuppoint")
    big = tmp_path / "big.cat"
    with open(big, "wb") as handle:
        handle.truncate(56 * 1024 * 1024)  # over client_max_body_size 55m
    status, body = curl_upload(url, stack.hashtag, big, 59381.4)
    assert status == 413, body
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint") == before
