"""The suite-wide helpers: policies on the demo world, and calls run at once in threads."""
import threading

import pytest
from django.db import connections

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.devtools import demo
from enterprise_access.devtools.testing import POLICY_KINDS, build_world_policy, run_concurrently

POLICY_TYPES = {"per_learner_enrollment": c.PER_LEARNER_ENROLLMENT_CREDIT,
                "per_learner_spend": c.PER_LEARNER_SPEND_CREDIT, "assigned": c.ASSIGNED_LEARNER_CREDIT}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_build_world_policy_wires_each_type_to_its_demo_subsidy_and_catalog(kind):
    policy = build_world_policy(kind)
    assert policy.policy_type == POLICY_TYPES[kind]
    assert str(policy.enterprise_customer_uuid) == demo.CUSTOMER_UUID
    assert str(policy.subsidy_uuid) == demo.SUBSIDY_UUIDS[kind]
    assert str(policy.catalog_uuid) == demo.CATALOG_UUIDS[kind]


@pytest.mark.django_db
def test_build_world_policy_takes_overrides():
    policy = build_world_policy("assigned", spend_limit=12_345, catalog_uuid=demo.CATALOG_UUIDS["per_learner_spend"])
    assert policy.spend_limit == 12_345
    assert str(policy.catalog_uuid) == demo.CATALOG_UUIDS["per_learner_spend"]
    assert policy.access_method == c.AccessMethods.ASSIGNED


def test_build_world_policy_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="Unknown policy kind 'per_course'"):
        build_world_policy("per_course")


@pytest.mark.django_db
def test_policy_world_fixture_builds_on_the_live_emulator(policy_world, upstream):
    policy = policy_world("per_learner_spend", per_learner_spend_limit=upstream.price + 1)
    assert policy.can_redeem(upstream.learner["lms_user_id"], upstream.run).redeemable


def test_run_concurrently_overlaps_the_calls_and_keeps_input_order():
    # Every call waits for all the others: this only finishes if they all run at the same time.
    everyone = threading.Barrier(5)

    def call(number, word):
        everyone.wait(10)
        return f"{number}-{word}"

    assert run_concurrently(call, [(n, w) for n, w in enumerate("abcde")]) == ["0-a", "1-b", "2-c", "3-d", "4-e"]


def test_run_concurrently_reraises_after_every_call_finished():
    finished = []

    def call(number):
        if number == 2:
            raise ValueError("call 2 failed")
        finished.append(number)

    with pytest.raises(ValueError, match="call 2 failed"):
        run_concurrently(call, [(n,) for n in range(4)])
    assert sorted(finished) == [0, 1, 3]


def test_run_concurrently_fails_when_a_call_does_not_finish():
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError, match="1 of 2 concurrent calls still running"):
            run_concurrently(lambda stuck: release.wait(30) if stuck else None, [(True,), (False,)], timeout=0.5)
    finally:
        release.set()


@pytest.mark.django_db(transaction=True)
def test_run_concurrently_closes_each_threads_database_connection():
    def call():
        connection = connections["default"]
        connection.ensure_connection()
        return connection

    used = run_concurrently(call, [(), ()])
    assert len({id(connection) for connection in used}) == 2  # one connection per thread
    assert all(connection.connection is None for connection in used)
