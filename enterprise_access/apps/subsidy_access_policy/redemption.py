"""
THE redemption workflow. Every redemption, from the learner portal or from staff in admin, runs here:

    open RedemptionAttempt
    (forced, assigned policy) allocate the learner's assignment
    eligibility: policy state, learner, catalog, content, deadline, subsidy can_redeem        (no lock held)
    settle the learner's own open reservations for this content that the ledger now answers
    read the ledger's spend                                                                   (no lock held)
    reserve: one short DB transaction locking and re-reading the policy row                   (no network inside)
    subsidy create, same idempotency key on every try                                         (no lock of ours held)
    settle the reservation: committed, released, or uncertain (then reconciliation finishes it)
    finish RedemptionAttempt

A caller describes what it asks with one ``RedemptionRequest``: the source, the acting user, the forced record,
and whether the enrollment deadline is waived (decided once, when the request is made). The attempt row is an
audit log: the workflow writes it and never reads it back. The spend guard lives in ``reservations``; see
docs/decisions/0010-durable-spend-reservations.rst.
"""
import dataclasses
import logging
import random
import time
import traceback as traceback_module
from dataclasses import dataclass, field
from uuid import uuid4

from django.conf import settings
from django.db import connections, router
from django.db.models.expressions import RawSQL
from django.utils import timezone

