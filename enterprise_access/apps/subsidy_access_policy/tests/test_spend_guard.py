"""
The spend guard (decision records 0010 and 0011), against the live emulator: every way money moved wrongly under
the old policy lock is a test here, and after each faulty scenario the ledger is counted against the limits and
against the attempt rows.
"""
import threading
import time
from uuid import uuid4

import pytest
from django.core.management import call_command
from django.utils import timezone

from enterprise_access.apps.api.tests.helpers import learner_client, operator_client, redeem_url
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy import redemption, selectors
from enterprise_access.apps.subsidy_access_policy.forcing import force_redemption
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptOutcome,
    RedemptionAttempt,
    ReservationState,
    SpendReservation,
)
from enterprise_access.apps.subsidy_access_policy.reconciliation import reconcile
from enterprise_access.apps.subsidy_access_policy.redemption import (
    CODE_REDEMPTION_IN_PROGRESS,
    CODE_TRANSACTION_NOT_COMMITTED,
    redeem_policy,
)
from enterprise_access.devtools.testing import build_world_policy, run_concurrently

from .factories import AssignmentFactory, ForcedRedemptionFactory, UserFactory

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

CREATE = r"/admin/transactions/?$"
READ_TIMEOUT = 0.3
LATE_MS = 800  # a create answered this late has timed out at READ_TIMEOUT; the emulator still writes it


# ----- the ledger, counted -----------------------------------------------------------------------------------

def ledger(upstream, policy):
    """The policy's redemptions on the ledger that spend money (created, pending or committed)."""
    return [tx for tx in upstream.control.transactions(policy.subsidy_uuid)
            if str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid) and tx["state"] != "failed"]


def spent(upstream, policy):
    return -sum(tx["quantity"] + ((tx.get("reversal") or {}).get("quantity") or 0) for tx in ledger(upstream, policy))


def wait_for_ledger(upstream, policy, count, seconds=5):
    deadline = time.monotonic() + seconds
    while len(ledger(upstream, policy)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return ledger(upstream, policy)


def assert_money_invariants(upstream, policy, *, limit=None):
    """Within the limit, one charge per learner and content, and every ledger row named by a redeemed attempt."""
    rows = ledger(upstream, policy)
    if limit is not None:
        assert spent(upstream, policy) <= limit, (spent(upstream, policy), limit)
    pairs = [(tx["lms_user_id"], tx["content_key"]) for tx in rows]
    assert len(pairs) == len(set(pairs)), pairs
    named = set(RedemptionAttempt.objects.filter(policy_uuid=policy.uuid, outcome=AttemptOutcome.REDEEMED)
                .values_list("transaction_uuid", flat=True))
    assert {tx["uuid"] for tx in rows if tx["state"] == "committed"} <= {str(u) for u in named}


def redeem_in_background(policy, lms_user_id, content_key):
    """Start one redemption on a thread; its result lands in ``results["run"]`` once the thread is joined."""
    results = {}

    def redeem():
        results["run"] = redeem_policy(policy=policy, lms_user_id=lms_user_id, content_key=content_key)

    thread = threading.Thread(target=redeem)
    thread.start()
    return thread, results


def settle_everything():
    """A reconciliation pass once every run has ended (nothing can still be sending)."""
    return reconcile(takeover_seconds=0)


# ----- a create whose answer is lost -------------------------------------------------------------------------

def test_a_lost_create_answer_keeps_its_money_counted_so_the_next_learner_cannot_overspend(upstream, settings):
    # Limit 15,000; each run costs 9,900: one fits, two do not.
    run = upstream.runs[2]
    policy = build_world_policy(spend_limit=15_000)
    settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=LATE_MS, times=1)

    first = redeem_policy(policy=policy, lms_user_id=upstream.learners[0]["lms_user_id"], content_key=run)
    assert first.outcome == AttemptOutcome.UNCERTAIN  # never "no transaction": the subsidy may have written it
    second = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    # Refused while the first one's money is held, and told to retry: the hold may yet be released.
    assert (second.outcome, second.code) == (AttemptOutcome.POLICY_BUSY, c.REASON_SPEND_PENDING)

    late = wait_for_ledger(upstream, policy, 1)
    assert len(late) == 1 and spent(upstream, policy) == 9_900
    first_attempt = RedemptionAttempt.objects.get(uuid=first.attempt_uuid)
    assert first_attempt.outcome == AttemptOutcome.UNCERTAIN and first_attempt.error_code == "timeout"

    # Reconciliation finds the late transaction and says so on the first learner's attempt.
    summary = settle_everything()
    assert summary["reservations_committed"] == 1
    first_attempt.refresh_from_db()
    assert (first_attempt.outcome, str(first_attempt.transaction_uuid)) == (AttemptOutcome.REDEEMED, late[0]["uuid"])
    assert first_attempt.reconciled_at is not None
    # Still no room for the second learner: the committed redemption is on the ledger now.
    third = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    assert third.reason == c.REASON_POLICY_SPEND_LIMIT_REACHED
    assert_money_invariants(upstream, policy, limit=15_000)


