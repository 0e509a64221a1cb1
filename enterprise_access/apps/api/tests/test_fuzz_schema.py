"""
Bad-input fuzzing of the v1 API with schemathesis, against the live Django app and the upstream emulator.

Every documented operation of the redeem, can-redeem, credits-available, policy and attempt endpoints gets
generated requests, valid (positive) and invalid (negative), as an operator and as a learner. Each response must:
not be a 5xx; have a status code the schema documents; have the documented content type; and have a body that
conforms to the schema for that status.

Generated identifiers are random, so about half the cases are steered onto the real world (an existing policy,
attempt, the demo customer, a demo learner and course run): otherwise the redemption workflow would never run.

Bounded for CI (``FUZZ_MAX_EXAMPLES`` per operation, mode and caller, 25 by default, derandomized, so reproducible);
``make fuzz`` raises the bound (see ``bench/fuzz.py``).
"""
import os
import time
import uuid
from collections import Counter, defaultdict

import pytest
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis.errors import Unsatisfiable
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_wsgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.devtools import demo
from enterprise_access.devtools.tokens import mint_jwt

from .helpers import OPERATOR_ROLE, learner_role

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261121"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

# Every operation fuzzed. ``test_every_api_operation_is_fuzzed`` keeps this list equal to the schema's.
OPERATIONS = [
    ("POST", "/api/v1/policy-redemption/{policy_uuid}/redeem/"),
    ("GET", "/api/v1/policy-redemption/credits_available/"),
    ("GET", "/api/v1/policy-redemption/enterprise-customer/{customer_uuid}/can-redeem/"),
    ("GET", "/api/v1/subsidy-access-policies/"),
    ("POST", "/api/v1/subsidy-access-policies/"),
    ("GET", "/api/v1/subsidy-access-policies/{uuid}/"),
    ("PATCH", "/api/v1/subsidy-access-policies/{uuid}/"),
    ("GET", "/api/v1/redemption-attempts/"),
    ("GET", "/api/v1/redemption-attempts/{uuid}/"),
    ("GET", "/api/v1/redemption-attempts/summary/"),
]
# Status codes seen, per (method, path, caller, mode): bench/fuzz.py prints them after a long run.
STATUSES = defaultdict(Counter)
LEARNER = demo.LEARNERS[0]["lms_user_id"]
CALLERS = {
    "operator": mint_jwt(lms_user_id=900, roles=[OPERATOR_ROLE]),
    "learner": mint_jwt(lms_user_id=LEARNER, roles=[learner_role()]),
}


@pytest.fixture(scope="module")
def api_schema(django_db_blocker):
    with django_db_blocker.unblock():
        return from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def world(upstream, make_policy):
    """One policy per demo subsidy kind, and attempts of several outcomes, so lookups can hit real rows."""
    policies = [make_policy(), make_policy("per_learner_spend")]
    attempts = [
        RedemptionAttempt.objects.create(
            uuid=uuid.uuid4(), policy_uuid=policies[0].uuid, enterprise_customer_uuid=demo.CUSTOMER_UUID,
            lms_user_id=LEARNER, content_key=upstream.run, source=AttemptSource.LEARNER_REDEEM_API,
            outcome=outcome, started_at=timezone.now(), can_redeem=outcome != AttemptOutcome.NOT_REDEEMABLE,
            error_payload={"detail": "refused"} if outcome == AttemptOutcome.SUBSIDY_REFUSED else None,
        )
        for outcome in (AttemptOutcome.REDEEMED, AttemptOutcome.NOT_REDEEMABLE, AttemptOutcome.SUBSIDY_REFUSED)
    ]
    return {
        "policy_uuid": [str(p.uuid) for p in policies],
        "customer_uuid": [demo.CUSTOMER_UUID],
        "enterprise_customer_uuid": [demo.CUSTOMER_UUID],
        "attempt_uuid": [str(a.uuid) for a in attempts],
        "lms_user_id": [learner["lms_user_id"] for learner in demo.LEARNERS] + [demo.UNLINKED_LEARNER["lms_user_id"]],
        "content_key": list(upstream.runs) + [upstream.past_deadline_run, upstream.exec_ed_run,
                                              upstream.not_in_catalog_run],
    }


def steer(case, world, pick):
    """Point some of the case's identifiers at real objects (``pick`` draws from a list)."""
    params = case.path_parameters or {}
    for name in ("policy_uuid", "customer_uuid"):
        if name in params:
            params[name] = pick(world[name])
    if "uuid" in params:
        params["uuid"] = pick(world["attempt_uuid" if "redemption-attempts" in case.path else "policy_uuid"])
    query = case.query if isinstance(case.query, dict) else None
    if query is not None:
        for name in ("enterprise_customer_uuid", "lms_user_id", "policy_uuid"):
            if name in query:
                query[name] = pick(world[name])
        if "content_key" in query:
            query["content_key"] = [pick(world["content_key"])]
    if isinstance(case.body, dict):
        for name in ("lms_user_id", "content_key", "enterprise_customer_uuid"):
            if name in case.body:
                case.body[name] = pick(world[name])


def fuzz_operation(api_schema, world, method, path, caller, mode):
    operation = api_schema[path][method]
    headers = {"Authorization": f"JWT {CALLERS[caller]}"}

    @seed(SEED)
    @hsettings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
               print_blob=True)
    @given(case=operation.as_strategy(generation_mode=mode), steered=st.booleans(), data=st.data())
    def run(case, steered, data):
        if steered:
            steer(case, world, lambda values: data.draw(st.sampled_from(values)))
        response = case.call(headers=headers)
        STATUSES[(method, path, caller, mode.value)][response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (e.g. only free-form strings): positive mode covers it.
        if mode != GenerationMode.NEGATIVE:
            raise


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz(api_schema, world, method, path, mode):
    started = time.monotonic()
    fuzz_operation(api_schema, world, method, path, "operator", mode)
    if not path.startswith("/api/v1/subsidy-access-policies/"):  # a learner gets a 403 there, checked elsewhere
        fuzz_operation(api_schema, world, method, path, "learner", mode)
    assert time.monotonic() - started < 60


def test_every_api_operation_is_fuzzed(api_schema):
    documented = {(op.method.upper(), op.path) for op in
                  (result.ok() for result in api_schema.get_all_operations())}
    assert documented == set(OPERATIONS)
