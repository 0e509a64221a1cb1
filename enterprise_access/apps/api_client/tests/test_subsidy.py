"""EnterpriseSubsidyClient against the contract's payload shapes (§2)."""
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client import UpstreamBusyError, UpstreamRequestError, UpstreamUnavailableError
from enterprise_access.apps.api_client.testing import subsidy_url

from .conftest import api_calls
from .payloads import (
    AGGREGATES,
    CAN_REDEEM,
    CONTENT_SUMMARY,
    CUSTOMER_UUID,
    LMS_USER_ID,
    POLICY_UUID,
    RUN_KEY,
    SUBSIDY,
    SUBSIDY_UUID,
    TRANSACTION,
    TRANSACTION_UUID,
    page,
)

TRANSACTIONS_PATH = f"/api/v2/subsidies/{SUBSIDY_UUID}/admin/transactions/"
CONTENT_METADATA_PATH = f"/api/v1/content-metadata/{RUN_KEY}/"


@pytest.fixture
def client():
    return api_client.get_subsidy_client()


def query(call):
    return parse_qs(urlsplit(call.request.url).query)


def test_retrieve_subsidy(mock_upstream, client):
    mock_upstream.get(subsidy_url(f"/api/v1/subsidies/{SUBSIDY_UUID}/"), json=SUBSIDY)
    assert client.retrieve_subsidy(SUBSIDY_UUID) == SUBSIDY


def test_can_redeem_sends_learner_and_content_and_is_never_cached(mock_upstream, client):
    mock_upstream.get(subsidy_url(f"/api/v1/subsidies/{SUBSIDY_UUID}/can_redeem/"), json=CAN_REDEEM)

    assert client.can_redeem(SUBSIDY_UUID, LMS_USER_ID, RUN_KEY) == CAN_REDEEM
    assert client.can_redeem(SUBSIDY_UUID, LMS_USER_ID, RUN_KEY) == CAN_REDEEM

    calls = api_calls(mock_upstream)
    assert len(calls) == 2
    assert query(calls[0]) == {"lms_user_id": [str(LMS_USER_ID)], "content_key": [RUN_KEY]}
    assert "content_key=course-v1%3ADemoU%2BCooking101%2B2T2026" in calls[0].request.url


def test_content_metadata_puts_the_raw_key_in_the_path_and_is_cached(mock_upstream, client):
    mock_upstream.get(subsidy_url(CONTENT_METADATA_PATH), json=CONTENT_SUMMARY)

    assert client.get_content_metadata(RUN_KEY, CUSTOMER_UUID) == CONTENT_SUMMARY
    assert api_client.get_subsidy_client().get_content_metadata(RUN_KEY, CUSTOMER_UUID) == CONTENT_SUMMARY

    [call] = api_calls(mock_upstream)
    assert urlsplit(call.request.url).path == f"/subsidy/api/v1/content-metadata/{RUN_KEY}/"
    assert query(call) == {"enterprise_customer_uuid": [CUSTOMER_UUID]}


def test_content_metadata_cache_is_per_customer(mock_upstream, client):
    mock_upstream.get(subsidy_url(CONTENT_METADATA_PATH), json=CONTENT_SUMMARY)
    client.get_content_metadata(RUN_KEY, CUSTOMER_UUID)
    client.get_content_metadata(RUN_KEY, "c0ffee00-0000-4000-8000-000000000002")
    assert len(api_calls(mock_upstream)) == 2


def test_content_metadata_cache_honours_the_timeout_setting(mock_upstream, client, settings):
    settings.CONTENT_METADATA_CACHE_TIMEOUT = 0  # Django: 0 means "expire immediately"
    mock_upstream.get(subsidy_url(CONTENT_METADATA_PATH), json=CONTENT_SUMMARY)
    client.get_content_metadata(RUN_KEY, CUSTOMER_UUID)
    client.get_content_metadata(RUN_KEY, CUSTOMER_UUID)
    assert len(api_calls(mock_upstream)) == 2


def test_content_not_found_is_none_and_not_cached(mock_upstream, client):
    mock_upstream.get(subsidy_url(CONTENT_METADATA_PATH), status=404, json="Content not found")

    assert client.get_content_metadata(RUN_KEY, CUSTOMER_UUID) is None
    assert client.get_content_metadata(RUN_KEY, CUSTOMER_UUID) is None
    assert len(api_calls(mock_upstream)) == 2


