"""
Reads of the policy app, as plain data: the views validate, call one of these, and serialize.

* ``attempt_summary`` is the one aggregation of redemption attempts: the REST summary
  (``/api/v1/redemption-attempts/summary/``) and the admin's charts both call it, so the numbers on the chart are
  the numbers the API answers for the same filters.
* ``can_redeem_by_content`` and ``credits_available`` answer the learner's two read-only questions. Each decides
  every policy it can and marks the ones it could not (an upstream service failed for that policy: the policy is
  *undecided*, never "not redeemable"); only when nothing at all could be decided do they raise the
  ``UpstreamAPIError`` (decision 0014).
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Count, F, QuerySet
from django.db.models.functions import TruncDate
from django.utils.dateparse import parse_datetime

from enterprise_access.apps.api_client import UpstreamAPIError, get_lms_client, get_subsidy_client
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment

from . import constants as c
from .models import RedemptionAttempt, SubsidyAccessPolicy, is_reversed, transactions_spent
from .tenancy import subsidy_belongs_to_policy_customer

SUMMARY_GROUP_BY = ("day", "policy", "reason")


def attempt_summary(
    *,
    queryset: QuerySet | None = None,
    enterprise_customer_uuid: UUID | None = None,
    policy_uuid: UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    group_by: str = "day",
    with_error_codes: bool = False,
) -> dict:
    """
    Counts of attempts by outcome and by reason (and by error code), in total and per group (day, policy, reason).

    ``queryset`` is the attempts the caller may see (the API's role scoping, the admin's list filters); all of
    them if omitted. The other filters are already parsed; ``created_after`` is inclusive, ``created_before``
    exclusive. Returns ``{"group_by", "total", "by_outcome", "by_reason", "groups": [{"group", "total",
    "by_outcome", "by_reason"}, ...]}``, groups sorted by their key (days as YYYY-MM-DD).

    ``with_error_codes`` adds ``by_error_code`` to the totals and to each group. It costs a third query that the
    covering indexes do not answer alone (``error_code`` is not in them), so the API leaves it out.
    """
    if group_by not in SUMMARY_GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(SUMMARY_GROUP_BY)}, not {group_by!r}")
    qs = (RedemptionAttempt.objects.all() if queryset is None else queryset).order_by()
    if enterprise_customer_uuid is not None:
        qs = qs.filter(enterprise_customer_uuid=enterprise_customer_uuid)
    if policy_uuid is not None:
        qs = qs.filter(policy_uuid=policy_uuid)
    if created_after is not None:
        qs = qs.filter(started_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(started_at__lt=created_before)

    key = {"day": TruncDate("started_at"), "policy": F("policy_uuid"), "reason": F("reason")}[group_by]
    qs = qs.annotate(group_key=key)
    counted = ("by_outcome", "by_reason", "by_error_code") if with_error_codes else ("by_outcome", "by_reason")
    groups = defaultdict(lambda: {"total": 0, **{counts: {} for counts in counted}})
    for row in qs.values("group_key", "outcome").annotate(n=Count("uuid")):
        group = groups[str(row["group_key"])]
        group["by_outcome"][row["outcome"]] = row["n"]
        group["total"] += row["n"]
    for row in qs.exclude(reason="").values("group_key", "reason").annotate(n=Count("uuid")):
        groups[str(row["group_key"])]["by_reason"][row["reason"]] = row["n"]
    if with_error_codes:
        for row in qs.exclude(error_code="").values("group_key", "error_code").annotate(n=Count("uuid")):
            groups[str(row["group_key"])]["by_error_code"][row["error_code"]] = row["n"]

    totals = {counts: defaultdict(int) for counts in counted}
    for group in groups.values():
        for counts, total in totals.items():
            for name, n in group[counts].items():
                total[name] += n
    return {
        "group_by": group_by,
        "total": sum(group["total"] for group in groups.values()),
        **{counts: dict(total) for counts, total in totals.items()},
        "groups": [{"group": name, **values} for name, values in sorted(groups.items())],
    }


# ----- the learner's reads: can-redeem and credits available ------------------------------------------------------

def redeemable_policies(customer_uuid) -> list[SubsidyAccessPolicy]:
    """The customer's policies that may redeem now (active, not retired)."""
    return list(SubsidyAccessPolicy.objects.filter(enterprise_customer_uuid=customer_uuid, active=True, retired=False))


