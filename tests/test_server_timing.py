"""Server-Timing: each stage of an upload named in a header, only when SERVER_TIMING is on."""

import re

import pytest

from gsafollowup.timing import header_value, stage
from tests.test_upload import upload

STAGE = re.compile(r"^[\w ]+;dur=\d+\.\d\d$")


@pytest.fixture(autouse=True)
def _media(media):
    """Stored uploads keep their catalogs in a temporary MEDIA_ROOT."""


def stages_of(response) -> dict[str, float]:
    parts = [part.strip() for part in response["Server-Timing"].split(",")]
    assert all(STAGE.match(part) for part in parts), parts
    return {name: float(ms) for name, ms in (part.split(";dur=") for part in parts)}


def test_no_header_unless_the_setting_is_on(observatory, star_alert, client):
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1")
    assert response.status_code == 200
    assert "Server-Timing" not in response


def test_a_dry_run_names_its_stages(settings, observatory, star_alert, client):
    settings.SERVER_TIMING = True
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1")
    assert response.status_code == 200
    stages = stages_of(response)
    assert {"parse", "hashtag", "database", "read", "cone", "calibrate", "total"} <= set(stages)
    assert "kept file" not in stages  # a dry run keeps no file
    assert sum(v for k, v in stages.items() if k != "total") <= stages["total"]


def test_a_stored_upload_times_its_file_and_database(settings, observatory, star_alert, client):
    settings.SERVER_TIMING = True
    _, hashtag = observatory
    response = upload(client, hashtag)
    assert response.status_code == 201, response.content
    assert {"kept file", "database"} <= set(stages_of(response))


def test_a_refused_upload_still_answers_its_timing(settings, observatory, star_alert, client):
    settings.SERVER_TIMING = True
    response = upload(client, "not-a-hashtag", dryRun="1")
    assert response.status_code == 401
    assert "total" in stages_of(response)


def test_stages_outside_a_timed_request_record_nothing():
    with stage("read"):
        pass  # no request is being timed: nothing to add to, nothing raised
    assert header_value({"read": 0.0012}, 0.002) == "read;dur=1.20, total;dur=2.00"
