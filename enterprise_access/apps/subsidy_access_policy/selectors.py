"""
Reads of the policy app that more than one caller needs, as plain data.

``attempt_summary`` is the one aggregation of redemption attempts: the REST summary
(``/api/v1/redemption-attempts/summary/``) and the admin's charts both call it, so the numbers on the chart are the
numbers the API answers for the same filters.
"""
from collections import defaultdict
from datetime import datetime
from uuid import UUID

from django.db.models import Count, F, QuerySet
from django.db.models.functions import TruncDate

from .models import RedemptionAttempt

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
