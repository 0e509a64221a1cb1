"""
Validation and defaults for the seed document accepted by ``POST /_control/seed``.

``normalize_seed`` turns what a test or the demo sends into complete, canonical records (uuids
lower-cased, datetimes normalized, optional fields filled in), or raises ``SeedError`` naming the
first bad field. Missing uuids of courses and runs are derived from their keys, so re-seeding the
same document yields the same uuids.
"""
import uuid

from .web import drf_datetime, normalize_uuid

SOURCE_EDX = "edX"
SOURCE_2U = "2u"
DEFAULT_ACTIVE_DATETIME = "2020-01-01T00:00:00Z"
DEFAULT_EXPIRATION_DATETIME = "2099-12-31T23:59:59Z"
_UUID_NAMESPACE = uuid.UUID("6f1d1c9e-3a49-4f0a-9a57-5b0f3c0e8a11")


class SeedError(ValueError):
    """The seed document is malformed; the message names the offending field."""


def derived_uuid(kind, key):
    """A stable uuid for a seeded object that was given none."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"{kind}:{key}"))


def _uuid(record, name, where, *, default=None):
    value = record.get(name, default)
    try:
        return normalize_uuid(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise SeedError(f"{where}.{name}: {value!r} is not a uuid") from exc


def _datetime(record, name, where, *, default=None, required=False):
    value = record.get(name) or default
    if value is None:
        if required:
            raise SeedError(f"{where}.{name} is required")
        return None
    try:
        return drf_datetime(value)
    except (TypeError, ValueError) as exc:
        raise SeedError(f"{where}.{name}: {value!r} is not an ISO-8601 datetime") from exc


def _int(record, name, where, *, default=None, minimum=None):
    value = record.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedError(f"{where}.{name}: {value!r} is not an integer")
    if minimum is not None and value < minimum:
        raise SeedError(f"{where}.{name}: must be >= {minimum}")
    return value


def _required_str(record, name, where):
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise SeedError(f"{where}.{name} is required (a non-empty string)")
    return value


def _list(record, name, where):
    value = record.get(name) or []
    if not isinstance(value, list):
        raise SeedError(f"{where}.{name} must be a list")
    return value


def _customer(record, where):
    customer_uuid = _uuid(record, "uuid", where)
    admin_users = []
    for index, admin in enumerate(_list(record, "admin_users", where)):
        admin_users.append({
            "email": admin.get("email"),
            "lms_user_id": _int(admin, "lms_user_id", f"{where}.admin_users[{index}]"),
        })
    return {
        "uuid": customer_uuid,
        "name": record.get("name") or f"Customer {customer_uuid[:8]}",
        "slug": record.get("slug") or f"customer-{customer_uuid[:8]}",
        "active": bool(record.get("active", True)),
        "contact_email": record.get("contact_email"),
        "admin_users": admin_users,
        "enable_data_sharing_consent": bool(record.get("enable_data_sharing_consent", False)),
    }


def _learner(record, where):
    lms_user_id = _int(record, "lms_user_id", where)
    username = record.get("username") or f"learner{lms_user_id}"
    return {
        "lms_user_id": lms_user_id,
        "email": record.get("email") or f"{username}@example.org",
        "username": username,
        "first_name": record.get("first_name") or "",
        "last_name": record.get("last_name") or "",
        "is_active": bool(record.get("is_active", True)),
        "date_joined": _datetime(record, "date_joined", where, default="2025-01-01T00:00:00Z"),
        "enterprise_customer_uuids": [
            _uuid({"uuid": value}, "uuid", f"{where}.enterprise_customer_uuids")
            for value in _list(record, "enterprise_customer_uuids", where)
        ],
        "enterprise_group_uuids": [
            _uuid({"uuid": value}, "uuid", f"{where}.enterprise_group_uuids")
            for value in _list(record, "enterprise_group_uuids", where)
        ],
    }


def _catalog(record, where):
    keys = _list(record, "content_keys", where)
    if not all(isinstance(key, str) and key for key in keys):
        raise SeedError(f"{where}.content_keys must be non-empty strings")
    catalog_uuid = _uuid(record, "uuid", where)
    return {
        "uuid": catalog_uuid,
        "title": record.get("title") or f"Catalog {catalog_uuid[:8]}",
        "enterprise_customer_uuid": _uuid(record, "enterprise_customer_uuid", where),
        "content_keys": keys,
    }


def _run(record, where):
    key = _required_str(record, "key", where)
    variant_id = record.get("variant_id")
    return {
        "key": key,
        "uuid": _uuid(record, "uuid", where, default=derived_uuid("run", key)),
        "title": record.get("title"),
        "start": _datetime(record, "start", where),
        "end": _datetime(record, "end", where),
        "enrollment_start": _datetime(record, "enrollment_start", where),
        "enrollment_end": _datetime(record, "enrollment_end", where),
        "upgrade_deadline": _datetime(record, "upgrade_deadline", where),
        "upgrade_deadline_override": _datetime(record, "upgrade_deadline_override", where),
        "price_cents": _int(record, "price_cents", where, default=0, minimum=0),
        "variant_id": str(variant_id) if variant_id not in (None, "") else None,
    }


def _content(record, where):
    course_key = _required_str(record, "course_key", where)
    source = str(record.get("source") or SOURCE_EDX)
    if source.lower() not in ("edx", "2u"):
        raise SeedError(f"{where}.source must be 'edX' or '2u'")
    runs = [_run(run, f"{where}.runs[{index}]") for index, run in enumerate(_list(record, "runs", where))]
    advertised = record.get("advertised_run") or (runs[0]["key"] if runs else None)
    if advertised is not None and advertised not in {run["key"] for run in runs}:
        raise SeedError(f"{where}.advertised_run {advertised!r} is not one of its runs")
    return {
        "course_key": course_key,
        "course_uuid": _uuid(record, "course_uuid", where, default=derived_uuid("course", course_key)),
        "title": record.get("title") or course_key,
        "source": SOURCE_2U if source.lower() == "2u" else SOURCE_EDX,
        "advertised_run": advertised,
        "runs": runs,
    }


def _subsidy(record, where):
    unit = record.get("unit") or "usd_cents"
    if unit not in ("usd_cents", "seats"):
        raise SeedError(f"{where}.unit must be usd_cents or seats")
    return {
        "uuid": _uuid(record, "uuid", where),
        "enterprise_customer_uuid": _uuid(record, "enterprise_customer_uuid", where),
        "title": record.get("title"),
        "starting_balance": _int(record, "starting_balance", where, default=0, minimum=0),
        "active_datetime": _datetime(record, "active_datetime", where, default=DEFAULT_ACTIVE_DATETIME),
        "expiration_datetime": _datetime(record, "expiration_datetime", where, default=DEFAULT_EXPIRATION_DATETIME),
        "unit": unit,
        "reference_id": record.get("reference_id"),
        "internal_only": bool(record.get("internal_only", False)),
        "revenue_category": record.get("revenue_category") or "bulk-enrollment-prepay",
        "soft_deleted": bool(record.get("soft_deleted", False)),
    }


_SECTIONS = {
    "customers": _customer,
    "learners": _learner,
    "catalogs": _catalog,
    "content": _content,
    "subsidies": _subsidy,
}


def normalize_seed(document):
    """The complete, validated form of a seed document; SeedError on the first problem in a section."""
    if not isinstance(document, dict):
        raise SeedError("the seed document must be a JSON object")
    # Other top-level keys are ignored (and reported), so one document can carry more than a seed.
    seed = {"ignored": sorted(set(document) - set(_SECTIONS) - {"token_expires_in"})}
    for name, normalize in _SECTIONS.items():
        records = document.get(name)
        records = [] if records is None else records
        if not isinstance(records, list):
            raise SeedError(f"{name} must be a list")
        seed[name] = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise SeedError(f"{name}[{index}] must be an object")
            seed[name].append(normalize(record, f"{name}[{index}]"))
    expires_in = document.get("token_expires_in")
    seed["token_expires_in"] = _int(document, "token_expires_in", "seed", minimum=1) if expires_in is not None else None
    return seed
