"""
Production settings: every deployment-specific value comes from the environment.

Required: ``SECRET_KEY``, ``DATABASE_URL`` (``mysql://`` first-class, ``postgres://`` also works),
``REDIS_URL`` (shared cache and policy lock), ``ENTERPRISE_SUBSIDY_URL``, ``ENTERPRISE_CATALOG_URL``,
``LMS_URL``, ``BACKEND_SERVICE_EDX_OAUTH2_KEY``, ``BACKEND_SERVICE_EDX_OAUTH2_SECRET`` and
``JWT_PUBLIC_SIGNING_JWK_SET`` (plus ``JWT_ISSUER`` and ``JWT_AUDIENCE``). A missing one stops the
process at start with a message naming it, rather than failing on the first request.
"""
import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import JWT_AUTH, redis_cache, with_independent_alias


def require_env(name):
    """Return the environment variable ``name`` or stop start-up with a message naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is required by enterprise_access.settings.production "
            f"but is not set. See README.rst, 'Production settings'."
        )
    return value


DEBUG = False
SECRET_KEY = require_env("SECRET_KEY")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()]

DATABASES = {"default": dj_database_url.parse(require_env("DATABASE_URL"), conn_max_age=60,
                                              conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"charset": "utf8mb4", "connect_timeout": 5})
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"connect_timeout": 5})
DATABASES = with_independent_alias(DATABASES)

DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
CACHES = {"default": redis_cache(require_env("REDIS_URL"))}
# Celery's broker: CELERY_BROKER_URL, or else the Redis of REDIS_URL (decision record 0019).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or require_env("REDIS_URL")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

ENTERPRISE_SUBSIDY_URL = require_env("ENTERPRISE_SUBSIDY_URL")
ENTERPRISE_CATALOG_URL = require_env("ENTERPRISE_CATALOG_URL")
LMS_URL = require_env("LMS_URL")
OAUTH2_PROVIDER_URL = os.environ.get("OAUTH2_PROVIDER_URL") or f"{LMS_URL.rstrip('/')}/oauth2"
BACKEND_SERVICE_EDX_OAUTH2_KEY = require_env("BACKEND_SERVICE_EDX_OAUTH2_KEY")
BACKEND_SERVICE_EDX_OAUTH2_SECRET = require_env("BACKEND_SERVICE_EDX_OAUTH2_SECRET")

# Tunables with safe defaults in base.py; set them here only to change them.
for _name, _cast in (("UPSTREAM_CONNECT_TIMEOUT", float), ("UPSTREAM_READ_TIMEOUT", float),
                     ("UPSTREAM_POOL_MAXSIZE", int), ("UPSTREAM_READ_RETRIES", int),
                     ("SUBSIDY_CREATE_RETRIES", int), ("SUBSIDY_BUSY_BACKOFF_SECONDS", float),
                     ("SUBSIDY_BUSY_BACKOFF_MAX_SECONDS", float),
                     ("RUN_SEND_DEADLINE_SECONDS", float), ("RECONCILE_TAKEOVER_SECONDS", float),
                     ("RETRY_AFTER_SECONDS", int)):
    if os.environ.get(_name):
        try:
            globals()[_name] = _cast(os.environ[_name])
        except ValueError as _error:
            raise ImproperlyConfigured(f"The environment variable {_name} must be a number.") from _error

JWT_AUTH = {
    **JWT_AUTH,
    "JWT_ISSUERS": [
        {
            "ISSUER": require_env("JWT_ISSUER"),
            "AUDIENCE": require_env("JWT_AUDIENCE"),
            "SECRET_KEY": None,
        }
    ],
    "JWT_PUBLIC_SIGNING_JWK_SET": require_env("JWT_PUBLIC_SIGNING_JWK_SET"),
}
