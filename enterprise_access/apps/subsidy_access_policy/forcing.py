"""
Forcing a redemption: staff push one learner into one course run under a policy (decision record 0006).

``force_redemption`` is the only writer of a ``ForcedPolicyRedemption``'s outcome. It runs the one redemption
workflow (``redemption.redeem_policy``) with the forced-redemption source, so every rule of ``can_redeem`` holds
except the enrollment deadline, and every run leaves a ``RedemptionAttempt`` row.

A record redeems at most once. Three layers make that true:

1. a per-record claim in the lock cache (the same cache as the policy lock, so it holds across processes):
   a second forcing of the same record waits for the first to finish, then sees it redeemed and stops;
2. ``redeemed_at`` is re-read under a row lock before running and again before storing the outcome, so a
   redeemed record is never run again nor overwritten by a later failure;
3. underneath, the policy lock plus the subsidy idempotency key: even a run that slipped past (1) and (2)
   finds the learner's committed transaction and answers with it instead of writing a second one.

The claim is a cache entry rather than a database row lock held for the whole run because the workflow writes
its audit rows through a second connection; on SQLite a write transaction held open on the first connection
would block those writes until it timed out.
"""
import logging
import traceback as traceback_module
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from enterprise_access.apps.api_client import get_lms_client
from enterprise_access.apps.api_client.exceptions import UpstreamAPIError
from enterprise_access.apps.content_assignments.services import AssignmentError, allocate

from . import constants as c
from .locks import CacheLockBusy, cache_lock
from .models import AssignedLearnerCreditAccessPolicy, AttemptOutcome, AttemptSource, ForcedPolicyRedemption
from .redemption import RedemptionResult, AttemptRecorder, attempt_error_fields, redeem_policy

logger = logging.getLogger(__name__)

# Local error codes stored on the record when the run stopped before the workflow.
CODE_FORCING_IN_PROGRESS = "forcing_in_progress"
CODE_LEARNER_EMAIL_NOT_FOUND = "learner_email_not_found"
CODE_ASSIGNMENT_ERROR = "assignment_error"


def _local_failure(*, outcome, code, message, reason=None, error=None) -> RedemptionResult:
    """A result for a run that stopped before the workflow; ``local_code`` goes to the record's error_code."""
    result = RedemptionResult(outcome=outcome, reason=reason, error=error, error_message=message)
    result.local_code = code
    return result


class ForcingInProgress(Exception):
    """Another forcing of the same record held the claim for longer than we were willing to wait."""


def _claim_key(record_uuid) -> str:
    return f"enterprise-access:forced-redemption-claim:{record_uuid}"


@contextmanager
def _record_claim(record_uuid):
    """
    Hold the claim on one forced redemption while the block runs.

    Waits as long as a policy lock may be held plus the wait for it, which covers a whole run of the workflow;
    a claim left by a dead process expires after the policy lock's timeout.
    """
    wait = settings.POLICY_LOCK_WAIT_SECONDS + settings.UPSTREAM_READ_TIMEOUT * 4
    try:
        with cache_lock(_claim_key(record_uuid), wait_seconds=wait,
                        timeout_seconds=settings.POLICY_LOCK_TIMEOUT_SECONDS):
            yield
    except CacheLockBusy:
        raise ForcingInProgress(f"Another forcing of {record_uuid} is still running; refresh to see its result.") \
            from None


def _locked(record_uuid) -> ForcedPolicyRedemption:
    """The record, re-read under a row lock (call inside ``transaction.atomic``)."""
    return ForcedPolicyRedemption.objects.select_for_update().select_related("subsidy_access_policy").get(
        uuid=record_uuid)


def _already_redeemed_result(record) -> RedemptionResult:
    return RedemptionResult(
        outcome=AttemptOutcome.REDEEMED,
        transaction={"uuid": str(record.transaction_uuid), "state": c.TRANSACTION_STATE_COMMITTED},
        already_redeemed=True,
    )


def _allocate_assignment(policy, record) -> RedemptionResult | None:
    """For assigned policies: allocate the run to the learner at the record's price. A result means "stop here"."""
    try:
        email = get_lms_client().get_learner_email(policy.enterprise_customer_uuid, record.lms_user_id)
    except UpstreamAPIError as exc:
        return _local_failure(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, code=exc.code or "", error=exc,
                              message=exc.message)
    if not email:
        return _local_failure(
            outcome=AttemptOutcome.NOT_REDEEMABLE, reason=c.REASON_LEARNER_NOT_IN_ENTERPRISE,
            code=CODE_LEARNER_EMAIL_NOT_FOUND,
            message=(f"The LMS has no learner {record.lms_user_id} linked to enterprise "
                           f"{policy.enterprise_customer_uuid}, so no assignment could be made for them."),
        )
    try:
        allocate(
            assignment_configuration=policy.assignment_configuration,
            learner_email=email,
            content_key=record.course_run_key,
            content_price_cents=record.content_price_cents,
            lms_user_id=record.lms_user_id,
        )
    except AssignmentError as exc:
        return _local_failure(outcome=AttemptOutcome.NOT_REDEEMABLE, code=CODE_ASSIGNMENT_ERROR,
                              message=f"The assignment could not be made: {exc}")
    return None