from enterprise_access.apps.api_client import get_lms_client, get_subsidy_client
from enterprise_access.apps.api_client.exceptions import (
    UpstreamAPIError,
    UpstreamBusyError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.services import AssignmentError, allocate, cancel
from enterprise_access.apps.core.outages import infrastructure_outage

from . import constants as c
from . import reservations
from .models import (
    AssignedLearnerCreditAccessPolicy,
    SpendReservation,
    limits_reason,
    AttemptOutcome,
    AttemptSource,
    RedemptionAttempt,
    ReservationState,
    SubsidyAccessPolicy,
    idempotency_key,
    is_reversed,
)
from .models.policy import subsidy_charge_cents

logger = logging.getLogger(__name__)

# Local error codes (the attempt's and the forced record's error_code when no upstream gave one).
CODE_REDEMPTION_IN_PROGRESS = "redemption_in_progress"
CODE_TRANSACTION_NOT_COMMITTED = "transaction_not_committed"
CODE_RESERVATION_RELEASED = "reservation_released"
CODE_LEARNER_EMAIL_NOT_FOUND = "learner_email_not_found"
CODE_ASSIGNMENT_ERROR = "assignment_error"
CODE_UNEXPECTED_ERROR = "unexpected_error"
CODE_SUBSIDY_NOT_THE_CUSTOMERS = "subsidy_not_the_customers"
MASKED = "***"


class AttemptRecordStats:
    """Counts audit writes that failed (the redemption went on without its record). Read by health checks."""

    failures = 0


@dataclass(frozen=True)
class RedemptionRequest:
    """
    What a caller asks the workflow to do. Build it with ``for_learner`` or ``for_forced_redemption``: they decide,
    once, whether the enrollment deadline is waived and the subsidy asked for a late enrollment.
    """

    policy: SubsidyAccessPolicy
    lms_user_id: int
    content_key: str
    source: str
    late_enrollment: bool
    metadata: dict = field(default_factory=dict)
    control_metadata: dict = field(default_factory=dict)
    acting_user: object = None
    request_id: str = ""
    forced_redemption: object = None
    subsidy_request_uuid: object = None

    def __post_init__(self):
        steering = sorted(set(self.metadata) & set(c.CONTROL_METADATA_KEYS))
        if steering:
            raise ValueError(f"Only the service sets the metadata key(s) {', '.join(steering)}.")

    @classmethod
    def for_learner(cls, *, policy, lms_user_id, content_key, metadata=None, acting_user=None, request_id="",
                    source=AttemptSource.LEARNER_REDEEM_API, subsidy_request_uuid=None):
        """A learner's own redemption (or an operator's on their behalf): late only while the policy's window is open."""
        return cls(policy=policy, lms_user_id=lms_user_id, content_key=content_key, source=source,
                   late_enrollment=policy.late_redemption_allowed_now(), metadata=dict(metadata or {}),
                   acting_user=acting_user, request_id=request_id, subsidy_request_uuid=subsidy_request_uuid)

    @classmethod
    def for_forced_redemption(cls, *, record, acting_user=None, metadata=None, fallback_reference_id=None):
        """Staff forcing ``record``: always a late enrollment; ``metadata`` carries exec-ed learner details."""
        control = {c.METADATA_FALLBACK_EXTERNAL_REFERENCE: fallback_reference_id} if fallback_reference_id else {}
        return cls(policy=record.subsidy_access_policy, lms_user_id=record.lms_user_id,
                   content_key=record.course_run_key, source=AttemptSource.FORCED_REDEMPTION, late_enrollment=True,
                   metadata=dict(metadata or {}), control_metadata=control, acting_user=acting_user,
                   forced_redemption=record)

    @property
    def subsidy_metadata(self) -> dict:
        """The metadata the create carries: the caller's, plus the keys only the service sets."""
        sent = {**self.metadata, **self.control_metadata}
        if self.late_enrollment:
            sent[c.METADATA_ALLOW_LATE_ENROLLMENT] = True
        return sent

    @property
    def acting_user_or_none(self):
        return self.acting_user if getattr(self.acting_user, "pk", None) else None


@dataclass
class RedemptionResult:
    """What a run of the workflow came to."""

    outcome: str
    transaction: dict | None = None
    reason: str | None = None
    error: UpstreamAPIError | None = None
    code: str = ""
    error_message: str = ""
    already_redeemed: bool = False
    existing_transactions: list = field(default_factory=list)
    attempt_uuid: object = None
    traceback: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome == AttemptOutcome.REDEEMED

    @property
    def error_code(self) -> str:
        """The upstream's code, else the local one."""
        return (self.error.code if self.error is not None and self.error.code else self.code) or ""


def mask_metadata(metadata: dict | None) -> dict | None:
    """Keys as sent; values masked except the keys the service itself sets (they describe no learner)."""
    if not metadata:
        return None
    return {key: (value if key in c.CONTROL_METADATA_KEYS else MASKED) for key, value in metadata.items()}


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

    Write only: nothing reads ``fields`` to decide anything.
    """

    def __init__(self, request: RedemptionRequest):
        self.row = None
        self.uuid = uuid4()
        self.fields = {}
        policy = request.policy
        try:
            self.row = RedemptionAttempt.objects.create(
                uuid=self.uuid,
                policy_uuid=policy.uuid,
                enterprise_customer_uuid=policy.enterprise_customer_uuid,
                policy=policy,
                lms_user_id=request.lms_user_id,
                content_key=request.content_key,
                source=request.source,
                acting_user=request.acting_user_or_none,
                request_id=(request.request_id or "")[:64],
                forced_redemption=request.forced_redemption,
                subsidy_request_uuid=request.subsidy_request_uuid,
                request_metadata=mask_metadata(request.subsidy_metadata),
                started_at=timezone.now(),
                outcome=AttemptOutcome.IN_PROGRESS,
                # The history row in force now, looked up inside the INSERT itself (no extra round trip).
                policy_history_id=_newest_history_row(policy),
            )
        except Exception:  # pylint: disable=broad-except
            self._count_failure("open")

    def note(self, **fields):
        self.fields.update(fields)

    def finish(self, result: RedemptionResult):
        tx = result.transaction or {}
        if result.error is not None:
            self.fields.update(attempt_error_fields(result.error))
        elif result.code or result.error_message:
            self.fields.update(error_code=result.code[:64], error_message=result.error_message[:5000])
        self.fields.update(
            outcome=result.outcome,
            reason=(result.reason or "")[:64],
            already_redeemed=result.already_redeemed,
            transaction_uuid=tx.get("uuid"),
            transaction_state=tx.get("state") or "",
            fulfillment_identifier=tx.get("fulfillment_identifier") or "",
            external_references=tx.get("external_reference") if tx else None,
            finished_at=timezone.now(),
        )
        if tx.get("quantity") is not None:
            self.fields["content_price"] = -int(tx["quantity"])
        if result.outcome == AttemptOutcome.NOT_REDEEMABLE:
            self.fields["can_redeem"] = False
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


def _own_committed_transaction(policy, existing):
    for tx in existing:
        if reservations.is_spent(tx) and str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid):
            return tx
    return None


# ----- the steps ---------------------------------------------------------------------------------------------

class _Stop(Exception):
    """A step decided the run's result; ``run_redemption`` records it."""

    def __init__(self, result: RedemptionResult):
        super().__init__(result.outcome)
        self.result = result


def _paid_under_another_policy(policy, request) -> list:
    """
    The learner's committed, unreversed transactions for this content under the customer's policies on *other*
    subsidies (each subsidy's own can-redeem sees only its ledger): found from our committed reservations, then
    confirmed on the ledger, so a reversal (a refund) frees the learner to redeem again.
    """
    found = []
    for reservation in reservations.committed_under_other_policies(policy, request.lms_user_id, request.content_key):
        tx = get_subsidy_client().retrieve_transaction(reservation.transaction_uuid)
        if tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx):
            found.append({**tx, "subsidy_uuid": str(reservation.subsidy_uuid)})
    return found


