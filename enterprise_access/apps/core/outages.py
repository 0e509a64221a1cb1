"""Recognise an outage of this service's own infrastructure (its database or its cache) in an exception."""
from django.db import InterfaceError, OperationalError

try:  # Redis errors when the cache is django-redis; absent on the embedded default.
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover
    RedisError = ()

DATABASE_UNAVAILABLE = "database_unavailable"
CACHE_UNAVAILABLE = "cache_unavailable"


def infrastructure_outage(exc) -> str | None:
    """
    ``"database_unavailable"`` or ``"cache_unavailable"`` when ``exc`` is, or was raised from, an outage of the
    database or the cache; else None.

    The chain matters: libraries re-raise (edx-drf-extensions turns any error while loading the JWT's user, a
    dropped database included, into AuthenticationFailed), and the outage underneath decides the answer.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (OperationalError, InterfaceError)):
            return DATABASE_UNAVAILABLE
        if (RedisError and isinstance(exc, RedisError)) or isinstance(exc, ConnectionError):
            return CACHE_UNAVAILABLE
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
