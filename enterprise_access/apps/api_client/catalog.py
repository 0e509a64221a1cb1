"""
Client for enterprise-catalog (contract §3): catalog membership, and raw content metadata for
display and assignment flows.

Membership and metadata change on catalog refreshes (hours), so both are cached briefly.
"""
from django.conf import settings

from .base import UpstreamClient, cache_key, is_dict, path_segment, read_through
from .exceptions import SERVICE_CATALOG


def _contains_answer(payload):
    # A 200 must carry the boolean: a missing value read as False would say "not in catalog"
    # on the strength of a broken answer.
    return is_dict(payload) and isinstance(payload.get("contains_content_items"), bool)


def _json_404(payload, is_json):
    # DRF answers an unknown content id with a JSON 404; a non-JSON 404 (a proxy's page, a wrong
    # base URL) is an error, not an answer about the content.
    return is_json


class EnterpriseCatalogClient(UpstreamClient):
    """Calls enterprise-catalog at ``settings.ENTERPRISE_CATALOG_URL``."""

    service = SERVICE_CATALOG
    base_url_setting = "ENTERPRISE_CATALOG_URL"

    def contains_content_items(self, catalog_uuid, content_keys):
        """
        True if any of ``content_keys`` (course or run keys) is in the catalog (§3.1).

        Cached per (catalog, set of keys) for ``CATALOG_CONTAINS_CACHE_TIMEOUT``, ``False`` included.
        An unknown catalog is a 404 and raises ``UpstreamRequestError``; it is not ``False``.
        """
        if isinstance(content_keys, str):
            raise TypeError("content_keys must be a list of keys, not one string")
        keys = sorted(set(content_keys))
        if not keys:
            raise ValueError("content_keys must name at least one key")

        def fetch():
            payload = self._call(
                "GET",
                self._url(f"/api/v2/enterprise-catalogs/{catalog_uuid}/contains_content_items/"),
                params={"course_run_ids": keys},
                shape=_contains_answer,
            )
            return payload["contains_content_items"]

        return read_through(
            cache_key(self.service, "contains", catalog_uuid, *keys),
            settings.CATALOG_CONTAINS_CACHE_TIMEOUT,
            fetch,
        )

    def retrieve_catalog(self, catalog_uuid):
        """
        The catalog's record, ``{"uuid", "title", "enterprise_customer", ...}``, or ``None`` when the catalog
        service knows no such catalog (its JSON 404). ``enterprise_customer`` is the customer it belongs to.
        Cached for ``CATALOG_RECORD_CACHE_TIMEOUT``: a catalog never changes customer.
        """
        def has_customer(payload):
            return is_dict(payload) and isinstance(payload.get("enterprise_customer"), str)

        def fetch():
            return self._call("GET", self._url(f"/api/v1/enterprise-catalogs/{path_segment(str(catalog_uuid))}/"),
                              shape=has_customer, not_found=_json_404)

        return read_through(
            cache_key(self.service, "catalog", catalog_uuid),
            settings.CATALOG_RECORD_CACHE_TIMEOUT,
            fetch,
            should_cache=lambda record: record is not None,
        )

    def get_content_metadata(self, content_id, *, coerce_to_parent_course=False):
        """
        Customer-independent metadata of one course, run or program (§3.2), or ``None`` if the
        catalog does not know it. Used for display prices. Found records are cached for
        ``CONTENT_METADATA_CACHE_TIMEOUT``.
        """
        params = {"coerce_to_parent_course": "True"} if coerce_to_parent_course else None

        def fetch():
            # The catalog's route ends with a slash; without it Django answers a 301 to it, a
            # round trip for nothing (the upstream consumer builds it slash-less, contract §0).
            return self._call(
                "GET",
                self._url(f"/api/v1/content-metadata/{path_segment(content_id)}/"),
                params=params,
                not_found=_json_404,
            )

        return read_through(
            cache_key(self.service, "content-metadata", content_id, coerce_to_parent_course),
            settings.CONTENT_METADATA_CACHE_TIMEOUT,
            fetch,
            should_cache=lambda record: record is not None,
        )

    def get_catalog_content_metadata(self, catalog_uuid, content_keys):
        """
        Raw metadata records of ``content_keys`` within one catalog (§3.2), every page walked.
        Not cached: used by assignment flows that want current data.
        """
        records = []
        pages = self._iter_pages(
            self._url(f"/api/v2/enterprise-catalogs/{catalog_uuid}/get_content_metadata/"),
            {"content_keys": list(content_keys), "traverse_pagination": "True"},
        )
        for page in pages:
            records.extend(page["results"])
        return records