def _not_redeemable(reason, *, code="", message="", existing=()) -> _Stop:
    return _Stop(RedemptionResult(outcome=AttemptOutcome.NOT_REDEEMABLE, reason=reason, code=code,
                                  error_message=message, existing_transactions=list(existing)))


def _allocate_for_forced(request: RedemptionRequest, run: "_RunState"):
    """
    Forced redemption under an assigned policy: allocate the run to the learner at the record's price first, if the
    policy's limit has room for it (an allocation is money set aside: over-allocating would block every learner).
    """
    policy, record = request.policy, request.forced_redemption
    price = record.content_price_cents
    metadata = policy.content_metadata(request.content_key) or {}
    problem = assignment_price_problem(price, metadata.get("content_price"))
    if problem:
        raise _not_redeemable(c.REASON_ASSIGNMENT_PRICE_INVALID, code=CODE_ASSIGNMENT_ERROR, message=problem)
    email = get_lms_client().get_learner_email(policy.enterprise_customer_uuid, request.lms_user_id)
    if not email:
        raise _not_redeemable(c.REASON_LEARNER_NOT_IN_ENTERPRISE, code=CODE_LEARNER_EMAIL_NOT_FOUND, message=(
            f"The LMS has no learner {request.lms_user_id} linked to enterprise {policy.enterprise_customer_uuid}, "
            "so no assignment could be made for them."))
    existing = policy.get_assignment(request.lms_user_id, request.content_key)
    already = existing is not None and existing.state == AssignmentState.ALLOCATED \
        and -int(existing.content_quantity) == int(price)
    if not already:
        snapshot = reservations.read_spend(policy, request.lms_user_id, per_learner=False)
        reason, _ = limits_reason(policy, snapshot, request.lms_user_id, price,
                                  existing if existing is not None and existing.state == AssignmentState.ALLOCATED
                                  else None, reservations.DB)
        if reason:
            raise _not_redeemable(reason, message="The policy has no room left for this assignment; nothing was "
                                                  "allocated.")
    try:
        assignment = allocate(assignment_configuration=policy.assignment_configuration, learner_email=email,
                              content_key=request.content_key, content_price_cents=price,
                              lms_user_id=request.lms_user_id, content_title=metadata.get("content_title"))
    except AssignmentError as exc:
        raise _not_redeemable(None, code=CODE_ASSIGNMENT_ERROR, message=f"The assignment could not be made: {exc}")
    if not already:
        run.allocated_here = assignment


def assignment_price_problem(price, catalog_price) -> str:
    """
    Why a forced redemption under an assigned policy cannot allocate at ``price`` cents, or "" when it can: the
    price must be more than zero and, when the catalog has a price, within the range the subsidy accepts around it.
    """
    catalog_price = int(catalog_price or 0)
    low, high = c.REQUESTED_PRICE_RANGE
    if price and price > 0 and (not catalog_price or low * catalog_price <= price <= high * catalog_price):
        return ""
    return (f"The assignment price {price} cents must be more than zero and between {int(low * catalog_price)} and "
            f"{int(high * catalog_price)} cents (the catalog price is {catalog_price}).")


def forced_charge_cents(policy, record_price_cents, content_metadata) -> int:
    """
    What the subsidy will charge when a forced redemption of this content runs under ``policy``: an assigned policy
    allocates at the record's price and sends it as the requested price; the others pay the catalog price.
    """
    requested = record_price_cents if isinstance(policy, AssignedLearnerCreditAccessPolicy) else None
    return subsidy_charge_cents((content_metadata or {}).get("content_price"), requested)


