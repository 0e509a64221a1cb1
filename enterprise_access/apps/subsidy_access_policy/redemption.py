"""
THE redemption workflow. Every redemption, from the learner portal or from staff in admin, runs here:

    open RedemptionAttempt -> eligibility -> policy.lock() [spend limits -> policy.redeem()] -> finish attempt

(eligibility and the spend limits together are ``policy.can_redeem()``; only the part that reads what other
redemptions spent runs under the lock.)

so the audit record, the lock and the mapping of failures to outcomes exist once. Callers turn the
``RedemptionResult`` into their own answer (an HTTP status, an admin message). The attempt row is an
audit log: nothing here reads it back.
"""
import logging
import time
import traceback as traceback_module
from dataclasses import dataclass, field
from uuid import uuid4

from django.conf import settings
from django.db import connections, router
from django.db.models.expressions import RawSQL
from django.utils import timezone

from enterprise_access.apps.api_client.exceptions import (
    UpstreamAPIError,
    UpstreamBusyError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)

from enterprise_access.apps.core.outages import infrastructure_outage

from . import constants as c
from .locks import PolicyLockBusy
from .models import AttemptOutcome, CanRedeemResult, RedemptionAttempt, SubsidyAccessPolicy, is_reversed

logger = logging.getLogger(__name__)



class AttemptRecordStats:
    """Counts audit writes that failed (the redemption went on without its record). Read by health checks."""

    failures = 0


@dataclass
class RedemptionResult:
    """What a run of the workflow came to."""

    outcome: str
    transaction: dict | None = None
    reason: str | None = None
    error: UpstreamAPIError | None = None
    error_message: str = ""
    already_redeemed: bool = False
    existing_transactions: list = field(default_factory=list)
    attempt_uuid: object = None
    traceback: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome == AttemptOutcome.REDEEMED


def _newest_history_row(policy) -> RawSQL:
    """
    ``(SELECT history_id ...)`` of the policy's newest history row, to embed in the attempt's INSERT.

    Written as SQL rather than an ORM subquery: composing the subquery cost about half a millisecond per
    redemption, twenty times what running it costs. Names are quoted and the uuid adapted by the connection.
    """
    connection = connections[router.db_for_write(RedemptionAttempt)]
    history = SubsidyAccessPolicy.history.model
    quote = connection.ops.quote_name
    sql = (f"SELECT {quote('history_id')} FROM {quote(history._meta.db_table)} WHERE {quote('uuid')} = %s "
           f"ORDER BY {quote('history_date')} DESC, {quote('history_id')} DESC LIMIT 1")
    uuid_value = history._meta.get_field("uuid").get_db_prep_value(policy.uuid, connection, prepared=False)
    return RawSQL(sql, [uuid_value])


class AttemptRecorder:
    """
    Opens and finishes one RedemptionAttempt row; a failure to write is logged and counted, never raised.

    Used by the workflow, and by forced redemption for a run that stops before reaching the workflow.
    """

    def __init__(self, **fields):
        self.row = None
        self.uuid = uuid4()
        self.fields = {}
        try:
            policy = fields["policy"]
            self.row = RedemptionAttempt.objects.create(
                uuid=self.uuid,
                policy_uuid=policy.uuid,
                enterprise_customer_uuid=policy.enterprise_customer_uuid,
                started_at=timezone.now(),
                outcome=AttemptOutcome.IN_PROGRESS,
                # The history row in force now, looked up inside the INSERT itself (no extra round trip).
                policy_history_id=_newest_history_row(policy),
                **fields,
            )
        except Exception:  # pylint: disable=broad-except
            self._count_failure("open")

    def note(self, **fields):
        self.fields.update(fields)

    def finish(self, **fields):
        self.fields.update(fields)
        self.fields["finished_at"] = timezone.now()
        if self.row is None:
            return
        try:
            RedemptionAttempt.objects.filter(uuid=self.uuid).update(**self.fields)
        except Exception:  # pylint: disable=broad-except
            self._count_failure("finish")

    def _count_failure(self, step):
        AttemptRecordStats.failures += 1
        logger.exception("Could not %s the redemption attempt record %s; the redemption goes on without it.",
                         step, self.uuid)


