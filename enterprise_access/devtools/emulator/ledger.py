"""
The enterprise-subsidy ledger: transaction JSON, balance, pricing, and the synchronous
create-transaction flow of contract §2.5 (validate, price, lock, get-or-create, fulfil, enrol,
commit).

The provider's own outbound calls (catalog pricing, LMS accounts, enrollment and fulfillment
cancellation, GEAG) are modelled in-process. They still consult *internal* faults
(``"internal": true`` in ``POST /_control/faults``), so a test can make the enrollment step fail
or stall while the ledger lock is held, or make a reversal's cancellation fail.
"""
import hashlib
import json
import uuid
from dataclasses import dataclass

from .content import MODE_EXEC_ED, content_summary, is_exec_ed, locate, price_cents, resolve_for_customer
from .lms_api import cancel_fulfillment_internally, enroll_internally
from .outbound import UpstreamFailure, outbound_call
from .web import detail, drf_datetime, is_uuid, json_response, normalize_uuid, parse_datetime, utc_now

LOCK_FAILED = "Attempt to lock the Ledger failed, please try again."
EXEC_ED_REQUIRED_METADATA = (
    "geag_first_name", "geag_last_name", "geag_email", "geag_date_of_birth", "geag_terms_accepted_at",
)
STATES = ("created", "pending", "committed", "failed")
# The provider spreads the request's metadata into keyword arguments (``**metadata``) of
# ``Subsidy.create_transaction`` and then of the ledger's ``create_transaction``. A key that names
# one of their parameters therefore either breaks the call (TypeError, a 422) or is consumed as
# that argument instead of being stored.
_POSITIONAL_PARAMETERS = ("self", "idempotency_key", "quantity")
_KEYWORD_PARAMETERS = (
    "lms_user_id", "lms_user_email", "content_key", "parent_content_key", "content_title",
    "course_run_start_date", "subsidy_access_policy_uuid",
)
_LEDGER_ONLY_KEYWORDS = ("ledger",)
_CONSUMED_BY_THE_LEDGER = ("state",)
# Where the provider's pricing fetches the customer-scoped record (the catalog's v2 path).
PRICING_PATH = "/api/v2/enterprise-customer/{customer_uuid}/content-metadata/{content_key}/"
GEAG_CANCEL_PATH = "/enterprise_allocations/cancel"


class ContentNotFound(Exception):
    """The content is in none of the customer's catalogs (a catalog 404)."""


# --- reads ----------------------------------------------------------------------------------------

def is_active(subsidy, now=None):
    """§5.2: active iff active_datetime <= now <= expiration_datetime, inclusive, in UTC."""
    now = now or utc_now()
    return parse_datetime(subsidy["active_datetime"]) <= now <= parse_datetime(subsidy["expiration_datetime"])


def visible_subsidy(store, subsidy_uuid):
    """The subsidy if it exists and is not soft-deleted; the caller answers 403 otherwise."""
    if not is_uuid(subsidy_uuid):
        return None
    subsidy = store.subsidy(normalize_uuid(subsidy_uuid))
    if subsidy is None or subsidy["soft_deleted"]:
        return None
    return subsidy


def serialize_subsidy(store, subsidy):
    return {
        "uuid": subsidy["uuid"],
        "title": subsidy["title"],
        "enterprise_customer_uuid": subsidy["enterprise_customer_uuid"],
        "active_datetime": subsidy["active_datetime"],
        "expiration_datetime": subsidy["expiration_datetime"],
        "unit": subsidy["unit"],
        "reference_id": subsidy["reference_id"],
        "reference_type": "salesforce_opportunity_line_item",
        "current_balance": store.balance(subsidy["uuid"]),
        "starting_balance": store.starting_balance(subsidy["uuid"]),
        "internal_only": subsidy["internal_only"],
        "revenue_category": subsidy["revenue_category"],
        "is_active": is_active(subsidy),
        "total_deposits": store.total_deposits(subsidy["uuid"]),
        "created": drf_datetime(subsidy["created"]),
        "modified": drf_datetime(subsidy["modified"]),
    }