@pytest.mark.parametrize("answer, error", [
    ({"status": 404, "json": {"detail": "Not found."}}, UpstreamRequestError),  # a wrong route is not "no content"
    ({"status": 404, "body": "<h1>Not Found</h1>"}, UpstreamRequestError),
    ({"status": 400, "json": ["You must provide at least one of enterprise_customer_uuid."]}, UpstreamRequestError),
    ({"status": 400, "json": {"detail": "nope is not a valid uuid."}}, UpstreamRequestError),
    ({"status": 502, "json": "catalog unavailable"}, UpstreamUnavailableError),
])
def test_content_metadata_errors_are_not_none(mock_upstream, client, answer, error):
    mock_upstream.get(subsidy_url(CONTENT_METADATA_PATH), **answer)
    with pytest.raises(error):
        client.get_content_metadata(RUN_KEY, CUSTOMER_UUID)


def test_list_transactions_walks_absolute_next_links_verbatim(mock_upstream, client):
    second_page = "http://subsidy.internal:8000/api/v2/subsidies/x/admin/transactions/?page=2&opaque=kept"
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH),
                 json=page([TRANSACTION], next_url=second_page, count=2, aggregates=AGGREGATES))
    other = {**TRANSACTION, "uuid": "0d6f0c1e-1111-4aaa-9bbb-000000000abd"}
    mock_upstream.get(second_page, json=page([other], count=2, aggregates=AGGREGATES))

    listed = client.list_transactions(
        SUBSIDY_UUID, lms_user_id=LMS_USER_ID, content_key=RUN_KEY, subsidy_access_policy_uuid=POLICY_UUID,
    )

    assert listed == {"results": [TRANSACTION, other], "aggregates": AGGREGATES}
    first, second = api_calls(mock_upstream)
    assert query(first) == {
        "state": ["committed", "pending", "created"], "page_size": ["100"], "lms_user_id": [str(LMS_USER_ID)],
        "content_key": [RUN_KEY], "subsidy_access_policy_uuid": [POLICY_UUID], "include_aggregates": ["true"],
    }
    assert second.request.url == second_page


def test_list_transactions_without_aggregates(mock_upstream, client):
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH), json=page([TRANSACTION]))

    listed = client.list_transactions(SUBSIDY_UUID, lms_user_id=LMS_USER_ID, states=["failed"],
                                      include_aggregates=False)

    assert listed == {"results": [TRANSACTION], "aggregates": {}}
    assert query(api_calls(mock_upstream)[0]) == {"state": ["failed"], "page_size": ["100"],
                                            "lms_user_id": [str(LMS_USER_ID)]}


def test_list_transactions_first_page_only_reads_just_the_aggregates(mock_upstream, client):
    second_page = "http://subsidy.internal:8000/api/v2/subsidies/x/admin/transactions/?page=2"
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH),
                      json=page([TRANSACTION], next_url=second_page, count=2, aggregates=AGGREGATES))

    listed = client.list_transactions(SUBSIDY_UUID, subsidy_access_policy_uuid=POLICY_UUID, first_page_only=True)

    assert listed["aggregates"] == AGGREGATES
    (only,) = api_calls(mock_upstream)  # the second page is never fetched
    assert query(only)["page_size"] == ["1"]


def test_list_transactions_is_never_cached(mock_upstream, client):
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH), json=page([], aggregates=AGGREGATES))
    client.list_transactions(SUBSIDY_UUID)
    client.list_transactions(SUBSIDY_UUID)
    assert len(api_calls(mock_upstream)) == 2


@pytest.mark.parametrize("body", [
    page([TRANSACTION]),  # aggregates asked for but missing: must not read as "nothing spent"
    {"results": "nope", "next": None, "aggregates": AGGREGATES},
    {"next": None, "aggregates": AGGREGATES},
])
def test_list_transactions_malformed_envelope(mock_upstream, client, body):
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH), json=body)
    with pytest.raises(UpstreamUnavailableError) as raised:
        client.list_transactions(SUBSIDY_UUID)
    assert raised.value.code == "malformed_response"


def test_list_transactions_pagination_loop_is_malformed(mock_upstream, client):
    url = subsidy_url(TRANSACTIONS_PATH) + "?page=1"
    mock_upstream.get(subsidy_url(TRANSACTIONS_PATH), json=page([TRANSACTION], next_url=url, aggregates=AGGREGATES))
    with pytest.raises(UpstreamUnavailableError) as raised:
        client.list_transactions(SUBSIDY_UUID)
    assert raised.value.code == "malformed_response"
    assert len(api_calls(mock_upstream)) == 2


