"""
The enterprise-subsidy endpoints, under ``/subsidy`` (§2).

A malformed uuid in a subsidy path segment is a 500 HTML page, as in the real service: it reaches
a ``UUIDField`` lookup whose ``ValidationError`` neither DRF nor the views handle. The
transaction detail route parses its uuid itself and answers 400.
"""
import uuid
from http import HTTPStatus

from .content import content_summary, price_cents
from .ledger import (
    STATES, ContentNotFound, create_transaction, is_active, price_lookup, serialize_subsidy, serialize_transaction,
    visible_subsidy,
)
from .outbound import UpstreamFailure
from .web import (
    ROUTER_SEGMENT, SEGMENT, BadJSON, Router, detail, is_uuid, json_response, normalize_uuid, paginate,
    server_error,
)

router = Router(django_urls=True)
NOT_IN_CATALOG = "Content not found"


def v1_error(status, message):
    """The rewritten DRF error of the v1 subsidies viewset (§2.7)."""
    return json_response(status, {
        "error_code": HTTPStatus(status).phrase, "developer_message": message, "user_message": message,
    })


def _subsidy_in_path(emulator, request, forbidden):
    """
    ``(subsidy, None)`` for the visible subsidy the path names, else ``(None, answer)``: 500 HTML
    for a malformed uuid, ``forbidden`` (the permission check's 403) for an unknown or
    soft-deleted one.
    """
    raw = request.params["subsidy_uuid"]
    if not is_uuid(raw):
        return None, server_error()
    subsidy = visible_subsidy(emulator.store, raw)
    if subsidy is None:
        return None, forbidden
    return subsidy, None


def _v1_subsidy(emulator, request):
    return _subsidy_in_path(emulator, request, v1_error(403, "MISSING: subsidy.can_read_subsidies"))


# --- v1 subsidies ---------------------------------------------------------------------------------

@router.route("GET", rf"/api/v1/subsidies/(?P<subsidy_uuid>{ROUTER_SEGMENT})/")
def retrieve_subsidy(emulator, request):
    subsidy, error = _v1_subsidy(emulator, request)
    if error:
        return error
    return json_response(200, serialize_subsidy(emulator.store, subsidy))


@router.route("GET", rf"/api/v1/subsidies/(?P<subsidy_uuid>{ROUTER_SEGMENT})/can_redeem/")
def can_redeem(emulator, request):
    """§2.2: can_redeem is false on an existing committed, unreversed redemption or a low balance."""
    store = emulator.store
    subsidy, error = _v1_subsidy(emulator, request)
    if error:
        return error
    raw_user, content_key = request.q("lms_user_id"), request.q("content_key")
    if not raw_user or not content_key:
        return v1_error(400, "A lms_user_id and content_key are required")
    try:
        lms_user_id = int(raw_user)
    except ValueError:
        return v1_error(400, "lms_user_id must be an integer")
    try:
        resolved = price_lookup(emulator, subsidy, content_key, request.base_url)
    except (ContentNotFound, UpstreamFailure):
        return server_error()  # the provider lets the pricing exception escape
    price = price_cents(resolved.run)
    existing = store.committed_unreversed(subsidy["uuid"], lms_user_id, content_key)
    history = store.learner_content_transactions(subsidy["uuid"], lms_user_id, content_key)
    return json_response(200, {
        "can_redeem": existing is None and store.balance(subsidy["uuid"]) >= price,
        "content_price": price,
        "unit": subsidy["unit"],
        "active": is_active(subsidy),
        "all_transactions": [serialize_transaction(row, request.base_url) for row in history],
    })


@router.route("GET", rf"/api/v1/subsidies/(?P<subsidy_uuid>{SEGMENT})/aggregates-by-learner")
def aggregates_by_learner(emulator, request):
    """
    Committed, unreversed redemptions counted per learner, optionally for one policy (§2.9).
    Only the slash-less path exists: ``.../aggregates-by-learner/`` is Django's 404 page.
    """
    subsidy, error = _v1_subsidy(emulator, request)
    if error:
        return error
    policy = request.q("subsidy_access_policy_uuid") or None
    if policy is not None:
        if not is_uuid(policy):
            return v1_error(400, f"{policy} is not a valid uuid.")
        policy = normalize_uuid(policy)
    return json_response(200, emulator.store.aggregates_by_learner(subsidy["uuid"], policy))


