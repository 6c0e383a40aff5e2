"""Settings for gsafollowup: one module, every secret and location from the environment.

Environment variables:
  DEBUG            "1" for development (default "0").
  SECRET_KEY       required unless DEBUG=1.
  DATABASE_URL     e.g. postgres://user:pass@host:5432/db (default: SQLite file var/db.sqlite3).
  ALLOWED_HOSTS    comma-separated host names (default: localhost,127.0.0.1 when DEBUG=1).
  MEDIA_ROOT       where kept catalogs and plots go (default: var/media).
  STATIC_ROOT      where collectstatic writes (default: var/static).
  CSRF_TRUSTED_ORIGINS  comma-separated origins behind a TLS proxy.
  SECURE_SSL_REDIRECT   "1" to redirect http to https (default with DEBUG=0, behind TLS).
  LEGACY_PLAIN_HTTP     "0" to redirect the legacy routes to https too (default "1": the routes of
                   LEGACY_API.md answer plain http, because every old client script has http:// in it).
  MAX_UPLOAD_MB    largest accepted catalog upload in megabytes (default 50).
  ADMIN_LOGIN_FAILURE_LIMIT, ADMIN_LOGIN_COOLOFF_MINUTES  curator lock-out (default 5, 15).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_flag(name: str, default: str = "0") -> bool:
    """True when the variable is set to 1/true/yes/on."""
    return os.environ.get(name, default).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable as a list of non-empty stripped items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_flag("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for development).")
    # A development key only: never used when DEBUG is off.
    SECRET_KEY = "dev-only-insecure-key-for-local-development-never-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    # The project itself, for its one migration: the cache table (see gsafollowup/migrations).
    "gsafollowup",
    "observers",
    "alerts",
    "calibration",
]

MIDDLEWARE = [
    # First, so that its total covers every other middleware (off unless SERVER_TIMING).
    "gsafollowup.timing.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "gsafollowup.middleware.UploadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A hashtag session ends once its hashtag is revoked or its observatory deactivated.
    "observers.auth.HashtagSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out curator login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gsafollowup.urls"
WSGI_APPLICATION = "gsafollowup.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "observers.context_processors.observatory",
                "gsafollowup.site.site",
            ],
        },
    },
]

if not os.environ.get("DATABASE_URL"):
    # The zero-setup default: a SQLite file in the ignored var/ folder.
    VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a concurrent writer instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The cache holds the API throttles; a database table keeps them shared between the worker
# processes of one deployment. (Wrong-hashtag counts are rows of observers.HashtagFailure,
# counted atomically by the database itself.)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "gsafollowup_cache",
    }
}

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out curator is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Curators' passwords; also what force_login and sessions of password logins resolve with.
    "django.contrib.auth.backends.ModelBackend",
    "observers.auth.HashtagBackend",
]
LOGIN_URL = "home"

# Curator logins (/admin/, passwords) are locked out by django-axes after ADMIN_LOGIN_FAILURE_LIMIT
# wrong passwords for one account from one address, for ADMIN_LOGIN_COOLOFF_MINUTES. Hashtags
# have their own per-address limit (observers.auth), so axes watches the admin site only.
AXES_ONLY_ADMIN_SITE = True
AXES_FAILURE_LIMIT = int(os.environ.get("ADMIN_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ADMIN_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "observers.auth.login_address"
# Failed curator logins are recorded (the lock-out needs them); successful ones are not.
AXES_DISABLE_ACCESS_LOG = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js from the installed plotly package: pages never load scripts from the internet.
    "gsafollowup.finders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

MAX_UPLOAD_MB = float(os.environ.get("MAX_UPLOAD_MB", "50"))
#: Answer a Server-Timing header with the time of each stage of a request (benchmarks; off by
#: default, since it tells any client how long the server spent on each step).
SERVER_TIMING = env_flag("SERVER_TIMING", "0")
# Django refuses bodies above this before any view runs; uploads are streamed to disk beyond 2.5 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(MAX_UPLOAD_MB * 1024 * 1024) + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = [
    "calibration.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Wrong-hashtag throttle: after this many failures from a client address (an IPv6 /64 as one)
# within the window, its further wrong hashtags get 429; a valid hashtag always works.
HASHTAG_FAILURE_LIMIT = int(os.environ.get("HASHTAG_FAILURE_LIMIT", "10"))
HASHTAG_FAILURE_WINDOW = int(os.environ.get("HASHTAG_FAILURE_WINDOW", "300"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "observers.auth.HashtagAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Production hardening: active whenever DEBUG is off (check --deploy is clean).
SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", "0" if DEBUG else "1")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# ---- Production serving (gunicorn behind a reverse proxy; docs/deploy.md) ----
# A view that loses the database answers 503 with a clear message, not a 500 traceback.
MIDDLEWARE.append("gsafollowup.middleware.DatabaseUnavailableMiddleware")
# Load balancers and the service manager probe /health over plain http on the loopback.
SECURE_REDIRECT_EXEMPT = [r"^(followup/)?health$"]
# The legacy routes answer plain http too: every old client script has http:// in it, and a
# redirect makes curl exit 0 on an empty 301 while nothing is stored. HSTS is only ever sent on
# https answers, so these answers carry none. Patterns are paths without their leading slash.
LEGACY_PLAIN_HTTP = env_flag("LEGACY_PLAIN_HTTP", "1")
LEGACY_ROUTES = (
    r"^(followup/)?(cgi/(upload|newevent|delpoint|newuser)"
    r"|get_alert_lc|get_alert_lc_data|list_of_alerts|list_of_followups)$"
)
if LEGACY_PLAIN_HTTP:
    SECURE_REDIRECT_EXEMPT.append(LEGACY_ROUTES)
# How many reverse proxies in front of the server append to X-Forwarded-For (0: none, the
# client is REMOTE_ADDR). The wrong-hashtag throttle counts per real client address: behind
# one nginx set 1, so the address nginx saw is used and a client cannot forge its own.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# -- REST API (/api/v1/): OpenAPI schema, local Swagger UI/Redoc assets, JSON errors, throttles --
#   API_THROTTLE_ANON  requests per client address for anonymous API calls (default 120/min).
#   API_THROTTLE_USER  requests per account for authenticated API calls (default 600/min).
INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar"]
REST_FRAMEWORK.update(
    {
        "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        "EXCEPTION_HANDLER": "gsafollowup.http.api_exception_handler",
        # Throttles count the real client: REMOTE_ADDR, or the address the trusted proxies saw.
        "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    }
)
API_THROTTLE_RATES = {
    "anon": os.environ.get("API_THROTTLE_ANON", "120/min"),
    "user": os.environ.get("API_THROTTLE_USER", "600/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gsafollowup API",
    "DESCRIPTION": (
        "Alerts, calibrated follow-up photometry and reference surveys. Authenticate with the header "
        '`Authorization: Hashtag <value>`. Errors are `{"error": {"code": ..., "message": ...}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["gsafollowup.schema.only_api_v1"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gsafollowup.schema.add_error_responses",
    ],
}
# -- Reference sources (issue 9): where each survey's stars come from --------------------------
# "database" (the default: what ingest_refcat loaded), "remote" (fetched from the public archive
# on first use and kept in the database), or "hats:<directory or URL>" (a HATS catalog read in
# place). Set per survey, e.g. REFERENCE_SOURCES="GaiaDR3=remote,PS1=hats:/data/hats/ps1".
REFERENCE_SOURCES = {
    survey.strip(): source.strip()
    for survey, _, source in (
        item.partition("=") for item in os.environ.get("REFERENCE_SOURCES", "").split(",") if item.strip()
    )
}
# TAP services queried by the "remote" source; tests point them at a server on 127.0.0.1.
ARCHIVE_URLS = {
    "vizier": os.environ.get("VIZIER_TAP_URL", "https://tapvizier.cds.unistra.fr/TAPVizieR/tap"),
    "gaia": os.environ.get("GAIA_TAP_URL", "https://gea.esac.esa.int/tap-server/tap"),
}
# Seconds to wait for one archive answer, attempts per query, and the first pause between
# attempts (doubled after each failure): 3 attempts wait 1 s then 2 s.
ARCHIVE_TIMEOUT = float(os.environ.get("ARCHIVE_TIMEOUT", "60"))
ARCHIVE_ATTEMPTS = int(os.environ.get("ARCHIVE_ATTEMPTS", "3"))
ARCHIVE_BACKOFF = float(os.environ.get("ARCHIVE_BACKOFF", "1"))
# Rows asked of an archive per cone: far above any field's stars, so an answer that reaches it
# is treated as truncated (refused) rather than silently cached as complete.
ARCHIVE_MAXREC = int(os.environ.get("ARCHIVE_MAXREC", "3000000"))
# ---------------------------------------------------------------- access control (issue 8)
# No hashtag in a log line: every handler redacts them (gsafollowup/redaction.py), including the
# request lines of runserver ("django.server", which Django gives a handler of its own) and the
# tracebacks of django.request errors. Error reports (500 page in DEBUG, mails to ADMINS) too.
LOGGING["filters"] = {
    "redact_hashtags": {"()": "gsafollowup.redaction.RedactHashtags"},
    "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
}
LOGGING["handlers"]["console"]["filters"] = ["redact_hashtags"]
LOGGING["formatters"]["server"] = {"format": "%(asctime)s %(name)s: %(message)s"}
LOGGING["handlers"]["server"] = {
    "class": "logging.StreamHandler",
    "formatter": "server",
    "filters": ["redact_hashtags"],
}
LOGGING["handlers"]["mail_admins"] = {
    "level": "ERROR",
    "class": "django.utils.log.AdminEmailHandler",
    "filters": ["require_debug_false", "redact_hashtags"],
}
LOGGING["loggers"] = {
    # Django's own defaults send these to unfiltered handlers; route them through ours only.
    "django": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
    "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    # django-axes says hello at INFO on every start; its lock-outs are warnings and stay.
    "axes": {"level": "WARNING"},
}
DEFAULT_EXCEPTION_REPORTER_FILTER = "gsafollowup.error_reports.HashtagReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "gsafollowup.error_reports.HashtagExceptionReporter"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"


# Alert harvesting (issue 18). The TNS selection decides which TNS objects become alerts; with
# nothing set, none does (their records are kept, and new-event by name finds them).
def env_float(name: str) -> float | None:
    text = os.environ.get(name, "").strip()
    return float(text) if text else None


TNS_SELECTION = {
    "types": env_list("TNS_SELECT_TYPES"),  # e.g. "SN Ia,SN II,TDE"
    "max_mag": env_float("TNS_SELECT_MAX_MAG"),  # discovery magnitude at most
    "dec_min": env_float("TNS_SELECT_DEC_MIN"),
    "dec_max": env_float("TNS_SELECT_DEC_MAX"),
    "max_age_days": env_float("TNS_SELECT_MAX_AGE_DAYS"),  # discovered at most this many days ago
    "names": env_list("TNS_SELECT_NAMES"),  # these always, e.g. "2024abc,2024xyz"
}
#: Every alert of the Gaia index becomes an alert (the stream this server was made for).
GAIA_CREATE_ALERTS = env_flag("GAIA_CREATE_ALERTS", "1")
#: A GCN notice makes or refines an alert only with an error radius at most this (arcmin).
GCN_MAX_ERROR_ARCMIN = env_float("GCN_MAX_ERROR_ARCMIN") or 10.0
#: gcn-kafka credentials (listen_gcn); from the environment only.
GCN_KAFKA_CLIENT_ID = os.environ.get("GCN_KAFKA_CLIENT_ID", "")
GCN_KAFKA_CLIENT_SECRET = os.environ.get("GCN_KAFKA_CLIENT_SECRET", "")
#: Downloads (harvest_alerts tns|gaia --download). TNS wants a bot's API key, and its id and name
#: in the User-Agent; from the environment only. The base URLs are settings so tests serve them.
TNS_API_KEY = os.environ.get("TNS_API_KEY", "")
TNS_BOT_ID = os.environ.get("TNS_BOT_ID", "")
TNS_BOT_NAME = os.environ.get("TNS_BOT_NAME", "")
TNS_BASE_URL = os.environ.get("TNS_BASE_URL", "https://www.wis-tns.org")
GAIA_ALERTS_URL = os.environ.get("GAIA_ALERTS_URL", "https://gsaweb.ast.cam.ac.uk/alerts")
#: Per request: seconds to connect and between bytes, attempts, and the first retry's wait (doubling).
HARVEST_DOWNLOAD = {
    "timeout": float(os.environ.get("HARVEST_DOWNLOAD_TIMEOUT", "60")),
    "attempts": int(os.environ.get("HARVEST_DOWNLOAD_ATTEMPTS", "4")),
    "backoff": float(os.environ.get("HARVEST_DOWNLOAD_BACKOFF", "2")),
}
GCN_KAFKA_TOPICS = env_list(
    "GCN_KAFKA_TOPICS",
    "gcn.classic.voevent.SWIFT_BAT_GRB_POS_ACK,gcn.classic.voevent.SWIFT_XRT_POSITION,"
    "gcn.classic.voevent.SWIFT_UVOT_POS,gcn.classic.voevent.FERMI_LAT_POS_UPD,"
    "gcn.classic.voevent.INTEGRAL_REFINED,gcn.classic.voevent.ICECUBE_ASTROTRACK_GOLD",
)

# ---------------------------------------------------------------- background work (issue 17)
# Django's task framework (the django-tasks backport on Django 5.2), one code path, two engines:
#   TASKS_BACKEND=database  (default) tasks are rows of the project's database, run by
#                   `manage.py run_worker` processes: nothing more to install or run.
#   TASKS_BACKEND=rq        tasks go through Redis (REDIS_URL) to RQ workers on any machine that
#                   shares the database and MEDIA_ROOT (docs/deploy.md).
# Whatever the engine, the jobs app's Job rows (same database as the points) are the truth:
# state, attempts, lease and result; the engine only carries "run job <id>" messages.
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "database").strip().lower()
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
#: The queues, in the order workers take them: observers' uploads before recalibrations.
TASK_QUEUES = ["interactive", "bulk"]
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": TASK_QUEUES}}
elif TASKS_BACKEND == "rq":
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": TASK_QUEUES}}
else:
    raise ImproperlyConfigured("TASKS_BACKEND must be 'database' or 'rq'.")
INSTALLED_APPS += ["django_tasks", "django_tasks_db", "django_rq", "jobs"]
# A calibration may take minutes on a huge frame; RQ's default (180 s) would kill it.
# django-tasks-rq looks results up through django-rq's "default" connection: it must exist too.
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 1800} for name in [*TASK_QUEUES, "default"]}
# Seconds a running job's lease lasts; its worker renews it every third of that. A job whose
# lease ran out (worker killed, machine gone) is given to another worker.
JOBS_LEASE_SECONDS = float(os.environ.get("JOBS_LEASE_SECONDS", "30"))
JOBS_HEARTBEAT = env_flag("JOBS_HEARTBEAT", "1")
# Attempts per job (crashes included) and the first pause before a retry, doubled each time.
JOBS_MAX_ATTEMPTS = int(os.environ.get("JOBS_MAX_ATTEMPTS", "5"))
JOBS_RETRY_BACKOFF = float(os.environ.get("JOBS_RETRY_BACKOFF", "2"))
JOBS_RETRY_BACKOFF_MAX = float(os.environ.get("JOBS_RETRY_BACKOFF_MAX", "300"))
# Per-observatory fairness: at most this many of one observatory's jobs wait in the engine's
# queue at once (per queue); the rest wait in the Job table and are handed over one by one as
# workers take them, so another observatory's upload waits behind a few frames, not 500.
JOBS_QUEUED_PER_OBSERVATORY = int(os.environ.get("JOBS_QUEUED_PER_OBSERVATORY", "2"))
# How often each worker's supervisor looks for expired leases, lost messages and due retries,
# and how old a queued job's message must be before the supervisor asks whether it was lost.
JOBS_SUPERVISE_INTERVAL = float(os.environ.get("JOBS_SUPERVISE_INTERVAL", "2"))
JOBS_REDELIVER_AFTER = float(os.environ.get("JOBS_REDELIVER_AFTER", "30"))
# Seconds an idle database worker waits before looking for new tasks again.
JOBS_POLL_INTERVAL = float(os.environ.get("JOBS_POLL_INTERVAL", "0.2"))
# Batches: frames per batch, the whole request, and the total of the files once unpacked.
BATCH_MAX_FILES = int(os.environ.get("BATCH_MAX_FILES", "1000"))
BATCH_MAX_UPLOAD_MB = float(os.environ.get("BATCH_MAX_UPLOAD_MB", "500"))
BATCH_MAX_TOTAL_MB = float(os.environ.get("BATCH_MAX_TOTAL_MB", "2000"))
