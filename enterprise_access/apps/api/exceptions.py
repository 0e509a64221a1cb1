"""The API's exception handler: every error answers JSON, an unhandled one included."""
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from enterprise_access.apps.core.outages import infrastructure_outage

from .limits import max_body_bytes, too_large_body

logger = logging.getLogger(__name__)


def json_exception_handler(exc, context):
    """
    DRF's handler for what it knows (400/401/403/404/405/...); a 413 for a body too large to read (decision 0014);
    a 503 with ``Retry-After`` when the database or the cache is down (decision 0005); a JSON 500 for anything
    else, never an HTML page.
    """
    code = infrastructure_outage(exc)
    if code is not None:
        logger.warning("Answering 503: %s (%s: %s)", code, type(exc).__name__, exc)
        seconds = int(settings.RETRY_AFTER_SECONDS)
        return Response({"detail": "The service is briefly unavailable; try again shortly.", "code": code,
                         "retry_after_seconds": seconds},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(seconds)})
    if isinstance(exc, RequestDataTooBig):
        # A body past Django's own limit that the API's middleware did not see declared (decision 0014).
        return Response(too_large_body(max_body_bytes()), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
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