def _record_stopped_run(policy, record, acting_user, result: RedemptionResult):
    """The attempt row of a run that stopped before the workflow (e.g. the LMS down while allocating)."""
    recorder = AttemptRecorder(
        policy=policy, lms_user_id=record.lms_user_id, content_key=record.course_run_key,
        source=AttemptSource.FORCED_REDEMPTION, acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        forced_redemption=record,
    )
    fields = (attempt_error_fields(result.error) if result.error is not None
              else {"error_code": result.local_code[:64], "error_message": result.error_message[:5000]})
    recorder.finish(outcome=result.outcome, reason=(result.reason or "")[:64], **fields)
    result.attempt_uuid = recorder.uuid if recorder.row else None


def _run(record, acting_user) -> RedemptionResult:
    policy = record.subsidy_access_policy
    if isinstance(policy, AssignedLearnerCreditAccessPolicy):
        stopped = _allocate_assignment(policy, record)
        if stopped is not None:
            _record_stopped_run(policy, record, acting_user, stopped)
            return stopped
    return redeem_policy(
        policy=policy,
        lms_user_id=record.lms_user_id,
        content_key=record.course_run_key,
        source=AttemptSource.FORCED_REDEMPTION,
        acting_user=acting_user,
        forced_redemption=record,
        skip_enrollment_deadline_check=True,
        refuse_exec_ed=True,
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
        return f"{result.outcome} ({where}): {error.message}"
    if result.reason:
        return f"{result.reason}: {result.error_message}"
    return f"{result.outcome}: {result.error_message}" if result.error_message else result.outcome


def _store(record_uuid, result: RedemptionResult, acting_user) -> ForcedPolicyRedemption:
    """Write the outcome on the record, unless another run already redeemed it (a redemption is never undone)."""
    with transaction.atomic():
        record = _locked(record_uuid)
        if record.redeemed_at is not None:
            return record
        now = timezone.now()
        if result.succeeded:
            record.redeemed_at = now
            record.transaction_uuid = (result.transaction or {}).get("uuid")
            record.errored_at = None
            record.error_reason = record.error_message = record.error_code = record.traceback = ""
            record.error_status = record.error_payload = None
        else:
            error = result.error
            record.errored_at = now
            record.error_reason = (result.reason or "")[:64]
            record.error_message = describe_failure(result)[:5000]
            record.error_status = error.status if error is not None else None
            record.error_code = (getattr(result, "local_code", "") or (error.code if error is not None else "")
                                 or result.outcome)[:64]
            payload = error.payload if error is not None else None
            if payload is not None and not isinstance(payload, (dict, list)):
                payload = {"raw": str(payload)[:2000]}
            record.error_payload = payload
            record.traceback = result.traceback or ""
        if getattr(acting_user, "pk", None):
            record.modified_by = acting_user
        record.save()
        return record


def force_redemption(*, forced_redemption: ForcedPolicyRedemption, acting_user) -> RedemptionResult:
    """
    Redeem ``forced_redemption`` through the redemption workflow, as ``acting_user``, and store the outcome on it.

    Never raises for an outcome: a refusal, an upstream error or a bug comes back as the result and is written on
    the record (``errored_at`` and the error fields). A record that has redeemed is left alone and answered with
    its transaction (``already_redeemed``). Refreshes ``forced_redemption`` from the database before returning.
    """
    record_uuid = forced_redemption.uuid
    try:
        with _record_claim(record_uuid):
            with transaction.atomic():
                record = _locked(record_uuid)
            if record.redeemed_at is not None:
                result = _already_redeemed_result(record)
            else:
                try:
                    result = _run(record, acting_user)
                except Exception as exc:  # pylint: disable=broad-except
                    # redeem_policy never raises; this guards the assignment step and anything around it.
                    logger.exception("Unexpected error forcing redemption %s", record_uuid)
                    result = RedemptionResult(outcome=AttemptOutcome.UNEXPECTED_ERROR,
                                              error_message=f"{type(exc).__name__}: {exc}",
                                              traceback=traceback_module.format_exc())
                _store(record_uuid, result, acting_user)
    except ForcingInProgress as exc:
        # Nothing is written: the run holding the claim will store its own outcome.
        result = _local_failure(outcome=AttemptOutcome.POLICY_BUSY, code=CODE_FORCING_IN_PROGRESS, message=str(exc))
    forced_redemption.refresh_from_db()
    if forced_redemption.redeemed_at is not None and not result.succeeded:
        # Another run redeemed it while we waited or failed: its transaction is the answer.
        result = _already_redeemed_result(forced_redemption)
    return result
