"""
Small HTTP building blocks shared by the emulated services: request and response values, a
regex router, DRF-style datetimes and the edx pagination envelope.

Nothing here knows about subsidies, catalogs or learners.
"""
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote, urlencode

# A path segment as the consumer sends it: content keys travel raw (``course-v1:Org+Num+Run``),
# so anything but ``/`` belongs to the segment (Django's ``<str>`` converter).
SEGMENT = r"[^/]+"
# The lookup segment of a DRF router's detail routes: no ``/`` and no ``.`` (a dot is a format
# suffix there), so ``/subsidies/a.b/`` is an unknown route, not a bad uuid.
ROUTER_SEGMENT = r"[^/.]+"

# Timestamps are stored fixed-width so that string order is time order.
_STORAGE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# --- time -----------------------------------------------------------------------------------------

def utc_now():
    return datetime.now(timezone.utc)


def parse_datetime(value):
    """An aware UTC datetime from an ISO-8601 string (``Z`` or an offset; naive means UTC), or None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).strip().replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def stored_datetime(value):
    """The sortable storage form of a datetime (or ISO string), or None."""
    parsed = parse_datetime(value)
    return parsed.strftime(_STORAGE_FORMAT) if parsed else None


def drf_datetime(value):
    """A datetime as DRF renders it: ``2026-02-01T00:00:00Z``, microseconds only when non-zero."""
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    return parsed.isoformat().replace("+00:00", "Z")


def normalize_uuid(value):
    """The canonical lower-case form of a uuid string; ValueError if it is not one."""
    return str(uuid.UUID(str(value)))


def is_uuid(value):
    try:
        normalize_uuid(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def is_true(value):
    """Query booleans arrive as ``True``/``False`` (Python) or ``true``/``1``: compare loosely."""
    return str(value).strip().lower() in ("true", "1", "yes")


# --- requests and responses ---------------------------------------------------------------------

class BadJSON(ValueError):
    """The request body is not valid JSON."""


@dataclass
class Request:
    """One inbound request, as a service handler sees it."""

    method: str
    service: str
    path: str  # after the service prefix, raw (not percent-decoded), without the query string
    full_path: str  # as received, with the prefix, without the query string
    query_pairs: list
    headers: object
    body: bytes
    base_url: str  # scheme://host:port as the client addressed us
    query_string: str = ""  # raw, as received
    params: dict = field(default_factory=dict)
    claims: dict = None

    def q(self, name, default=None):
        """The first value of query parameter ``name``."""
        for key, value in self.query_pairs:
            if key == name:
                return value
        return default

    def qlist(self, name):
        """Every value of a repeated query parameter, in order."""
        return [value for key, value in self.query_pairs if key == name]

    def has(self, name):
        return any(key == name for key, _ in self.query_pairs)

    def json(self):
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJSON(str(exc)) from exc

    @property
    def service_base(self):
        """The absolute base URL of the service this request was addressed to, e.g. ``http://h:p/subsidy``."""
        prefix = self.full_path[: len(self.full_path) - len(self.path)] if self.path else self.full_path
        return self.base_url + prefix

    def absolute_url(self, query_pairs):
        query = urlencode(query_pairs)
        return self.base_url + self.full_path + (f"?{query}" if query else "")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering
    headers: dict = field(default_factory=dict)  # extra headers, e.g. Location

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


def json_response(status, payload):
    return Response(status, json.dumps(payload).encode("utf-8"))


def detail(status, message, **extra):
    """The usual DRF error body: ``{"detail": message, ...}``."""
    return json_response(status, {"detail": message, **extra})


def not_found(message="Not found."):
    """DRF's 404: ``Not found.`` for a bare Http404, else the message it was raised with."""
    return detail(404, message)


HTML = "text/html; charset=utf-8"


def django_page(status, title, details=""):
    """The plain error page Django (5.x, DEBUG off, no custom template) renders for 404, 400 and 500."""
    page = (
        "\n<!doctype html>\n<html lang=\"en\">\n<head>\n"
        f"  <title>{title}</title>\n</head>\n<body>\n  <h1>{title}</h1><p>{details}</p>\n</body>\n</html>\n"
    )
    return Response(status, page.encode("utf-8"), HTML)


def page_not_found():
    """Django's answer for a path no URL pattern matches: an HTML page, not DRF JSON."""
    return django_page(404, "Not Found", "The requested resource was not found on this server.")