def _ms_since(start) -> int:
    return int((time.monotonic() - start) * 1000)


def attempt_error_fields(error: UpstreamAPIError) -> dict:
    payload = error.payload
    if payload is not None and not isinstance(payload, (dict, list)):
        payload = {"raw": str(payload)[:2000]}
    return {
        "error_status": error.status,
        "error_code": (error.code or "")[:64],
        "error_message": f"{error.service}: {error.message}"[:5000],
        "error_payload": payload,
    }


def _create_with_retry(policy, lms_user_id, content_key, existing, metadata, assignment):
    """The subsidy create call; its 429 (ledger lock busy) is retried with backoff, which the idempotency key makes safe."""
    attempts = max(1, settings.SUBSIDY_BUSY_RETRIES + 1)
    for attempt in range(attempts):
        try:
            return policy.redeem(lms_user_id, content_key, existing, metadata, assignment=assignment)
        except UpstreamBusyError:
            if attempt == attempts - 1:
                raise
            time.sleep(settings.SUBSIDY_BUSY_BACKOFF_SECONDS * (2 ** attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _note_decision(recorder, decision, can_redeem_ms):
    recorder.note(can_redeem_ms=can_redeem_ms, can_redeem=decision.redeemable, reason=decision.reason or "",
                  content_price=decision.content_price, assignment=decision.assignment)


def _own_committed_transaction(policy, existing):
    for tx in existing:
        if (tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx)
                and str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid)):
            return tx
    return None


