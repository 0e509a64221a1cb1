"""The enterprise-catalog endpoints, under ``/catalog`` (§3)."""
from .content import catalog_contains, course_record, locate, raw_record, resolve_for_customer, run_record
from .web import (
    ROUTER_SEGMENT, SEGMENT, Router, detail, is_true, is_uuid, json_response, normalize_uuid, not_found, paginate,
    server_error,
)

router = Router(django_urls=True)
UNKNOWN_CATALOG = "No EnterpriseCatalog matches the given query."
NOT_THE_CUSTOMERS = "No matching content in any catalog for this customer"


def _catalog(emulator, request):
    raw = request.params["catalog_uuid"]
    return emulator.store.catalog(normalize_uuid(raw)) if is_uuid(raw) else None


@router.route("GET", rf"/api/v[12]/enterprise-catalogs/(?P<catalog_uuid>{ROUTER_SEGMENT})/contains_content_items/")
def contains_content_items(emulator, request):
    """
    True if any requested course/run key or program uuid is in the catalog (§3.1). DRF's
    ``get_object`` answers a malformed uuid with a bare 404 and an unknown one naming the model.
    """
    catalog = _catalog(emulator, request)
    if catalog is None:
        return not_found(UNKNOWN_CATALOG if is_uuid(request.params["catalog_uuid"]) else "Not found.")
    keys, programs = request.qlist("course_run_ids"), request.qlist("program_uuids")
    if not keys and not programs:
        return json_response(400, [
            "You must provide at least one of the following query parameters: course_run_ids, program_uuids."
        ])
    contained = set(catalog["content_keys"])
    found = any(catalog_contains(emulator.store, catalog, key) for key in keys) or any(
        program in contained for program in programs
    )
    return json_response(200, {"contains_content_items": found})


def _catalog_records(emulator, catalog, wanted_keys):
    """Raw records of the catalog's content, limited to ``wanted_keys`` when given, without repeats."""
    store = emulator.store
    records, seen = [], set()
    candidates = wanted_keys if wanted_keys else catalog["content_keys"]
    for key in candidates:
        if wanted_keys and not catalog_contains(store, catalog, key):
            continue
        located = locate(store, key)
        if located is None:
            continue
        course, run, key_is_run = located
        contained = catalog["content_keys"]
        run_only = key_is_run and run["key"] in contained and course["course_key"] not in contained
        record = run_record(course, run) if run_only else course_record(course)
        if record["key"] not in seen:
            seen.add(record["key"])
            records.append(record)
    return records


@router.route("GET", rf"/api/v1/enterprise-catalogs/(?P<catalog_uuid>{ROUTER_SEGMENT})/")
def retrieve_catalog(emulator, request):
    """
    One catalog's record: its ``uuid``, ``title`` and ``enterprise_customer`` (the customer it belongs to). The
    catalog's CRUD viewset answers an unknown or malformed uuid with a 404 naming the model.
    """
    catalog = _catalog(emulator, request)
    if catalog is None:
        return not_found(UNKNOWN_CATALOG if is_uuid(request.params["catalog_uuid"]) else "Not found.")
    return json_response(200, {"uuid": catalog["uuid"], "title": catalog.get("title") or f"Catalog {catalog['uuid']}",
                               "enterprise_customer": catalog["enterprise_customer_uuid"]})


@router.route("GET", rf"/api/v[12]/enterprise-catalogs/(?P<catalog_uuid>{SEGMENT})/get_content_metadata/?")
def get_content_metadata(emulator, request):
    """
    Raw records of the catalog's content (``content_keys`` repeated); one page with
    ``traverse_pagination``. The catalog's pattern has no trailing anchor, so the slash is
    optional; a malformed uuid fails Django's ``get_object_or_404`` (500 page).
    """
    if not is_uuid(request.params["catalog_uuid"]):
        return server_error()
    catalog = _catalog(emulator, request)
    if catalog is None:
        return not_found(UNKNOWN_CATALOG)
    records = _catalog_records(emulator, catalog, request.qlist("content_keys"))
    if is_true(request.q("traverse_pagination", "false")):
        return json_response(200, {"next": None, "previous": None, "count": len(records), "num_pages": 1,
                                   "current_page": 1, "start": 0, "results": records})
    return paginate(request, len(records), lambda start, size: records[start:start + size])


@router.route("GET", rf"/api/v1/content-metadata/(?P<content_id>{SEGMENT})/")
def content_metadata(emulator, request):
    """
    Customer-independent metadata of a course or run (§3.2); ``coerce_to_parent_course`` gives the
    course. A router detail route: without the trailing slash Django redirects (301) to it.
    """
    record = raw_record(
        emulator.store, request.params["content_id"],
        coerce_to_parent_course=is_true(request.q("coerce_to_parent_course", "false")),
    )
    if record is None:
        return not_found("No ContentMetadata matches the given query.")
    return json_response(200, record)


@router.route(
    "GET", rf"/api/v[12]/enterprise-customer/(?P<customer_uuid>{SEGMENT})/content-metadata/(?P<content_id>{SEGMENT})/"
)
def customer_content_metadata(emulator, request):
    """
    The customer-scoped raw record the subsidy service prices from (§3.2, §5.4). The current
    provider calls the v2 path, older ones v1 with ``?skip_customer_fetch=True``; both answer the
    same here (v2 also admits restricted runs, which the emulator does not model). A content
    key outside the customer's catalogs is a 404 ``{"detail"}``; a malformed customer uuid
    fails the catalogs' ``UUIDField`` lookup (500 page).
    """
    customer_uuid = request.params["customer_uuid"]
    if not is_uuid(customer_uuid):
        return server_error()
    resolved = resolve_for_customer(emulator.store, normalize_uuid(customer_uuid), request.params["content_id"])
    if resolved is None:
        return detail(404, NOT_THE_CUSTOMERS)
    if resolved.record_is_run:
        return json_response(200, run_record(resolved.course, resolved.run))
    return json_response(200, course_record(resolved.course))
