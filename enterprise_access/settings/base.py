"""
Settings shared by every environment.

Environment-specific modules (``local``, ``test``, ``production``) import everything from here and
override only what differs. Nothing in this module reads secrets; ``production`` reads those from
the environment and refuses to start without them.
"""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SECRET_KEY = "override-me"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served as our static files (/api/docs/ needs no CDN)
    "simple_history",
    "djangoql",  # the attempt admin's query search: its completion script and syntax help
    "enterprise_access.apps.core",
    "enterprise_access.apps.content_assignments",
    "enterprise_access.apps.subsidy_access_policy",
    "enterprise_access.apps.api",
]
# Development tooling (the upstream emulator, the demo world and its commands, token minting) is the app
# ``enterprise_access.devtools``: only the ``local`` and ``test`` settings add it, production never does.

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # API bodies over API_MAX_BODY_BYTES answer 413 (JSON) before anything reads them (decision 0014).
    "enterprise_access.apps.api.limits.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Joins the split JWT cookie pair (header.payload + signature) into one cookie JwtAuthentication reads.
    "edx_rest_framework_extensions.auth.jwt.middleware.JwtAuthCookieMiddleware",
]

ROOT_URLCONF = "enterprise_access.urls"
WSGI_APPLICATION = "enterprise_access.wsgi.application"
AUTH_USER_MODEL = "core.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide replacements of third-party templates (simple_history's history table).
        "DIRS": [BASE_DIR / "enterprise_access" / "templates"],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

# ---------------------------------------------------------------------------------------------
# Upstream services. Base URLs are the service roots; each client appends the contract's paths.
# ---------------------------------------------------------------------------------------------
ENTERPRISE_SUBSIDY_URL = "http://127.0.0.1:18270/subsidy"
ENTERPRISE_CATALOG_URL = "http://127.0.0.1:18270/catalog"
LMS_URL = "http://127.0.0.1:18270/lms"
# OAuth2 root of the LMS; the client appends ``/access_token``.
OAUTH2_PROVIDER_URL = "http://127.0.0.1:18270/lms/oauth2"
BACKEND_SERVICE_EDX_OAUTH2_KEY = "enterprise-access-backend-service-key"
BACKEND_SERVICE_EDX_OAUTH2_SECRET = "enterprise-access-backend-service-secret"

# (connect, read) timeouts in seconds for every upstream call. Unlike the upstream consumer, no
# call goes out without one: a hung upstream must become a prompt 503, not a hung worker.
UPSTREAM_CONNECT_TIMEOUT = 3.05
UPSTREAM_READ_TIMEOUT = 10.0

# Short-lived caches of stable upstream reads (seconds). can_redeem and writes are never cached.
CONTENT_METADATA_CACHE_TIMEOUT = 300
CATALOG_CONTAINS_CACHE_TIMEOUT = 300
# Which customer a catalog or a subsidy belongs to (the tenancy check at redeem; a record never changes customer).
CATALOG_RECORD_CACHE_TIMEOUT = 300
SUBSIDY_CUSTOMER_CACHE_TIMEOUT = 300
ENTERPRISE_USER_RECORD_CACHE_TIMEOUT = 300
ENTERPRISE_CUSTOMER_CACHE_TIMEOUT = 300

# Pooled keep-alive connections per upstream, per process: size it to the worker's thread count.
UPSTREAM_POOL_MAXSIZE = 64
# How often a read (GET) that lost its connection is asked again. Writes are never retried by the client.
UPSTREAM_READ_RETRIES = 2

# ---------------------------------------------------------------------------------------------
# The spend guard (docs/decisions/0010-durable-spend-reservations.rst).
# ---------------------------------------------------------------------------------------------
# How often the subsidy create is tried again with the same idempotency key when the ledger is busy (429) or the
# answer was lost (timeout, dropped connection, 5xx); waits grow from SUBSIDY_BUSY_BACKOFF_SECONDS, with jitter.
SUBSIDY_CREATE_RETRIES = 6
SUBSIDY_BUSY_BACKOFF_SECONDS = 0.1
SUBSIDY_BUSY_BACKOFF_MAX_SECONDS = 1.0
# A run starts no create try later than this after it began sending.
RUN_SEND_DEADLINE_SECONDS = 60
# A reservation whose run is still "sent" this long after it was made is presumed abandoned (its process died):
# reconciliation, or the learner's next redemption, may then settle it from the ledger. Must stay well above
# RUN_SEND_DEADLINE_SECONDS plus the upstream's own request time limit.
RECONCILE_TAKEOVER_SECONDS = 300
RETRY_AFTER_SECONDS = 2

# ---------------------------------------------------------------------------------------------
# REST framework and API schema.
# ---------------------------------------------------------------------------------------------
# The most bytes an /api/ request body may carry; more answers 413 (decision 0014).
API_MAX_BODY_BYTES = 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The library's JwtAuthentication with our claims-to-user mapping: by LMS user id only, never onto a
        # staff account, no admin rights from a claim (enterprise_access/apps/core/authentication.py).
        "enterprise_access.apps.core.authentication.LmsJwtAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON nested deeper than apps.api.limits.MAX_JSON_DEPTH answers 400 (decision 0014).
    "DEFAULT_PARSER_CLASSES": [
        "enterprise_access.apps.api.limits.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Every error, including 401/403/404 and unhandled exceptions, answers JSON.
    "EXCEPTION_HANDLER": "enterprise_access.apps.api.exceptions.json_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "enterprise-access",
    "DESCRIPTION": "Learner-credit redemption: subsidy access policies, redemption and its audit record.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar, as our own static files: the docs page works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every operation that takes a body documents the 413 of apps.api.limits.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "enterprise_access.apps.api.schema.document_body_limit",
    ],
}

