"""
Read-only learner views: ``can-redeem`` (per content key, which policy would pay) and ``credits_available``.

Neither takes the policy lock: they answer "would it work now", the redeem endpoint decides. The deciding is in
``subsidy_access_policy.selectors``; these views validate, call and serialize. A policy an upstream failure kept
from being decided is marked ``undecided`` (reason ``upstream_unavailable``) and the others still answer: an
outage never reads as "not redeemable". Only when nothing could be decided is the answer 503 with ``Retry-After``
(decision 0014).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from enterprise_access.apps.api.permissions import may_read_for_learner
from enterprise_access.apps.api.reasons import REASON_UPSTREAM_UNAVAILABLE, customer_contact, reason_entry
from enterprise_access.apps.api_client import UpstreamAPIError
from enterprise_access.apps.subsidy_access_policy import selectors

from .. import serializers as s
from .common import RequestIdMixin, parse_uuid, retryable
from .redeem import COMMON_ERRORS

UNAVAILABLE = OpenApiResponse(s.RetryableErrorSerializer,
                              description="Not one policy could be decided: an upstream service is unavailable.")


def _upstream_unavailable(exc: UpstreamAPIError) -> Response:
    return retryable({"detail": "A service needed to answer is unavailable; try again shortly.",
                      "code": "upstream_unavailable", "service": exc.service}, status.HTTP_503_SERVICE_UNAVAILABLE)


def _policy_summary(policy, subsidy=None) -> dict:
    return {
        "uuid": str(policy.uuid), "policy_type": policy.policy_type, "display_name": policy.display_name,
        "subsidy_uuid": str(policy.subsidy_uuid), "catalog_uuid": str(policy.catalog_uuid),
        "access_method": policy.access_method,
        "subsidy_expiration_datetime": (subsidy or {}).get("expiration_datetime"),
        "subsidy_current_balance": (subsidy or {}).get("current_balance"),
    }


class CanRedeemView(RequestIdMixin, APIView):
    """For each content key: can the learner redeem it, under which policy, and if not, why."""

    @extend_schema(
        operation_id="policy_redemption_can_redeem",
        parameters=[
            OpenApiParameter("customer_uuid", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter("content_key", str, many=True, required=True, description="Repeat for several keys."),
            OpenApiParameter("lms_user_id", int, required=False,
                             description="Defaults to the caller; someone else's id is for operators only."),
        ],
        responses={200: s.CanRedeemEntrySerializer(many=True), **COMMON_ERRORS, 503: UNAVAILABLE},
    )
    def get(self, request, customer_uuid):
        customer_uuid = parse_uuid(customer_uuid, "enterprise_customer_uuid")
        query = s.CanRedeemQuerySerializer(data={
            "content_key": request.query_params.getlist("content_key"),
            **({"lms_user_id": request.query_params["lms_user_id"]} if "lms_user_id" in request.query_params else {}),
        })
        query.is_valid(raise_exception=True)
        own_id = getattr(request.user, "lms_user_id", None)
        lms_user_id = query.validated_data.get("lms_user_id", own_id)
        if lms_user_id is None:
            raise PermissionDenied("Your token carries no LMS user id; pass lms_user_id as an operator.")
        if not may_read_for_learner(request, customer_uuid, lms_user_id):
            raise PermissionDenied("You may ask only about yourself, as a member of this enterprise.")
        try:
            answers = selectors.can_redeem_by_content(customer_uuid=customer_uuid, lms_user_id=lms_user_id,
                                                      content_keys=query.validated_data["content_key"])
        except UpstreamAPIError as exc:
            return _upstream_unavailable(exc)
        contact = customer_contact(customer_uuid) if any(a.refused or a.undecided for a in answers) else None
        return Response([self._entry(answer, contact) for answer in answers])

    @staticmethod
    def _entry(answer, contact) -> dict:
        price = answer.content_price
        reasons = [reason_entry(reason, uuids, contact) for reason, uuids in answer.refused.items()]
        if answer.undecided:
            reasons.append(reason_entry(REASON_UPSTREAM_UNAVAILABLE, list(answer.undecided), contact))
        return {
            "content_key": answer.content_key,
            "list_price": None if price is None else {"usd": price / 100, "usd_cents": price},
            "redemptions": list(answer.redemptions.values()),
            "has_successful_redemption": answer.has_successful_redemption,
            "redeemable_subsidy_access_policy": (
                _policy_summary(answer.chosen, answer.chosen_subsidy) if answer.chosen else None),
            "can_redeem": answer.chosen is not None,
            "undecided": answer.chosen is None and bool(answer.undecided),
            "reasons": reasons,
        }


class CreditsAvailableView(RequestIdMixin, APIView):
    """The policies with credit left for a learner, and those that could not be asked just now."""

    @extend_schema(
        operation_id="policy_redemption_credits_available",
        parameters=[OpenApiParameter("enterprise_customer_uuid", OpenApiTypes.UUID, required=True),
                    OpenApiParameter("lms_user_id", int, required=True)],
        responses={200: s.CreditsAvailableEntrySerializer(many=True), **COMMON_ERRORS, 503: UNAVAILABLE},
    )
    def get(self, request):
        query = s.CreditsAvailableQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        customer_uuid = query.validated_data["enterprise_customer_uuid"]
        lms_user_id = query.validated_data["lms_user_id"]
        if not may_read_for_learner(request, customer_uuid, lms_user_id):
            raise PermissionDenied("You may ask only about yourself, as a member of this enterprise.")
        try:
            credits = selectors.credits_available(customer_uuid=customer_uuid, lms_user_id=lms_user_id)
        except UpstreamAPIError as exc:
            return _upstream_unavailable(exc)
        return Response([self._entry(credit) for credit in credits])

    @staticmethod
    def _entry(credit) -> dict:
        if credit.undecided:
            return {**_policy_summary(credit.policy), "undecided": True, "reason": REASON_UPSTREAM_UNAVAILABLE,
                    "remaining_balance": None, "remaining_balance_per_user": None,
                    "remaining_enrollments_per_user": None, "learner_content_assignments": []}
        figures = dict(credit.credit)
        subsidy = figures.pop("subsidy")
        return {**_policy_summary(credit.policy, subsidy), "undecided": False, "reason": None, **figures}
