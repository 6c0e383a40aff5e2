"""Domain errors onto HTTP: the one place where exceptions become status codes and bodies.

Legacy endpoints answer errors as one short line of plain text (old clients print it verbatim);
the REST API answers ``{"error": {"code": ..., "message": ...}}``.
"""

import functools
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from gsafollowup.errors import (
    BadInput,
    DomainError,
    Forbidden,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    Throttled,
    TooLarge,
)

log = logging.getLogger(__name__)
MAX_LINE = 99


def first_message(detail) -> str:
    """The first human message inside a DRF error detail (dict, list or string)."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        text = first_message(value)
        return text if field in ("non_field_errors", "detail") else f"{field}: {text}"
    if isinstance(detail, list | tuple):
        return first_message(detail[0]) if detail else "invalid input"
    return str(detail)


def as_domain_error(exc: Exception) -> DomainError | None:
    """Translate framework exceptions into domain errors; None for unexpected ones."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, drf.Throttled):
        return Throttled(str(exc.detail))
    if isinstance(exc, drf.AuthenticationFailed | drf.NotAuthenticated):
        return NotAuthenticated(str(exc.detail))
    if isinstance(exc, drf.PermissionDenied):
        return Forbidden(str(exc.detail))
    if isinstance(exc, Http404 | drf.NotFound):
        return NotFound(str(exc) or "Not found.")
    if isinstance(exc, RequestDataTooBig):
        return TooLarge("The upload is too large.")
    if isinstance(exc, drf.ValidationError):
        return BadInput(first_message(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType | drf.ParseError | drf.MethodNotAllowed | drf.NotAcceptable):
        error = BadInput(str(exc.detail))
        error.http_status = exc.status_code
        return error
    return database_unavailable(exc)


def database_unavailable(exc: Exception) -> ServiceUnavailable | None:
    """ServiceUnavailable for a lost or refused database connection; None for anything else."""
    from django.db import DatabaseError, InterfaceError, OperationalError

    # psycopg2 sometimes reports a server that vanished mid-query as a bare DatabaseError
    # ("error with status PGRES_TUPLES_OK and no message from the libpq"); it counts as an
    # outage only if the connection is indeed gone, otherwise it is a bug and stays a 500.
    vanished = type(exc) is DatabaseError and not connection_usable()
    if isinstance(exc, OperationalError | InterfaceError) or vanished:
        # The driver's text can hold host names and ports: it goes to the log, not to the client.
        log.warning("database unavailable: %s", " ".join(str(exc).split()))
        return ServiceUnavailable("The database is unavailable; try again in a minute.")
    return None


def connection_usable() -> bool:
    """True when the default database connection is open and answers."""
    from django.db import connection

    return connection.connection is not None and connection.is_usable()


def one_line(message: str) -> str:
    """A single line under 100 characters, as old clients expect."""
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


def plain_error(error: DomainError) -> HttpResponse:
    """The legacy error body: one line of plain text with the error's status."""
    response = HttpResponse(
        one_line(error.message) + "\n", status=error.http_status, content_type="text/plain"
    )
    if error.http_status == 401:
        response["WWW-Authenticate"] = "Hashtag"
    if error.http_status == 503:
        response["Retry-After"] = "30"
    return response


def json_error(error: DomainError) -> JsonResponse:
    """The REST API error body: {"error": {"code": ..., "message": ...}}."""
    body = {"error": {"code": error.code, "message": one_line(error.message)}}
    existing = getattr(error, "existing_id", None)
    if existing is not None:
        body["error"]["existing_id"] = existing
    response = JsonResponse(body, status=error.http_status)
    if error.http_status == 503:
        response["Retry-After"] = "30"
    return response


def error_response(request, error: DomainError) -> HttpResponse:
    """The error in the format of the route: JSON under /api/, the legacy plain line elsewhere."""
    if "/api/" in request.path:
        return json_error(error)
    return plain_error(error)


def wants_json(request) -> bool:
    """outputFormat=json (form field or query parameter) selects JSON on legacy endpoints."""
    data = getattr(request, "data", None)
    value = None
    if hasattr(data, "get"):
        value = data.get("outputFormat")
    value = value or request.query_params.get("outputFormat") or request.query_params.get("format")
    return str(value or "").lower() == "json"


class LegacyView(APIView):
    """Base of the legacy endpoints: hashtag or session auth, plain-text one-line errors."""

    login_required = True

    def perform_content_negotiation(self, request, force=False):
        # Legacy endpoints choose their output by outputFormat/format themselves.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.login_required and not request.user.is_authenticated:
            raise NotAuthenticated("A hashtag is required (form field, query parameter or cookie).")

    def handle_exception(self, exc):
        error = as_domain_error(exc)
        if error is None:
            raise exc
        return plain_error(error)

    def respond(self, request, payload: dict | list, template: str, context: dict, status: int = 200):
        """JSON for outputFormat=json, otherwise the HTML page."""
        if wants_json(request):
            return JsonResponse(payload, status=status, safe=False, json_dumps_params={"allow_nan": False})
        return render(request._request, template, context, status=status)


def plain_text_errors(view):
    """Answer the domain errors of a plain Django view as the legacy one-line plain-text body."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as error:
            return plain_error(error)

    return wrapper
