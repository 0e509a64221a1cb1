"""
Helpers for tests that fake the upstreams with ``responses`` while using the real clients.

Typical use::

    with responses.RequestsMock() as rsps:
        add_token_response(rsps)
        rsps.get(subsidy_url("/api/v1/subsidies/<uuid>/"), json={...})
        ...

Call :func:`forget_cached_tokens` between tests (an autouse fixture does it for this package):
the OAuth token is cached in TieredCache, whose in-process tier the suite's cache clearing does
not reach, so a token fetched by one test would otherwise silently serve the next.
"""
from django.conf import settings
from edx_django_utils.cache import RequestCache

from .base import oauth_token_url

TEST_ACCESS_TOKEN = "test-access-token"


def token_url():
    """The token endpoint the clients call under the current settings."""
    return oauth_token_url(settings.OAUTH2_PROVIDER_URL)


def add_token_response(rsps, *, access_token=TEST_ACCESS_TOKEN, expires_in=3600):
    """Register a successful client-credentials token response on ``rsps``."""
    return rsps.post(
        token_url(),
        json={"access_token": access_token, "expires_in": expires_in, "token_type": "JWT", "scope": "read write"},
    )


def forget_cached_tokens():
    """Drop access tokens from TieredCache's in-process tier (the Django cache is cleared separately)."""
    RequestCache.clear_all_namespaces()


def subsidy_url(path):
    return settings.ENTERPRISE_SUBSIDY_URL.rstrip("/") + path


def catalog_url(path):
    return settings.ENTERPRISE_CATALOG_URL.rstrip("/") + path


def lms_url(path):
    return settings.LMS_URL.rstrip("/") + path
