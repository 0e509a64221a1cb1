"""Only tokens signed by the configured RSA key set, unexpired, for our issuer and audience, authenticate."""
import base64
import json
import time
from io import StringIO

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from enterprise_access.apps.core.jwt import decode_jwt
from enterprise_access.apps.core.models import User
from enterprise_access.apps.subsidy_access_policy.tests.factories import PerLearnerEnrollmentPolicyFactory
from enterprise_access.devtools.tokens import build_claims, sign_claims

from .helpers import client_with_token, learner_role

pytestmark = pytest.mark.django_db

URL = "/api/v1/subsidy-access-policies/"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _other_private_key_pem():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _claims(**overrides):
    claims = build_claims(lms_user_id=101, roles=["enterprise_openedx_operator:*"])
    claims.update(overrides)
    return claims


def _forged_tokens(settings):
    issuer = settings.JWT_AUTH["JWT_ISSUERS"][0]
    claims = _claims()
    return {
        "alg_none": pyjwt.encode(claims, None, algorithm="none"),
        "unsigned_rs256_header": f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong_signature": sign_claims(claims, private_key_pem=_other_private_key_pem()),
        "hs256_with_issuer_secret": pyjwt.encode(claims, issuer["SECRET_KEY"], algorithm="HS256"),
        "hs256_with_django_secret": pyjwt.encode(claims, settings.SECRET_KEY, algorithm="HS256"),
        "expired": sign_claims(_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        "wrong_issuer": sign_claims(_claims(iss="https://evil.example/oauth2")),
        "wrong_audience": sign_claims(_claims(aud="someone-else")),
        "garbage": "not-a-jwt",
    }


def test_valid_token_authenticates_and_creates_the_user():
    response = client_with_token(sign_claims(_claims(email="op@example.org"))).get(URL)
    assert response.status_code == 200, response.content
    user = User.objects.get(lms_user_id=101)
    assert user.email == "op@example.org"


@pytest.mark.parametrize("case", [
    "alg_none", "unsigned_rs256_header", "wrong_signature", "hs256_with_issuer_secret", "hs256_with_django_secret",
    "expired", "wrong_issuer", "wrong_audience", "garbage",
])
def test_bad_tokens_get_401(case, settings):
    token = _forged_tokens(settings)[case]
    response = client_with_token(token).get(URL)
    assert response.status_code == 401, (case, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_no_key_set_refuses_everything_rather_than_skipping_the_signature(settings):
    settings.JWT_AUTH = {**settings.JWT_AUTH, "JWT_PUBLIC_SIGNING_JWK_SET": None}
    good = sign_claims(_claims())
    with pytest.raises(pyjwt.InvalidTokenError):
        decode_jwt(good)
    assert client_with_token(good).get(URL).status_code == 401


def test_anonymous_gets_401():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_split_cookie_pair_authenticates():
    header, payload, signature = sign_claims(_claims()).split(".")
    client = APIClient()
    client.cookies["edx-jwt-cookie-header-payload"] = f"{header}.{payload}"
    client.cookies["edx-jwt-cookie-signature"] = signature
    assert client.get(URL).status_code == 200


def test_learner_token_roles_do_not_grant_policy_reads():
    response = client_with_token(sign_claims(_claims(roles=[learner_role()]))).get(URL)
    assert response.status_code == 403


def test_mint_jwt_command_prints_an_accepted_token():
    PerLearnerEnrollmentPolicyFactory()
    out = StringIO()
    call_command("mint_jwt", "--lms-user-id", "77", "--email", "x@example.org",
                 "--roles", "enterprise_openedx_operator:*", stdout=out)
    token = out.getvalue().strip()
    assert decode_jwt(token)["user_id"] == 77
    assert client_with_token(token).get(URL).status_code == 200


def test_mint_jwt_refuses_when_settings_do_not_allow_it(settings):
    settings.MINT_JWT_ENABLED = False
    with pytest.raises(CommandError, match="disabled"):
        call_command("mint_jwt", "--lms-user-id", "77", stdout=StringIO())
