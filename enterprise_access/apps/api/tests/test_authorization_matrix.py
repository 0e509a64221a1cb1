"""
Authorization matrix: every API operation and every admin page, for every kind of caller.

Callers (columns of the tables below):

- ``anonymous``: no token, no session.
- ``other_learner``: a learner of another customer (JWT), acting for themself on this customer's objects.
- ``for_another``: a learner of this customer (JWT) acting for another learner of it.
- ``learner``: a learner of this customer acting for themself (the positive control for learner access).
- ``admin``: an enterprise admin of this customer (JWT), acting for a learner.
- ``operator``: ``enterprise_openedx_operator:*`` (JWT).
- ``other_admin``: an enterprise admin of the other customer only (JWT).
- ``other_operator``: an operator scoped to the other customer only, ``enterprise_openedx_operator:<other>`` (JWT):
  the caller of issue 11's cross-customer finding.
- ``staff``: a Django staff session with view permission on every admin model, and add/change on forced
  redemptions, but without ``subsidy_access_policy.force_redemption``.
- ``superuser``: a Django superuser session.

The API grants access by JWT roles only; a Django session (staff, superuser) carries none. Django admin needs a
staff session; adding or forcing a forced redemption needs the ``force_redemption`` permission; redemption
attempts are read-only for everyone; forced redemptions are never deleted.

Two customers: the demo customer (``CUSTOMER``, whose policy most calls name) and the other one (``OTHER_CUSTOMER``,
with its own subsidy, catalog and policy, and ``foreign_policy``: a policy of the other customer left on the demo
customer's subsidy, as rows written before the tenancy check may be). The ``*_foreign_*`` calls write or redeem
across the two; a subsidy or catalog of another customer is a 400 naming the field for whoever may write, and no
redemption spends across customers (decision 0013).

Each cell is one test: the expected status, and for lists, which rows the caller sees.
"""
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from enterprise_access.apps.subsidy_access_policy.forcing import inputs_digest
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptOutcome,
    AttemptSource,
    BulkForcingJob,
    BulkForcingRow,
    ForcedPolicyRedemption,
    RedemptionAttempt,
    SubsidyAccessPolicy,
)
from enterprise_access.apps.subsidy_access_policy.tests.factories import (
    AssignmentConfigurationFactory,
    AssignmentFactory,
    ForcedRedemptionFactory,
    PerLearnerEnrollmentPolicyFactory,
    UserFactory,
)
from enterprise_access.devtools import demo
from enterprise_access.devtools.tokens import mint_jwt

from .helpers import OPERATOR_ROLE, admin_role, learner_role

# Attempt rows are written on the second ("independent") connection, which cannot write while the test's own
# transaction holds SQLite's write lock: cells that need attempt rows (or redeem) run on a transactional
# database; the others, cheaper, in a rolled-back transaction without attempt rows.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, databases=["default", "independent"])
ROLLED_BACK = pytest.mark.django_db(databases=["default", "independent"])

CALLERS = ("anonymous", "other_learner", "for_another", "learner", "admin", "operator", "other_admin",
           "other_operator", "staff", "superuser")
CUSTOMER = demo.CUSTOMER_UUID
OTHER_CUSTOMER = demo.OTHER_CUSTOMER_UUID
LEARNER = demo.LEARNERS[0]["lms_user_id"]  # the learner requests are about
PEER = demo.LEARNERS[1]["lms_user_id"]  # another learner of the customer
OUTSIDER = demo.OTHER_LEARNER["lms_user_id"]  # a learner of the other customer
RUN = demo.ORDINARY_RUNS[0]

JWT_CLAIMS = {
    "other_learner": (OUTSIDER, [learner_role(OTHER_CUSTOMER)]),
    "for_another": (PEER, [learner_role(CUSTOMER)]),
    "learner": (LEARNER, [learner_role(CUSTOMER)]),
    "admin": (600, [admin_role(CUSTOMER)]),
    "operator": (900, [OPERATOR_ROLE]),
    "other_admin": (601, [admin_role(OTHER_CUSTOMER)]),
    "other_operator": (901, [f"enterprise_openedx_operator:{OTHER_CUSTOMER}"]),
}


def subject_of(caller):
    """The learner a caller's request is for: the other customer's learner for its callers, else ``LEARNER``."""
    return OUTSIDER if caller in ("other_learner", "other_admin", "other_operator") else LEARNER


