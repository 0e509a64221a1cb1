"""/api/v1/redemption-attempts/: who sees which rows, filters, cursor pagination and the summary."""
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.devtools.demo import CUSTOMER_UUID

from .helpers import admin_role, client_for, learner_client, operator_client

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

OTHER_CUSTOMER = "0da00000-0000-4000-8000-000000000009"
POLICY_A = "a1b2c3d4-0000-4000-8000-00000000000a"
POLICY_B = "a1b2c3d4-0000-4000-8000-00000000000b"
DAY1 = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 3, 10, tzinfo=timezone.utc)
URL = "/api/v1/redemption-attempts/"


def attempt(**fields):
    defaults = dict(policy_uuid=POLICY_A, enterprise_customer_uuid=CUSTOMER_UUID, lms_user_id=101,
                    content_key="course-v1:DemoU+Cooking101+1T2027", source=AttemptSource.LEARNER_REDEEM_API,
                    outcome=AttemptOutcome.REDEEMED, started_at=DAY1, can_redeem=True)
    return RedemptionAttempt.objects.create(**{**defaults, **fields})


@pytest.fixture
def rows():
    return {
        "pat_ok": attempt(),
        "pat_refused": attempt(outcome=AttemptOutcome.NOT_REDEEMABLE, can_redeem=False,
                               reason=c.REASON_CONTENT_NOT_IN_CATALOG, started_at=DAY2),
        "sam_error": attempt(lms_user_id=102, policy_uuid=POLICY_B, outcome=AttemptOutcome.SUBSIDY_REFUSED,
                             error_status=422, error_code="enrollment_error", error_message="subsidy: nope",
                             error_payload={"detail": "nope", "code": "enrollment_error"}, started_at=DAY2),
        "elsewhere": attempt(enterprise_customer_uuid=OTHER_CUSTOMER, policy_uuid=str(uuid4()), lms_user_id=101),
    }


def uuids(response):
    assert response.status_code == 200, response.content
    return {row["uuid"] for row in response.json()["results"]}


def test_anonymous_gets_401(rows):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


def test_operator_sees_everything_including_internal_payloads(rows):
    response = operator_client().get(URL)
    assert uuids(response) == {str(r.uuid) for r in rows.values()}
    sam = next(r for r in response.json()["results"] if r["uuid"] == str(rows["sam_error"].uuid))
    assert sam["error_payload"] == {"detail": "nope", "code": "enrollment_error"}


def test_enterprise_admin_sees_only_their_customers_rows(rows):
    client = client_for(90, [admin_role()])
    assert uuids(client.get(URL)) == {str(rows[k].uuid) for k in ("pat_ok", "pat_refused", "sam_error")}
    assert client.get(f"{URL}{rows['elsewhere'].uuid}/").status_code == 404


def test_learner_sees_only_their_own_rows_without_internal_errors(rows):
    client = learner_client(102)
    response = client.get(URL)
    assert uuids(response) == {str(rows["sam_error"].uuid)}
    row = response.json()["results"][0]
    assert "error_payload" not in row and "error_message" not in row and "acting_user" not in row
    # The upstream's error code is its own text (a hostile or broken upstream can put anything there): staff only.
    assert "error_code" not in row and row["outcome"] and row["error_status"] == 422
    assert client.get(f"{URL}{rows['pat_ok'].uuid}/").status_code == 404
    detail = client.get(f"{URL}{rows['sam_error'].uuid}/").json()
    assert "error_payload" not in detail


def test_learner_cannot_widen_their_view_with_filters(rows):
    assert uuids(learner_client(102).get(URL, {"lms_user_id": 101})) == set()


def test_learner_of_another_customer_sees_nothing_of_this_one(rows):
    assert uuids(learner_client(101, customer_uuid=OTHER_CUSTOMER).get(URL)) == {str(rows["elsewhere"].uuid)}


@pytest.mark.parametrize("params, expected", [
    ({"outcome": "not_redeemable"}, {"pat_refused"}),
    ({"reason": c.REASON_CONTENT_NOT_IN_CATALOG}, {"pat_refused"}),
    ({"policy_uuid": POLICY_B}, {"sam_error"}),
    ({"lms_user_id": 101, "enterprise_customer_uuid": CUSTOMER_UUID}, {"pat_ok", "pat_refused"}),
    ({"created_after": "2026-11-03T00:00:00Z"}, {"pat_refused", "sam_error"}),
    ({"created_before": "2026-11-03T00:00:00Z", "enterprise_customer_uuid": CUSTOMER_UUID}, {"pat_ok"}),
    ({"source": "forced_redemption"}, set()),
    ({"content_key": "course-v1:DemoU+Cooking101+1T2027", "outcome": "subsidy_refused"}, {"sam_error"}),
])
def test_filters(rows, params, expected):
    assert uuids(operator_client().get(URL, params)) == {str(rows[k].uuid) for k in expected}


def test_bad_filter_values_are_400(rows):
    response = operator_client().get(URL, {"outcome": "exploded", "policy_uuid": "not-a-uuid"})
    assert response.status_code == 400
    assert set(response.json()) >= {"outcome", "policy_uuid"}


def test_cursor_pagination_walks_every_row_once(rows):
    client = operator_client()
    seen, url = [], URL + "?page_size=1"
    while url:
        body = client.get(url).json()
        assert "count" not in body  # cursor pagination never counts the table
        seen += [row["uuid"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(str(r.uuid) for r in rows.values())


def test_summary_by_reason_and_day(rows):
    client = client_for(90, [admin_role()])
    by_day = client.get(URL + "summary/", {"group_by": "day"}).json()
    assert by_day["total"] == 3
    assert by_day["by_outcome"] == {"redeemed": 1, "not_redeemable": 1, "subsidy_refused": 1}
    assert [g["group"] for g in by_day["groups"]] == ["2026-11-02", "2026-11-03"]
    assert by_day["groups"][1]["by_reason"] == {c.REASON_CONTENT_NOT_IN_CATALOG: 1}
    by_policy = client.get(URL + "summary/", {"group_by": "policy", "created_after": "2026-11-03T00:00:00Z"}).json()
    assert {g["group"]: g["total"] for g in by_policy["groups"]} == {POLICY_A: 1, POLICY_B: 1}


def test_summary_is_for_admins_and_operators_only(rows):
    assert learner_client(101).get(URL + "summary/").status_code == 403
    assert operator_client().get(URL + "summary/", {"group_by": "week"}).status_code == 400
    assert operator_client().get(URL + "summary/", {"group_by": "reason"}).json()["total"] == 4


def test_schema_documents_the_endpoints(rows):
    schema = operator_client().get("/api/schema/?format=json").json()
    assert "/api/v1/redemption-attempts/" in schema["paths"]
    assert "/api/v1/redemption-attempts/summary/" in schema["paths"]
    listing = schema["paths"]["/api/v1/redemption-attempts/"]["get"]
    assert {"401", "403"} <= set(listing["responses"])


def test_old_rows_stay_visible_without_a_policy(rows):
    assert RedemptionAttempt.objects.filter(policy__isnull=True).count() == 4  # policies never existed here
    assert len(uuids(operator_client().get(URL))) == 4


def test_summary_window(rows):
    after = (DAY2 + timedelta(hours=1)).isoformat()
    assert operator_client().get(URL + "summary/", {"created_after": after}).json()["total"] == 0
