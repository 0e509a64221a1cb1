"""
Partial answers (issue 11): one policy whose subsidy the subsidy service refuses (403, as the real service answers a
subsidy our service account may not read) no longer turns the whole customer's can-redeem and credits_available into
a 503. Each answers for every policy it can decide and marks the others undecided; 503 only when nothing could be
decided.
"""
from uuid import uuid4

import pytest

from enterprise_access.apps.api.reasons import REASON_UPSTREAM_UNAVAILABLE, UPSTREAM_UNAVAILABLE_MESSAGE
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.devtools import demo

from .helpers import learner_client

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

PAT = 101
INTERNAL = "http://subsidy.internal:18280/api/v1/subsidies/"
CAN_REDEEM = f"/api/v1/policy-redemption/enterprise-customer/{demo.CUSTOMER_UUID}/can-redeem/"
CREDITS = "/api/v1/policy-redemption/credits_available/"


@pytest.fixture
def two_policies(policy_world):
    return {"good": policy_world("per_learner_enrollment"), "refused": policy_world("per_learner_spend")}


def refuse_subsidy(upstream, kind, status=403):
    upstream.control.add_fault("subsidy", path=f".*{demo.SUBSIDY_UUIDS[kind]}.*", status=status,
                               body={"detail": f"MISSING: subsidy.can_read_subsidies at {INTERNAL}"})


def can_redeem(*content_keys):
    return learner_client(PAT).get(CAN_REDEEM, {"content_key": list(content_keys)})


def test_can_redeem_answers_with_the_policy_it_could_decide(upstream, two_policies):
    refuse_subsidy(upstream, "per_learner_spend")
    response = can_redeem(upstream.run)
    assert response.status_code == 200, response.content
    [entry] = response.json()
    assert entry["can_redeem"] is True and entry["undecided"] is False
    assert entry["redeemable_subsidy_access_policy"]["uuid"] == str(two_policies["good"].uuid)
    [undecided] = entry["reasons"]
    assert undecided["reason"] == REASON_UPSTREAM_UNAVAILABLE
    assert undecided["policy_uuids"] == [str(two_policies["refused"].uuid)]
    assert undecided["user_message"] == UPSTREAM_UNAVAILABLE_MESSAGE
    assert INTERNAL not in response.content.decode()


def test_can_redeem_says_undecided_when_no_decided_policy_pays(upstream, policy_world):
    grouped = policy_world("per_learner_enrollment", enterprise_group_uuids=[str(uuid4())])  # pat is not in it
    refused = policy_world("per_learner_spend")
    refuse_subsidy(upstream, "per_learner_spend")
    response = can_redeem(upstream.run, upstream.not_in_catalog_run)
    assert response.status_code == 200, response.content
    by_key = {entry["content_key"]: entry for entry in response.json()}
    entry = by_key[upstream.run]
    assert entry["can_redeem"] is False and entry["undecided"] is True
    reasons = {r["reason"]: r["policy_uuids"] for r in entry["reasons"]}
    assert reasons == {c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP: [str(grouped.uuid)],
                       REASON_UPSTREAM_UNAVAILABLE: [str(refused.uuid)]}
    # Not in either catalog: both decided before the subsidy is asked, so the answer is final.
    final = by_key[upstream.not_in_catalog_run]
    assert final["can_redeem"] is False and final["undecided"] is False


@pytest.mark.parametrize("status", [403, 500, 503])
def test_can_redeem_is_503_only_when_no_policy_could_be_decided(upstream, two_policies, status):
    refuse_subsidy(upstream, "per_learner_spend", status)
    refuse_subsidy(upstream, "per_learner_enrollment", status)
    response = can_redeem(upstream.run)
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert response.json()["code"] == "upstream_unavailable"


def test_can_redeem_with_no_policies_is_an_empty_decided_answer(upstream):
    [entry] = can_redeem(upstream.run).json()
    assert entry["can_redeem"] is False and entry["undecided"] is False and entry["reasons"] == []


def credits():
    return learner_client(PAT).get(CREDITS, {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "lms_user_id": PAT})


def test_credits_available_lists_the_decided_policy_and_marks_the_other(upstream, two_policies):
    refuse_subsidy(upstream, "per_learner_spend")
    response = credits()
    assert response.status_code == 200, response.content
    by_uuid = {entry["uuid"]: entry for entry in response.json()}
    good, refused = by_uuid[str(two_policies["good"].uuid)], by_uuid[str(two_policies["refused"].uuid)]
    assert good["undecided"] is False and good["reason"] is None
    assert good["remaining_balance"] == demo.STARTING_BALANCE_CENTS
    assert refused["undecided"] is True and refused["reason"] == REASON_UPSTREAM_UNAVAILABLE
    assert refused["remaining_balance"] is None and refused["remaining_enrollments_per_user"] is None
    assert INTERNAL not in response.content.decode()


def test_credits_available_is_503_when_every_policy_failed(upstream, two_policies):
    refuse_subsidy(upstream, "per_learner_spend")
    refuse_subsidy(upstream, "per_learner_enrollment")
    response = credits()
    assert response.status_code == 503 and response.json()["service"] == "subsidy"


def test_credits_available_is_503_when_the_lms_cannot_say_who_belongs(upstream, two_policies):
    upstream.control.add_fault("lms", path="enterprise-learner", status=503)
    assert credits().status_code == 503