def test_a_connection_dropped_after_the_write_is_uncertain_until_the_ledger_says(upstream, settings):
    policy = build_world_policy(spend_limit=15_000)
    run = upstream.runs[2]
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=0, phase="after", times=1)

    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=run)
    assert result.outcome == AttemptOutcome.UNCERTAIN and result.error.code == "connection_error"
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.UNCERTAIN
    assert len(ledger(upstream, policy)) == 1  # written, answer dropped
    other = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    # The ledger already shows the first one's money spent: no room, whatever the open reservation becomes.
    assert other.reason == c.REASON_POLICY_SPEND_LIMIT_REACHED
    settle_everything()
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.COMMITTED
    assert_money_invariants(upstream, policy, limit=15_000)


@pytest.mark.parametrize("status", [408, 499])
def test_a_proxy_timeout_answer_after_the_write_is_uncertain_not_a_refusal(upstream, settings, status):
    # A gateway between us and the subsidy gives up and answers 408/499 after the subsidy wrote: releasing the
    # reservation on that answer would let the next learner spend the same money again.
    policy = build_world_policy(spend_limit=15_000)
    run = upstream.runs[2]
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=status, phase="after", times=1)

    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=run)
    assert result.outcome == AttemptOutcome.UNCERTAIN
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.UNCERTAIN
    other = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    assert other.outcome != AttemptOutcome.REDEEMED
    settle_everything()
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.COMMITTED
    assert_money_invariants(upstream, policy, limit=15_000)


def test_a_late_write_is_asked_again_with_the_same_key_and_charged_once(upstream, settings):
    policy = build_world_policy()
    settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=LATE_MS, times=1)
    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert result.succeeded
    rows = wait_for_ledger(upstream, policy, 1)
    time.sleep(LATE_MS / 1000)  # let the late first try land too: it must find the same transaction
    assert [tx["uuid"] for tx in ledger(upstream, policy)] == [result.transaction["uuid"]] == [rows[0]["uuid"]]
    assert_money_invariants(upstream, policy)


def test_no_lock_lifetime_a_slow_create_still_counts_for_a_learner_arriving_during_it(upstream, settings):
    """The old lock expired after POLICY_LOCK_TIMEOUT_SECONDS; a reservation never does."""
    settings.POLICY_LOCK_TIMEOUT_SECONDS = 0.2  # the old design's knob: it must not matter any more
    policy = build_world_policy(spend_limit=15_000)
    run = upstream.runs[2]
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=1200, times=1)
    results = {}

    def first():
        results["first"] = redeem_policy(policy=policy, lms_user_id=upstream.learners[0]["lms_user_id"],
                                         content_key=run)

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 5
    while not SpendReservation.objects.filter(policy=policy, state=ReservationState.SENT).exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    thread.join(10)
    assert results["first"].succeeded
    assert second.code == c.REASON_SPEND_PENDING  # counted while the first was in flight
    assert_money_invariants(upstream, policy, limit=15_000)


# ----- one charge per learner and content on a subsidy --------------------------------------------------------

