"""
The spend guard: durable reservations against a policy's limits (decision record 0010).

A redemption reads what the ledger says is spent, then, in ONE short database transaction that locks the policy's
row and re-reads it, checks the limits against

    the ledger's spend  +  every reservation the ledger may not reflect yet  +  (assigned) other allocations

and writes its own reservation. No network call happens inside that transaction. The reservation counts until the
ledger is known to hold the transaction (committed) or known never to (released); a create whose answer was lost
leaves it counted ("uncertain") until the ledger is read again, by the learner's next redemption or by
``reconcile_redemptions``.

"May not reflect yet" is decided on the database's own clock: the ledger reads are preceded by reading that clock
(``SpendSnapshot.read_started``), and a committed reservation keeps counting for every snapshot that started
before it was marked committed. A reservation marked committed earlier was committed on the ledger before the
reads were sent, so the ledger's figures include it.

Every write here goes through the independent connection (``enterprise_access.db_routers``): a reservation commits
on its own, whatever transaction the caller (an admin save) is in, and the policy's row lock is never held across
the caller's work.
"""
import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, Now

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment
from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS, lock_row

from . import constants as c
from .models import (
    OPEN_STATES,
    ForcedPolicyRedemption,
    ReservationState,
    SpendReservation,
    SubsidyAccessPolicy,
    is_reversed,
    learner_content_claim,
)

logger = logging.getLogger(__name__)

DB = INDEPENDENT_DB_ALIAS


@dataclass
class SpendSnapshot:
    """What the ledger said was spent, and when (database clock) the reading began."""

    read_started: datetime
    policy_spent: int
    learner_transactions: list | None = None

    @property
    def learner_spent(self) -> int:
        return -sum(int(tx.get("quantity") or 0) for tx in self.learner_transactions or [])


# ReserveOutcome.reason when a conflicting reservation settled before it could be read: simply try again.
RETRY = "retry"


@dataclass
class ReserveOutcome:
    """``reservation`` when money was set aside; otherwise ``reason`` (a refusal) or ``conflict`` (another run)."""

    reservation: SpendReservation | None = None
    reason: str | None = None
    conflict: SpendReservation | None = None
    # A reservation under the same key already committed: the ledger holds this very redemption.
    committed: SpendReservation | None = None
    figures: dict = field(default_factory=dict)


def database_now(policy_uuid, using=DB) -> datetime:
    """The database's clock, read through the reservation connection (one primary-key lookup)."""
    return (SubsidyAccessPolicy.objects.using(using).filter(uuid=policy_uuid).annotate(db_now=Now())
            .values_list("db_now", flat=True).first())


def read_spend(policy, lms_user_id, *, per_learner: bool, using=DB) -> SpendSnapshot:
    """
    The ledger's figures for ``policy`` (and the learner, when the policy has per-learner limits), with the
    database time read *before* the upstream calls. Runs outside every lock.
    """
    started = database_now(policy.uuid, using)
    spent = policy.ledger_spent()
    learner = policy.learner_transactions(lms_user_id) if per_learner else None
    return SpendSnapshot(read_started=started, policy_spent=spent, learner_transactions=learner)


def counted_reservations(policy_uuid, read_started, using=DB):
    """Reservations of the policy the ledger reading that began at ``read_started`` may not include."""
    return SpendReservation.objects.using(using).filter(policy_id=policy_uuid).filter(
        Q(state__in=OPEN_STATES) | Q(state=ReservationState.COMMITTED, settled_at__gte=read_started)
    )


def _other_allocations(policy, own_assignment, counted, using) -> int:
    """Cents set aside by other learners' allocated assignments whose redemption is not already counted."""
    if not policy.assignment_configuration_id:
        return 0
    allocated = LearnerContentAssignment.objects.using(using).filter(
        assignment_configuration_id=policy.assignment_configuration_id, state=AssignmentState.ALLOCATED,
    ).exclude(uuid__in=counted.exclude(assignment__isnull=True).values("assignment_id"))
    if own_assignment is not None:
        allocated = allocated.exclude(uuid=own_assignment.uuid)
    return -int(allocated.aggregate(total=Sum("content_quantity"))["total"] or 0)


