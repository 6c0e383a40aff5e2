"""GET /health: 200 when this process can query its database and write its storage, 503 when not."""

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def storage_problem() -> str | None:
    """Why MEDIA_ROOT cannot take a kept catalog now, or None: writes, syncs and removes a probe file."""
    root = Path(settings.MEDIA_ROOT)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".health-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as error:
        return os.strerror(error.errno) if error.errno else str(error)
    return None


@never_cache
@require_GET
def health(request):
    """For load balancers, systemd and the test harness: a SELECT 1 and a probe file under MEDIA_ROOT."""
    with connection.cursor() as cursor:
        # A lost database raises OperationalError here; DatabaseUnavailableMiddleware answers 503.
        cursor.execute("SELECT 1")
        cursor.fetchone()
    # A full or read-only disk refuses every upload while reads still work: say so, not "ok".
    problem = storage_problem()
    if problem is not None:
        return HttpResponse(
            f"storage cannot be written (MEDIA_ROOT): {problem}\n", status=503, content_type="text/plain"
        )
    return HttpResponse("ok\n", content_type="text/plain")