def test_create_transaction_posts_the_v2_body(mock_upstream, client):
    mock_upstream.post(subsidy_url(TRANSACTIONS_PATH), status=201, json=TRANSACTION)

    created = client.create_transaction(
        SUBSIDY_UUID, lms_user_id=LMS_USER_ID, content_key=RUN_KEY, subsidy_access_policy_uuid=POLICY_UUID,
        idempotency_key=TRANSACTION["idempotency_key"], metadata={"allow_late_enrollment": True},
        requested_price_cents=19900,
    )

    assert created == TRANSACTION
    [call] = api_calls(mock_upstream)
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {
        "subsidy_uuid": SUBSIDY_UUID, "lms_user_id": LMS_USER_ID, "content_key": RUN_KEY,
        "subsidy_access_policy_uuid": POLICY_UUID, "idempotency_key": TRANSACTION["idempotency_key"],
        "metadata": {"allow_late_enrollment": True}, "requested_price_cents": 19900,
    }


def test_create_transaction_existing_redemption_200_and_optional_fields(mock_upstream, client):
    mock_upstream.post(subsidy_url(TRANSACTIONS_PATH), status=200, json=TRANSACTION)

    assert client.create_transaction(
        SUBSIDY_UUID, lms_user_id=LMS_USER_ID, content_key=RUN_KEY, subsidy_access_policy_uuid=POLICY_UUID,
        idempotency_key="k",
    ) == TRANSACTION
    body = json.loads(api_calls(mock_upstream)[0].request.body)
    assert body["metadata"] is None
    assert "requested_price_cents" not in body


@pytest.mark.parametrize("status, body, error, code, message", [
    (422, {"detail": "Transaction was None after attempting to redeem", "code": "transaction_creation_error"},
     UpstreamRequestError, "transaction_creation_error", "Transaction was None after attempting to redeem"),
    (422, {"detail": "Cannot create a transaction in an inactive subsidy", "code": "inactive_subsidy_creation_error"},
     UpstreamRequestError, "inactive_subsidy_creation_error", "Cannot create a transaction in an inactive subsidy"),
    (403, {"detail": "Missing: subsidy.can_create_transactions"},
     UpstreamRequestError, "http_403", "Missing: subsidy.can_create_transactions"),
    (400, {"requested_price_cents": ["Ensure this value is greater than or equal to 0."]},
     UpstreamRequestError, "http_400", "requested_price_cents: Ensure this value is greater than or equal to 0."),
    (429, {"detail": "Attempt to lock the Ledger failed, please try again."},
     UpstreamBusyError, "http_429", "Attempt to lock the Ledger failed, please try again."),
])
def test_create_transaction_errors(mock_upstream, client, status, body, error, code, message):
    mock_upstream.post(subsidy_url(TRANSACTIONS_PATH), status=status, json=body)

    with pytest.raises(error) as raised:
        client.create_transaction(SUBSIDY_UUID, lms_user_id=LMS_USER_ID, content_key=RUN_KEY,
                                  subsidy_access_policy_uuid=POLICY_UUID, idempotency_key="k")

    assert (raised.value.service, raised.value.status, raised.value.code, raised.value.message) == (
        "subsidy", status, code, message)
    assert raised.value.payload == body


def test_retrieve_transaction(mock_upstream, client):
    mock_upstream.get(subsidy_url(f"/api/v1/transactions/{TRANSACTION_UUID}/"), json=TRANSACTION)
    assert client.retrieve_transaction(TRANSACTION_UUID) == TRANSACTION


def test_aggregates_by_learner_has_no_trailing_slash_and_returns_a_list(mock_upstream, client):
    mock_upstream.get(subsidy_url(f"/api/v1/subsidies/{SUBSIDY_UUID}/aggregates-by-learner"),
                 json=[{"lms_user_id": LMS_USER_ID, "total": 3}])

    assert client.aggregates_by_learner(SUBSIDY_UUID, POLICY_UUID) == [{"lms_user_id": LMS_USER_ID, "total": 3}]
    assert query(api_calls(mock_upstream)[0]) == {"subsidy_access_policy_uuid": [POLICY_UUID]}


def test_aggregates_by_learner_rejects_an_object(mock_upstream, client):
    mock_upstream.get(subsidy_url(f"/api/v1/subsidies/{SUBSIDY_UUID}/aggregates-by-learner"), json={"results": []})
    with pytest.raises(UpstreamUnavailableError):
        client.aggregates_by_learner(SUBSIDY_UUID)