def test_two_policies_sharing_a_subsidy_charge_the_same_learner_once(upstream):
    one, two = build_world_policy(), build_world_policy()  # same subsidy, same catalog
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=400, times=1)
    learner = upstream.learner["lms_user_id"]
    results = run_concurrently(lambda policy: redeem_policy(policy=policy, lms_user_id=learner,
                                                            content_key=upstream.run), [(one,), (two,)])
    assert sorted(r.outcome for r in results).count(AttemptOutcome.REDEEMED) == 1
    loser = next(r for r in results if not r.succeeded)
    assert (loser.outcome, loser.code) == (AttemptOutcome.POLICY_BUSY, CODE_REDEMPTION_IN_PROGRESS) or \
        loser.reason == c.REASON_LEARNER_ALREADY_REDEEMED
    charges = [tx for tx in upstream.control.transactions(one.subsidy_uuid)
               if tx.get("lms_user_id") == learner and tx.get("content_key") == upstream.run]
    assert len(charges) == 1
    # Asking again under the other policy is refused: the learner already has it.
    again = redeem_policy(policy=two if results[0].succeeded else one, lms_user_id=learner, content_key=upstream.run)
    assert again.reason == c.REASON_LEARNER_ALREADY_REDEEMED


def learner_charges(upstream, policies, learner, content_key):
    return [tx for policy in policies for tx in upstream.control.transactions(policy.subsidy_uuid)
            if tx.get("lms_user_id") == learner and tx.get("content_key") == content_key and tx["state"] != "failed"
            and str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid)]


def test_one_customer_two_subsidies_charge_a_learner_once_for_a_course(upstream):
    # Found by a hostile review: a learner paid for the same run under P1 (subsidy S1) and then P3 (subsidy S3), and
    # can-redeem recommended the second. The customer's policies pay a learner once for a content.
    first, second = build_world_policy("per_learner_enrollment"), build_world_policy("per_learner_spend")
    assert first.subsidy_uuid != second.subsidy_uuid
    learner = upstream.learner["lms_user_id"]
    assert redeem_policy(policy=first, lms_user_id=learner, content_key=upstream.run).succeeded

    [answer] = selectors.can_redeem_by_content(customer_uuid=first.enterprise_customer_uuid, lms_user_id=learner,
                                               content_keys=[upstream.run])
    assert answer.has_successful_redemption and answer.chosen is None
    again = redeem_policy(policy=second, lms_user_id=learner, content_key=upstream.run)
    assert (again.outcome, again.reason) == (AttemptOutcome.NOT_REDEEMABLE, c.REASON_LEARNER_ALREADY_REDEEMED)
    charges = learner_charges(upstream, (first, second), learner, upstream.run)
    assert len(charges) == 1

    # A refund (reversal) frees the learner to redeem it again, under the other policy.
    upstream.control.reverse(charges[0]["uuid"])
    assert redeem_policy(policy=second, lms_user_id=learner, content_key=upstream.run).succeeded


def test_one_customer_two_subsidies_at_the_same_moment_charge_once(upstream):
    first, second = build_world_policy("per_learner_enrollment"), build_world_policy("per_learner_spend")
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=400, times=1)
    learner = upstream.learner["lms_user_id"]
    results = run_concurrently(lambda policy: redeem_policy(policy=policy, lms_user_id=learner,
                                                            content_key=upstream.run), [(first,), (second,)])
    assert [r.succeeded for r in results].count(True) == 1
    assert len(learner_charges(upstream, (first, second), learner, upstream.run)) == 1


def test_fifty_repeats_of_one_redemption_make_one_transaction(upstream):
    policy = build_world_policy()
    learner = upstream.learner["lms_user_id"]
    results = run_concurrently(lambda _: redeem_policy(policy=policy, lms_user_id=learner, content_key=upstream.run),
                               [(n,) for n in range(20)])
    assert all(r.succeeded or r.code == CODE_REDEMPTION_IN_PROGRESS for r in results), {(r.outcome, r.reason, r.code) for r in results}
    assert len({r.transaction["uuid"] for r in results if r.succeeded}) == 1
    assert len(ledger(upstream, policy)) == 1
    assert RedemptionAttempt.objects.filter(policy_uuid=policy.uuid).count() == 20
    assert not SpendReservation.objects.filter(state__in=["reserved", "sent", "uncertain"]).exists()
    assert_money_invariants(upstream, policy)


def test_a_busy_learner_and_content_is_a_429_with_retry_after(upstream, policy_world):
    policy = policy_world()
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=1000, times=1)
    body = {"lms_user_id": upstream.learner["lms_user_id"], "content_key": upstream.run}
    responses = run_concurrently(
        lambda _: learner_client(upstream.learner["lms_user_id"]).post(redeem_url(policy.uuid), body, format="json"),
        [(0,), (1,)])
    assert sorted(r.status_code for r in responses) in ([200, 200], [200, 429])
    busy = [r for r in responses if r.status_code == 429]
    for response in busy:
        assert response.json()["code"] == "redemption_in_progress" and int(response["Retry-After"]) > 0
    assert len(ledger(upstream, policy)) == 1


