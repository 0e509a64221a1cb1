"""
The embedded default: one machine, SQLite, and the Django *database* cache.

The database cache lives in the same SQLite file as the data, so the policy lock it carries holds
across every process on this machine (the service, management commands, a second runserver).
"""
import os

from .base import *  # noqa: F401,F403
from .base import INSTALLED_APPS, JWT_AUTH, VAR_DIR, filesystem_broker, with_independent_alias
from .dev_jwt_keys import DEV_JWT_PRIVATE_KEY_PEM, dev_jwt_auth

DEBUG = True
SECRET_KEY = "local-development-only-not-a-secret"
ALLOWED_HOSTS = ["*"]
# Development tooling: the emulator, the demo world, seed_demo/run_demo/mint_jwt (never in production).
INSTALLED_APPS = [*INSTALLED_APPS, "enterprise_access.devtools"]

VAR_DIR.mkdir(exist_ok=True)

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LOCAL_SQLITE_PATH", str(VAR_DIR / "enterprise_access.sqlite3")),
        # Several processes write here at once; wait for the write lock instead of failing.
        # WAL lets readers and the one writer proceed together, and commits without an fsync each time.
        # Keep connections between requests, as production does: the audit alias would otherwise reconnect on
        # every redemption.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
}
DATABASES = with_independent_alias(DATABASES)

# A cache in each process's memory. A database cache would write through the independent alias from inside the
# admin's transaction on default, and SQLite's single writer made such saves wait 20 s, or fail (decision 0017).
# Nothing's correctness rests on the cache (decision 0010), so per-process copies are fine.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

EMULATOR_URL = os.environ.get("EMULATOR_URL", "http://127.0.0.1:18270")
ENTERPRISE_SUBSIDY_URL = f"{EMULATOR_URL}/subsidy"
ENTERPRISE_CATALOG_URL = f"{EMULATOR_URL}/catalog"
LMS_URL = f"{EMULATOR_URL}/lms"
OAUTH2_PROVIDER_URL = f"{EMULATOR_URL}/lms/oauth2"

# JWT: the dev-only RSA key pair (settings/dev_jwt_keys.py), never used by production.
JWT_AUTH = dev_jwt_auth(JWT_AUTH)
MINT_JWT_ENABLED = True
MINT_JWT_PRIVATE_KEY_PEM = DEV_JWT_PRIVATE_KEY_PEM

# Celery: kombu's filesystem transport, so the demo's worker needs no broker server. run_demo gives each demo its
# own folder beside its database.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(
    os.environ.get("CELERY_BROKER_DIR", str(VAR_DIR / "celery")))
