"""``/api/v1/subsidy-access-policies/``: operators list, read, create and update; enterprise admins read their own."""
from django.db import router, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError

from enterprise_access.apps.core import roles
from enterprise_access.apps.core.databases import lock_row
from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.tenancy import (
    TENANCY_FIELDS,
    TenancyCheckUnavailable,
    needs_tenancy_check,
    policy_tenancy_errors,
)

from .. import serializers as s
from .common import RequestIdMixin, parse_uuid, retryable
from .redeem import COMMON_ERRORS


class PolicyChangedMeanwhile(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "policy_changed"
    default_detail = ("The policy's customer, subsidy, catalog or active switch was changed by someone else while "
                      "this change was being checked; nothing was saved. Reload the policy and make the change again.")


WRITE_ERRORS = {
    400: OpenApiResponse(s.FIELD_ERRORS_SCHEMA, description="Bad input: per-field messages. Also when the subsidy "
                         "(subsidy_uuid) or the catalog (catalog_uuid) does not belong to the policy's enterprise "
                         "customer, as the subsidy service and enterprise-catalog say."),
    409: OpenApiResponse(s.ErrorSerializer, description="The policy's customer, subsidy or catalog changed while "
                         "this change was checked; nothing was saved."),
    503: OpenApiResponse(s.RetryableErrorSerializer, description="The subsidy service or enterprise-catalog could "
                         "not confirm the policy's customer (code=tenancy_check_unavailable); nothing was saved. "
                         "See Retry-After."),
}


def tenancy_unavailable_response(unavailable: TenancyCheckUnavailable):
    return retryable({"detail": f"The {unavailable.service} service could not be reached to confirm that the "
                                "policy's subsidy and catalog belong to its enterprise customer; nothing was saved. "
                                "Try again shortly.",
                      "code": "tenancy_check_unavailable", "service": unavailable.service, "attempt_uuid": None},
                     status.HTTP_503_SERVICE_UNAVAILABLE)

UUID_PATH = OpenApiParameter("uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The policy's uuid.")
NOT_FOUND = OpenApiResponse(s.ErrorSerializer, description="No such policy visible to you.")


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("enterprise_customer_uuid", OpenApiTypes.UUID, required=False)],
        responses={200: s.PolicySerializer(many=True), **COMMON_ERRORS,
                   404: OpenApiResponse(s.ErrorSerializer, description="No such page of the list.")},
    ),
    retrieve=extend_schema(parameters=[UUID_PATH],
                           responses={200: s.PolicySerializer, **COMMON_ERRORS, 404: NOT_FOUND}),
    create=extend_schema(responses={201: s.PolicySerializer, **COMMON_ERRORS, **WRITE_ERRORS}),
    partial_update=extend_schema(parameters=[UUID_PATH],
                                 responses={200: s.PolicySerializer, **COMMON_ERRORS, 404: NOT_FOUND,
                                            **WRITE_ERRORS}),
)
class SubsidyAccessPolicyViewSet(RequestIdMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                                 mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    serializer_class = s.PolicySerializer
    lookup_field = "uuid"
    lookup_value_regex = "[^/]+"  # any segment reaches the view: a malformed uuid is a 400, not a 404 page
    http_method_names = ["get", "post", "patch", "head", "options"]

    def _is_writer(self, customer_uuid=None):
        return roles.is_operator(self.request, customer_uuid)

    def get_queryset(self):
        qs = SubsidyAccessPolicy.objects.all().order_by("-created")
        if getattr(self, "swagger_fake_view", False):
            return qs.none()
        customer = self.request.query_params.get("enterprise_customer_uuid")
        if customer:
            qs = qs.filter(enterprise_customer_uuid=parse_uuid(customer, "enterprise_customer_uuid"))
        operated = roles.operator_customer_uuids(self.request)
        if "*" in operated:
            return qs
        visible = operated | roles.admin_customer_uuids(self.request)
        if "*" in visible:
            return qs
        return qs.filter(enterprise_customer_uuid__in=list(visible))

    def check_permissions(self, request):
        super().check_permissions(request)
        if not (roles.operator_customer_uuids(request) or roles.admin_customer_uuids(request)):
            raise PermissionDenied("Only enterprise operators and administrators may see policies.")

    def get_object(self):
        parse_uuid(self.kwargs["uuid"], "uuid")
        try:
            return super().get_object()
        except NotFound:
            raise NotFound("No subsidy access policy with this uuid is visible to you.") from None

    def create(self, request, *args, **kwargs):
        try:
            return super().create(request, *args, **kwargs)
        except TenancyCheckUnavailable as unavailable:
            return tenancy_unavailable_response(unavailable)

    def update(self, request, *args, **kwargs):
        try:
            return super().update(request, *args, **kwargs)
        except TenancyCheckUnavailable as unavailable:
            return tenancy_unavailable_response(unavailable)

    def _check_tenancy(self, serializer) -> dict | None:
        """
        Ask the subsidy and catalog services whether the policy as it would be saved is one customer's: a 400
        naming each field that is not. Returns the tenancy fields the check saw (None when none was needed).
        Runs after the permission checks, so nobody learns which customer owns a subsidy they cannot write for.
        """
        instance, changes = serializer.instance, serializer.validated_data
        if not needs_tenancy_check(instance, changes):
            return None
        seen = {name: changes.get(name, getattr(instance, name, None)) for name in TENANCY_FIELDS}
        errors = policy_tenancy_errors(**seen)
        if errors:
            raise ValidationError({name: [message] for name, message in errors.items()})
        return seen

    def perform_create(self, serializer):
        if not self._is_writer(serializer.validated_data["enterprise_customer_uuid"]):
            raise PermissionDenied("Only operators may create policies.")
        self._check_tenancy(serializer)
        serializer.save()

    def perform_update(self, serializer):
        instance = serializer.instance
        if not self._is_writer(instance.enterprise_customer_uuid):
            raise PermissionDenied("Only operators may change policies.")
        new_customer = serializer.validated_data.get("enterprise_customer_uuid")
        if new_customer and not self._is_writer(new_customer):
            raise PermissionDenied("You may not move a policy to a customer you do not operate.")
        seen = self._check_tenancy(serializer)  # asks upstream: before, never inside, the row lock
        using = router.db_for_write(SubsidyAccessPolicy)
        with transaction.atomic(using=using):
            # The request was validated against the row as read before the (slow) tenancy check; another writer
            # may have saved meanwhile (two operators, two tabs). Re-read the row under its lock and write only the
            # fields this request sent onto it, so the other writer's fields stand.
            current = lock_row(SubsidyAccessPolicy, instance.pk, using)
            if current is None:
                raise NotFound("No subsidy access policy with this uuid is visible to you.")
            changes = serializer.validated_data
            if seen is not None:
                # The check ran on the customer, subsidy and catalog as read: save only if the row still holds them.
                unchanged = {name: getattr(instance, name) for name in TENANCY_FIELDS}
                if any(str(getattr(current, name)) != str(unchanged[name]) for name in TENANCY_FIELDS):
                    raise PolicyChangedMeanwhile()
            elif needs_tenancy_check(current, changes):
                # Unchecked when read (e.g. it was active then) but the row now needs the check (it was switched
                # off meanwhile and this request switches it on): nothing saved, the caller reloads and retries.
                raise PolicyChangedMeanwhile()
            serializer.instance = current
            serializer.save()
