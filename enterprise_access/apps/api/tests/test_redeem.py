"""POST /api/v1/policy-redemption/<policy_uuid>/redeem/ against the live emulator."""
import uuid

import pytest
from django.utils import timezone

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptSource, RedemptionAttempt
from enterprise_access.devtools import demo

from .helpers import admin_role, client_for, learner_client, learner_role, operator_client, redeem_url

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

RUN = demo.ORDINARY_RUNS[0]


def _body(lms_user_id=101, content_key=RUN, **extra):
    return {"lms_user_id": lms_user_id, "content_key": content_key, **extra}


# ----- authorization matrix -------------------------------------------------------------------------


def test_anonymous_gets_401(policy):
    from rest_framework.test import APIClient
    assert APIClient().post(redeem_url(policy.uuid), _body(), format="json").status_code == 401


@pytest.mark.parametrize("who,lms_user_id,expected", [
    ("learner_self", 101, 200),
    ("learner_for_someone_else", 102, 403),
    ("learner_of_other_customer", 101, 403),
    ("admin_of_customer", 101, 403),
    ("operator_for_learner", 101, 200),
    ("operator_scoped_to_other_customer", 101, 403),
])
def test_authorization_matrix(policy, who, lms_user_id, expected):
    other = str(uuid.uuid4())
    client = {
        "learner_self": lambda: learner_client(101),
        "learner_for_someone_else": lambda: learner_client(101),
        "learner_of_other_customer": lambda: client_for(101, [learner_role(other)]),
        "admin_of_customer": lambda: client_for(101, [admin_role()]),
        "operator_for_learner": lambda: operator_client(),
        "operator_scoped_to_other_customer": lambda: client_for(900, [f"enterprise_openedx_operator:{other}"]),
    }[who]()
    response = client.post(redeem_url(policy.uuid), _body(lms_user_id), format="json")
    assert response.status_code == expected, response.content
    if expected == 200:
        attempt = RedemptionAttempt.objects.using("independent").get(transaction_uuid=response.json()["uuid"])
        assert attempt.source == (AttemptSource.OPERATOR_API if who.startswith("operator")
                                  else AttemptSource.LEARNER_REDEEM_API)


# ----- input --------------------------------------------------------------------------------------------


def test_unknown_policy_404(upstream):
    response = learner_client().post(redeem_url(uuid.uuid4()), _body(), format="json")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_malformed_policy_uuid_400(upstream):
    response = learner_client().post(redeem_url("not-a-uuid"), _body(), format="json")
    assert response.status_code == 400
    assert "policy_uuid" in response.json()


