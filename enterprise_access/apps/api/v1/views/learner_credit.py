"""
Read-only learner views: ``can-redeem`` (per content key, which policy would pay) and ``credits_available``.

Neither takes the policy lock: they answer "would it work now", the redeem endpoint decides. Any upstream
failure answers 503 with ``Retry-After``: an outage never reads as "not redeemable".
"""
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from enterprise_access.apps.api.permissions import may_read_for_learner
from enterprise_access.apps.api.reasons import customer_contact, reason_entry
from enterprise_access.apps.api_client import UpstreamAPIError, get_lms_client, get_subsidy_client
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy, is_reversed

from .. import serializers as s
from .common import RequestIdMixin, parse_uuid, retryable
from .redeem import COMMON_ERRORS

UNAVAILABLE = OpenApiResponse(s.RetryableErrorSerializer, description="An upstream service is unavailable.")


def _upstream_unavailable(exc: UpstreamAPIError) -> Response:
    return retryable({"detail": "A service needed to answer is unavailable; try again shortly.",
                      "code": "upstream_unavailable", "service": exc.service}, status.HTTP_503_SERVICE_UNAVAILABLE)


def _redeemable_policies(customer_uuid):
    return list(SubsidyAccessPolicy.objects.filter(enterprise_customer_uuid=customer_uuid, active=True, retired=False))


def _policy_summary(policy, subsidy=None) -> dict:
    return {
        "uuid": str(policy.uuid), "policy_type": policy.policy_type, "display_name": policy.display_name,
        "subsidy_uuid": str(policy.subsidy_uuid), "catalog_uuid": str(policy.catalog_uuid),
        "access_method": policy.access_method,
        "subsidy_expiration_datetime": (subsidy or {}).get("expiration_datetime"),
        "subsidy_current_balance": (subsidy or {}).get("current_balance"),
    }


def _sort_key(policy, subsidy):
    """Assigned policies first, then the subsidy expiring soonest, then the lowest balance."""
    expires = parse_datetime(subsidy.get("expiration_datetime") or "") if subsidy.get("expiration_datetime") else None
    return (
        0 if policy.access_method == c.AccessMethods.ASSIGNED else 1,
        expires.timestamp() if expires else float("inf"),
        int(subsidy.get("current_balance") or 0),
    )


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
            answer = self._answer(customer_uuid, lms_user_id, query.validated_data["content_key"])
        except UpstreamAPIError as exc:
            return _upstream_unavailable(exc)
        return Response(answer)

    def _answer(self, customer_uuid, lms_user_id, content_keys):
        policies = _redeemable_policies(customer_uuid)
        subsidies = {}
        contact = None
        answer = []
        for content_key in dict.fromkeys(content_keys):
            redeemable, reasons, redemptions, price = [], {}, {}, None
            for policy in policies:
                decision = policy.can_redeem(lms_user_id, content_key)
                if decision.content_price is not None and price is None:
                    price = decision.content_price
                for tx in decision.existing_transactions:
                    redemptions[str(tx.get("uuid"))] = tx
                if decision.redeemable:
                    redeemable.append(policy)
                else:
                    reasons.setdefault(decision.reason, []).append(policy.uuid)
            chosen = None
            if redeemable:
                for policy in redeemable:
                    if policy.subsidy_uuid not in subsidies:
                        subsidies[policy.subsidy_uuid] = get_subsidy_client().retrieve_subsidy(policy.subsidy_uuid) or {}
                chosen = min(redeemable, key=lambda p: _sort_key(p, subsidies[p.subsidy_uuid]))
            if reasons and contact is None:
                contact = customer_contact(customer_uuid)
            answer.append({
                "content_key": content_key,
                "list_price": None if price is None else {"usd": price / 100, "usd_cents": price},
                "redemptions": list(redemptions.values()),
                "has_successful_redemption": any(
                    tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx)
                    for tx in redemptions.values()),
                "redeemable_subsidy_access_policy": (
                    _policy_summary(chosen, subsidies.get(chosen.subsidy_uuid)) if chosen else None),
                "can_redeem": chosen is not None,
                "reasons": [reason_entry(reason, uuids, contact) for reason, uuids in reasons.items()],
            })
        return answer


class CreditsAvailableView(RequestIdMixin, APIView):
    """The policies with credit left for a learner."""

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
            return Response(self._answer(customer_uuid, lms_user_id))
        except UpstreamAPIError as exc:
            return _upstream_unavailable(exc)

    def _answer(self, customer_uuid, lms_user_id):
        if get_lms_client().get_enterprise_user(customer_uuid, lms_user_id) is None:
            return []
        results = []
        for policy in _redeemable_policies(customer_uuid):
            subsidy = get_subsidy_client().retrieve_subsidy(policy.subsidy_uuid) or {}
            if not subsidy.get("is_active", False):
                continue
            remaining = int(subsidy.get("current_balance") or 0)
            if policy.spend_limit is not None:
                remaining = min(remaining, policy.spend_limit - policy.spend_so_far())
            assignments = []
            if policy.access_method == c.AccessMethods.ASSIGNED and policy.assignment_configuration_id:
                assignments = [
                    {"uuid": str(a.uuid), "content_key": a.content_key, "content_title": a.content_title,
                     "content_quantity": a.content_quantity, "state": a.state}
                    for a in LearnerContentAssignment.objects.filter(
                        assignment_configuration_id=policy.assignment_configuration_id, lms_user_id=lms_user_id)
                ]
            per_user_spend = per_user_enrollments = None
            if policy.per_learner_spend_limit is not None or policy.per_learner_enrollment_limit is not None:
                mine = policy.learner_transactions(lms_user_id)
                if policy.per_learner_spend_limit is not None:
                    spent = -sum(int(tx.get("quantity") or 0) for tx in mine)
                    per_user_spend = max(0, policy.per_learner_spend_limit - spent)
                if policy.per_learner_enrollment_limit is not None:
                    per_user_enrollments = max(0, policy.per_learner_enrollment_limit - len(mine))
            if remaining <= 0 or per_user_spend == 0 or per_user_enrollments == 0:
                continue
            if policy.access_method == c.AccessMethods.ASSIGNED and not any(
                    a["state"] == "allocated" for a in assignments):
                continue
            results.append({
                **_policy_summary(policy, subsidy),
                "remaining_balance": remaining,
                "remaining_balance_per_user": per_user_spend,
                "remaining_enrollments_per_user": per_user_enrollments,
                "learner_content_assignments": assignments,
            })
        return results
