"""
Tenancy: a policy may spend only its own customer's subsidy, on its own customer's catalog (decision 0013).

Issue 11: an operator scoped to customer B created a policy for B on customer A's subsidy, and B's learner then
spent A's money. The policy row alone cannot show that; the subsidy service knows a subsidy's
``enterprise_customer_uuid`` and enterprise-catalog knows a catalog's ``enterprise_customer``. So:

* ``policy_tenancy_errors`` asks both, fresh, when a policy is created or its customer, subsidy or catalog changes
  (the API and the admin form), and when it is switched on. A mismatch is a per-field message; no answer is
  ``TenancyCheckUnavailable`` (the caller answers "try again" and saves nothing).
* ``subsidy_belongs_to_policy_customer`` is the redeem-time guard (defence in depth, for rows written before the
  check or behind it): the subsidy's customer, cached briefly, must be the policy's.
* ``check_policy_tenancy`` lists existing policies that fail (the management command of the same name).
"""
from dataclasses import dataclass, field
from uuid import UUID

from django.conf import settings

from enterprise_access.apps.api_client import get_catalog_client, get_subsidy_client
from enterprise_access.apps.api_client.base import cache_key, read_through
from enterprise_access.apps.api_client.exceptions import (
    SERVICE_SUBSIDY,
    UpstreamAPIError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)

# The fields a change of which re-runs the check (and switching a policy on).
TENANCY_FIELDS = ("enterprise_customer_uuid", "subsidy_uuid", "catalog_uuid")


class TenancyCheckUnavailable(Exception):
    """The subsidy or catalog service gave no usable answer: whether the policy is the customer's is unknown."""

    def __init__(self, error: UpstreamAPIError):
        self.error = error
        self.service = error.service
        super().__init__(f"The {error.service} service could not confirm the policy's customer: {error}")


def _same(left, right) -> bool:
    try:
        return UUID(str(left)) == UUID(str(right))
    except (TypeError, ValueError, AttributeError):
        return False


def _subsidy_customer(subsidy_uuid, *, unknown_is_none=True):
    """
    The subsidy's customer uuid as the subsidy service says, or None when it knows no such subsidy for us
    (``unknown_is_none=False``: raise the subsidy service's refusal instead).
    """
    try:
        record = get_subsidy_client().retrieve_subsidy(subsidy_uuid)
    except UpstreamRequestError as error:
        if unknown_is_none and error.status in (403, 404):
            # The subsidy service answers an unknown subsidy with 403, as it does one we may not read (contract 2.7).
            return None
        raise
    customer = record.get("enterprise_customer_uuid")
    if not isinstance(customer, str):
        raise UpstreamUnavailableError(service=SERVICE_SUBSIDY, status=200, code="malformed_response",
                                       message="The subsidy record carries no enterprise_customer_uuid.",
                                       payload=None)
    return customer


def _catalog_customer(catalog_uuid):
    """The catalog's customer uuid as enterprise-catalog says, or None when it knows no such catalog for us."""
    try:
        record = get_catalog_client().retrieve_catalog(catalog_uuid)
    except UpstreamRequestError as error:
        if error.status == 403:
            return None
        raise
    return None if record is None else record["enterprise_customer"]


