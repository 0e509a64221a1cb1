"""LMS enterprise API and accounts (§4)."""
import pytest

from . import world

pytestmark = pytest.mark.emulator

LEARNERS = "/lms/enterprise/api/v1/enterprise-learner/"


def test_enterprise_learner_record_shape(api):
    response = api.get(LEARNERS, params={"enterprise_customer_uuid": world.CUSTOMER, "user_ids": str(world.PAT)})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "count", "num_pages", "current_page", "start", "results",
                         "enterprise_features"}
    assert body["count"] == 1
    record = body["results"][0]
    assert set(record) == {"id", "enterprise_customer", "active", "user_id", "user", "data_sharing_consent_records",
                           "groups", "created", "invite_key", "role_assignments", "enterprise_group"}
    assert record["enterprise_customer"]["uuid"] == world.CUSTOMER
    assert record["user"] == {"id": world.PAT, "username": "pat", "first_name": "Pat", "last_name": "Lee",
                              "email": "pat@example.org", "is_staff": False, "is_active": True,
                              "date_joined": "2025-01-01T00:00:00Z"}
    assert record["user_id"] == world.PAT
    assert record["role_assignments"] == ["enterprise_learner"]
    assert record["enterprise_group"] == []


def test_filters_by_customer_and_comma_separated_user_ids(api):
    both = api.get(LEARNERS, params={"enterprise_customer_uuid": world.CUSTOMER,
                                     "user_ids": f"{world.PAT},{world.SAM},{world.ALEX}"}).json()
    assert [record["user"]["id"] for record in both["results"]] == [world.PAT, world.SAM]

    not_linked = api.get(LEARNERS, params={"enterprise_customer_uuid": world.CUSTOMER,
                                           "user_ids": str(world.ALEX)}).json()
    assert not_linked["count"] == 0 and not_linked["results"] == []


def test_a_learner_in_two_customers(api):
    body = api.get(LEARNERS, params={"user_ids": str(world.SAM)}).json()
    by_customer = {record["enterprise_customer"]["uuid"]: record for record in body["results"]}
    assert set(by_customer) == {world.CUSTOMER, world.CUSTOMER_DSC}
    assert by_customer[world.CUSTOMER]["active"] is True
    assert by_customer[world.CUSTOMER_DSC]["active"] is False
    assert by_customer[world.CUSTOMER]["enterprise_group"] == [world.GROUP]


def test_enterprise_learner_pagination(api):
    first = api.get(LEARNERS, params={"enterprise_customer_uuid": world.CUSTOMER_CROWD, "page_size": 5}).json()
    assert (first["count"], first["num_pages"], len(first["results"])) == (12, 3, 5)
    assert first["enterprise_features"] == {}
    last = api.session.get(api.session.get(first["next"], timeout=5).json()["next"], timeout=5).json()
    assert (last["current_page"], len(last["results"]), last["next"]) == (3, 2, None)


def test_enterprise_customer_detail(api):
    body = api.get(f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/").json()
    assert body["uuid"] == world.CUSTOMER
    assert body["contact_email"] is None
    assert body["admin_users"] == [{"email": "admin@demo.example", "lms_user_id": 900}]

    dsc = api.get(f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER_DSC}/").json()
    assert dsc["contact_email"] == "help@consent.example"

    unknown = api.get(f"/lms/enterprise/api/v1/enterprise-customer/{world.UNKNOWN_UUID}/")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "No EnterpriseCustomer matches the given query."}


def test_accounts_lookup(api):
    accounts = api.get("/lms/api/user/v1/accounts", params={"lms_user_id": world.PAT}).json()
    assert accounts[-1]["email"] == "pat@example.org"
    assert api.get("/lms/api/user/v1/accounts", params={"email": "SAM@example.org"}).json()[0]["id"] == world.SAM
    assert api.get("/lms/api/user/v1/accounts", params={"lms_user_id": 999999}).status_code == 404


def test_bulk_enrollment_endpoint(api, control):
    path = f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/enroll_learners_in_courses/"

    ok = api.post(path, json={"enrollments_info": [{"user_id": world.PAT, "course_run_key": world.COOKING_RUN,
                                                    "transaction_id": world.UNKNOWN_UUID}]})
    assert ok.status_code == 201
    assert len(ok.json()["successes"]) == 1
    assert ok.json()["successes"][0]["enterprise_fulfillment_source_uuid"] == control.enrollments()[-1][
        "fulfillment_uuid"]

    closed = api.post(path, json={"enrollments_info": [
        {"user_id": world.PAT, "course_run_key": world.COOKING_OLD_RUN}]})
    assert closed.status_code == 409
    assert closed.json()["failures"][0]["course_run_key"] == world.COOKING_OLD_RUN

    forced = api.post(path, json={"enrollments_info": [
        {"user_id": world.PAT, "course_run_key": world.COOKING_OLD_RUN, "force_enrollment": True}]})
    assert forced.status_code == 201

    assert api.post(path, json={}).status_code == 400
