"""Refuse oversized request bodies before anything reads them."""

from django.conf import settings

from gsafollowup.errors import TooLarge
from gsafollowup.http import json_error, plain_error


class UploadLimitMiddleware:
    """413 for a declared body larger than MAX_UPLOAD_MB; the upload handler catches undeclared ones."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > upload_limit_bytes():
            error = TooLarge(f"The upload is larger than the {settings.MAX_UPLOAD_MB:g} MB limit.")
            # The REST API answers its JSON error body; legacy routes their one plain line.
            return json_error(error) if "/api/v1/" in request.path else plain_error(error)
        return self.get_response(request)


def upload_limit_bytes() -> int:
    # A little room for the other form fields around the file.
    return int(settings.MAX_UPLOAD_MB * 1024 * 1024) + 64 * 1024
