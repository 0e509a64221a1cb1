"""
can_redeem and redeem against the live upstream emulator: every reason code, their order, each type's
limits, assignment state changes and the late-enrollment metadata. HTTP is real; nothing inside is patched.
"""
from datetime import timedelta
from uuid import uuid4

import pytest
from django.utils import timezone

from enterprise_access.apps.api_client.exceptions import UpstreamUnavailableError
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.redemption import redeem_policy
from enterprise_access.devtools.testing import build_world_policy

from .factories import (
    AssignmentFactory,
)

# can_redeem counts open spend reservations, which live on the independent connection.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])


def redeem_now(policy, lms_user_id, content_key, metadata=None):
    """can_redeem says yes, then the one redemption workflow redeems: its transaction."""
    redeemable, reason, _ = policy.can_redeem(lms_user_id, content_key)
    assert redeemable, reason
    result = redeem_policy(policy=policy, lms_user_id=lms_user_id, content_key=content_key, metadata=metadata)
    assert result.succeeded, (result.outcome, result.reason, result.error_message)
    return result.transaction


def seed_subsidy(upstream, **overrides):
    subsidy = {"uuid": str(uuid4()), "enterprise_customer_uuid": upstream.customer_uuid, "title": "test",
               "starting_balance": 10_000_000, "active_datetime": "2025-01-01T00:00:00Z",
               "expiration_datetime": "2030-12-31T00:00:00Z", "unit": "usd_cents", **overrides}
    upstream.control.seed({"subsidies": [subsidy]})
    return subsidy["uuid"]


def test_redeemable_content_can_be_redeemed(upstream):
    policy = build_world_policy()
    redeemable, reason, _ = policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)
    assert (redeemable, reason) == (True, None)
    transaction = redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    assert transaction["state"] == "committed"
    assert transaction["quantity"] == -upstream.price
    assert transaction["subsidy_access_policy_uuid"] == str(policy.uuid)


@pytest.mark.parametrize("changes", [{"active": False}, {"retired": True}])
def test_inactive_or_retired_policy_is_expired(upstream, changes):
    policy = build_world_policy(**changes)
    assert tuple(policy.can_redeem(upstream.learner["lms_user_id"], upstream.run))[:2] == (False, c.REASON_POLICY_EXPIRED)


def test_learner_not_linked_to_the_customer(upstream):
    policy = build_world_policy()
    result = policy.can_redeem(upstream.unlinked_learner["lms_user_id"], upstream.run)
    assert result.reason == c.REASON_LEARNER_NOT_IN_ENTERPRISE


def test_skip_customer_user_check_skips_the_lms(upstream):
    policy = build_world_policy()
    result = policy.can_redeem(upstream.unlinked_learner["lms_user_id"], upstream.run, skip_customer_user_check=True)
    assert result.redeemable


def test_learner_outside_the_policy_groups(upstream):
    policy = build_world_policy(enterprise_group_uuids=[str(uuid4())])
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).reason == \
        c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP


def test_content_outside_the_catalog(upstream):
    policy = build_world_policy()
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.not_in_catalog_run).reason == \
        c.REASON_CONTENT_NOT_IN_CATALOG


def test_content_in_catalog_but_unknown_to_the_subsidy_service(upstream):
    ghost = "course-v1:GhostU+Nothing+1T2027"
    catalog = str(uuid4())
    upstream.control.seed({"catalogs": [{"uuid": catalog, "enterprise_customer_uuid": upstream.customer_uuid,
                                         "content_keys": [ghost]}]})
    policy = build_world_policy(catalog_uuid=catalog)
    assert policy.can_redeem(upstream.learner["lms_user_id"], ghost).reason == c.REASON_CONTENT_NOT_IN_CATALOG


def test_past_the_enrollment_deadline(upstream):
    policy = build_world_policy()
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.past_deadline_run).reason == \
        c.REASON_BEYOND_ENROLLMENT_DEADLINE


