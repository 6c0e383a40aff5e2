"""/health for load balancers, and the client address the wrong-hashtag throttle counts."""

import json

import pytest
from django.test import RequestFactory

from observers.auth import client_address


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/health", "/followup/health"])
def test_health_answers_ok_when_the_database_answers(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_refuses_writes(client):
    assert client.post("/health").status_code == 405


def test_without_trusted_proxies_the_peer_address_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="192.0.2.7")
    # A client cannot escape the throttle by writing its own X-Forwarded-For.
    assert client_address(request) == "10.1.1.1"


def test_behind_one_proxy_the_address_it_saw_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    forged_then_real = "203.0.113.99, 198.51.100.23"
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forged_then_real)
    assert client_address(request) == "198.51.100.23"


def test_behind_two_proxies_the_second_entry_from_the_right_counts(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.23, 10.0.0.2"
    )
    assert client_address(request) == "198.51.100.23"


def test_a_missing_forwarded_header_falls_back_to_the_peer(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.1.1")
    assert client_address(request) == "10.1.1.1"


def test_a_lost_database_answers_a_plain_503_on_legacy_routes_and_json_under_the_api():
    from django.db import InterfaceError, OperationalError

    from gsafollowup.middleware import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    lost = OperationalError("could not connect to server: Connection refused (127.0.0.1:5432)")
    response = middleware.process_exception(RequestFactory().get("/get_alert_lc?alert_id=1"), lost)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"The database is unavailable; try again in a minute.\n"
    response = middleware.process_exception(RequestFactory().get("/api/v1/alerts/"), InterfaceError("closed"))
    assert response.status_code == 503
    assert json.loads(response.content) == {
        "error": {"code": "unavailable", "message": "The database is unavailable; try again in a minute."}
    }


def test_other_errors_are_left_to_the_framework():
    from gsafollowup.middleware import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("a bug")) is None


def test_any_database_error_with_the_connection_gone_is_an_outage():
    """psycopg2 may report a vanished server as DatabaseError or ProgrammingError, not OperationalError."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import DatabaseError, ProgrammingError

    from gsafollowup.middleware import DatabaseUnavailableMiddleware

    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    request = RequestFactory().get("/cgi/upload")
    for error in (DatabaseError("no message from the libpq"), ProgrammingError("no results to fetch")):
        # A fresh thread holds no open connection, as a worker after the server went away
        # (the test run's own SQLite in-memory connection is never really closed).
        with ThreadPoolExecutor(1) as pool:
            response = pool.submit(middleware.process_exception, request, error).result()
        assert response is not None and response.status_code == 503, error


@pytest.mark.django_db
def test_a_database_error_on_a_live_connection_is_a_bug_not_an_outage():
    from django.db import ProgrammingError, connection

    from gsafollowup.middleware import DatabaseUnavailableMiddleware

    connection.ensure_connection()
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    error = ProgrammingError('relation "nope" does not exist')
    assert middleware.process_exception(RequestFactory().get("/cgi/upload"), error) is None


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_server_gone_during_the_reference_copy_is_django_s_operational_error(apass):
    """The cone's binary COPY goes through psycopg2 directly: its errors must arrive as Django's."""
    import numpy as np
    from django.db import OperationalError, connection

    from calibration.models import ReferenceCatalog
    from calibration.references import _fetch

    if connection.vendor != "postgresql":
        pytest.skip("the binary COPY is PostgreSQL's")
    catalog = ReferenceCatalog.objects.get(survey="APASS").pk
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    # Another session ends this one's backend, as a server restart does.
    import psycopg2

    settings_dict = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings_dict["NAME"], user=settings_dict["USER"], password=settings_dict["PASSWORD"],
        host=settings_dict["HOST"], port=settings_dict["PORT"],
    )  # fmt: skip
    try:
        with other, other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        other.close()
    with pytest.raises(OperationalError):
        _fetch(catalog, ["g"], np.array([0]), np.array([2**40]))
    connection.close()
