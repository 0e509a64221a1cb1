"""The id a request is known by in logs and attempt rows: the caller's ``X-Request-ID``, or a new one."""
import re
from uuid import uuid4

HEADER = "X-Request-ID"
_SAFE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def request_id_for(request) -> str:
    """The caller's ``X-Request-ID`` if it is a short, printable token; otherwise a generated one."""
    django_request = getattr(request, "_request", request)
    existing = getattr(django_request, "_enterprise_access_request_id", None)
    if existing:
        return existing
    given = (request.headers.get(HEADER) or "").strip()
    value = given if _SAFE.match(given) else uuid4().hex
    django_request._enterprise_access_request_id = value
    return value