def test_late_redemption_window_allows_past_deadline_and_asks_for_late_enrollment(upstream):
    policy = build_world_policy(late_redemption_allowed_until=timezone.now() + timedelta(days=3))
    transaction = redeem_now(policy, upstream.learner["lms_user_id"], upstream.past_deadline_run, {"note": "x"})
    assert transaction["metadata"] == {"note": "x", c.METADATA_ALLOW_LATE_ENROLLMENT: True}


def test_closed_late_redemption_window_adds_nothing(upstream):
    policy = build_world_policy(late_redemption_allowed_until=timezone.now() - timedelta(days=1))
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.past_deadline_run).reason == \
        c.REASON_BEYOND_ENROLLMENT_DEADLINE
    transaction = redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    assert not (transaction["metadata"] or {}).get(c.METADATA_ALLOW_LATE_ENROLLMENT)


def test_a_late_enrollment_waives_the_deadline(upstream):
    policy = build_world_policy()
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.past_deadline_run,
                             late_enrollment=True).redeemable


def test_expired_subsidy(upstream):
    subsidy = seed_subsidy(upstream, active_datetime="2024-01-01T00:00:00Z", expiration_datetime="2025-01-01T00:00:00Z")
    policy = build_world_policy(subsidy_uuid=subsidy)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).reason == c.REASON_SUBSIDY_EXPIRED


def test_not_enough_value_in_subsidy(upstream):
    policy = build_world_policy(subsidy_uuid=seed_subsidy(upstream, starting_balance=upstream.price - 1))
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).reason == \
        c.REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY


def test_already_redeemed_content_is_named_as_such(upstream):
    policy = build_world_policy()
    transaction = redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    result = policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)
    assert result.reason == c.REASON_LEARNER_ALREADY_REDEEMED
    assert transaction["uuid"] in [tx["uuid"] for tx in result.existing_transactions]


def test_policy_spend_limit(upstream):
    policy = build_world_policy(spend_limit=upstream.price + upstream.prices[upstream.runs[1]] - 1)
    redeem_now(policy, upstream.learners[0]["lms_user_id"], upstream.run)
    assert policy.can_redeem(upstream.learners[1]["lms_user_id"], upstream.runs[1]).reason == \
        c.REASON_POLICY_SPEND_LIMIT_REACHED
    assert policy.can_redeem(upstream.learners[1]["lms_user_id"], upstream.runs[2]).redeemable  # cheaper one fits


def test_per_learner_enrollment_limit(upstream):
    policy = build_world_policy(per_learner_enrollment_limit=1)
    redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.runs[1]).reason == \
        c.REASON_LEARNER_MAX_ENROLLMENTS_REACHED
    assert policy.can_redeem(upstream.learners[1]["lms_user_id"], upstream.runs[1]).redeemable


def test_per_learner_spend_limit(upstream):
    policy = build_world_policy("per_learner_spend", per_learner_spend_limit=upstream.price + 100)
    redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.runs[1]).reason == \
        c.REASON_LEARNER_MAX_SPEND_REACHED
    assert policy.can_redeem(upstream.learners[1]["lms_user_id"], upstream.runs[1]).redeemable