def exec_ed_required_keys(policy, content_metadata) -> tuple:
    """
    The learner details (``geag_*`` metadata keys) the subsidy's exec-ed fulfillment needs for this content under
    ``policy``; () for content that is not exec-ed. Consent to data sharing is required only by customers that ask
    for it (read from the LMS customer record, cached). Raises ``UpstreamAPIError`` when the LMS cannot say.
    """
    if (content_metadata or {}).get("source") != c.EXEC_ED_SOURCE:
        return ()
    keys = tuple(c.EXEC_ED_REQUIRED_METADATA)
    customer = get_lms_client().get_enterprise_customer(policy.enterprise_customer_uuid) or {}
    if customer.get("enable_data_sharing_consent"):
        keys += (c.EXEC_ED_DATA_SHARE_CONSENT,)
    return keys


def _missing_exec_ed_details(request, decision) -> list:
    if request.source != AttemptSource.FORCED_REDEMPTION:
        return []  # the learner portal collects them; the subsidy service judges what it receives
    return [key for key in exec_ed_required_keys(request.policy, decision.content_metadata)
            if not request.metadata.get(key)]


def _owner_gone(now):
    """
    A reservation's tries can no longer reach the subsidy once it is RECONCILE_TAKEOVER_SECONDS old. Not sooner, even
    when its run has ended: a try that timed out may still be waiting at the subsidy, and arrive.
    """
    takeover = settings.RECONCILE_TAKEOVER_SECONDS

    def gone(reservation):
        return (now - reservation.created).total_seconds() >= takeover

    return gone


def _reserve(request, decision, key, recorder):
    """Read the ledger, then reserve; a conflict with a run that ended uncertain on this very key is adopted."""
    policy = request.policy
    for _ in range(2):
        snapshot = reservations.read_spend(policy, request.lms_user_id, per_learner=policy.has_learner_limits)
        outcome = reservations.reserve(
            policy=policy, snapshot=snapshot, lms_user_id=request.lms_user_id, content_key=request.content_key,
            amount_cents=decision.content_price, idempotency_key=key,
            requested_price_cents=decision.requested_price_cents, late_enrollment=request.late_enrollment,
            assignment=decision.assignment, forced_redemption=request.forced_redemption,
            attempt_uuid=recorder.uuid if recorder.row else None,
        )
        if outcome.reservation is not None:
            return outcome.reservation
        if outcome.committed is not None:
            tx = get_subsidy_client().retrieve_transaction(outcome.committed.transaction_uuid)
            raise _Stop(RedemptionResult(outcome=AttemptOutcome.REDEEMED, transaction=tx, already_redeemed=True,
                                         existing_transactions=decision.existing_transactions))
        if outcome.reason == reservations.RETRY:
            continue
        if outcome.reason == c.REASON_SPEND_PENDING:
            raise _Stop(RedemptionResult(
                outcome=AttemptOutcome.POLICY_BUSY, code=c.REASON_SPEND_PENDING,
                error_message="A limit would be passed only because of redemptions still being confirmed: "
                              "try again shortly.", existing_transactions=decision.existing_transactions))
        if outcome.reason:
            raise _not_redeemable(outcome.reason, existing=decision.existing_transactions)
        conflict = outcome.conflict
        if conflict.idempotency_key == key and conflict.state == ReservationState.UNCERTAIN:
            # The learner asks again for the redemption whose answer a previous run lost: send the same key.
            return conflict
        if _owner_gone(reservations.database_now(policy.uuid))(conflict):
            from .reconciliation import reconcile_reservation  # noqa: reconciliation builds on this module

            reconcile_reservation(conflict)
            continue
        break
    raise _Stop(RedemptionResult(
        outcome=AttemptOutcome.POLICY_BUSY, code=CODE_REDEMPTION_IN_PROGRESS,
        error_message="Another redemption of this content for this learner on this subsidy is still running.",
        existing_transactions=decision.existing_transactions))


@dataclass
class _CreateAnswer:
    transaction: dict | None = None
    error: UpstreamAPIError | None = None
    uncertain: bool = False  # some try may have been processed without us learning its answer
    released_elsewhere: bool = False


