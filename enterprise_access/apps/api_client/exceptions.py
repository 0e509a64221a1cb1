"""
Typed failures of the upstream clients.

Every way an upstream call can go wrong surfaces as one of three subclasses of
:class:`UpstreamAPIError`, so callers decide with one ``except`` clause per outcome:

* :class:`UpstreamUnavailableError`: we got no usable answer (timeout, refused connection, 5xx,
  a 2xx whose body is not the JSON we expect, or no OAuth token). Nothing is known about the
  thing we asked for; callers must not read it as "not found" or "not allowed".
* :class:`UpstreamBusyError`: the upstream answered 429 (the subsidy ledger lock is held).
  Retrying shortly is expected to work.
* :class:`UpstreamRequestError`: the upstream understood us and said no (any other 4xx).

"Not found" is not an error: the methods whose contract has a not-found answer return ``None``.
"""

# Kinds of upstream, as they appear in ``UpstreamAPIError.service``.
SERVICE_SUBSIDY = "subsidy"
SERVICE_CATALOG = "catalog"
SERVICE_LMS = "lms"
SERVICE_OAUTH = "oauth"

# Local error codes, used when the upstream gave none (HTTP failures use ``http_<status>``).
CODE_TIMEOUT = "timeout"
CODE_CONNECTION_ERROR = "connection_error"
CODE_MALFORMED_RESPONSE = "malformed_response"

# Raw (non-JSON) error bodies are kept for diagnosis, but never more than this many characters.
MAX_RAW_PAYLOAD_CHARS = 2000


class UpstreamAPIError(Exception):
    """
    An upstream call did not give a usable answer.

    Attributes:
        service: which upstream failed: ``"subsidy"``, ``"catalog"``, ``"lms"`` or ``"oauth"``.
        status: the HTTP status, or ``None`` when no response arrived.
        code: the upstream's own error code when its body carried one (e.g. ``"fulfillment_error"``),
            otherwise a local code: ``"timeout"``, ``"connection_error"``, ``"malformed_response"``
            or ``"http_<status>"``.
        message: a human-readable explanation, taken from the body when it had one.
        payload: the parsed JSON body, the raw text (truncated), or ``None``.
    """

    def __init__(self, *, service, status=None, code=None, message="", payload=None, request_sent=True):
        self.service = service
        self.status = status
        self.code = code
        self.message = message
        self.payload = payload
        # False only when the request certainly never reached the upstream (no connection, no token): then a
        # write cannot have happened. Any answer, and any failure after the request left, leaves it True.
        self.request_sent = request_sent
        super().__init__(self._summary())

    def _summary(self):
        status = self.status if self.status is not None else "no response"
        return f"{self.service} ({status}, {self.code}): {self.message}"

    def to_dict(self):
        """The five fields as a JSON-serializable dict, e.g. for an audit row or an error response."""
        return {
            "service": self.service,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "payload": self.payload,
        }

    def __repr__(self):
        return f"{type(self).__name__}(service={self.service!r}, status={self.status!r}, code={self.code!r})"


class UpstreamUnavailableError(UpstreamAPIError):
    """No usable answer: timeout, connection failure, 5xx, malformed 2xx body, or no OAuth token."""


class UpstreamBusyError(UpstreamAPIError):
    """The upstream answered 429: it is busy (for the subsidy service, its ledger lock is held)."""


class UpstreamRequestError(UpstreamAPIError):
    """The upstream refused the request with a 4xx other than 429 and the documented not-found answer."""
