"""
The service's own reason table: every message a learner reads about why a redemption did not happen.

* "Not redeemable" (a 422 and can-redeem): ``constants.REASON_USER_MESSAGES`` by reason code.
* "The subsidy service refused the transaction" (a 422): ``SUBSIDY_REFUSAL_MESSAGES`` by the subsidy's error code
  (contract 2.5). The subsidy's own ``detail`` is never passed on: it can hold internal URLs and stack text
  (an LMS error's "500 Server Error ... for url: http://..."). It stays on the attempt row (``error_message``,
  ``error_payload``), which staff read in admin and in the staff view of the attempt API (decision 0014).
* "Could not be decided now" (can-redeem, credits_available): ``REASON_UPSTREAM_UNAVAILABLE``.

Messages are filled with how to reach the customer's administrators (the LMS customer record: ``contact_email``,
else the admin users' emails). If that lookup fails the learner still gets an answer, with a generic contact
line: a refusal never becomes a 500 or a 503.
"""
import logging

from enterprise_access.apps.api_client import UpstreamAPIError, get_lms_client
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.redemption import CODE_TRANSACTION_NOT_COMMITTED

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


# The subsidy service's 422 codes (contract 2.5) and what this service tells the learner for each. The codes are
# answered as they are (a fixed, documented set); any other code is answered as SUBSIDY_REFUSED_CODE.
SUBSIDY_REFUSED_CODE = "subsidy_refused"
SUBSIDY_REFUSAL_MESSAGES = {
    "inactive_subsidy_creation_error": "Your organization's learner credit is not active. Nothing was charged. "
                                       "{contact}",
    "content_not_found": "This course is not part of your organization's catalog. Nothing was charged. {contact}",
    "invalid_requested_price": "The price assigned to you no longer matches this course's price. Nothing was "
                               "charged. {contact}",
    "enrollment_error": "We could not enroll you in this course. Nothing was charged. Try again later, or "
                        "{contact_lower}",
    "fulfillment_error": "The course provider could not complete your enrollment. Nothing was charged. Check the "
                         "details you entered and try again, or {contact_lower}",
    "transaction_creation_error": "Your organization's learner credit could not pay for this course (there may not "
                                  "be enough left). Nothing was charged. {contact}",
    CODE_TRANSACTION_NOT_COMMITTED: "Your enrollment could not be completed. Nothing was charged. Try again, or "
                                    "{contact_lower}",
    SUBSIDY_REFUSED_CODE: "Your organization's learner credit could not pay for this course. Nothing was charged. "
                          "{contact}",
}

# A policy whose answer depends on an upstream service that could not be asked (can-redeem, credits_available).
REASON_UPSTREAM_UNAVAILABLE = "upstream_unavailable"
UPSTREAM_UNAVAILABLE_MESSAGE = "We could not check this learner credit just now. Try again in a few minutes."
API_REASONS = (REASON_UPSTREAM_UNAVAILABLE,)


def _fill(template: str, contact: CustomerContact) -> str:
    line = contact.line
    return template.format(contact=line, contact_lower=line[:1].lower() + line[1:])


def user_message(reason: str, contact: CustomerContact) -> str:
    if reason == REASON_UPSTREAM_UNAVAILABLE:
        return UPSTREAM_UNAVAILABLE_MESSAGE
    template = c.REASON_USER_MESSAGES.get(
        reason, "You cannot use your organization's learner credit for this course. {contact}"
    )
    return _fill(template, contact)


def subsidy_refusal(code, contact: CustomerContact) -> dict:
    """The learner's ``{"detail", "code"}`` for a transaction the subsidy service refused with ``code``."""
    known = code if code in SUBSIDY_REFUSAL_MESSAGES else SUBSIDY_REFUSED_CODE
    return {"detail": _fill(SUBSIDY_REFUSAL_MESSAGES[known], contact), "code": known}


def reason_entry(reason: str, policy_uuids, contact: CustomerContact) -> dict:
    """One element of the ``detail`` list (422) or ``reasons`` list (can-redeem)."""
    return {
        "reason": reason,
        "user_message": user_message(reason, contact),
        "metadata": contact.as_metadata(),
        "policy_uuids": [str(u) for u in policy_uuids],
    }
