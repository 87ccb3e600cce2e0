"""Settings, read from the environment with django-environ.

Two modes (DESIGN.md §5): local by default (DEBUG, SQLite and a filesystem broker under
``var/``, so ``make run`` needs nothing but Python), production when ``DJANGO_DEBUG=false``
(refuses to start without ``SECRET_KEY``; hosts and TLS follow ``PUBLIC_BASE_URL``).
Every variable is documented in README.md with its default.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DJANGO_DEBUG", default=True)


def _local_secret_key() -> str:
    """A secret generated once into var/, so local sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DJANGO_DEBUG=false (production mode)."
        )
    SECRET_KEY = _local_secret_key()

# The public base URL is where Segment reaches this install; hosts and CSRF origins follow it.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_public = urlsplit(PUBLIC_BASE_URL)
if not _public.scheme or not _public.hostname:
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL is not an absolute URL: {PUBLIC_BASE_URL!r}")
_public_origin = f"{_public.scheme}://{_public.netloc}"

if DEBUG:
    # A DisallowedHost 400 is permanent loss at Segment: accept any host locally.
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
else:
    ALLOWED_HOSTS = [_public.hostname, *env.list("ALLOWED_HOSTS", default=[])]
CSRF_TRUSTED_ORIGINS = [_public_origin, *env.list("CSRF_TRUSTED_ORIGINS", default=[])]

INSTALLED_APPS = [
    "integrations.admin_site.SegmentAdminConfig",  # the admin, with the integration page
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "planhat_segment",
    "integrations",
    "usage",
    "warehouse_sync",
    "health",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in person's time zone on admin pages (display only; days stay UTC days).
    "integrations.preferences.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "planhat_segment.urls"
WSGI_APPLICATION = "planhat_segment.wsgi.application"

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
            ],
        },
    },
]


def _program_name() -> str:
    """``planhat-segment:<program>``, e.g. ``gunicorn``, ``celery``, ``manage.py``."""
    path = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    program = path.parent.name if path.name == "__main__.py" else path.name
    return f"planhat-segment:{program}"[:63]  # PostgreSQL's limit for application_name


DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web + worker + beat share the file: WAL, IMMEDIATE transactions and a busy timeout
    # avoid "database is locked" (DESIGN.md §7).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Each gunicorn thread / Celery process keeps one connection: bounded by the Procfile's
    # workers x threads (runserver's thread per request would leak one per request).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Names the connections in pg_stat_activity by program (gunicorn, celery, manage.py), so
    # an operator sees who holds them.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "application_name", env("DATABASE_APPLICATION_NAME", default=_program_name())
    )
if env("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 behaviour now (transitional setting)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The admin writes times as "2026-03-01 14:05:09 CET": with seconds and the zone's name.
FORMAT_MODULE_PATH = ["planhat_segment.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
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

# Routes Segment (and Planhat's open API senders) post to: never redirected (a 301 on POST
# loses the event).
INGEST_PATH_PATTERNS = [r"^dock/", r"^v1/", r"^analytics(?:/|$)", r"^dimensiondata(?:/|$)"]

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    _https = _public.scheme == "https"
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_https)
    SECURE_REDIRECT_EXEMPT = INGEST_PATH_PATTERNS
    SESSION_COOKIE_SECURE = _https
    CSRF_COOKIE_SECURE = _https
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _https else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares the permissions it needs; one that declares none is refused.
    "DEFAULT_PERMISSION_CLASSES": ["planhat_segment.permissions.DeclaredPermissions"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=100),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Planhat-style Segment integration API",
    "DESCRIPTION": "Workspace objects, integration settings, usage and sync runs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes routes and holds no data: any signed-in user or API key reads it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport needs existing folders; in and out must be the same one.
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Publishing must fail fast when Redis is down: the database is the source of truth and
    # the sweeper is the safety net (DESIGN.md §7).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "max_retries": 0,
        "socket_timeout": 2,
        "socket_connect_timeout": 1,
        "visibility_timeout": 3600,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"usage.*": {"queue": "ingest"}, "warehouse_sync.*": {"queue": "warehouse"}}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Queue objects, not names: Celery reads this as task_queues and fails every publish on a str;
# each queue gets its own exchange and routing key, as Celery's automatic queues do.
CELERY_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in ("ingest", "warehouse", "default")
]