def serialize_transaction(row, base_url):
    """The Transaction JSON of §2.6; ``base_url`` is the emulator root (``http://host:port``)."""
    reversal = None
    if row["reversal_uuid"]:
        reversal = {
            "uuid": row["reversal_uuid"],
            "state": row["reversal_state"],
            "idempotency_key": row["reversal_idempotency_key"],
            "quantity": row["reversal_quantity"],
            "metadata": json.loads(row["reversal_metadata"] or "null"),
            "created": drf_datetime(row["reversal_created"]),
            "modified": drf_datetime(row["reversal_modified"]),
        }
    content_key = row["content_key"]
    return {
        "uuid": row["uuid"],
        "state": row["state"],
        "idempotency_key": row["idempotency_key"],
        "lms_user_id": row["lms_user_id"],
        "lms_user_email": row["lms_user_email"],
        "content_key": content_key,
        "parent_content_key": row["parent_content_key"],
        "content_title": row["content_title"],
        "course_run_start_date": drf_datetime(row["course_run_start_date"]),
        "quantity": row["quantity"],
        "unit": row["unit"],
        "fulfillment_identifier": row["fulfillment_identifier"],
        "subsidy_access_policy_uuid": row["subsidy_access_policy_uuid"],
        "metadata": json.loads(row["metadata"]),
        "created": drf_datetime(row["created"]),
        "modified": drf_datetime(row["modified"]),
        "reversal": reversal,
        "external_reference": json.loads(row["external_reference"]),
        "transaction_status_api_url": f"{base_url}/subsidy/api/v1/transactions/{row['uuid']}/",
        "courseware_url": f"{base_url}/learning/course/{content_key}/home" if content_key else None,
    }


def price_lookup(emulator, subsidy, content_key, base_url):
    """
    The customer-scoped record for ``content_key`` (§5.4), via the provider's catalog call.

    ContentNotFound for a catalog 404; UpstreamFailure for any other catalog failure.
    """
    customer_uuid = subsidy["enterprise_customer_uuid"]
    path = PRICING_PATH.format(customer_uuid=customer_uuid, content_key=content_key)
    try:
        outbound_call(emulator, "catalog", "GET", path, f"{base_url}/catalog{path}")
    except UpstreamFailure as failure:
        if failure.status == 404:
            raise ContentNotFound() from failure
        raise
    resolved = resolve_for_customer(emulator.store, customer_uuid, content_key)
    if resolved is None:
        raise ContentNotFound()
    return resolved


def learner_email(emulator, lms_user_id, base_url):
    """Best-effort LMS accounts lookup for the email snapshot; None when unknown or failing."""
    path = "/api/user/v1/accounts"
    try:
        outbound_call(emulator, "lms", "GET", path, f"{base_url}/lms{path}?lms_user_id={lms_user_id}")
    except UpstreamFailure:
        return None
    learner = emulator.store.learner(lms_user_id)
    return learner["email"] if learner else None


# --- create ---------------------------------------------------------------------------------------

@dataclass
class CreateRequest:
    lms_user_id: int
    content_key: str
    subsidy_access_policy_uuid: str
    idempotency_key: str
    metadata: object
    requested_price_cents: int


def _integer(value):
    if isinstance(value, bool):
        raise ValueError()
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError()


def _char(body, name, errors, *, required):
    if name not in body or (body[name] is None and not required):
        if required:
            errors[name] = ["This field is required."]
        return None
    value = body[name]
    if value is None:
        errors[name] = ["This field may not be null."]
    elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
        errors[name] = ["Not a valid string."]
    elif not str(value).strip():
        errors[name] = ["This field may not be blank."]
    elif len(str(value)) > 255:
        errors[name] = ["Ensure this field has no more than 255 characters."]
    else:
        return str(value).strip()
    return None


def validate_create(body):
    """``(CreateRequest, None)`` or ``(None, {field: [messages]})`` as DRF would answer."""
    if not isinstance(body, dict):
        kind = type(body).__name__ if body is not None else "null"
        return None, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
    errors = {}
    lms_user_id = None
    if body.get("lms_user_id") is None:
        missing = "lms_user_id" not in body
        errors["lms_user_id"] = ["This field is required." if missing else "This field may not be null."]
    else:
        try:
            lms_user_id = _integer(body["lms_user_id"])
        except ValueError:
            errors["lms_user_id"] = ["A valid integer is required."]
    content_key = _char(body, "content_key", errors, required=True)
    policy_uuid = None
    if body.get("subsidy_access_policy_uuid") is None:
        errors["subsidy_access_policy_uuid"] = ["This field is required."]
    elif not is_uuid(body["subsidy_access_policy_uuid"]):
        errors["subsidy_access_policy_uuid"] = ["Must be a valid UUID."]
    else:
        policy_uuid = normalize_uuid(body["subsidy_access_policy_uuid"])
    idempotency_key = _char(body, "idempotency_key", errors, required=False)
    requested = body.get("requested_price_cents")
    if requested is not None:
        try:
            requested = _integer(requested)
            if requested < 0:
                errors["requested_price_cents"] = ["Ensure this value is greater than or equal to 0."]
        except ValueError:
            errors["requested_price_cents"] = ["A valid integer is required."]
    if errors:
        return None, errors
    return CreateRequest(lms_user_id, content_key, policy_uuid, idempotency_key, body.get("metadata"), requested), None