# History is the audit trail: no "Revert" button on any history row (core/history_admin.py also refuses the POST).
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# ---------------------------------------------------------------------------------------------
# JWT authentication (edx-drf-extensions). Environments set the issuers and the key set.
# ---------------------------------------------------------------------------------------------
JWT_AUTH = {
    "JWT_ALGORITHM": "RS256",
    "JWT_VERIFY_EXPIRATION": True,
    "JWT_VERIFY_AUDIENCE": True,
    "JWT_LEEWAY": 1,
    "JWT_AUTH_HEADER_PREFIX": "JWT",
    "JWT_AUTH_COOKIE_HEADER_PAYLOAD": "edx-jwt-cookie-header-payload",
    "JWT_AUTH_COOKIE_SIGNATURE": "edx-jwt-cookie-signature",
    # Documentation of what LmsJwtAuthentication copies (it does not read this): ``administrator`` is deliberately
    # absent, a token never makes anyone staff here.
    "JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING": {
        "email": "email",
        "user_id": "lms_user_id",
    },
    "JWT_PAYLOAD_MERGEABLE_USER_ATTRIBUTES": [],
    "JWT_AUTH_COOKIE": "edx-jwt-cookie",
    "JWT_ISSUERS": [],
    "JWT_PUBLIC_SIGNING_JWK_SET": None,
    # Our own handler: asymmetric keys only, and it refuses every token when no key set is configured
    # (the library would otherwise skip the signature check). See enterprise_access/apps/core/jwt.py.
    "JWT_DECODE_HANDLER": "enterprise_access.apps.core.jwt.decode_jwt",
}

# edx-drf-extensions reads the claim -> user attribute mapping from EDX_DRF_EXTENSIONS, not JWT_AUTH:
# without this, users created from tokens would get no lms_user_id or email.
EDX_DRF_EXTENSIONS = {
    "JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING": JWT_AUTH["JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING"],
    "JWT_PAYLOAD_MERGEABLE_USER_ATTRIBUTES": [],
}

# edx-rbac: system roles in the JWT ``roles`` claim -> this service's feature roles.
SYSTEM_TO_FEATURE_ROLE_MAPPING = {
    "enterprise_learner": ["learner"],
    "enterprise_admin": ["admin"],
    "enterprise_openedx_operator": ["operator"],
}

# ``manage.py mint_jwt`` signs tokens with a dev-only key; only local and test settings turn it on.
MINT_JWT_ENABLED = False
MINT_JWT_PRIVATE_KEY_PEM = None

DATABASE_ROUTERS = ["enterprise_access.db_routers.IndependentWritesRouter"]


def with_independent_alias(databases):
    """Add the ``independent`` alias: the same database as ``default`` on a connection of its own."""
    independent = dict(databases["default"])
    independent["TEST"] = {**independent.get("TEST", {}), "MIRROR": "default"}
    return {**databases, "independent": independent}


def redis_cache(url):
    """
    The Redis cache of the production settings. Redis holds caches only (stable upstream reads, the OAuth token):
    nothing's correctness rests on it (the spend guard lives in the database, decision 0010). So a Redis outage is
    a cache miss, logged, never an error, and a Redis that stops answering costs a quarter of a second per cache
    call, not seconds.
    """
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25, "IGNORE_EXCEPTIONS": True},
    }

# ---------------------------------------------------------------------------------------------
# Background work: Celery (decision record 0019). Environments set the broker; the job's state lives in the
# database, so no result backend is kept.
# ---------------------------------------------------------------------------------------------
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A job's message is acknowledged once it has run, and given back if its worker dies mid-way: another worker
# (or the same one, restarted) continues the job where the database says it stopped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


def filesystem_broker(folder, *, create=True):
    """kombu's filesystem transport in ``folder`` (created unless told not to): a broker needing no server."""
    folder = Path(folder)
    for name in ("queue", "processed", "control"):
        if create:
            (folder / name).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                             "processed_folder": str(folder / "processed"), "store_processed": False,
                             "control_folder": str(folder / "control")}


# Bulk forcing (decision record 0019).
BULK_UPLOAD_MAX_ROWS = 5_000
BULK_UPLOAD_MAX_BYTES = 1_048_576  # 1 MB: 5,000 rows take about 300 KB
# A "Force redemption" of more records than this runs in the background; smaller selections are forced in the request.
BULK_FORCING_INLINE_MAX = 20
# A running job whose worker showed no sign of life for this long is shown as stalled and may be run again.
BULK_FORCING_STALLED_SECONDS = 300
# A confirmed bulk forcing posts every selected record's id (5,000 records, twice over the confirmation).
DATA_UPLOAD_MAX_NUMBER_FIELDS = 12_000
