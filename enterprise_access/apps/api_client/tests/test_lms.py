"""LmsClient against the contract's payload shapes (§4). ``None`` means "no record", never "LMS down"."""
from urllib.parse import parse_qs, urlsplit

import pytest

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client import UpstreamRequestError, UpstreamUnavailableError
from enterprise_access.apps.api_client.testing import lms_url

from .conftest import api_calls
from .payloads import CUSTOMER_UUID, LMS_USER_ID, OTHER_CUSTOMER_UUID, customer, learner_record, page

LEARNER_PATH = "/enterprise/api/v1/enterprise-learner/"
CUSTOMER_PATH = f"/enterprise/api/v1/enterprise-customer/{CUSTOMER_UUID}/"


@pytest.fixture
def client():
    return api_client.get_lms_client()


def learners(*records, **kwargs):
    return page(list(records), enterprise_features={}, **kwargs)


def test_enterprise_user_filters_by_customer_and_user(mock_upstream, client):
    record = learner_record()
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners(record))

    assert client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID) == record
    assert parse_qs(urlsplit(api_calls(mock_upstream)[0].request.url).query) == {
        "enterprise_customer_uuid": [CUSTOMER_UUID], "user_ids": [str(LMS_USER_ID)],
    }


@pytest.mark.parametrize("record", [
    learner_record(customer_uuid=OTHER_CUSTOMER_UUID),  # e.g. a non-staff token: filters ignored
    learner_record(user_id=LMS_USER_ID + 1),
    {**learner_record(), "user": {**learner_record()["user"], "id": str(LMS_USER_ID)}},  # ids compare as ints
    {**learner_record(), "enterprise_customer": customer(CUSTOMER_UUID.upper())},  # uuids compare exactly
], ids=["other-customer", "other-user", "string-user-id", "uppercase-uuid"])
def test_enterprise_user_matching_rules(mock_upstream, client, record):
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners(record))
    assert client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID) is None


def test_enterprise_user_follows_pages_until_the_first_match(mock_upstream, client):
    second = "http://lms.internal/enterprise/api/v1/enterprise-learner/?page=2&user_ids=4242"
    third = "http://lms.internal/enterprise/api/v1/enterprise-learner/?page=3&user_ids=4242"
    match = learner_record(record_id=2)
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners(learner_record(customer_uuid=OTHER_CUSTOMER_UUID),
                                                      next_url=second))
    mock_upstream.get(second, json=learners(match, learner_record(record_id=3), next_url=third))
    mock_upstream.get(third, json=learners(learner_record(record_id=4)))

    assert client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID) == match
    assert [call.request.url for call in api_calls(mock_upstream)][1:] == [second]


def test_enterprise_user_found_is_cached(mock_upstream, client):
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners(learner_record()))

    client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    api_client.get_lms_client().get_enterprise_user(CUSTOMER_UUID, str(LMS_USER_ID))
    assert client.get_learner_email(CUSTOMER_UUID, LMS_USER_ID) == "pat@example.org"

    assert len(api_calls(mock_upstream)) == 1


def test_no_record_is_none_and_cached(mock_upstream, client):
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners())

    assert client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID) is None
    assert client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID) is None
    assert client.get_learner_email(CUSTOMER_UUID, LMS_USER_ID) is None
    assert len(api_calls(mock_upstream)) == 1


def test_no_record_cache_honours_the_timeout_setting(mock_upstream, client, settings):
    settings.ENTERPRISE_USER_RECORD_CACHE_TIMEOUT = 0
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners())
    client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    assert len(api_calls(mock_upstream)) == 2


@pytest.mark.parametrize("answer", [
    {"status": 500, "body": ""},
    {"status": 200, "body": "<html>maintenance</html>"},
    {"status": 200, "json": {"results": [{"id": 1, "user": None, "enterprise_customer": customer()}], "next": None}},
    {"status": 200, "json": {"results": None, "next": None}},
], ids=["5xx", "html-200", "record-without-user", "no-results-list"])
def test_an_lms_that_cannot_answer_is_never_no_record(mock_upstream, client, answer):
    mock_upstream.get(lms_url(LEARNER_PATH), **answer)

    with pytest.raises(UpstreamUnavailableError):
        client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    with pytest.raises(UpstreamUnavailableError):
        client.get_learner_email(CUSTOMER_UUID, LMS_USER_ID)

    # Nothing was cached: once the LMS recovers, the learner is found.
    mock_upstream.replace("GET", lms_url(LEARNER_PATH), json=learners(learner_record()))
    assert client.get_learner_email(CUSTOMER_UUID, LMS_USER_ID) == "pat@example.org"


def test_a_failing_second_page_is_an_error(mock_upstream, client):
    second = lms_url(LEARNER_PATH) + "?page=2"
    mock_upstream.get(lms_url(LEARNER_PATH), json=learners(learner_record(user_id=1), next_url=second))
    mock_upstream.get(second, status=504)
    with pytest.raises(UpstreamUnavailableError) as raised:
        client.get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    assert raised.value.status == 504


def test_enterprise_customer_is_cached(mock_upstream, client):
    mock_upstream.get(lms_url(CUSTOMER_PATH), json=customer())

    assert client.get_enterprise_customer(CUSTOMER_UUID) == customer()
    assert api_client.get_lms_client().get_enterprise_customer(CUSTOMER_UUID) == customer()
    assert len(api_calls(mock_upstream)) == 1


def test_unknown_enterprise_customer_is_a_request_error(mock_upstream, client):
    mock_upstream.get(lms_url(CUSTOMER_PATH), status=404, json={"detail": "Not found."})
    with pytest.raises(UpstreamRequestError) as raised:
        client.get_enterprise_customer(CUSTOMER_UUID)
    assert (raised.value.service, raised.value.status, raised.value.code) == ("lms", 404, "http_404")
