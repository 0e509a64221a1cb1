"""
Minting of signed development tokens the local and test service accept.

Development tooling only: production settings do not install ``enterprise_access.devtools`` and carry no
private key, and ``sign_claims`` refuses unless the settings turn minting on (only local and test do).
"""
import time

import jwt as pyjwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_LIFETIME_SECONDS = 3600


def build_claims(*, lms_user_id: int, email: str = "", username: str = "", roles=(), staff: bool = False,
                 lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS, issuer: dict | None = None, now: int | None = None):
    """The claims of an LMS-style access token for ``lms_user_id``."""
    issuer = issuer or settings.JWT_AUTH["JWT_ISSUERS"][0]
    now = int(now if now is not None else time.time())
    username = username or f"lms-user-{lms_user_id}"
    return {
        "iss": issuer["ISSUER"],
        "aud": issuer["AUDIENCE"],
        "iat": now,
        "exp": now + int(lifetime_seconds),
        "version": "1.2.0",
        "user_id": int(lms_user_id),
        "preferred_username": username,
        "email": email or f"{username}@example.invalid",
        "email_verified": True,
        "administrator": bool(staff),
        "roles": list(roles),
        "scopes": ["user_id", "email", "profile"],
        "filters": [],
        "is_restricted": False,
    }


def sign_claims(claims: dict, *, private_key_pem: str | None = None, algorithm: str = "RS256") -> str:
    """Sign ``claims`` with the dev key. Refuses unless the settings allow minting (production never does)."""
    if private_key_pem is None:
        if not getattr(settings, "MINT_JWT_ENABLED", False) or not getattr(settings, "MINT_JWT_PRIVATE_KEY_PEM", None):
            raise ImproperlyConfigured(
                "Minting JWTs is disabled in these settings (MINT_JWT_ENABLED is off): only local and test "
                "settings carry the dev signing key."
            )
        private_key_pem = settings.MINT_JWT_PRIVATE_KEY_PEM
    from enterprise_access.settings.dev_jwt_keys import DEV_JWT_KEY_ID  # noqa: the dev key's id, for the header

    return pyjwt.encode(claims, private_key_pem, algorithm=algorithm, headers={"kid": DEV_JWT_KEY_ID})


def mint_jwt(**claim_kwargs) -> str:
    """A signed dev token: ``mint_jwt(lms_user_id=101, roles=["enterprise_learner:<uuid>"])``."""
    return sign_claims(build_claims(**claim_kwargs))