def _send_create(request, reservation, key) -> _CreateAnswer:
    """
    The subsidy create, retried with the same idempotency key while retrying is safe and useful: a busy ledger
    (429), and answers lost in transit (timeout, dropped connection, 5xx), which the key makes harmless to repeat.
    No new try starts after ``RUN_SEND_DEADLINE_SECONDS``: reconciliation relies on that to take a reservation over.
    """
    policy = request.policy
    deadline = time.monotonic() + settings.RUN_SEND_DEADLINE_SECONDS
    answer = _CreateAnswer()
    for attempt in range(max(1, settings.SUBSIDY_CREATE_RETRIES + 1)):
        if not reservations.mark_sent(reservation):
            # Settled meanwhile by reconciliation: committed (the ledger held our key's transaction) or released.
            settled = SpendReservation.objects.using(reservations.DB).get(pk=reservation.pk)
            if settled.state == ReservationState.COMMITTED and settled.transaction_uuid:
                answer.transaction = get_subsidy_client().retrieve_transaction(settled.transaction_uuid)
                answer.error = None
            else:
                answer.released_elsewhere = True
            return answer
        try:
            answer.transaction = policy.create_transaction(
                lms_user_id=request.lms_user_id, content_key=request.content_key, idempotency_key=key,
                metadata=request.subsidy_metadata, requested_price_cents=reservation.requested_price_cents)
            answer.error = None
            return answer
        except UpstreamBusyError as exc:
            answer.error = exc  # the ledger lock was busy: this try wrote nothing
        except UpstreamUnavailableError as exc:
            answer.error = exc
            answer.uncertain = answer.uncertain or exc.request_sent
        except UpstreamRequestError as exc:
            answer.error = exc  # a refusal: nothing more to learn by asking again
            return answer
        pause = min(settings.SUBSIDY_BUSY_BACKOFF_SECONDS * (2 ** attempt), settings.SUBSIDY_BUSY_BACKOFF_MAX_SECONDS)
        pause *= 0.5 + random.random()  # jitter: waiters spread out instead of retrying together
        if time.monotonic() + pause >= deadline:
            break
        time.sleep(pause)
    return answer


def _settle(reservation, state, *, tx=None, note=""):
    """Settle, never letting a local write failure turn a committed redemption into an error for the caller."""
    try:
        reservations.settle(reservation, state=state, transaction_uuid=(tx or {}).get("uuid"), note=note)
    except Exception:  # pylint: disable=broad-except
        logger.exception("Could not settle reservation %s as %s; reconcile_redemptions will.",
                         reservation.idempotency_key, state)


def _conclude(request, reservation, key, answer: _CreateAnswer, existing) -> RedemptionResult:
    """Turn the create's answer into the run's result, and settle the reservation to match."""
    policy = request.policy
    tx = answer.transaction
    if answer.released_elsewhere:
        return RedemptionResult(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, code=CODE_RESERVATION_RELEASED,
                                error_message="Reconciliation released this redemption's reservation before its "
                                              "create was sent; nothing was charged.")
    if tx is not None:
        state = reservations.state_for_transaction(tx)
        ours = tx.get("idempotency_key") == key
        if state == ReservationState.COMMITTED and not ours:
            # The subsidy answered with the learner's existing redemption of this content: nothing new was charged.
            _settle(reservation, ReservationState.RELEASED, note=f"The ledger already held {tx.get('uuid')}.")
            if str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid) and reservations.is_spent(tx):
                return RedemptionResult(outcome=AttemptOutcome.REDEEMED, transaction=tx, already_redeemed=True)
            return RedemptionResult(outcome=AttemptOutcome.NOT_REDEEMABLE, reason=c.REASON_LEARNER_ALREADY_REDEEMED,
                                    existing_transactions=existing + [tx])
        if state == ReservationState.COMMITTED and not is_reversed(tx):
            _settle(reservation, state, tx=tx, note="Committed by the subsidy service.")
            return RedemptionResult(outcome=AttemptOutcome.REDEEMED, transaction=tx)
        not_committed = (f"The subsidy service answered with transaction {tx.get('uuid')} in state "
                         f"{tx.get('state')}")
        if state == ReservationState.RELEASED and not answer.uncertain:
            _settle(reservation, state, tx=tx, note=f"{not_committed}.")
            return RedemptionResult(outcome=AttemptOutcome.SUBSIDY_REFUSED, transaction=tx,
                                    code=CODE_TRANSACTION_NOT_COMMITTED,
                                    error_message=f"{not_committed}; nothing was charged.")
        _settle(reservation, ReservationState.UNCERTAIN, tx=tx if ours else None, note=f"{not_committed}.")
        return RedemptionResult(outcome=AttemptOutcome.UNCERTAIN, transaction=tx, code=CODE_TRANSACTION_NOT_COMMITTED,
                                error_message=f"{not_committed}; reconciliation will settle it.")
    error = answer.error
    if answer.uncertain:
        _settle(reservation, ReservationState.UNCERTAIN, note=f"Create answer lost: {error}")
        return RedemptionResult(outcome=AttemptOutcome.UNCERTAIN, error=error, error_message=error.message)
    _settle(reservation, ReservationState.RELEASED, note=f"The create was refused or never processed: {error}")
    if isinstance(error, UpstreamBusyError):
        return RedemptionResult(outcome=AttemptOutcome.POLICY_BUSY, error=error, error_message=error.message)
    if isinstance(error, UpstreamRequestError) and error.service == "subsidy" and error.status == 422:
        return RedemptionResult(outcome=AttemptOutcome.SUBSIDY_REFUSED, error=error, error_message=error.message)
    # Any other 4xx (an unknown subsidy, a missing permission for our service account) is an upstream we cannot
    # use: unavailable, and not the learner's fault. So is an answer that never left this machine.
    return RedemptionResult(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, error=error, error_message=error.message)