# --- The integration ----------------------------------------------------------------------
# How long a rotated-out tenant token keeps working, so Segment can be updated without loss.
TOKEN_ROTATION_GRACE_HOURS = env.int("TOKEN_ROTATION_GRACE_HOURS", default=72)
# The login `make run` ensures (the password is generated into var/ when not given).
ADMIN_USERNAME = env("ADMIN_USERNAME", default="admin")
ADMIN_PASSWORD = env("ADMIN_PASSWORD", default="")
ADMIN_EMAIL = env("ADMIN_EMAIL", default="admin@example.com")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Tokens never reach the logs (planhat_segment/logs.py; README "Logs").
    "filters": {"redact_tokens": {"()": "planhat_segment.logs.RedactingFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own console handler (DEBUG only) would print its lines unfiltered: django
        # logs go to the root's (redacting) handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}

# --- warehouse sync ---
# The push to Segment (section 3). Documented in README.md ("Segment data warehouse").
WAREHOUSE_PUSH_MAX_BATCH_BYTES = env.int("WAREHOUSE_PUSH_MAX_BATCH_BYTES", default=450_000)
WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = env.int("WAREHOUSE_PUSH_MAX_BATCH_MESSAGES", default=2_000)
WAREHOUSE_PUSH_MAX_MESSAGE_BYTES = env.int("WAREHOUSE_PUSH_MAX_MESSAGE_BYTES", default=32_000)
WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = env.float(
    "WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND", default=500
)
WAREHOUSE_PUSH_GZIP = env.bool("WAREHOUSE_PUSH_GZIP", default=True)
WAREHOUSE_PUSH_TIMEOUT_SECONDS = env.float("WAREHOUSE_PUSH_TIMEOUT_SECONDS", default=30)
WAREHOUSE_PUSH_MAX_ATTEMPTS = env.int("WAREHOUSE_PUSH_MAX_ATTEMPTS", default=6)
WAREHOUSE_PUSH_BACKOFF_SECONDS = env.float("WAREHOUSE_PUSH_BACKOFF_SECONDS", default=1.0)
WAREHOUSE_PUSH_BACKOFF_MAX_SECONDS = env.float("WAREHOUSE_PUSH_BACKOFF_MAX_SECONDS", default=60)
WAREHOUSE_PUSH_MAX_FAILED_BATCHES = env.int("WAREHOUSE_PUSH_MAX_FAILED_BATCHES", default=3)
# Batches in flight at once (reading and packing the next one overlaps the HTTP wait).
WAREHOUSE_PUSH_CONCURRENCY = env.int("WAREHOUSE_PUSH_CONCURRENCY", default=2)
WAREHOUSE_PUSH_CHUNK_SIZE = env.int("WAREHOUSE_PUSH_CHUNK_SIZE", default=2_000)
WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS = env.int("WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS", default=300)
# Hours (UTC) of the push's periodic task entry when it is first created (warehouse_sync/
# schedules.py); the admin owns the entry afterwards.
WAREHOUSE_PUSH_SCHEDULE_HOURS = env("WAREHOUSE_PUSH_SCHEDULE_HOURS", default="0,8,16")
# Retention in days, purged daily by warehouse_sync.purge_history (warehouse_sync/services/
# retention.py says what each keeps regardless: change-mark runs, unsent tombstones, …).
WAREHOUSE_RUN_RETENTION_DAYS = env.int("WAREHOUSE_RUN_RETENTION_DAYS", default=90)
WAREHOUSE_BATCH_RETENTION_DAYS = env.int("WAREHOUSE_BATCH_RETENTION_DAYS", default=14)
WAREHOUSE_FAILED_OBJECT_RETENTION_DAYS = env.int(
    "WAREHOUSE_FAILED_OBJECT_RETENTION_DAYS", default=30
)
WAREHOUSE_TOMBSTONE_RETENTION_DAYS = env.int("WAREHOUSE_TOMBSTONE_RETENTION_DAYS", default=30)

# --- usage ingest ---
# The Segment endpoints (/dock/segment, /v1/*). Documented in README.md ("Receiving Segment events").
# The endpoint's own body limit (Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply there).
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=32 * 1024 * 1024)
# How long each process may reuse the integration row (tokens, secret); 0 reads it each time.
INGEST_SETTINGS_CACHE_SECONDS = env.int("INGEST_SETTINGS_CACHE_SECONDS", default=5)
# A web process publishes usage.drain_inbox at most once per this window (trailing edge too).
INGEST_NUDGE_INTERVAL_MS = env.int("INGEST_NUDGE_INTERVAL_MS", default=100)
# Retry-After (seconds) on a 503 when the database cannot take the write.
INGEST_RETRY_AFTER_SECONDS = env.int("INGEST_RETRY_AFTER_SECONDS", default=10)
# Access-Control-Allow-Origin on /v1/* (browser SDKs post cross-origin).
INGEST_CORS_ALLOW_ORIGIN = env("INGEST_CORS_ALLOW_ORIGIN", default="*")

# --- usage processing ---
# Events per claim: whole requests are claimed together up to about this many (a request
# larger than this is still claimed whole, never split).
USAGE_CLAIM_BATCH_SIZE = env.int("USAGE_CLAIM_BATCH_SIZE", default=1000)
# A claimed row is "processing" this long; a worker that died lets it lapse to the sweeper.
USAGE_CLAIM_LEASE_SECONDS = env.int("USAGE_CLAIM_LEASE_SECONDS", default=300)
# Pending rows older than this are drained by the sweeper (lost broker message, crash).
USAGE_STALE_PENDING_SECONDS = env.int("USAGE_STALE_PENDING_SECONDS", default=120)
# Connections (one thread each) a drain claims on at once: one claim's Python work overlaps
# another's database work. PostgreSQL only; SQLite has one writer and drains on one.
USAGE_DRAIN_CONNECTIONS = env.int("USAGE_DRAIN_CONNECTIONS", default=2)
# A drain task stops after this long and re-nudges itself, so one task never hogs a worker.
USAGE_DRAIN_MAX_SECONDS = env.int("USAGE_DRAIN_MAX_SECONDS", default=240)
# Failed claims: retried by the sweeper with exponential backoff, this many attempts in all.
USAGE_MAX_ATTEMPTS = env.int("USAGE_MAX_ATTEMPTS", default=5)
USAGE_RETRY_BACKOFF_SECONDS = env.int("USAGE_RETRY_BACKOFF_SECONDS", default=30)
USAGE_RETRY_BACKOFF_MAX_SECONDS = env.int("USAGE_RETRY_BACKOFF_MAX_SECONDS", default=3600)
# Processed and dropped raw events are deleted after this many days (outputs stay).
INBOX_RETENTION_DAYS = env.int("INBOX_RETENTION_DAYS", default=30)
# Defaults of the sweeps' periodic task entries when they are first created
# (usage/schedules.py); the admin owns the entries afterwards (admin → Periodic tasks).
USAGE_SWEEP_EVERY_SECONDS = env.int("USAGE_SWEEP_EVERY_SECONDS", default=60)
USAGE_PURGE_EVERY_SECONDS = env.int("USAGE_PURGE_EVERY_SECONDS", default=86400)

# --- Workspace API ----------------------------------------------------------------------
# Items per bulk upsert request, and its largest body (DRF's JSON parser has no limit).
BULK_UPSERT_MAX_ITEMS = env.int("BULK_UPSERT_MAX_ITEMS", default=5000)
BULK_UPSERT_MAX_BYTES = env.int("BULK_UPSERT_MAX_BYTES", default=32 * 1024 * 1024)
# The largest page a client may ask for with ?page_size= (the default is API_PAGE_SIZE).
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=1000)

