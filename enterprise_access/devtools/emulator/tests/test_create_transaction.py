"""Create transaction (redeem), §2.5, §2.8, §5.1, §5.5 and §5.6."""
import hashlib

import pytest
import requests

from . import world

pytestmark = pytest.mark.emulator

TRANSACTION_FIELDS = {
    "uuid", "state", "idempotency_key", "lms_user_id", "lms_user_email", "content_key", "parent_content_key",
    "content_title", "course_run_start_date", "quantity", "unit", "fulfillment_identifier",
    "subsidy_access_policy_uuid", "metadata", "created", "modified", "reversal", "external_reference",
    "transaction_status_api_url", "courseware_url",
}


def _states(control, subsidy_uuid=world.SUBSIDY):
    return [tx["state"] for tx in control.transactions(subsidy_uuid) if tx["lms_user_id"] is not None]


# --- success and its JSON -------------------------------------------------------------------------

def test_redeem_commits_enrolls_and_debits(api, control):
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="ledger-for-subsidy-x-abc",
                          metadata={"note": "kept verbatim"})

    assert response.status_code == 201, response.text
    tx = response.json()
    assert set(tx) == TRANSACTION_FIELDS
    assert tx["state"] == "committed"
    assert tx["idempotency_key"] == "ledger-for-subsidy-x-abc"
    assert tx["lms_user_id"] == world.PAT
    assert tx["lms_user_email"] == "pat@example.org"
    assert tx["content_key"] == world.COOKING_RUN
    assert tx["parent_content_key"] == world.COOKING
    assert tx["content_title"] == "Cooking for Engineers"
    assert tx["course_run_start_date"] == world.iso(30)
    assert tx["quantity"] == -19900
    assert tx["unit"] == "usd_cents"
    assert tx["subsidy_access_policy_uuid"] == world.POLICY
    assert tx["metadata"] == {"note": "kept verbatim"}
    assert tx["reversal"] is None
    assert tx["external_reference"] == []
    assert tx["courseware_url"] == f"{api.url}/learning/course/{world.COOKING_RUN}/home"
    enrollment = control.enrollments()[-1]
    assert tx["fulfillment_identifier"] == enrollment["fulfillment_uuid"]
    assert enrollment["transaction_uuid"] == tx["uuid"]
    assert enrollment["course_run_key"] == world.COOKING_RUN
    assert enrollment["force_enrollment"] is False
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900


def test_redeeming_a_course_key_enrolls_the_advertised_run(api, control):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING).json()
    assert tx["content_key"] == world.COOKING
    assert tx["quantity"] == -19900
    assert control.enrollments()[-1]["course_run_key"] == world.COOKING_RUN


def test_email_snapshot_is_null_for_an_unknown_learner_or_failing_accounts_api(api, control):
    assert api.redeem(world.SUBSIDY, 4040, world.COOKING_RUN).json()["lms_user_email"] is None
    control.add_fault("lms", "accounts", status=500, internal=True, times=1)
    assert api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN).json()["lms_user_email"] is None


# --- repeat behaviour (§2.8) ----------------------------------------------------------------------

def test_existing_committed_redemption_is_returned_with_200_whatever_the_key_or_policy(api):
    first = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-1")
    same_key = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-1")
    other_key = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-2", policy=world.POLICY_OTHER)

    assert first.status_code == 201
    assert same_key.status_code == other_key.status_code == 200
    assert same_key.json() == other_key.json() == first.json()
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900


def test_a_failed_row_is_redriven_unchanged_under_its_old_key(api, control):
    control.add_fault("lms", "enroll_learners_in_courses", status=500, internal=True, times=1)
    failed = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-retry", metadata={"try": 1})
    assert failed.status_code == 422
    assert api.balance(world.SUBSIDY) == 1_000_000  # failed rows do not count

    again = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-retry", metadata={"try": 2},
                       policy=world.POLICY_OTHER)

    assert again.status_code == 201
    tx = again.json()
    assert tx["state"] == "committed"
    assert tx["metadata"] == {"try": 1}  # the old row, not rewritten
    assert tx["subsidy_access_policy_uuid"] == world.POLICY
    assert tx["fulfillment_identifier"]
    assert len([t for t in control.transactions(world.SUBSIDY) if t["lms_user_id"] == world.PAT]) == 1


def test_after_a_reversal_a_new_key_makes_a_new_redemption(api, control):
    first = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-a").json()
    control.reverse(first["uuid"])
    assert api.balance(world.SUBSIDY) == 1_000_000

    second = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-b")

    assert second.status_code == 201
    assert second.json()["uuid"] != first["uuid"]
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900


def test_after_a_reversal_the_old_key_redrives_the_old_row(api, control):
    first = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-a").json()
    control.reverse(first["uuid"])

    again = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-a")

    assert again.status_code == 201
    assert again.json()["uuid"] == first["uuid"]
    assert again.json()["reversal"] is not None


