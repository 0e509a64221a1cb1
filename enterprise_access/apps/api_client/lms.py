"""
Client for the LMS enterprise API (contract §4): is a learner linked to an enterprise customer,
their email, and the customer record.

The one rule that matters here: ``None`` from :meth:`LmsClient.get_enterprise_user` means the
LMS answered and listed no matching record. An LMS that is down, slow or answers garbage raises
``UpstreamUnavailableError``; it never reads as "learner not in enterprise".
"""
from django.conf import settings

from .base import UpstreamClient, cache_key, is_page, read_through
from .exceptions import SERVICE_LMS


def _is_learner_page(page):
    # Each record must carry the two objects we match on, so a record of the wrong shape makes the
    # answer malformed rather than quietly "not a match".
    return is_page(page) and all(
        isinstance(record, dict)
        and isinstance(record.get("enterprise_customer"), dict)
        and isinstance(record.get("user"), dict)
        for record in page["results"]
    )


def _is_match(record, enterprise_customer_uuid, lms_user_id):
    """The §4.1 rule: the customer uuid equals as a string, the user id equals as an integer."""
    user_id = record["user"].get("id")
    return (
        record["enterprise_customer"].get("uuid") == enterprise_customer_uuid
        and isinstance(user_id, int)
        and not isinstance(user_id, bool)
        and user_id == lms_user_id
    )


class LmsClient(UpstreamClient):
    """Calls the LMS at ``settings.LMS_URL``."""

    service = SERVICE_LMS
    base_url_setting = "LMS_URL"

    def get_enterprise_user(self, enterprise_customer_uuid, lms_user_id):
        """
        The learner's linked enterprise-learner record for this customer (§4.1), or ``None`` if
        the LMS lists none.

        Follows pagination until the first match. The outcome, ``None`` included, is cached for
        ``ENTERPRISE_USER_RECORD_CACHE_TIMEOUT``; failures are not.
        """
        customer_uuid = str(enterprise_customer_uuid)
        lms_user_id = int(lms_user_id)

        def fetch():
            pages = self._iter_pages(
                self._url("/enterprise/api/v1/enterprise-learner/"),
                {"enterprise_customer_uuid": customer_uuid, "user_ids": str(lms_user_id)},
                shape=_is_learner_page,
            )
            for page in pages:
                for record in page["results"]:
                    if _is_match(record, customer_uuid, lms_user_id):
                        return record
            return None

        return read_through(
            cache_key(self.service, "enterprise-learner", customer_uuid, lms_user_id),
            settings.ENTERPRISE_USER_RECORD_CACHE_TIMEOUT,
            fetch,
        )

    def get_learner_email(self, enterprise_customer_uuid, lms_user_id):
        """The learner's email from their enterprise-learner record, or ``None`` without a record."""
        record = self.get_enterprise_user(enterprise_customer_uuid, lms_user_id)
        if record is None:
            return None
        return record["user"].get("email") or None

    def get_enterprise_customer(self, enterprise_customer_uuid):
        """
        The enterprise customer record (§4.2): ``contact_email``, ``admin_users``, ``name``, ...

        Cached for ``ENTERPRISE_CUSTOMER_CACHE_TIMEOUT``. An unknown customer (404) raises
        ``UpstreamRequestError``.
        """
        customer_uuid = str(enterprise_customer_uuid)
        return read_through(
            cache_key(self.service, "enterprise-customer", customer_uuid),
            settings.ENTERPRISE_CUSTOMER_CACHE_TIMEOUT,
            lambda: self._call("GET", self._url(f"/enterprise/api/v1/enterprise-customer/{customer_uuid}/")),
        )

    def linked_learner_ids(self, enterprise_customer_uuid, lms_user_ids, *, chunk=100):
        """
        Which of ``lms_user_ids`` are learners linked to this customer (§4.1, ``user_ids`` comma-separated), asked
        ``chunk`` ids at a time. Not cached: a bulk upload checks every id as the LMS has it now.
        """
        customer_uuid = str(enterprise_customer_uuid)
        wanted = sorted({int(user_id) for user_id in lms_user_ids})
        linked = {}
        for start in range(0, len(wanted), chunk):
            ids = wanted[start:start + chunk]
            pages = self._iter_pages(
                self._url("/enterprise/api/v1/enterprise-learner/"),
                {"enterprise_customer_uuid": customer_uuid, "user_ids": ",".join(str(i) for i in ids)},
                shape=_is_learner_page,
            )
            for page in pages:
                for record in page["results"]:
                    user_id = record["user"].get("id")
                    if user_id in ids and _is_match(record, customer_uuid, user_id):
                        linked[user_id] = record
        return linked

    def find_enterprise_user_by_email(self, enterprise_customer_uuid, email):
        """
        The linked learner record of this customer whose user has ``email`` (compared without case), or ``None``
        when the LMS lists none. Not cached.
        """
        customer_uuid = str(enterprise_customer_uuid)
        wanted = email.strip().lower()
        pages = self._iter_pages(
            self._url("/enterprise/api/v1/enterprise-learner/"),
            {"enterprise_customer_uuid": customer_uuid, "email": email.strip()},
            shape=_is_learner_page,
        )
        for page in pages:
            for record in page["results"]:
                user = record["user"]
                user_id = user.get("id")
                if (str(user.get("email") or "").strip().lower() == wanted
                        and _is_match(record, customer_uuid, user_id)):
                    return record
        return None
