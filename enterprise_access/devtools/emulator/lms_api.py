"""
The LMS enterprise API (edx-enterprise) and the user accounts API, under ``/lms`` (§4).

The token endpoint ``/lms/oauth2/access_token`` lives in ``tokens.py``; the server routes it as
the ``oauth`` service.
"""
import json

from .outbound import UpstreamFailure, http_error_text, outbound_call
from .web import (
    ROUTER_SEGMENT, Response, Router, detail, drf_datetime, is_uuid, json_response, normalize_uuid, not_found,
    paginate, parse_datetime, server_error, utc_now,
)

router = Router(django_urls=True)
ENROLL_PATH = "/enterprise/api/v1/enterprise-customer/{customer_uuid}/enroll_learners_in_courses/"
# edx-enterprise's pattern, verbatim in effect: no trailing slash, and the final "t" optional.
CANCEL_FULFILLMENT_ROUTE = (
    r"/enterprise/api/v1/enterprise-subsidy-fulfillment/(?P<fulfillment_uuid>[A-Za-z0-9-]+)/cancel-fulfillment?"
)
CANCEL_FULFILLMENT_PATH = "/enterprise/api/v1/enterprise-subsidy-fulfillment/{fulfillment_uuid}/cancel-fulfillment"
NO_FULFILLMENT = "No fulfillment record matches the provided UUID."
UNKNOWN_CUSTOMER = "No EnterpriseCustomer matches the given query."


def serialize_customer(customer):
    return {
        "uuid": customer["uuid"],
        "name": customer["name"],
        "slug": customer["slug"],
        "active": customer["active"],
        "site": {"domain": "example.com", "name": "example.com"},
        "enable_data_sharing_consent": customer["enable_data_sharing_consent"],
        "enforce_data_sharing_consent": "at_enrollment",
        "branding_configuration": None,
        "identity_providers": [],
        "enable_audit_enrollment": False,
        "enable_learner_portal": True,
        "enable_portal_learner_credit_management_screen": True,
        "enable_executive_education_2U_fulfillment": True,
        "contact_email": customer["contact_email"],
        "admin_users": customer["admin_users"],
        "hide_course_original_price": False,
        "country": "US",
    }


def _serialize_user(learner):
    return {
        "id": learner["lms_user_id"],
        "username": learner["username"],
        "first_name": learner["first_name"],
        "last_name": learner["last_name"],
        "email": learner["email"],
        "is_staff": False,
        "is_active": learner["is_active"],
        "date_joined": learner["date_joined"],
    }


def _serialize_link(link):
    learner, customer = link["learner"], link["customer"]
    roles = ["enterprise_learner"]
    if any(admin["lms_user_id"] == learner["lms_user_id"] for admin in customer["admin_users"]):
        roles.append("enterprise_admin")
    return {
        "id": link["id"],
        "enterprise_customer": serialize_customer(customer),
        "active": link["position"] == 0,
        "user_id": learner["lms_user_id"],
        "user": _serialize_user(learner),
        "data_sharing_consent_records": [],
        "groups": [],
        "created": drf_datetime(link["created"]),
        "invite_key": None,
        "role_assignments": roles,
        "enterprise_group": learner["enterprise_group_uuids"],
    }


@router.route("GET", r"/enterprise/api/v1/enterprise-learner/")
def enterprise_learners(emulator, request):
    """Linked learner records; the filters apply only for staff callers (§4.1)."""
    claims = request.claims or {}
    filters = {}
    if claims.get("administrator"):
        customer_uuid = request.q("enterprise_customer_uuid")
        if customer_uuid is not None:
            if not is_uuid(customer_uuid):
                return json_response(200, _empty_page())
            filters["customer_uuid"] = normalize_uuid(customer_uuid)
        raw_ids = ",".join(request.qlist("user_ids"))
        if raw_ids:
            filters["lms_user_ids"] = [int(part) for part in raw_ids.split(",") if part.strip().isdigit()]
        for name in ("email", "username"):
            if request.q(name) is not None:
                filters[name] = request.q(name)
    else:
        filters["lms_user_ids"] = [claims.get("user_id")]
    links = emulator.store.learner_links(**filters)
    return paginate(
        request, len(links), lambda start, size: [_serialize_link(link) for link in links[start:start + size]],
        enterprise_features={},
    )


