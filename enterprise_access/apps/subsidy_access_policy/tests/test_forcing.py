"""
force_redemption: one forced run through the redemption workflow, its outcome stored on the record, and a
record that redeems at most once whatever staff do (save twice, run the action twice, force it together).
"""

import pytest
from django.utils import timezone

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.forcing import (
    CODE_FORCING_IN_PROGRESS,
    CODE_FORCING_INPUTS_CHANGED,
    force_redemption,
    inputs_of,
)
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptOutcome,
    AttemptSource,
    PerLearnerEnrollmentCreditAccessPolicy,
    RedemptionAttempt,
)
from enterprise_access.apps.subsidy_access_policy.redemption import (
    CODE_ASSIGNMENT_ERROR,
    CODE_LEARNER_EMAIL_NOT_FOUND,
    CODE_REDEMPTION_IN_PROGRESS,
)
from enterprise_access.devtools.testing import build_world_policy, run_concurrently

from .factories import (
    ForcedRedemptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])


def record_for(upstream, policy=None, *, run=None, learner=None, price=None):
    """A waiting record; assigned policies get the run's catalog price unless told otherwise, others none."""
    run = run or upstream.run
    policy = policy or build_world_policy()
    if price is None and policy.assignment_configuration_id:
        price = upstream.prices[run]
    return ForcedRedemptionFactory(
        subsidy_access_policy=policy,
        lms_user_id=learner if learner is not None else upstream.learner["lms_user_id"],
        course_run_key=run,
        content_price_cents=price,
    )


def subsidy_creates(upstream):
    return [r for r in upstream.control.requests(service="subsidy")
            if r["method"] == "POST" and "transactions" in r["path"]]


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def test_success_stores_the_transaction_and_writes_a_forced_attempt(upstream, staff):
    record = record_for(upstream)
    result = force_redemption(forced_redemption=record, acting_user=staff)

    assert result.succeeded and not result.already_redeemed
    assert record.state == "redeemed" and record.redeemed_at is not None
    assert str(record.transaction_uuid) == result.transaction["uuid"]
    assert record.errored_at is None and record.error_message == "" and record.error_code == ""
    assert record.modified_by == staff
    assert result.transaction["metadata"][c.METADATA_ALLOW_LATE_ENROLLMENT] is True
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.source == AttemptSource.FORCED_REDEMPTION and attempt.acting_user_id == staff.pk
    assert attempt.outcome == AttemptOutcome.REDEEMED and str(attempt.transaction_uuid) == str(record.transaction_uuid)
    assert attempt.request_metadata == {c.METADATA_ALLOW_LATE_ENROLLMENT: True}
    assert record.history.count() >= 2  # written, then its outcome


def test_past_deadline_run_redeems_when_forced(upstream, staff):
    record = record_for(upstream, run=upstream.past_deadline_run)
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.succeeded, record.error_message
    assert result.transaction["metadata"][c.METADATA_ALLOW_LATE_ENROLLMENT] is True


@pytest.mark.parametrize("case", ["not_in_catalog", "unlinked", "inactive", "spend_limit", "learner_spend"])
def test_refusals_are_stored_with_their_reason(upstream, staff, case):
    kwargs, policy = {}, None
    if case == "not_in_catalog":
        kwargs, reason = {"run": upstream.not_in_catalog_run}, c.REASON_CONTENT_NOT_IN_CATALOG
    elif case == "unlinked":
        kwargs, reason = {"learner": upstream.unlinked_learner["lms_user_id"]}, c.REASON_LEARNER_NOT_IN_ENTERPRISE
    elif case == "inactive":
        policy, reason = build_world_policy(active=False), c.REASON_POLICY_EXPIRED
    elif case == "spend_limit":
        policy, reason = build_world_policy(spend_limit=100), c.REASON_POLICY_SPEND_LIMIT_REACHED
    else:
        policy = build_world_policy("per_learner_spend", per_learner_spend_limit=100)
        reason = c.REASON_LEARNER_MAX_SPEND_REACHED
    record = record_for(upstream, policy, **kwargs)

    result = force_redemption(forced_redemption=record, acting_user=staff)

    assert (result.outcome, result.reason) == (AttemptOutcome.NOT_REDEEMABLE, reason)
    assert record.state == "errored" and record.redeemed_at is None and record.transaction_uuid is None
    assert record.error_reason == reason and record.error_code == AttemptOutcome.NOT_REDEEMABLE
    assert record.error_message.startswith(reason) and "{contact" not in record.error_message
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.NOT_REDEEMABLE, reason)
    assert not subsidy_creates(upstream)


def test_subsidy_refusal_keeps_the_upstream_error(upstream, staff):
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=422,
                               body='{"detail": "Enrollment failed upstream.", "code": "enrollment_error"}')
    record = record_for(upstream)
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.outcome == AttemptOutcome.SUBSIDY_REFUSED
    assert record.state == "errored"
    assert (record.error_status, record.error_code) == (422, "enrollment_error")
    assert "Enrollment failed upstream." in record.error_message
    assert record.error_payload == {"detail": "Enrollment failed upstream.", "code": "enrollment_error"}
    assert RedemptionAttempt.objects.get(forced_redemption=record).outcome == AttemptOutcome.SUBSIDY_REFUSED


