"""
Roles from the JWT ``roles`` claim, mapped with edx-rbac.

The token carries system roles with a context: ``enterprise_learner:<customer uuid>``,
``enterprise_admin:<customer uuid>``, ``enterprise_openedx_operator:*`` (every customer) or
``enterprise_openedx_operator:<customer uuid>``. ``settings.SYSTEM_TO_FEATURE_ROLE_MAPPING`` maps them to this
service's feature roles ``learner``, ``admin`` and ``operator``. Roles come only from a verified token; a
session-authenticated Django user has none (staff act through Django admin, not these roles).
"""
from uuid import UUID

from edx_rbac.constants import ALL_ACCESS_CONTEXT
from edx_rbac.utils import feature_roles_from_jwt, get_decoded_jwt

LEARNER = "learner"
ADMIN = "admin"
OPERATOR = "operator"

_CACHE_ATTR = "_enterprise_access_roles"


def _decoded_jwt(request) -> dict:
    try:
        return get_decoded_jwt(request) or {}
    except Exception:  # pylint: disable=broad-except
        # An undecodable cookie alongside another authentication: it grants no roles.
        return {}


def _context(raw) -> str | None:
    """``"*"`` or a customer uuid in canonical form; anything else names no customer and grants nothing."""
    text = str(raw).strip().lower()
    if text == ALL_ACCESS_CONTEXT:
        return text
    try:
        return str(UUID(text))
    except ValueError:
        return None


def roles_for_request(request) -> dict[str, set[str]]:
    """``{"learner": {uuid, ...}, "admin": {...}, "operator": {...}}``; contexts are lower-case strings or ``"*"``."""
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    if getattr(request, "auth", None):
        # Only string entries name a role; authentication refuses other shapes, this never trips over one.
        claimed = _decoded_jwt(request).get("roles")
        claimed = [role for role in claimed if isinstance(role, str)] if isinstance(claimed, list) else []
        feature_roles = feature_roles_from_jwt({"roles": claimed})
    else:
        feature_roles = {}
    roles = {role: {ctx for ctx in map(_context, feature_roles.get(role, [])) if ctx is not None}
             for role in (LEARNER, ADMIN, OPERATOR)}
    setattr(django_request, _CACHE_ATTR, roles)
    return roles


def _has(contexts: set, customer_uuid) -> bool:
    if ALL_ACCESS_CONTEXT in contexts:
        return True
    # Both sides in canonical uuid form: "*" is handled above, so a customer that is not a uuid matches nothing.
    wanted = _context(customer_uuid) if customer_uuid is not None else None
    return wanted not in (None, ALL_ACCESS_CONTEXT) and wanted in contexts


def is_operator(request, customer_uuid=None) -> bool:
    """An operator for ``customer_uuid``; with no uuid, an operator for every customer (``:*``)."""
    contexts = roles_for_request(request)[OPERATOR]
    if customer_uuid is None:
        return ALL_ACCESS_CONTEXT in contexts
    return _has(contexts, customer_uuid)


def is_admin(request, customer_uuid) -> bool:
    return _has(roles_for_request(request)[ADMIN], customer_uuid)


def is_learner(request, customer_uuid) -> bool:
    return _has(roles_for_request(request)[LEARNER], customer_uuid)


def admin_customer_uuids(request) -> set[str]:
    """Customers the caller administers (``"*"`` if any customer)."""
    return set(roles_for_request(request)[ADMIN])


def learner_customer_uuids(request) -> set[str]:
    """Customers the caller is a learner of."""
    return set(roles_for_request(request)[LEARNER])


def operator_customer_uuids(request) -> set[str]:
    """Customers the caller operates (``"*"`` for all)."""
    return set(roles_for_request(request)[OPERATOR])
