"""Helpers shared by the v1 views."""
from uuid import UUID

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from enterprise_access.apps.api.request_ids import HEADER as REQUEST_ID_HEADER
from enterprise_access.apps.api.request_ids import request_id_for


def parse_uuid(value, field_name) -> UUID:
    """``value`` as a UUID, or a 400 naming ``field_name`` (a malformed id is bad input, not an unknown one)."""
    try:
        return UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError({field_name: ["Must be a valid UUID."]}) from None


def retry_after_seconds() -> int:
    return int(settings.RETRY_AFTER_SECONDS)


def retryable(body: dict, status_code: int) -> Response:
    """A 429/503 answer with ``Retry-After`` and the same number in the body."""
    seconds = retry_after_seconds()
    return Response({**body, "retry_after_seconds": seconds}, status=status_code,
                    headers={"Retry-After": str(seconds)})


class RequestIdMixin:
    """Echo the request id (the caller's ``X-Request-ID`` or a generated one) on every response."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response[REQUEST_ID_HEADER] = request_id_for(request)
        return response