def server_error():
    """
    What Django answers for an uncaught exception with DEBUG off, e.g. a malformed uuid reaching
    a ``UUIDField`` lookup (Django raises ``ValidationError``, which DRF does not handle).
    """
    return django_page(500, "Server Error (500)")


def permanent_redirect(location):
    """Django's ``HttpResponsePermanentRedirect``: 301, empty body, relative ``Location``."""
    return Response(301, b"", HTML, headers={"Location": location})


# --- routing --------------------------------------------------------------------------------------

class Router:
    """
    Maps (method, path regex) to handlers; named groups arrive percent-decoded in ``request.params``.

    ``django_urls=True`` resolves as a Django service does: a path no pattern matches is Django's
    HTML 404 page, or a 301 to the same path with ``/`` appended when that one matches
    (``CommonMiddleware`` with ``APPEND_SLASH``); ``HEAD`` is served by the ``GET`` handler.
    Otherwise (the control API) an unknown path is a JSON 404.
    """

    def __init__(self, *, django_urls=False):
        self._routes = []
        self.django_urls = django_urls

    def route(self, method, pattern):
        compiled = re.compile(pattern)

        def register(func):
            self._routes.append((method, compiled, func))
            return func

        return register

    def _matches(self, path):
        return [(method, match, func) for method, pattern, func in self._routes
                if (match := pattern.fullmatch(path))]

    def resolve(self, request):
        """
        ``(handler, None)`` for a known path, with ``request.params`` set, or ``(None, response)``
        for an unknown one (404 or a slash redirect): Django decides that from the URL alone,
        before any authentication. A known path with another method gets a handler answering 405,
        as DRF does only after authenticating.
        """
        matches = self._matches(request.path)
        if not matches:
            if self.django_urls and not request.path.endswith("/") and self._matches(request.path + "/"):
                query = f"?{request.query_string}" if request.query_string else ""
                return None, permanent_redirect(f"{request.full_path}/{query}")
            return None, (page_not_found() if self.django_urls else not_found())
        method = request.method
        if self.django_urls and method == "HEAD":
            method = "GET"
        for route_method, match, func in matches:
            if route_method == method:
                request.params = {name: unquote(value) for name, value in match.groupdict().items()}
                return func, None
        return (lambda *context: detail(405, f'Method "{request.method}" not allowed.')), None


# --- pagination -----------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100


class InvalidPage(Exception):
    pass


def page_window(request, count):
    """(page number, page size, num_pages) for ``?page=&page_size=``; InvalidPage when out of range."""
    try:
        page_size = int(request.q("page_size", DEFAULT_PAGE_SIZE))
        if page_size <= 0:
            page_size = DEFAULT_PAGE_SIZE
    except ValueError:
        page_size = DEFAULT_PAGE_SIZE
    page_size = min(page_size, MAX_PAGE_SIZE)
    num_pages = max(1, math.ceil(count / page_size))
    raw_page = request.q("page", "1")
    if raw_page == "last":
        return num_pages, page_size, num_pages
    try:
        page = int(raw_page)
    except ValueError as exc:
        raise InvalidPage() from exc
    if page < 1 or page > num_pages:
        raise InvalidPage()
    return page, page_size, num_pages


def paginate(request, count, fetch, **extra):
    """
    The edx pagination envelope for ``count`` items, ``fetch(offset, limit)`` returning one page.

    ``next`` and ``previous`` are absolute URLs built from the request, as clients follow them verbatim.
    Extra keyword arguments are added to the envelope (``aggregates``, ``enterprise_features``).
    """
    try:
        page, page_size, num_pages = page_window(request, count)
    except InvalidPage:
        return detail(404, "Invalid page.")
    others = [(key, value) for key, value in request.query_pairs if key != "page"]
    next_url = request.absolute_url(others + [("page", str(page + 1))]) if page < num_pages else None
    if page <= 1:
        previous_url = None
    elif page == 2:
        previous_url = request.absolute_url(others)
    else:
        previous_url = request.absolute_url(others + [("page", str(page - 1))])
    start = (page - 1) * page_size
    envelope = {
        "next": next_url,
        "previous": previous_url,
        "count": count,
        "num_pages": num_pages,
        "current_page": page,
        "start": start,
        **extra,
        "results": fetch(start, page_size),
    }
    return json_response(200, envelope)