# ----- the world ---------------------------------------------------------------------------------------------


@dataclass
class World:
    policy: object
    other_policy: object
    foreign_policy: object
    attempts: dict
    forced: object
    objects: dict  # admin label -> an instance for change/history/delete pages
    staff: object
    superuser: object


def make_world(with_attempts=True) -> World:
    policy = PerLearnerEnrollmentPolicyFactory(
        enterprise_customer_uuid=CUSTOMER, subsidy_uuid=demo.SUBSIDY_UUIDS["per_learner_enrollment"],
        catalog_uuid=demo.CATALOG_UUIDS["per_learner_enrollment"])
    other_policy = PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=OTHER_CUSTOMER,
                                                     subsidy_uuid=demo.OTHER_SUBSIDY_UUID,
                                                     catalog_uuid=demo.OTHER_CATALOG_UUID)
    foreign_policy = PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=OTHER_CUSTOMER,
                                                       subsidy_uuid=demo.SUBSIDY_UUIDS["per_learner_enrollment"],
                                                       catalog_uuid=demo.OTHER_CATALOG_UUID)

    def attempt(policy_, lms_user_id):
        return RedemptionAttempt.objects.create(
            uuid=uuid.uuid4(), policy_uuid=policy_.uuid, enterprise_customer_uuid=policy_.enterprise_customer_uuid,
            lms_user_id=lms_user_id, content_key=RUN, source=AttemptSource.LEARNER_REDEEM_API,
            outcome=AttemptOutcome.SUBSIDY_REFUSED, can_redeem=True, started_at=timezone.now(),
            error_message="internal detail", error_payload={"internal": True})

    attempts = {"learner": attempt(policy, LEARNER), "peer": attempt(policy, PEER),
                "outsider": attempt(other_policy, OUTSIDER)} if with_attempts else {}
    forced = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=LEARNER, course_run_key=RUN,
                                     wait_to_redeem=True)
    configuration = AssignmentConfigurationFactory(enterprise_customer_uuid=CUSTOMER)
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=[
        *(f"view_{model._meta.model_name}" for model in admin.site._registry),
        "add_forcedpolicyredemption", "change_forcedpolicyredemption",
    ]))
    superuser = UserFactory(is_staff=True, is_superuser=True)
    job = BulkForcingJob.objects.create(created_by=superuser, total=1)
    BulkForcingRow.objects.create(job=job, position=1, forced_redemption=forced)
    objects = {
        "auth.Group": Group.objects.create(name="support"),
        "core.User": UserFactory(),
        "content_assignments.AssignmentConfiguration": configuration,
        "content_assignments.LearnerContentAssignment": AssignmentFactory(assignment_configuration=configuration),
        "subsidy_access_policy.RedemptionAttempt": attempts.get("learner"),
        "subsidy_access_policy.ForcedPolicyRedemption": forced,
        "subsidy_access_policy.SubsidyAccessPolicy": policy,
        "subsidy_access_policy.BulkForcingJob": job,
    }
    return World(policy, other_policy, foreign_policy, attempts, forced, objects, staff, superuser)


def client_for_caller(caller, world) -> APIClient:
    client = APIClient()
    if caller in JWT_CLAIMS:
        lms_user_id, roles = JWT_CLAIMS[caller]
        client.credentials(HTTP_AUTHORIZATION=f"JWT {mint_jwt(lms_user_id=lms_user_id, roles=roles)}")
    elif caller == "staff":
        client.force_login(world.staff)
    elif caller == "superuser":
        client.force_login(world.superuser)
    return client


# ----- the API ------------------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    schema_path: str | None  # the operation in /api/schema/ this exercises (None: not a documented operation)
    url: Callable
    body: Callable = lambda world, subject: None


def _policy_body(world, subject):
    return {"policy_type": "PerLearnerEnrollmentCreditAccessPolicy", "enterprise_customer_uuid": CUSTOMER,
            "display_name": "New", "catalog_uuid": demo.CATALOG_UUIDS["per_learner_enrollment"],
            "subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"], "per_learner_enrollment_limit": 3}