# --- Alerts and notifications (health) ------------------------------------------------------
# Documented in README.md ("Alerts and notifications"). Email goes through Django's backend:
# the console locally (printed by the worker), SMTP when EMAIL_URL or EMAIL_HOST is set.
if env("EMAIL_URL", default=""):
    # e.g. smtp+tls://user:password@smtp.example.com:587 (django-environ's email URL)
    globals().update(env.email_url("EMAIL_URL"))
elif env("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Planhat alerts <alerts@localhost>")
# Hosts a webhook may target even though they resolve to a private / loopback address.
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=8)
NOTIFICATIONS_BACKOFF_SECONDS = env.float("NOTIFICATIONS_BACKOFF_SECONDS", default=30)
NOTIFICATIONS_BACKOFF_MAX_SECONDS = env.float("NOTIFICATIONS_BACKOFF_MAX_SECONDS", default=3600)
NOTIFICATIONS_LEASE_SECONDS = env.int("NOTIFICATIONS_LEASE_SECONDS", default=300)
NOTIFICATIONS_SWEEP_MAX_SECONDS = env.float("NOTIFICATIONS_SWEEP_MAX_SECONDS", default=50)
# The default interval of beat's delivery sweep (health.deliver_notifications).
NOTIFICATIONS_SWEEP_EVERY_SECONDS = env.int("NOTIFICATIONS_SWEEP_EVERY_SECONDS", default=60)
# Deliveries run on a queue of their own: a slow receiver never holds an ingest worker.
CELERY_QUEUES = [*CELERY_QUEUES, Queue("notifications", Exchange("notifications"), "notifications")]
# One schema name for the health band choices (score bands and a rule's to_band share them).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **SPECTACULAR_SETTINGS.get("ENUM_NAME_OVERRIDES", {}),
    "BandEnum": "health.models.Band",
}

