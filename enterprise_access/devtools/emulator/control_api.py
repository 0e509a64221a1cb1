"""
The control API under ``/_control``: seeding, reset, fault injection, the request log, latency,
reversals, ledger inspection and connection statistics. It needs no token and is never delayed,
faulted, logged or counted. The module docstring of the package lists every verb and its JSON.
"""
from .ledger import reverse_transaction, serialize_transaction
from .seeding import SeedError, normalize_seed
from .web import BadJSON, Router, detail, is_uuid, json_response, normalize_uuid

router = Router()


def _body(request):
    try:
        return request.json(), None
    except BadJSON as exc:
        return None, detail(400, f"JSON parse error - {exc}")


@router.route("GET", r"/health")
def health(emulator, request):
    return json_response(200, {"status": "ok", "db": emulator.store.path, "run_token": emulator.run_token})


@router.route("POST", r"/seed")
def seed(emulator, request):
    document, error = _body(request)
    if error:
        return error
    try:
        normalized = normalize_seed(document if document is not None else {})
    except SeedError as exc:
        return detail(400, str(exc))
    counts = emulator.store.upsert_seed(normalized)
    return json_response(200, {"seeded": counts, "ignored": normalized["ignored"]})


@router.route("POST", r"/reset")
def reset(emulator, request):
    emulator.store.reset()
    emulator.runtime.reset()
    return json_response(200, {"reset": True})


@router.route("POST", r"/wipe")
def wipe(emulator, request):
    emulator.store.wipe()
    emulator.runtime.reset()
    return json_response(200, {"wiped": True})


@router.route("GET", r"/faults")
def list_faults(emulator, request):
    return json_response(200, emulator.runtime.faults())


@router.route("POST", r"/faults")
def add_fault(emulator, request):
    spec, error = _body(request)
    if error:
        return error
    try:
        fault = emulator.runtime.add_fault(spec)
    except ValueError as exc:
        return detail(400, str(exc))
    return json_response(201, fault.public())


@router.route("DELETE", r"/faults")
def clear_faults(emulator, request):
    emulator.runtime.clear_faults()
    return json_response(200, {"cleared": True})


@router.route("GET", r"/requests")
def list_requests(emulator, request):
    return json_response(200, emulator.runtime.requests(request.q("service")))


@router.route("DELETE", r"/requests")
def clear_requests(emulator, request):
    emulator.runtime.clear_requests()
    return json_response(200, {"cleared": True})


@router.route("GET", r"/latency")
def get_latency(emulator, request):
    return json_response(200, {"delay_ms": emulator.runtime.latency_ms})


@router.route("POST", r"/latency")
def set_latency(emulator, request):
    body, error = _body(request)
    if error:
        return error
    try:
        emulator.runtime.set_latency((body or {}).get("delay_ms", 0) if isinstance(body, dict) else None)
    except ValueError as exc:
        return detail(400, str(exc))
    return json_response(200, {"delay_ms": emulator.runtime.latency_ms})


@router.route("POST", r"/reversals")
def reverse(emulator, request):
    """
    Reverse a committed transaction as the provider does, cancelling its fulfillment first: 201
    with the transaction; 404 unknown; 409 not reversible; 502 when a cancellation call failed
    and the reversal rolled back.
    """
    body, error = _body(request)
    if error:
        return error
    body = body if isinstance(body, dict) else {}
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return detail(400, "metadata must be a JSON object or null")
    row, problem = reverse_transaction(
        emulator, str(body.get("transaction_uuid") or ""),
        metadata=metadata, idempotency_key=body.get("idempotency_key"), base_url=request.base_url,
    )
    if problem:
        status, message = problem
        return detail(status, message, rolled_back=True) if status == 502 else detail(status, message)
    return json_response(201, serialize_transaction(row, request.base_url))


@router.route("GET", r"/transactions")
def transactions(emulator, request):
    """Every transaction, oldest first, all states, optionally of one subsidy."""
    subsidy_uuid = request.q("subsidy_uuid")
    if subsidy_uuid is not None:
        if not is_uuid(subsidy_uuid):
            return detail(400, f"{subsidy_uuid} is not a valid uuid.")
        subsidy_uuid = normalize_uuid(subsidy_uuid)
    rows = emulator.store.list_transactions(subsidy_uuid, {}, ordering="created")
    return json_response(200, [serialize_transaction(row, request.base_url) for row in rows])


@router.route("GET", r"/enrollments")
def enrollments(emulator, request):
    rows = emulator.store.enrollments()
    for row in rows:
        row["force_enrollment"], row["active"] = bool(row["force_enrollment"]), bool(row["active"])
    return json_response(200, rows)


@router.route("GET", r"/stats")
def stats(emulator, request):
    """Connection statistics since start or the last reset (the package docstring defines them)."""
    return json_response(200, emulator.runtime.stats())


@router.route("DELETE", r"/stats")
def clear_stats(emulator, request):
    emulator.runtime.clear_stats()
    return json_response(200, emulator.runtime.stats())
