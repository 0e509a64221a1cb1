"""
Reconciliation: settle, from the subsidy ledger, what a redemption run left open (decision record 0011).

A run can end without knowing what the ledger did (a timeout, a dropped connection, a 5xx after the request was
sent), or not end at all (its process was killed). It then leaves a reservation open, counted against the limits,
an attempt row "uncertain" or "in progress", maybe an assignment allocated and a forced record claimed.
``reconcile_redemptions`` (cron, every minute) and a learner's next redemption of the same content come here.

The ledger is asked by idempotency key (the learner's transactions of that content under the policy, every state):

* a committed transaction with the key: the reservation is committed, the assignment accepted, the forced record
  redeemed, the attempt finished as redeemed naming the transaction;
* a failed transaction with the key, once no run will send the key again (its run ended uncertain, or it is older
  than ``RECONCILE_TAKEOVER_SECONDS``): released, nothing was charged;
* no transaction with the key, once it is older than ``RECONCILE_TAKEOVER_SECONDS`` (its run has stopped sending
  and the subsidy service has finished anything it was sent): released, and the attempt says none exists;
* a transaction still created or pending: left open, counted, for the next pass.

Reconciliation never sends a create: it only reads the ledger. Every write is a compare-and-set on the open state,
so passes running at once, and a run finishing at the same moment, settle each thing once.
"""
import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from enterprise_access.apps.api_client import get_subsidy_client
from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS

from . import constants as c
from . import reservations
from .models import (
    OPEN_STATES,
    AttemptOutcome,
    ForcedPolicyRedemption,
    RedemptionAttempt,
    ReservationState,
    SpendReservation,
)

logger = logging.getLogger(__name__)

DB = INDEPENDENT_DB_ALIAS
ALL_TRANSACTION_STATES = ("created", "pending", "committed", "failed")
CODE_RUN_INTERRUPTED = "run_interrupted"


def _aged(reservation, now, takeover_seconds) -> bool:
    return (now - reservation.created).total_seconds() >= takeover_seconds


def _ledger_transactions(reservation):
    return get_subsidy_client().list_transactions(
        reservation.subsidy_uuid, lms_user_id=reservation.lms_user_id, content_key=reservation.content_key,
        subsidy_access_policy_uuid=reservation.policy_id, states=ALL_TRANSACTION_STATES, include_aggregates=False,
    )["results"]


def reconcile_reservation(reservation, *, takeover_seconds=None, now=None) -> str:
    """
    Settle one open reservation from the ledger when it safely can; returns ``"committed"``, ``"released"`` or
    ``"open"``. Raises ``UpstreamAPIError`` when the ledger cannot be read (nothing changes then).
    """
    takeover_seconds = settings.RECONCILE_TAKEOVER_SECONDS if takeover_seconds is None else takeover_seconds
    reservation = SpendReservation.objects.using(DB).filter(pk=reservation.pk).first()
    if reservation is None or reservation.state not in OPEN_STATES:
        return "already_settled"  # settled since the caller listed it: by its run, or by another pass
    now = now or reservations.database_now(reservation.policy_id)
    aged = _aged(reservation, now, takeover_seconds)
    if reservation.state == ReservationState.RESERVED:
        if not aged:
            return "open"
        # Never sent, and its run is past the point where it could send: nothing can be charged for it.
        settled = reservations.settle(reservation, state=ReservationState.RELEASED,
                                      note="Reconciliation: the create was never sent.")
        return _finish_related(settled, None, run_ended=True)

    tx = reservations.find_on_ledger(reservation, _ledger_transactions(reservation))
    if tx is not None:
        state = reservations.state_for_transaction(tx)
        # A failed transaction is final only once no try of its key can still arrive at the subsidy (a late try
        # drives the failed row again, and may commit): not before the takeover delay, even if its run ended.
        if state == ReservationState.SENT or (state == ReservationState.RELEASED and not aged):
            return "open"
        run_ended = aged or reservation.state == ReservationState.UNCERTAIN
        settled = reservations.settle(
            reservation, state=state, transaction_uuid=tx.get("uuid"),
            note=f"Reconciliation: the ledger shows transaction {tx.get('uuid')} {tx.get('state')}.")
        return _finish_related(settled, tx, run_ended=run_ended)
    if not aged:
        return "open"
    settled = reservations.settle(reservation, state=ReservationState.RELEASED,
                                  note="Reconciliation: no transaction carries this key on the ledger.")
    return _finish_related(settled, None, run_ended=True)


def _finish_related(reservation, tx, *, run_ended) -> str:
    """
    The attempt and the forced record that follow a reservation settled by reconciliation. While the run that made
    it may still be going (``run_ended`` false), they are its to finish: it learns the settlement when it next
    looks, and a later pass finishes them if it never does.
    """
    if reservation.state in OPEN_STATES:
        return "open"
    if not getattr(reservation, "settled_by_this_call", True):
        return "already_settled"  # another pass, or its run, settled it a moment ago
    if not run_ended:
        return reservation.state
    if reservation.attempt_uuid:
        finish_attempt(reservation.attempt_uuid, reservation, tx)
    if reservation.forced_redemption_id:
        _finish_forced_record(reservation.forced_redemption_id, reservation)
    return reservation.state