def _foreign_subsidy_body(world, subject):
    """Issue 11's finding: a policy for the other customer on the demo customer's subsidy."""
    return {**_policy_body(world, subject), "enterprise_customer_uuid": OTHER_CUSTOMER,
            "catalog_uuid": demo.OTHER_CATALOG_UUID}


def _foreign_catalog_body(world, subject):
    return {**_policy_body(world, subject), "enterprise_customer_uuid": OTHER_CUSTOMER,
            "subsidy_uuid": demo.OTHER_SUBSIDY_UUID}


V1 = "/api/v1"
CALLS = {
    "redeem": Call("post", "/api/v1/policy-redemption/{policy_uuid}/redeem/",
                   lambda w, subject: f"{V1}/policy-redemption/{w.policy.uuid}/redeem/",
                   lambda w, subject: {"lms_user_id": subject, "content_key": RUN}),
    "can_redeem": Call("get", "/api/v1/policy-redemption/enterprise-customer/{customer_uuid}/can-redeem/",
                       lambda w, subject: f"{V1}/policy-redemption/enterprise-customer/{CUSTOMER}/can-redeem/"
                                          f"?content_key={RUN}&lms_user_id={subject}"),
    "credits_available": Call("get", "/api/v1/policy-redemption/credits_available/",
                              lambda w, subject: f"{V1}/policy-redemption/credits_available/"
                                                 f"?enterprise_customer_uuid={CUSTOMER}&lms_user_id={subject}"),
    "policy_list": Call("get", "/api/v1/subsidy-access-policies/", lambda w, subject: f"{V1}/subsidy-access-policies/"),
    "policy_create": Call("post", "/api/v1/subsidy-access-policies/",
                          lambda w, subject: f"{V1}/subsidy-access-policies/", _policy_body),
    "policy_retrieve": Call("get", "/api/v1/subsidy-access-policies/{uuid}/",
                            lambda w, subject: f"{V1}/subsidy-access-policies/{w.policy.uuid}/"),
    "policy_retrieve_other_customer": Call("get", None,
                                           lambda w, subject: f"{V1}/subsidy-access-policies/{w.other_policy.uuid}/"),
    "policy_update": Call("patch", "/api/v1/subsidy-access-policies/{uuid}/",
                          lambda w, subject: f"{V1}/subsidy-access-policies/{w.policy.uuid}/",
                          lambda w, subject: {"display_name": "Renamed"}),
    "policy_create_foreign_subsidy": Call("post", None, lambda w, subject: f"{V1}/subsidy-access-policies/",
                                          _foreign_subsidy_body),
    "policy_create_foreign_catalog": Call("post", None, lambda w, subject: f"{V1}/subsidy-access-policies/",
                                          _foreign_catalog_body),
    "policy_update_foreign_subsidy": Call(
        "patch", None, lambda w, subject: f"{V1}/subsidy-access-policies/{w.other_policy.uuid}/",
        lambda w, subject: {"subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"]}),
    "policy_update_move_customer": Call(
        "patch", None, lambda w, subject: f"{V1}/subsidy-access-policies/{w.policy.uuid}/",
        lambda w, subject: {"enterprise_customer_uuid": OTHER_CUSTOMER}),
    "redeem_foreign_subsidy": Call("post", None,
                                   lambda w, subject: f"{V1}/policy-redemption/{w.foreign_policy.uuid}/redeem/",
                                   lambda w, subject: {"lms_user_id": subject, "content_key": RUN}),
    "can_redeem_other_customer": Call(
        "get", None, lambda w, subject: f"{V1}/policy-redemption/enterprise-customer/{OTHER_CUSTOMER}/can-redeem/"
                                        f"?content_key={RUN}&lms_user_id={subject}"),
    "credits_available_other_customer": Call(
        "get", None, lambda w, subject: f"{V1}/policy-redemption/credits_available/"
                                        f"?enterprise_customer_uuid={OTHER_CUSTOMER}&lms_user_id={subject}"),
    "policy_replace": Call("put", None, lambda w, subject: f"{V1}/subsidy-access-policies/{w.policy.uuid}/",
                           _policy_body),
    "policy_delete": Call("delete", None, lambda w, subject: f"{V1}/subsidy-access-policies/{w.policy.uuid}/"),
    "attempt_list": Call("get", "/api/v1/redemption-attempts/", lambda w, subject: f"{V1}/redemption-attempts/"),
    "attempt_retrieve": Call("get", "/api/v1/redemption-attempts/{uuid}/",
                             lambda w, subject: f"{V1}/redemption-attempts/{w.attempts['learner'].uuid}/"),
    "attempt_summary": Call("get", "/api/v1/redemption-attempts/summary/",
                            lambda w, subject: f"{V1}/redemption-attempts/summary/"),
    # Asking, by filter, about the other customer or its policy: never more than the caller may see anyway.
    "policy_list_other_customer": Call(
        "get", None, lambda w, subject: f"{V1}/subsidy-access-policies/?enterprise_customer_uuid={OTHER_CUSTOMER}"),
    "attempt_list_other_customer": Call(
        "get", None, lambda w, subject: f"{V1}/redemption-attempts/?enterprise_customer_uuid={OTHER_CUSTOMER}"),
    "attempt_list_other_policy": Call(
        "get", None, lambda w, subject: f"{V1}/redemption-attempts/?policy_uuid={w.other_policy.uuid}"),
    "attempt_summary_other_customer": Call(
        "get", None, lambda w, subject: f"{V1}/redemption-attempts/summary/?enterprise_customer_uuid={OTHER_CUSTOMER}"),
    "schema": Call("get", None, lambda w, subject: "/api/schema/"),
    "docs": Call("get", None, lambda w, subject: "/api/docs/"),
    "health": Call("get", None, lambda w, subject: "/health/"),
}

