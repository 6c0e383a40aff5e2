"""The README's "Scripted use" snippets, run as written against a live server: docs that cannot rot."""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from alerts.models import Alert
from calibration.models import FollowupPoint
from tests.conftest import STAR_DEC, STAR_G, STAR_RA

ROOT = Path(__file__).resolve().parent.parent
EVENT = "ivo://gsafollowup/demo/GRB210605A-field-star"
pytestmark = pytest.mark.live


def section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Scripted use\n", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), flags=re.S)


def snippet(language: str, marker: str) -> str:
    [found] = [block for block in blocks(language) if marker in block]
    return found


@pytest.fixture
def server(live_server, apass, make_observatory, media):
    """The live server with the demo's alert on a real DECam star, and an observatory's hashtag."""
    Alert.objects.create(ivorn=EVENT, ra=STAR_RA, dec=STAR_DEC)
    _, hashtag = make_observatory("README")
    return {"GSA": live_server.url, "HASHTAG": hashtag, "EVENT": EVENT}


def test_the_section_sits_before_light_curves():
    text = (ROOT / "README.md").read_text()
    assert text.index("## Scripted use") < text.index("## Light curves")
    assert "export GSA=" in snippet("sh", "export")


def run_curl(command: str, env: dict) -> dict:
    assert shutil.which("curl"), "curl is needed (apt-get install curl)"
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_legacy_curl_snippet(server):
    body = run_curl(snippet("sh", "/cgi/upload"), server)
    point = FollowupPoint.objects.get(pk=body["followup_id"])
    assert (body["survey"], body["filter"]) == ("APASS", "g") and abs(body["mag"] - STAR_G) < 0.05
    assert point.observatory.prefix == "README"


def test_api_curl_snippet(server):
    body = run_curl(snippet("sh", "/api/v1/points/"), server)
    point = FollowupPoint.objects.get(pk=body["id"])
    assert (body["survey"], body["band"]) == ("APASS", "g") and abs(body["mag"] - STAR_G) < 0.05
    assert point.observatory.prefix == "README" and point.mjd == 59373.1


def test_requests_snippet(server, monkeypatch):
    for name, value in server.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet("python", "requests"), "README.md", "exec"), {})
    point = FollowupPoint.objects.get()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"follow-up {point.pk}: APASS g = {point.mag:.3f} +- {point.total_err:.3f}"
    assert lines[1] == f"1 points; CSV at {server['GSA']}/api/v1/alerts/{point.alert_id}/lightcurve/csv/"