def stored_metadata(metadata):
    """
    ``(metadata to store, None)`` or ``(None, TypeError text)``, as the provider's
    ``metadata or {}`` followed by ``**metadata`` behaves: omitted, null or any falsy value is
    stored as ``{}``; anything else must be an object whose keys are not parameter names.
    """
    if not metadata:
        return {}, None
    if not isinstance(metadata, dict):
        kind = type(metadata).__name__  # JSON decodes to list, str, int, float or bool here
        return None, f"Subsidy.create_transaction() argument after ** must be a mapping, not {kind}"
    for name in _POSITIONAL_PARAMETERS:
        if name in metadata:
            return None, f"Subsidy.create_transaction() got multiple values for argument '{name}'"
    for name in _KEYWORD_PARAMETERS:
        if name in metadata:
            return None, f"Subsidy.create_transaction() got multiple values for keyword argument '{name}'"
    for name in _LEDGER_ONLY_KEYWORDS:
        if name in metadata:
            return None, f"create_transaction() got multiple values for keyword argument '{name}'"
    return {key: value for key, value in metadata.items() if key not in _CONSUMED_BY_THE_LEDGER}, None


def derived_idempotency_key(subsidy_uuid, quantity, data):
    """The key the provider makes up when the caller sends none (§2.8)."""
    fields = {
        "lms_user_id": data.lms_user_id,
        "content_key": data.content_key,
        "subsidy_access_policy_uuid": data.subsidy_access_policy_uuid,
    }
    digest = hashlib.md5(str(fields).encode(), usedforsecurity=False).hexdigest()
    return f"ledger-for-subsidy-{subsidy_uuid}-{quantity}-{digest}"


def unprocessable(message, code):
    return detail(422, message, code=code)


def create_transaction(emulator, subsidy, body, base_url):
    """§2.5 steps 2-12 for a visible subsidy (the 403 of step 1 is the caller's)."""
    store = emulator.store
    if not is_active(subsidy):
        return unprocessable("Cannot create a transaction in an inactive subsidy", "inactive_subsidy_creation_error")
    data, errors = validate_create(body)
    if errors:
        return json_response(400, errors)
    existing = store.committed_unreversed(subsidy["uuid"], data.lms_user_id, data.content_key)
    if existing:
        return json_response(200, serialize_transaction(existing, base_url))

    try:
        resolved = price_lookup(emulator, subsidy, data.content_key, base_url)
    except ContentNotFound:
        return unprocessable("The given content_key is not in any catalog for this customer.", "content_not_found")
    except UpstreamFailure as failure:
        return unprocessable(str(failure), "enrollment_error")
    canonical = price_cents(resolved.run)
    price = canonical
    if data.requested_price_cents:
        if not 0.8 * canonical <= data.requested_price_cents <= 1.2 * canonical:
            message = (f"Requested price {data.requested_price_cents} for {data.content_key} outside of "
                       f"acceptable interval on canonical course price of {canonical}.")
            return unprocessable(str([message]), "invalid_requested_price")
        price = data.requested_price_cents
    if store.balance(subsidy["uuid"]) < price:
        return unprocessable("Transaction was None after attempting to redeem", "transaction_creation_error")

    email = learner_email(emulator, data.lms_user_id, base_url)
    summary = content_summary(resolved)
    metadata, problem = stored_metadata(data.metadata)
    if problem:
        # The provider turns the TypeError of its ``**metadata`` call into a creation error.
        return unprocessable(problem, "transaction_creation_error")
    data.metadata = metadata

    lock = emulator.runtime.ledger_lock(subsidy["uuid"])
    if not lock.acquire(blocking=False):
        return detail(429, LOCK_FAILED)
    try:
        return _write_and_fulfil(emulator, subsidy, data, price, email, summary, resolved, base_url)
    finally:
        lock.release()


