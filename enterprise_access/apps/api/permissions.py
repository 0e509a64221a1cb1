"""Who may do what, in terms of the token's roles (enterprise_access.apps.core.roles)."""
from enterprise_access.apps.core import roles


def may_act_for_learner(request, customer_uuid, lms_user_id) -> bool:
    """A learner of the customer acting for themself, or an operator of the customer acting for anyone."""
    if roles.is_operator(request, customer_uuid):
        return True
    own_id = getattr(request.user, "lms_user_id", None)
    return own_id is not None and int(own_id) == int(lms_user_id) and roles.is_learner(request, customer_uuid)


def may_read_for_learner(request, customer_uuid, lms_user_id) -> bool:
    """As ``may_act_for_learner``, and an admin of the customer may also read about their own account."""
    if may_act_for_learner(request, customer_uuid, lms_user_id):
        return True
    own_id = getattr(request.user, "lms_user_id", None)
    return own_id is not None and int(own_id) == int(lms_user_id) and roles.is_admin(request, customer_uuid)


def may_read_customer_policies(request, customer_uuid) -> bool:
    return roles.is_operator(request, customer_uuid) or roles.is_admin(request, customer_uuid)


def has_any_policy_role(request) -> bool:
    return bool(roles.operator_customer_uuids(request) or roles.admin_customer_uuids(request))