def _limits_reason(policy, snapshot, lms_user_id, amount_cents, assignment, using=DB) -> tuple[str | None, dict]:
    """The first limit ``amount_cents`` more would pass, counting the ledger, open reservations and allocations."""
    counted = counted_reservations(policy.uuid, snapshot.read_started, using)
    figures = {"ledger_spent": snapshot.policy_spent, "amount": amount_cents}
    if policy.spend_limit is not None:
        figures["reserved"] = int(counted.aggregate(total=Sum("amount_cents"))["total"] or 0)
        figures["allocated"] = _other_allocations(policy, assignment, counted, using)
        total = snapshot.policy_spent + figures["reserved"] + figures["allocated"] + amount_cents
        if total > policy.spend_limit:
            return c.REASON_POLICY_SPEND_LIMIT_REACHED, figures
    learner_counted = counted.filter(lms_user_id=lms_user_id)
    if policy.per_learner_enrollment_limit is not None:
        reserved = learner_counted.aggregate(n=Count("pk"))["n"]
        if len(snapshot.learner_transactions or []) + reserved + 1 > policy.per_learner_enrollment_limit:
            return c.REASON_LEARNER_MAX_ENROLLMENTS_REACHED, figures
    if policy.per_learner_spend_limit is not None:
        # Like the upstream consumer: the raw sum of the learner's redemptions, reversals not netted.
        reserved = int(learner_counted.aggregate(total=Sum("amount_cents"))["total"] or 0)
        if snapshot.learner_spent + reserved + amount_cents > policy.per_learner_spend_limit:
            return c.REASON_LEARNER_MAX_SPEND_REACHED, figures
    return None, figures


def limits_reason(policy, decision, lms_user_id) -> str | None:
    """
    Read only: would ``decision`` (an eligible can_redeem result) pass the limits now? Same arithmetic as
    ``reserve``, without the lock and without writing anything (for the can-redeem endpoint).
    """
    # Reads only, through the ordinary connection: the rows it counts are committed by their own transactions.
    snapshot = read_spend(policy, lms_user_id, per_learner=policy.has_learner_limits, using=DEFAULT_DB_ALIAS)
    reason, _ = _limits_reason(policy, snapshot, lms_user_id, decision.content_price, decision.assignment,
                               DEFAULT_DB_ALIAS)
    return reason


def reserve(*, policy, snapshot: SpendSnapshot, lms_user_id, content_key, amount_cents, idempotency_key,
            requested_price_cents=None, late_enrollment=False, assignment=None, forced_redemption=None,
            attempt_uuid=None) -> ReserveOutcome:
    """
    Lock the policy's row, re-read it, check every limit, and write the reservation: one short transaction.

    Returns a refusal reason when the policy is no longer redeemable or a limit would be passed, or the conflicting
    open reservation when another run holds this learner and content on the subsidy.
    """
    claim = learner_content_claim(policy.subsidy_uuid, lms_user_id, content_key)
    try:
        with transaction.atomic(using=DB):
            current = lock_row(SubsidyAccessPolicy, policy.uuid, DB)
            committed = SpendReservation.objects.using(DB).filter(
                idempotency_key=idempotency_key, state=ReservationState.COMMITTED).first()
            if committed is not None:
                # A run that passed eligibility just before another run of the same redemption committed.
                return ReserveOutcome(committed=committed)
            if not current.is_redeemable_now:
                return ReserveOutcome(reason=c.REASON_POLICY_EXPIRED)
            reason, figures = _limits_reason(current, snapshot, lms_user_id, amount_cents, assignment)
            if reason:
                return ReserveOutcome(reason=reason, figures=figures)
            reservation = SpendReservation.objects.using(DB).create(
                idempotency_key=idempotency_key, policy_id=current.uuid, subsidy_uuid=current.subsidy_uuid,
                lms_user_id=lms_user_id, content_key=content_key, amount_cents=amount_cents,
                requested_price_cents=requested_price_cents, late_enrollment=late_enrollment, open_claim=claim,
                assignment=assignment, forced_redemption=forced_redemption, attempt_uuid=attempt_uuid,
                created=Now(),
            )
            return ReserveOutcome(reservation=reservation, figures=figures)
    except IntegrityError:
        conflict = SpendReservation.objects.using(DB).filter(open_claim=claim).first()
        return ReserveOutcome(conflict=conflict, reason=None if conflict is not None else RETRY)


# ----- the create: sent, settled -----------------------------------------------------------------------------

