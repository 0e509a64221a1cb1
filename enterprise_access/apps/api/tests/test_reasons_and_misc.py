"""Every reason code has a learner-facing 422 body; schema, concurrency, can-redeem, credits, policies."""
import uuid

import pytest
import requests

from enterprise_access.apps.api.reasons import CustomerContact, reason_entry
from enterprise_access.apps.api.v1.views.redeem import outcome_response
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome
from enterprise_access.apps.subsidy_access_policy.redemption import RedemptionResult
from enterprise_access.apps.subsidy_access_policy.tests.factories import PerLearnerEnrollmentPolicyFactory
from enterprise_access.devtools import demo
from enterprise_access.devtools.testing import run_concurrently
from enterprise_access.devtools.tokens import mint_jwt

from .helpers import admin_role, client_for, learner_client, learner_role, operator_client, redeem_url

RUN = demo.ORDINARY_RUNS[0]
TRANSACTIONAL = pytest.mark.django_db(transaction=True, databases=["default", "independent"])


@pytest.mark.parametrize("reason", c.ALL_REASONS)
def test_every_reason_has_a_filled_message(reason):
    contact = CustomerContact(None, [{"email": "a@x.example", "lms_user_id": 1}])
    entry = reason_entry(reason, [uuid.uuid4()], contact)
    assert entry["reason"] == reason
    assert entry["user_message"] and "{" not in entry["user_message"]
    assert entry["metadata"] == {"enterprise_administrators": [{"email": "a@x.example", "lms_user_id": 1}],
                                 "contact_email": None}
    generic = reason_entry(reason, [], CustomerContact())["user_message"]
    assert generic and "{" not in generic


@pytest.mark.django_db
@pytest.mark.parametrize("reason", c.ALL_REASONS)
def test_every_reason_maps_to_422_body(reason, upstream):
    policy = PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=demo.CUSTOMER_UUID)
    response = outcome_response(RedemptionResult(outcome=AttemptOutcome.NOT_REDEEMABLE, reason=reason), policy)
    assert response.status_code == 422
    (entry,) = response.data["detail"]
    assert entry["reason"] == reason
    assert entry["metadata"]["contact_email"] == demo.ADMIN_CONTACT_EMAIL
    assert entry["policy_uuids"] == [str(policy.uuid)]


@pytest.mark.django_db
def test_schema_documents_error_responses(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    redeem = paths["/api/v1/policy-redemption/{policy_uuid}/redeem/"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "422", "429", "500", "503"} <= set(redeem)
    for path, ops in paths.items():
        if path.startswith("/api/v1/"):
            for op in ops.values():
                assert {"401", "403"} <= set(op["responses"]), path
    assert client.get("/api/docs/").status_code == 200


def redeem_at_once(live_server, policy, lms_user_ids):
    """Each learner POSTs the redeem endpoint from its own thread, released together; responses by learner."""
    def redeem(lms_user_id, token):
        return requests.post(
            f"{live_server.url}{redeem_url(policy.uuid)}", json={"lms_user_id": lms_user_id, "content_key": RUN},
            headers={"Authorization": f"JWT {token}"}, timeout=30)

    calls = [(i, mint_jwt(lms_user_id=i, roles=[learner_role()])) for i in lms_user_ids]
    return dict(zip(lms_user_ids, run_concurrently(redeem, calls)))


@pytest.mark.emulator
@TRANSACTIONAL
def test_concurrent_redemptions_by_two_learners_both_succeed(live_server, make_policy, upstream):
    policy = make_policy()
    results = redeem_at_once(live_server, policy, (101, 102))
    assert [results[i].status_code for i in (101, 102)] == [200, 200], [r.text for r in results.values()]
    assert results[101].json()["uuid"] != results[102].json()["uuid"]


@pytest.mark.emulator
@TRANSACTIONAL
def test_concurrent_redemptions_never_overspend(live_server, make_policy, upstream):
    """
    Room for one: of two simultaneous learners, one redeems; the other gets policy_spend_limit_reached (422), or,
    while the first is still being confirmed, spend_pending_confirmation (429, retry).
    """
    policy = make_policy(spend_limit=demo.PRICES[RUN] + 100)
    results = redeem_at_once(live_server, policy, (101, 102))
    statuses = sorted(r.status_code for r in results.values())
    assert statuses in ([200, 422], [200, 429])
    if statuses == [200, 429]:
        refused = next(r for r in results.values() if r.status_code == 429)
        assert refused.json()["code"] == "spend_pending_confirmation"


# ----- can-redeem -----------------------------------------------------------------------------------------


def _can_redeem_url(customer=demo.CUSTOMER_UUID):
    return f"/api/v1/policy-redemption/enterprise-customer/{customer}/can-redeem/"


@pytest.mark.emulator
@TRANSACTIONAL
def test_can_redeem_per_content_key(make_policy):
    policy = make_policy()
    make_policy("per_learner_spend", active=False)
    response = learner_client().get(_can_redeem_url(), {"content_key": [RUN, demo.NOT_IN_CATALOG_RUN]})
    assert response.status_code == 200, response.content
    first, second = response.json()
    assert first["can_redeem"] is True
    assert first["redeemable_subsidy_access_policy"]["uuid"] == str(policy.uuid)
    assert first["list_price"]["usd_cents"] == demo.PRICES[RUN]
    assert {r["reason"] for r in first["reasons"]} == {c.REASON_POLICY_EXPIRED} or first["reasons"] == []
    assert second["can_redeem"] is False
    assert c.REASON_CONTENT_NOT_IN_CATALOG in {r["reason"] for r in second["reasons"]}


@pytest.mark.emulator
@TRANSACTIONAL
def test_can_redeem_authorization_and_input(make_policy):
    make_policy()
    assert learner_client().get(_can_redeem_url(), {"content_key": RUN, "lms_user_id": 102}).status_code == 403
    assert operator_client().get(_can_redeem_url(), {"content_key": RUN, "lms_user_id": 102}).status_code == 200
    assert learner_client().get(_can_redeem_url(uuid.uuid4()), {"content_key": RUN}).status_code == 403
    assert learner_client().get(_can_redeem_url("nope"), {"content_key": RUN}).status_code == 400
    assert learner_client().get(_can_redeem_url(), {}).status_code == 400


@pytest.mark.emulator
@TRANSACTIONAL
def test_can_redeem_upstream_down_is_503(make_policy, upstream):
    make_policy()
    upstream.control.add_fault("subsidy", status=503)
    response = learner_client().get(_can_redeem_url(), {"content_key": RUN})
    assert response.status_code == 503 and response["Retry-After"]


# ----- credits_available ------------------------------------------------------------------------------------

CREDITS_URL = "/api/v1/policy-redemption/credits_available/"


@pytest.mark.emulator
@TRANSACTIONAL
def test_credits_available(make_policy):
    spend = make_policy("per_learner_spend", per_learner_spend_limit=50_000)
    make_policy(active=False)
    response = learner_client().get(CREDITS_URL, {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "lms_user_id": 101})
    assert response.status_code == 200, response.content
    (entry,) = response.json()
    assert entry["uuid"] == str(spend.uuid)
    assert entry["remaining_balance_per_user"] == 50_000
    assert entry["remaining_balance"] > 0


@pytest.mark.emulator
@TRANSACTIONAL
def test_credits_available_authorization_and_input(make_policy):
    query = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "lms_user_id": 102}
    assert learner_client().get(CREDITS_URL, query).status_code == 403
    assert operator_client().get(CREDITS_URL, query).status_code == 200
    assert learner_client().get(CREDITS_URL, {"lms_user_id": 101}).status_code == 400
    assert learner_client().get(CREDITS_URL, {**query, "lms_user_id": "abc"}).status_code == 400


