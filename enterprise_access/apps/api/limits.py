"""
Limits on what a client may send the API, answered as JSON 4xx before any work is done (decision 0014).

* Body size: at most ``API_MAX_BODY_BYTES`` (64 KB) under ``/api/``; larger answers **413**. The largest honest
  body (a redeem with 8 KB of exec-ed metadata, a policy) is a few KB. The limit is checked on the declared
  ``Content-Length`` before the body is read, so an oversized upload is never buffered.
* JSON nesting: at most ``MAX_JSON_DEPTH`` (32) levels of arrays and objects; deeper answers **400**. No accepted
  body nests more than 3 deep; the check runs before ``json.loads``, which otherwise recurses until Python's
  recursion limit (a 500).
"""
import io

from django.conf import settings
from django.http import JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

API_PREFIX = "/api/"
DEFAULT_MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32


def max_body_bytes() -> int:
    return int(getattr(settings, "API_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def too_large_body(limit: int) -> dict:
    return {"detail": f"The request body is larger than this API accepts ({limit} bytes); send less.",
            "code": "request_too_large", "max_bytes": limit}


class BodySizeLimitMiddleware:
    """Answer 413 (JSON) to an API request whose declared body is larger than ``API_MAX_BODY_BYTES``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            limit = max_body_bytes()
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0  # Django reads such a body as empty, as it does one without a length
            if declared > limit:
                return JsonResponse(too_large_body(limit), status=413)
        return self.get_response(request)


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays/objects more than ``limit`` deep (brackets inside strings ignored)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than ``MAX_JSON_DEPTH`` with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from None
        if json_depth_exceeds(text, MAX_JSON_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted; flatten the body.",
                             code="json_too_deep")
        return super().parse(io.BytesIO(raw), media_type, parser_context)

