"""
``selectors.can_redeem_by_content``, ``selectors.credits_available`` and ``selectors.policy_credit``: the learner's
read-only questions, decided against the live emulator (HTTP is real; nothing inside is patched).
"""
from uuid import uuid4

import pytest

from enterprise_access.apps.api_client import UpstreamAPIError
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy import selectors
from enterprise_access.apps.subsidy_access_policy.redemption import redeem_policy
from enterprise_access.devtools import demo

from .factories import AssignmentFactory

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

PAT = 101


def redeem(policy, content_key):
    result = redeem_policy(policy=policy, lms_user_id=PAT, content_key=content_key)
    assert result.succeeded, (result.outcome, result.reason, result.error_message)
    return result.transaction


def fail_subsidy(upstream, kind, path="", status=403):
    upstream.control.add_fault("subsidy", path=f".*{demo.SUBSIDY_UUIDS[kind]}/{path}.*", status=status)


# ----- policy_credit: the arithmetic that was in the view ----------------------------------------------------

def test_the_spend_limit_caps_the_subsidys_balance(policy_world, upstream):
    policy = policy_world(spend_limit=50_000)
    assert selectors.policy_credit(policy, PAT)["remaining_balance"] == 50_000
    redeem(policy, upstream.run)
    assert selectors.policy_credit(policy, PAT)["remaining_balance"] == 50_000 - upstream.price


def test_without_a_spend_limit_the_subsidys_balance_is_what_remains(policy_world, upstream):
    policy = policy_world(spend_limit=None)
    redeem(policy, upstream.run)
    assert selectors.policy_credit(policy, PAT)["remaining_balance"] == demo.STARTING_BALANCE_CENTS - upstream.price


def test_per_learner_spend_counts_the_learners_redemptions(policy_world, upstream):
    policy = policy_world("per_learner_spend", per_learner_spend_limit=30_000)
    credit = selectors.policy_credit(policy, PAT)
    assert (credit["remaining_balance_per_user"], credit["remaining_enrollments_per_user"]) == (30_000, None)
    redeem(policy, upstream.run)
    assert selectors.policy_credit(policy, PAT)["remaining_balance_per_user"] == 30_000 - upstream.price
    redeem(policy, upstream.runs[2])  # 9,900 more: 29,800 of 30,000 spent
    assert selectors.policy_credit(policy, PAT)["remaining_balance_per_user"] == 200


def test_per_learner_enrollments_count_down_and_a_spent_limit_lists_nothing(policy_world, upstream):
    policy = policy_world(per_learner_enrollment_limit=2)
    assert selectors.policy_credit(policy, PAT)["remaining_enrollments_per_user"] == 2
    redeem(policy, upstream.run)
    assert selectors.policy_credit(policy, PAT)["remaining_enrollments_per_user"] == 1
    redeem(policy, upstream.runs[1])
    assert selectors.policy_credit(policy, PAT) is None


def test_an_assigned_policy_has_credit_only_with_an_allocated_assignment(policy_world, upstream):
    policy = policy_world("assigned")
    assert selectors.policy_credit(policy, PAT) is None
    AssignmentFactory(assignment_configuration=policy.assignment_configuration, lms_user_id=PAT,
                      content_key=upstream.run, content_quantity=-upstream.price, state=AssignmentState.ALLOCATED)
    credit = selectors.policy_credit(policy, PAT)
    assert [a["content_key"] for a in credit["learner_content_assignments"]] == [upstream.run]
    # The allocation is money set aside: it counts as spent against the spend limit.
    assert credit["remaining_balance"] == policy.spend_limit - upstream.price


# ----- credits_available ----------------------------------------------------------------------------------

def test_credits_available_for_an_unlinked_learner_is_empty(policy_world, upstream):
    policy_world()
    assert selectors.credits_available(customer_uuid=demo.CUSTOMER_UUID,
                                       lms_user_id=upstream.unlinked_learner["lms_user_id"]) == []


