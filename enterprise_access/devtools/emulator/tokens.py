"""
The LMS OAuth2 client-credentials token endpoint and the ``Authorization: JWT <token>`` check the
emulated APIs apply.

Tokens are HS256 JWTs signed with a secret kept in the emulator database, so they stay valid
across restarts on the same file. Every token is a staff service account holding
``enterprise_openedx_operator:*``: the emulated services enforce authentication, not roles.
"""
import time
import zlib
from urllib.parse import parse_qsl

import jwt

from .web import detail, json_response

AUDIENCE = "upstream-emulator"
SCOPES = ["read", "write", "email", "profile", "user_id"]
DEFAULT_EXPIRES_IN = 3600


class TokenIssuer:
    def __init__(self, store):
        self._store = store
        self._secret = store.signing_secret()

    def expires_in(self):
        return int(self._store.meta("token_expires_in", DEFAULT_EXPIRES_IN))

    def issue(self, client_id, issuer):
        now = int(time.time())
        expires_in = self.expires_in()
        user_id = zlib.crc32(client_id.encode()) % 1_000_000 + 1_000_000
        claims = {
            "iss": issuer,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + expires_in,
            "preferred_username": client_id,
            "scopes": SCOPES,
            "filters": [],
            "is_restricted": False,
            "user_id": user_id,
            "email": f"{client_id}@service.emulator.invalid",
            "name": client_id,
            "given_name": "",
            "family_name": "",
            "administrator": True,
            "superuser": False,
            "roles": ["enterprise_openedx_operator:*"],
            "version": "1.2.0",
        }
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires_in

    def authenticate(self, authorization):
        """``(claims, None)`` for a valid ``JWT <token>`` header, else ``(None, message)`` for a 401."""
        if not authorization:
            return None, "Authentication credentials were not provided."
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "jwt":
            return None, "Authentication credentials were not provided."
        token = token.strip()
        if not token or " " in token:
            return None, "Invalid Authorization header. No credentials provided."
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=AUDIENCE)
        except jwt.ExpiredSignatureError:
            return None, "Signature has expired."
        except jwt.InvalidTokenError:
            return None, "Error decoding signature."
        return claims, None


def token_endpoint(issuer, request):
    """``POST <lms>/oauth2/access_token`` with a form-encoded client-credentials grant (§1)."""
    form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    if form.get("grant_type") != "client_credentials":
        return json_response(400, {"error": "unsupported_grant_type"})
    if not form.get("client_id") or not form.get("client_secret"):
        return json_response(401, {"error": "invalid_client"})
    token, expires_in = issuer.issue(form["client_id"], f"{request.service_base}/oauth2")
    return json_response(200, {
        "access_token": token,
        "expires_in": expires_in,
        "token_type": "JWT",
        "scope": " ".join(SCOPES),
    })


def unauthorized(message):
    return detail(401, message)
