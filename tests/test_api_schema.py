"""The OpenAPI schema, the docs pages served with local assets, and schemathesis on a live server.

GSA_SCHEMATHESIS_EXAMPLES (default 10) bounds the generated examples per operation and mode.
"""

import os
import re
from urllib.parse import urljoin, urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gsafollowup.errors import error_codes
from tests.conftest import import_legacy_lightcurve

EXAMPLES = int(os.environ.get("GSA_SCHEMATHESIS_EXAMPLES", "10"))
OPERATIONS = {
    ("/api/v1/alerts/", "get"),
    ("/api/v1/alerts/", "post"),
    ("/api/v1/alerts/{id}/", "get"),
    ("/api/v1/alerts/{id}/aliases/", "post"),
    ("/api/v1/alerts/{id}/lightcurve/", "get"),
    ("/api/v1/alerts/{id}/lightcurve/{fmt}/", "get"),
    ("/api/v1/points/", "get"),
    ("/api/v1/points/", "post"),
    ("/api/v1/points/{id}/", "get"),
    ("/api/v1/points/{id}/", "delete"),
    ("/api/v1/surveys/", "get"),
    ("/api/v1/observatories/me", "get"),
    ("/api/v1/batches/", "post"),
    ("/api/v1/batches/{id}/", "get"),
    ("/api/v1/jobs/{id}/", "get"),
}


def test_schema_describes_every_operation_once(client, db):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == OPERATIONS
    assert schema["components"]["securitySchemes"]["hashtag"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The observatory's hashtag, sent as `Authorization: Hashtag <value>`.",
    }
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["properties"]["code"]["enum"] == list(error_codes())
    upload = schema["paths"]["/api/v1/points/"]["post"]
    assert {"201", "200", "400", "401", "403", "404", "409", "413", "422", "429"} <= set(upload["responses"])
    fields = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][fields]["properties"]) == {
        "catalog",
        "event_id",
        "mjd",
        "exp_time",
        "match_dist",
        "force_filter",
        "dry_run",
        "comment",
    }


def test_every_error_code_has_one_status():
    codes = error_codes()
    assert codes["bad_input"] == 400 and codes["duplicate"] == 409 and codes["throttled"] == 429
    assert len(codes) == len(set(codes))


