"""The demo that `make run` loads: real alerts and a working, freshly issued hashtag."""

import json
import re
import shlex
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command

from alerts.models import Alert
from calibration.models import ReferenceStar
from calibration.references import loaded_surveys
from observers.models import Hashtag


def run_demo(url: str = "http://127.0.0.1:8000/") -> str:
    out = StringIO()
    call_command("demo", "--url", url, stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    match = re.fullmatch(r"Demo hashtag: (DEMO_[0-9a-f]{32})", last)
    assert match, last
    run_demo.output = out.getvalue()
    return match.group(1)


def test_demo_loads_real_alerts_and_prints_a_working_hashtag(db, client):
    first = run_demo()
    assert Alert.objects.count() == 676 + 1  # the legacy list and the demo star
    assert [(s["survey"], s["stars"]) for s in loaded_surveys()] == [("APASS", 2865)]
    second = run_demo()
    assert Alert.objects.count() == 676 + 1  # the legacy list and the demo star
    assert ReferenceStar.objects.count() == 2865
    # Only the newest demo hashtag works.
    assert Hashtag.objects.find(first) is None
    assert Hashtag.objects.find(second) is not None
    response = client.post(
        "/cgi/newevent", {"EventID": "ivo://demo-check", "ra": "1", "dec": "2", "hashtag": second}
    )
    assert response.status_code == 201


@pytest.mark.live
def test_the_printed_curl_line_calibrates_a_real_star(transactional_db, live_server, tmp_path):
    hashtag = run_demo(live_server.url + "/")
    lines = [line for line in run_demo.output.splitlines() if line.startswith("curl ")]
    assert len(lines) == 1 and hashtag in lines[0]
    # Copy-pasted from any directory, as printed.
    result = subprocess.run(shlex.split(lines[0]), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    body = json.loads(result.stdout)
    assert body["survey"] == "APASS" and body["filter"] == "g"
    assert abs(body["mag"] - 15.291) < 0.05 and 0 < body["mag_err"] < 0.05, body
    assert body["followup_id"] is None