def test_subsidy_5xx_past_its_retries_is_uncertain_then_forcing_again_succeeds_and_clears_it(upstream, staff,
                                                                                                settings):
    # A 5xx after the request was sent may follow a write: the run cannot call it a refusal.
    tries = settings.SUBSIDY_CREATE_RETRIES + 1
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=503, times=tries)
    record = record_for(upstream)
    first = force_redemption(forced_redemption=record, acting_user=staff)
    assert first.outcome == AttemptOutcome.UNCERTAIN
    assert record.state == "errored" and record.error_status == 503
    assert "forcing again is safe" in record.error_message

    second = force_redemption(forced_redemption=record, acting_user=staff)
    assert second.succeeded
    assert record.state == "redeemed" and record.errored_at is None
    assert (record.error_status, record.error_code, record.error_message, record.error_payload) == (None, "", "", None)
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 2


def test_exec_ed_without_the_learners_details_is_refused_before_the_subsidy_call(upstream, staff):
    record = record_for(upstream, run=upstream.exec_ed_run)
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert (result.outcome, result.reason) == (AttemptOutcome.NOT_REDEEMABLE, c.REASON_EXEC_ED_DETAILS_MISSING)
    assert record.error_reason == c.REASON_EXEC_ED_DETAILS_MISSING
    assert "geag_first_name" in record.error_message
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert (attempt.outcome, attempt.reason, attempt.can_redeem) == (
        AttemptOutcome.NOT_REDEEMABLE, c.REASON_EXEC_ED_DETAILS_MISSING, False)
    assert not subsidy_creates(upstream)


EXEC_ED_DETAILS = {"geag_first_name": "Pat", "geag_last_name": "Lee", "geag_email": "pat@demo-co.example",
                   "geag_date_of_birth": "1990-04-01", "geag_terms_accepted_at": "2026-11-01T10:00:00Z"}


def test_exec_ed_with_the_learners_details_redeems_and_keeps_them_off_the_record(upstream, staff):
    record = record_for(upstream, run=upstream.exec_ed_run)
    result = force_redemption(forced_redemption=record, acting_user=staff, metadata=EXEC_ED_DETAILS)
    assert result.succeeded, record.error_message
    # They travelled to the subsidy service...
    assert {k: result.transaction["metadata"][k] for k in EXEC_ED_DETAILS} == EXEC_ED_DETAILS
    assert result.transaction["external_reference"]
    # ...and are kept nowhere here: not on the record or its history, masked on the attempt.
    stored = [str(row.__dict__) for row in record.history.all()] + [str(record.__dict__)]
    assert not any("pat@demo-co.example" in text or "1990-04-01" in text for text in stored)
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.request_metadata == {**{k: "***" for k in EXEC_ED_DETAILS}, c.METADATA_ALLOW_LATE_ENROLLMENT: True}


def test_assigned_policy_allocates_then_redeems_at_the_given_price(upstream, staff):
    policy = build_world_policy("assigned")
    learner = upstream.learners[2]
    record = record_for(upstream, policy, learner=learner["lms_user_id"], price=18900)
    result = force_redemption(forced_redemption=record, acting_user=staff)

    assert result.succeeded, record.error_message
    assignment = LearnerContentAssignment.objects.get(assignment_configuration=policy.assignment_configuration)
    assert assignment.learner_email == learner["email"] and assignment.lms_user_id == learner["lms_user_id"]
    assert assignment.content_key == upstream.run and assignment.content_quantity == -18900
    assert assignment.state == AssignmentState.ACCEPTED
    assert str(assignment.transaction_uuid) == str(record.transaction_uuid)
    assert int(result.transaction["quantity"]) == -18900
    assert RedemptionAttempt.objects.get(forced_redemption=record).assignment_id == assignment.uuid


def test_assigned_policy_without_an_lms_learner_makes_no_assignment(upstream, staff):
    policy = build_world_policy("assigned")
    record = record_for(upstream, policy, learner=upstream.unlinked_learner["lms_user_id"])
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.reason == c.REASON_LEARNER_NOT_IN_ENTERPRISE
    assert record.error_reason == c.REASON_LEARNER_NOT_IN_ENTERPRISE
    assert record.error_code == CODE_LEARNER_EMAIL_NOT_FOUND
    assert not LearnerContentAssignment.objects.exists()


def test_assigned_policy_with_an_inactive_configuration_reports_the_assignment_error(upstream, staff):
    policy = build_world_policy("assigned")
    policy.assignment_configuration.active = False
    policy.assignment_configuration.save()
    record = record_for(upstream, policy)
    force_redemption(forced_redemption=record, acting_user=staff)
    assert record.error_code == CODE_ASSIGNMENT_ERROR and "inactive" in record.error_message


