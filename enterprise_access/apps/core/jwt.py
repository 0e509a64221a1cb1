"""
The JWT decode handler this service trusts. Minting tokens is development tooling and lives in
``enterprise_access.devtools.tokens``: production has no way to sign one.

Why our own decode handler: edx-drf-extensions checks signatures against the configured JWK set plus,
optionally, the issuer's symmetric ``SECRET_KEY``. Left with neither, its key loop runs zero times and the
signature is never checked. This handler refuses every token unless an asymmetric key set is configured,
accepts only RSA algorithms (so ``alg: none`` and HS256 forgeries are out before any key is tried), and never
falls back to the symmetric secret. Expiry, audience and issuer are then checked by the library.
"""
import jwt as pyjwt
from django.conf import settings
from edx_rest_framework_extensions.auth.jwt.decoder import jwt_decode_handler

ACCEPTED_ALGORITHMS = ("RS256", "RS512")


def decode_jwt(token):
    """The ``JWT_DECODE_HANDLER``: verify ``token`` with the asymmetric key set only, or raise ``InvalidTokenError``."""
    if not settings.JWT_AUTH.get("JWT_PUBLIC_SIGNING_JWK_SET"):
        raise pyjwt.InvalidTokenError("No JWT_PUBLIC_SIGNING_JWK_SET is configured; refusing every token.")
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError as exc:
        raise pyjwt.InvalidTokenError(f"Malformed token header: {exc}") from exc
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise pyjwt.InvalidTokenError(f"Token algorithm {header.get('alg')!r} is not accepted.")
    return jwt_decode_handler(token, decode_symmetric_token=False)
