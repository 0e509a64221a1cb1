"""
SpendReservation: money a redemption has set aside against a policy's limits before asking the subsidy to spend it.

See docs/decisions/0010-durable-spend-reservations.rst. A reservation is written in one short database transaction
that locks the policy's row, and it counts against the policy's limits until the ledger is known to reflect it
(committed) or known never to (released). A reservation whose outcome the service could not learn (a timeout, a
dropped connection, a 5xx after the request was sent) stays counted until reconciliation finds out.
"""
import hashlib

from django.db import models


class ReservationState(models.TextChoices):
    RESERVED = "reserved", "Reserved: the create has not been sent"
    SENT = "sent", "Sent: the create was sent by a run that is still going"
    UNCERTAIN = "uncertain", "Uncertain: the run ended without learning what the ledger did; reconciliation will"
    COMMITTED = "committed", "Committed: the ledger holds the committed transaction"
    RELEASED = "released", "Released: no transaction was or will be charged"


# States whose amount counts against the limits whatever the ledger says.
OPEN_STATES = (ReservationState.RESERVED, ReservationState.SENT, ReservationState.UNCERTAIN)


def learner_content_claim(subsidy_uuid, lms_user_id, content_key) -> str:
    """The value that makes one open reservation per learner and content on a subsidy (a unique column)."""
    text = f"{str(subsidy_uuid).replace('-', '').lower()}|{int(lms_user_id)}|{content_key}"
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
