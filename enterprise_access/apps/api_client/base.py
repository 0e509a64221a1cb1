"""
Plumbing shared by the upstream clients.

Every client of a process shares one authenticated ``requests`` session per configuration, with a pool of
keep-alive connections sized for the worker's threads (``UPSTREAM_POOL_MAXSIZE``): a warm process opens no new
TCP connection per call. Every call goes through :meth:`UpstreamClient._call`, the single place where transport
errors, HTTP statuses and unusable bodies become the typed errors of
:mod:`enterprise_access.apps.api_client.exceptions`, where a read (GET) that lost its connection is retried, and
where each failure is logged once.

Settings are read at call time, so a test's ``settings`` override, or a changed OAuth credential, takes effect on
an existing client (it selects another shared session).
"""
import hashlib
import json
import logging
import random
import threading
import time
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from django.conf import settings
from django.core.cache import cache
from edx_rest_api_client.client import OAuthAPIClient

from .exceptions import (
    CODE_CONNECTION_ERROR,
    CODE_MALFORMED_RESPONSE,
    CODE_TIMEOUT,
    MAX_RAW_PAYLOAD_CHARS,
    SERVICE_OAUTH,
    UpstreamAPIError,
    UpstreamBusyError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)

logger = logging.getLogger(__name__)

# A read asked again after a lost connection waits this long (times the try, with jitter) first.
READ_RETRY_PAUSE_SECONDS = 0.05

# Cache keys start with this; bump the version when the shape of a cached value changes.
CACHE_KEY_PREFIX = "enterprise_access.api_client.v1"

_MISSING = object()

# Characters left as-is when a content key goes into a path: keys like
# ``course-v1:Org+Num+Run`` travel raw, as the contract requires; ``/``, ``?`` and ``#`` do not.
_PATH_SAFE = ":@+!$&'()*,;="


def oauth_token_url(root):
    """The token endpoint for an OAuth2 root, resolved the way the LMS clients resolve it."""
    stripped = root.rstrip("/")
    if stripped.endswith("/access_token"):
        return stripped
    if stripped.endswith("/oauth2"):
        return stripped + "/access_token"
    return stripped + "/oauth2/access_token"


def path_segment(value):
    """``value`` as one path segment, keeping the characters content keys use verbatim."""
    return quote(str(value), safe=_PATH_SAFE)


def upstream_timeout():
    """The (connect, read) timeout applied to every upstream call, the token fetch included."""
    return (settings.UPSTREAM_CONNECT_TIMEOUT, settings.UPSTREAM_READ_TIMEOUT)


def cache_key(*parts):
    """
    A namespaced cache key for ``parts``, e.g. ``cache_key("catalog", "contains", uuid, keys)``.

    The first two parts stay readable; all of them are hashed, because content keys contain
    characters (``:``, ``+``, spaces) and lengths that some cache backends reject.
    """
    digest = hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()
    readable = ".".join(str(part) for part in parts[:2])
    return f"{CACHE_KEY_PREFIX}.{readable}.{digest}"


def read_through(key, timeout, fetch, *, should_cache=lambda value: True):
    """
    Return the cached value under ``key``, or call ``fetch()`` and cache what it returns.

    Values are stored wrapped in a 1-tuple so that a cached ``None`` is told apart from a miss on
    every backend. Exceptions from ``fetch`` propagate and nothing is cached.
    """
    hit = cache.get(key, _MISSING)
    if hit is not _MISSING:
        return hit[0]
    value = fetch()
    if should_cache(value):
        cache.set(key, (value,), timeout)
    return value


def is_dict(payload):
    return isinstance(payload, dict)


def is_list(payload):
    return isinstance(payload, list)


def is_page(payload):
    """An edx pagination envelope: a ``results`` list and a ``next`` link or null."""
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("results"), list)
        and isinstance(payload.get("next"), (str, type(None)))
    )


class _TokenFetchFailed(Exception):
    """The session could not obtain an access token; the original error is the ``__cause__``."""


class _AuthenticatedSession(OAuthAPIClient):
    """
    ``OAuthAPIClient`` (client-credentials JWT, cached in TieredCache, ``X-Request-ID`` forwarded
    via django-crum) that keeps token failures apart from failures of the API call itself.

    The library fetches the token inside ``request()`` and lets its errors escape as ordinary
    ``requests`` exceptions, so without the wrapper a dead OAuth provider would be blamed on the
    service being called.
    """

    def __init__(self, token_url, client_id, client_secret, timeout):
        super().__init__(token_url, client_id, client_secret, timeout=timeout)
        self.token_url = token_url
        self.headers["Accept"] = "application/json"

    def _ensure_authentication(self):
        try:
            super()._ensure_authentication()
        except (requests.RequestException, LookupError, TypeError, ValueError, ArithmeticError) as exc:
            # Besides RequestException, a token body of the wrong shape (a list, a string, a
            # non-numeric expires_in) escapes the library as a TypeError or the like.
            raise _TokenFetchFailed() from exc


