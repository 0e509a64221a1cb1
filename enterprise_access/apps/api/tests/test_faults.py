"""
Fault suite for ``POST /api/v1/policy-redemption/<policy_uuid>/redeem/`` (issue 7, item 3).

Every upstream the redeem path calls is made to fail in every way we know of, through the emulator's fault API
(or, for a refused connection, a base URL on a closed port). For each case the suite checks:

- the documented status (decisions 0005 and 0010): 503 + ``Retry-After`` for an outage of any kind; 422 with the
  subsidy service's ``code``/``detail`` only when the subsidy service refuses the transaction itself; 202
  ``redemption_uncertain`` when the create may have been processed but its answer was lost (a timeout, a dropped
  connection, a 5xx or an unreadable 2xx after it was sent), its reservation left counted;
- exactly one ``RedemptionAttempt`` row, finished, with the right outcome and error fields;
- no partial state: no assignment accepted, no transaction uuid anywhere, no committed transaction upstream.

Then the infrastructure: Redis down (refused, and accepting but silent) and the database unreachable answer a
clear 503 quickly instead of hanging or answering 500.
"""
import re
import time
from contextlib import contextmanager

import pytest
from django.db import connections

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy.models import (
    AssignedLearnerCreditAccessPolicy,
    AttemptOutcome,
    RedemptionAttempt,
    ReservationState,
    SpendReservation,
)
from enterprise_access.apps.subsidy_access_policy.tests.factories import AssignmentFactory
from enterprise_access.devtools import demo
from enterprise_access.devtools.net import free_port, silent_listener
from enterprise_access.devtools.testing import build_world_policy

from .helpers import learner_client, redeem_url

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

LEARNER = demo.LEARNERS[0]
RUN = demo.ORDINARY_RUNS[0]
PRICE = demo.PRICES[RUN]

# A read timeout short enough to keep the suite fast, and a fault delay well past it.
READ_TIMEOUT = 0.3
FAULT_DELAY_MS = 800
MALFORMED_BODY = "<html><body>Service Temporarily Unavailable</body></html>"


# ----- the matrix ---------------------------------------------------------------------------------------

# Which call of the redeem path each upstream fault hits: a fault API matcher (path is the regex matched
# against the path after the service prefix), the settings key of its base URL (for "refused"), and the
# service that the error names.
UPSTREAMS = {
    "subsidy_can_redeem": {"service": "subsidy", "method": "GET", "path": r"^/api/v1/subsidies/[^/]+/can_redeem/",
                           "url_setting": "ENTERPRISE_SUBSIDY_URL"},
    "subsidy_create": {"service": "subsidy", "method": "POST", "path": r"/admin/transactions/?$",
                       "url_setting": None},  # one base URL with can_redeem: "refused" is the can_redeem row
    "catalog_contains": {"service": "catalog", "method": "GET", "path": r"/contains_content_items/",
                         "url_setting": "ENTERPRISE_CATALOG_URL"},
    "lms_enterprise_learner": {"service": "lms", "method": "GET", "path": r"^/enterprise/api/v1/enterprise-learner/",
                               "url_setting": "LMS_URL"},
    "oauth_token": {"service": "oauth", "method": "POST", "path": r".*", "url_setting": "OAUTH2_PROVIDER_URL"},
}

# The 4xx each upstream documents (upstream-contracts.md), with the code the client reads from its body.
FOUR_XX = {
    "subsidy_can_redeem": (403, {"error_code": "Forbidden", "developer_message": "MISSING: subsidy.can_read_subsidies",
                                 "user_message": "MISSING: subsidy.can_read_subsidies"}, "Forbidden"),
    "subsidy_create": (422, {"detail": "Enrollment failed.", "code": "enrollment_error"}, "enrollment_error"),
    "catalog_contains": (404, {"detail": "No EnterpriseCatalog matches the given query."}, "http_404"),
    "lms_enterprise_learner": (403, {"detail": "You do not have permission to perform this action."}, "http_403"),
    "oauth_token": (401, {"error": "invalid_client", "error_description": "Client authentication failed."},
                    "invalid_client"),
}