# --- v1 content metadata --------------------------------------------------------------------------

@router.route("GET", rf"/api/v1/content-metadata/(?P<content_key>{SEGMENT})/")
def content_metadata(emulator, request):
    """The customer-scoped price/deadline summary of §2.3; 404 body is the bare string "Content not found"."""
    customer_uuid = request.q("enterprise_customer_uuid")
    if not customer_uuid:
        return json_response(400, [
            "You must provide at least one of the following query parameters: enterprise_customer_uuid."
        ])
    if not is_uuid(customer_uuid):
        return detail(400, f"{customer_uuid} is not a valid uuid.")
    pseudo_subsidy = {"enterprise_customer_uuid": normalize_uuid(customer_uuid)}
    try:
        resolved = price_lookup(emulator, pseudo_subsidy, request.params["content_key"], request.base_url)
    except ContentNotFound:
        return json_response(404, NOT_IN_CATALOG)
    except UpstreamFailure as failure:
        if not failure.http_error:
            return server_error()
        return json_response(failure.status, str(failure))
    return json_response(200, content_summary(resolved))


# --- transactions ---------------------------------------------------------------------------------

def _list_filters(request, *, with_state):
    """``(filters, errors)`` from the django-filter style query parameters of the transaction lists."""
    filters, errors = {}, {}
    raw_user = request.q("lms_user_id")
    if raw_user:
        try:
            filters["lms_user_id"] = int(raw_user)
        except ValueError:
            errors["lms_user_id"] = ["Enter a number."]
    if request.q("content_key"):
        filters["content_key"] = request.q("content_key")
    policy = request.q("subsidy_access_policy_uuid")
    if policy:
        if is_uuid(policy):
            filters["subsidy_access_policy_uuid"] = normalize_uuid(policy)
        else:
            errors["subsidy_access_policy_uuid"] = ["Enter a valid UUID."]
    if with_state:
        states = [state for state in request.qlist("state") if state]
        invalid = [state for state in states if state not in STATES]
        if invalid:
            errors["state"] = [f"Select a valid choice. {invalid[0]} is not one of the available choices."]
        filters["states"] = states
    if request.q("search"):
        filters["search"] = request.q("search")
    return filters, errors


def _transaction_page(emulator, request, subsidy, filters):
    store = emulator.store
    count, total_quantity = store.count_transactions(subsidy["uuid"], filters)
    extra = {}
    # The provider adds aggregates only for the literal "true", in any case (§2.4).
    if str(request.q("include_aggregates", "")).strip().lower() == "true":
        extra["aggregates"] = {
            "unit": subsidy["unit"],
            "remaining_subsidy_balance": store.balance(subsidy["uuid"]),
            "total_quantity": total_quantity,
        }
    ordering = request.q("ordering") or "-created"

    def fetch(offset, limit):
        rows = store.list_transactions(subsidy["uuid"], filters, ordering=ordering, offset=offset, limit=limit)
        return [serialize_transaction(row, request.base_url) for row in rows]

    return paginate(request, count, fetch, **extra)


@router.route("GET", rf"/api/v2/subsidies/(?P<subsidy_uuid>{SEGMENT})/admin/transactions/")
def list_transactions_v2(emulator, request):
    """§2.4: filters, ``state`` OR-ed, ``search``, ``ordering``, edx pagination and aggregates."""
    subsidy, error = _subsidy_in_path(emulator, request, detail(403, "Missing: subsidy.can_read_all_transactions"))
    if error:
        return error
    filters, errors = _list_filters(request, with_state=True)
    if errors:
        return json_response(400, errors)
    return _transaction_page(emulator, request, subsidy, filters)


@router.route("POST", rf"/api/v2/subsidies/(?P<subsidy_uuid>{SEGMENT})/admin/transactions/")
def create_transaction_v2(emulator, request):
    """§2.5: the synchronous redeem; 201 new, 200 existing, 403/400/422/429 as the contract lists."""
    subsidy, error = _subsidy_in_path(emulator, request, detail(403, "Missing: subsidy.can_create_transactions"))
    if error:
        return error
    if not is_active(subsidy):
        # Checked before the body is even parsed (§2.5 step 2).
        return create_transaction(emulator, subsidy, None, request.base_url)
    try:
        body = request.json()
    except BadJSON as exc:
        return detail(400, f"JSON parse error - {exc}")
    return create_transaction(emulator, subsidy, body, request.base_url)