def test_credits_available_marks_the_policy_it_could_not_ask(policy_world, upstream):
    good, bad = policy_world(), policy_world("per_learner_spend")
    fail_subsidy(upstream, "per_learner_spend")
    credits = {str(p.policy.uuid): p for p in
               selectors.credits_available(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT)}
    assert not credits[str(good.uuid)].undecided and credits[str(good.uuid)].credit["remaining_balance"] > 0
    assert credits[str(bad.uuid)].undecided and credits[str(bad.uuid)].undecided_service == "subsidy"


def test_credits_available_raises_when_nothing_could_be_decided(policy_world, upstream):
    policy_world(), policy_world("per_learner_spend")
    fail_subsidy(upstream, "per_learner_spend")
    fail_subsidy(upstream, "per_learner_enrollment")
    with pytest.raises(UpstreamAPIError):
        selectors.credits_available(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT)


# ----- can_redeem_by_content ------------------------------------------------------------------------------

def test_each_key_once_with_the_policy_that_would_pay_and_why_the_others_would_not(policy_world, upstream):
    policy = policy_world()
    answers = selectors.can_redeem_by_content(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT,
                                              content_keys=[upstream.run, upstream.not_in_catalog_run, upstream.run])
    assert [a.content_key for a in answers] == [upstream.run, upstream.not_in_catalog_run]
    assert answers[0].chosen == policy and answers[0].content_price == upstream.price
    assert answers[1].chosen is None and answers[1].refused == {c.REASON_CONTENT_NOT_IN_CATALOG: [policy.uuid]}
    assert not answers[0].undecided and not answers[1].undecided


def test_the_subsidy_expiring_soonest_pays_and_a_failed_ranking_read_still_pays(policy_world, upstream):
    soon = str(uuid4())
    upstream.control.seed({"subsidies": [{
        "uuid": soon, "enterprise_customer_uuid": demo.CUSTOMER_UUID, "title": "soon",
        "starting_balance": 10_000_000, "active_datetime": "2025-01-01T00:00:00Z",
        "expiration_datetime": "2029-01-01T00:00:00Z", "unit": "usd_cents"}]})
    later = policy_world()
    sooner = policy_world(subsidy_uuid=soon)
    [answer] = selectors.can_redeem_by_content(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT,
                                               content_keys=[upstream.run])
    assert answer.chosen == sooner and answer.chosen_subsidy["expiration_datetime"].startswith("2029-01-01")

    upstream.control.add_fault("subsidy", path=f".*/subsidies/{soon}/$", method="GET", status=503)
    [answer] = selectors.can_redeem_by_content(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT,
                                               content_keys=[upstream.run])
    assert answer.chosen == later and not answer.undecided  # the unranked one is still redeemable, ranked last


def test_a_failing_policy_is_undecided_and_all_failing_raises(policy_world, upstream):
    good, bad = policy_world(), policy_world("per_learner_spend")
    fail_subsidy(upstream, "per_learner_spend")
    [answer] = selectors.can_redeem_by_content(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT,
                                               content_keys=[upstream.run])
    assert answer.chosen == good and answer.undecided == {str(bad.uuid): "subsidy"}
    fail_subsidy(upstream, "per_learner_enrollment")
    with pytest.raises(UpstreamAPIError):
        selectors.can_redeem_by_content(customer_uuid=demo.CUSTOMER_UUID, lms_user_id=PAT,
                                        content_keys=[upstream.run])


def test_a_policy_on_another_customers_subsidy_shows_no_balance(upstream):
    # A policy of Other Co left pointing at the demo customer's subsidy (written before the tenancy check, or by a
    # direct database edit): Other Co's learner must not see the demo customer's balance through it.
    from enterprise_access.devtools.testing import build_world_policy
    misfiled = build_world_policy(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID,
                                  catalog_uuid=demo.OTHER_CATALOG_UUID)
    proper = build_world_policy(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID, subsidy_uuid=demo.OTHER_SUBSIDY_UUID,
                                catalog_uuid=demo.OTHER_CATALOG_UUID)
    listed = selectors.credits_available(customer_uuid=demo.OTHER_CUSTOMER_UUID,
                                         lms_user_id=demo.OTHER_LEARNER["lms_user_id"])
    assert [str(entry.policy.uuid) for entry in listed] == [str(proper.uuid)]
    assert misfiled.uuid != proper.uuid
