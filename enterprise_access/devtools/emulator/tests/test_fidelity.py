"""
Where the emulator once differed from the real services (compared side by side with
openedx/enterprise-subsidy, enterprise-catalog and edx-enterprise), it now answers as they do.
The README's "How the real services answer" section lists the same facts.
"""
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from . import world

pytestmark = pytest.mark.emulator

NOT_THE_CUSTOMERS = {"detail": "No matching content in any catalog for this customer"}
NO_FULFILLMENT = {"detail": "No fulfillment record matches the provided UUID."}


def _is_django_page(response, status, title):
    return (response.status_code == status
            and response.headers["Content-Type"].startswith("text/html")
            and f"<h1>{title}</h1>" in response.text)


def _is_html_404(response):
    return _is_django_page(response, 404, "Not Found")


def _is_html_500(response):
    return _is_django_page(response, 500, "Server Error (500)")


def _fulfillment_path(fulfillment_uuid):
    return f"/lms/enterprise/api/v1/enterprise-subsidy-fulfillment/{fulfillment_uuid}/cancel-fulfillment"


def _raw_create(api, body, subsidy_uuid=world.SUBSIDY):
    return api.post(f"/subsidy/api/v2/subsidies/{subsidy_uuid}/admin/transactions/", json=body)


def _create_body(**overrides):
    return {"subsidy_uuid": world.SUBSIDY, "lms_user_id": world.PAT, "content_key": world.COOKING_RUN,
            "subsidy_access_policy_uuid": world.POLICY, "idempotency_key": f"test-{uuid.uuid4()}", **overrides}


# --- 1. the catalog's v2 customer content-metadata path --------------------------------------------

@pytest.mark.parametrize("key", [world.COOKING_RUN, world.COOKING, world.BAKING_RUN, world.GHOST, "Nope+Nothing"])
def test_customer_content_metadata_answers_alike_on_v1_and_v2(api, key):
    v1 = api.get(f"/catalog/api/v1/enterprise-customer/{world.CUSTOMER}/content-metadata/{key}/",
                 params={"skip_customer_fetch": "True"})
    v2 = api.get(f"/catalog/api/v2/enterprise-customer/{world.CUSTOMER}/content-metadata/{key}/")

    assert (v2.status_code, v2.json()) == (v1.status_code, v1.json())
    if key in (world.GHOST, "Nope+Nothing"):
        assert (v2.status_code, v2.json()) == (404, NOT_THE_CUSTOMERS)
    else:
        assert v2.status_code == 200


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_customer_content_metadata_with_a_malformed_customer_is_a_500_page(api, version):
    response = api.get(f"/catalog/api/{version}/enterprise-customer/not-a-uuid/content-metadata/{world.COOKING}/")
    assert _is_html_500(response)


def test_the_subsidy_prices_through_the_v2_catalog_path(api, control):
    # A fault keyed on the old v1 path no longer matches the provider's pricing call...
    control.add_fault("catalog", r"/api/v1/enterprise-customer/", status=502, internal=True)
    assert api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).status_code == 201
    control.clear_faults()
    # ...one keyed on the v2 path does, on the create and on the subsidy's content summary.
    control.add_fault("catalog", rf"^/api/v2/enterprise-customer/{world.CUSTOMER}/content-metadata/", status=502,
                      internal=True, times=2)

    create = api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN)
    summary = api.get(f"/subsidy/api/v1/content-metadata/{world.COOKING_RUN}/",
                      params={"enterprise_customer_uuid": world.CUSTOMER})

    assert (create.status_code, create.json()["code"]) == (422, "enrollment_error")
    assert f"/catalog/api/v2/enterprise-customer/{world.CUSTOMER}/content-metadata/" in create.json()["detail"]
    assert summary.status_code == 502
    assert control.faults() == []


# --- 2. the LMS cancel-fulfillment endpoint, and reversals that call it ----------------------------

