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
import hashlib
import logging
import traceback as traceback_module

from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from enterprise_access.apps.api_client import get_lms_client, get_subsidy_client
from enterprise_access.apps.api_client.exceptions import UpstreamAPIError
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.core.databases import INDEPENDENT_DB_ALIAS, lock_row

from . import constants as c
from .models import AssignedLearnerCreditAccessPolicy, AttemptOutcome, ForcedPolicyRedemption, limits_reason
from .redemption import (
    RedemptionRequest,
    RedemptionResult,
    assignment_price_problem,
    exec_ed_required_keys,
    forced_charge_cents,
    run_redemption,
)
from .reservations import read_spend

logger = logging.getLogger(__name__)

DB = INDEPENDENT_DB_ALIAS
CODE_FORCING_IN_PROGRESS = "forcing_in_progress"


CODE_FORCING_INPUTS_CHANGED = "forcing_inputs_changed"
# What a forcing spends on: the record's inputs. A confirmation names them, and the claim holds only while they
# are still the ones confirmed.
INPUT_FIELDS = ("subsidy_access_policy_id", "lms_user_id", "course_run_key", "content_price_cents")


def inputs_of(record) -> dict:
    """The record's inputs as a dict (what a confirmation page showed, and what a claim may insist on)."""
    return {name: getattr(record, name) for name in INPUT_FIELDS}


