"""
SpendReservation: money a redemption has set aside against a policy's limits before asking the subsidy to spend it.

See docs/decisions/0010-durable-spend-reservations.rst. A reservation is written in one short database transaction
that locks the policy's row, and it counts against the policy's limits until the ledger is known to reflect it
(committed) or known never to (released). A reservation whose outcome the service could not learn (a timeout, a
dropped connection, a 5xx after the request was sent) stays counted until reconciliation finds out.
"""
import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import Count, Q, Sum

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment

from .. import constants as c


class ReservationState(models.TextChoices):
    RESERVED = "reserved", "Reserved: the create has not been sent"
    SENT = "sent", "Sent: the create was sent by a run that is still going"
    UNCERTAIN = "uncertain", "Uncertain: the run ended without learning what the ledger did; reconciliation will"
    COMMITTED = "committed", "Committed: the ledger holds the committed transaction"
    RELEASED = "released", "Released: no transaction was or will be charged"


# States whose amount counts against the limits whatever the ledger says.
OPEN_STATES = (ReservationState.RESERVED, ReservationState.SENT, ReservationState.UNCERTAIN)


def learner_content_claim(customer_uuid, lms_user_id, content_key) -> str:
    """
    The value that makes one open reservation per learner and content across an enterprise customer's policies (a
    unique column): every policy of one subsidy is that subsidy's customer's, so this also covers one subsidy.
    """
    text = f"{str(customer_uuid).replace('-', '').lower()}|{int(lms_user_id)}|{content_key}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SpendReservation(models.Model):
    """
    One redemption's claim on a policy's funds, named by the subsidy idempotency key of its create. At most one
    reservation is open per learner and content on a subsidy (``open_claim``), so at most one per key.

    .. no_pii: lms_user_id is an opaque id; no learner details (exec-ed metadata included) are stored.
    """

    idempotency_key = models.CharField(
        max_length=255, db_index=True,
        help_text="The idempotency key of the subsidy create; the ledger holds at most one transaction for it. A "
                  "redemption tried again after a release reserves again under the same key (a new row).",
    )
    # No database constraint: the reservation transaction locks the policy's row, and a constraint check would
    # also make every settlement (which never changes this column) wait on that row on MariaDB, a lock-order cycle.
    policy = models.ForeignKey(
        "subsidy_access_policy.SubsidyAccessPolicy", on_delete=models.PROTECT, related_name="reservations",
        db_constraint=False, help_text="The policy whose limits this money counts against.",
    )
    subsidy_uuid = models.UUIDField(db_index=True, help_text="The subsidy (ledger) that will be charged.")
    lms_user_id = models.IntegerField(help_text="LMS user id of the learner redeeming.")
    content_key = models.CharField(max_length=255, help_text="The content key sent to the subsidy.")
    amount_cents = models.BigIntegerField(
        help_text="What the subsidy will charge, in cents: the requested price when one is sent, else the catalog's.",
    )
    requested_price_cents = models.BigIntegerField(
        null=True, blank=True, help_text="The requested_price_cents sent with the create (assigned policies).",
    )
    late_enrollment = models.BooleanField(
        default=False, help_text="Whether the create asks for a late enrollment (allow_late_enrollment).",
    )
    state = models.CharField(max_length=16, choices=ReservationState.choices, default=ReservationState.RESERVED,
                             help_text="Where the reservation is; reserved, sent and uncertain count against the "
                                       "limits.")
    open_claim = models.CharField(
        max_length=64, null=True, blank=True, unique=True,
        help_text="Set while open: a hash of (subsidy, learner, content), so one such redemption runs at a time "
                  "across every policy of the subsidy. Cleared when the reservation settles.",
    )
    assignment = models.ForeignKey(
        "content_assignments.LearnerContentAssignment", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text="The assignment redeemed, for assigned policies.",
    )
    forced_redemption = models.ForeignKey(
        "subsidy_access_policy.ForcedPolicyRedemption", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="reservations", help_text="The forced redemption that made it, if staff forced it.",
    )
    attempt_uuid = models.UUIDField(
        null=True, blank=True, db_index=True,
        help_text="The RedemptionAttempt of the run that made it, which reconciliation finishes.",
    )
    transaction_uuid = models.UUIDField(null=True, blank=True, help_text="The ledger transaction, once seen.")
    created = models.DateTimeField(help_text="When the reservation was written (database clock).")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the create was first sent.")
    settled_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="When it became committed or released (database clock); a committed reservation keeps counting "
                  "for spend reads that started before this moment.",
    )
    note = models.TextField(blank=True, default="", help_text="How it settled, or what is still unknown.")

    class Meta:
        indexes = [
            models.Index(fields=["policy", "state", "settled_at"], name="reservation_policy_state"),
            models.Index(fields=["policy", "lms_user_id", "state"], name="reservation_policy_learner"),
            models.Index(fields=["state", "created"], name="reservation_state_created"),
        ]

    def __str__(self):
        return f"Reservation {self.idempotency_key}: {self.amount_cents} cents, {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


