"""
How every client fails: one matrix of upstream answers, run against a representative call of each
service, and one of token-endpoint answers, run against each client.
"""
import logging
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client import UpstreamBusyError, UpstreamRequestError, UpstreamUnavailableError
from enterprise_access.apps.api_client.testing import add_token_response, catalog_url, lms_url, subsidy_url, token_url
from enterprise_access.devtools.net import free_port, silent_listener

from .conftest import api_calls
from .payloads import CATALOG_UUID, CUSTOMER_UUID, LMS_USER_ID, RUN_KEY, SUBSIDY, SUBSIDY_UUID

# (service, the call, the URL it hits, a good answer) for one representative read of each service.
CALLS = {
    "subsidy": (
        lambda: api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID),
        lambda: subsidy_url(f"/api/v1/subsidies/{SUBSIDY_UUID}/"),
        SUBSIDY,
    ),
    "catalog": (
        lambda: api_client.get_catalog_client().contains_content_items(CATALOG_UUID, [RUN_KEY]),
        lambda: catalog_url(f"/api/v2/enterprise-catalogs/{CATALOG_UUID}/contains_content_items/"),
        {"contains_content_items": True},
    ),
    "lms": (
        # The membership check: the call whose outage must never read as "learner not in enterprise".
        lambda: api_client.get_lms_client().get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID),
        lambda: lms_url("/enterprise/api/v1/enterprise-learner/"),
        {"next": None, "previous": None, "count": 0, "results": []},
    ),
}


@dataclass
class Case:
    """An upstream answer (``responses`` kwargs) and the error it must become."""
    answer: dict
    error: type
    status: Any
    code: str
    message: str = ""  # a substring of the error's message
    payload: Any = "unchecked"


NO_ANSWER_CASES = {
    "read-timeout": Case({"body": requests.exceptions.ReadTimeout("read timed out")},
                         UpstreamUnavailableError, None, "timeout"),
    "connect-timeout": Case({"body": requests.exceptions.ConnectTimeout("connect timed out")},
                            UpstreamUnavailableError, None, "timeout"),
    "connection-refused": Case({"body": requests.exceptions.ConnectionError("Connection refused")},
                               UpstreamUnavailableError, None, "connection_error", "Connection refused"),
}

HTTP_CASES = {
    "500-server-error-body": Case(
        {"status": 500, "json": {"code": "server_error", "developer_message": "ledger exploded", "user_message": "x"}},
        UpstreamUnavailableError, 500, "server_error", "ledger exploded"),
    "502-html": Case({"status": 502, "body": "<html>Bad Gateway</html>"},
                     UpstreamUnavailableError, 502, "http_502", "HTTP 502", "<html>Bad Gateway</html>"),
    "503-empty": Case({"status": 503, "body": ""}, UpstreamUnavailableError, 503, "http_503", payload=None),
    # A proxy's timeout answer is not the service refusing: the request may have been processed behind the proxy.
    "408-proxy-timeout": Case({"status": 408, "body": "<html>Request Timeout</html>"},
                              UpstreamUnavailableError, 408, "http_408", "HTTP 408"),
    "499-client-closed": Case({"status": 499, "body": ""}, UpstreamUnavailableError, 499, "http_499", payload=None),
    "429-ledger-busy": Case(
        {"status": 429, "json": {"detail": "Attempt to lock the Ledger failed, please try again."}},
        UpstreamBusyError, 429, "http_429", "Attempt to lock the Ledger"),
    "422-detail-and-code": Case(
        {"status": 422,
         "json": {"detail": "missing geag_first_name transaction metadata", "code": "fulfillment_error"}},
        UpstreamRequestError, 422, "fulfillment_error", "missing geag_first_name"),
    "403-error-code-shape": Case(
        {"status": 403, "json": {"error_code": "Forbidden", "developer_message": "MISSING: subsidy.can_read_subsidies",
                                 "user_message": "MISSING: subsidy.can_read_subsidies"}},
        UpstreamRequestError, 403, "Forbidden", "MISSING: subsidy.can_read_subsidies"),
    "401-detail-only": Case({"status": 401, "json": {"detail": "Invalid token."}},
                            UpstreamRequestError, 401, "http_401", "Invalid token.", {"detail": "Invalid token."}),
    "400-field-errors": Case(
        {"status": 400, "json": {"lms_user_id": ["This field is required."], "state": ["Select a valid choice."]}},
        UpstreamRequestError, 400, "http_400", "lms_user_id: This field is required.; state: Select a valid choice."),
    "400-json-list": Case({"status": 400, "json": ["You must provide at least one of course_run_ids."]},
                          UpstreamRequestError, 400, "http_400", "You must provide at least one of course_run_ids."),
    "400-bare-json-string": Case({"status": 400, "json": "Bad thing"},
                                 UpstreamRequestError, 400, "http_400", "Bad thing", "Bad thing"),
    "404-drf-detail": Case({"status": 404, "json": {"detail": "Not found."}},
                           UpstreamRequestError, 404, "http_404", "Not found."),
    "404-not-json": Case({"status": 404, "body": "<h1>Not Found</h1>"},
                         UpstreamRequestError, 404, "http_404", "HTTP 404", "<h1>Not Found</h1>"),
    "200-malformed-json": Case({"status": 200, "body": "{\"results\": [", "content_type": "application/json"},
                               UpstreamUnavailableError, 200, "malformed_response", payload="{\"results\": ["),
    "200-empty-body": Case({"status": 200, "body": ""}, UpstreamUnavailableError, 200, "malformed_response",
                           payload=None),
    "200-wrong-json-type": Case({"status": 200, "json": [1, 2]}, UpstreamUnavailableError, 200,
                                "malformed_response", payload=[1, 2]),
}


