"""Request-wide guards: oversized bodies are refused early; a database outage answers 503."""

from django.conf import settings

from gsafollowup.errors import TooLarge
from gsafollowup.http import database_unavailable, error_response


class UploadLimitMiddleware:
    """413 for a declared body larger than MAX_UPLOAD_MB; the upload handler catches undeclared ones."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > upload_limit_bytes(request):
            error = TooLarge(f"The upload is larger than the {limit_mb(request):g} MB limit.")
            # The REST API answers its JSON error body; legacy routes their one plain line.
            return error_response(request, error)
        return self.get_response(request)


def is_batch(request) -> bool:
    """Batch submissions (a night of frames, or an archive of them) have a limit of their own."""
    return request is not None and request.method == "POST" and "batches/" in request.path


def limit_mb(request=None) -> float:
    return settings.BATCH_MAX_UPLOAD_MB if is_batch(request) else settings.MAX_UPLOAD_MB


def upload_limit_bytes(request=None) -> int:
    # A little room for the other form fields around the file.
    return int(limit_mb(request) * 1024 * 1024) + 64 * 1024


class DatabaseUnavailableMiddleware:
    """A view that loses its database answers a clear 503 instead of a 500 with a traceback.

    DRF views (legacy endpoints, API) map the same errors in their own exception handler; this
    covers the plain Django views (pages, forms, /health). With CONN_HEALTH_CHECKS the next
    request after the database is back opens a fresh connection, without restarting the server.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        error = database_unavailable(exception)
        return None if error is None else error_response(request, error)