def _empty_page():
    return {"next": None, "previous": None, "count": 0, "num_pages": 1, "current_page": 1, "start": 0,
            "enterprise_features": {}, "results": []}


@router.route("GET", rf"/enterprise/api/v1/enterprise-customer/(?P<customer_uuid>{ROUTER_SEGMENT})/")
def enterprise_customer(emulator, request):
    """DRF's ``get_object``: a malformed uuid is a bare 404, an unknown one names the model."""
    customer_uuid = request.params["customer_uuid"]
    if not is_uuid(customer_uuid):
        return not_found()
    customer = emulator.store.customer(normalize_uuid(customer_uuid))
    if customer is None:
        return not_found(UNKNOWN_CUSTOMER)
    return json_response(200, serialize_customer(customer))


@router.route("GET", r"/api/user/v1/accounts/?")
def accounts(emulator, request):
    """User accounts by ``lms_user_id``, ``email`` or ``username``: a list, as the provider expects."""
    store = emulator.store
    if request.q("lms_user_id") is not None:
        raw = request.q("lms_user_id")
        learner = store.learner(int(raw)) if raw.strip().isdigit() else None
        learners = [learner] if learner else []
    elif request.q("email") is not None or request.q("username") is not None:
        learners = store.learners_where(email=request.q("email"), username=request.q("username"))
    else:
        return detail(400, "Provide lms_user_id, email or username.")
    if not learners:
        return not_found()
    return json_response(200, [{
        "id": learner["lms_user_id"],
        "username": learner["username"],
        "email": learner["email"],
        "name": f"{learner['first_name']} {learner['last_name']}".strip(),
        "is_active": learner["is_active"],
        "date_joined": learner["date_joined"],
    } for learner in learners])


def bulk_enroll(emulator, customer_uuid, enrollments_info):
    """
    Enrol each ``{user_id, course_run_key, transaction_id, force_enrollment}``; ``(status, results)``.

    An enrollment after the run's ``enrollment_end`` fails unless ``force_enrollment`` is true. Any
    failure makes the answer 409, as edx-enterprise does; all successes give 201.
    """
    store = emulator.store
    results = {"successes": [], "pending": [], "failures": []}
    now = utc_now()
    for info in enrollments_info:
        user_id, run_key = info.get("user_id"), info.get("course_run_key")
        owner = store.run_owner(run_key) if isinstance(run_key, str) else None
        course = store.course(owner[0]) if owner else None
        run = next((run for run in course["runs"] if run["key"] == owner[1]), None) if course else None
        failure = None
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            failure = "user_id must be an integer"
        elif run is None:
            failure = f"Course run {run_key} does not exist"
        elif not info.get("force_enrollment") and run["enrollment_end"] and parse_datetime(run["enrollment_end"]) < now:
            failure = f"Enrollment in {run_key} closed at {run['enrollment_end']}"
        if failure:
            results["failures"].append({"user_id": user_id, "course_run_key": run_key, "message": failure})
            continue
        fulfillment = store.add_enrollment(
            customer_uuid=customer_uuid, lms_user_id=user_id, course_run_key=run["key"],
            transaction_uuid=info.get("transaction_id"), force_enrollment=info.get("force_enrollment"),
        )
        results["successes"].append({
            "user_id": user_id, "course_run_key": run["key"], "created": True, "activation_link": None,
            "enterprise_fulfillment_source_uuid": fulfillment,
        })
    return (409 if results["failures"] else 201), results