@router.route("POST", rf"/api/v2/subsidies/(?P<subsidy_uuid>{SEGMENT})/admin/deposits/")
def create_deposit_v2(emulator, request):
    """An admin deposit: a committed, positive transaction (§2.9)."""
    store = emulator.store
    subsidy, error = _subsidy_in_path(emulator, request, detail(403, "Missing: subsidy.can_create_deposits"))
    if error:
        return error
    try:
        body = request.json()
    except BadJSON as exc:
        return detail(400, f"JSON parse error - {exc}")
    body = body if isinstance(body, dict) else {}
    errors = {}
    quantity = body.get("desired_deposit_quantity")
    if quantity is None:
        errors["desired_deposit_quantity"] = ["This field is required."]
    elif isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["desired_deposit_quantity"] = ["A valid integer is required."]
    elif quantity < 1:
        errors["desired_deposit_quantity"] = ["Ensure this value is greater than or equal to 1."]
    for name in ("sales_contract_reference_id", "sales_contract_reference_provider"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            errors[name] = ["This field is required."]
    if errors:
        return json_response(400, errors)
    key = body.get("idempotency_key") or f"admin-deposit-{uuid.uuid4()}"
    with store.write() as conn:
        row = store.transaction_by_key(subsidy["uuid"], key) or store.insert_transaction(
            conn, subsidy_uuid=subsidy["uuid"], kind="deposit", state="committed", idempotency_key=key,
            quantity=quantity, unit=subsidy["unit"], metadata=body.get("metadata") or {},
        )
    return json_response(201, {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, row["uuid"])),
        "ledger": subsidy["uuid"],
        "transaction": row["uuid"],
        "desired_deposit_quantity": row["quantity"],
        "sales_contract_reference_id": body["sales_contract_reference_id"],
        "sales_contract_reference_provider": body["sales_contract_reference_provider"],
        "metadata": body.get("metadata"),
    })


@router.route("GET", r"/api/v1/transactions/")
def list_transactions_v1(emulator, request):
    """
    The v1 list: ``subsidy_uuid`` required, the v2 filters except ``state``. The provider filters
    by the subsidy without resolving it, so an unknown one is an empty page; only
    ``include_aggregates=true`` looks the subsidy up, and fails (500) when it does not exist.
    """
    raw = request.q("subsidy_uuid")
    if not raw:
        return json_response(400, ["You must provide at least one of the following query parameters: subsidy_uuid."])
    if not is_uuid(raw):
        return detail(400, f"{raw} is not a valid uuid.")
    subsidy_uuid = normalize_uuid(raw)
    subsidy = emulator.store.subsidy(subsidy_uuid) or {"uuid": subsidy_uuid, "unit": None}
    wants_aggregates = str(request.q("include_aggregates", "")).strip().lower() == "true"
    if wants_aggregates and visible_subsidy(emulator.store, subsidy_uuid) is None:
        return server_error()
    filters, errors = _list_filters(request, with_state=False)
    if errors:
        return json_response(400, errors)
    return _transaction_page(emulator, request, subsidy, filters)


@router.route("GET", rf"/api/v1/transactions/(?P<transaction_uuid>{ROUTER_SEGMENT})/")
def retrieve_transaction(emulator, request):
    """
    One transaction. The provider resolves the subsidy for its permission check first: a
    malformed uuid is 400, and an unknown one (or one in a soft-deleted subsidy) leaves no
    customer to check against, so it is 403, never 404.
    """
    raw = request.params["transaction_uuid"]
    if not is_uuid(raw):
        return detail(400, f"{raw} is not a valid uuid.")
    row = emulator.store.transaction(normalize_uuid(raw))
    if row is None or visible_subsidy(emulator.store, row["subsidy_uuid"]) is None:
        return detail(403, "MISSING: subsidy.can_read_transactions")
    return json_response(200, serialize_transaction(row, request.base_url))