def finish_attempt(attempt_uuid, reservation, tx) -> bool:
    """Finish an attempt left in progress or uncertain, so it says what the ledger showed. True if it changed."""
    fields = {"reconciled_at": timezone.now(), "finished_at": Coalesce("finished_at", Now())}
    if reservation is not None and reservation.state == ReservationState.COMMITTED:
        tx = tx or {}
        fields.update(outcome=AttemptOutcome.REDEEMED, transaction_uuid=reservation.transaction_uuid,
                      transaction_state=tx.get("state") or c.TRANSACTION_STATE_COMMITTED,
                      fulfillment_identifier=tx.get("fulfillment_identifier") or "",
                      content_price=reservation.amount_cents, can_redeem=True,
                      # The run's lost answer is no error any more: the ledger committed the redemption.
                      error_code="", error_status=None, error_payload=None,
                      error_message=f"Reconciliation: the ledger shows transaction {reservation.transaction_uuid} "
                                    "committed (the run had not learned the subsidy's answer).")
    elif tx is not None:
        fields.update(outcome=AttemptOutcome.SUBSIDY_REFUSED, transaction_uuid=tx.get("uuid"),
                      transaction_state=tx.get("state") or "", error_code="transaction_not_committed",
                      error_message=f"Reconciliation: the ledger shows transaction {tx.get('uuid')} "
                                    f"{tx.get('state')}; nothing was charged.")
    elif reservation is not None:
        fields.update(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, error_code=CODE_RUN_INTERRUPTED,
                      error_message="Reconciliation: no transaction exists for this run's idempotency key; "
                                    "nothing was charged.")
    else:
        fields.update(outcome=AttemptOutcome.UNEXPECTED_ERROR, error_code=CODE_RUN_INTERRUPTED,
                      error_message="Reconciliation: the run stopped before it reserved anything (its process "
                                    "ended); nothing was charged.")
    return bool(RedemptionAttempt.objects.filter(
        uuid=attempt_uuid, outcome__in=(AttemptOutcome.IN_PROGRESS, AttemptOutcome.UNCERTAIN),
    ).update(**fields))


def _finish_forced_record(record_uuid, reservation):
    """Redeemed records were marked by the settlement; a released one is marked errored. The claim is cleared."""
    changes = {"run_started_at": None}
    qs = ForcedPolicyRedemption.objects.using(DB).filter(uuid=record_uuid)
    if reservation.state == ReservationState.RELEASED:
        qs.filter(redeemed_at__isnull=True).update(
            errored_at=Now(), error_code="reconciled_released",
            error_message=f"Reconciliation: {reservation.note} Nothing was charged; the record can be forced again.",
            **changes)
    qs.filter(run_started_at__isnull=False).update(**changes)


def reconcile(*, takeover_seconds=None) -> Counter:
    """One pass over everything left open. Returns counts of what it did (see the command's summary)."""
    takeover_seconds = settings.RECONCILE_TAKEOVER_SECONDS if takeover_seconds is None else takeover_seconds
    summary = Counter()
    now = timezone.now()
    for reservation in SpendReservation.objects.using(DB).filter(state__in=OPEN_STATES).order_by("created"):
        summary["reservations_examined"] += 1
        try:
            summary[f"reservations_{reconcile_reservation(reservation, takeover_seconds=takeover_seconds)}"] += 1
        except Exception:  # pylint: disable=broad-except
            summary["reservations_errors"] += 1
            logger.exception("Could not reconcile reservation %s", reservation.idempotency_key)

    cutoff = now - timedelta(seconds=takeover_seconds)
    stale = RedemptionAttempt.objects.filter(
        Q(outcome=AttemptOutcome.IN_PROGRESS, started_at__lte=cutoff) | Q(outcome=AttemptOutcome.UNCERTAIN))
    for attempt in stale.only("uuid", "outcome", "idempotency_key").iterator():
        reservation = SpendReservation.objects.using(DB).filter(attempt_uuid=attempt.uuid).first()
        if reservation is None and attempt.idempotency_key:
            # A run that adopted an earlier run's reservation (the same key) is found through the key.
            reservation = (SpendReservation.objects.using(DB).filter(idempotency_key=attempt.idempotency_key)
                           .order_by("-created").first())
        if reservation is not None and reservation.state in OPEN_STATES:
            continue  # still open: the reservation pass decides, and finishes the attempt then
        if attempt.outcome == AttemptOutcome.UNCERTAIN and reservation is None:
            continue  # an uncertain run always had a reservation; nothing to say without one
        if finish_attempt(attempt.uuid, reservation, _transaction_of(reservation)):
            summary["attempts_finished"] += 1

    claimed = ForcedPolicyRedemption.objects.using(DB).filter(run_started_at__lte=cutoff)
    for record in claimed:
        if SpendReservation.objects.using(DB).filter(forced_redemption_id=record.uuid, state__in=OPEN_STATES).exists():
            continue
        # Compare-and-set on the claim being old, not on its exact value: SQLite keeps the database clock's text,
        # which does not compare equal to the datetime Django reads back from it.
        still_claimed = {"uuid": record.uuid, "run_started_at__lte": cutoff}
        changed = ForcedPolicyRedemption.objects.using(DB).filter(**still_claimed, redeemed_at__isnull=True).update(run_started_at=None, errored_at=Now(), error_code=CODE_RUN_INTERRUPTED,
                 error_message="Reconciliation: the forcing stopped before finishing (its process ended); see "
                               "its attempts. The record can be forced again.")
        changed += ForcedPolicyRedemption.objects.using(DB).filter(**still_claimed).update(run_started_at=None)
        summary["forced_records_released"] += bool(changed)
    summary["reservations_still_open"] = SpendReservation.objects.using(DB).filter(state__in=OPEN_STATES).count()
    return summary


def _transaction_of(reservation):
    if reservation is None or not reservation.transaction_uuid:
        return None
    return {"uuid": str(reservation.transaction_uuid), "state": (
        c.TRANSACTION_STATE_COMMITTED if reservation.state == ReservationState.COMMITTED else c.TRANSACTION_STATE_FAILED)}