# ----- the arithmetic of the limits (read only; the spend guard writes in reservations.py) -----------------------

def transactions_spent(transactions) -> int:
    """
    Cents the ledger ``transactions`` (redemptions: negative quantities) spent, as the upstream consumer counts a
    learner's spend: the raw sum, reversals not netted.
    """
    return -sum(int(tx.get("quantity") or 0) for tx in transactions or [])


@dataclass
class SpendSnapshot:
    """What the ledger said was spent, and when (database clock) the reading began."""

    read_started: datetime
    policy_spent: int
    learner_transactions: list | None = None

    @property
    def learner_spent(self) -> int:
        return transactions_spent(self.learner_transactions)


def counted_reservations(policy_uuid, read_started, using):
    """Reservations of the policy the ledger reading that began at ``read_started`` may not include."""
    return SpendReservation.objects.using(using).filter(policy_id=policy_uuid).filter(
        Q(state__in=OPEN_STATES) | Q(state=ReservationState.COMMITTED, settled_at__gte=read_started)
    )


def other_allocations(policy, own_assignment, counted, using) -> int:
    """Cents set aside by other learners' allocated assignments whose redemption is not already counted."""
    if not policy.assignment_configuration_id:
        return 0
    allocated = LearnerContentAssignment.objects.using(using).filter(
        assignment_configuration_id=policy.assignment_configuration_id, state=AssignmentState.ALLOCATED,
    ).exclude(uuid__in=counted.exclude(assignment__isnull=True).values("assignment_id"))
    if own_assignment is not None:
        allocated = allocated.exclude(uuid=own_assignment.uuid)
    return -int(allocated.aggregate(total=Sum("content_quantity"))["total"] or 0)


def limits_reason(policy, snapshot, lms_user_id, amount_cents, assignment, using) -> tuple[str | None, dict]:
    """
    The first limit ``amount_cents`` more would pass, counting the ledger's spend, every reservation it may not
    reflect yet and (assigned policies) other learners' allocations; with the figures it added up.

    A limit passed only because of redemptions still open (their outcome not yet known) is ``REASON_SPEND_PENDING``:
    retryable, not "used up".
    """
    counted = counted_reservations(policy.uuid, snapshot.read_started, using)
    figures = {"ledger_spent": snapshot.policy_spent, "amount": amount_cents}

    def totals(queryset, field="amount_cents"):
        """(every counted reservation, the open ones alone), summed (or counted, for field=None)."""
        aggregate = (Sum(field) if field else Count("pk"))
        rows = queryset.aggregate(total=aggregate, open=aggregate.__class__(
            field or "pk", filter=Q(state__in=OPEN_STATES)))
        return int(rows["total"] or 0), int(rows["open"] or 0)

    if policy.spend_limit is not None:
        figures["reserved"], figures["reserved_open"] = totals(counted)
        figures["allocated"] = other_allocations(policy, assignment, counted, using)
        total = snapshot.policy_spent + figures["reserved"] + figures["allocated"] + amount_cents
        if total > policy.spend_limit:
            pending = total - figures["reserved_open"] <= policy.spend_limit
            return (c.REASON_SPEND_PENDING if pending else c.REASON_POLICY_SPEND_LIMIT_REACHED), figures
    learner_counted = counted.filter(lms_user_id=lms_user_id)
    if policy.per_learner_enrollment_limit is not None:
        reserved, reserved_open = totals(learner_counted, field=None)
        used = len(snapshot.learner_transactions or []) + reserved + 1
        if used > policy.per_learner_enrollment_limit:
            pending = used - reserved_open <= policy.per_learner_enrollment_limit
            return (c.REASON_SPEND_PENDING if pending else c.REASON_LEARNER_MAX_ENROLLMENTS_REACHED), figures
    if policy.per_learner_spend_limit is not None:
        # Like the upstream consumer: the raw sum of the learner's redemptions, reversals not netted.
        reserved, reserved_open = totals(learner_counted)
        used = snapshot.learner_spent + reserved + amount_cents
        if used > policy.per_learner_spend_limit:
            pending = used - reserved_open <= policy.per_learner_spend_limit
            return (c.REASON_SPEND_PENDING if pending else c.REASON_LEARNER_MAX_SPEND_REACHED), figures
    return None, figures