# ----- the price the subsidy will charge ---------------------------------------------------------------------

def test_an_assignment_priced_zero_counts_the_catalog_price_the_subsidy_will_charge(upstream):
    policy = build_world_policy("assigned", spend_limit=upstream.price - 1)
    AssignmentFactory(assignment_configuration=policy.assignment_configuration, content_key=upstream.run,
                      lms_user_id=upstream.learner["lms_user_id"], learner_email=upstream.learner["email"],
                      content_quantity=0)
    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert result.reason == c.REASON_POLICY_SPEND_LIMIT_REACHED
    assert ledger(upstream, policy) == []


@pytest.mark.parametrize("price", [0, 1, 10_000_000])
def test_a_forced_assigned_redemption_at_a_price_the_subsidy_would_not_charge_is_refused(upstream, price):
    policy = build_world_policy("assigned")
    record = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.run,
                                     lms_user_id=upstream.learner["lms_user_id"], content_price_cents=price)
    result = force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    assert result.reason == c.REASON_ASSIGNMENT_PRICE_INVALID
    assert not policy.assignment_configuration.assignments.exists()  # nothing allocated, nothing set aside
    assert ledger(upstream, policy) == []


def test_a_forced_record_of_a_catalog_priced_policy_shows_what_was_charged(upstream):
    policy = build_world_policy()
    record = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.past_deadline_run,
                                     lms_user_id=upstream.learner["lms_user_id"], content_price_cents=100)
    result = force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    assert result.succeeded
    assert record.content_price_cents == -ledger(upstream, policy)[0]["quantity"] == upstream.prices[
        upstream.past_deadline_run]


# ----- only a committed transaction is a success --------------------------------------------------------------

def test_a_2xx_carrying_a_failed_transaction_is_a_refusal_and_the_forced_record_stays_unredeemed(upstream):
    policy = build_world_policy()
    failed = {"uuid": str(uuid4()), "state": "failed", "lms_user_id": upstream.learner["lms_user_id"],
              "content_key": upstream.run, "quantity": -upstream.price, "subsidy_access_policy_uuid": str(policy.uuid),
              "idempotency_key": "whatever", "fulfillment_identifier": None, "reversal": None, "metadata": {}}
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=201, body=failed)
    record = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.run,
                                     lms_user_id=upstream.learner["lms_user_id"])
    result = force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    assert (result.outcome, result.code) == (AttemptOutcome.SUBSIDY_REFUSED, CODE_TRANSACTION_NOT_COMMITTED)
    assert record.redeemed_at is None and record.transaction_uuid is None and record.state == "errored"
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.RELEASED

    response = learner_client(upstream.learner["lms_user_id"]).post(
        redeem_url(policy.uuid), {"lms_user_id": upstream.learner["lms_user_id"], "content_key": upstream.run},
        format="json")
    assert response.status_code == 422, response.content


# ----- what a learner may ask for ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", c.CONTROL_METADATA_KEYS)
def test_learners_cannot_set_the_keys_that_steer_the_subsidy(upstream, key):
    policy = build_world_policy()
    response = learner_client(upstream.learner["lms_user_id"]).post(
        redeem_url(policy.uuid), {"lms_user_id": upstream.learner["lms_user_id"], "content_key":
                                  upstream.past_deadline_run, "metadata": {key: True}}, format="json")
    assert response.status_code == 400, response.content
    assert key in str(response.json()["metadata"])
    assert not [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]
    assert not upstream.control.enrollments()


