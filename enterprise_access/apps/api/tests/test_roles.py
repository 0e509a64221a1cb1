"""Role parsing from the token's roles claim."""
from types import SimpleNamespace

import pytest

from enterprise_access.apps.core import roles

CUSTOMER = "c0ffee00-0000-4000-8000-000000000001"
OTHER = "c0ffee00-0000-4000-8000-000000000002"


@pytest.fixture
def request_with(monkeypatch):
    def make(role_claims):
        monkeypatch.setattr(roles, "_decoded_jwt", lambda request: {"roles": role_claims})
        return SimpleNamespace(auth="token")
    return make


def test_learner_and_admin_are_per_customer(request_with):
    request = request_with([f"enterprise_learner:{CUSTOMER.upper()}", f"enterprise_admin:{OTHER}"])
    assert roles.learner_customer_uuids(request) == {CUSTOMER}
    assert roles.admin_customer_uuids(request) == {OTHER}
    assert roles.is_learner(request, CUSTOMER) and not roles.is_learner(request, OTHER)
    assert not roles.is_operator(request) and not roles.is_operator(request, CUSTOMER)


def test_wildcard_operator_operates_everyone(request_with):
    request = request_with(["enterprise_openedx_operator:*"])
    assert roles.is_operator(request) and roles.is_operator(request, OTHER)


def test_scoped_operator_operates_one_customer(request_with):
    request = request_with([f"enterprise_openedx_operator:{CUSTOMER}"])
    assert roles.is_operator(request, CUSTOMER)
    assert not roles.is_operator(request, OTHER)
    assert not roles.is_operator(request)


def test_unknown_roles_and_no_token_grant_nothing(request_with):
    request = request_with(["enterprise_catalog_admin:*", "junk"])
    assert roles.roles_for_request(request) == {"learner": set(), "admin": set(), "operator": set()}
    assert roles.roles_for_request(SimpleNamespace(auth=None))["operator"] == set()
