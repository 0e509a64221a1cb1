"""
The learner-facing side of "not redeemable": the reason payload of a 422 and of can-redeem.

Messages come from ``constants.REASON_USER_MESSAGES``, filled with how to reach the customer's administrators
(the LMS customer record: ``contact_email``, else the admin users' emails). If that lookup fails the learner
still gets an answer, with a generic contact line: a refusal never becomes a 500 or a 503.
"""
import logging

from enterprise_access.apps.api_client import UpstreamAPIError, get_lms_client
from enterprise_access.apps.subsidy_access_policy import constants as c

logger = logging.getLogger(__name__)

GENERIC_CONTACT = "Contact your organization's learning administrator for help."


class CustomerContact:
    """Who a learner of one customer should contact."""

    def __init__(self, contact_email=None, administrators=()):
        self.contact_email = contact_email or None
        self.administrators = list(administrators)

    @property
    def emails(self) -> list[str]:
        if self.contact_email:
            return [self.contact_email]
        return [a["email"] for a in self.administrators if a.get("email")]

    @property
    def line(self) -> str:
        emails = self.emails
        if not emails:
            return GENERIC_CONTACT
        return f"Contact your organization's learning administrator at {' or '.join(emails)}."

    def as_metadata(self) -> dict:
        return {"enterprise_administrators": self.administrators, "contact_email": self.contact_email}


def customer_contact(customer_uuid) -> CustomerContact:
    """The contact for ``customer_uuid``; a generic one when the LMS cannot be asked (logged, never raised)."""
    try:
        customer = get_lms_client().get_enterprise_customer(customer_uuid) or {}
    except UpstreamAPIError as exc:
        logger.warning("Could not read enterprise customer %s for its contact: %s", customer_uuid, exc)
        return CustomerContact()
    if not isinstance(customer, dict):
        return CustomerContact()
    admins = [
        {"email": a.get("email"), "lms_user_id": a.get("lms_user_id")}
        for a in customer.get("admin_users") or [] if isinstance(a, dict)
    ]
    return CustomerContact(customer.get("contact_email"), admins)


def user_message(reason: str, contact: CustomerContact) -> str:
    template = c.REASON_USER_MESSAGES.get(
        reason, "You cannot use your organization's learner credit for this course. {contact}"
    )
    line = contact.line
    return template.format(contact=line, contact_lower=line[:1].lower() + line[1:])


def reason_entry(reason: str, policy_uuids, contact: CustomerContact) -> dict:
    """One element of the ``detail`` list (422) or ``reasons`` list (can-redeem)."""
    return {
        "reason": reason,
        "user_message": user_message(reason, contact),
        "metadata": contact.as_metadata(),
        "policy_uuids": [str(u) for u in policy_uuids],
    }
