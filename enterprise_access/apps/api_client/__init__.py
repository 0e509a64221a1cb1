"""
HTTP clients for the upstream services: enterprise-subsidy, enterprise-catalog and the LMS.

Get clients from the factories below, never by constructing the classes at the call site, so a
test replaces exactly one name (e.g. ``monkeypatch.setattr(api_client, "get_subsidy_client", ...)``)
or, better, fakes HTTP with ``responses`` and keeps the real client.

Every failure raises a subclass of :class:`~.exceptions.UpstreamAPIError`; see
``docs/decisions/0003-how-upstream-clients-fail.rst``.
"""
from .catalog import EnterpriseCatalogClient
from .exceptions import (
    UpstreamAPIError,
    UpstreamBusyError,
    UpstreamRequestError,
    UpstreamUnavailableError,
)
from .lms import LmsClient
from .subsidy import EnterpriseSubsidyClient


def get_subsidy_client() -> EnterpriseSubsidyClient:
    """A new subsidy client. Construction is cheap; settings are read when it makes calls."""
    return EnterpriseSubsidyClient()


def get_catalog_client() -> EnterpriseCatalogClient:
    """A new catalog client. Construction is cheap; settings are read when it makes calls."""
    return EnterpriseCatalogClient()


def get_lms_client() -> LmsClient:
    """A new LMS client. Construction is cheap; settings are read when it makes calls."""
    return LmsClient()


__all__ = [
    "EnterpriseCatalogClient",
    "EnterpriseSubsidyClient",
    "LmsClient",
    "UpstreamAPIError",
    "UpstreamBusyError",
    "UpstreamRequestError",
    "UpstreamUnavailableError",
    "get_catalog_client",
    "get_lms_client",
    "get_subsidy_client",
]
