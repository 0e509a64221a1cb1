"""Fixtures for the upstream client tests: HTTP is faked at the transport edge with ``responses``."""
import pytest
import responses

from enterprise_access.apps.api_client.testing import add_token_response, forget_cached_tokens, token_url


@pytest.fixture(autouse=True)
def _fresh_tokens():
    forget_cached_tokens()
    yield
    forget_cached_tokens()


@pytest.fixture
def rsps():
    """A ``responses`` mock with nothing registered: unregistered URLs fail as connection errors."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def mock_upstream(rsps):
    """``rsps`` with a working token endpoint."""
    add_token_response(rsps)
    return rsps


def api_calls(mock):
    """The recorded calls other than token fetches."""
    return [call for call in mock.calls if not call.request.url.startswith(token_url())]