FAULTS = ["refused", "dropped", "timeout", "http_500", "http_503", "http_4xx", "malformed_json", "empty_body"]


def _cases():
    for upstream_name, spec in UPSTREAMS.items():
        for fault in FAULTS:
            if fault == "refused" and spec["url_setting"] is None:
                continue
            yield pytest.param(upstream_name, fault, id=f"{upstream_name}-{fault}")


def inject(upstream, settings, upstream_name, fault):
    """
    Make ``upstream_name`` fail with ``fault``; return what the attempt row must then say:
    ``(http_status, outcome, error_code, error_status)``.
    """
    spec = UPSTREAMS[upstream_name]
    matcher = {"service": spec["service"], "method": spec["method"], "path": spec["path"]}
    unavailable = (503, AttemptOutcome.UPSTREAM_UNAVAILABLE)
    if upstream_name == "subsidy_create":
        # Once the create was sent, a lost answer leaves the outcome unknown: never a failure, never a success.
        unavailable = (202, AttemptOutcome.UNCERTAIN)
    if fault == "refused":
        setting = spec["url_setting"]
        setattr(settings, setting, f"http://127.0.0.1:{free_port()}/{spec['service']}")
        return (*unavailable, "connection_error", None)
    if fault == "dropped":
        upstream.control.add_fault(**matcher, status=0)
        return (*unavailable, "connection_error", None)
    if fault == "timeout":
        # The emulator answers only after the client gave up; an error then, so nothing is written late
        # (the late-commit case of the transaction create has its own test below).
        settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
        upstream.control.add_fault(**matcher, status=503, delay_ms=FAULT_DELAY_MS)
        return (*unavailable, "timeout", None)
    if fault in ("http_500", "http_503"):
        status = int(fault[-3:])
        upstream.control.add_fault(**matcher, status=status)
        return (*unavailable, fault, status)
    if fault == "http_4xx":
        status, body, code = FOUR_XX[upstream_name]
        upstream.control.add_fault(**matcher, status=status, body=body)
        if upstream_name == "subsidy_create":
            # The subsidy service declined the transaction: the learner is told why (decision 0005).
            return 422, AttemptOutcome.SUBSIDY_REFUSED, code, status
        # Any other 4xx is an upstream answering in a way we cannot use: an outage, not a reason.
        return (*unavailable, code, status)
    if fault == "malformed_json":
        upstream.control.add_fault(**matcher, status=200, body=MALFORMED_BODY)
        return (*unavailable, "malformed_response", 200)
    if fault == "empty_body":
        upstream.control.add_fault(**matcher, status=200, body="")
        return (*unavailable, "malformed_response", 200)
    raise AssertionError(fault)


def await_delayed_answer(upstream, upstream_name, count=1):
    """
    Wait until the emulator has sent the ``count`` answers a timeout fault delayed, so that they happened inside
    this test (and cannot land in the next test's request log).
    """
    spec = UPSTREAMS[upstream_name]
    deadline = time.monotonic() + count * FAULT_DELAY_MS / 1000 + 3
    while time.monotonic() < deadline:
        answered = [r for r in upstream.control.requests(service=spec["service"])
                    if r["method"] == spec["method"] and re.search(spec["path"], r["path"]) and r["status"] == 503]
        if len(answered) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the delayed {upstream_name} calls never finished")


def redeemable_policy(kind):
    """A policy on the demo world learner 0 can redeem ``RUN`` on: for ``assigned``, with ``RUN`` allocated to them."""
    policy = build_world_policy(kind)
    if kind == "assigned":
        AssignmentFactory(assignment_configuration=policy.assignment_configuration,
                          lms_user_id=LEARNER["lms_user_id"], learner_email=LEARNER["email"], content_key=RUN,
                          content_quantity=-PRICE)
    return policy


def redeem(policy):
    return learner_client(LEARNER["lms_user_id"]).post(
        redeem_url(policy.uuid), {"lms_user_id": LEARNER["lms_user_id"], "content_key": RUN}, format="json")


def subsidy_creates(upstream):
    return [r for r in upstream.control.requests(service="subsidy")
            if r["method"] == "POST" and "transactions" in r["path"]]


def committed_transactions(upstream, policy):
    return [tx for tx in upstream.control.transactions(policy.subsidy_uuid)
            if str(tx.get("subsidy_access_policy_uuid")) == str(policy.uuid) and tx.get("state") == "committed"]


def assert_no_partial_state(upstream, policy):
    """Nothing was spent and nothing says it was: the state is as if the request never came."""
    assert committed_transactions(upstream, policy) == []
    if isinstance(policy, AssignedLearnerCreditAccessPolicy):
        assignment = policy.assignment_configuration.assignments.get()
        assert assignment.state == AssignmentState.ALLOCATED
        assert assignment.transaction_uuid is None


def the_attempt(policy) -> RedemptionAttempt:
    attempts = list(RedemptionAttempt.objects.filter(policy_uuid=policy.uuid))
    assert len(attempts) == 1, attempts
    return attempts[0]


@pytest.mark.parametrize("kind", ["assigned", "per_learner_enrollment"])
@pytest.mark.parametrize("upstream_name,fault", list(_cases()))
def test_upstream_fault_matrix(upstream, settings, kind, upstream_name, fault):
    policy = redeemable_policy(kind)
    http_status, outcome, error_code, error_status = inject(upstream, settings, upstream_name, fault)

    response = redeem(policy)

    assert response.status_code == http_status, response.content
    body = response.json()
    attempt = the_attempt(policy)
    assert body["attempt_uuid"] == str(attempt.uuid)
    service = UPSTREAMS[upstream_name]["service"]
    if http_status == 503:
        assert int(response["Retry-After"]) > 0
        assert body["code"] == "upstream_unavailable" and body["service"] == service
    elif http_status == 202:
        assert int(response["Retry-After"]) > 0
        assert body["code"] == "redemption_uncertain"
    else:
        _, error_body, _ = FOUR_XX[upstream_name]
        # The learner reads this service's message for the code; the subsidy's own text stays on the attempt.
        assert body["code"] == error_body["code"] and body["detail"] != error_body["detail"]
        assert body["detail"].startswith("We could not enroll you in this course.")
        assert error_body["detail"] in attempt.error_message

    assert attempt.outcome == outcome
    assert attempt.error_code == error_code
    assert attempt.error_status == error_status
    assert attempt.error_message.startswith(f"{service}: ")
    assert attempt.finished_at is not None
    assert attempt.transaction_uuid is None and attempt.transaction_state == ""
    assert not attempt.already_redeemed

    # The workflow stopped at the failing call: the create was never sent unless it was the one failing. Then a
    # refusal is sent once, and a lost answer is asked again with the same idempotency key, a bounded number of
    # times. The emulator logs a call when it answers, so a create still delayed by a timeout may not be logged yet.
    creates = len(subsidy_creates(upstream))
    tries = settings.SUBSIDY_CREATE_RETRIES + 1
    if upstream_name != "subsidy_create":
        assert creates == 0
    elif outcome == AttemptOutcome.UNCERTAIN:
        assert creates == tries or (fault == "timeout" and creates <= tries)
        reservation = SpendReservation.objects.get(policy=policy)
        assert reservation.state == ReservationState.UNCERTAIN  # counted until the ledger answers
        assert attempt.idempotency_key == reservation.idempotency_key
    else:
        assert creates == 1
    assert_no_partial_state(upstream, policy)
    if fault == "timeout":
        await_delayed_answer(upstream, upstream_name, count=tries if upstream_name == "subsidy_create" else 1)
        assert_no_partial_state(upstream, policy)


# ----- the one ambiguous fault: a transaction create that commits after we stopped waiting ---------------


def wait_for_late_commit(upstream, policy):
    deadline = time.monotonic() + FAULT_DELAY_MS / 1000 + 3
    while not committed_transactions(upstream, policy) and time.monotonic() < deadline:
        time.sleep(0.05)
    return committed_transactions(upstream, policy)


@pytest.mark.parametrize("kind", ["assigned", "per_learner_enrollment"])
def test_create_committed_after_our_timeout_is_asked_again_with_the_same_key(upstream, settings, kind):
    """
    The worst timeout: the subsidy service commits the transaction after the client gave up. The run asks again
    with the same idempotency key, and the answer names the one transaction that exists: never a second one.
    """
    policy = redeemable_policy(kind)
    settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
    upstream.control.add_fault("subsidy", method="POST", path=r"/admin/transactions/?$", status=None,
                               delay_ms=FAULT_DELAY_MS, times=1)

    response = redeem(policy)
    assert response.status_code == 200, response.content
    late = wait_for_late_commit(upstream, policy)
    assert len(late) == 1 and response.json()["uuid"] == late[0]["uuid"]
    assert len([tx for tx in upstream.control.transactions(policy.subsidy_uuid)
                if tx.get("lms_user_id") == LEARNER["lms_user_id"]]) == 1
    assert SpendReservation.objects.get(policy=policy).state == ReservationState.COMMITTED
    wait_for_creates(upstream, 2)  # the late first try lands in this test, not the next


