"""Domain errors onto HTTP: the one place where exceptions become status codes and bodies.

Legacy endpoints answer errors as one short line of plain text (old clients print it verbatim);
the REST API answers ``{"error": {"code": ..., "message": ...}}``.
"""

import functools
import logging
import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView, set_rollback

from gsafollowup.errors import (
    BadInput,
    DomainError,
    Forbidden,
    MethodNotAllowed,
    NotAcceptable,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    Throttled,
    TooLarge,
    UnsupportedMediaType,
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
    if isinstance(exc, drf.ParseError):
        return BadInput(readable_parse_error(str(exc.detail)))
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return NotAcceptable(str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType(str(exc.detail))
    return database_unavailable(exc)


#: Django skips a file part whose name has no usable base name ('.', '..', '/'); the file's
#: bytes are then read as the next part's headers, which fails with this text.
_SKIPPED_FILE_SYMPTOM = "max total header size exceeded"


def readable_parse_error(text: str) -> str:
    """The multipart parser's message, or what an observer can act on when it only shows a symptom."""
    if _SKIPPED_FILE_SYMPTOM in text.lower():
        return "Unreadable upload form: the file has no usable name (e.g. '.') or a header is too long."
    return text


def database_unavailable(exc: Exception) -> ServiceUnavailable | None:
    """ServiceUnavailable for a lost or refused database connection; None for anything else."""
    from django.db import DatabaseError, InterfaceError, OperationalError

    # psycopg2 does not always report a server that vanished mid-query as an operational error:
    # a bare DatabaseError ("error with status PGRES_TUPLES_OK and no message from the libpq"),
    # a ProgrammingError ("no results to fetch"), ... Any database error counts as an outage
    # when the connection is indeed gone; with a live connection it is a bug and stays a 500.
    if isinstance(exc, DatabaseError) and missing_table(exc) and connection_usable():
        # The server answers but lacks a table: not an outage, a set-up step was skipped.
        log.error("database table missing: %s", " ".join(str(exc).split()))
        return ServiceUnavailable("The server's database is not set up: its operator must run 'migrate'.")
    vanished = isinstance(exc, DatabaseError) and not connection_usable()
    if isinstance(exc, OperationalError | InterfaceError) or vanished:
        # The driver's text can hold host names and ports: it goes to the log, not to the client.
        log.warning("database unavailable: %s", " ".join(str(exc).split()))
        return ServiceUnavailable("The database is unavailable; try again in a minute.")
    return None


def missing_table(exc: Exception) -> bool:
    """True for "no such table" (SQLite) or undefined_table (PostgreSQL, SQLSTATE 42P01)."""
    return getattr(exc.__cause__, "pgcode", None) == "42P01" or "no such table" in str(exc)


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
    suggest = getattr(error, "suggest", None)
    if suggest is not None:
        body["error"]["suggest"] = suggest
    response = JsonResponse(body, status=error.http_status)
    if error.http_status == 401:
        response["WWW-Authenticate"] = "Hashtag"
    if error.http_status == 503:
        response["Retry-After"] = "30"
    return response


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every API error as {"error": {"code", "message"}}; None re-raises."""
    error = as_domain_error(exc)
    if error is None:
        return None
    set_rollback()
    response = json_error(error)
    wait = getattr(exc, "wait", None)
    if error.http_status == 429:
        # DRF's throttles know the wait; the hashtag lock-out lasts its window.
        seconds = wait if wait is not None else settings.HASHTAG_FAILURE_WINDOW
        response["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


def error_response(request, error: DomainError) -> HttpResponse:
    """The error in the format of the route: JSON under /api/, the legacy plain line elsewhere."""
    if "/api/" in request.path:
        return json_error(error)
    return plain_error(error)


def url_under_prefix(request, name: str) -> str:
    """The URL of a named route under the prefix the request came in on (the root or /followup/)."""
    from django.urls import reverse

    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match is not None else ""
    return reverse(f"{namespace}:{name}" if namespace else name)


OUTPUT_FORMATS = ("", "json", "html")


def requested_format(request) -> str:
    """outputFormat (form field or query parameter, or format=): '', 'json' or 'html'; BadInput otherwise."""
    data = getattr(request, "data", None)
    value = None
    if hasattr(data, "get"):
        value = data.get("outputFormat")
    value = value or request.query_params.get("outputFormat") or request.query_params.get("format")
    text = str(value or "").strip().lower()
    if text not in OUTPUT_FORMATS:
        raise BadInput("outputFormat must be json or html.")
    return text


def wants_json(request) -> bool:
    """outputFormat=json (form field or query parameter) selects JSON on legacy endpoints."""
    try:
        return requested_format(request) == "json"
    except BadInput:
        return False


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
        # Checked before the view acts, so that a bad format never follows a stored change.
        requested_format(request)

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


def page_visit(request) -> bool:
    """True when a person's browser opens the URL as a page (scripts keep their plain answers).

    Browsers say so with ``Sec-Fetch-Dest: document`` (on https and 127.0.0.1) and an Accept
    header that starts with text/html; curl, requests, mechanize and the old clients send neither.
    """
    meta = request.META
    accept = meta.get("HTTP_ACCEPT", "")
    return meta.get("HTTP_SEC_FETCH_DEST") == "document" or accept.startswith("text/html")


def error_page(request, error: DomainError) -> HttpResponse:
    """A domain error as a page of the site, with its status."""
    context = {"error": error, "status": error.http_status}
    return render(request, "error.html", context, status=error.http_status)


def plain_text_errors(view):
    """Answer the domain errors of a plain Django view as the legacy one-line plain-text body.

    A browser opening the page gets the same message in the site's layout, with the same status.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as error:
            if page_visit(request) and (request.GET.get("format") or "html").lower() == "html":
                return error_page(request, error)
            return plain_error(error)

    return wrapper


def json_errors(view):
    """Answer the domain errors of a plain Django JSON view as the API's error body."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as error:
            return json_error(error)

    return wrapper


class RatesFromSettings:
    """Read the rate from settings.API_THROTTLE_RATES at each request (DRF reads it once at import)."""

    def get_rate(self):
        return settings.API_THROTTLE_RATES[self.scope]


class ApiAnonThrottle(RatesFromSettings, AnonRateThrottle):
    """Anonymous API calls, counted per client address."""


class ApiUserThrottle(RatesFromSettings, UserRateThrottle):
    """Authenticated API calls, counted per account (anonymous ones are the other throttle's)."""

    def get_cache_key(self, request, view):
        # DRF's UserRateThrottle counts anonymous calls too, which would cost a second cache
        # write per anonymous request (each is a database write with the database cache).
        if not request.user or not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)


class ApiPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ApiMixin:
    """What every /api/v1/ view shares: JSON only, throttled, paginated lists."""

    renderer_classes = [JSONRenderer]
    throttle_classes = [ApiAnonThrottle, ApiUserThrottle]
    pagination_class = ApiPagination


def refused_request_message(exception, request=None) -> str:
    """What to fix, for a request Django refuses before any view runs."""
    from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
    from django.http.multipartparser import MultiPartParserError

    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return f"Too many form fields (over {limit}); send only the upload's fields."
    if isinstance(exception, TooManyFilesSent) and request is not None and "batches/" in request.path:
        return (
            f"Too many files (over {settings.DATA_UPLOAD_MAX_NUMBER_FILES}) in one form; "
            "send the frames as one zip or tar archive."
        )
    if isinstance(exception, TooManyFilesSent):
        return f"Too many files (over {settings.DATA_UPLOAD_MAX_NUMBER_FILES}); send one catalog per upload."
    if isinstance(exception, MultiPartParserError):
        return readable_parse_error(str(exception))
    return "The request could not be read; reload the page and send it again."


def route_view_class(request):
    """The class of the view the request's path leads to, or None (a function view, or no route)."""
    from django.urls import Resolver404, resolve

    try:
        return getattr(resolve(request.path_info).func, "view_class", None)
    except Resolver404:
        return None


def bad_request(request, exception):
    """handler400: a request Django refuses before any view (too many fields, an unreadable form).

    The API answers its JSON error and the legacy endpoints their plain line, as for any other
    error of theirs; the site's pages keep the layout, say what was wrong and link back to the form.
    """
    message = refused_request_message(exception, request)
    view = route_view_class(request)
    if "/api/" in request.path or (view is not None and issubclass(view, LegacyView)):
        return error_response(request, BadInput(message))
    return render(request, "400.html", {"message": message, "back": request.path}, status=400)