@router.route(
    "POST", rf"/enterprise/api/v1/enterprise-customer/(?P<customer_uuid>{ROUTER_SEGMENT})/enroll_learners_in_courses/"
)
def enroll_learners_in_courses(emulator, request):
    customer_uuid = request.params["customer_uuid"]
    if not is_uuid(customer_uuid):
        return not_found()
    if emulator.store.customer(normalize_uuid(customer_uuid)) is None:
        return not_found(UNKNOWN_CUSTOMER)
    try:
        body = request.json()
    except ValueError as exc:
        return detail(400, f"JSON parse error - {exc}")
    infos = body.get("enrollments_info") if isinstance(body, dict) else None
    if not isinstance(infos, list) or not all(isinstance(info, dict) for info in infos):
        return json_response(400, {"enrollments_info": ["This field is required."]})
    status, results = bulk_enroll(emulator, normalize_uuid(customer_uuid), infos)
    return json_response(status, results)


def enroll_internally(emulator, customer_uuid, lms_user_id, course_run_key, transaction_uuid, force, base_url):
    """
    The subsidy provider's enrollment call for one redemption; the fulfillment uuid, or
    UpstreamFailure (``http_error`` set for an HTTP status, as ``requests`` would raise it).
    """
    path = ENROLL_PATH.format(customer_uuid=customer_uuid)
    url = f"{base_url}/lms{path}"
    injected = outbound_call(emulator, "lms", "POST", path, url)
    if injected is not None:
        try:
            results = json.loads(injected)
        except ValueError as exc:
            raise UpstreamFailure(f"Malformed enrollment response: {exc}") from exc
    else:
        info = {"user_id": lms_user_id, "course_run_key": course_run_key, "transaction_id": transaction_uuid}
        if force:
            info["force_enrollment"] = True
        status, results = bulk_enroll(emulator, customer_uuid, [info])
        if status >= 400:
            raise UpstreamFailure(http_error_text(status, url), status=status)
    successes = results.get("successes") if isinstance(results, dict) else None
    if not isinstance(successes, list) or len(successes) != 1:
        raise UpstreamFailure(f"Expected exactly one enrollment success, got {successes!r}")
    fulfillment = successes[0].get("enterprise_fulfillment_source_uuid") if isinstance(successes[0], dict) else None
    if not fulfillment:
        raise UpstreamFailure("Enrollment success without enterprise_fulfillment_source_uuid")
    return str(fulfillment)


def cancel_fulfillment(emulator, raw_fulfillment_uuid):
    """
    Cancel a learner-credit fulfillment: its enrollment becomes inactive. The Response edx-enterprise
    gives: 204 (no body) when cancelled, 200 ``{"detail"}`` when it already was, 404 for an unknown
    uuid, and a 500 page for a malformed one (a ``UUIDField`` lookup fails).
    """
    if not is_uuid(raw_fulfillment_uuid):
        return server_error()
    fulfillment_uuid = normalize_uuid(raw_fulfillment_uuid)
    store = emulator.store
    if store.enrollment(fulfillment_uuid) is None:
        return not_found(NO_FULFILLMENT)
    if not store.deactivate_enrollment(fulfillment_uuid):
        return json_response(200, {"detail": "Enrollment is already canceled."})
    return Response(204, b"")


@router.route("POST", CANCEL_FULFILLMENT_ROUTE)
def cancel_fulfillment_view(emulator, request):
    return cancel_fulfillment(emulator, request.params["fulfillment_uuid"])


def cancel_fulfillment_internally(emulator, fulfillment_uuid, base_url):
    """
    The subsidy provider's cancel-fulfillment call during a reversal: returns on any 2xx, raises
    UpstreamFailure (with the ``requests`` HTTPError text for a status) otherwise.
    """
    path = CANCEL_FULFILLMENT_PATH.format(fulfillment_uuid=fulfillment_uuid)
    url = f"{base_url}/lms{path}"
    if outbound_call(emulator, "lms", "POST", path, url) is not None:
        return  # an injected 2xx stands in for the call
    response = cancel_fulfillment(emulator, fulfillment_uuid)
    if response.status >= 400:
        raise UpstreamFailure(http_error_text(response.status, url), status=response.status)
