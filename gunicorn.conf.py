"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py gsafollowup.wsgi` (docs/deploy.md).

Every value can be changed from the environment, like the Django settings.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Calibration is CPU-bound numpy work: synchronous worker processes, about 2 per core.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
# A large catalog takes seconds to calibrate; a worker silent for longer than this is killed
# and replaced (its transaction rolls back, so nothing half-stored remains).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Recycle workers now and then so that memory held by numpy/matplotlib cannot grow forever.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# Upload bodies are buffered by the reverse proxy; these bound the request line and headers.
limit_request_line = 8190
limit_request_fields = 100
# Addresses of the reverse proxies whose X-Forwarded-Proto is believed.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
# The path without the query string (%(U)s, not %(r)s): a hashtag may be a query parameter.
# No referrer either, for the same reason. Last field: request time in microseconds.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(D)s'
proc_name = "gsafollowup"
