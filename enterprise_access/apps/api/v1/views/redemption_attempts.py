"""
``/api/v1/redemption-attempts/``: the audit record of redemptions, scoped by the caller's roles.

Operators see every attempt of the customers they operate (all, with ``:*``); enterprise admins see their
customers' attempts; learners see only their own, without internal error details. Nobody else sees any. Which
fields a caller reads is decided per row (``sees_staff_fields``), the same in the list and the detail.
"""
from base64 import b64decode
from datetime import timezone as dt_timezone
from urllib.parse import parse_qs

import django_filters
from django import forms
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from enterprise_access.apps.core import roles
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.apps.subsidy_access_policy.selectors import SUMMARY_GROUP_BY, attempt_summary

from .. import attempt_serializers as s
from ..serializers import MAX_LMS_USER_ID, ErrorSerializer
from .common import RequestIdMixin
from .redeem import COMMON_ERRORS

GROUP_BY = SUMMARY_GROUP_BY
SUMMARY_FILTERS = ("enterprise_customer_uuid", "policy_uuid", "created_after", "created_before")


INVALID_CURSOR = "Invalid cursor: use the next or previous link of a page of this list, unchanged."
DATETIME_RANGE = "Must be a date-time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once converted to UTC."


def utc_or_none(value):
    """``value`` (an aware or naive datetime) in UTC, or None when UTC cannot hold it (year 0 or 10000)."""
    try:
        return value.astimezone(dt_timezone.utc) if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)
    except (OverflowError, ValueError):
        return None


class AttemptCursorPagination(CursorPagination):
    """Newest first. A cursor this list did not give out (tampered, truncated) is a 400, never a 500."""

    ordering = ("-started_at", "-uuid")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            tokens = parse_qs(b64decode(encoded.encode("ascii"), validate=True).decode("ascii"),
                              keep_blank_values=True, strict_parsing=bool(encoded))
            cursor = super().decode_cursor(request)
            if set(tokens) - {"o", "r", "p"} or any(len(values) != 1 for values in tokens.values()):
                raise ValueError("not a cursor this list encodes")
            if cursor.position is not None:
                position = parse_datetime(cursor.position)  # raises ValueError for an impossible date
                if position is None or utc_or_none(position) is None:
                    raise ValueError("not a position in this list")
        except (ValueError, NotFound):  # binascii.Error and UnicodeErrors are ValueErrors
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        return cursor


class BoundedIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time that UTC (and so every database) can hold; otherwise a message naming the field."""

    def clean(self, value):
        value = super().clean(value)
        if value is not None and utc_or_none(value) is None:
            raise forms.ValidationError(DATETIME_RANGE, code="out_of_range")
        return value

    def strptime(self, value, format):
        try:
            return super().strptime(value, format)
        except OverflowError:  # making a naive edge value aware in a zone other than UTC
            raise forms.ValidationError(DATETIME_RANGE, code="out_of_range") from None


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (``NumberFilter`` takes decimals: ``1.5``, ``1e40``)."""

    field_class = forms.IntegerField


class RedemptionAttemptFilter(django_filters.FilterSet):
    enterprise_customer_uuid = django_filters.UUIDFilter()
    policy_uuid = django_filters.UUIDFilter()
    lms_user_id = IntegerFilter(min_value=1, max_value=MAX_LMS_USER_ID)
    content_key = django_filters.CharFilter()
    outcome = django_filters.ChoiceFilter(choices=AttemptOutcome.CHOICES)
    reason = django_filters.ChoiceFilter(choices=[(r, r) for r in c.ALL_REASONS])
    source = django_filters.ChoiceFilter(choices=AttemptSource.CHOICES)
    created_after = BoundedIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = RedemptionAttempt
        fields = []


def _staff_customers(request) -> set:
    """The customers whose attempts the caller reads as staff (operator or enterprise admin); ``{"*"}`` for all."""
    return roles.operator_customer_uuids(request) | roles.admin_customer_uuids(request)


