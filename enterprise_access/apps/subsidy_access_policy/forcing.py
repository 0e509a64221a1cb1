"""
Forcing a redemption: staff push one learner into one course run under a policy (decision record 0006).

``force_redemption`` is the only writer of a ``ForcedPolicyRedemption``'s outcome besides reconciliation. It runs
the one redemption workflow with a forced request (a late enrollment, and for assigned policies the assignment
allocated first, inside the workflow), so every rule of ``can_redeem`` holds except the enrollment deadline, and
every run leaves a ``RedemptionAttempt`` row.

A record redeems at most once:

1. a run claims the record in the database (``run_started_at`` set only where it was empty and the record has not
   redeemed): a second forcing while one runs is told so at once, and the record's inputs are frozen meanwhile;
2. the outcome is stored under a row lock and never overwrites a redemption;
3. underneath, the spend reservation allows one open redemption per learner and content on a subsidy, and the
   subsidy's idempotency key one transaction per key.

The claim and the outcome go through the independent connection, like the reservation, so they commit on their own
whatever transaction the caller is in. A claim left by a process that died is cleared by ``reconcile_redemptions``.
"""
import logging
import traceback as traceback_module

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS, lock_row

from . import constants as c
from .models import AssignedLearnerCreditAccessPolicy, AttemptOutcome, ForcedPolicyRedemption
from .redemption import RedemptionRequest, RedemptionResult, run_redemption

logger = logging.getLogger(__name__)

DB = INDEPENDENT_DB_ALIAS
CODE_FORCING_IN_PROGRESS = "forcing_in_progress"


def _claim(record_uuid) -> bool:
    """Take the record for one run; False when it has redeemed or another run holds it."""
    return bool(ForcedPolicyRedemption.objects.using(DB).filter(
        uuid=record_uuid, run_started_at__isnull=True, redeemed_at__isnull=True,
    ).update(run_started_at=Now()))


def _already_redeemed_result(record) -> RedemptionResult:
    return RedemptionResult(
        outcome=AttemptOutcome.REDEEMED,
        transaction={"uuid": str(record.transaction_uuid), "state": c.TRANSACTION_STATE_COMMITTED},
        already_redeemed=True,
    )


def describe_failure(result: RedemptionResult) -> str:
    """One sentence for staff: the reason's message, the upstream's error, or what went wrong."""
    if result.reason and not result.error_message:
        message = c.REASON_USER_MESSAGES.get(result.reason, "")
        message = message.replace("{contact_lower}", "contact the enterprise's administrator.")
        message = message.replace("{contact}", "").strip()
        return f"{result.reason}: {message}" if message else result.reason
    if result.error is not None:
        error = result.error
        where = " ".join(str(part) for part in (error.service, error.status, error.code) if part)
        text = f"{result.outcome} ({where}): {error.message}"
    elif result.reason:
        text = f"{result.reason}: {result.error_message}"
    else:
        text = f"{result.outcome}: {result.error_message}" if result.error_message else result.outcome
    if result.outcome == AttemptOutcome.UNCERTAIN:
        text += (" The subsidy service may have written the transaction; reconcile_redemptions settles it, and "
                 "forcing again is safe (the same idempotency key is sent).")
    return text


def _store(record_uuid, result: RedemptionResult, acting_user) -> None:
    """Write the outcome on the record and release its claim; a redemption already stored is never undone."""
    with transaction.atomic(using=DB):
        record = lock_row(ForcedPolicyRedemption, record_uuid, DB)
        record.run_started_at = None
        if getattr(acting_user, "pk", None):
            record.modified_by_id = acting_user.pk
        now = timezone.now()
        if result.succeeded:
            tx = result.transaction or {}
            # The reservation's settlement may have marked it redeemed already, with the same transaction.
            record.redeemed_at = record.redeemed_at or now
            record.transaction_uuid = tx.get("uuid") or record.transaction_uuid
            if tx.get("quantity") is not None and not isinstance(record.subsidy_access_policy,
                                                                 AssignedLearnerCreditAccessPolicy):
                record.content_price_cents = -int(tx["quantity"])  # what was charged: the catalog price
            record.errored_at = None
            record.error_reason = record.error_message = record.error_code = record.traceback = ""
            record.error_status = record.error_payload = None
        elif record.redeemed_at is None:
            error = result.error
            record.errored_at = now
            record.error_reason = (result.reason or "")[:64]
            record.error_message = describe_failure(result)[:5000]
            record.error_status = error.status if error is not None else None
            record.error_code = (result.error_code or result.outcome)[:64]
            payload = error.payload if error is not None else None
            if payload is not None and not isinstance(payload, (dict, list)):
                payload = {"raw": str(payload)[:2000]}
            record.error_payload = payload
            record.traceback = result.traceback or ""
        record.save(using=DB)


def force_redemption(*, forced_redemption: ForcedPolicyRedemption, acting_user, metadata=None,
                     fallback_reference_id=None) -> RedemptionResult:
    """
    Redeem ``forced_redemption`` through the redemption workflow, as ``acting_user``, and store the outcome on it.

    ``metadata`` carries the learner's details that exec-ed fulfillment needs (``geag_*``): they travel only in the
    redeem request, never onto the record or its history. Never raises for an outcome: a refusal, an upstream error
    or a bug comes back as the result and is written on the record. A record that has redeemed is answered with its
    transaction (``already_redeemed``). Refreshes ``forced_redemption`` from the database before returning.
    """
    record_uuid = forced_redemption.uuid
    if not _claim(record_uuid):
        forced_redemption.refresh_from_db()
        if forced_redemption.redeemed_at is not None:
            return _already_redeemed_result(forced_redemption)
        return RedemptionResult(outcome=AttemptOutcome.POLICY_BUSY, code=CODE_FORCING_IN_PROGRESS,
                                error_message=f"Another forcing of {record_uuid} is still running; refresh to see "
                                              "its result.")
    try:
        record = ForcedPolicyRedemption.objects.using(DB).select_related("subsidy_access_policy").get(uuid=record_uuid)
        result = run_redemption(RedemptionRequest.for_forced_redemption(
            record=record, acting_user=acting_user, metadata=metadata, fallback_reference_id=fallback_reference_id))
    except Exception as exc:  # pylint: disable=broad-except
        # run_redemption never raises; this guards building the request (e.g. a control key in metadata).
        logger.exception("Unexpected error forcing redemption %s", record_uuid)
        result = RedemptionResult(outcome=AttemptOutcome.UNEXPECTED_ERROR, code="unexpected_error",
                                  error_message=f"{type(exc).__name__}: {exc}",
                                  traceback=traceback_module.format_exc())
    _store(record_uuid, result, acting_user)
    forced_redemption.refresh_from_db()
    if forced_redemption.redeemed_at is not None and not result.succeeded:
        # Reconciliation or the reservation's settlement recorded the redemption: its transaction is the answer.
        result = _already_redeemed_result(forced_redemption)
    return result