def test_cancel_fulfillment_makes_the_enrollment_inactive(api, control):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    path = _fulfillment_path(tx["fulfillment_identifier"])

    cancelled = api.post(path)
    again = api.post(path)

    assert (cancelled.status_code, cancelled.content) == (204, b"")
    assert [row["active"] for row in control.enrollments()] == [False]
    assert (again.status_code, again.json()) == (200, {"detail": "Enrollment is already canceled."})
    # Cancelling the enrollment is not a reversal: the ledger is untouched.
    assert api.get(f"/subsidy/api/v1/transactions/{tx['uuid']}/").json()["reversal"] is None


def test_cancel_fulfillment_errors(api, emulator):
    unknown = api.post(_fulfillment_path(world.UNKNOWN_UUID))
    assert (unknown.status_code, unknown.json()) == (404, NO_FULFILLMENT)
    assert _is_html_500(api.post(_fulfillment_path("not-a-uuid")))  # a UUIDField lookup fails
    assert _is_html_404(api.post(_fulfillment_path(world.UNKNOWN_UUID) + "/"))  # the route has no slash
    assert api.get(_fulfillment_path(world.UNKNOWN_UUID)).status_code == 405
    assert requests.post(emulator.url + _fulfillment_path(world.UNKNOWN_UUID), timeout=5).status_code == 401


def test_a_reversal_cancels_the_fulfillment_through_the_lms(api, control):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    control.reverse(tx["uuid"])

    [enrollment] = control.enrollments()
    assert enrollment["fulfillment_uuid"] == tx["fulfillment_identifier"]
    assert enrollment["active"] is False


def test_a_reversal_rolls_back_when_the_cancel_fulfillment_call_fails(api, control, emulator):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    control.add_fault("lms", "cancel-fulfillment", method="POST", status=500, internal=True, times=1)

    response = requests.post(f"{emulator.url}/_control/reversals", json={"transaction_uuid": tx["uuid"]}, timeout=5)

    assert response.status_code == 502
    body = response.json()
    assert body["rolled_back"] is True
    assert tx["fulfillment_identifier"] in body["detail"] and "rolled back" in body["detail"]
    assert api.get(f"/subsidy/api/v1/transactions/{tx['uuid']}/").json()["reversal"] is None
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900
    assert [row["active"] for row in control.enrollments()] == [True]
    # Once the LMS answers again, the same reversal goes through.
    assert control.reverse(tx["uuid"])["reversal"]["quantity"] == 19900


def test_a_reversal_rolls_back_when_the_lms_does_not_know_the_fulfillment(api, control, emulator):
    ghost_fulfillment = str(uuid.uuid4())
    control.add_fault("lms", "enroll_learners_in_courses", status=201, internal=True, times=1,
                      body={"successes": [{"enterprise_fulfillment_source_uuid": ghost_fulfillment}]})
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    assert tx["fulfillment_identifier"] == ghost_fulfillment

    response = requests.post(f"{emulator.url}/_control/reversals", json={"transaction_uuid": tx["uuid"]}, timeout=5)

    assert response.status_code == 502
    assert "404 Client Error" in response.json()["detail"]
    assert api.get(f"/subsidy/api/v1/transactions/{tx['uuid']}/").json()["reversal"] is None


def test_a_reversal_after_the_learner_unenrolled_goes_through(api, control):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    assert api.post(_fulfillment_path(tx["fulfillment_identifier"])).status_code == 204

    # The LMS answers 200 "already canceled", which the provider accepts.
    assert control.reverse(tx["uuid"])["reversal"]["state"] == "committed"
    assert api.balance(world.SUBSIDY) == 1_000_000


def test_an_exec_ed_reversal_cancels_the_geag_allocation_first(api, control, emulator):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN, metadata=world.EXEC_METADATA).json()
    control.add_fault("geag", "enterprise_allocations/cancel", status=500, internal=True, times=1)

    failed = requests.post(f"{emulator.url}/_control/reversals", json={"transaction_uuid": tx["uuid"]}, timeout=5)

    assert failed.status_code == 502
    assert [row["active"] for row in control.enrollments()] == [True]  # the LMS was never asked
    assert control.reverse(tx["uuid"])["reversal"] is not None