@dataclass
class _RunState:
    """What one run did that its ending must undo or keep: the allocation it made for a forced redemption."""

    allocated_here: object = None


def _course_run_of(request: RedemptionRequest) -> RedemptionRequest:
    """
    The request for the course run its key names. A course key redeems the course's advertised run: redeeming
    through the run key too would otherwise charge the learner twice for one course (the claim and the subsidy's
    "already redeemed" both compare keys as written).
    """
    metadata = request.policy.content_metadata(request.content_key) or {}
    run_key = metadata.get("course_run_key")
    if run_key and run_key != request.content_key:
        return dataclasses.replace(request, content_key=run_key)
    return request


def _run(request: RedemptionRequest, recorder: AttemptRecorder, run: _RunState) -> RedemptionResult:
    request = _course_run_of(request)
    policy = request.policy
    started = time.monotonic()
    if request.forced_redemption is not None and isinstance(policy, AssignedLearnerCreditAccessPolicy):
        _allocate_for_forced(request, run)
    decision = policy.check_eligibility(request.lms_user_id, request.content_key,
                                        late_enrollment=request.late_enrollment)
    checking_ms = _ms_since(started)
    recorder.note(can_redeem_ms=checking_ms, content_price=decision.content_price, assignment=decision.assignment)
    existing = decision.existing_transactions
    missing = _missing_exec_ed_details(request, decision) if decision.redeemable else []
    if missing:
        decision = decision.refused(c.REASON_EXEC_ED_DETAILS_MISSING)
    if existing:
        # The ledger may now answer what an earlier run of this learner and content left open.
        open_ones = reservations.open_reservations_for(policy.enterprise_customer_uuid, request.lms_user_id,
                                                       request.content_key)
        if open_ones:
            reservations.settle_from_transactions(open_ones, existing,
                                                  owner_gone=_owner_gone(reservations.database_now(policy.uuid)))
    recorder.note(can_redeem=decision.redeemable, reason=decision.reason or "")
    if not decision.redeemable:
        existing_own = (_own_committed_transaction(policy, existing)
                        if decision.reason == c.REASON_LEARNER_ALREADY_REDEEMED else None)
        if existing_own is not None:
            # A repeat of a redemption that went through: answer with it, never write a second.
            policy.after_redeem(existing_own, assignment=decision.assignment)
            return RedemptionResult(outcome=AttemptOutcome.REDEEMED, transaction=existing_own, already_redeemed=True,
                                    existing_transactions=existing)
        message = f"Missing: {', '.join(missing)}." if missing else ""
        code = ""
        if decision.reason == c.REASON_POLICY_MISCONFIGURED:
            code = CODE_SUBSIDY_NOT_THE_CUSTOMERS
            message = (f"Refused to spend: subsidy {policy.subsidy_uuid} does not belong to the policy's enterprise "
                       f"customer {policy.enterprise_customer_uuid} (the subsidy service says so). Fix the policy; "
                       "manage.py check_policy_tenancy lists every such policy.")
        raise _not_redeemable(decision.reason, code=code, message=message, existing=existing)

    elsewhere = _paid_under_another_policy(policy, request)
    if elsewhere:
        raise _not_redeemable(
            c.REASON_LEARNER_ALREADY_REDEEMED, existing=existing + elsewhere,
            message=f"The learner already holds this content through transaction {elsewhere[0].get('uuid')} of "
                    f"subsidy {elsewhere[0].get('subsidy_uuid') or '(another)'}: nothing more is charged.")
    key = idempotency_key(subsidy_uuid=policy.subsidy_uuid, policy_uuid=policy.uuid, lms_user_id=request.lms_user_id,
                          content_key=request.content_key, existing_transactions=existing)
    recorder.note(idempotency_key=key)
    started = time.monotonic()
    reservation = _reserve(request, decision, key, recorder)
    recorder.note(can_redeem_ms=checking_ms + _ms_since(started))
    started = time.monotonic()
    try:
        answer = _send_create(request, reservation, key)
    finally:
        recorder.note(subsidy_call_ms=_ms_since(started))
    result = _conclude(request, reservation, key, answer, existing)
    result.existing_transactions = existing
    return result