def test_a_closed_run_stays_closed_for_a_learner(upstream):
    policy = build_world_policy()
    response = learner_client(upstream.learner["lms_user_id"]).post(
        redeem_url(policy.uuid), {"lms_user_id": upstream.learner["lms_user_id"],
                                  "content_key": upstream.past_deadline_run}, format="json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["reason"] == c.REASON_BEYOND_ENROLLMENT_DEADLINE


# ----- a policy frozen while a redemption is in flight ---------------------------------------------------------

def test_freezing_a_policy_mid_request_stops_the_redemption_before_any_spend(upstream):
    policy = build_world_policy()
    # Hold the run in its spend reading, after eligibility, then freeze the policy through the API.
    upstream.control.add_fault("subsidy", method="GET", path=CREATE, status=None, delay_ms=800, times=1)
    thread, results = redeem_in_background(policy, upstream.learner["lms_user_id"], upstream.run)
    time.sleep(0.3)
    frozen = operator_client().patch(f"/api/v1/subsidy-access-policies/{policy.uuid}/",
                                     {"active": False, "spend_limit": 0}, format="json")
    assert frozen.status_code == 200, frozen.content
    thread.join(10)
    assert (results["run"].outcome, results["run"].reason) == (AttemptOutcome.NOT_REDEEMABLE,
                                                               c.REASON_POLICY_EXPIRED)
    assert ledger(upstream, policy) == []
    assert not [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]


# ----- a run that dies -----------------------------------------------------------------------------------------

class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in the workflow catches it, nothing after it runs."""


def test_a_crash_after_the_create_is_settled_by_reconciliation(upstream, monkeypatch):
    policy = build_world_policy("assigned")
    assignment = AssignmentFactory(assignment_configuration=policy.assignment_configuration, content_key=upstream.run,
                                   lms_user_id=upstream.learner["lms_user_id"],
                                   learner_email=upstream.learner["email"], content_quantity=-upstream.price)
    real_create = type(policy).create_transaction

    def create_then_die(self, **kwargs):
        real_create(self, **kwargs)
        raise _Killed()

    monkeypatch.setattr(type(policy), "create_transaction", create_then_die)
    with pytest.raises(_Killed):
        redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    monkeypatch.undo()

    attempt = RedemptionAttempt.objects.get(policy_uuid=policy.uuid)
    assert attempt.outcome == AttemptOutcome.IN_PROGRESS
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ALLOCATED
    reservation = SpendReservation.objects.get(policy=policy)
    assert reservation.state == ReservationState.SENT

    # The ledger holds a committed transaction with the run's key: that is final, so even a pass inside the
    # takeover window settles the money, once, and accepts the assignment...
    summary = reconcile()
    assert (summary["reservations_committed"], summary["reservations_still_open"]) == (1, 0)
    tx = ledger(upstream, policy)[0]
    assignment.refresh_from_db()
    assert (assignment.state, str(assignment.transaction_uuid)) == (AssignmentState.ACCEPTED, tx["uuid"])
    # ...but leaves the attempt to its run, which might still be going; once the run is surely gone, a pass
    # finishes it from the settled reservation.
    attempt.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.IN_PROGRESS
    assert settle_everything()["attempts_finished"] == 1
    attempt.refresh_from_db()
    assignment.refresh_from_db()
    reservation.refresh_from_db()
    assert (attempt.outcome, str(attempt.transaction_uuid)) == (AttemptOutcome.REDEEMED, tx["uuid"])
    assert (assignment.state, str(assignment.transaction_uuid)) == (AssignmentState.ACCEPTED, tx["uuid"])
    assert reservation.state == ReservationState.COMMITTED
    assert settle_everything()["reservations_examined"] == 0  # idempotent
    assert_money_invariants(upstream, policy)


def test_a_crash_before_the_create_is_released_and_the_attempt_says_nothing_was_charged(upstream, monkeypatch):
    policy = build_world_policy()
    record = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.run,
                                     lms_user_id=upstream.learner["lms_user_id"])

    def die(*args, **kwargs):
        raise _Killed()

    monkeypatch.setattr(redemption, "_send_create", die)
    with pytest.raises(_Killed):
        force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    monkeypatch.undo()
    record.refresh_from_db()
    assert record.state == "running"  # its claim is left behind, inputs frozen

    summary = settle_everything()
    assert (summary["reservations_released"], summary["reservations_still_open"]) == (1, 0)
    record.refresh_from_db()
    assert record.run_started_at is None and record.redeemed_at is None and record.errored_at is not None
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.outcome == AttemptOutcome.UPSTREAM_UNAVAILABLE and "nothing was charged" in attempt.error_message
    assert ledger(upstream, policy) == []
    # The record can be forced again, and redeems.
    assert force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True)).succeeded


def test_the_reconcile_command_prints_its_summary_and_is_safe_to_run_twice_at_once(upstream, settings, capsys):
    policy = build_world_policy()
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=0, phase="after", times=1)
    redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    summaries = run_concurrently(lambda _: reconcile(takeover_seconds=0), [(0,), (1,)])
    assert sum(s["reservations_committed"] for s in summaries) == 1
    assert sum(s["attempts_finished"] for s in summaries) <= 1
    call_command("reconcile_redemptions", "--takeover-after", "0")
    out = capsys.readouterr().out
    assert "reservations_examined: 0" in out and "reservations_still_open: 0" in out
    attempt = RedemptionAttempt.objects.get(policy_uuid=policy.uuid)
    assert attempt.outcome == AttemptOutcome.REDEEMED
    assert_money_invariants(upstream, policy)


def test_a_reservation_settled_after_a_pass_listed_it_is_not_counted_again(upstream, settings):
    # Two passes list the same open reservation; the first settles it before the second reads it. The second must
    # report it as settled elsewhere, not as one more commitment (seen on MariaDB: two passes summed to 2).
    policy = build_world_policy()
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=0, phase="after", times=1)
    redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    listed = SpendReservation.objects.get(policy=policy)
    assert listed.state == ReservationState.UNCERTAIN
    assert settle_everything()["reservations_committed"] == 1
    from enterprise_access.apps.subsidy_access_policy.reconciliation import reconcile_reservation
    assert reconcile_reservation(listed, takeover_seconds=0) == "already_settled"
    assert_money_invariants(upstream, policy)


def test_a_young_reservation_the_ledger_does_not_know_is_left_counted(upstream, settings):
    """Not found on the ledger, but its run may still be sending: only after the takeover delay is it released."""
    policy = build_world_policy(spend_limit=upstream.price)
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=0)  # dropped before it was processed
    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert result.outcome == AttemptOutcome.UNCERTAIN
    upstream.control.clear_faults()
    assert reconcile()["reservations_open"] == 1
    blocked = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=upstream.run)
    assert blocked.code == c.REASON_SPEND_PENDING  # still counted, and said to be temporary
    assert settle_everything()["reservations_released"] == 1
    attempt = RedemptionAttempt.objects.get(uuid=result.attempt_uuid)
    assert "no transaction exists" in attempt.error_message and attempt.reconciled_at is not None
    assert redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"],
                         content_key=upstream.run).succeeded


def test_the_learner_asking_again_after_a_lost_answer_resends_the_same_key(upstream, settings):
    policy = build_world_policy()
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=0, times=1)  # never processed
    first = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert first.outcome == AttemptOutcome.UNCERTAIN
    again = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert again.succeeded
    reservation = SpendReservation.objects.get(policy=policy)
    assert reservation.state == ReservationState.COMMITTED
    assert RedemptionAttempt.objects.get(uuid=again.attempt_uuid).idempotency_key == reservation.idempotency_key
    settle_everything()
    assert_money_invariants(upstream, policy)


# ----- one policy never slows another; connections are pooled ----------------------------------------------------

def test_a_slow_redemption_on_one_policy_holds_nothing_another_policy_needs(upstream):
    busy = build_world_policy()
    idle = build_world_policy("per_learner_spend")
    upstream.control.add_fault("subsidy", method="POST", path=f"{busy.subsidy_uuid}{CREATE}", status=None,
                               delay_ms=1500, times=1)
    order = []

    def slow():
        redeem_policy(policy=busy, lms_user_id=upstream.learners[0]["lms_user_id"], content_key=upstream.run)
        order.append("busy")

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 10
    while not SpendReservation.objects.filter(policy=busy, state=ReservationState.SENT).exists():
        assert time.monotonic() < deadline, "the busy run never sent its create"
        time.sleep(0.02)
    assert redeem_policy(policy=idle, lms_user_id=upstream.learners[1]["lms_user_id"],
                         content_key=upstream.runs[1]).succeeded
    order.append("idle")
    thread.join(10)
    assert order == ["idle", "busy"]


def test_warm_redemptions_open_no_new_upstream_connections(upstream):
    policy = build_world_policy()
    redeem_policy(policy=policy, lms_user_id=upstream.learners[0]["lms_user_id"], content_key=upstream.runs[0])
    upstream.control.clear_stats()
    for learner in upstream.learners[1:]:
        assert redeem_policy(policy=policy, lms_user_id=learner["lms_user_id"],
                             content_key=upstream.runs[0]).succeeded
    stats = upstream.control.stats()
    assert stats["requests"] >= 2 * 4 and stats["connections_opened"] == 0, stats


def test_attempt_rows_keep_metadata_keys_and_mask_learner_details(upstream):
    policy = build_world_policy()
    result = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run,
                           metadata={"geag_email": "pat@demo-co.example", "geag_first_name": "Pat"})
    attempt = RedemptionAttempt.objects.get(uuid=result.attempt_uuid)
    assert attempt.request_metadata == {"geag_email": "***", "geag_first_name": "***"}
    assert attempt.idempotency_key.startswith(f"ledger-for-subsidy-{policy.subsidy_uuid}-")
    assert timezone.now() >= attempt.finished_at


# ----- found by a hostile review (each reproduced an error in the first version of the spend guard) -------------

def test_a_failed_key_is_not_released_while_a_late_try_may_still_commit_it(upstream, settings):
    """
    Try 1 times out and waits at the subsidy; try 2 fails enrollment, leaving a FAILED transaction with the key.
    Releasing the reservation then let the policy overspend when try 1 arrived, drove the failed row again and
    committed it. The failed key stays counted until the takeover delay.
    """
    run = upstream.runs[0]
    policy = build_world_policy(spend_limit=2 * upstream.prices[run])
    settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
    settings.SUBSIDY_CREATE_RETRIES = 1
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=2000, times=1)
    upstream.control.add_fault("lms", method="POST", path="enroll_learners_in_courses", status=500, times=1,
                               internal=True)
    first = redeem_policy(policy=policy, lms_user_id=upstream.learners[0]["lms_user_id"], content_key=run)
    assert first.outcome == AttemptOutcome.UNCERTAIN
    assert [tx["state"] for tx in upstream.control.transactions(policy.subsidy_uuid)
            if tx.get("lms_user_id") == upstream.learners[0]["lms_user_id"]] == ["failed"]

    assert reconcile()["reservations_open"] == 1  # the failed key could still commit: kept
    second = redeem_policy(policy=policy, lms_user_id=upstream.learners[1]["lms_user_id"], content_key=run)
    third = redeem_policy(policy=policy, lms_user_id=upstream.learners[2]["lms_user_id"], content_key=run)
    assert second.succeeded
    assert (third.outcome, third.code) == (AttemptOutcome.POLICY_BUSY, c.REASON_SPEND_PENDING)

    rows = wait_for_ledger(upstream, policy, 2)  # try 1 lands: the failed row is driven again, and commits
    time.sleep(0.3)
    assert len(rows) == 2 and spent(upstream, policy) <= 2 * upstream.prices[run]
    reconcile()
    attempt = RedemptionAttempt.objects.get(uuid=first.attempt_uuid)
    assert attempt.outcome == AttemptOutcome.REDEEMED  # its run ended: reconciliation finishes it
    assert_money_invariants(upstream, policy, limit=2 * upstream.prices[run])


def test_a_run_whose_reservation_reconciliation_committed_answers_with_the_transaction(upstream, settings):
    """Try 1 wrote and answered 503, try 2 waits; reconciliation commits the reservation meanwhile. Try 3 must not
    tell the learner '503, nothing was charged'."""
    policy = build_world_policy()
    settings.UPSTREAM_READ_TIMEOUT = 1.0
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=503, phase="after", times=1)
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=None, delay_ms=2500, times=1)
    thread, results = redeem_in_background(policy, upstream.learner["lms_user_id"], upstream.run)
    assert wait_for_ledger(upstream, policy, 1)
    assert reconcile()["reservations_committed"] == 1
    thread.join(15)
    result = results["run"]
    assert result.succeeded, (result.outcome, result.code, result.error_message)
    assert result.transaction["uuid"] == ledger(upstream, policy)[0]["uuid"]
    attempt = RedemptionAttempt.objects.get(uuid=result.attempt_uuid)
    assert (attempt.outcome, str(attempt.transaction_uuid)) == (AttemptOutcome.REDEEMED, result.transaction["uuid"])
    time.sleep(2.5)  # try 2 lands late: the same transaction
    assert_money_invariants(upstream, policy)


def test_every_run_that_shared_a_key_is_finished_by_reconciliation(upstream, settings):
    """Run 2 adopts run 1's uncertain reservation; both attempts end uncertain; both are finished, errors cleared."""
    policy = build_world_policy()
    tries = settings.SUBSIDY_CREATE_RETRIES + 1
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=503, times=2 * tries)
    first = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    second = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert first.outcome == second.outcome == AttemptOutcome.UNCERTAIN
    third = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert third.succeeded
    settle_everything()
    for result in (first, second):
        attempt = RedemptionAttempt.objects.get(uuid=result.attempt_uuid)
        assert (attempt.outcome, str(attempt.transaction_uuid)) == (AttemptOutcome.REDEEMED,
                                                                    third.transaction["uuid"])
        assert attempt.error_code == "" and attempt.error_status is None
    assert_money_invariants(upstream, policy)


