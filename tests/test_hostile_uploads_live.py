"""Hostile uploads through the real server (gunicorn, PostgreSQL, DEBUG off): refused early, clearly.

A small subset of the inputs of ``python -m calibration.benchmarks.cost`` (which measures what
each costs the worker); here only the answers are checked: the 4xx, the words of the message,
and that nothing was stored. Also on this stack: a multi-member gzip is read whole, and a
chunked upload (Transfer-Encoding: chunked, no Content-Length, sent by the real curl) is read.
"""

import gzip
import subprocess

import pytest
import requests

from calibration.benchmarks import cost
from gsafollowup.testing.production import DEMO_ALERT
from tests.stack import DECAM, json_or_text, production_stack

pytestmark = pytest.mark.live

HOSTILE = {
    "row of 2,000,000 values (4 MB)": (400, "line 5 is longer than 64 kB"),
    "header declares column 99,999,999": (400, "declares column 99999999"),
    "gzip: 1 GB of blanks (1 MB)": (400, "expands beyond 256 MB"),
    "gzip: 300,000 members": (400, "more than 10000 members"),
    "gzip: trailing garbage": (400, "garbage after its end"),
    "FITS: 8,000 HDUs": (400, "more than 256 HDUs"),
    "FITS: NAXIS1 = -16": (400, "FITS header of HDU 1 is invalid (NAXIS1 = -16)"),
}
INPUTS = {item.name: item for item in cost.generated()}


@pytest.fixture(scope="module")
def stack():
    with production_stack(workers=2) as running:
        yield running


def fields(stack, **extra) -> dict:
    data = {"EventID": DEMO_ALERT, "hashtag": stack.hashtag, "MJD": "59373.1", "matchDist": "2"}
    return {**data, "noPlot": "1", "outputFormat": "json", **extra}


def assert_nothing_stored(stack):
    assert stack.sql("SELECT count(*) FROM calibration_followuppoint WHERE NOT imported") == [(0,)]
    kept = stack.server.media_root / "catalogs"
    assert not kept.exists() or not [p for p in kept.rglob("*") if p.is_file() and ".locks" not in p.parts]


@pytest.mark.parametrize(("name", "expected"), HOSTILE.items(), ids=list(HOSTILE))
def test_a_hostile_catalog_is_refused_with_a_message_and_nothing_stored(stack, name, expected):
    status, words = expected
    item = INPUTS[name]
    content = item.make()
    legacy = requests.post(
        stack.url + "/cgi/upload", data=fields(stack), files={"sexCat": (item.filename, content)}, timeout=120
    )
    assert legacy.status_code == status, legacy.text
    assert words in legacy.text and legacy.text.count("\n") == 1 and len(legacy.text) < 100, legacy.text
    api = requests.post(
        stack.url + "/api/v1/points/",
        data={"event_id": DEMO_ALERT, "mjd": "59373.1", "match_dist": "2"},
        files={"catalog": (item.filename, content)},
        headers={"Authorization": f"Hashtag {stack.hashtag}"},
        timeout=120,
    )
    assert api.status_code == status and words in api.json()["error"]["message"], api.text
    assert_nothing_stored(stack)


def test_a_catalog_in_two_gzip_members_is_read_whole(stack):
    """The target's row in the second member: its magnitude, not an upper limit from the first."""
    lines = DECAM.read_bytes().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if b"2.4088671351e+01" in line)
    content = gzip.compress(b"".join(lines[:target])) + gzip.compress(b"".join(lines[target:]))
    response = requests.post(
        stack.url + "/cgi/upload",
        data=fields(stack, dryRun="1"),
        files={"sexCat": ("two-members.cat.gz", content)},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["mag_err"] > 0 and abs(answer["mag"] - 15.291) < 0.1, answer


def test_a_chunked_upload_sent_by_curl_is_read(stack):
    command = ["curl", "-sS", "--max-time", "120", "-w", "\n%{http_code}", "-H", "Transfer-Encoding: chunked"]
    for key, value in fields(stack, dryRun="1").items():
        command += ["-F", f"{key}={value}"]
    command += ["-F", f"sexCat=@{DECAM};filename=test.cat", f"{stack.url}/cgi/upload"]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=180)
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", body
    assert json_or_text(body)["filter"] == "g"


def test_a_chunked_upload_over_the_limit_is_413_without_reading_it_all(stack, tmp_path):
    big = tmp_path / "big.cat"
    with open(big, "wb") as out:
        out.truncate(60 * 2**20)
    command = ["curl", "-sS", "--max-time", "120", "-w", "\n%{http_code}", "-H", "Transfer-Encoding: chunked"]
    for key, value in fields(stack).items():
        command += ["-F", f"{key}={value}"]
    command += ["-F", f"sexCat=@{big};filename=big.cat", f"{stack.url}/cgi/upload"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    body, _, status = done.stdout.rpartition("\n")
    assert status == "413" and "larger than the 50 MB limit" in body, (done.stdout, done.stderr)
    assert_nothing_stored(stack)
