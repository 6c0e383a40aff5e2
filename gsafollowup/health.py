"""GET /health: 200 when this process can query its database, 503 (plain text) when not."""

from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def health(request):
    """For load balancers, systemd and the test harness; touches nothing but a SELECT 1."""
    with connection.cursor() as cursor:
        # A lost database raises OperationalError here; DatabaseUnavailableMiddleware answers 503.
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse("ok\n", content_type="text/plain")
