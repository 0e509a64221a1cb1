"""
``POST /api/v1/policy-redemption/<policy_uuid>/redeem/``: validate, call the one workflow, map its outcome.

| outcome              | status | body                                                     |
|----------------------|--------|----------------------------------------------------------|
| redeemed             | 200    | the subsidy transaction                                  |
| not_redeemable       | 422    | ``{"detail": [reason entry]}``                           |
| subsidy_refused      | 422    | ``{"detail", "code"}``: this service's message for the  |
|                      |        | subsidy's code (never the subsidy's own text)             |
| uncertain            | 202    | ``{"detail", "code": "redemption_uncertain"}``: the      |
|                      |        | subsidy may have written it; asking again is safe         |
| policy_busy          | 429    | ``Retry-After`` (the ledger busy, or this learner's       |
|                      |        | redemption of this content already running)               |
| upstream_unavailable | 503    | ``Retry-After``                                          |
| unexpected_error     | 500    | JSON with the attempt uuid                               |
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from enterprise_access.apps.api.limits import DepthLimitedJSONParser
from enterprise_access.apps.api.permissions import may_act_for_learner
from enterprise_access.apps.api.reasons import customer_contact, reason_entry, subsidy_refusal
from enterprise_access.apps.api.request_ids import request_id_for
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.redemption import CODE_REDEMPTION_IN_PROGRESS, redeem_policy

from .. import serializers as s
from .common import RequestIdMixin, parse_uuid, retryable

COMMON_ERRORS = {
    400: OpenApiResponse(s.FIELD_ERRORS_SCHEMA, description="Bad input: per-field messages."),
    401: OpenApiResponse(s.ErrorSerializer, description="No valid JWT."),
    403: OpenApiResponse(s.ErrorSerializer, description="The caller's roles do not allow this."),
}


def outcome_response(result, policy) -> Response:
    """The HTTP answer for a ``RedemptionResult``."""
    attempt = str(result.attempt_uuid) if result.attempt_uuid else None
    if result.outcome == AttemptOutcome.REDEEMED:
        return Response(result.transaction, status=status.HTTP_200_OK)
    if result.outcome == AttemptOutcome.NOT_REDEEMABLE:
        contact = customer_contact(policy.enterprise_customer_uuid)
        return Response({"detail": [reason_entry(result.reason, [policy.uuid], contact)]},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if result.outcome == AttemptOutcome.SUBSIDY_REFUSED:
        # The subsidy's own detail stays on the attempt row, for staff (decision 0014).
        code = result.error.code if result.error else result.code
        refusal = subsidy_refusal(code, customer_contact(policy.enterprise_customer_uuid))
        return Response({**refusal, "attempt_uuid": attempt}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    if result.outcome == AttemptOutcome.UNCERTAIN:
        return retryable({"detail": "Your enrollment is being confirmed with your organization's learner credit. "
                                    "Check again shortly; asking again is safe and will not charge twice.",
                          "code": "redemption_uncertain", "attempt_uuid": attempt}, status.HTTP_202_ACCEPTED)
    if result.outcome == AttemptOutcome.POLICY_BUSY:
        if result.code == CODE_REDEMPTION_IN_PROGRESS:
            detail = "Your enrollment in this course is already being processed; try again shortly."
        else:
            detail = "This learner credit is busy with other enrollments; try again shortly."
        return retryable({"detail": detail, "code": result.code or "policy_busy", "attempt_uuid": attempt},
                         status.HTTP_429_TOO_MANY_REQUESTS)
    if result.outcome == AttemptOutcome.UPSTREAM_UNAVAILABLE:
        service = getattr(result.error, "service", None)
        return retryable({"detail": "A service needed to redeem is unavailable; try again shortly.",
                          "code": "upstream_unavailable", "service": service, "attempt_uuid": attempt},
                         status.HTTP_503_SERVICE_UNAVAILABLE)
    return Response({"detail": "An unexpected error occurred; nothing was charged unless a transaction is listed "
                               "for this attempt.", "code": "unexpected_error", "attempt_uuid": attempt},
                    status=status.HTTP_500_INTERNAL_SERVER_ERROR)


class PolicyRedeemView(RequestIdMixin, APIView):
    """Redeem a policy's learner credit for one learner and one content key."""

    # JSON only: the body is strictly typed (lms_user_id a JSON number), which a form body cannot express.
    parser_classes = [DepthLimitedJSONParser]

    @extend_schema(
        operation_id="policy_redemption_redeem",
        request=s.RedeemRequestSerializer,
        parameters=[OpenApiParameter("policy_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH),
                    OpenApiParameter("X-Request-ID", str, OpenApiParameter.HEADER, required=False,
                                     description="Your id for this request; recorded on the attempt.")],
        responses={
            200: OpenApiResponse(s.TransactionSerializer, description="Redeemed (or already redeemed): the transaction."),
            202: OpenApiResponse(s.RetryableErrorSerializer, description="Uncertain: the subsidy service may have "
                                 "written the transaction but its answer was lost. Nothing more is charged by "
                                 "asking again; reconciliation settles it. code=redemption_uncertain."),
            **COMMON_ERRORS,
            404: OpenApiResponse(s.ErrorSerializer, description="No such policy."),
            422: OpenApiResponse(
                PolymorphicProxySerializer(component_name="RedeemUnprocessable", resource_type_field_name=None,
                                           serializers=[s.NotRedeemableSerializer, s.SubsidyRefusedSerializer]),
                description="Not redeemable: a reason entry with a learner-facing message; or, when the subsidy "
                            "service refused the transaction, {detail, code} (SubsidyRefused shape): this "
                            "service's message for the subsidy's error code, never the subsidy's own text.",
            ),
            429: OpenApiResponse(s.RetryableErrorSerializer, description="The subsidy ledger busy past retries "
                                 "(code=policy_busy), or this learner's redemption of this content already running "
                                 "(code=redemption_in_progress). See Retry-After."),
            500: OpenApiResponse(s.ServerErrorSerializer, description="Unexpected error, with the attempt uuid."),
            503: OpenApiResponse(s.RetryableErrorSerializer, description="An upstream service is unavailable. "
                                 "See Retry-After."),
        },
    )
    def post(self, request, policy_uuid):
        uuid = parse_uuid(policy_uuid, "policy_uuid")
        body = s.RedeemRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        policy = SubsidyAccessPolicy.objects.filter(uuid=uuid).first()
        if policy is None:
            raise NotFound("No subsidy access policy has this uuid.")
        if not may_act_for_learner(request, policy.enterprise_customer_uuid, data["lms_user_id"]):
            raise PermissionDenied("You may redeem only for yourself, as a learner of this policy's enterprise.")
        for_self = getattr(request.user, "lms_user_id", None) == data["lms_user_id"]
        result = redeem_policy(
            policy=policy,
            lms_user_id=data["lms_user_id"],
            content_key=data["content_key"],
            metadata=data.get("metadata") or None,
            source=AttemptSource.LEARNER_REDEEM_API if for_self else AttemptSource.OPERATOR_API,
            acting_user=request.user,
            request_id=request_id_for(request),
        )
        return outcome_response(result, policy)
