"""Domain errors: each carries a one-line message for the observer.

This module is the one place that maps them to HTTP: every view (legacy endpoint, web form,
REST API) reads ``http_status`` and ``code`` from the exception and nothing else. It imports
no Django, so the numerical core can raise these too.
"""

from .redaction import redact


class DomainError(Exception):
    """Base class: ``str(error)`` is a short message an observer can act on."""

    http_status = 400
    code = "error"

    def __init__(self, message: str):
        # Messages may quote what the client sent: a hashtag pasted into the wrong field stays
        # secret, and control characters or line breaks in it cannot break the one-line answer.
        message = " ".join(redact(message).split())
        message = "".join(c if c.isprintable() else "?" for c in message)
        super().__init__(message)
        self.message = message


class BadInput(DomainError):
    """A form field or parameter has a wrong or missing value."""

    code = "bad_input"


class BadCatalog(BadInput):
    """The uploaded source catalog cannot be read or lacks what calibration needs."""

    code = "bad_catalog"


class NotAuthenticated(DomainError):
    """No hashtag, or one that is unknown or revoked."""

    http_status = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    http_status = 403
    code = "forbidden"


class NotFound(DomainError):
    """The named object does not exist."""

    http_status = 404
    code = "not_found"


class UnknownEvent(NotFound):
    """The alert named by EventID / alert_id is not in the database."""

    code = "unknown_event"


class MethodNotAllowed(DomainError):
    """The route exists but not for this HTTP method."""

    http_status = 405
    code = "method_not_allowed"


class NotAcceptable(DomainError):
    """The client accepts no media type this route can answer in."""

    http_status = 406
    code = "not_acceptable"


class UnsupportedMediaType(DomainError):
    """The request body is in a media type this route does not read."""

    http_status = 415
    code = "unsupported_media_type"


class Duplicate(DomainError):
    """The object exists already; ``existing_id`` names it."""

    http_status = 409
    code = "duplicate"

    def __init__(self, message: str, existing_id: int | None = None):
        super().__init__(message)
        self.existing_id = existing_id


class NearbyAlert(Duplicate):
    """A new alert lies within 1.5" of an existing one: the same object, to be named by an alias."""

    code = "nearby_alert"
    suggest = "alias"


class TooLarge(DomainError):
    """The upload exceeds the configured size limit."""

    http_status = 413
    code = "too_large"


class CalibrationImpossible(DomainError):
    """The catalog was read but no calibration can be made from it."""

    http_status = 422
    code = "calibration_failed"


class Throttled(DomainError):
    """Too many attempts (e.g. wrong hashtags) from one client."""

    http_status = 429
    code = "throttled"


class InsufficientStorage(DomainError):
    """The server cannot write what it must keep (disk full, read-only or unwritable storage)."""

    http_status = 507
    code = "storage_unavailable"


class ServiceUnavailable(DomainError):
    """A backing service (database, archive) is down; retrying later may succeed."""

    http_status = 503
    code = "unavailable"


class ArchiveUnavailable(ServiceUnavailable):
    """A survey's archive did not answer usefully (down, timing out, an error or a truncated answer)."""

    code = "archive_unavailable"

    def __init__(self, survey: str, message: str):
        super().__init__(message)
        self.survey = survey


class HatsUnavailable(ServiceUnavailable):
    """A HATS catalog cannot be opened or read, or holds none of the survey's columns."""

    code = "hats_unavailable"


def error_codes() -> dict[str, int]:
    """Every stable error code and its HTTP status, for the API documentation."""
    codes = {}
    pending = [DomainError]
    while pending:
        cls = pending.pop()
        codes[cls.code] = cls.http_status
        pending.extend(cls.__subclasses__())
    return dict(sorted(codes.items(), key=lambda item: (item[1], item[0])))