def local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_docs_pages_load_their_assets_from_this_server(page, live_server):
    response = requests.get(f"{live_server.url}/api/v1/{page}/", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assets = local_assets(response.text)
    scripts = [a for a in assets if a.endswith(".js")]
    assert scripts, response.text
    for asset in assets:
        url = urljoin(response.url, asset)
        assert urlsplit(url).netloc == urlsplit(live_server.url).netloc, asset
        assert requests.get(url, timeout=30).status_code == 200, url
    # The schema the page loads comes from this server too.
    assert "/api/v1/schema/" in response.text


@pytest.mark.browser
def test_swagger_ui_renders_every_operation_offline(page, live_server, transactional_db):
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    summaries = page.locator(".swagger-ui .opblock .opblock-summary-path").all_inner_texts()
    rendered = {text.replace("\u200b", "").strip() for text in summaries}
    assert rendered == {path for path, _ in OPERATIONS}


@pytest.fixture
def api_data(transactional_db, make_observatory, media, settings):
    """Real data for the generated requests: APASS stars, an alert with points, two observatories."""
    from io import StringIO

    from django.core.management import call_command

    from tests.conftest import APASS

    call_command("ingest_refcat", "APASS", str(APASS), stdout=StringIO(), stderr=StringIO())
    import_legacy_lightcurve(25477)
    # Schemathesis sends hundreds of requests from one address within a minute.
    settings.API_THROTTLE_RATES = {"anon": "100000/min", "user": "100000/min"}
    _, hashtag = make_observatory("LIVE")
    return {"hashtag": hashtag}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


#: Operations without parameters or body have no invalid input to generate.
WITHOUT_INPUT = {("/api/v1/surveys/", "get"), ("/api/v1/observatories/me", "get")}
RUNS = [
    (path, method, mode)
    for path, method in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or (path, method) not in WITHOUT_INPUT
]


@pytest.mark.live
@pytest.mark.parametrize(("path", "method", "mode"), RUNS, ids=str)
def test_schemathesis(live_server, api_data, path, method, mode):
    """Generated requests, anonymous and authenticated: no 5xx, every answer matches the schema."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/", timeout=30)
    operation = schema[path][method.upper()]
    authenticated = {"Authorization": f"Hashtag {api_data['hashtag']}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case):
        case.call_and_validate(checks=CHECKS, timeout=60)
        case.call_and_validate(checks=CHECKS, headers=authenticated, timeout=60)

    exercise()


def test_unknown_api_paths_are_json_404(client, db):
    response = client.get("/api/v1/alerts")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "No API route /api/v1/alerts; did you mean /api/v1/alerts/?",
    }
    message = client.get("/followup/api/v1/observatories/me/").json()["error"]["message"]
    assert message == (
        "No API route /followup/api/v1/observatories/me/; did you mean /followup/api/v1/observatories/me?"
    )
    assert client.get("/api/v1/nothing/").json()["error"]["message"] == (
        "No API route /api/v1/nothing/; see /api/v1/docs/."
    )
    response = client.delete("/followup/api/v1/points/-3/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_production_collectstatic_serves_the_docs_assets(tmp_path):
    """With DEBUG off the docs' Swagger UI and Redoc files are collected for whitenoise."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL")},
        "DEBUG": "0",
        "SECRET_KEY": "collectstatic-test-key-" + "x" * 40,
        "STATIC_ROOT": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    paths = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for asset in (
        "swagger-ui-dist/swagger-ui-bundle.js",
        "swagger-ui-dist/swagger-ui.css",
        "redoc/bundles/redoc.standalone.js",
    ):
        assert f"drf_spectacular_sidecar/{asset}" in paths


@pytest.mark.live
def test_real_answers_match_the_schema(live_server, api_data):
    """Successful answers with real data (which generated requests rarely reach) follow the schema."""
    from tests.conftest import DECAM, STAR_DEC, STAR_RA

    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/", timeout=30)
    session = requests.Session()
    session.headers["Authorization"] = f"Hashtag {api_data['hashtag']}"
    api = f"{live_server.url}/api/v1"

    def check(path: str, method: str, response, status: int):
        assert response.status_code == status, response.text
        schema[path][method].validate_response(response)
        return response.json() if response.content and "json" in response.headers["Content-Type"] else None

    alert = check(
        "/api/v1/alerts/",
        "POST",
        session.post(f"{api}/alerts/", json={"ivorn": "ivo://live/star", "ra": STAR_RA, "dec": STAR_DEC}),
        201,
    )
    fields = {"event_id": "ivo://live/star", "mjd": "59373.1", "match_dist": "2"}

    def upload(**extra):
        with DECAM.open("rb") as catalog:
            return session.post(f"{api}/points/", data={**fields, **extra}, files={"catalog": catalog})

    dry = check("/api/v1/points/", "POST", upload(dry_run="true"), 200)
    assert dry["id"] is None and dry["band"] == "g"
    stored = check("/api/v1/points/", "POST", upload(), 201)
    check("/api/v1/points/", "POST", upload(), 409)
    check("/api/v1/points/", "GET", session.get(f"{api}/points/"), 200)
    check("/api/v1/points/{id}/", "GET", session.get(f"{api}/points/{stored['id']}/"), 200)
    check("/api/v1/alerts/", "GET", session.get(f"{api}/alerts/?observed=true&cone=24,-48.7,1"), 200)
    check("/api/v1/alerts/{id}/", "GET", session.get(f"{api}/alerts/{alert['id']}/"), 200)
    for alert_id in (alert["id"], 25477):
        curve = check(
            "/api/v1/alerts/{id}/lightcurve/", "GET", session.get(f"{api}/alerts/{alert_id}/lightcurve/"), 200
        )
        assert curve["points"]
        for url in curve["downloads"].values():
            check("/api/v1/alerts/{id}/lightcurve/{fmt}/", "GET", session.get(url), 200)
    check("/api/v1/surveys/", "GET", session.get(f"{api}/surveys/"), 200)
    check("/api/v1/observatories/me", "GET", session.get(f"{api}/observatories/me"), 200)
    check("/api/v1/points/{id}/", "DELETE", session.delete(f"{api}/points/{stored['id']}/"), 204)
    hidden = check("/api/v1/points/{id}/", "GET", session.get(f"{api}/points/{stored['id']}/"), 200)
    assert hidden["hidden"] is True