# --- faults, limits and privacy (issue 9) -----------------------------------------------
# Documented in README.md ("Receiving Segment events", "Recovery", "Privacy", "Logs").
# Before the write key is checked (analytics.js sends it in the body) a /v1 request may be at
# most this big: a Segment batch is at most 500 KB; the margin covers the envelope.
INGEST_UNAUTHENTICATED_MAX_BODY_BYTES = env.int(
    "INGEST_UNAUTHENTICATED_MAX_BODY_BYTES", default=1024 * 1024
)
# Messages per request (Segment's own batches stay under 4,000); more is a 413.
INGEST_MAX_ITEMS = env.int("INGEST_MAX_ITEMS", default=10_000)
# JSON values per request, counted on the raw body before parsing (a parse costs ~100 bytes
# per value): bounds a request's memory whatever its shape; more is a 413.
INGEST_MAX_JSON_VALUES = env.int("INGEST_MAX_JSON_VALUES", default=1_000_000)
# A database that hangs gives a fast 503: the ingest INSERT's own statement timeout (SET LOCAL,
# that statement only) and a client-side bound on all of a request's database work.
INGEST_STATEMENT_TIMEOUT_MS = env.int("INGEST_STATEMENT_TIMEOUT_MS", default=3000)
INGEST_DATABASE_DEADLINE_SECONDS = env.float("INGEST_DATABASE_DEADLINE_SECONDS", default=4.0)
DATABASE_CONNECT_TIMEOUT_SECONDS = env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=3)
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", DATABASE_CONNECT_TIMEOUT_SECONDS
    )
# Recovery: a drain that meets a database error is retried with backoff up to this cap, this
# many times; the sweep drains rows pending longer than USAGE_SWEEP_SOON_SECONDS and, while
# rows are pending, runs again after that long, at most USAGE_SWEEP_FOLLOW_UPS times per beat.
USAGE_DRAIN_RETRY_BACKOFF_MAX_SECONDS = env.int("USAGE_DRAIN_RETRY_BACKOFF_MAX_SECONDS", default=5)
USAGE_DRAIN_MAX_RETRIES = env.int("USAGE_DRAIN_MAX_RETRIES", default=120)
USAGE_SWEEP_SOON_SECONDS = env.int("USAGE_SWEEP_SOON_SECONDS", default=10)
USAGE_SWEEP_FOLLOW_UPS = env.int("USAGE_SWEEP_FOLLOW_UPS", default=5)
# The push's lease: a heartbeat thread renews it every WAREHOUSE_PUSH_HEARTBEAT_SECONDS from
# when a worker takes the run over, so a run whose worker died lapses within the lease and is
# reaped (every WAREHOUSE_REAP_EVERY_SECONDS) within a minute. A run no worker has taken yet
# keeps WAREHOUSE_PUSH_QUEUED_LEASE_SECONDS (the warehouse queue may be busy).
WAREHOUSE_PUSH_LEASE_SECONDS = env.int("WAREHOUSE_PUSH_LEASE_SECONDS", default=30)
WAREHOUSE_PUSH_HEARTBEAT_SECONDS = env.float("WAREHOUSE_PUSH_HEARTBEAT_SECONDS", default=10)
WAREHOUSE_PUSH_QUEUED_LEASE_SECONDS = env.int("WAREHOUSE_PUSH_QUEUED_LEASE_SECONDS", default=600)
WAREHOUSE_REAP_EVERY_SECONDS = env.int("WAREHOUSE_REAP_EVERY_SECONDS", default=20)
# Workers reconnect to a broker that went away every second or two (Celery's default backs off
# to 30 s): planhat_segment/worker.py.
CELERY_WORKER_CONSUMER = "planhat_segment.worker:FastReconnectConsumer"
