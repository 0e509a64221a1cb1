"""The OAuth2 token endpoint (§1) and the ``Authorization: JWT`` requirement on every API call."""
import sqlite3
import time

import jwt
import pytest
import requests

from . import world

pytestmark = pytest.mark.emulator

TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "ea-key", "client_secret": "ea-secret",
              "token_type": "jwt"}


def test_token_endpoint_issues_a_jwt(emulator):
    response = requests.post(f"{emulator.url}/lms/oauth2/access_token", data=TOKEN_FORM, timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["token_type"] == "JWT"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write email profile user_id"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["preferred_username"] == "ea-key"
    assert claims["roles"] == ["enterprise_openedx_operator:*"]
    assert claims["administrator"] is True
    assert claims["exp"] - claims["iat"] == 3600
    for claim in ("iss", "aud", "scopes", "filters", "is_restricted", "user_id", "email", "name"):
        assert claim in claims


def test_token_lifetime_can_be_seeded(emulator, control):
    control.seed({"token_expires_in": 120})
    try:
        body = requests.post(f"{emulator.url}/lms/oauth2/access_token", data=TOKEN_FORM, timeout=5).json()
        assert body["expires_in"] == 120
    finally:
        control.seed({"token_expires_in": 3600})


@pytest.mark.parametrize("form, status, error", [
    ({**TOKEN_FORM, "grant_type": "password"}, 400, "unsupported_grant_type"),
    ({**TOKEN_FORM, "client_secret": ""}, 401, "invalid_client"),
])
def test_token_endpoint_refuses_bad_grants(emulator, form, status, error):
    response = requests.post(f"{emulator.url}/lms/oauth2/access_token", data=form, timeout=5)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_token_endpoint_is_post_only(emulator):
    assert requests.get(f"{emulator.url}/lms/oauth2/access_token", timeout=5).status_code == 405


@pytest.mark.parametrize("path", [
    f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/",
    f"/subsidy/api/v1/transactions/{world.UNKNOWN_UUID}/",
    f"/subsidy/api/v1/content-metadata/{world.COOKING_RUN}/?enterprise_customer_uuid={world.CUSTOMER}",
    f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/?course_run_ids={world.COOKING}",
    f"/lms/enterprise/api/v1/enterprise-learner/?enterprise_customer_uuid={world.CUSTOMER}",
    f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/",
])
def test_api_calls_without_a_token_get_401_detail(emulator, path):
    response = requests.get(emulator.url + path, timeout=5)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_v1_subsidies_401_uses_the_rewritten_error_shape(emulator):
    response = requests.get(f"{emulator.url}/subsidy/api/v1/subsidies/{world.SUBSIDY}/", timeout=5)

    assert response.status_code == 401
    body = response.json()
    assert body["error_code"] == "Unauthorized"
    assert body["developer_message"] == body["user_message"] == "Authentication credentials were not provided."


@pytest.mark.parametrize("header, message", [
    ("Bearer {token}", "Authentication credentials were not provided."),
    ("JWT", "Invalid Authorization header. No credentials provided."),
    ("JWT not.a.token", "Error decoding signature."),
    ("JWT {forged}", "Error decoding signature."),
])
def test_invalid_tokens_are_refused(emulator, token, header, message):
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-emulator-secret-but-long-enough-for-hs256", algorithm="HS256")
    response = requests.get(
        f"{emulator.url}/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/",
        headers={"Authorization": header.format(token=token, forged=forged)}, timeout=5,
    )
    assert response.status_code == 401
    assert response.json() == {"detail": message}


def test_an_issued_token_is_accepted(api):
    assert api.get(f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/").status_code == 200


def test_expired_tokens_are_refused(emulator, token):
    with sqlite3.connect(emulator.db_path) as connection:
        secret = connection.execute("SELECT value FROM meta WHERE key = 'jwt_secret'").fetchone()[0]
    claims = jwt.decode(token, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, secret, algorithm="HS256")

    response = requests.get(
        f"{emulator.url}/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/",
        headers={"Authorization": f"JWT {expired}"}, timeout=5,
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Signature has expired."}