def assert_error(error, case, service):
    assert type(error) is case.error
    assert (error.service, error.status, error.code) == (service, case.status, case.code)
    assert case.message in error.message
    if case.payload != "unchecked":
        assert error.payload == case.payload


def assert_logged_once(caplog, service, path):
    warnings = [r for r in caplog.records if r.name.startswith("enterprise_access.apps.api_client")]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert f"service={service}" in warnings[0].getMessage()
    assert f"path={path}" in warnings[0].getMessage()


@pytest.mark.parametrize("case", list(NO_ANSWER_CASES.values()) + list(HTTP_CASES.values()),
                         ids=list(NO_ANSWER_CASES) + list(HTTP_CASES))
@pytest.mark.parametrize("service", list(CALLS))
def test_upstream_failures_map_to_typed_errors(mock_upstream, caplog, service, case):
    call, url, _ = CALLS[service]
    mock_upstream.get(url(), **case.answer)

    with pytest.raises(api_client.UpstreamAPIError) as raised:
        call()

    assert_error(raised.value, case, service)
    assert_logged_once(caplog, service, requests.utils.urlparse(url()).path)


@pytest.mark.parametrize("service", list(CALLS))
def test_failures_are_not_cached(mock_upstream, service):
    call, url, good_answer = CALLS[service]
    mock_upstream.get(url(), status=503)
    with pytest.raises(UpstreamUnavailableError):
        call()

    mock_upstream.replace("GET", url(), json=good_answer)
    call()
    assert len(api_calls(mock_upstream)) == 2


TOKEN_CASES = {
    "timeout": Case({"body": requests.exceptions.ReadTimeout("read timed out")},
                    UpstreamUnavailableError, None, "timeout"),
    "connection-refused": Case({"body": requests.exceptions.ConnectionError("Connection refused")},
                               UpstreamUnavailableError, None, "connection_error"),
    "401-oauth-error": Case(
        {"status": 401, "json": {"error": "invalid_client", "error_description": "Client authentication failed."}},
        UpstreamUnavailableError, 401, "invalid_client", "Client authentication failed."),
    "400-bare-string": Case({"status": 400, "json": "nope"}, UpstreamUnavailableError, 400, "http_400", "nope"),
    "429": Case({"status": 429, "body": ""}, UpstreamUnavailableError, 429, "http_429"),
    "500-html": Case({"status": 500, "body": "<html>oops</html>"}, UpstreamUnavailableError, 500, "http_500",
                     payload="<html>oops</html>"),
    "200-malformed-json": Case({"status": 200, "body": "{access_token"}, UpstreamUnavailableError, 200,
                               "malformed_response", payload="{access_token"),
    "200-empty-body": Case({"status": 200, "body": ""}, UpstreamUnavailableError, 200, "malformed_response"),
    "200-missing-expires-in": Case({"status": 200, "json": {"access_token": "x"}}, UpstreamUnavailableError, 200,
                                   "malformed_response"),
    "200-json-list": Case({"status": 200, "json": ["x"]}, UpstreamUnavailableError, None, "malformed_response"),
    "200-bad-expires-in": Case({"status": 200, "json": {"access_token": "x", "expires_in": "soon"}},
                               UpstreamUnavailableError, None, "malformed_response"),
}