# ----- subsidy-access-policies ------------------------------------------------------------------------------

POLICIES_URL = "/api/v1/subsidy-access-policies/"


def _new_policy_body(customer=demo.CUSTOMER_UUID):
    # The demo customer's own subsidy and catalog: creating a policy checks them with the upstreams (the emulator).
    return {"policy_type": c.PER_LEARNER_ENROLLMENT_CREDIT, "enterprise_customer_uuid": customer,
            "catalog_uuid": demo.CATALOG_UUIDS["per_learner_enrollment"],
            "subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"], "display_name": "New",
            "active": True, "spend_limit": 1000, "per_learner_enrollment_limit": 2}


@pytest.mark.django_db
def test_operator_creates_reads_and_updates_policies(upstream):
    op = operator_client()
    created = op.post(POLICIES_URL, _new_policy_body(), format="json")
    assert created.status_code == 201, created.content
    policy_uuid = created.json()["uuid"]
    assert op.get(f"{POLICIES_URL}{policy_uuid}/").json()["display_name"] == "New"
    patched = op.patch(f"{POLICIES_URL}{policy_uuid}/", {"display_name": "Renamed"}, format="json")
    assert patched.status_code == 200 and patched.json()["display_name"] == "Renamed"
    bad = op.patch(f"{POLICIES_URL}{policy_uuid}/", {"per_learner_spend_limit": 5}, format="json")
    assert bad.status_code == 400 and "per_learner_spend_limit" in bad.json()
    assert op.patch(f"{POLICIES_URL}{policy_uuid}/", {"spend_limit": -1}, format="json").status_code == 400
    assert op.get(f"{POLICIES_URL}not-a-uuid/").status_code == 400
    assert op.get(f"{POLICIES_URL}{uuid.uuid4()}/").status_code == 404
    assert op.put(f"{POLICIES_URL}{policy_uuid}/", _new_policy_body(), format="json").status_code == 405
    assert op.delete(f"{POLICIES_URL}{policy_uuid}/").status_code == 405


@pytest.mark.django_db
def test_admin_reads_only_their_customers_policies():
    mine = PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=demo.CUSTOMER_UUID)
    theirs = PerLearnerEnrollmentPolicyFactory()
    admin = client_for(90, [admin_role()])
    listed = admin.get(POLICIES_URL).json()["results"]
    assert [p["uuid"] for p in listed] == [str(mine.uuid)]
    assert admin.get(f"{POLICIES_URL}{mine.uuid}/").status_code == 200
    assert admin.get(f"{POLICIES_URL}{theirs.uuid}/").status_code == 404
    assert admin.post(POLICIES_URL, _new_policy_body(), format="json").status_code == 403
    assert admin.patch(f"{POLICIES_URL}{mine.uuid}/", {"display_name": "x"}, format="json").status_code == 403
    assert learner_client().get(POLICIES_URL).status_code == 403