@pytest.mark.parametrize("body,field", [
    ({"content_key": RUN}, "lms_user_id"),
    ({"lms_user_id": 101}, "content_key"),
    (_body(lms_user_id="101"), "lms_user_id"),
    (_body(lms_user_id=True), "lms_user_id"),
    (_body(lms_user_id=1.5), "lms_user_id"),
    (_body(lms_user_id=-1), "lms_user_id"),
    (_body(lms_user_id=2**40), "lms_user_id"),
    (_body(content_key=123), "content_key"),
    (_body(content_key="x" * 256), "content_key"),
    (_body(content_key=""), "content_key"),
    (_body(metadata=["not", "an", "object"]), "metadata"),
    (_body(metadata="string"), "metadata"),
    (_body(metadata={"big": "x" * 9000}), "metadata"),
])
def test_bad_input_400_per_field(policy, body, field):
    response = learner_client().post(redeem_url(policy.uuid), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_metadata_number_json_cannot_carry_is_a_400_and_nothing_is_held(policy, upstream, number):
    # 1e400 parses as infinity; sent on, the create could not be encoded and the run said "uncertain" (202) and held
    # the money for minutes, though nothing had left this service.
    raw = f'{{"lms_user_id": 101, "content_key": "{RUN}", "metadata": {{"geag_first_name": {number}}}}}'
    response = learner_client().generic("POST", redeem_url(policy.uuid), raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "finite number" in str(response.json()["metadata"])
    assert not RedemptionAttempt.objects.filter(policy_uuid=policy.uuid).exclude(outcome="not_redeemable").exists()
    assert not [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]


# ----- outcomes -----------------------------------------------------------------------------------------


def test_success_returns_the_transaction_and_records_the_request_id(policy):
    response = learner_client().post(redeem_url(policy.uuid), _body(metadata={"geag_first_name": "Pat"}), format="json",
                                     HTTP_X_REQUEST_ID="req-abc-123")
    assert response.status_code == 200, response.content
    tx = response.json()
    assert tx["state"] == c.TRANSACTION_STATE_COMMITTED
    assert tx["lms_user_id"] == 101 and tx["content_key"] == RUN
    assert response["X-Request-ID"] == "req-abc-123"
    attempt = RedemptionAttempt.objects.using("independent").get(transaction_uuid=tx["uuid"])
    assert attempt.request_id == "req-abc-123"


def test_repeat_redemption_returns_the_same_transaction(policy, upstream):
    first = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    second = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["uuid"] == second.json()["uuid"]
    mine = [tx for tx in upstream.control.transactions(upstream.subsidy_uuid)
            if tx.get("lms_user_id") == 101 and tx.get("content_key") == RUN]
    assert len(mine) == 1


def _assert_reason(response, reason, policy):
    assert response.status_code == 422, response.content
    (entry,) = response.json()["detail"]
    assert entry["reason"] == reason
    assert entry["policy_uuids"] == [str(policy.uuid)]
    assert entry["user_message"] and "{" not in entry["user_message"]
    assert set(entry["metadata"]) == {"enterprise_administrators", "contact_email"}
    return entry


@pytest.mark.parametrize("reason,policy_fields,lms_user_id,content_key", [
    (c.REASON_POLICY_EXPIRED, {"active": False}, 101, RUN),
    (c.REASON_LEARNER_NOT_IN_ENTERPRISE, {}, demo.UNLINKED_LEARNER["lms_user_id"], RUN),
    (c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP, {"enterprise_group_uuids": [str(uuid.uuid4())]}, 101, RUN),
    (c.REASON_CONTENT_NOT_IN_CATALOG, {}, 101, demo.NOT_IN_CATALOG_RUN),
    (c.REASON_BEYOND_ENROLLMENT_DEADLINE, {}, 101, demo.PAST_DEADLINE_RUN),
    (c.REASON_POLICY_SPEND_LIMIT_REACHED, {"spend_limit": 100}, 101, RUN),
    (c.REASON_LEARNER_MAX_ENROLLMENTS_REACHED, {"per_learner_enrollment_limit": 0}, 101, RUN),
])
def test_not_redeemable_reasons_driven_for_real(make_policy, reason, policy_fields, lms_user_id, content_key):
    policy = make_policy(**policy_fields)
    client = operator_client() if lms_user_id != 101 else learner_client()
    response = client.post(redeem_url(policy.uuid), _body(lms_user_id, content_key), format="json")
    entry = _assert_reason(response, reason, policy)
    assert entry["metadata"]["contact_email"] == demo.ADMIN_CONTACT_EMAIL
    assert demo.ADMIN_CONTACT_EMAIL in entry["user_message"]


def test_learner_max_spend_reached(make_policy):
    policy = make_policy("per_learner_spend", per_learner_spend_limit=100)
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    _assert_reason(response, c.REASON_LEARNER_MAX_SPEND_REACHED, policy)


def test_reason_message_survives_a_failing_customer_lookup(make_policy, upstream):
    policy = make_policy(active=False)
    upstream.control.add_fault("lms", path=".*enterprise-customer.*", status=500)
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    entry = _assert_reason(response, c.REASON_POLICY_EXPIRED, policy)
    assert entry["metadata"]["contact_email"] is None
    assert "administrator" in entry["user_message"]


def test_subsidy_refusal_is_422_with_its_code(policy, upstream):
    upstream.control.add_fault("subsidy", path=".*/admin/transactions/?$", method="POST", status=422,
                               body={"detail": "Enrollment failed.", "code": "enrollment_error"})
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "enrollment_error"
    assert response.json()["detail"].startswith("We could not enroll you in this course. Nothing was charged.")


def test_subsidy_ledger_busy_past_retries_is_429(policy, upstream):
    upstream.control.add_fault("subsidy", path=".*/admin/transactions/?$", method="POST", status=429,
                               body={"detail": "Attempt to lock the Ledger failed, please try again."})
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0


def test_the_same_redemption_already_running_is_429(policy, upstream):
    """Another run holds this learner and content on the subsidy (an open reservation): retry shortly."""
    from enterprise_access.apps.subsidy_access_policy.models import SpendReservation, learner_content_claim

    SpendReservation.objects.create(
        idempotency_key="another-run", policy=policy, subsidy_uuid=policy.subsidy_uuid, lms_user_id=101,
        content_key=RUN, amount_cents=100, state="sent", created=timezone.now(),
        open_claim=learner_content_claim(policy.enterprise_customer_uuid, 101, RUN))
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "redemption_in_progress"
    assert int(response["Retry-After"]) > 0
    assert not [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]


@pytest.mark.parametrize("service", ["lms", "catalog", "subsidy"])
def test_upstream_down_is_503(policy, upstream, service):
    upstream.control.add_fault(service, status=503)
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "upstream_unavailable"


def test_unexpected_error_is_json_500_with_attempt(policy, monkeypatch):
    from enterprise_access.apps.subsidy_access_policy.models import PerLearnerEnrollmentCreditAccessPolicy

    def boom(*args, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(PerLearnerEnrollmentCreditAccessPolicy, "check_eligibility", boom)
    response = learner_client().post(redeem_url(policy.uuid), _body(), format="json")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "unexpected_error" and body["attempt_uuid"]
