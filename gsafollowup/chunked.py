"""Request bodies sent with Transfer-Encoding: chunked, made readable by Django.

Django's WSGI handler reads exactly CONTENT_LENGTH bytes of a body; a chunked body (curl -H
'Transfer-Encoding: chunked', streaming clients) has no CONTENT_LENGTH, so Django read nothing
and an upload with its hashtag was answered "A hashtag is required". gunicorn de-chunks the
body; this WSGI wrapper spools it (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk beyond)
and sets CONTENT_LENGTH, reading at most one byte more than the upload limit, so that an
oversized body is refused with the usual 413 of UploadLimitMiddleware without being read whole.
"""

import tempfile

from django.conf import settings

from gsafollowup.middleware import upload_limit_bytes

_PIECE = 64 * 1024


class ChunkedBodyMiddleware:
    """WSGI middleware: a chunked request body gets a CONTENT_LENGTH before Django sees it."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
            limit = upload_limit_bytes() + 1
            stream = environ["wsgi.input"]
            size = 0
            while size < limit:
                piece = stream.read(min(_PIECE, limit - size))
                if not piece:
                    break
                body.write(piece)
                size += len(piece)
            body.seek(0)
            environ["wsgi.input"] = body
            environ["CONTENT_LENGTH"] = str(size)
            try:
                return self.application(environ, start_response)
            finally:
                # Django has read what it needs by now (responses are not streamed from the body).
                body.close()
        return self.application(environ, start_response)