def _preference(policy, subsidy: dict):
    """Which redeemable policy pays: assigned first, then the subsidy expiring soonest, then the lowest balance."""
    expires = parse_datetime(subsidy["expiration_datetime"]) if subsidy.get("expiration_datetime") else None
    return (
        0 if policy.access_method == c.AccessMethods.ASSIGNED else 1,
        expires.timestamp() if expires else float("inf"),
        int(subsidy.get("current_balance") or 0),
    )


@dataclass
class ContentAnswer:
    """What can-redeem decided for one content key."""

    content_key: str
    content_price: int | None = None
    redemptions: dict = field(default_factory=dict)  # transaction uuid -> the ledger's transaction
    chosen: SubsidyAccessPolicy | None = None
    chosen_subsidy: dict = field(default_factory=dict)  # the subsidy record of ``chosen`` ({} if it could not be read)
    refused: dict = field(default_factory=dict)  # reason code -> [policy uuid, ...]
    undecided: dict = field(default_factory=dict)  # policy uuid -> the service that failed

    @property
    def has_successful_redemption(self) -> bool:
        return any(tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx)
                   for tx in self.redemptions.values())


def can_redeem_by_content(*, customer_uuid, lms_user_id: int, content_keys) -> list[ContentAnswer]:
    """
    For each content key (duplicates once): which of the customer's policies would pay for ``lms_user_id``, and
    why each other one would not, or that it could not be asked (``undecided``).

    A policy whose checks fail upstream is undecided for that key; the others still answer. The subsidy record
    read to rank redeemable policies is a preference only: if it cannot be read the policy still pays, ranked
    last among equals. Raises the first ``UpstreamAPIError`` only if not one policy could be decided for any key.
    """
    policies = redeemable_policies(customer_uuid)
    subsidies: dict = {}
    answers, first_error, decided = [], None, False
    for content_key in dict.fromkeys(content_keys):
        answer = ContentAnswer(content_key)
        redeemable = []
        for policy in policies:
            try:
                decision = policy.can_redeem(lms_user_id, content_key)
            except UpstreamAPIError as exc:
                first_error = first_error or exc
                answer.undecided[str(policy.uuid)] = exc.service
                continue
            decided = True
            if decision.content_price is not None and answer.content_price is None:
                answer.content_price = decision.content_price
            for tx in decision.existing_transactions:
                answer.redemptions[str(tx.get("uuid"))] = tx
            if decision.redeemable:
                redeemable.append(policy)
            else:
                answer.refused.setdefault(decision.reason, []).append(policy.uuid)
        if redeemable and answer.has_successful_redemption:
            # The learner already holds this content (under any of the customer's policies): no policy pays again.
            answer.refused.setdefault(c.REASON_LEARNER_ALREADY_REDEEMED, []).extend(p.uuid for p in redeemable)
            redeemable = []
        for policy in redeemable:
            if policy.subsidy_uuid not in subsidies:
                try:
                    subsidies[policy.subsidy_uuid] = get_subsidy_client().retrieve_subsidy(policy.subsidy_uuid) or {}
                except UpstreamAPIError:
                    subsidies[policy.subsidy_uuid] = {}
        if redeemable:
            answer.chosen = min(redeemable, key=lambda p: _preference(p, subsidies[p.subsidy_uuid]))
            answer.chosen_subsidy = subsidies[answer.chosen.subsidy_uuid]
        answers.append(answer)
    if first_error is not None and not decided:
        raise first_error
    return answers