def staff_attempts(request):
    """The attempts the caller reads as staff: those of the customers they operate or administer."""
    qs = RedemptionAttempt.objects.all()
    customers = _staff_customers(request)
    if "*" in customers:
        return qs
    return qs.filter(enterprise_customer_uuid__in=customers) if customers else qs.none()


def scoped_attempts(request):
    """The attempts the caller may see: as staff (``staff_attempts``), and their own as a learner; or none."""
    customers = _staff_customers(request)
    if "*" in customers:
        return RedemptionAttempt.objects.all()
    visible = Q(enterprise_customer_uuid__in=customers) if customers else Q(pk__in=[])
    own_id = getattr(request.user, "lms_user_id", None)
    learner_of = roles.learner_customer_uuids(request)
    if own_id is not None and learner_of:
        own = Q(lms_user_id=own_id)
        if "*" not in learner_of:
            own &= Q(enterprise_customer_uuid__in=learner_of)
        visible |= own
    return RedemptionAttempt.objects.filter(visible)


def sees_staff_fields(request, attempt) -> bool:
    """
    What the caller reads of one attempt, decided for that row alone (the list and the detail both ask here).

    Operators and admins of *the attempt's* customer read the full record (``error_payload``, ``error_message``,
    ``request_metadata``, ``acting_user``); anyone else who can see the row, i.e. the learner it concerns, reads
    the learner's fields. Being an admin of some other customer changes nothing for this row.
    """
    customer = attempt.enterprise_customer_uuid
    return roles.is_operator(request, customer) or roles.is_admin(request, customer)


@extend_schema_view(
    list=extend_schema(
        summary="List redemption attempts",
        responses={200: s.RedemptionAttemptSchemaSerializer(many=True), **COMMON_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One redemption attempt",
        parameters=[OpenApiParameter("uuid", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                     description="The attempt's uuid.")],
        responses={200: s.RedemptionAttemptSchemaSerializer, **COMMON_ERRORS,
                   404: OpenApiResponse(ErrorSerializer, description="No such attempt visible to you.")},
    ),
)
class RedemptionAttemptViewSet(RequestIdMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                               viewsets.GenericViewSet):
    lookup_field = "uuid"
    lookup_value_regex = "[^/]+"  # any segment reaches the view: a malformed uuid is a 400, not a 404 page
    pagination_class = AttemptCursorPagination
    filterset_class = RedemptionAttemptFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RedemptionAttempt.objects.none()
        return scoped_attempts(self.request)

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False):
            return s.RedemptionAttemptSchemaSerializer
        return s.AttemptForCallerSerializer

    def get_serializer_context(self):
        request = self.request
        return {**super().get_serializer_context(),
                "sees_staff_fields": lambda attempt: sees_staff_fields(request, attempt)}

    @extend_schema(
        summary="Counts of attempts by outcome and reason",
        parameters=[
            OpenApiParameter("enterprise_customer_uuid", OpenApiTypes.UUID, required=False),
            OpenApiParameter("policy_uuid", OpenApiTypes.UUID, required=False),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME, required=False,
                             description="ISO 8601 datetime, inclusive."),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME, required=False,
                             description="ISO 8601 datetime, exclusive."),
            OpenApiParameter("group_by", str, required=False, enum=list(GROUP_BY)),
        ],
        responses={200: s.SummarySerializer, **COMMON_ERRORS},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def summary(self, request):
        if not _staff_customers(request):
            raise PermissionDenied("Only enterprise admins and operators may read redemption summaries.")
        group_by = request.query_params.get("group_by", "day")
        if group_by not in GROUP_BY:
            raise ValidationError({"group_by": [f"Choose one of: {', '.join(GROUP_BY)}."]})
        filters = RedemptionAttemptFilter(
            {k: v for k, v in request.query_params.items() if k in SUMMARY_FILTERS},
            queryset=staff_attempts(request),
        )
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        parsed = {name: filters.form.cleaned_data.get(name) for name in SUMMARY_FILTERS}
        # Only rows read as staff are counted: a learner's own rows at another customer are not theirs to summarize.
        body = attempt_summary(queryset=staff_attempts(request), group_by=group_by, **parsed)
        return Response(s.SummarySerializer(body).data)
