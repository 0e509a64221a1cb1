"""
Client for enterprise-subsidy (contract §2): the subsidy record, can_redeem, the per-customer
content summary, and the ledger's transactions.

Only the content summary is cached: it is stable for minutes and costs the subsidy service a
catalog round trip. Balances, can_redeem and transactions change with every redemption, so
they are always read fresh; writes are never cached.
"""
from django.conf import settings

from .base import UpstreamClient, cache_key, is_list, is_page, path_segment, read_through
from .exceptions import SERVICE_SUBSIDY

DEFAULT_TRANSACTION_STATES = ("committed", "pending", "created")

# The largest page the edx paginator allows; fewer round trips when walking a learner's history.
_MAX_PAGE_SIZE = 100


def _content_not_found(payload, is_json):
    # The documented not-found answer is a 404 with a bare JSON string ("Content not found").
    # Any other 404 (a DRF {"detail"} for a wrong route, a proxy's HTML page) is an error, so a
    # misconfigured URL cannot pass for "content not in the customer's catalogs".
    return is_json and isinstance(payload, str)


class EnterpriseSubsidyClient(UpstreamClient):
    """Calls enterprise-subsidy at ``settings.ENTERPRISE_SUBSIDY_URL``."""

    service = SERVICE_SUBSIDY
    base_url_setting = "ENTERPRISE_SUBSIDY_URL"

    def retrieve_subsidy(self, subsidy_uuid):
        """The subsidy record (§2.1): ``is_active``, ``current_balance``, the active window, ..."""
        return self._call("GET", self._url(f"/api/v1/subsidies/{subsidy_uuid}/"))

    def can_redeem(self, subsidy_uuid, lms_user_id, content_key):
        """
        Whether the subsidy can pay for ``content_key`` for this learner (§2.2):
        ``{"can_redeem", "content_price", "unit", "active", "all_transactions"}``. Never cached.
        """
        return self._call(
            "GET",
            self._url(f"/api/v1/subsidies/{subsidy_uuid}/can_redeem/"),
            params={"lms_user_id": lms_user_id, "content_key": content_key},
        )

    def get_content_metadata(self, content_key, enterprise_customer_uuid):
        """
        The customer-scoped content summary (§2.3), with ``content_price`` in cents, or ``None``
        when the content is in none of the customer's catalogs.

        Found summaries are cached per (customer, key) for ``CONTENT_METADATA_CACHE_TIMEOUT``;
        ``None`` and errors are not, so content added to a catalog shows up on the next call.
        """
        def fetch():
            return self._call(
                "GET",
                self._url(f"/api/v1/content-metadata/{path_segment(content_key)}/"),
                params={"enterprise_customer_uuid": str(enterprise_customer_uuid)},
                not_found=_content_not_found,
            )

        return read_through(
            cache_key(self.service, "content-metadata", enterprise_customer_uuid, content_key),
            settings.CONTENT_METADATA_CACHE_TIMEOUT,
            fetch,
            should_cache=lambda summary: summary is not None,
        )

    def list_transactions(
        self,
        subsidy_uuid,
        *,
        lms_user_id=None,
        content_key=None,
        subsidy_access_policy_uuid=None,
        states=DEFAULT_TRANSACTION_STATES,
        include_aggregates=True,
        first_page_only=False,
    ):
        """
        Every transaction of the subsidy matching the filters (§2.4), all pages walked.

        ``first_page_only=True`` asks for a one-row page and stops there: for callers that want only the
        ``aggregates`` (a policy's total spend), whatever the number of transactions.

        Returns ``{"results": [...], "aggregates": {...}}``. ``aggregates`` covers the whole
        filtered set and is ``{}`` when not requested; when requested, a response without it is
        malformed (a missing ``total_quantity`` must not read as "nothing spent").
        """
        params = {"state": list(states), "page_size": 1 if first_page_only else _MAX_PAGE_SIZE}
        if lms_user_id is not None:
            params["lms_user_id"] = lms_user_id
        if content_key is not None:
            params["content_key"] = content_key
        if subsidy_access_policy_uuid is not None:
            params["subsidy_access_policy_uuid"] = str(subsidy_access_policy_uuid)
        if include_aggregates:
            params["include_aggregates"] = "true"

        def has_aggregates(page):
            return is_page(page) and isinstance(page.get("aggregates"), dict)

        results, aggregates = [], {}
        pages = self._iter_pages(
            self._url(f"/api/v2/subsidies/{subsidy_uuid}/admin/transactions/"),
            params,
            first_page_shape=has_aggregates if include_aggregates else is_page,
        )
        for number, page in enumerate(pages):
            if number == 0 and include_aggregates:
                # Every page repeats the same totals over the whole filtered set; read them once.
                aggregates = page["aggregates"]
            results.extend(page["results"])
            if first_page_only:
                break
        return {"results": results, "aggregates": aggregates}

    def create_transaction(
        self,
        subsidy_uuid,
        *,
        lms_user_id,
        content_key,
        subsidy_access_policy_uuid,
        idempotency_key,
        metadata=None,
        requested_price_cents=None,
    ):
        """
        Redeem: create (or get back) the learner's transaction for ``content_key`` (§2.5).

        Returns the committed transaction (201 for a new one, 200 for an existing redemption).
        A 422 raises ``UpstreamRequestError`` whose ``code``/``message`` are the body's
        ``code``/``detail`` (e.g. ``fulfillment_error``); a 429 raises ``UpstreamBusyError``.
        """
        body = {
            "subsidy_uuid": str(subsidy_uuid),
            "lms_user_id": lms_user_id,
            "content_key": content_key,
            "subsidy_access_policy_uuid": str(subsidy_access_policy_uuid),
            "idempotency_key": idempotency_key,
            "metadata": metadata,
        }
        if requested_price_cents is not None:
            body["requested_price_cents"] = requested_price_cents
        return self._call("POST", self._url(f"/api/v2/subsidies/{subsidy_uuid}/admin/transactions/"), body=body)

    def retrieve_transaction(self, transaction_uuid):
        """
        One transaction (§2.6), by uuid. The provider cannot tell an unknown uuid from one the
        caller may not read: both answer 403, so both raise ``UpstreamRequestError``; this never
        returns None. A malformed uuid is a 400.
        """
        return self._call("GET", self._url(f"/api/v1/transactions/{transaction_uuid}/"))

    def aggregates_by_learner(self, subsidy_uuid, subsidy_access_policy_uuid=None):
        """Committed, unreversed redemption counts per learner: ``[{"lms_user_id", "total"}]``."""
        params = {}
        if subsidy_access_policy_uuid is not None:
            params["subsidy_access_policy_uuid"] = str(subsidy_access_policy_uuid)
        # No trailing slash on this one route (contract §0).
        return self._call(
            "GET", self._url(f"/api/v1/subsidies/{subsidy_uuid}/aggregates-by-learner"), params=params, shape=is_list,
        )