def _assignments(policy, lms_user_id) -> list[dict]:
    if policy.access_method != c.AccessMethods.ASSIGNED or not policy.assignment_configuration_id:
        return []
    return [
        {"uuid": str(a.uuid), "content_key": a.content_key, "content_title": a.content_title,
         "content_quantity": a.content_quantity, "state": a.state}
        for a in LearnerContentAssignment.objects.filter(
            assignment_configuration_id=policy.assignment_configuration_id, lms_user_id=lms_user_id)
    ]


def policy_credit(policy, lms_user_id: int) -> dict | None:
    """
    What ``lms_user_id`` has left under ``policy``: ``{"subsidy", "remaining_balance", "remaining_balance_per_user",
    "remaining_enrollments_per_user", "learner_content_assignments"}``, or None when nothing is left to spend (an
    inactive subsidy, a spent limit, or an assigned policy with nothing allocated to them). Raises
    ``UpstreamAPIError`` when the subsidy service cannot tell.

    The policy's remaining balance is the subsidy's balance, capped by what its spend limit leaves
    (``spend_so_far``: the ledger's spend, and allocations for assigned policies). The per-learner figures count
    the learner's redemptions as the limits do (``transactions_spent``).
    """
    subsidy = get_subsidy_client().retrieve_subsidy(policy.subsidy_uuid) or {}
    if not subsidy.get("is_active", False):
        return None
    remaining = int(subsidy.get("current_balance") or 0)
    if policy.spend_limit is not None:
        remaining = min(remaining, policy.spend_limit - policy.spend_so_far())
    per_user_spend = per_user_enrollments = None
    if policy.has_learner_limits:
        mine = policy.learner_transactions(lms_user_id)
        if policy.per_learner_spend_limit is not None:
            per_user_spend = max(0, policy.per_learner_spend_limit - transactions_spent(mine))
        if policy.per_learner_enrollment_limit is not None:
            per_user_enrollments = max(0, policy.per_learner_enrollment_limit - len(mine))
    if remaining <= 0 or per_user_spend == 0 or per_user_enrollments == 0:
        return None
    assignments = _assignments(policy, lms_user_id)
    if policy.access_method == c.AccessMethods.ASSIGNED and not any(
            a["state"] == AssignmentState.ALLOCATED for a in assignments):
        return None
    return {"subsidy": subsidy, "remaining_balance": remaining, "remaining_balance_per_user": per_user_spend,
            "remaining_enrollments_per_user": per_user_enrollments, "learner_content_assignments": assignments}


@dataclass
class PolicyCredit:
    """One policy of ``credits_available``: its credit, or (``undecided``) the service that could not be asked."""

    policy: SubsidyAccessPolicy
    credit: dict | None = None
    undecided_service: str | None = None

    @property
    def undecided(self) -> bool:
        return self.undecided_service is not None


def credits_available(*, customer_uuid, lms_user_id: int) -> list[PolicyCredit]:
    """
    The customer's policies with credit left for ``lms_user_id``, and those that could not be asked (undecided).

    A learner the LMS does not link to the customer has none. Raises ``UpstreamAPIError`` when nothing could be
    decided: the LMS could not say whether the learner belongs, or every policy's subsidy failed.
    """
    if get_lms_client().get_enterprise_user(customer_uuid, lms_user_id) is None:
        return []
    results, first_error, decided = [], None, False
    for policy in redeemable_policies(customer_uuid):
        try:
            credit = policy_credit(policy, lms_user_id)
            if credit is not None and not subsidy_belongs_to_policy_customer(policy):
                # A policy on another customer's subsidy spends nothing (refused at redeem): nor does it show that
                # customer's balance here.
                credit = None
        except UpstreamAPIError as exc:
            first_error = first_error or exc
            results.append(PolicyCredit(policy, undecided_service=exc.service))
            continue
        decided = True
        if credit is not None:
            results.append(PolicyCredit(policy, credit=credit))
    if first_error is not None and not decided:
        raise first_error
    return results
