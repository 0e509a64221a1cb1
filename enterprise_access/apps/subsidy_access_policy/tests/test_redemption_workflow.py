"""
The one workflow and its audit row: exactly one RedemptionAttempt per run, for every outcome, written on its
own connection so the caller's rollback cannot erase it.
"""

import pytest
from django.db import transaction

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.apps.subsidy_access_policy.redemption import AttemptRecordStats, redeem_policy
from enterprise_access.devtools.testing import build_world_policy, run_concurrently

from .factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])


def run(policy, lms_user_id, content_key, **kwargs):
    return redeem_policy(policy=policy, lms_user_id=lms_user_id, content_key=content_key,
                         source=kwargs.pop("source", AttemptSource.LEARNER_REDEEM_API), **kwargs)


def redeem_at_once(policy, lms_user_ids, content_key):
    """Run the workflow for each learner in its own thread, all at once; the results in learner order."""
    return run_concurrently(lambda lms_user_id: run(policy, lms_user_id, content_key),
                            [(lms_user_id,) for lms_user_id in lms_user_ids])


def only_attempt(policy):
    rows = list(RedemptionAttempt.objects.filter(policy_uuid=policy.uuid))
    assert len(rows) == 1, rows
    return rows[0]


def test_redeemed(upstream):
    policy = build_world_policy()
    user = UserFactory(lms_user_id=upstream.learner["lms_user_id"])
    result = run(policy, upstream.learner["lms_user_id"], upstream.run, acting_user=user, request_id="req-1",
                 metadata={"geag_first_name": "Pat"})
    assert result.outcome == AttemptOutcome.REDEEMED and result.transaction["state"] == "committed"
    attempt = only_attempt(policy)
    assert attempt.outcome == AttemptOutcome.REDEEMED
    assert attempt.can_redeem is True and attempt.reason == ""
    assert str(attempt.transaction_uuid) == result.transaction["uuid"]
    assert attempt.transaction_state == "committed"
    assert attempt.fulfillment_identifier == result.transaction["fulfillment_identifier"]
    assert attempt.external_references == []
    assert attempt.content_price == upstream.price
    assert attempt.acting_user_id == user.pk and attempt.request_id == "req-1"
    assert attempt.source == AttemptSource.LEARNER_REDEEM_API
    # The keys as sent; the learner's details masked.
    assert attempt.request_metadata == {"geag_first_name": "***"}
    assert str(attempt.enterprise_customer_uuid) == str(policy.enterprise_customer_uuid)
    assert attempt.policy_history.spend_limit == policy.spend_limit
    assert attempt.finished_at >= attempt.started_at
    assert attempt.can_redeem_ms is not None and attempt.subsidy_call_ms is not None


def test_repeat_returns_the_same_transaction_and_says_so(upstream):
    policy = build_world_policy()
    first = run(policy, upstream.learner["lms_user_id"], upstream.run)
    second = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert second.outcome == AttemptOutcome.REDEEMED and second.already_redeemed
    assert second.transaction["uuid"] == first.transaction["uuid"]
    creates = [r for r in upstream.control.requests() if r["method"] == "POST" and r["service"] == "subsidy"]
    assert len(creates) == 1
    assert RedemptionAttempt.objects.filter(policy_uuid=policy.uuid, already_redeemed=True).count() == 1


def test_not_redeemable(upstream):
    policy = build_world_policy()
    result = run(policy, upstream.learner["lms_user_id"], upstream.not_in_catalog_run)
    assert (result.outcome, result.reason) == (AttemptOutcome.NOT_REDEEMABLE, c.REASON_CONTENT_NOT_IN_CATALOG)
    attempt = only_attempt(policy)
    assert (attempt.outcome, attempt.can_redeem, attempt.reason) == (
        AttemptOutcome.NOT_REDEEMABLE, False, c.REASON_CONTENT_NOT_IN_CATALOG)
    assert attempt.subsidy_call_ms is None and attempt.transaction_uuid is None


def test_subsidy_refused(upstream):
    policy = build_world_policy()
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=422,
                               body='{"detail": "Enrollment failed upstream.", "code": "enrollment_error"}')
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.SUBSIDY_REFUSED
    attempt = only_attempt(policy)
    assert attempt.outcome == AttemptOutcome.SUBSIDY_REFUSED and attempt.can_redeem is True
    assert (attempt.error_status, attempt.error_code) == (422, "enrollment_error")
    assert "Enrollment failed upstream." in attempt.error_message
    assert attempt.error_payload == {"detail": "Enrollment failed upstream.", "code": "enrollment_error"}


def test_upstream_timeout(upstream, settings):
    settings.UPSTREAM_READ_TIMEOUT = 0.3
    policy = build_world_policy()
    upstream.control.add_fault(service="subsidy", method="GET", path="can_redeem", status=200, delay_ms=1500)
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.UPSTREAM_UNAVAILABLE
    attempt = only_attempt(policy)
    assert (attempt.outcome, attempt.error_code) == (AttemptOutcome.UPSTREAM_UNAVAILABLE, "timeout")
    assert attempt.can_redeem is None