def test_without_a_key_the_provider_derives_one(api):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key=None).json()
    fields = {"lms_user_id": world.PAT, "content_key": world.COOKING_RUN,
              "subsidy_access_policy_uuid": world.POLICY}
    digest = hashlib.md5(str(fields).encode()).hexdigest()  # noqa: S324 - the provider's recipe
    assert tx["idempotency_key"] == f"ledger-for-subsidy-{world.SUBSIDY}--19900-{digest}"


# --- refusals in the contract's order ---------------------------------------------------------------

@pytest.mark.parametrize("subsidy_uuid", [world.UNKNOWN_UUID, world.SUBSIDY_DELETED])
def test_unknown_or_deleted_subsidy_is_403(api, subsidy_uuid):
    response = api.redeem(subsidy_uuid, world.PAT, world.COOKING_RUN)
    assert response.status_code == 403
    assert response.json() == {"detail": "Missing: subsidy.can_create_transactions"}


@pytest.mark.parametrize("subsidy_uuid", [world.SUBSIDY_EXPIRED, world.SUBSIDY_FUTURE])
def test_inactive_subsidy_is_422_even_before_body_validation(api, subsidy_uuid):
    expected = {"detail": "Cannot create a transaction in an inactive subsidy",
                "code": "inactive_subsidy_creation_error"}
    assert api.redeem(subsidy_uuid, world.PAT, world.COOKING_RUN).json() == expected
    invalid_body = api.post(f"/subsidy/api/v2/subsidies/{subsidy_uuid}/admin/transactions/", json={})
    assert invalid_body.status_code == 422
    assert invalid_body.json() == expected


def test_body_validation_is_400_with_field_lists(api):
    path = f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/"

    missing = api.post(path, json={})
    assert missing.status_code == 400
    assert missing.json() == {"lms_user_id": ["This field is required."], "content_key": ["This field is required."],
                              "subsidy_access_policy_uuid": ["This field is required."]}

    wrong = api.post(path, json={"lms_user_id": "abc", "content_key": "", "subsidy_access_policy_uuid": "x",
                                 "requested_price_cents": -1, "idempotency_key": " "})
    assert wrong.json() == {
        "lms_user_id": ["A valid integer is required."],
        "content_key": ["This field may not be blank."],
        "subsidy_access_policy_uuid": ["Must be a valid UUID."],
        "idempotency_key": ["This field may not be blank."],
        "requested_price_cents": ["Ensure this value is greater than or equal to 0."],
    }

    not_json = api.post(path, data="{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert "detail" in not_json.json()


def test_content_outside_the_customers_catalogs_is_content_not_found(api):
    response = api.redeem(world.SUBSIDY, world.PAT, world.GHOST)
    assert response.status_code == 422
    assert response.json() == {"detail": "The given content_key is not in any catalog for this customer.",
                               "code": "content_not_found"}


def test_a_catalog_failure_while_pricing_is_enrollment_error(api, control):
    control.add_fault("catalog", "content-metadata", status=502, internal=True, times=1)
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    assert response.status_code == 422
    assert response.json()["code"] == "enrollment_error"
    assert response.json()["detail"].startswith("502 Server Error: Bad Gateway for url: ")
    assert _states(control) == []  # nothing written


def test_requested_price_overrides_within_twenty_percent(api):
    cheaper = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, requested_price_cents=16000)
    assert cheaper.status_code == 201
    assert cheaper.json()["quantity"] == -16000

    zero_means_canonical = api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN, requested_price_cents=0)
    assert zero_means_canonical.json()["quantity"] == -19900


def test_requested_price_outside_the_interval_is_refused(api):
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, requested_price_cents=15000)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_requested_price"
    assert response.json()["detail"].startswith("['Requested price ")


def test_low_balance_is_transaction_creation_error_without_a_distinct_code(api, control):
    response = api.redeem(world.SUBSIDY_LOW, world.PAT, world.EXEC_RUN, metadata=world.EXEC_METADATA)
    assert response.status_code == 422
    assert response.json() == {"detail": "Transaction was None after attempting to redeem",
                               "code": "transaction_creation_error"}
    assert _states(control, world.SUBSIDY_LOW) == []


def test_balance_is_exact_down_to_zero(api):
    # 30,000 buys one 19,900 run and two 5,000 runs (29,900); a third 5,000 overdraws.
    assert api.redeem(world.SUBSIDY_LOW, world.PAT, world.COOKING_RUN).status_code == 201
    assert api.redeem(world.SUBSIDY_LOW, world.PAT, world.BAKING_RUN).status_code == 201
    assert api.redeem(world.SUBSIDY_LOW, world.SAM, world.BAKING_RUN).status_code == 201
    assert api.balance(world.SUBSIDY_LOW) == 100
    assert api.redeem(world.SUBSIDY_LOW, world.ALEX, world.BAKING_RUN).json()["code"] == "transaction_creation_error"
    assert api.redeem(world.SUBSIDY_LOW, world.ALEX, world.FREE_RUN).status_code == 201  # price 0 still fits