def run_redemption(request: RedemptionRequest) -> RedemptionResult:
    """
    Run one redemption as ``request`` asks and record it.

    Never raises: a refusal, a busy learner, an upstream error, an outage, even a bug inside the workflow all come
    back as a ``RedemptionResult`` whose ``outcome`` says which (a bug as ``unexpected_error``, logged with its
    traceback), and the attempt row is finished on every path.
    """
    recorder = AttemptRecorder(request)
    attempt_uuid = recorder.uuid if recorder.row else None
    run = _RunState()
    try:
        result = _run(request, recorder, run)
    except _Stop as stop:
        result = stop.result
    except UpstreamBusyError as exc:
        result = RedemptionResult(outcome=AttemptOutcome.POLICY_BUSY, error=exc, error_message=exc.message)
    except UpstreamAPIError as exc:
        # A read failed (the create's answers are handled in _conclude): nothing was sent, nothing charged.
        result = RedemptionResult(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, error=exc, error_message=exc.message)
    except Exception as exc:  # pylint: disable=broad-except
        code = infrastructure_outage(exc)
        if code is not None:
            # The database is down: retryable. A reservation left open is settled by reconciliation.
            result = RedemptionResult(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, code=code,
                                      error_message=f"{code}: {exc}")
            logger.warning("Redemption of %s for %s under %s failed: %s", request.content_key, request.lms_user_id,
                           request.policy.uuid, code)
        else:
            result = RedemptionResult(outcome=AttemptOutcome.UNEXPECTED_ERROR, code=CODE_UNEXPECTED_ERROR,
                                      error_message=f"{type(exc).__name__}: {exc}",
                                      traceback=traceback_module.format_exc())
            logger.exception("Unexpected error redeeming %s for %s under %s", request.content_key,
                             request.lms_user_id, request.policy.uuid)
    if run.allocated_here is not None and result.outcome not in (AttemptOutcome.REDEEMED, AttemptOutcome.UNCERTAIN):
        # Nothing was spent: give back the money this run set aside, or it would stay blocked for everyone.
        try:
            cancel(run.allocated_here)
        except Exception:  # pylint: disable=broad-except
            logger.exception("Could not cancel the allocation %s of a forced redemption that did not redeem",
                             run.allocated_here.uuid)
    result.attempt_uuid = attempt_uuid
    recorder.finish(result)
    return result


def redeem_policy(*, policy, lms_user_id, content_key, metadata=None, source=AttemptSource.LEARNER_REDEEM_API,
                  acting_user=None, request_id="", subsidy_request_uuid=None) -> RedemptionResult:
    """A learner's (or an operator's) redemption: ``run_redemption(RedemptionRequest.for_learner(...))``."""
    return run_redemption(RedemptionRequest.for_learner(
        policy=policy, lms_user_id=lms_user_id, content_key=content_key, metadata=metadata, acting_user=acting_user,
        request_id=request_id, source=source, subsidy_request_uuid=subsidy_request_uuid))