def test_a_transaction_without_a_fulfillment_cannot_be_reversed(control, emulator):
    deposit = control.transactions(world.SUBSIDY)[0]

    response = requests.post(f"{emulator.url}/_control/reversals", json={"transaction_uuid": deposit["uuid"]},
                             timeout=5)

    assert response.status_code == 409
    assert "no platform fulfillment uuid" in response.json()["detail"]
    assert control.transactions(world.SUBSIDY)[0]["reversal"] is None


# --- 3. metadata is always an object ---------------------------------------------------------------

@pytest.mark.parametrize("metadata", ["omitted", None, {}, [], "", False, 0])
def test_missing_or_empty_metadata_is_stored_as_an_empty_object(api, metadata):
    body = _create_body() if metadata == "omitted" else _create_body(metadata=metadata)

    created = _raw_create(api, body)

    assert created.status_code == 201, created.text
    assert created.json()["metadata"] == {}
    assert api.get(f"/subsidy/api/v1/transactions/{created.json()['uuid']}/").json()["metadata"] == {}
    history = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()["all_transactions"]
    assert [tx["metadata"] for tx in history] == [{}]


@pytest.mark.parametrize("metadata, kind", [([1], "list"), ("note", "str"), (7, "int"), (True, "bool")])
def test_metadata_that_is_not_an_object_is_a_creation_error(api, control, metadata, kind):
    response = _raw_create(api, _create_body(metadata=metadata))

    assert response.status_code == 422
    assert response.json() == {
        "detail": f"Subsidy.create_transaction() argument after ** must be a mapping, not {kind}",
        "code": "transaction_creation_error",
    }
    assert len(control.transactions(world.SUBSIDY)) == 1  # only the deposit: nothing was written


@pytest.mark.parametrize("key, message", [
    ("lms_user_id", "Subsidy.create_transaction() got multiple values for keyword argument 'lms_user_id'"),
    ("quantity", "Subsidy.create_transaction() got multiple values for argument 'quantity'"),
    ("ledger", "create_transaction() got multiple values for keyword argument 'ledger'"),
])
def test_metadata_keys_that_name_the_providers_parameters_break_the_create(api, control, key, message):
    response = _raw_create(api, _create_body(metadata={key: 1, "note": "x"}))

    assert response.status_code == 422
    assert response.json() == {"detail": message, "code": "transaction_creation_error"}
    assert len(control.transactions(world.SUBSIDY)) == 1


def test_a_state_key_in_metadata_is_consumed_by_the_ledger(api):
    created = _raw_create(api, _create_body(metadata={"state": "failed", "note": "kept"}))

    assert created.status_code == 201
    assert created.json()["state"] == "committed"
    assert created.json()["metadata"] == {"note": "kept"}


def test_deposits_and_reversals_carry_empty_metadata_objects(api, control):
    deposit = api.post(f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/deposits/", json={
        "desired_deposit_quantity": 5, "sales_contract_reference_id": "R", "sales_contract_reference_provider": "m",
    })
    assert deposit.status_code == 201
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    reversed_tx = control.reverse(tx["uuid"])

    assert reversed_tx["reversal"]["metadata"] == {}
    listed = {row["uuid"]: row for row in control.transactions(world.SUBSIDY)}
    assert [row["metadata"] for row in listed.values() if row["lms_user_id"] is None] == [{}, {}]


# --- 4. transaction detail: unknown is 403, malformed is 400 ---------------------------------------

def test_an_unknown_transaction_is_403_not_404(api):
    response = api.get(f"/subsidy/api/v1/transactions/{world.UNKNOWN_UUID}/")
    assert response.status_code == 403
    assert response.json() == {"detail": "MISSING: subsidy.can_read_transactions"}


def test_a_malformed_transaction_uuid_is_400(api):
    response = api.get("/subsidy/api/v1/transactions/not-a-uuid/")
    assert response.status_code == 400
    assert response.json() == {"detail": "not-a-uuid is not a valid uuid."}
    # A dot ends a router lookup: that path matches no route at all.
    assert _is_html_404(api.get("/subsidy/api/v1/transactions/a.b/"))


# --- 5. aggregates-by-learner exists only without the trailing slash --------------------------------

def test_aggregates_by_learner_with_a_trailing_slash_is_404(api):
    path = f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/aggregates-by-learner"
    assert api.get(path).status_code == 200
    assert _is_html_404(api.get(path + "/"))