def mark_sent(reservation) -> bool:
    """
    Record that the create is about to be sent. False when the reservation is no longer open (reconciliation
    released it after its owner was presumed dead): the caller must not send.
    """
    updated = SpendReservation.objects.using(DB).filter(pk=reservation.pk, state__in=OPEN_STATES).update(
        state=ReservationState.SENT, sent_at=Coalesce("sent_at", Now()))
    if updated:
        reservation.state = ReservationState.SENT
    return bool(updated)


def settle(reservation, *, state, transaction_uuid=None, note="") -> SpendReservation:
    """
    Move an open reservation to ``state`` (committed, released or uncertain-and-still-open), in one transaction
    with what follows from it: the assignment is accepted, the forced record marked redeemed. Settling a
    reservation that already settled changes nothing (reconciliation and the run may both get here); the row
    returned says which (``settled_by_this_call``).
    """
    with transaction.atomic(using=DB):
        row = lock_row(SpendReservation, reservation.pk, DB)
        if row is None or row.state not in OPEN_STATES:
            row = row or reservation
            row.settled_by_this_call = False
            return row
        row.settled_by_this_call = state not in OPEN_STATES
        row.note = (note or row.note)[:2000]
        if transaction_uuid:
            row.transaction_uuid = transaction_uuid
        if state in OPEN_STATES:
            row.state = state
            row.save(update_fields=["state", "note", "transaction_uuid"])
            return row
        row.state = state
        row.open_claim = None
        row.settled_at = Now()
        row.save(update_fields=["state", "note", "transaction_uuid", "open_claim", "settled_at"])
        if state == ReservationState.COMMITTED:
            _after_commit(row)
    return row


def _after_commit(row):
    """The local records that follow from a committed reservation (inside ``settle``'s transaction)."""
    from enterprise_access.apps.content_assignments.services import mark_accepted  # noqa: below this app's models

    if row.assignment_id:
        assignment = lock_row(LearnerContentAssignment, row.assignment_id, DB)
        if assignment is not None and assignment.state != AssignmentState.ACCEPTED:
            mark_accepted(assignment, transaction_uuid=row.transaction_uuid, using=DB)
    if row.forced_redemption_id:
        ForcedPolicyRedemption.objects.using(DB).filter(
            uuid=row.forced_redemption_id, redeemed_at__isnull=True,
        ).update(redeemed_at=Now(), transaction_uuid=row.transaction_uuid, errored_at=None)


# ----- reading the ledger's answer for a key ---------------------------------------------------------------------

def find_on_ledger(reservation, transactions) -> dict | None:
    """The transaction carrying the reservation's idempotency key among ``transactions``, if any."""
    for tx in transactions or []:
        if tx.get("idempotency_key") == reservation.idempotency_key:
            return tx
    return None


def state_for_transaction(tx) -> str:
    """What a ledger transaction for the reservation's key means for it."""
    state = tx.get("state")
    if state == c.TRANSACTION_STATE_COMMITTED:
        # Committed stays committed for its key; a reversal later is a refund the ledger's figures net out.
        return ReservationState.COMMITTED
    if state == c.TRANSACTION_STATE_FAILED:
        return ReservationState.RELEASED
    return ReservationState.SENT  # created or pending: the ledger counts it, and so do we, until it settles


def open_reservations_for(subsidy_uuid, lms_user_id, content_key):
    return list(SpendReservation.objects.using(DB).filter(
        open_claim=learner_content_claim(subsidy_uuid, lms_user_id, content_key)))


def settle_from_transactions(reservations, transactions, *, owner_gone) -> list:
    """
    Settle each open reservation whose key appears among ``transactions`` (e.g. can_redeem's all_transactions).

    A committed transaction settles a reservation whoever owns it (a repeat of that key can only return it). A failed
    one settles it only when its owner is gone (``owner_gone(reservation)``): a live owner's retry of a failed key
    makes the subsidy drive that same row again.
    """
    settled = []
    for reservation in reservations:
        tx = find_on_ledger(reservation, transactions)
        if tx is None:
            continue
        state = state_for_transaction(tx)
        if state == ReservationState.RELEASED and not owner_gone(reservation):
            continue
        note = f"The ledger shows transaction {tx.get('uuid')} in state {tx.get('state')}."
        settled.append(settle(reservation, state=state, transaction_uuid=tx.get("uuid"), note=note))
    return settled


def is_spent(tx) -> bool:
    return tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx)
