"""The API's exception handler: every error answers JSON, an unhandled one included."""
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

try:  # Redis errors when the cache is django-redis; absent on the embedded default.
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover
    RedisError = ()


def _infrastructure_code(exc):
    """
    "database_unavailable" / "cache_unavailable" when ``exc`` is, or was raised from, an outage of the database
    or the cache; else None. The chain matters: edx-drf-extensions turns any error while loading the JWT's
    user, a dropped database included, into AuthenticationFailed (401), which would tell a client to
    re-authenticate when it should retry.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (OperationalError, InterfaceError)):
            return "database_unavailable"
        if RedisError and isinstance(exc, RedisError):
            return "cache_unavailable"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def json_exception_handler(exc, context):
    """
    DRF's handler for what it knows (400/401/403/404/405/...); a 503 with ``Retry-After`` when the database or
    the cache is down (decision 0005); a JSON 500 for anything else, never an HTML page.
    """
    code = _infrastructure_code(exc)
    if code is not None:
        logger.warning("Answering 503: %s (%s: %s)", code, type(exc).__name__, exc)
        seconds = int(settings.RETRY_AFTER_SECONDS)
        return Response({"detail": "The service is briefly unavailable; try again shortly.", "code": code,
                         "retry_after_seconds": seconds},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(seconds)})
    response = exception_handler(exc, context)
    if response is not None:
        if isinstance(response.data, list):
            response.data = {"detail": response.data}
        return response
    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "an API view")
    return Response(
        {"detail": "An unexpected error occurred. It has been logged.", "code": "server_error"},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