def inputs_digest(record) -> str:
    """A short fingerprint of the record's inputs, for a confirmation form to carry and compare."""
    text = "|".join(str(value) for value in inputs_of(record).values())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _claim(record_uuid, confirmed_inputs=None) -> bool:
    """
    Take the record for one run; False when it has redeemed, another run holds it, or (``confirmed_inputs``) its
    inputs are no longer the ones confirmed. One conditional UPDATE: an edit and a claim cannot interleave.
    """
    return bool(ForcedPolicyRedemption.objects.using(DB).filter(
        uuid=record_uuid, run_started_at__isnull=True, redeemed_at__isnull=True, **(confirmed_inputs or {}),
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
                     fallback_reference_id=None, confirmed_inputs=None) -> RedemptionResult:
    """
    Redeem ``forced_redemption`` through the redemption workflow, as ``acting_user``, and store the outcome on it.

    ``metadata`` carries the learner's details that exec-ed fulfillment needs (``geag_*``): they travel only in the
    redeem request, never onto the record or its history. Never raises for an outcome: a refusal, an upstream error
    or a bug comes back as the result and is written on the record. A record that has redeemed is answered with its
    transaction (``already_redeemed``). ``confirmed_inputs`` (``inputs_of`` the record as a staff member confirmed
    it): the run starts only if the record still has exactly those inputs; otherwise nothing runs and the result says
    so (code ``forcing_inputs_changed``). Refreshes ``forced_redemption`` from the database before returning.
    """
    record_uuid = forced_redemption.uuid
    if not _claim(record_uuid, confirmed_inputs):
        forced_redemption.refresh_from_db()
        if forced_redemption.redeemed_at is not None:
            return _already_redeemed_result(forced_redemption)
        if (forced_redemption.run_started_at is None and confirmed_inputs is not None
                and inputs_of(forced_redemption) != confirmed_inputs):
            return RedemptionResult(outcome=AttemptOutcome.POLICY_BUSY, code=CODE_FORCING_INPUTS_CHANGED,
                                    error_message="Its inputs changed after they were confirmed (in another tab, or "
                                                  "by another staff member); nothing was redeemed. Review the record "
                                                  "and confirm again.")
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


# ----- what a forcing would do: read only, for the confirmation page ------------------------------------------

@dataclass
class ForcingPreview:
    """
    What forcing ``record`` now would do, read from the upstream services without changing anything. Each part
    the upstream could not answer is None with a note saying why; the confirmation page shows the notes.
    """

    record: ForcedPolicyRedemption
    learner_email: str | None = None
    learner_note: str = ""
    content: dict | None = None
    content_note: str = ""
    run_start: datetime | None = None
    enroll_by: datetime | None = None
    exec_ed_keys: tuple = ()
    exec_ed_note: str = ""
    price_cents: int | None = None
    price_note: str = ""
    subsidy_balance_cents: int | None = None
    policy_used_cents: int | None = None
    policy_remaining_cents: int | None = None
    balance_note: str = ""
    guard_reason: str = ""

    @property
    def exec_ed(self) -> bool:
        return bool(self.exec_ed_keys)

    @property
    def past_enroll_by(self) -> bool:
        return self.enroll_by is not None and self.enroll_by < timezone.now()

    @property
    def remaining_cents(self) -> int | None:
        """What the policy can still spend: the smaller of the subsidy's balance and the policy's room."""
        figures = [v for v in (self.subsidy_balance_cents, self.policy_remaining_cents) if v is not None]
        return min(figures) if figures else None


def _unavailable(what, exc) -> str:
    return f"{what} did not answer ({exc.service} {exc.status or ''} {exc.code or ''}: {exc.message})".replace(
        "  ", " ")


def _when(value):
    return parse_datetime(value) if isinstance(value, str) and value else None


def preview_forcing(record: ForcedPolicyRedemption) -> ForcingPreview:
    """
    The learner's email, the run's title and dates, exec-ed requirements, the price the subsidy will charge and the
    policy's remaining balance, for ``record`` as it is. Never writes, never raises for an upstream failure.

    The price is the spend guard's (``forced_charge_cents``) and the remaining balance adds up what the spend guard
    counts (the ledger's spend, open reservations, other learners' allocations), so the page shows what the run
    will check.
    """
    policy = record.subsidy_access_policy
    preview = ForcingPreview(record=record)
    try:
        preview.learner_email = get_lms_client().get_learner_email(policy.enterprise_customer_uuid,
                                                                   record.lms_user_id)
        if preview.learner_email is None:
            preview.learner_note = (f"The LMS lists no learner {record.lms_user_id} in this enterprise: the "
                                    f"redemption will be refused ({c.REASON_LEARNER_NOT_IN_ENTERPRISE}).")
    except UpstreamAPIError as exc:
        preview.learner_note = (f"{_unavailable('The LMS', exc)}: the learner's email cannot be shown. The "
                                "redemption checks the learner again when it runs.")
    try:
        preview.content = policy.content_metadata(record.course_run_key)
        if preview.content is None:
            preview.content_note = ("The subsidy service finds this run in none of the customer's catalogs: the "
                                    f"redemption will be refused ({c.REASON_CONTENT_NOT_IN_CATALOG}).")
    except UpstreamAPIError as exc:
        preview.content_note = (f"{_unavailable('The subsidy service', exc)}: the run's title, dates and price "
                                "cannot be shown.")
    if preview.content:
        preview.run_start = _when(preview.content.get("course_run_start_date"))
        preview.enroll_by = _when(preview.content.get("enroll_by_date"))
        try:
            preview.exec_ed_keys = exec_ed_required_keys(policy, preview.content)
        except UpstreamAPIError as exc:
            preview.exec_ed_keys = tuple(c.EXEC_ED_REQUIRED_METADATA)
            preview.exec_ed_note = (f"{_unavailable('The LMS', exc)}: whether the customer also requires consent "
                                    "to data sharing cannot be told.")
        preview.price_cents = forced_charge_cents(policy, record.content_price_cents, preview.content)
        if isinstance(policy, AssignedLearnerCreditAccessPolicy):
            preview.price_note = assignment_price_problem(record.content_price_cents,
                                                          preview.content.get("content_price"))
    _preview_balance(preview, policy)
    return preview


def _preview_balance(preview: ForcingPreview, policy) -> None:
    """The subsidy's balance and the policy's room, counted as the spend guard counts them."""
    record = preview.record
    try:
        subsidy = get_subsidy_client().retrieve_subsidy(policy.subsidy_uuid) or {}
        preview.subsidy_balance_cents = int(subsidy.get("current_balance") or 0)
        snapshot = read_spend(policy, record.lms_user_id, per_learner=policy.has_learner_limits,
                              using=DEFAULT_DB_ALIAS)
    except UpstreamAPIError as exc:
        preview.balance_note = f"{_unavailable('The subsidy service', exc)}: the balance cannot be shown."
        return
    own_assignment = None
    if isinstance(policy, AssignedLearnerCreditAccessPolicy):
        assignment = policy.get_assignment(record.lms_user_id, record.course_run_key)
        if assignment is not None and assignment.state == AssignmentState.ALLOCATED:
            own_assignment = assignment  # set aside for this very redemption: the guard does not count it twice
    reason, figures = limits_reason(policy, snapshot, record.lms_user_id, preview.price_cents or 0,
                                    own_assignment, DEFAULT_DB_ALIAS)
    if policy.spend_limit is not None:
        preview.policy_used_cents = (figures["ledger_spent"] + figures.get("reserved", 0)
                                     + figures.get("allocated", 0))
        preview.policy_remaining_cents = max(0, policy.spend_limit - preview.policy_used_cents)
    if reason and preview.price_cents is not None:
        preview.guard_reason = reason
    elif preview.price_cents is not None and preview.subsidy_balance_cents < preview.price_cents:
        preview.guard_reason = c.REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY
