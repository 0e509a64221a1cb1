"""
Bad-input fuzzing of the v1 API with schemathesis, against the live Django app and the upstream emulator.

Every documented operation of the redeem, can-redeem, credits-available, policy and attempt endpoints gets
generated requests, valid (positive) and invalid (negative), as an operator and as a learner. Each response must:
not be a 5xx; have a status code the schema documents; have the documented content type; and have a body that
conforms to the schema for that status.

Generated identifiers are random, so about half the cases are steered onto the real world (an existing policy,
attempt, the demo customer, a demo learner and course run): otherwise the redemption workflow would never run.

Beside the schema-generated cases, ``test_fuzz_edges`` sends the bad input schemathesis does not generate (issue 11,
decision 0014): tampered cursors, date-times at the edges of what UTC holds, bodies around the 64 KB limit, JSON
nested around the 32-level limit. Each answer must be a documented 4xx (or 200) that conforms to the schema.

Bounded for CI (``FUZZ_MAX_EXAMPLES`` per operation, mode and caller, 25 by default, derandomized, so reproducible);
``make fuzz`` raises the bound (see ``bench/fuzz.py``).
"""
import json
import os
import uuid
from base64 import b64encode
from datetime import datetime as dt_datetime
from datetime import timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlencode
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
from werkzeug.test import Client as WsgiClient

from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from enterprise_access.apps.api.limits import MAX_JSON_DEPTH, max_body_bytes
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
    fuzz_operation(api_schema, world, method, path, "operator", mode)
    if not path.startswith("/api/v1/subsidy-access-policies/"):  # a learner gets a 403 there, checked elsewhere
        fuzz_operation(api_schema, world, method, path, "learner", mode)


def test_every_api_operation_is_fuzzed(api_schema):
    documented = {(op.method.upper(), op.path) for op in
                  (result.ok() for result in api_schema.get_all_operations())}
    assert documented == set(OPERATIONS)


# ----- bad input schemathesis does not generate ------------------------------------------------------------------

ATTEMPTS = "/api/v1/redemption-attempts/"
SUMMARY = "/api/v1/redemption-attempts/summary/"
REDEEM = "/api/v1/policy-redemption/{policy_uuid}/redeem/"
POLICIES = "/api/v1/subsidy-access-policies/"
POLICY = "/api/v1/subsidy-access-policies/{uuid}/"


def _cursors():
    tokens = st.dictionaries(st.sampled_from(["o", "r", "p", "x"]),
                             st.text(max_size=30) | st.datetimes().map(str) | st.integers().map(str), max_size=3)
    return st.one_of(
        tokens.map(lambda t: b64encode(urlencode(t).encode()).decode()),
        st.binary(max_size=40).map(lambda b: b64encode(b).decode()),
        st.text(max_size=40),
    )


def _datetimes():
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt_timezone(timedelta(minutes=m)))
    edges = st.sampled_from([dt_datetime.min, dt_datetime.max])
    return st.builds(lambda dt, tz: dt.replace(tzinfo=tz).isoformat(), st.datetimes() | edges, offsets)


def _edge_request(draw, world):
    """One hand-made bad request: (method, schema path, url, body bytes or None)."""
    family = draw(st.sampled_from(["cursor", "datetime", "size", "depth"]))
    if family == "cursor":
        return "GET", ATTEMPTS, f"{ATTEMPTS}?{urlencode({'cursor': draw(_cursors())})}", None
    if family == "datetime":
        path = draw(st.sampled_from([ATTEMPTS, SUMMARY]))
        query = {name: draw(_datetimes()) for name in
                 draw(st.lists(st.sampled_from(["created_after", "created_before"]), min_size=1, unique=True))}
        return "GET", path, f"{path}?{urlencode(query)}", None
    method, path = draw(st.sampled_from([("POST", REDEEM), ("POST", POLICIES), ("PATCH", POLICY)]))
    url = path.replace("{policy_uuid}", world["policy_uuid"][0]).replace("{uuid}", world["policy_uuid"][0])
    if family == "size":
        limit = max_body_bytes()
        size = draw(st.one_of(st.integers(limit - 64, limit + 64), st.integers(limit, 3 * 1024 * 1024)))
        body = json.dumps({"content_key": "k" * max(0, size - 20), "lms_user_id": LEARNER}).encode()
    else:
        depth = draw(st.one_of(st.integers(1, MAX_JSON_DEPTH + 4), st.integers(MAX_JSON_DEPTH, 30_000)))
        body = ('{"lms_user_id": %d, "content_key": "k", "metadata": %s}'
                % (LEARNER, "[" * depth + "]" * depth)).encode()
    return method, path, url, body


def test_fuzz_edges(api_schema, world):
    """The bad input of issue 11 and its neighbours: never a 5xx, always a documented, conforming answer."""
    app = WsgiClient(get_wsgi_application())
    headers = {"Authorization": f"JWT {CALLERS['operator']}"}

    @seed(SEED)
    @hsettings(max_examples=MAX_EXAMPLES * 4, deadline=None, derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), print_blob=True)
    @given(data=st.data())
    def run(data):
        method, path, url, body = data.draw(st.composite(lambda draw: _edge_request(draw, world))())
        response = app.open(url, method=method, headers=headers, data=body,
                            content_type="application/json" if body is not None else None)
        STATUSES[(method, path, "operator", "edge")][response.status_code] += 1
        assert response.status_code < 500, (method, url[:200], response.get_data()[:300])
        operation = api_schema[path][method]
        assert str(response.status_code) in operation.definition.raw["responses"], (method, path, response.status_code)
        assert response.headers["Content-Type"].startswith("application/json")
        operation.validate_response(response)

    run()