# Expected status per caller: anonymous other_learner for_another learner admin operator other_admin other_operator
#                                                                                                  staff superuser
API_EXPECTED = {
    "redeem":                           (401, 403, 403, 200, 403, 200, 403, 403, 403, 403),
    "can_redeem":                       (401, 403, 403, 200, 403, 200, 403, 403, 403, 403),
    "credits_available":                (401, 403, 403, 200, 403, 200, 403, 403, 403, 403),
    "policy_list":                      (401, 403, 403, 403, 200, 200, 200, 200, 403, 403),
    "policy_create":                    (401, 403, 403, 403, 403, 201, 403, 403, 403, 403),
    "policy_retrieve":                  (401, 403, 403, 403, 200, 200, 404, 404, 403, 403),
    "policy_retrieve_other_customer":   (401, 403, 403, 403, 404, 200, 200, 200, 403, 403),
    "policy_update":                    (401, 403, 403, 403, 403, 200, 404, 404, 403, 403),
    "policy_replace":                   (401, 403, 403, 403, 405, 405, 405, 405, 403, 403),
    "policy_delete":                    (401, 403, 403, 403, 405, 405, 405, 405, 403, 403),
    # Across the two customers: another customer's subsidy or catalog is a 400 naming it, for whoever may write.
    "policy_create_foreign_subsidy":    (401, 403, 403, 403, 403, 400, 403, 400, 403, 403),
    "policy_create_foreign_catalog":    (401, 403, 403, 403, 403, 400, 403, 400, 403, 403),
    "policy_update_foreign_subsidy":    (401, 403, 403, 403, 404, 400, 403, 400, 403, 403),
    "policy_update_move_customer":      (401, 403, 403, 403, 403, 400, 404, 404, 403, 403),
    # A policy of the other customer on the demo customer's subsidy never spends: 422 policy_misconfigured.
    "redeem_foreign_subsidy":           (401, 422, 403, 403, 403, 422, 403, 422, 403, 403),
    "can_redeem_other_customer":        (401, 200, 403, 403, 403, 200, 403, 200, 403, 403),
    "credits_available_other_customer": (401, 200, 403, 403, 403, 200, 403, 200, 403, 403),
    "attempt_list":                     (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "attempt_retrieve":                 (401, 404, 404, 200, 200, 200, 404, 404, 404, 404),
    "attempt_summary":                  (401, 403, 403, 403, 200, 200, 200, 200, 403, 403),
    "policy_list_other_customer":       (401, 403, 403, 403, 200, 200, 200, 200, 403, 403),
    "attempt_list_other_customer":      (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "attempt_list_other_policy":        (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "attempt_summary_other_customer":   (401, 403, 403, 403, 200, 200, 200, 200, 403, 403),
    "schema":                           (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "docs":                             (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "health":                           (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
}

# For the 200s of lists: exactly which rows each caller sees.
LIST_SCOPE = {
    "policy_list": {"admin": {"policy"}, "operator": {"policy", "other_policy", "foreign_policy"},
                    "other_admin": {"other_policy", "foreign_policy"},
                    "other_operator": {"other_policy", "foreign_policy"}},
    "attempt_list": {"other_learner": {"outsider"}, "for_another": {"peer"}, "learner": {"learner"},
                     "admin": {"learner", "peer"}, "operator": {"learner", "peer", "outsider"},
                     "other_admin": {"outsider"}, "other_operator": {"outsider"},
                     "staff": set(), "superuser": set()},
    "policy_list_other_customer": {"admin": set(), "operator": {"other_policy", "foreign_policy"},
                                   "other_admin": {"other_policy", "foreign_policy"},
                                   "other_operator": {"other_policy", "foreign_policy"}},
    "attempt_list_other_customer": {"other_learner": {"outsider"}, "for_another": set(), "learner": set(),
                                    "admin": set(), "operator": {"outsider"}, "other_admin": {"outsider"},
                                    "other_operator": {"outsider"}, "staff": set(), "superuser": set()},
}
LIST_SCOPE["attempt_list_other_policy"] = LIST_SCOPE["attempt_list_other_customer"]
# For the summaries' 200s: how many attempts each caller's totals count.
SUMMARY_TOTAL = {"attempt_summary_other_customer": {"admin": 0, "operator": 1, "other_admin": 1,
                                                    "other_operator": 1}}
API_NEEDS_ATTEMPTS = {"redeem", "redeem_foreign_subsidy", "attempt_list", "attempt_retrieve", "attempt_summary",
                      "attempt_list_other_customer", "attempt_list_other_policy", "attempt_summary_other_customer"}
# Calls whose answer (for a caller who gets past the permission checks) asks the upstreams: the emulator answers.
API_NEEDS_UPSTREAM = {"policy_create", "policy_create_foreign_subsidy", "policy_create_foreign_catalog",
                      "policy_update_foreign_subsidy", "policy_update_move_customer", "redeem_foreign_subsidy",
                      "can_redeem_other_customer", "credits_available_other_customer"}
INTERNAL_ATTEMPT_FIELDS = {"error_payload", "acting_user", "error_message", "request_metadata"}


def _api_cells():
    for name, statuses in API_EXPECTED.items():
        marks = TRANSACTIONAL if name in API_NEEDS_ATTEMPTS else ROLLED_BACK
        for caller, status in zip(CALLERS, statuses):
            yield pytest.param(name, caller, status, marks=marks, id=f"{name}-{caller}")


def _listed(name, world, body):
    if name.startswith("policy_list"):
        names = {str(world.policy.uuid): "policy", str(world.other_policy.uuid): "other_policy",
                 str(world.foreign_policy.uuid): "foreign_policy"}
        rows = body["results"]
    else:
        names = {str(a.uuid): key for key, a in world.attempts.items()}
        rows = body["results"]
    return {names.get(row["uuid"], row["uuid"]) for row in rows}


@pytest.mark.parametrize(("name", "caller", "expected"), list(_api_cells()))
def test_api(request, name, caller, expected):
    call = CALLS[name]
    if (expected < 300 and call.schema_path and "policy-redemption" in call.schema_path) or \
            name in API_NEEDS_UPSTREAM:
        request.getfixturevalue("upstream")  # the emulator answers the upstream calls
    world = make_world(with_attempts=name in API_NEEDS_ATTEMPTS)
    subject = subject_of(caller)
    client = client_for_caller(caller, world)
    policies_before = _policy_rows()
    body = call.body(world, subject)
    response = getattr(client, call.method)(call.url(world, subject), body, format="json") if body is not None \
        else getattr(client, call.method)(call.url(world, subject))
    assert response.status_code == expected, (response.status_code, getattr(response, "content", b"")[:300])
    if name in LIST_SCOPE and expected == 200:
        assert _listed(name, world, response.json()) == LIST_SCOPE[name][caller]
    if name in SUMMARY_TOTAL and expected == 200:
        assert response.json()["total"] == SUMMARY_TOTAL[name][caller]
    if name == "attempt_retrieve" and expected == 200:
        shown = set(response.json())
        assert (shown & INTERNAL_ATTEMPT_FIELDS == set()) == (caller == "learner")
    if name == "redeem" and expected == 200:
        assert response.json()["lms_user_id"] == LEARNER
    if name in WRITES and expected >= 400:
        # Nothing changed: no transaction recorded, no policy created, renamed, moved or re-pointed.
        assert not RedemptionAttempt.objects.filter(outcome=AttemptOutcome.REDEEMED).exists()
        if name.startswith("redeem") and expected != 422:  # refused before the workflow: only the world's rows
            assert RedemptionAttempt.objects.count() == 3
        assert _policy_rows() == policies_before
    if name == "redeem_foreign_subsidy" and expected == 422:
        # Refused as misconfigured once the policy's own rules leave the subsidy to ask; a subject who is not even a
        # learner of the other customer (the demo customer's operator redeeming for its own learner) is refused
        # for that first. Either way nothing is spent.
        reason = "learner_not_in_enterprise" if caller == "operator" else "policy_misconfigured"
        assert response.json()["detail"][0]["reason"] == reason
        refusal = RedemptionAttempt.objects.get(policy_uuid=world.foreign_policy.uuid)
        assert (refusal.outcome, refusal.reason) == (AttemptOutcome.NOT_REDEEMABLE, reason)
    if name == "can_redeem_other_customer" and expected == 200:
        chosen = [(entry["redeemable_subsidy_access_policy"] or {}).get("uuid") for entry in response.json()]
        assert str(world.foreign_policy.uuid) not in chosen


WRITES = {"redeem", "redeem_foreign_subsidy", "policy_create", "policy_update", "policy_create_foreign_subsidy",
          "policy_create_foreign_catalog", "policy_update_foreign_subsidy", "policy_update_move_customer"}


def _policy_rows():
    return set(SubsidyAccessPolicy.objects.values_list("uuid", "enterprise_customer_uuid", "subsidy_uuid",
                                                       "catalog_uuid", "display_name", "active"))


def test_every_api_operation_is_in_the_matrix():
    schema = APIClient().get("/api/schema/?format=json").json()
    documented = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    covered = {(call.method, call.schema_path) for call in CALLS.values() if call.schema_path}
    assert covered == documented
    assert set(CALLS) == set(API_EXPECTED)


# ----- Django admin --------------------------------------------------------------------------------------------

PAGES = ("changelist", "add", "change", "history", "delete")
FORCED = "subsidy_access_policy.ForcedPolicyRedemption"
ATTEMPT = "subsidy_access_policy.RedemptionAttempt"
LOGIN = 302  # not a staff session: redirected to the admin login page
# Admin knows only sessions: the five JWT callers of the first customer show it; the other customer's two would
# repeat the same redirect in 82 more cells of a suite that must stay fast.
ADMIN_CALLERS = tuple(caller for caller in CALLERS if caller not in ("other_admin", "other_operator"))
NOT_STAFF = (LOGIN,) * 6  # anonymous and five JWT callers


def row(staff, superuser):
    return NOT_STAFF + (staff, superuser)


# Expected status per page.                                          staff superuser
ADMIN_EXPECTED = {
    ("index", None):                                                    row(200, 200),
    ("auth.Group", "changelist"):                                       row(200, 200),
    ("auth.Group", "add"):                                              row(403, 200),
    ("auth.Group", "change"):                                           row(200, 200),
    ("auth.Group", "history"):                                          row(200, 200),
    ("auth.Group", "delete"):                                           row(403, 200),
    ("core.User", "changelist"):                                        row(200, 200),
    ("core.User", "add"):                                               row(403, 200),
    ("core.User", "change"):                                            row(200, 200),
    ("core.User", "history"):                                           row(200, 200),
    ("core.User", "delete"):                                            row(403, 200),
    ("content_assignments.AssignmentConfiguration", "changelist"):      row(200, 200),
    ("content_assignments.AssignmentConfiguration", "add"):             row(403, 200),
    ("content_assignments.AssignmentConfiguration", "change"):          row(200, 200),
    ("content_assignments.AssignmentConfiguration", "history"):         row(200, 200),
    ("content_assignments.AssignmentConfiguration", "delete"):          row(403, 200),
    ("content_assignments.LearnerContentAssignment", "changelist"):     row(200, 200),
    ("content_assignments.LearnerContentAssignment", "add"):            row(403, 200),
    ("content_assignments.LearnerContentAssignment", "change"):         row(200, 200),
    ("content_assignments.LearnerContentAssignment", "history"):        row(200, 200),
    ("content_assignments.LearnerContentAssignment", "delete"):         row(403, 200),
    ("subsidy_access_policy.SubsidyAccessPolicy", "changelist"):        row(200, 200),
    ("subsidy_access_policy.SubsidyAccessPolicy", "add"):               row(403, 200),
    ("subsidy_access_policy.SubsidyAccessPolicy", "change"):            row(200, 200),
    ("subsidy_access_policy.SubsidyAccessPolicy", "history"):           row(200, 200),
    ("subsidy_access_policy.SubsidyAccessPolicy", "delete"):            row(403, 200),
    # Read-only for everyone: nobody adds or deletes an audit row.
    ("subsidy_access_policy.RedemptionAttempt", "changelist"):          row(200, 200),
    ("subsidy_access_policy.RedemptionAttempt", "add"):                 row(403, 403),
    ("subsidy_access_policy.RedemptionAttempt", "change"):              row(200, 200),
    ("subsidy_access_policy.RedemptionAttempt", "history"):             row(200, 200),
    ("subsidy_access_policy.RedemptionAttempt", "delete"):              row(403, 403),
    # Staff may look (their add/change model permissions do not count); adding needs force_redemption.
    ("subsidy_access_policy.ForcedPolicyRedemption", "changelist"):     row(200, 200),
    ("subsidy_access_policy.ForcedPolicyRedemption", "add"):            row(403, 200),
    ("subsidy_access_policy.ForcedPolicyRedemption", "change"):         row(200, 200),
    ("subsidy_access_policy.ForcedPolicyRedemption", "history"):        row(200, 200),
    ("subsidy_access_policy.ForcedPolicyRedemption", "delete"):         row(403, 403),
    # Writes to forced redemptions (POST), and the force action: confirmation, then confirmed.
    ("forced", "add_post"):                                             row(403, 302),
    ("forced", "change_post"):                                          row(403, 302),
    # Staff get the list back with the action refused (not the confirmation); the record stays unredeemed.
    ("forced", "force_action_confirm"):                                 row(200, 200),
    ("forced", "force_action_run"):                                     row(200, 302),
    # A record's confirmation page: staff may look; only force_redemption's "Yes, redeem" spends.
    ("forced", "redeem_get"):                                           row(200, 200),
    ("forced", "redeem_post"):                                          row(403, 302),
    # Bulk forcing jobs are written by the action only; staff may follow them and download their results.
    ("subsidy_access_policy.BulkForcingJob", "changelist"):             row(200, 200),
    ("subsidy_access_policy.BulkForcingJob", "add"):                    row(403, 403),
    ("subsidy_access_policy.BulkForcingJob", "change"):                 row(200, 200),
    ("subsidy_access_policy.BulkForcingJob", "history"):                row(200, 200),
    ("subsidy_access_policy.BulkForcingJob", "delete"):                 row(403, 403),
    ("bulk", "results"):                                                row(200, 200),
    # Uploading and re-running need force_redemption: the superuser's upload answers its form, the run is a POST
    # that answers a redirect (a job not stalled is not sent again).
    ("bulk", "upload"):                                                 row(403, 200),
    ("bulk", "upload_post"):                                            row(403, 200),
    ("bulk", "run_again"):                                              row(403, 302),
}
# Only the superuser's confirmed action or "Yes, redeem" may redeem; every other cell leaves the record unredeemed.
FORCE_REDEEMS = {("forced", "force_action_run"): {"superuser"}, ("forced", "redeem_post"): {"superuser"}}
FORCED_WRITES = {"add_post", "change_post", "force_action_confirm", "force_action_run", "redeem_get", "redeem_post"}


def _admin_url(label, page, world):
    if label == "index":
        return reverse("admin:index")
    if label == "forced":
        label, page = FORCED, {"add_post": "add", "change_post": "change", "redeem_get": "redeem",
                               "redeem_post": "redeem"}.get(page, "changelist")
    if label == "bulk":
        label, page = "subsidy_access_policy.BulkForcingJob", page.removesuffix("_post")
        if page == "upload":
            return reverse("admin:subsidy_access_policy_bulkforcingjob_upload")
    app_label, model_name = label.lower().split(".")
    name = f"admin:{app_label}_{model_name}_{page}"
    if page in ("changelist", "add"):
        return reverse(name)
    return reverse(name, args=[world.objects[label].pk])


def _forced_form(world, **extra):
    # As the change form posts it: the version it was opened on, and "Save without redeeming".
    return {"subsidy_access_policy": str(world.policy.uuid), "lms_user_id": str(LEARNER), "course_run_key": RUN,
            "content_price_cents": "", "_save_waiting": "Save without redeeming",
            "_loaded_version": world.forced.modified.isoformat(), **extra}  # a per-learner policy: the catalog price


def _admin_cells():
    for (label, page), statuses in ADMIN_EXPECTED.items():
        marks = TRANSACTIONAL if label in ("forced", ATTEMPT) else ROLLED_BACK
        for caller, status in zip(ADMIN_CALLERS, statuses):
            yield pytest.param(label, page, caller, status, marks=marks, id=f"{label}-{page}-{caller}")


@pytest.mark.parametrize(("label", "page", "caller", "expected"), list(_admin_cells()))
def test_admin(request, label, page, caller, expected):
    redeems = caller in FORCE_REDEEMS.get((label, page), set())
    if redeems or (page or "").startswith("redeem") or (label, page) == ("bulk", "upload_post"):
        request.getfixturevalue("upstream")  # the live emulator: confirmation pages and uploads ask upstream
    world = make_world(with_attempts=label in ("forced", ATTEMPT))
    client = client_for_caller(caller, world)
    url = _admin_url(label, page, world)
    if page == "add_post":
        response = client.post(url, _forced_form(world))
    elif page == "change_post":
        response = client.post(url, _forced_form(world, course_run_key=demo.ORDINARY_RUNS[1]))
    elif page == "upload_post":
        response = client.post(url, {"policy": str(world.policy.uuid), "file": SimpleUploadedFile(
            "learners.csv", f"lms_user_id,course_run_key\n{LEARNER},{RUN}\n".encode())})
    elif page == "run_again":
        response = client.post(url)
    elif page in ("force_action_confirm", "force_action_run"):
        data = {"action": "force_redemption_action", "_selected_action": [str(world.forced.pk)], "index": "0"}
        if page == "force_action_run":
            data.update({"post": "yes", f"_confirmed_inputs_{world.forced.pk}": inputs_digest(world.forced)})
        response = client.post(url, data)
    elif page == "redeem_post":
        response = client.post(url, {"_confirmed_inputs": inputs_digest(world.forced), "_redeem": "Yes"})
    else:
        response = client.get(url)
    assert response.status_code == expected, (response.status_code, response.get("Location"))
    if expected == LOGIN and caller not in ("staff", "superuser"):
        assert reverse("admin:login") in response["Location"]
    if label == "forced" and page in FORCED_WRITES:
        world.forced.refresh_from_db()
        assert (world.forced.redeemed_at is not None) == redeems
        assert RedemptionAttempt.objects.filter(outcome=AttemptOutcome.REDEEMED).exists() == redeems
        forced_count = ForcedPolicyRedemption.objects.count()
        assert forced_count == (2 if (page == "add_post" and caller == "superuser") else 1)  # wait_to_redeem
        if page == "change_post":
            assert (world.forced.course_run_key == demo.ORDINARY_RUNS[1]) == (caller == "superuser")
    if label == "bulk":
        assert ForcedPolicyRedemption.objects.count() == 1 and BulkForcingJob.objects.count() == 1  # nothing added
    if label == "forced" and page.startswith("force_action") and expected == 200:
        assert (b"are you sure" in response.content.lower()) == (caller == "superuser")


def test_every_admin_page_is_in_the_matrix():
    registered = {model._meta.label for model in admin.site._registry}
    covered = {label for label, page in ADMIN_EXPECTED if page in PAGES}
    assert covered == registered
    for label in registered:
        assert {page for lbl, page in ADMIN_EXPECTED if lbl == label} == set(PAGES), label
    assert all(len(statuses) == len(CALLERS) for statuses in API_EXPECTED.values())
    assert all(len(statuses) == len(ADMIN_CALLERS) for statuses in ADMIN_EXPECTED.values())