def wait_for_creates(upstream, count):
    deadline = time.monotonic() + count * FAULT_DELAY_MS / 1000 + 3
    while len(subsidy_creates(upstream)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(subsidy_creates(upstream)) >= count


@pytest.mark.parametrize("kind", ["assigned", "per_learner_enrollment"])
def test_create_answers_lost_past_every_try_is_uncertain_then_the_learners_retry_settles_it(upstream, settings,
                                                                                           kind):
    """
    Every try timed out, and the first one still committed: the learner hears 202 (never a success nor a failure),
    the reservation stays counted and the assignment allocated; asking again answers with *that* transaction.
    """
    policy = redeemable_policy(kind)
    settings.UPSTREAM_READ_TIMEOUT = READ_TIMEOUT
    upstream.control.add_fault("subsidy", method="POST", path=r"/admin/transactions/?$", status=None,
                               delay_ms=FAULT_DELAY_MS)

    response = redeem(policy)
    assert response.status_code == 202, response.content
    assert response.json()["code"] == "redemption_uncertain"
    attempt = the_attempt(policy)
    assert (attempt.outcome, attempt.error_code, attempt.error_status) == (AttemptOutcome.UNCERTAIN, "timeout", None)
    reservation = SpendReservation.objects.get(policy=policy)
    assert reservation.state == ReservationState.UNCERTAIN
    if kind == "assigned":
        assert policy.assignment_configuration.assignments.get().state == AssignmentState.ALLOCATED

    late = wait_for_late_commit(upstream, policy)
    assert len(late) == 1
    upstream.control.clear_faults()
    retry = redeem(policy)
    assert retry.status_code == 200, retry.content
    assert retry.json()["uuid"] == late[0]["uuid"]
    assert len(committed_transactions(upstream, policy)) == 1
    reservation.refresh_from_db()
    assert (reservation.state, str(reservation.transaction_uuid)) == (ReservationState.COMMITTED, late[0]["uuid"])
    wait_for_creates(upstream, settings.SUBSIDY_CREATE_RETRIES + 1)  # every late try lands in this test, not the next
    if kind == "assigned":
        assignment = policy.assignment_configuration.assignments.get()
        assert assignment.state == AssignmentState.ACCEPTED and str(assignment.transaction_uuid) == late[0]["uuid"]


# ----- infrastructure: the cache and the database ---------------------------------------------------------


def redis_caches(port):
    # The production cache (settings/production.py), pointed at a Redis that is down.
    from enterprise_access.settings.base import redis_cache

    return {"default": redis_cache(f"redis://127.0.0.1:{port}/0")}


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_redis_down_still_redeems_quickly(upstream, settings, how):
    """
    Redis holds only caches now (the spend guard lives in the database, decision 0010): with Redis gone, reads
    fall through to the upstreams and the learner still redeems, quickly, without a second charge.
    """
    policy = redeemable_policy("assigned")
    with silent_listener() as silent_port:
        # Swapping CACHES fires setting_changed, which makes django.core.cache.caches rebuild its connections.
        settings.CACHES = redis_caches(silent_port if how == "silent" else free_port())
        response = redeem(policy)
        assert response.status_code == 200, response.content
    attempt = the_attempt(policy)
    assert attempt.outcome == AttemptOutcome.REDEEMED and attempt.finished_at is not None
    assert len(subsidy_creates(upstream)) == 1
    assert len(committed_transactions(upstream, policy)) == 1


@contextmanager
def database_unreachable(alias, monkeypatch):
    """
    Make ``alias`` unreachable for real: close its connection and point it at nowhere, so the next query's
    connect fails with the driver's own OperationalError (MySQL: a closed port; SQLite: a file that cannot be
    opened). Restored on exit; the connection reconnects on next use.
    """
    connection = connections[alias]
    connection.close()
    with monkeypatch.context() as patch:
        if connection.vendor == "sqlite":
            patch.setitem(connection.settings_dict, "NAME", "/nonexistent-dir/ea-db-down.sqlite3")
        else:
            patch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
            patch.setitem(connection.settings_dict, "PORT", str(free_port()))
        try:
            yield
        finally:
            connection.close()


def test_database_unreachable_at_the_start_of_a_request_is_a_quick_503(upstream, monkeypatch):
    """Before the workflow (authentication, the policy lookup): the API answers 503, not a 500."""
    policy = redeemable_policy("assigned")
    with database_unreachable("default", monkeypatch), database_unreachable("independent", monkeypatch):
        response = redeem(policy)
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "database_unavailable"
    assert not upstream.control.requests()
    assert_no_partial_state(upstream, policy)


def test_database_unreachable_inside_the_workflow_is_a_quick_503_with_its_attempt_row(upstream, monkeypatch):
    """The database goes away after the policy was read: the workflow answers 503 and records why."""
    policy = redeemable_policy("assigned")
    original = AssignedLearnerCreditAccessPolicy.assignment_check
    stack = []

    def failing_assignment_check(self, *args, **kwargs):
        context = database_unreachable("default", monkeypatch)
        context.__enter__()
        stack.append(context)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AssignedLearnerCreditAccessPolicy, "assignment_check", failing_assignment_check)
    try:
        response = redeem(policy)
    finally:
        while stack:
            stack.pop().__exit__(None, None, None)
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    attempt = the_attempt(policy)  # written through the independent connection, which stayed up
    assert attempt.outcome == AttemptOutcome.UPSTREAM_UNAVAILABLE and attempt.error_code == "database_unavailable"
    assert response.json()["attempt_uuid"] == str(attempt.uuid)
    assert not subsidy_creates(upstream)
    assert_no_partial_state(upstream, policy)


def test_independent_connection_unreachable_stops_the_redemption_before_any_spend(upstream, monkeypatch):
    """
    The independent connection carries the attempt rows and the spend reservations (decision 0010). Without it
    there is no spend guard, so nothing may be spent: a quick 503, no create sent. (A failure of the audit write
    alone never blocks a redemption: see test_a_failed_record_write_does_not_stop_the_redemption.)
    """
    from enterprise_access.apps.subsidy_access_policy.redemption import AttemptRecordStats

    policy = redeemable_policy("assigned")
    failures = AttemptRecordStats.failures
    with database_unreachable("independent", monkeypatch):
        response = redeem(policy)
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "upstream_unavailable"
    assert AttemptRecordStats.failures == failures + 1  # the attempt could not be opened either
    assert not subsidy_creates(upstream)
    assert_no_partial_state(upstream, policy)
