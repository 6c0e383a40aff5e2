import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gsafollowup.settings")
django_application = get_wsgi_application()

# Imported once Django is set up: it needs the settings and the apps.
from gsafollowup.chunked import ChunkedBodyMiddleware  # noqa: E402

application = ChunkedBodyMiddleware(django_application)
