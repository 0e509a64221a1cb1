"""
The spend guard: durable reservations against a policy's limits (decision record 0010). The arithmetic of the
limits (what counts, read-only) lives with the model, ``models/reservation.py``; writing and settling here.

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

from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce, Now

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment
from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS, lock_row, retry_transient_conflicts

from . import constants as c
from .models import (
    OPEN_STATES,
    ForcedPolicyRedemption,
    ReservationState,
    SpendReservation,
    SpendSnapshot,
    SubsidyAccessPolicy,
    is_reversed,
    learner_content_claim,
    limits_reason,
)

logger = logging.getLogger(__name__)

DB = INDEPENDENT_DB_ALIAS


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


def reserve(*, policy, snapshot: SpendSnapshot, lms_user_id, content_key, amount_cents, idempotency_key,
            requested_price_cents=None, late_enrollment=False, assignment=None, forced_redemption=None,
            attempt_uuid=None) -> ReserveOutcome:
    """
    Lock the policy's row, re-read it, check every limit, and write the reservation: one short transaction.

    Returns a refusal reason when the policy is no longer redeemable or a limit would be passed, or the conflicting
    open reservation when another run holds this learner and content on the subsidy.
    """
    claim = learner_content_claim(policy.enterprise_customer_uuid, lms_user_id, content_key)

    def attempt():
        with transaction.atomic(using=DB):
            current = lock_row(SubsidyAccessPolicy, policy.uuid, DB)
            committed = SpendReservation.objects.using(DB).filter(
                idempotency_key=idempotency_key, state=ReservationState.COMMITTED).first()
            if committed is not None:
                # A run that passed eligibility just before another run of the same redemption committed.
                return ReserveOutcome(committed=committed)
            if current is None or not current.is_redeemable_now:
                return ReserveOutcome(reason=c.REASON_POLICY_EXPIRED)
            reason, figures = limits_reason(current, snapshot, lms_user_id, amount_cents, assignment, DB)
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

    try:
        # Two runs inserting the same claim under two policies can deadlock on its unique index (MariaDB): the
        # database fails one, which runs again and then meets the other's claim.
        return retry_transient_conflicts(attempt)
    except IntegrityError:
        conflict = SpendReservation.objects.using(DB).filter(open_claim=claim).first()
        return ReserveOutcome(conflict=conflict, reason=None if conflict is not None else RETRY)


# ----- the create: sent, settled -----------------------------------------------------------------------------

def database_now(policy_uuid, using=DB) -> datetime:
    """The database's clock, read through ``using`` (one primary-key lookup)."""
    return SubsidyAccessPolicy(uuid=policy_uuid).database_now(using)


def read_spend(policy, lms_user_id, *, per_learner: bool, using=DB) -> SpendSnapshot:
    """
    The ledger's figures for ``policy`` (and the learner, when the policy has per-learner limits), with the
    database time read *before* the upstream calls. Runs outside every lock.
    """
    started = database_now(policy.uuid, using)
    spent = policy.ledger_spent()
    learner = policy.learner_transactions(lms_user_id) if per_learner else None
    return SpendSnapshot(read_started=started, policy_spent=spent, learner_transactions=learner)


# ----- the create: sent, settled -------------------------------------------------------------------------------

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
    def attempt():
        with transaction.atomic(using=DB):
            # The policy's row first, as the reservation transaction takes it: a reserve and a settlement of one
            # policy never interleave, so the reserve's "already committed under this key?" answer stays true.
            lock_row(SubsidyAccessPolicy, reservation.policy_id, DB)
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

    return retry_transient_conflicts(attempt)


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


def open_reservations_for(customer_uuid, lms_user_id, content_key):
    return list(SpendReservation.objects.using(DB).filter(
        open_claim=learner_content_claim(customer_uuid, lms_user_id, content_key)))


def committed_under_other_policies(policy, lms_user_id, content_key) -> list:
    """
    This learner's committed reservations of ``content_key`` under the customer's *other* policies on other subsidies
    (the learner's redemption under this subsidy is the ledger's can-redeem to see). Reads the
    (policy, learner, state) index, one policy at a time.
    """
    others = (SubsidyAccessPolicy.objects.using(DB)
              .filter(enterprise_customer_uuid=policy.enterprise_customer_uuid)
              .exclude(subsidy_uuid=policy.subsidy_uuid).values("uuid"))
    return list(SpendReservation.objects.using(DB).filter(  # one query: the policies are a subquery
        policy_id__in=others, lms_user_id=lms_user_id, state=ReservationState.COMMITTED,
        content_key=content_key, transaction_uuid__isnull=False))


def settle_from_transactions(reservations, transactions, *, owner_gone) -> list:
    """
    Settle each open reservation whose key appears among ``transactions`` (e.g. can_redeem's all_transactions).

    A committed transaction settles a reservation whoever owns it (a repeat of that key can only return it). A failed
    one settles it only once no try of that key can still arrive at the subsidy (``owner_gone(reservation)``): a
    late try of a failed key makes the subsidy drive that same row again, and it may commit.
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
