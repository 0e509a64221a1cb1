"""Subsidy retrieve, can_redeem, content-metadata, aggregates-by-learner and deposits (§2.1-2.3, §2.9)."""
import pytest

from . import world

pytestmark = pytest.mark.emulator

V1_FORBIDDEN = {
    "error_code": "Forbidden",
    "developer_message": "MISSING: subsidy.can_read_subsidies",
    "user_message": "MISSING: subsidy.can_read_subsidies",
}


# --- retrieve -------------------------------------------------------------------------------------

def test_retrieve_subsidy_has_every_contract_field(api):
    subsidy = api.subsidy(world.SUBSIDY)

    assert set(subsidy) == {
        "uuid", "title", "enterprise_customer_uuid", "active_datetime", "expiration_datetime", "unit",
        "reference_id", "reference_type", "current_balance", "starting_balance", "internal_only",
        "revenue_category", "is_active", "total_deposits", "created", "modified",
    }
    assert subsidy["uuid"] == world.SUBSIDY
    assert subsidy["enterprise_customer_uuid"] == world.CUSTOMER
    assert subsidy["unit"] == "usd_cents"
    assert subsidy["reference_id"] == "OPP-1"
    assert subsidy["reference_type"] == "salesforce_opportunity_line_item"
    assert subsidy["revenue_category"] == "bulk-enrollment-prepay"
    assert subsidy["current_balance"] == subsidy["starting_balance"] == subsidy["total_deposits"] == 1_000_000
    assert subsidy["is_active"] is True
    assert subsidy["active_datetime"] == world.iso(-30)
    assert subsidy["created"].endswith("Z")


@pytest.mark.parametrize("subsidy_uuid", [world.SUBSIDY_EXPIRED, world.SUBSIDY_FUTURE])
def test_subsidies_outside_their_window_are_inactive(api, subsidy_uuid):
    assert api.subsidy(subsidy_uuid)["is_active"] is False


def test_active_window_is_inclusive_of_a_start_just_passed(api, control):
    control.seed({"subsidies": [{
        "uuid": "5b5d0000-0000-4000-8000-0000000000f1", "enterprise_customer_uuid": world.CUSTOMER,
        "starting_balance": 1, "active_datetime": world.iso(0), "expiration_datetime": world.iso(1),
    }]})
    assert api.subsidy("5b5d0000-0000-4000-8000-0000000000f1")["is_active"] is True


@pytest.mark.parametrize("subsidy_uuid", [world.UNKNOWN_UUID, world.SUBSIDY_DELETED])
def test_unknown_or_deleted_subsidy_is_403_not_404(api, subsidy_uuid):
    response = api.get(f"/subsidy/api/v1/subsidies/{subsidy_uuid}/")
    assert response.status_code == 403
    assert response.json() == V1_FORBIDDEN


# --- can_redeem -----------------------------------------------------------------------------------

def test_can_redeem_with_balance_and_no_history(api):
    response = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)

    assert response.status_code == 200
    assert response.json() == {"can_redeem": True, "content_price": 19900, "unit": "usd_cents", "active": True,
                               "all_transactions": []}


def test_can_redeem_is_false_after_a_committed_redemption_in_any_policy(api):
    created = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, policy=world.POLICY_OTHER).json()

    body = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    assert body["can_redeem"] is False
    assert [tx["uuid"] for tx in body["all_transactions"]] == [created["uuid"]]
    # Other learners and other content are unaffected.
    assert api.can_redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN).json()["can_redeem"] is True
    assert api.can_redeem(world.SUBSIDY, world.PAT, world.BAKING_RUN).json()["can_redeem"] is True


def test_can_redeem_again_after_a_reversal_and_history_lists_every_state(api, control):
    first = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    control.reverse(first["uuid"])
    control.add_fault("lms", "enroll_learners_in_courses", status=500, times=1, internal=True)
    failed = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    assert failed.status_code == 422

    body = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    assert body["can_redeem"] is True
    history = body["all_transactions"]
    assert [tx["state"] for tx in history] == ["committed", "failed"]  # created ascending
    assert history[0]["reversal"]["state"] == "committed"


def test_can_redeem_is_false_when_the_balance_is_below_the_price(api):
    body = api.can_redeem(world.SUBSIDY_LOW, world.PAT, world.EXEC_RUN).json()
    assert body["can_redeem"] is False
    assert body["content_price"] == 250000


def test_can_redeem_reports_inactive_separately(api):
    body = api.can_redeem(world.SUBSIDY_EXPIRED, world.PAT, world.COOKING_RUN).json()
    assert body["active"] is False
    assert body["can_redeem"] is True


def test_can_redeem_needs_both_parameters(api):
    response = api.get(f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/can_redeem/", params={"lms_user_id": 1})
    assert response.status_code == 400
    assert response.json()["error_code"] == "Bad Request"
    assert set(response.json()) == {"error_code", "developer_message", "user_message"}


def test_can_redeem_on_unknown_subsidy_is_403(api):
    response = api.can_redeem(world.UNKNOWN_UUID, world.PAT, world.COOKING_RUN)
    assert response.status_code == 403
    assert response.json() == V1_FORBIDDEN


def test_can_redeem_of_content_outside_the_catalogs_is_a_plain_500(api):
    response = api.can_redeem(world.SUBSIDY, world.PAT, world.GHOST)
    assert response.status_code == 500
    assert "text/html" in response.headers["Content-Type"]


# --- content metadata -----------------------------------------------------------------------------

def _metadata(api, key, customer=world.CUSTOMER):
    params = {"enterprise_customer_uuid": customer} if customer is not None else {}
    return api.get(f"/subsidy/api/v1/content-metadata/{key}/", params=params)


def test_content_metadata_for_a_run_key_returns_the_course_summary(api):
    response = _metadata(api, world.COOKING_RUN)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"content_title", "content_uuid", "content_key", "course_run_uuid", "course_run_key",
                         "course_run_start_date", "source", "mode", "content_price", "enroll_by_date",
                         "geag_variant_id"}
    assert body["content_key"] == world.COOKING
    assert body["course_run_key"] == world.COOKING_RUN
    assert body["content_title"] == "Cooking for Engineers"
    assert body["source"] == "edX" and body["mode"] == "verified"
    assert body["content_price"] == 19900 and isinstance(body["content_price"], int)
    assert body["enroll_by_date"] == world.iso(20)  # the verified upgrade deadline
    assert body["course_run_start_date"] == world.iso(30)
    assert body["geag_variant_id"] is None