def test_a_forced_allocation_the_limit_cannot_hold_is_refused_and_a_failed_one_is_given_back(upstream):
    policy = build_world_policy("assigned", spend_limit=upstream.price)
    other = AssignmentFactory(assignment_configuration=policy.assignment_configuration, content_key=upstream.runs[1],
                              lms_user_id=upstream.learners[1]["lms_user_id"],
                              learner_email=upstream.learners[1]["email"], content_quantity=-upstream.prices[
                                  upstream.runs[1]])
    record = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.run,
                                     lms_user_id=upstream.learner["lms_user_id"], content_price_cents=upstream.price)
    result = force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    assert result.reason == c.REASON_POLICY_SPEND_LIMIT_REACHED
    assert list(policy.assignment_configuration.assignments.all()) == [other]  # nothing over-allocated

    other.delete()
    upstream.control.add_fault("subsidy", method="POST", path=CREATE, status=422,
                               body={"detail": "Enrollment failed.", "code": "enrollment_error"})
    refused = force_redemption(forced_redemption=record, acting_user=UserFactory(is_staff=True))
    assert refused.outcome == AttemptOutcome.SUBSIDY_REFUSED
    made = policy.assignment_configuration.assignments.get()
    assert made.state == AssignmentState.CANCELLED  # the money this run set aside is free again


