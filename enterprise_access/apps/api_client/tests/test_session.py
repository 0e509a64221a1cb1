"""What every client call shares: the OAuth token, the JWT header, timeouts, X-Request-ID, settings."""
from urllib.parse import parse_qs

import crum
import pytest
from django.test import RequestFactory

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client.testing import TEST_ACCESS_TOKEN, add_token_response, subsidy_url, token_url

from .conftest import api_calls
from .payloads import SUBSIDY, SUBSIDY_UUID

SUBSIDY_PATH = f"/api/v1/subsidies/{SUBSIDY_UUID}/"


def test_token_fetch_sends_client_credentials_and_calls_carry_jwt_header(mock_upstream, settings):
    mock_upstream.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)

    assert api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID) == SUBSIDY

    token_call, api_call = mock_upstream.calls
    assert token_call.request.method == "POST"
    assert token_call.request.url == "http://127.0.0.1:18270/lms/oauth2/access_token"
    assert token_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["client_credentials"],
        "client_id": [settings.BACKEND_SERVICE_EDX_OAUTH2_KEY],
        "client_secret": [settings.BACKEND_SERVICE_EDX_OAUTH2_SECRET],
        "token_type": ["jwt"],
    }
    assert api_call.request.headers["Authorization"] == f"JWT {TEST_ACCESS_TOKEN}"
    assert api_call.request.headers["Accept"] == "application/json"


def test_token_is_fetched_once_and_shared_by_clients(mock_upstream):
    mock_upstream.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)

    api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)
    api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)

    assert [call.request.method for call in mock_upstream.calls] == ["POST", "GET", "GET"]


@pytest.mark.parametrize("root, expected", [
    ("http://lms.test", "http://lms.test/oauth2/access_token"),
    ("http://lms.test/oauth2/", "http://lms.test/oauth2/access_token"),
    ("http://lms.test/oauth2/access_token", "http://lms.test/oauth2/access_token"),
])
def test_token_url_is_resolved_from_the_oauth_root(rsps, settings, root, expected):
    settings.OAUTH2_PROVIDER_URL = root
    assert token_url() == expected
    add_token_response(rsps)
    rsps.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)

    api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)

    assert rsps.calls[0].request.url == expected


def test_every_call_including_the_token_fetch_has_the_configured_timeout(mock_upstream, settings):
    settings.UPSTREAM_CONNECT_TIMEOUT = 0.5
    settings.UPSTREAM_READ_TIMEOUT = 1.5
    mock_upstream.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)

    api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)

    assert [call.request.req_kwargs["timeout"] for call in mock_upstream.calls] == [(0.5, 1.5), (0.5, 1.5)]


def test_inbound_request_id_is_forwarded(mock_upstream):
    mock_upstream.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)
    crum.set_current_request(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-123"))
    try:
        api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)
    finally:
        crum.set_current_request(None)

    assert api_calls(mock_upstream)[0].request.headers["X-Request-ID"] == "req-123"


def test_no_request_id_header_outside_a_request(mock_upstream):
    mock_upstream.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)

    api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)

    assert "X-Request-ID" not in api_calls(mock_upstream)[0].request.headers


def test_an_existing_client_follows_changed_settings(rsps, settings):
    client = api_client.get_subsidy_client()
    add_token_response(rsps)
    rsps.get(subsidy_url(SUBSIDY_PATH), json=SUBSIDY)
    client.retrieve_subsidy(SUBSIDY_UUID)

    settings.ENTERPRISE_SUBSIDY_URL = "http://subsidy.elsewhere/"
    settings.OAUTH2_PROVIDER_URL = "http://lms.elsewhere/oauth2"
    settings.BACKEND_SERVICE_EDX_OAUTH2_KEY = "another-key"
    add_token_response(rsps, access_token="another-token")
    rsps.get(f"http://subsidy.elsewhere{SUBSIDY_PATH}", json=SUBSIDY)
    client.retrieve_subsidy(SUBSIDY_UUID)

    assert rsps.calls[2].request.url == "http://lms.elsewhere/oauth2/access_token"
    assert "client_id=another-key" in rsps.calls[2].request.body
    assert rsps.calls[3].request.headers["Authorization"] == "JWT another-token"


def test_factories_return_fresh_clients():
    assert isinstance(api_client.get_subsidy_client(), api_client.EnterpriseSubsidyClient)
    assert isinstance(api_client.get_catalog_client(), api_client.EnterpriseCatalogClient)
    assert isinstance(api_client.get_lms_client(), api_client.LmsClient)
    assert api_client.get_lms_client() is not api_client.get_lms_client()


def test_error_to_dict_has_the_five_fields():
    error = api_client.UpstreamRequestError(
        service="subsidy", status=422, code="fulfillment_error", message="missing geag_first_name",
        payload={"detail": "missing geag_first_name", "code": "fulfillment_error"},
    )
    assert error.to_dict() == {
        "service": "subsidy", "status": 422, "code": "fulfillment_error", "message": "missing geag_first_name",
        "payload": {"detail": "missing geag_first_name", "code": "fulfillment_error"},
    }
    assert "fulfillment_error" in str(error)
