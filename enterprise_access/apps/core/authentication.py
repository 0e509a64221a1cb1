"""
How a signed LMS token becomes a user of this service (decision 0013).

edx-drf-extensions' ``JwtAuthentication`` finds the user by the token's ``preferred_username`` and copies claims onto
it. Here that let a token named ``admin`` take over the local superuser made with ``createsuperuser`` (its
``is_staff``, email and ``lms_user_id`` rewritten), and let a token with no ``user_id`` act under an id stored
from an earlier token. So this class keeps the library's token handling (header or cookie pair, signature, expiry,
CSRF for cookies) and replaces only the mapping from claims to a user:

* The key is the LMS identity, the ``user_id`` claim: an ``int`` (not a bool, a float or a string) within the LMS
  id range. A token without one is refused with 401; nothing stored stands in for it.
* The user is the oldest active, non-staff, non-superuser account carrying that ``lms_user_id``, or a new one.
  Staff and superuser accounts belong to Django admin and are never found, created or changed by a token; the
  username is never a key (a name already taken gets a token user its own name).
* Only ``email`` is copied onto the account. ``administrator`` grants nothing here: what a caller may do comes
  from the ``roles`` claim (``core.roles``), and Django admin rights are given by staff, in admin.
* Every claim read is type-checked first, so a signed token with odd claims gets a 401 saying which claim,
  never a 500.
"""
import logging
from uuid import uuid4

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from edx_rest_framework_extensions.auth.jwt.authentication import JwtAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .lms_ids import LMS_USER_ID_MAX, LMS_USER_ID_MIN, is_lms_user_id

logger = logging.getLogger(__name__)

# What the columns hold (Django's username and email fields), and bounds on the roles claim a token may carry.
MAX_USERNAME_LENGTH = 150
MAX_EMAIL_LENGTH = 254
MAX_ROLES = 500
MAX_ROLE_LENGTH = 300


class TokenClaimError(AuthenticationFailed):
    """A verified token whose claims cannot identify a learner: 401 with a message naming the claim."""


class LmsIdentity:
    """The claims this service reads from a verified token, checked: ``lms_user_id``, ``username``, ``email``."""

    __slots__ = ("lms_user_id", "username", "email")

    def __init__(self, lms_user_id, username, email):
        self.lms_user_id = lms_user_id
        self.username = username
        self.email = email


def identity_from_claims(payload) -> LmsIdentity:
    """Check the claims of a verified token; raise ``TokenClaimError`` saying what is wrong with the first bad one."""
    if not isinstance(payload, dict):
        raise TokenClaimError("The token's payload must be a JSON object of claims.")
    if "user_id" not in payload or payload["user_id"] is None:
        raise TokenClaimError(
            "The token carries no user_id claim, so it names no LMS user: ask the LMS for a token with the "
            "user_id scope."
        )
    lms_user_id = payload["user_id"]
    if not is_lms_user_id(lms_user_id):
        raise TokenClaimError(
            f"The token's user_id claim must be a JSON integer from {LMS_USER_ID_MIN} to {LMS_USER_ID_MAX} "
            "(the LMS user id)."
        )
    roles = payload.get("roles")
    if roles is not None:
        if not isinstance(roles, list):
            raise TokenClaimError('The token\'s roles claim must be a list of "<role>:<context>" strings.')
        if len(roles) > MAX_ROLES:
            raise TokenClaimError(f"The token's roles claim may hold at most {MAX_ROLES} roles.")
        if not all(isinstance(role, str) and 0 < len(role) <= MAX_ROLE_LENGTH for role in roles):
            raise TokenClaimError(
                f'Each entry of the token\'s roles claim must be a "<role>:<context>" string of 1 to '
                f"{MAX_ROLE_LENGTH} characters."
            )
    email = payload.get("email")
    if email is not None and (not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH
                              or not email.isprintable()):
        raise TokenClaimError(f"The token's email claim must be a string of at most {MAX_EMAIL_LENGTH} printable "
                              "characters.")
    username = payload.get("preferred_username")
    if username is None:
        username = payload.get("username")
    if username is not None and not isinstance(username, str):
        raise TokenClaimError("The token's preferred_username claim must be a string.")
    username = (username or "").strip()
    return LmsIdentity(lms_user_id, username if 0 < len(username) <= MAX_USERNAME_LENGTH else "", email or "")


def token_users():
    """Accounts a token may be: never staff or superusers (they belong to Django admin)."""
    return get_user_model().objects.filter(is_staff=False, is_superuser=False)


def _free_username(identity: LmsIdentity) -> str:
    """The LMS username when no account has it, else one derived from the LMS id (never someone else's name)."""
    model = get_user_model()
    for candidate in (identity.username, f"lms-user-{identity.lms_user_id}"):
        if candidate and not model.objects.filter(username=candidate).exists():
            return candidate
    return f"lms-user-{identity.lms_user_id}-{uuid4().hex[:8]}"


def user_for_identity(identity: LmsIdentity):
    """The token user for ``identity``: found by ``lms_user_id`` (oldest first), or created; its email kept current."""
    for _ in range(3):
        user = token_users().filter(lms_user_id=identity.lms_user_id).order_by("id").first()
        if user is None:
            user = get_user_model()(username=_free_username(identity), email=identity.email,
                                    lms_user_id=identity.lms_user_id)
            user.set_unusable_password()
            try:
                # One INSERT, no read inside the transaction: on SQLite a read then a write in one transaction
                # cannot wait for a concurrent writer, it fails at once ("database is locked").
                with transaction.atomic():
                    user.save(force_insert=True)
            except IntegrityError:
                continue  # a concurrent first request took the name, or created this learner's account: look again
            return user
        if not user.is_active:
            raise AuthenticationFailed("This account is disabled in enterprise-access; ask your administrator.")
        if identity.email and user.email != identity.email:
            user.email = identity.email
            user.save(update_fields=["email"])
        return user
    raise AuthenticationFailed("Your account could not be set up just now; try again.")


class LmsJwtAuthentication(JwtAuthentication):
    """``JwtAuthentication`` with the claims-to-user mapping described in this module's docstring."""

    def authenticate_credentials(self, payload):
        return user_for_identity(identity_from_claims(payload))