def policy_tenancy_errors(*, enterprise_customer_uuid, subsidy_uuid, catalog_uuid) -> dict[str, str]:
    """
    ``{}`` when the subsidy and the catalog both belong to ``enterprise_customer_uuid``; otherwise a message per
    failing field (``subsidy_uuid``, ``catalog_uuid``) saying what to fix. Raises ``TenancyCheckUnavailable``
    when either service gives no usable answer.
    """
    errors = {}
    try:
        subsidy_customer = _subsidy_customer(subsidy_uuid)
        catalog_customer = _catalog_customer(catalog_uuid)
    except UpstreamAPIError as error:
        raise TenancyCheckUnavailable(error) from error
    if subsidy_customer is None:
        errors["subsidy_uuid"] = (
            f"The subsidy service has no subsidy {subsidy_uuid} that this service may use: check the uuid, and "
            "choose a subsidy of the policy's enterprise customer."
        )
    elif not _same(subsidy_customer, enterprise_customer_uuid):
        errors["subsidy_uuid"] = (
            f"Subsidy {subsidy_uuid} belongs to another enterprise customer, not {enterprise_customer_uuid}: "
            "choose a subsidy of the policy's own customer."
        )
    if catalog_customer is None:
        errors["catalog_uuid"] = (
            f"enterprise-catalog has no catalog {catalog_uuid} that this service may use: check the uuid, and "
            "choose a catalog of the policy's enterprise customer."
        )
    elif not _same(catalog_customer, enterprise_customer_uuid):
        errors["catalog_uuid"] = (
            f"Catalog {catalog_uuid} belongs to another enterprise customer, not {enterprise_customer_uuid}: "
            "choose a catalog of the policy's own customer."
        )
    return errors


def needs_tenancy_check(instance, changes: dict) -> bool:
    """
    Whether writing ``changes`` onto ``instance`` (None when creating) must be checked: on creation, when the
    customer, subsidy or catalog changes, and when the policy is switched on. Other edits (a name, a limit,
    switching a policy off) go through even while an upstream is down.
    """
    if instance is None or instance.pk is None or instance._state.adding:
        return True
    for name in TENANCY_FIELDS:
        if name in changes and not _same(changes[name], getattr(instance, name)):
            return True
    return bool(changes.get("active")) and not instance.active


# ----- redeem time ---------------------------------------------------------------------------------------------

def subsidy_belongs_to_policy_customer(policy) -> bool:
    """
    Whether the policy's subsidy is its customer's, from the subsidy record (its customer cached for
    ``SUBSIDY_CUSTOMER_CACHE_TIMEOUT``: a subsidy never changes customer). Raises ``UpstreamAPIError`` when the
    subsidy service gives no usable answer, or refuses to show the subsidy (403/404: unknown to it, or not ours to
    read; either way this policy cannot be decided, and nothing is spent through it).
    """
    def fetch():
        return _subsidy_customer(policy.subsidy_uuid, unknown_is_none=False)

    customer = read_through(cache_key(SERVICE_SUBSIDY, "subsidy-customer", policy.subsidy_uuid),
                            settings.SUBSIDY_CUSTOMER_CACHE_TIMEOUT, fetch, should_cache=bool)
    return _same(customer, policy.enterprise_customer_uuid)


# ----- existing policies -----------------------------------------------------------------------------------------

@dataclass
class PolicyTenancyReport:
    """One policy that fails the check, or could not be checked."""

    policy: object
    errors: dict = field(default_factory=dict)
    unavailable: str = ""

    def as_dict(self) -> dict:
        policy = self.policy
        return {"policy_uuid": str(policy.uuid), "display_name": policy.display_name,
                "enterprise_customer_uuid": str(policy.enterprise_customer_uuid),
                "subsidy_uuid": str(policy.subsidy_uuid), "catalog_uuid": str(policy.catalog_uuid),
                "active": policy.active, "retired": policy.retired, "errors": self.errors,
                "unavailable": self.unavailable}


def check_policy_tenancy(policies) -> list[PolicyTenancyReport]:
    """A report for each of ``policies`` whose subsidy or catalog is not its customer's, or could not be checked."""
    reports = []
    for policy in policies:
        try:
            errors = policy_tenancy_errors(enterprise_customer_uuid=policy.enterprise_customer_uuid,
                                           subsidy_uuid=policy.subsidy_uuid, catalog_uuid=policy.catalog_uuid)
        except TenancyCheckUnavailable as unavailable:
            reports.append(PolicyTenancyReport(policy, unavailable=str(unavailable)))
            continue
        if errors:
            reports.append(PolicyTenancyReport(policy, errors=errors))
    return reports
