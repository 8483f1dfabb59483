"""Django settings for Lowcode, read from environment variables (PF-2).

Defaults are safe for development: DEBUG is off unless asked, and the database and Redis
default to the embedded servers `make run` starts (see lowcode/embedded.py). Production sets
SECRET_KEY, DATABASE_URL, REDIS_URL, ALLOWED_HOSTS and LOWCODE_SECURE=1 (see README).
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from lowcode import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# The development key is only accepted while LOWCODE_SECURE is off (see below).
SECRET_KEY = env("SECRET_KEY", default="dev-insecure-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Tenancy (PF-3): platform models in public, every domain app in each tenant's schema.
SHARED_APPS = [
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "lowcode.admin_site.LowcodeAdminConfig",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    # After django.contrib.admin: their ready() sees the autodiscovered admin registry.
    "lowcode.tenancy",
    "lowcode",
    "plugins",  # Installed platform-wide (public schema); enabled per tenant.
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "lowcode.admin_site.LowcodeAdminConfig",
    "django.contrib.postgres",
    "axes",
    "guardian",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "metadata",
    "dynamic_models",
    "dynamic_models.data",
    "lowcode.apikeys",
    "audit",
    "rbac",
    "files",
    "forms_engine",
    "pages",
    "viewflow",
    "viewflow.workflow",
    "workflows",
    "datafactory",
    "scripts",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Tenant"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
PUBLIC_SCHEMA_URLCONF = "lowcode.urls_public"
ROOT_URLCONF = "lowcode.urls"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
EXTRA_SET_TENANT_METHOD_PATH = "lowcode.tenancy.hooks.on_set_tenant"
# SET search_path once per switch of tenant, not before every cursor: the backend (lowcode.db_backend)
# forgets the path where PostgreSQL undoes it (a rollback, a savepoint's) and keeps it across
# switches back to the same tenant.
TENANT_LIMIT_SET_CALLS = True
PUBLIC_DOMAIN = env("PUBLIC_DOMAIN", default="localhost")

MIDDLEWARE = [
    # Outermost, so that every answer carries the security headers (AU-3), also those the
    # middleware below give themselves: health checks, unknown hosts' 404, suspended tenants'
    # 403 and static files.
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "lowcode.health.HealthCheckMiddleware",
    "lowcode.logs.RequestContextMiddleware",
    "lowcode.tenancy.middleware.CachedTenantMainMiddleware",
    "lowcode.tenancy.middleware.SuspendedTenantMiddleware",
    "lowcode.site.TenantURLConfMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Last, as django-axes asks: it reads the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lowcode.site.base_template",
            ],
        },
    },
]

WSGI_APPLICATION = "lowcode.wsgi.application"

# The runtime role: not a superuser, reaching the audit trails only through the owner (README).
DATABASES = {"default": env.db("DATABASE_URL") if env.str("DATABASE_URL", default="") else
             env.db_url_config(embedded.database_url())}
DATABASES["default"]["ENGINE"] = "lowcode.db_backend"  # django-tenants' (see TENANT_LIMIT_SET_CALLS).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Lets two test runs share one server (default: test_<name>).
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default=embedded.redis_url())
CACHES = {
    "default": {
        "BACKEND": "lowcode.redis_cache.ReusedClientRedisCache",  # Django's, without a new client per call.
        "LOCATION": env("CACHE_URL", default=REDIS_URL),
        # Every key starts with the current schema: one tenant never reads another's entries.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

# Celery (PF-3): tasks run in the schema that queued them (tenant-schemas-celery).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # Workers log through LOGGING below (JSON too).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Nightly audit retention (AD-5) and hourly signed checkpoints of the audit trails (AD-2): queued
# in public, each task fans out one run per tenant.
CELERY_BEAT_SCHEDULE = {
    "audit-retention": {"task": "audit.apply_retention", "schedule": 24 * 60 * 60, "options": {"expires": 3600}},
    "audit-checkpoint": {"task": "audit.write_checkpoints", "schedule": 60 * 60, "options": {"expires": 1800}},
    # Every tenant's committed events into its next hash-chained block (one task, not one per tenant).
    "audit-seal": {"task": "audit.seal_events", "schedule": 10, "options": {"expires": 10}},
    "files-garbage": {"task": "files.collect_garbage", "schedule": 24 * 60 * 60, "options": {"expires": 3600}},
    # Workflow timers, reminders and escalations (WF-5): every minute, fanned out per tenant.
    "workflows-tick": {"task": "workflows.tick", "schedule": 60, "options": {"expires": 55}},
}
# Signs the audit checkpoints (HMAC-SHA256); never stored in the database. Default: a key generated
# into .lowcode/secrets/. Keep it: checkpoints signed with another key fail verification.
AUDIT_CHECKPOINT_KEY = env.str("AUDIT_CHECKPOINT_KEY", default="") or embedded.secret("audit-checkpoint.key")

# Files: local folders per tenant by default; S3 (or MinIO) when a bucket is configured.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(embedded.HOME / "media")))
# Installed plugins' verified copies (their code is imported from here) and their data.
PLUGINS_ROOT = Path(env("PLUGINS_ROOT", default=str(embedded.HOME / "plugins")))
MEDIA_URL = "/media/"
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(embedded.HOME / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_SIGNATURE_VERSION = env("AWS_S3_SIGNATURE_VERSION", default="s3v4")  # MinIO's; lifetimes up to 7 days.
    DEFAULT_FILE_STORAGE_BACKEND = "lowcode.storage.TenantS3Storage"
else:
    DEFAULT_FILE_STORAGE_BACKEND = "django_tenants.files.storage.TenantFileSystemStorage"
STORAGES = {
    "default": {"BACKEND": DEFAULT_FILE_STORAGE_BACKEND},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads (FL-4): the stricter of these, the tenant's and the field's limits applies.
FILES_MAX_UPLOAD_BYTES = env.int("FILES_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
FILES_ALLOWED_TYPES = env.list("FILES_ALLOWED_TYPES", default=[
    "image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
])
FILES_MAX_IMAGE_PIXELS = env.int("FILES_MAX_IMAGE_PIXELS", default=40_000_000)
# Signed download URLs (seconds): the product's own, and S3's presigned redirect.
FILES_URL_MAX_AGE = env.int("FILES_URL_MAX_AGE", default=300)
FILES_S3_URL_MAX_AGE = env.int("FILES_S3_URL_MAX_AGE", default=60)
# Behind nginx: its `internal` location serving MEDIA_ROOT (e.g. /protected-media/); empty: Django streams.
FILES_ACCEL_REDIRECT_PREFIX = env("FILES_ACCEL_REDIRECT_PREFIX", default="")
# Uploads no record took are removed this many seconds later (daily garbage collection).
FILES_UPLOAD_TTL = env.int("FILES_UPLOAD_TTL", default=24 * 3600)
FILES_PREVIEW_SIZE = env.int("FILES_PREVIEW_SIZE", default=320)
FILES_PREVIEW_TIMEOUT = env.int("FILES_PREVIEW_TIMEOUT", default=30)
# Zips (XLSX imports, bundles) refused as bombs before they are unpacked.
FILES_ZIP_MAX_MEMBERS = env.int("FILES_ZIP_MAX_MEMBERS", default=10_000)
FILES_ZIP_MAX_UNPACKED_BYTES = env.int("FILES_ZIP_MAX_UNPACKED_BYTES", default=1024 * 1024 * 1024)
FILES_ZIP_MAX_RATIO = env.int("FILES_ZIP_MAX_RATIO", default=100)
# Without a collected STATIC_ROOT (tests, a fresh clone) WhiteNoise serves from the finders.
WHITENOISE_USE_FINDERS = True

# Authentication (AU-1, AU-3)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_SAVE_EVERY_REQUEST = True  # The timeout counts from the last request, not the login.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "lowcode.views.csrf_failure"  # The site's 403 page, saying what to do.
# Lockout after repeated failed logins, per user name and address, per tenant schema.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Security headers (AU-3). LOWCODE_SECURE=1 turns on what HTTPS deployments need.
SECURE = env.bool("LOWCODE_SECURE", default=False)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Django admin sets inline style attributes.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Key of field values encrypted at rest; defaults to SECRET_KEY (rotate both together).
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY", default="")
if SECURE and SECRET_KEY.startswith("dev-insecure"):
    raise environ.ImproperlyConfigured("Set SECRET_KEY: the development key is refused with LOWCODE_SECURE=1.")

EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="lowcode@localhost")

# REST API (DM-5, AU-2): API keys or the browser session; errors as {"field": [{"code", "message"}]}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "lowcode.apikeys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "lowcode.apikeys.throttling.TenantApiCallsQuotaThrottle",
        "lowcode.apikeys.throttling.ApiKeyRateThrottle",
        "lowcode.apikeys.throttling.TenantUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_KEY_THROTTLE_RATE", default="1200/min"),
        "user": env("API_USER_THROTTLE_RATE", default="600/min"),
    },
    "DEFAULT_PARSER_CLASSES": [
        "lowcode.api.parsers.JSONParser",  # With a nesting limit.
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "lowcode.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lowcode API",
    "DESCRIPTION": "Records of each published entity, metadata and bundles of this tenant.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes the tenant's whole data model: only for signed-in users and API keys
    # unless API_DOCS_PUBLIC opens it (a public API product, for example).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny" if env.bool("API_DOCS_PUBLIC", default=False)
                          else "rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "lowcode.api.openapi.add_error_responses"],
    "SWAGGER_UI_DIST": "SIDECAR",
    # Static models' choice sets get stable names; entities' own are named after their fields.
    "ENUM_NAME_OVERRIDES": {
        "DefinitionStatusEnum": "metadata.models.Definition.Status",
        "SchemaMigrationStatusEnum": "dynamic_models.models.SchemaMigration.Status",
        "ImportJobStatusEnum": "dynamic_models.models.ImportJob.Status",
        "ApiKeyStatusEnum": "lowcode.apikeys.models.ApiKey.Status",
    },
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
# What the OpenAPI schema varies by besides language: the caller's permissions (RB-5).
API_SCHEMA_VARY = "rbac.services.schema_variant"
# `?entity=` / `?app=` of /api/schema/: a function(request) -> a predicate on paths, or None (all).
API_SCHEMA_SECTION = "dynamic_models.api.schema.schema_section"
# Memory a web process gives its tenants' runtime models and sites (estimated, MiB): past it the
# least recently used tenants' are dropped and built again on their next request (README).
TENANT_STATE_MEMORY_MB = env.int("TENANT_STATE_MEMORY_MB", default=512)
# Imports: rows above API_IMPORT_SYNC_MAX_ROWS run as a Celery job whose progress the API reports.
API_IMPORT_SYNC_MAX_ROWS = env.int("API_IMPORT_SYNC_MAX_ROWS", default=1000)
API_IMPORT_MAX_ROWS = env.int("API_IMPORT_MAX_ROWS", default=100_000)
# List pages count rows exactly up to this many; above, PostgreSQL's estimate (lowcode.api.pagination).
API_EXACT_COUNT_LIMIT = env.int("API_EXACT_COUNT_LIMIT", default=10_000)
API_IMPORT_MAX_BYTES = env.int("API_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
# XLSX files are zips: refused before unpacking above these (real workbooks compress about 5-30 times).
API_IMPORT_MAX_UNPACKED_BYTES = env.int("API_IMPORT_MAX_UNPACKED_BYTES", default=100 * 1024 * 1024)
API_IMPORT_MAX_COMPRESSION_RATIO = env.int("API_IMPORT_MAX_COMPRESSION_RATIO", default=100)
# Entity schema changes (dynamic_models/schema.py): how long DDL may try to lock a table, in
# attempts of 40 ms (queries queue behind a waiting lock), before the publish fails with a
# conflict; rows per transaction of a type change's copy.
SCHEMA_LOCK_TIMEOUT_MS = env.int("SCHEMA_LOCK_TIMEOUT_MS", default=5000)
SCHEMA_BACKFILL_BATCH = env.int("SCHEMA_BACKFILL_BATCH", default=1000)

# Sandboxed handlers (lowcode/sandbox.py, PL-5): default limits of one run.
SANDBOX_LIMITS = {
    "cpu_seconds": env.int("SANDBOX_CPU_SECONDS", default=5),
    "wall_seconds": env.float("SANDBOX_WALL_SECONDS", default=10.0),
    "memory_mb": env.int("SANDBOX_MEMORY_MB", default=256),
    "file_size_mb": env.int("SANDBOX_FILE_SIZE_MB", default=16),
}

# Internationalisation: English and Simplified Chinese ship.
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Logging (PF-6): readable text in development, JSON lines with LOG_FORMAT=json.
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "lowcode.logs.RequestContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s [%(tenant)s %(request_id)s %(user)s] %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(tenant)s %(user)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request lines come from lowcode.request with duration; Django's would repeat them.
        "django.server": {"level": "WARNING"},
    },
}