# --- enrollment step --------------------------------------------------------------------------------

def test_enrollment_http_error_fails_the_transaction(api, control):
    control.add_fault("lms", "enroll_learners_in_courses", status=500, internal=True, times=1)

    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)

    assert response.status_code == 422
    assert response.json()["code"] == "enrollment_error"
    assert response.json()["detail"].startswith("500 Server Error: Internal Server Error for url: ")
    assert _states(control) == ["failed"]
    assert api.balance(world.SUBSIDY) == 1_000_000


@pytest.mark.parametrize("fault", [
    {"status": 0},
    {"status": 201, "body": '{"successes": [], "pending": [], "failures": []}'},
    {"status": 200, "body": "not json"},
])
def test_other_enrollment_failures_are_transaction_creation_error(api, control, fault):
    control.add_fault("lms", "enroll_learners_in_courses", internal=True, times=1, **fault)
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    assert response.status_code == 422
    assert response.json()["code"] == "transaction_creation_error"
    assert _states(control) == ["failed"]


def test_closed_enrollment_fails_without_allow_late_enrollment(api, control):
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_OLD_RUN, metadata={})
    assert response.status_code == 422
    assert response.json()["code"] == "enrollment_error"
    assert response.json()["detail"].startswith("409 Client Error: Conflict")
    assert _states(control) == ["failed"]


def test_allow_late_enrollment_is_stored_and_forces_the_enrollment(api, control):
    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_OLD_RUN,
                          metadata={"allow_late_enrollment": True})

    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"allow_late_enrollment": True}
    assert response.json()["quantity"] == -15000
    enrollment = control.enrollments()[-1]
    assert enrollment["force_enrollment"] is True
    assert enrollment["transaction_uuid"] == response.json()["uuid"]


# --- executive education (§5.5) ---------------------------------------------------------------------

def test_exec_ed_without_its_metadata_fails_with_fulfillment_error(api, control):
    response = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN, metadata={"allow_late_enrollment": True})

    assert response.status_code == 422
    assert response.json() == {"detail": "missing geag_first_name transaction metadata", "code": "fulfillment_error"}
    assert _states(control) == ["failed"]
    assert api.balance(world.SUBSIDY) == 1_000_000


def test_exec_ed_reports_the_first_missing_key(api):
    metadata = {**world.EXEC_METADATA}
    del metadata["geag_date_of_birth"]
    response = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN, metadata=metadata)
    assert response.json()["detail"] == "missing geag_date_of_birth transaction metadata"


def test_exec_ed_with_its_metadata_commits_with_an_external_reference(api, control):
    response = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN, metadata=world.EXEC_METADATA)

    assert response.status_code == 201, response.text
    tx = response.json()
    assert tx["state"] == "committed"
    assert len(tx["external_reference"]) == 1
    assert tx["fulfillment_identifier"]
    assert tx["quantity"] == -250000


def test_exec_ed_needs_data_share_consent_when_the_customer_requires_it(api):
    without = api.redeem(world.SUBSIDY_DSC, world.SAM, world.EXEC_RUN, metadata=world.EXEC_METADATA)
    assert without.json() == {"detail": "missing geag_data_share_consent transaction metadata",
                              "code": "fulfillment_error"}

    with_consent = api.redeem(world.SUBSIDY_DSC, world.SAM, world.EXEC_RUN,
                              metadata={**world.EXEC_METADATA, "geag_data_share_consent": True})
    assert with_consent.status_code == 201


def test_exec_ed_without_a_variant_fails(api):
    response = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_NO_VARIANT_RUN, metadata=world.EXEC_METADATA)
    assert response.status_code == 422
    assert response.json()["code"] == "fulfillment_error"


def test_exec_ed_geag_failure_and_fallback_reference(api, control):
    control.add_fault("geag", "allocations", status=500, internal=True, times=1)
    failed = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN, metadata=world.EXEC_METADATA)
    assert failed.json()["code"] == "fulfillment_error"

    forced = api.redeem(world.SUBSIDY, world.SAM, world.EXEC_RUN, metadata={
        **world.EXEC_METADATA, "fallback_external_fulfillment_reference_id": "order-123",
    })
    assert forced.json()["external_reference"] == ["order-123"]


def test_the_courseware_url_opens_a_placeholder_page(api):
    # The demo prints a redemption whose courseware_url a user will click: the link must open, not 404.
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="courseware-link").json()
    page = requests.get(tx["courseware_url"], timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Courseware (emulated)" in page.text and world.COOKING_RUN in page.text
    assert "<script>" not in requests.get(f"{api.url}/learning/<script>", timeout=5).text