def test_a_course_key_and_its_run_key_charge_once(upstream):
    course_key = upstream.run.split(":", 1)[1].rsplit("+", 1)[0]  # course-v1:Org+Num+Run -> Org+Num
    policy = build_world_policy()
    by_course = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=course_key)
    by_run = redeem_policy(policy=policy, lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run)
    assert by_course.succeeded and by_run.succeeded and by_run.already_redeemed
    assert by_course.transaction["uuid"] == by_run.transaction["uuid"]
    assert len(ledger(upstream, policy)) == 1
    assert RedemptionAttempt.objects.get(uuid=by_course.attempt_uuid).content_key == course_key  # as asked


def test_a_deadlock_is_answered_by_running_the_transaction_again():
    from django.db import OperationalError

    from enterprise_access.apps.core.databases import retry_transient_conflicts

    calls = []

    def deadlocks_once():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
        return "done"

    assert retry_transient_conflicts(deadlocks_once) == "done" and len(calls) == 2
    with pytest.raises(OperationalError):
        retry_transient_conflicts(lambda: (_ for _ in ()).throw(OperationalError(2006, "MySQL server has gone away")))


def test_reconcile_can_run_as_a_loop_and_refuses_bad_options(upstream, capsys):
    call_command("reconcile_redemptions", "--every", "0.05", "--passes", "3", "--json")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 3
    from django.core.management.base import CommandError

    for bad in (["--every", "0"], ["--takeover-after", "-1"], ["--passes", "2"]):
        with pytest.raises(CommandError):
            call_command("reconcile_redemptions", *bad)


def test_a_forced_record_claimed_by_a_run_that_died_before_reserving_is_released(upstream):
    from enterprise_access.apps.subsidy_access_policy.forcing import _claim

    record = ForcedRedemptionFactory(subsidy_access_policy=build_world_policy(), course_run_key=upstream.run,
                                     lms_user_id=upstream.learner["lms_user_id"])
    assert _claim(record.uuid)  # the claim as a run takes it, on the database's clock; then the run dies
    assert reconcile()["forced_records_released"] == 0  # young: its run may be going
    assert settle_everything()["forced_records_released"] == 1
    record.refresh_from_db()
    assert record.run_started_at is None and record.state == "errored"