@pytest.mark.parametrize("setup, expected", [
    # Two failures at once: the earlier check in the contract's order decides the reason.
    ({"active": False, "learner": "unlinked"}, c.REASON_POLICY_EXPIRED),
    ({"learner": "unlinked", "content": "not_in_catalog"}, c.REASON_LEARNER_NOT_IN_ENTERPRISE),
    ({"groups": True, "content": "not_in_catalog"}, c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP),
    ({"content": "not_in_catalog", "balance": 1}, c.REASON_CONTENT_NOT_IN_CATALOG),
    ({"content": "past_deadline", "expired_subsidy": True}, c.REASON_BEYOND_ENROLLMENT_DEADLINE),
    ({"expired_subsidy": True, "balance": 1}, c.REASON_SUBSIDY_EXPIRED),
    ({"balance": 1, "spend_limit": 0}, c.REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY),
    ({"spend_limit": 0, "enrollment_limit": 0}, c.REASON_POLICY_SPEND_LIMIT_REACHED),
])
def test_reason_order(upstream, setup, expected):
    subsidy_overrides = {}
    if setup.get("balance") is not None:
        subsidy_overrides["starting_balance"] = setup["balance"]
    if setup.get("expired_subsidy"):
        subsidy_overrides.update(active_datetime="2024-01-01T00:00:00Z", expiration_datetime="2025-01-01T00:00:00Z")
    policy = build_world_policy(
        subsidy_uuid=seed_subsidy(upstream, **subsidy_overrides),
        active=setup.get("active", True),
        enterprise_group_uuids=[str(uuid4())] if setup.get("groups") else [],
        spend_limit=setup.get("spend_limit", 10_000_000),
        per_learner_enrollment_limit=setup.get("enrollment_limit", 5),
    )
    learner = upstream.unlinked_learner if setup.get("learner") == "unlinked" else upstream.learner
    content = {"not_in_catalog": upstream.not_in_catalog_run, "past_deadline": upstream.past_deadline_run}.get(
        setup.get("content"), upstream.run)
    assert policy.can_redeem(learner["lms_user_id"], content).reason == expected


def test_an_lms_outage_is_an_error_not_a_reason(upstream):
    policy = build_world_policy()
    upstream.control.add_fault(service="lms", path="enterprise-learner", status=503)
    with pytest.raises(UpstreamUnavailableError):
        policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)


def assigned_policy(upstream, **overrides):
    return build_world_policy("assigned", **overrides)


def test_assigned_policy_without_assignment(upstream):
    policy = assigned_policy(upstream)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).reason == \
        c.REASON_LEARNER_NOT_ASSIGNED_CONTENT


@pytest.mark.parametrize("state, reason", [
    (AssignmentState.CANCELLED, c.REASON_LEARNER_ASSIGNMENT_CANCELLED),
    (AssignmentState.EXPIRED, c.REASON_LEARNER_ASSIGNMENT_EXPIRED),
    (AssignmentState.ERRORED, c.REASON_LEARNER_ASSIGNMENT_FAILED),
    (AssignmentState.REVERSED, c.REASON_LEARNER_ASSIGNMENT_REVERSED),
])
def test_assigned_policy_assignment_states(upstream, state, reason):
    policy = assigned_policy(upstream)
    AssignmentFactory(assignment_configuration=policy.assignment_configuration, lms_user_id=upstream.learner["lms_user_id"],
                      content_key=upstream.run, state=state)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).reason == reason


def test_redeeming_an_assignment_sends_its_price_and_accepts_it(upstream):
    policy = assigned_policy(upstream)
    assignment = AssignmentFactory(assignment_configuration=policy.assignment_configuration,
                                   lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run,
                                   content_quantity=-(upstream.price - 900))  # within the 0.8-1.2 band
    result = policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)
    assert result.redeemable and result.assignment == assignment and result.content_price == upstream.price - 900
    transaction = redeem_now(policy, upstream.learner["lms_user_id"], upstream.run)
    assert transaction["quantity"] == -(upstream.price - 900)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ACCEPTED
    assert str(assignment.transaction_uuid) == transaction["uuid"]
    assert assignment.accepted_at is not None


def test_other_learners_allocations_count_against_the_spend_limit(upstream):
    policy = assigned_policy(upstream, spend_limit=upstream.price + 100)
    mine = AssignmentFactory(assignment_configuration=policy.assignment_configuration,
                             lms_user_id=upstream.learner["lms_user_id"], content_key=upstream.run,
                             content_quantity=-upstream.price)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).redeemable  # my own allocation is mine
    AssignmentFactory(assignment_configuration=policy.assignment_configuration, lms_user_id=upstream.learners[1]["lms_user_id"],
                      content_key=upstream.runs[1], content_quantity=-upstream.prices[upstream.runs[1]])
    assert policy.can_redeem(upstream.learner["lms_user_id"], mine.content_key).reason == \
        c.REASON_POLICY_SPEND_LIMIT_REACHED