def _write_and_fulfil(emulator, subsidy, data, price, email, summary, resolved, base_url):
    """Under the ledger lock: re-check the balance, get-or-create by key, fulfil, enrol, commit."""
    store = emulator.store
    quantity = -price
    key = data.idempotency_key or derived_idempotency_key(subsidy["uuid"], quantity, data)
    with store.write() as conn:
        if store.balance(subsidy["uuid"]) + quantity < 0:
            row = None
        else:
            row = store.transaction_by_key(subsidy["uuid"], key) or store.insert_transaction(
                conn,
                subsidy_uuid=subsidy["uuid"], kind="redemption", state="created", idempotency_key=key,
                lms_user_id=data.lms_user_id, lms_user_email=email, content_key=data.content_key,
                parent_content_key=summary["content_key"], content_title=summary["content_title"],
                course_run_start_date=summary["course_run_start_date"], quantity=quantity, unit=subsidy["unit"],
                subsidy_access_policy_uuid=data.subsidy_access_policy_uuid, metadata=data.metadata,
            )
    if row is None:
        return unprocessable("Transaction was None after attempting to redeem", "transaction_creation_error")

    # A re-driven row keeps its own content and metadata (§2.8): fulfil what the row says.
    row = store.update_transaction(row["uuid"], state="pending")
    metadata = json.loads(row["metadata"])
    if row["content_key"] == data.content_key:
        course, run = resolved.course, resolved.run
    else:
        located = locate(store, row["content_key"] or "")
        course, run = (located[0], located[1]) if located else (resolved.course, resolved.run)

    def fail(message, code):
        store.update_transaction(row["uuid"], state="failed")
        return unprocessable(message, code)

    try:
        if is_exec_ed(course):
            problem = _exec_ed_problem(emulator, subsidy, metadata, run)
            if problem:
                return fail(problem, "fulfillment_error")
            try:
                order = _geag_order(emulator, metadata, base_url)
            except UpstreamFailure as failure:
                return fail(f"Failed to fulfill {MODE_EXEC_ED} order: {failure}", "fulfillment_error")
            store.update_transaction(row["uuid"], external_reference=[order])

        force = isinstance(metadata, dict) and bool(metadata.get("allow_late_enrollment"))
        try:
            fulfillment = enroll_internally(
                emulator, subsidy["enterprise_customer_uuid"], row["lms_user_id"],
                run["key"] if run else row["content_key"], row["uuid"], force, base_url,
            )
        except UpstreamFailure as failure:
            return fail(str(failure), "enrollment_error" if failure.http_error else "transaction_creation_error")
        row = store.update_transaction(row["uuid"], state="committed", fulfillment_identifier=fulfillment)
    except Exception:
        store.update_transaction(row["uuid"], state="failed")
        raise
    return json_response(201, serialize_transaction(row, base_url))


def _exec_ed_problem(emulator, subsidy, metadata, run):
    """Why GEAG fulfilment cannot start (§5.5), or None."""
    metadata = metadata if isinstance(metadata, dict) else {}
    required = list(EXEC_ED_REQUIRED_METADATA)
    customer = emulator.store.customer(subsidy["enterprise_customer_uuid"]) or {}
    if customer.get("enable_data_sharing_consent"):
        required.append("geag_data_share_consent")
    for name in required:
        if metadata.get(name) in (None, ""):
            return f"missing {name} transaction metadata"
    if not run or not run.get("variant_id"):
        return "missing geag_variant_id for the content's course run"
    return None


def _geag_order(emulator, metadata, base_url):
    """Place the GEAG order; its ``orderUuid`` (or the forced-redemption fallback id) is the reference."""
    body = outbound_call(emulator, "geag", "POST", "/allocations", f"{base_url}/geag/allocations")
    if body:
        try:
            order = json.loads(body).get("orderUuid")
            if order:
                return str(order)
        except (ValueError, AttributeError):
            pass
    return str(metadata.get("fallback_external_fulfillment_reference_id") or uuid.uuid4())


def reverse_transaction(emulator, transaction_uuid, *, metadata=None, idempotency_key=None, base_url=""):
    """
    Attach a committed reversal to a committed, unreversed transaction, as the provider does on an
    LMS unenrollment or an admin's reversal: within the reversal's database transaction it cancels
    the GEAG allocation (exec-ed) and then the LMS fulfillment; if either call fails the reversal
    rolls back. ``(row, None)`` or ``(None, (status, message))``.
    """
    store = emulator.store
    row = store.transaction(transaction_uuid) if is_uuid(transaction_uuid) else None
    if row is None:
        return None, (404, "No transaction with that uuid.")
    if row["state"] != "committed":
        return None, (409, f"Only committed transactions can be reversed; this one is {row['state']}.")
    if row["reversal_uuid"]:
        return None, (409, "The transaction is already reversed.")
    fulfillment = row["fulfillment_identifier"]
    if not fulfillment:
        return None, (409, f"transaction: {row['uuid']} has no platform fulfillment uuid, unable to unenroll;"
                           " the reversal rolled back.")
    key = idempotency_key or f"unenrollment-reversal-{fulfillment}-{drf_datetime(utc_now())}"
    try:
        # One GEAG cancellation per external reference; the emulator keeps no GEAG state.
        for _reference in json.loads(row["external_reference"]):
            outbound_call(emulator, "geag", "POST", GEAG_CANCEL_PATH, f"{base_url}/geag{GEAG_CANCEL_PATH}")
        cancel_fulfillment_internally(emulator, fulfillment, base_url)
    except UpstreamFailure as failure:
        return None, (502, f"Error canceling platform fulfillment {fulfillment}: {failure}; the reversal rolled back.")
    reversed_row = store.add_reversal(row["uuid"], idempotency_key=key, metadata=metadata if metadata else {})
    if reversed_row is None:
        return None, (409, "The transaction is already reversed.")
    return reversed_row, None