def redeem_policy(
    *,
    policy: SubsidyAccessPolicy,
    lms_user_id: int,
    content_key: str,
    metadata: dict | None = None,
    source: str,
    acting_user=None,
    request_id: str = "",
    forced_redemption=None,
    subsidy_request_uuid=None,
    skip_enrollment_deadline_check: bool = False,
    refuse_exec_ed: bool = False,
    lock_wait_seconds: float | None = None,
) -> RedemptionResult:
    """
    Run one redemption of ``content_key`` for ``lms_user_id`` under ``policy`` and record it.

    Never raises: a refusal, a busy policy, an upstream error, an outage, even a bug inside the workflow all
    come back as a ``RedemptionResult`` whose ``outcome`` says which (a bug as ``unexpected_error``, logged with
    its traceback), and the attempt row is finished on every path.
    """
    metadata = dict(metadata or {})
    if skip_enrollment_deadline_check:
        metadata[c.METADATA_ALLOW_LATE_ENROLLMENT] = True
    elif policy.late_redemption_allowed_now():
        metadata[c.METADATA_ALLOW_LATE_ENROLLMENT] = True

    recorder = AttemptRecorder(
        policy=policy,
        lms_user_id=lms_user_id,
        content_key=content_key,
        source=source,
        acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        request_id=(request_id or "")[:64],
        forced_redemption=forced_redemption,
        subsidy_request_uuid=subsidy_request_uuid,
        request_metadata=metadata or None,
    )
    result = RedemptionResult(outcome=AttemptOutcome.UNEXPECTED_ERROR, attempt_uuid=recorder.uuid if recorder.row else None)
    try:
        # Eligibility does not depend on what other redemptions spend: check it before taking the lock, so
        # refusals never wait for the lock and the lock is held only for the spend checks and the create.
        started = time.monotonic()
        decision = policy.check_eligibility(
            lms_user_id, content_key, skip_enrollment_deadline_check=skip_enrollment_deadline_check,
        )
        checking_ms = _ms_since(started)
        if decision.redeemable and refuse_exec_ed \
                and (decision.content_metadata or {}).get("source") == c.EXEC_ED_SOURCE:
            decision = CanRedeemResult(False, c.REASON_EXEC_ED_NOT_SUPPORTED, decision.existing_transactions,
                                       content_price=decision.content_price, assignment=decision.assignment)
        result.existing_transactions = decision.existing_transactions
        if decision.redeemable:
            with policy.lock(wait_seconds=lock_wait_seconds):
                started = time.monotonic()
                decision = policy.check_limits(decision, lms_user_id)
                _note_decision(recorder, decision, checking_ms + _ms_since(started))
                if decision.redeemable:
                    started = time.monotonic()
                    try:
                        transaction = _create_with_retry(policy, lms_user_id, content_key,
                                                         decision.existing_transactions, metadata, decision.assignment)
                    finally:
                        recorder.note(subsidy_call_ms=_ms_since(started))
                    policy.after_redeem(transaction, assignment=decision.assignment)
                    result.outcome, result.transaction = AttemptOutcome.REDEEMED, transaction
        else:
            _note_decision(recorder, decision, checking_ms)
        if not decision.redeemable:
            existing_own = (_own_committed_transaction(policy, decision.existing_transactions)
                            if decision.reason == c.REASON_LEARNER_ALREADY_REDEEMED else None)
            if existing_own is not None:
                # A repeat of a redemption that already went through: answer with it, never write a second.
                policy.after_redeem(existing_own, assignment=decision.assignment)
                result.outcome, result.transaction, result.already_redeemed = (
                    AttemptOutcome.REDEEMED, existing_own, True)
            else:
                result.outcome, result.reason = AttemptOutcome.NOT_REDEEMABLE, decision.reason
    except PolicyLockBusy as exc:
        result.outcome, result.error_message = AttemptOutcome.POLICY_BUSY, str(exc)
        recorder.note(error_code="policy_lock_busy", error_message=str(exc))
    except UpstreamBusyError as exc:
        result.outcome, result.error, result.error_message = AttemptOutcome.POLICY_BUSY, exc, exc.message
        recorder.note(**attempt_error_fields(exc))
    except UpstreamRequestError as exc:
        # Only the subsidy service's documented 422 on create is a refusal. Any other 4xx (an unknown subsidy,
        # a missing permission for our service account) is an upstream we cannot use: unavailable, and not the
        # learner's fault.
        refused = (exc.service == "subsidy" and exc.status == 422
                   and recorder.fields.get("subsidy_call_ms") is not None)
        result.outcome = AttemptOutcome.SUBSIDY_REFUSED if refused else AttemptOutcome.UPSTREAM_UNAVAILABLE
        result.error, result.error_message = exc, exc.message
        recorder.note(**attempt_error_fields(exc))
    except UpstreamUnavailableError as exc:
        result.outcome, result.error, result.error_message = AttemptOutcome.UPSTREAM_UNAVAILABLE, exc, exc.message
        recorder.note(**attempt_error_fields(exc))
    except Exception as exc:  # pylint: disable=broad-except
        code = infrastructure_outage(exc)
        if code is not None:
            # The cache holding the lock, or the database, is down: retryable, and nothing was spent.
            result.outcome, result.error_message = AttemptOutcome.UPSTREAM_UNAVAILABLE, f"{code}: {exc}"
            recorder.note(error_code=code, error_message=str(exc)[:5000])
            logger.warning("Redemption of %s for %s under %s failed: %s", content_key, lms_user_id, policy.uuid,
                           code)
        else:
            result.outcome, result.error_message = AttemptOutcome.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}"
            result.traceback = traceback_module.format_exc()
            recorder.note(error_code="unexpected_error", error_message=result.error_message[:5000])
            logger.exception("Unexpected error redeeming %s for %s under %s", content_key, lms_user_id, policy.uuid)
    finally:
        tx = result.transaction or {}
        recorder.finish(
            outcome=result.outcome,
            already_redeemed=result.already_redeemed,
            transaction_uuid=tx.get("uuid"),
            transaction_state=tx.get("state") or "",
            fulfillment_identifier=tx.get("fulfillment_identifier") or "",
            external_references=tx.get("external_reference") if tx else None,
            **({"content_price": -int(tx["quantity"])} if tx.get("quantity") is not None else {}),
        )
    return result