# --- 6. Django's HTML for unknown routes, and what a malformed uuid gets on each route ---------------

@pytest.mark.parametrize("path", [
    "/subsidy/api/v1/nothing-here/",
    "/subsidy/api/v3/subsidies/",
    "/catalog/api/v2/enterprise-catalogs/",
    "/lms/enterprise/api/v1/nowhere/",
    "/subsidy/",
    "/elsewhere/api/",
])
def test_unknown_routes_are_django_html_404s_even_without_a_token(emulator, control, path):
    response = requests.get(emulator.url + path, timeout=5)

    assert _is_html_404(response)
    assert "The requested resource was not found on this server." in response.text


def test_unknown_routes_are_logged_with_their_service(api, control):
    api.get("/catalog/api/v1/nothing/")
    assert [(row["service"], row["status"]) for row in control.requests()] == [("catalog", 404)]


def test_a_known_route_without_its_slash_redirects_as_append_slash_does(api, control):
    path = f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/can_redeem"
    params = {"lms_user_id": world.PAT, "content_key": world.COOKING_RUN}

    redirect = api.get(path, params=params, allow_redirects=False)
    followed = api.get(path, params=params)

    assert redirect.status_code == 301
    # The query string travels on verbatim, as the client encoded it.
    assert redirect.headers["Location"] == f"{path}/?{urlsplit(redirect.request.url).query}"
    assert followed.status_code == 200 and followed.json()["can_redeem"] is True
    assert [row["status"] for row in control.requests()] == [301, 301, 200]


def test_wrong_methods_on_known_routes_are_405_json_after_authentication(api, emulator):
    path = f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/"
    assert api.post(path).json() == {"detail": 'Method "POST" not allowed.'}
    assert requests.post(emulator.url + path, timeout=5).status_code == 401


@pytest.mark.parametrize("method, path", [
    ("GET", "/subsidy/api/v1/subsidies/not-a-uuid/"),
    ("GET", "/subsidy/api/v1/subsidies/not-a-uuid/can_redeem/?lms_user_id=1&content_key=x"),
    ("GET", "/subsidy/api/v1/subsidies/not-a-uuid/aggregates-by-learner"),
    ("GET", "/subsidy/api/v2/subsidies/not-a-uuid/admin/transactions/"),
    ("POST", "/subsidy/api/v2/subsidies/not-a-uuid/admin/transactions/"),
    ("POST", "/subsidy/api/v2/subsidies/not-a-uuid/admin/deposits/"),
    ("GET", "/catalog/api/v2/enterprise-catalogs/not-a-uuid/get_content_metadata/"),
    ("POST", "/lms/enterprise/api/v1/enterprise-subsidy-fulfillment/not-a-uuid/cancel-fulfillment"),
])
def test_malformed_uuids_that_reach_a_uuid_lookup_are_500_pages(api, method, path):
    assert _is_html_500(api.session.request(method, api.url + path, json={}, timeout=5))


@pytest.mark.parametrize("path, detail", [
    ("/catalog/api/v2/enterprise-catalogs/not-a-uuid/contains_content_items/?course_run_ids=x", "Not found."),
    ("/lms/enterprise/api/v1/enterprise-customer/not-a-uuid/", "Not found."),
])
def test_malformed_uuids_behind_drf_get_object_are_json_404s(api, path, detail):
    response = api.get(path)
    assert (response.status_code, response.json()) == (404, {"detail": detail})


def test_the_v1_transaction_list_and_its_subsidy_parameter(api):
    path = "/subsidy/api/v1/transactions/"
    missing = api.get(path)
    assert (missing.status_code, missing.json()) == (
        400, ["You must provide at least one of the following query parameters: subsidy_uuid."])
    malformed = api.get(path, params={"subsidy_uuid": "nope"})
    assert (malformed.status_code, malformed.json()) == (400, {"detail": "nope is not a valid uuid."})
    # Aggregates look the subsidy up, which fails for an unknown one.
    assert _is_html_500(api.get(path, params={"subsidy_uuid": world.UNKNOWN_UUID, "include_aggregates": "true"}))