def test_two_learners_racing_for_the_last_seat(upstream):
    """The second sees the first's reservation: the limits are checked where the reservation is written."""
    policy = build_world_policy(spend_limit=upstream.price + upstream.price // 2)
    results = redeem_at_once(policy, [lr["lms_user_id"] for lr in upstream.learners[:2]], upstream.run)
    winner = [r for r in results if r.outcome == AttemptOutcome.REDEEMED]
    loser = [r for r in results if r.outcome != AttemptOutcome.REDEEMED]
    assert len(winner) == len(loser) == 1
    # Refused for good once the winner committed; told to retry while the winner was still in flight.
    assert (loser[0].outcome, loser[0].reason) == (AttemptOutcome.NOT_REDEEMABLE, c.REASON_POLICY_SPEND_LIMIT_REACHED) \
        or (loser[0].outcome, loser[0].code) == (AttemptOutcome.POLICY_BUSY, c.REASON_SPEND_PENDING)


def test_subsidy_ledger_busy_is_retried_then_succeeds(upstream):
    policy = build_world_policy()
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=429, times=2,
                               body='{"detail": "Attempt to lock the Ledger failed, please try again."}')
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.REDEEMED
    assert only_attempt(policy).outcome == AttemptOutcome.REDEEMED


def test_subsidy_ledger_busy_for_good_is_policy_busy(upstream):
    policy = build_world_policy()
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=429,
                               body='{"detail": "Attempt to lock the Ledger failed, please try again."}')
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.POLICY_BUSY
    assert only_attempt(policy).error_status == 429


def test_exception_inside_the_workflow(upstream):
    policy = build_world_policy()

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    policy.check_eligibility = broken  # an instance attribute: a bug in this one policy object, not a patched module
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.UNEXPECTED_ERROR and "ZeroDivisionError" in result.traceback
    attempt = only_attempt(policy)
    assert attempt.outcome == AttemptOutcome.UNEXPECTED_ERROR
    assert "ZeroDivisionError: a bug" in attempt.error_message


def test_rows_survive_a_rollback_of_the_surrounding_transaction(upstream):
    policy = build_world_policy()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            result = run(policy, upstream.learner["lms_user_id"], upstream.run)
            raise RuntimeError("the caller's work fails after the redemption")
    assert result.outcome == AttemptOutcome.REDEEMED
    assert only_attempt(policy).outcome == AttemptOutcome.REDEEMED


def test_history_pointer_stays_on_the_policy_as_it_was(upstream):
    policy = build_world_policy(spend_limit=5_000_000)
    run(policy, upstream.learner["lms_user_id"], upstream.run)
    policy.spend_limit = 7_000_000
    policy.display_name = "renamed"
    policy.save()
    attempt = only_attempt(policy)
    assert attempt.policy_history.spend_limit == 5_000_000
    assert attempt.policy_history.display_name != "renamed"
    run(policy, upstream.learners[1]["lms_user_id"], upstream.run)
    newest = RedemptionAttempt.objects.filter(policy_uuid=policy.uuid).order_by("-started_at").first()
    assert newest.policy_history.spend_limit == 7_000_000


def test_a_failed_record_write_does_not_stop_the_redemption(upstream, monkeypatch):
    policy = build_world_policy()
    before = AttemptRecordStats.failures

    def refuse(*args, **kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(RedemptionAttempt.objects, "create", refuse)
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.REDEEMED
    assert AttemptRecordStats.failures == before + 1


def test_one_row_per_run_under_concurrent_redemptions(upstream):
    policy = build_world_policy()
    learners = [lr["lms_user_id"] for lr in upstream.learners]
    results = redeem_at_once(policy, learners, upstream.run)
    assert sorted(r.outcome for r in results) == [AttemptOutcome.REDEEMED] * len(learners)
    rows = RedemptionAttempt.objects.filter(policy_uuid=policy.uuid)
    assert rows.count() == len(learners)
    assert not rows.filter(outcome=AttemptOutcome.IN_PROGRESS).exists()
    assert len({r.transaction["uuid"] for r in results}) == len(learners)


def test_attempt_rows_never_decide_anything(upstream):
    """Deleting the audit log changes nothing about what the next run decides (decision 0008)."""
    policy = build_world_policy()
    first = run(policy, upstream.learner["lms_user_id"], upstream.run)
    with_log = run(policy, upstream.learner["lms_user_id"], upstream.run)
    RedemptionAttempt.objects.all().delete()
    without_log = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert (with_log.outcome, with_log.already_redeemed, with_log.transaction["uuid"]) == \
        (without_log.outcome, without_log.already_redeemed, without_log.transaction["uuid"]) == \
        (AttemptOutcome.REDEEMED, True, first.transaction["uuid"])


def test_a_create_4xx_other_than_422_is_our_misconfiguration_not_a_refusal(upstream):
    policy = build_world_policy()
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=403,
                               body='{"detail": "Missing: subsidy.can_create_transactions"}')
    result = run(policy, upstream.learner["lms_user_id"], upstream.run)
    assert result.outcome == AttemptOutcome.UPSTREAM_UNAVAILABLE
    assert (only_attempt(policy).outcome, only_attempt(policy).error_status) == (AttemptOutcome.UPSTREAM_UNAVAILABLE, 403)
