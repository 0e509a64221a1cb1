"""
Settings for the test suite.

By default: in-memory SQLite and a local-memory cache. ``.ci/run`` runs the same suite again on the
production-like stack by setting ``DATABASE_URL`` (MariaDB) and ``REDIS_URL``.
"""
import os

import dj_database_url

from .base import *  # noqa: F401,F403
from .base import INSTALLED_APPS, JWT_AUTH, VAR_DIR, filesystem_broker, with_independent_alias
from .dev_jwt_keys import DEV_JWT_PRIVATE_KEY_PEM, dev_jwt_auth

SECRET_KEY = "test-only-not-a-secret"
ALLOWED_HOSTS = ["*"]
# Development tooling: the emulator, the demo world, seed_demo/run_demo/mint_jwt (never in production).
INSTALLED_APPS = [*INSTALLED_APPS, "enterprise_access.devtools"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
        DATABASES["default"].setdefault("OPTIONS", {}).update({"charset": "utf8mb4"})
        DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    # A file, not :memory:, so that the independent alias, live-server threads and helper processes
    # all see the same test database.
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "test.sqlite3"),
            "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
            "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
DATABASES = with_independent_alias(DATABASES)

if os.environ.get("REDIS_URL"):
    CACHES = {"default": {**redis_cache(os.environ["REDIS_URL"]), "KEY_PREFIX": f"ea-test-{os.getpid()}"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Keep failure paths fast in tests.
UPSTREAM_CONNECT_TIMEOUT = 1.0
UPSTREAM_READ_TIMEOUT = 2.0
SUBSIDY_CREATE_RETRIES = 2
SUBSIDY_BUSY_BACKOFF_SECONDS = 0.01

# JWT: the dev-only RSA key pair (settings/dev_jwt_keys.py), never used by production.
JWT_AUTH = dev_jwt_auth(JWT_AUTH)
MINT_JWT_ENABLED = True
MINT_JWT_PRIVATE_KEY_PEM = DEV_JWT_PRIVATE_KEY_PEM

# Celery: a filesystem broker of this test process's own, made and removed by the suite (conftest.py), so helper
# processes started on these settings leave no folder behind. Tests run the task themselves (directly or eagerly),
# or start a worker on a folder of their own.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(
    os.environ.get("CELERY_BROKER_DIR", str(VAR_DIR / f"celery-test-{os.getpid()}")), create=False)