def test_a_redeemed_record_is_never_run_again(upstream, staff):
    record = record_for(upstream)
    first = force_redemption(forced_redemption=record, acting_user=staff)
    redeemed_at = record.redeemed_at
    second = force_redemption(forced_redemption=record, acting_user=staff)  # double submit, or the action twice

    assert second.succeeded and second.already_redeemed
    assert second.transaction["uuid"] == first.transaction["uuid"]
    record.refresh_from_db()
    assert record.redeemed_at == redeemed_at
    assert len(subsidy_creates(upstream)) == 1
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1


def _force_in_threads(records, staff):
    return run_concurrently(lambda record: force_redemption(forced_redemption=record, acting_user=staff),
                            [(record,) for record in records], timeout=30)


def test_two_staff_forcing_the_same_record_at_once_make_one_transaction(upstream, staff):
    record = record_for(upstream)
    # Each "staff member" holds their own copy of the record, as two admin requests would.
    copies = [type(record).objects.get(pk=record.pk) for _ in range(3)]
    results = _force_in_threads(copies, staff)

    assert len(results) == 3
    winners = [r for r in results if r.succeeded and not r.already_redeemed]
    assert len(winners) == 1
    # The others were told a forcing was running, or (arriving after it) that the record had redeemed.
    for other in results:
        if other is not winners[0]:
            assert (other.outcome, other.code) == (AttemptOutcome.POLICY_BUSY, CODE_FORCING_IN_PROGRESS) or (
                other.already_redeemed and other.transaction["uuid"] == winners[0].transaction["uuid"])
    assert len(subsidy_creates(upstream)) == 1
    assert len([t for t in upstream.control.transactions() if t["lms_user_id"] == record.lms_user_id]) == 1
    # Only the run that held the claim ran the workflow.
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1
    record.refresh_from_db()
    assert str(record.transaction_uuid) == winners[0].transaction["uuid"]


def test_two_records_for_the_same_redemption_still_make_one_transaction(upstream, staff):
    # Different records slip past the per-record claim; the reservation's claim on the learner and content catches
    # them: the second is told the redemption is in progress, or (if it comes after) finds it already redeemed.
    policy = build_world_policy()
    records = [record_for(upstream, policy) for _ in range(2)]
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=None,
                               delay_ms=300, times=1)  # keep the first one in flight
    results = _force_in_threads(records, staff)
    winners = [r for r in results if r.succeeded and not r.already_redeemed]
    assert len(winners) == 1
    other = next(r for r in results if r is not winners[0])
    assert (other.outcome, other.code) == (AttemptOutcome.POLICY_BUSY, CODE_REDEMPTION_IN_PROGRESS) or (
        other.already_redeemed and other.transaction["uuid"] == winners[0].transaction["uuid"])
    assert len(subsidy_creates(upstream)) == 1
    committed = [tx for tx in upstream.control.transactions(subsidy_uuid=upstream.subsidy_uuid)
                 if tx.get("lms_user_id") == records[0].lms_user_id and tx["state"] == "committed"]
    assert len(committed) == 1


def test_a_forcing_in_progress_elsewhere_is_reported_and_nothing_is_stored(upstream, staff):
    record = record_for(upstream)
    type(record).objects.filter(pk=record.pk).update(run_started_at=timezone.now())  # another run holds it
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.outcome == AttemptOutcome.POLICY_BUSY and result.code == CODE_FORCING_IN_PROGRESS
    assert record.state == "running" and record.errored_at is None
    assert not RedemptionAttempt.objects.filter(forced_redemption=record).exists()


def test_an_unexpected_error_stores_its_traceback(upstream, staff, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(PerLearnerEnrollmentCreditAccessPolicy, "check_eligibility", broken)
    record = record_for(upstream)
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.outcome == AttemptOutcome.UNEXPECTED_ERROR
    assert record.state == "errored" and "ZeroDivisionError" in record.traceback
    assert record.error_code == AttemptOutcome.UNEXPECTED_ERROR


def test_a_run_starts_only_for_the_inputs_that_were_confirmed(upstream, staff):
    record = record_for(upstream)
    confirmed = inputs_of(record)
    type(record).objects.filter(pk=record.pk).update(lms_user_id=upstream.learners[2]["lms_user_id"])
    result = force_redemption(forced_redemption=record, acting_user=staff, confirmed_inputs=confirmed)
    assert (result.outcome, result.code) == (AttemptOutcome.POLICY_BUSY, CODE_FORCING_INPUTS_CHANGED)
    assert record.state == "waiting" and record.errored_at is None and record.run_started_at is None
    assert not subsidy_creates(upstream) and not RedemptionAttempt.objects.exists()

    again = force_redemption(forced_redemption=record, acting_user=staff, confirmed_inputs=inputs_of(record))
    assert again.succeeded and record.lms_user_id == upstream.learners[2]["lms_user_id"]