def test_content_metadata_for_a_course_key_uses_the_advertised_run(api):
    body = _metadata(api, world.COOKING).json()
    assert body["course_run_key"] == world.COOKING_RUN
    assert body["content_price"] == 19900


def test_content_metadata_when_the_catalog_holds_the_run_itself(api):
    body = _metadata(api, world.BAKING_RUN).json()
    assert body["content_key"] == world.BAKING_RUN
    assert body["content_uuid"] == body["course_run_uuid"]
    assert body["enroll_by_date"] == world.iso(40)  # no upgrade deadline: the enrollment end


def test_content_metadata_for_exec_ed(api):
    body = _metadata(api, world.EXEC_RUN).json()
    assert body["source"] == "2u"
    assert body["mode"] == "paid-executive-education"
    assert body["geag_variant_id"] == "79a95406-a9ac-49b3-a27c-44f3fd06092e"
    assert body["enroll_by_date"] == world.iso(12)  # exec-ed: the enrollment end, not the upgrade deadline
    assert body["content_price"] == 250000


def test_content_metadata_price_may_be_zero(api):
    assert _metadata(api, world.FREE_RUN).json()["content_price"] == 0


@pytest.mark.parametrize("key, customer", [
    (world.GHOST, world.CUSTOMER),  # seeded, in no catalog
    ("course-v1:Unknown+Key+1T2026", world.CUSTOMER),
    (world.BAKING_OTHER_RUN, world.CUSTOMER),  # a sibling of a run-only catalog entry
    (world.COOKING_RUN, world.CUSTOMER_OTHER),  # another customer's catalogs
])
def test_content_metadata_not_found_is_a_bare_json_string(api, key, customer):
    response = _metadata(api, key, customer)
    assert response.status_code == 404
    assert response.json() == "Content not found"


def test_content_metadata_errors_for_the_customer_parameter(api):
    missing = _metadata(api, world.COOKING_RUN, customer=None)
    assert missing.status_code == 400
    assert isinstance(missing.json(), list) and "enterprise_customer_uuid" in missing.json()[0]

    malformed = _metadata(api, world.COOKING_RUN, customer="nope")
    assert malformed.status_code == 400
    assert malformed.json() == {"detail": "nope is not a valid uuid."}


def test_content_metadata_passes_catalog_failures_through(api, control):
    control.add_fault("catalog", "content-metadata", status=503, internal=True, times=1)
    response = _metadata(api, world.COOKING_RUN)
    assert response.status_code == 503
    assert isinstance(response.json(), str)


def test_content_key_may_arrive_percent_encoded(api):
    response = api.get("/subsidy/api/v1/content-metadata/course-v1:DemoU%2BCooking101%2B2T2026/",
                       params={"enterprise_customer_uuid": world.CUSTOMER})
    assert response.json()["course_run_key"] == world.COOKING_RUN


# --- aggregates-by-learner, deposits, transaction retrieve ------------------------------------------

def test_aggregates_by_learner_counts_committed_unreversed_redemptions(api, control):
    api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    api.redeem(world.SUBSIDY, world.PAT, world.BAKING_RUN, policy=world.POLICY_OTHER)
    reversed_tx = api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN).json()
    control.reverse(reversed_tx["uuid"])

    path = f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/aggregates-by-learner"
    assert api.get(path).json() == [{"lms_user_id": world.PAT, "total": 2}]
    assert api.get(path, params={"subsidy_access_policy_uuid": world.POLICY}).json() == [
        {"lms_user_id": world.PAT, "total": 1}
    ]
    assert api.get(f"/subsidy/api/v1/subsidies/{world.UNKNOWN_UUID}/aggregates-by-learner").status_code == 403


def test_retrieve_transaction(api):
    created = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    response = api.get(f"/subsidy/api/v1/transactions/{created['uuid']}/")

    assert response.status_code == 200
    assert response.json() == created
    assert created["transaction_status_api_url"] == f"{api.url}/subsidy/api/v1/transactions/{created['uuid']}/"
    assert api.get(f"/subsidy/api/v1/transactions/{world.UNKNOWN_UUID}/").status_code == 403


def test_admin_deposit_adds_to_balance_and_total_deposits(api):
    response = api.post(f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/deposits/", json={
        "desired_deposit_quantity": 5000, "sales_contract_reference_id": "OPP-2",
        "sales_contract_reference_provider": "salesforce_opportunity_line_item", "metadata": {"why": "top-up"},
    })

    assert response.status_code == 201, response.text
    assert response.json()["desired_deposit_quantity"] == 5000
    subsidy = api.subsidy(world.SUBSIDY)
    assert subsidy["current_balance"] == subsidy["total_deposits"] == 1_005_000
    assert subsidy["starting_balance"] == 1_000_000

    invalid = api.post(f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/deposits/", json={})
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"desired_deposit_quantity", "sales_contract_reference_id",
                                   "sales_contract_reference_provider"}
