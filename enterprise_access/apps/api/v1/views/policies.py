"""``/api/v1/subsidy-access-policies/``: operators list, read, create and update; enterprise admins read their own."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied

from enterprise_access.apps.core import roles
from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy

from .. import serializers as s
from .common import RequestIdMixin, parse_uuid
from .redeem import COMMON_ERRORS

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
    create=extend_schema(responses={201: s.PolicySerializer, **COMMON_ERRORS}),
    partial_update=extend_schema(parameters=[UUID_PATH],
                                 responses={200: s.PolicySerializer, **COMMON_ERRORS, 404: NOT_FOUND}),
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

    def perform_create(self, serializer):
        if not self._is_writer(serializer.validated_data["enterprise_customer_uuid"]):
            raise PermissionDenied("Only operators may create policies.")
        serializer.save()

    def perform_update(self, serializer):
        instance = serializer.instance
        if not self._is_writer(instance.enterprise_customer_uuid):
            raise PermissionDenied("Only operators may change policies.")
        new_customer = serializer.validated_data.get("enterprise_customer_uuid")
        if new_customer and not self._is_writer(new_customer):
            raise PermissionDenied("You may not move a policy to a customer you do not operate.")
        serializer.save()