def _read_body(response):
    """Return ``(payload, is_json)``: the parsed JSON, or the raw text (truncated, None if empty)."""
    try:
        return response.json(), True
    except ValueError:
        return (response.text[:MAX_RAW_PAYLOAD_CHARS] or None), False


def _text(value):
    """Flatten a DRF error value (a string, a list of strings, a nested dict) into one line."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{field}: {_text(item)}" for field, item in value.items())
    return str(value)


def _error_details(payload, is_json):
    """
    Pull ``(code, message)`` out of an error body, whichever shape the upstream used.

    Shapes seen in the contracts: ``{"detail", "code"}`` (subsidy v2, DRF),
    ``{"error_code", "developer_message", "user_message"}`` (subsidy v1),
    ``{"code", "developer_message", ...}`` (subsidy 500), ``{"error", "error_description"}``
    (OAuth2), ``{"<field>": ["msg"]}`` (validation), a bare JSON string, a JSON list, or text.
    Either element may be None when the body does not say.
    """
    if not is_json:
        return None, None
    if isinstance(payload, dict):
        code = next(
            (payload[name] for name in ("code", "error_code", "error") if isinstance(payload.get(name), str)),
            None,
        )
        message = next(
            (
                _text(payload[name])
                for name in ("detail", "developer_message", "user_message", "error_description")
                if payload.get(name)
            ),
            None,
        )
        if message is None and payload:
            message = _text(payload)
        return code, message
    if isinstance(payload, (str, list)):
        return None, _text(payload) or None
    return None, None


# 4xx statuses that proxies and load balancers send when *they* gave up waiting (408 Request Timeout, nginx's 499
# client-closed-request): unlike the service's own 4xx, they say nothing about whether the service processed the request.
PROXY_TIMEOUT_STATUSES = frozenset({408, 499})


def _interpret_response(service, response, shape, not_found):
    """
    Interpret a response: return its payload, return None for the documented not-found answer,
    or raise the matching ``UpstreamAPIError``.
    """
    status = response.status_code
    payload, is_json = _read_body(response)

    if 200 <= status < 300:
        if is_json and shape(payload):
            return payload
        raise UpstreamUnavailableError(
            service=service, status=status, code=CODE_MALFORMED_RESPONSE, payload=payload,
            message=f"{service} answered {status} with a body that is not the expected JSON",
        )

    if not_found is not None and status == 404 and not_found(payload, is_json):
        return None

    code, message = _error_details(payload, is_json)
    code = code or f"http_{status}"
    message = message or f"{service} answered HTTP {status} {response.reason or ''}".rstrip()
    if status == 429:
        error_class = UpstreamBusyError
    elif status in PROXY_TIMEOUT_STATUSES:
        # A gateway's own timeout answer: the request may have reached the service and been processed behind it.
        error_class = UpstreamUnavailableError
    elif 400 <= status < 500:
        error_class = UpstreamRequestError
    else:
        # 5xx, and statuses we never expect (an unfollowed 3xx): no usable answer either way.
        error_class = UpstreamUnavailableError
    raise error_class(service=service, status=status, code=code, message=message, payload=payload)


def never_sent(exc) -> bool:
    """
    True when ``exc`` (a ``requests`` exception) shows the request never reached the upstream: the connection
    could not be made (refused, unresolvable, connect timeout). A read timeout, or a connection dropped after the
    request was written, may follow a request the upstream processed.
    """
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.InvalidJSONError)):
        return True  # a body that could not be encoded is refused before any byte is sent
    if not isinstance(exc, requests.ConnectionError):
        return False
    seen, cause = 0, exc
    while cause is not None and seen < 10:
        if type(cause).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError"):
            return True
        cause = getattr(cause, "reason", None) or cause.__context__
        seen += 1
    return False


def _transport_error(service, exc):
    """Map a ``requests`` exception raised before any response arrived."""
    if isinstance(exc, requests.Timeout):  # checked first: ConnectTimeout is also a ConnectionError
        code, what = CODE_TIMEOUT, "timed out"
    else:
        code, what = CODE_CONNECTION_ERROR, "could not be reached"
    return UpstreamUnavailableError(service=service, code=code, message=f"{service} {what}: {exc}",
                                    request_sent=not never_sent(exc))


def _token_error(cause):
    """Map any failure of the token fetch: always ``UpstreamUnavailableError(service="oauth")``."""
    response = getattr(cause, "response", None)
    if response is None:
        if isinstance(cause, requests.RequestException):
            error = _transport_error(SERVICE_OAUTH, cause)
            error.request_sent = False  # the API call itself never left: no token
            return error
        return UpstreamUnavailableError(
            service=SERVICE_OAUTH, code=CODE_MALFORMED_RESPONSE,
            message=f"the token response could not be read: {cause!r}", request_sent=False,
        )
    payload, is_json = _read_body(response)
    if 200 <= response.status_code < 300:
        code, message = CODE_MALFORMED_RESPONSE, "the token response lacks access_token/expires_in"
    else:
        code, message = _error_details(payload, is_json)
        code = code or f"http_{response.status_code}"
        message = message or f"the token endpoint answered HTTP {response.status_code}"
    return UpstreamUnavailableError(
        service=SERVICE_OAUTH, status=response.status_code, code=code, message=message, payload=payload,
        request_sent=False,
    )


_shared_sessions = {}
_shared_sessions_lock = threading.Lock()


def shared_session(config) -> _AuthenticatedSession:
    """
    The process's session for ``config`` (token URL, client id, secret, timeout), created on first use.

    ``requests`` sessions are safe to share between threads for sending requests: the connection pool is
    thread-safe and a session's state (the token header) is only ever replaced by an equally valid token.
    """
    session = _shared_sessions.get(config)
    if session is not None:
        return session
    with _shared_sessions_lock:
        session = _shared_sessions.get(config)
        if session is None:
            session = _AuthenticatedSession(*config)
            size = int(settings.UPSTREAM_POOL_MAXSIZE)
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _shared_sessions[config] = session
    return session


def close_shared_sessions():
    """Close every pooled connection (tests; a process about to fork)."""
    with _shared_sessions_lock:
        for session in _shared_sessions.values():
            session.close()
        _shared_sessions.clear()


class UpstreamClient:
    """
    Base of the three clients. Subclasses set ``service`` and ``base_url_setting`` and build their
    methods on :meth:`_call` and :meth:`_iter_pages`.

    Cheap to construct: calls go through the process's shared session (see :func:`shared_session`).
    """

    service = None
    base_url_setting = None

    def _url(self, path):
        return getattr(settings, self.base_url_setting).rstrip("/") + path

    def _current_session(self):
        return shared_session((
            oauth_token_url(settings.OAUTH2_PROVIDER_URL),
            settings.BACKEND_SERVICE_EDX_OAUTH2_KEY,
            settings.BACKEND_SERVICE_EDX_OAUTH2_SECRET,
            upstream_timeout(),
        ))

    def _call(self, method, url, *, params=None, body=None, shape=is_dict, not_found=None):
        """
        Make one authenticated call and return its parsed JSON body.

        Args:
            url: absolute URL (see :meth:`_url`).
            params: query parameters; a list value is sent as repeated keys.
            body: JSON request body, if any.
            shape: predicate a 2xx body must satisfy; otherwise the call failed with
                ``malformed_response``.
            not_found: optional predicate ``(payload, is_json)`` over a 404's body. When it holds
                the call returns ``None``: the upstream's documented "does not exist" answer.

        Raises:
            UpstreamAPIError: one of its subclasses, for every other outcome.
        """
        session = self._current_session()
        # A read that lost its connection (a pooled keep-alive connection the upstream closed, a dropped
        # answer) is asked again; a write never is here: the redemption workflow decides, with its key.
        tries = 1 + (int(settings.UPSTREAM_READ_RETRIES) if method == "GET" else 0)
        try:
            for attempt in range(tries):
                try:
                    response = session.request(method, url, params=params, json=body, timeout=upstream_timeout())
                    break
                except _TokenFetchFailed as exc:
                    raise _token_error(exc.__cause__) from exc.__cause__
                except requests.Timeout as exc:
                    raise _transport_error(self.service, exc) from exc
                except requests.RequestException as exc:
                    if attempt == tries - 1 or not isinstance(exc, requests.ConnectionError):
                        raise _transport_error(self.service, exc) from exc
                    time.sleep(READ_RETRY_PAUSE_SECONDS * (attempt + 1) * (0.5 + random.random()))
            return _interpret_response(self.service, response, shape, not_found)
        except UpstreamAPIError as error:
            self._log_failure(error, method, session.token_url if error.service == SERVICE_OAUTH else url)
            raise

    def _iter_pages(self, url, params=None, *, shape=is_page, first_page_shape=None):
        """
        Yield every page of an edx-paginated list, following each page's absolute ``next`` link
        verbatim (it already carries the query). A link that repeats is a malformed answer.

        ``shape`` must hold for every page, ``first_page_shape`` (if given) instead of it for the
        first; both must imply :func:`is_page`.
        """
        seen = set()
        page_shape = first_page_shape or shape
        while url:
            seen.add(url)
            page = self._call("GET", url, params=params, shape=page_shape)
            page_shape = shape
            yield page
            next_url = page["next"]
            url = urljoin(url, next_url) if next_url else None
            params = None
            if url in seen:
                error = UpstreamUnavailableError(
                    service=self.service, status=200, code=CODE_MALFORMED_RESPONSE, payload=page,
                    message=f"{self.service} pagination loops back to {url}",
                )
                self._log_failure(error, "GET", url)
                raise error

    def _log_failure(self, error, method, url):
        """The one log line per failed call. The query string is left out: it names learners."""
        logger.warning(
            "Upstream call failed: service=%s method=%s path=%s status=%s code=%s error=%s message=%.300s",
            error.service, method, urlsplit(url).path, error.status, error.code, type(error).__name__,
            error.message,
        )