@pytest.mark.parametrize("case", TOKEN_CASES.values(), ids=TOKEN_CASES.keys())
@pytest.mark.parametrize("service", list(CALLS))
def test_token_endpoint_failures_are_oauth_unavailable(rsps, caplog, service, case):
    call, url, good_answer = CALLS[service]
    rsps.post(token_url(), **case.answer)
    rsps.get(url(), json=good_answer)

    with pytest.raises(UpstreamUnavailableError) as raised:
        call()

    assert_error(raised.value, case, "oauth")
    assert api_calls(rsps) == []  # the API itself was never called without a token
    assert_logged_once(caplog, "oauth", "/lms/oauth2/access_token")


def test_a_failed_token_fetch_is_retried_on_the_next_call(rsps):
    call, url, good_answer = CALLS["subsidy"]
    rsps.post(token_url(), status=503)
    rsps.get(url(), json=good_answer)
    with pytest.raises(UpstreamUnavailableError):
        call()

    rsps.replace("POST", token_url(), json={"access_token": "t", "expires_in": 3600})
    assert call() == good_answer


@pytest.fixture
def closed_port():
    return free_port()


def test_real_connection_refused(rsps, settings, closed_port):
    """No mocking of the failure itself: a port nobody listens on."""
    add_token_response(rsps)
    settings.ENTERPRISE_SUBSIDY_URL = f"http://127.0.0.1:{closed_port}/subsidy"
    rsps.add_passthru(settings.ENTERPRISE_SUBSIDY_URL)

    with pytest.raises(UpstreamUnavailableError) as raised:
        api_client.get_subsidy_client().retrieve_subsidy(SUBSIDY_UUID)
    assert (raised.value.service, raised.value.code) == ("subsidy", "connection_error")
    # Nothing reached the upstream: the spend guard may call a create that failed this way a definite "no".
    assert raised.value.request_sent is False


def test_real_read_timeout(rsps, settings):
    """A server that accepts the connection and never answers: the read timeout must fire."""
    with silent_listener() as silent_port:
        settings.UPSTREAM_READ_TIMEOUT = 0.2
        settings.LMS_URL = f"http://127.0.0.1:{silent_port}/lms"
        add_token_response(rsps)
        rsps.add_passthru(settings.LMS_URL)

        with pytest.raises(UpstreamUnavailableError) as raised:
            api_client.get_lms_client().get_enterprise_user(CUSTOMER_UUID, LMS_USER_ID)
    assert (raised.value.service, raised.value.code) == ("lms", "timeout")
    # The request left: the upstream may have acted on it.
    assert raised.value.request_sent is True


def test_real_token_endpoint_refused(settings, closed_port):
    settings.OAUTH2_PROVIDER_URL = f"http://127.0.0.1:{closed_port}/oauth2"
    with pytest.raises(UpstreamUnavailableError) as raised:
        api_client.get_catalog_client().contains_content_items(CATALOG_UUID, [RUN_KEY])
    assert (raised.value.service, raised.value.code) == ("oauth", "connection_error")
    assert raised.value.request_sent is False  # no token, so the API call itself never left


def test_a_body_that_cannot_be_encoded_never_left_so_it_is_not_uncertain():
    # requests refuses NaN/infinity in a JSON body before sending a byte: a retry or a release is safe.
    error = requests.exceptions.InvalidJSONError("Out of range float values are not JSON compliant")
    assert api_client.base.never_sent(error) is True
