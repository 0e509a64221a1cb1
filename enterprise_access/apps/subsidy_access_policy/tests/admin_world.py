"""
Rows of every kind the Django admin shows, for the admin crawl and the admin browser tests.

``build_admin_world()`` needs the ``policy_world`` fixture (the service pointed at the live emulator): it makes
one policy of each type on the demo world, assignments in every state, forced redemptions waiting, running,
redeemed and errored (and exec-ed content waiting), and attempt rows of every outcome in ``AttemptOutcome`` (an outcome added later gets a plain row too),
spread over a few days, plus the people: a superuser, a view-only staff member, a staff member who may force,
and a learner.
"""
from datetime import timedelta
from types import SimpleNamespace
from uuid import uuid4

from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptOutcome,
    AttemptSource,
    BulkForcingJob,
    BulkForcingRow,
    ForcedPolicyRedemption,
    RedemptionAttempt,
)
from enterprise_access.devtools import demo
from enterprise_access.devtools.testing import POLICY_KINDS, build_world_policy

from .factories import AssignmentFactory, UserFactory

PASSWORD = "admin-world-password"

# What the workflow writes for each outcome (see redemption.py), one or more rows each.
ATTEMPT_EXAMPLES = {
    AttemptOutcome.IN_PROGRESS: [{}],
    AttemptOutcome.REDEEMED: [
        {"can_redeem": True, "transaction_state": c.TRANSACTION_STATE_COMMITTED, "content_price": 19900},
        {"can_redeem": False, "reason": c.REASON_LEARNER_ALREADY_REDEEMED, "already_redeemed": True,
         "transaction_state": c.TRANSACTION_STATE_COMMITTED, "content_price": 19900},
    ],
    AttemptOutcome.NOT_REDEEMABLE: [
        {"can_redeem": False, "reason": c.REASON_CONTENT_NOT_IN_CATALOG},
        {"can_redeem": False, "reason": c.REASON_POLICY_SPEND_LIMIT_REACHED, "content_price": 19900},
        {"can_redeem": False, "reason": c.REASON_LEARNER_NOT_IN_ENTERPRISE},
    ],
    AttemptOutcome.SUBSIDY_REFUSED: [
        {"can_redeem": True, "error_status": 422, "error_code": "enrollment_error",
         "error_message": "subsidy: Enrollment failed upstream.",
         "error_payload": {"detail": "Enrollment failed upstream.", "code": "enrollment_error"}},
    ],
    AttemptOutcome.POLICY_BUSY: [
        {"can_redeem": True, "error_code": "policy_lock_busy", "error_message": "The policy is busy; try again."},
    ],
    AttemptOutcome.UPSTREAM_UNAVAILABLE: [
        {"error_code": "timeout", "error_message": "lms: Read timed out after 2.0 s."},
        {"error_status": 503, "error_code": "http_503", "error_message": "subsidy: Service Unavailable",
         "error_payload": {"raw": "<html>503</html>"}},
        {"error_code": "cache_unavailable", "error_message": "Error 111 connecting to redis."},
    ],
    AttemptOutcome.UNEXPECTED_ERROR: [
        {"error_code": "unexpected_error", "error_message": "KeyError: 'uuid'"},
    ],
}

FORCED_STATES = ("waiting", "running", "redeemed", "errored")
JOB_STATES = ("queued", "running", "stalled", "finished")


def person(*, superuser=False, view_only=False, may_force=False, **fields):
    """A user who can log in with ``PASSWORD``: superuser, staff with only view permissions, or a forcer."""
    user = UserFactory(is_staff=superuser or view_only or may_force, is_superuser=superuser, **fields)
    user.set_password(PASSWORD)
    user.save()
    if view_only:
        group, _ = Group.objects.get_or_create(name="Support (view only)")
        group.permissions.set(Permission.objects.filter(codename__startswith="view_"))
        user.groups.add(group)
    if may_force:
        user.user_permissions.add(Permission.objects.get(codename="force_redemption"))
    return user


def make_attempt(policy, *, outcome, started_at, acting_user=None, **fields):
    """One attempt row as the workflow leaves it (finished unless in progress)."""
    finished = outcome != AttemptOutcome.IN_PROGRESS
    row = {
        "policy": policy, "policy_uuid": policy.uuid, "enterprise_customer_uuid": policy.enterprise_customer_uuid,
        "lms_user_id": demo.LEARNERS[0]["lms_user_id"], "content_key": demo.ORDINARY_RUNS[0],
        "source": AttemptSource.LEARNER_REDEEM_API, "acting_user": acting_user,
        "policy_history": policy.current_history_row(), "outcome": outcome, "started_at": started_at,
        "finished_at": started_at + timedelta(milliseconds=420) if finished else None,
        "can_redeem_ms": 180 if finished else None, "request_id": uuid4().hex,
        **fields,
    }
    if outcome == AttemptOutcome.REDEEMED and "transaction_uuid" not in fields:
        row["transaction_uuid"] = uuid4()
    return RedemptionAttempt.objects.create(**row)


def build_admin_world(*, days: int = 3):
    """Every kind of admin row; ``days`` spreads the attempts over that many days ending today."""
    now = timezone.now()
    people = SimpleNamespace(
        superuser=person(superuser=True, username="root-admin", email="root-admin@example.org", lms_user_id=None),
        viewer=person(view_only=True, username="support-viewer", email="support@example.org", lms_user_id=None),
        forcer=person(may_force=True, username="staff-forcer", email="forcer@example.org", lms_user_id=None),
        learner=UserFactory(username="pat", email=demo.LEARNERS[0]["email"],
                            lms_user_id=demo.LEARNERS[0]["lms_user_id"]),
    )
    policies = {kind: build_world_policy(kind, display_name=f"Demo {kind.replace('_', ' ')} credit")
                for kind in POLICY_KINDS}
    assigned = policies["assigned"]

    assignments = {}
    for index, state in enumerate(AssignmentState.values):
        stamp = {AssignmentState.ACCEPTED: "accepted_at", AssignmentState.CANCELLED: "cancelled_at",
                 AssignmentState.ERRORED: "errored_at", AssignmentState.EXPIRED: "expired_at",
                 AssignmentState.REVERSED: "reversed_at"}.get(state)
        assignments[state] = AssignmentFactory(
            assignment_configuration=assigned.assignment_configuration, state=state,
            lms_user_id=300 + index, learner_email=f"learner{300 + index}@demo-co.example",
            content_key=demo.ORDINARY_RUNS[index % len(demo.ORDINARY_RUNS)],
            transaction_uuid=uuid4() if state in (AssignmentState.ACCEPTED, AssignmentState.REVERSED) else None,
            **({stamp: now} if stamp else {}),
        )

    forced = {}
    for state in FORCED_STATES:
        record = ForcedPolicyRedemption(
            subsidy_access_policy=policies["per_learner_enrollment"], lms_user_id=demo.LEARNERS[1]["lms_user_id"],
            course_run_key=demo.ORDINARY_RUNS[1], content_price_cents=None,  # a per-learner policy: catalog price
            wait_to_redeem=state == "waiting", created_by=people.forcer, modified_by=people.forcer,
        )
        if state == "running":
            record.run_started_at = now  # a forcing holds it
        if state == "redeemed":
            record.redeemed_at, record.transaction_uuid = now, uuid4()
        if state == "errored":
            record.errored_at, record.error_status, record.error_code = now, 422, "enrollment_error"
            record.error_message = "subsidy_refused (subsidy 422 enrollment_error): Enrollment failed upstream."
            record.error_payload = {"detail": "Enrollment failed upstream.", "code": "enrollment_error"}
        record._history_user = people.forcer
        record.save()
        forced[state] = record
    # Exec-ed content waiting: its confirmation page asks for the learner's details.
    forced["exec_ed_waiting"] = ForcedPolicyRedemption.objects.create(
        subsidy_access_policy=policies["per_learner_enrollment"], lms_user_id=demo.LEARNERS[0]["lms_user_id"],
        course_run_key=demo.EXEC_ED_RUN, wait_to_redeem=True, created_by=people.forcer, modified_by=people.forcer)

    jobs = build_jobs(forced, people.forcer, now)

    attempts = []
    kinds = list(POLICY_KINDS)
    for index, outcome in enumerate(AttemptOutcome.values):
        for example_index, fields in enumerate(ATTEMPT_EXAMPLES.get(outcome, [{}])):
            position = index + example_index
            policy = policies[kinds[position % len(kinds)]]
            started_at = now - timedelta(days=position % max(days, 1), minutes=position)
            attempts.append(make_attempt(policy, outcome=outcome, started_at=started_at,
                                         acting_user=people.learner, **fields))
    # Each entry point, and rows that point at what the admin links to.
    redeemed = forced["redeemed"]
    attempts.append(make_attempt(policies["per_learner_enrollment"], outcome=AttemptOutcome.REDEEMED,
                                 started_at=now, source=AttemptSource.FORCED_REDEMPTION, acting_user=people.forcer,
                                 forced_redemption=redeemed, transaction_uuid=redeemed.transaction_uuid,
                                 lms_user_id=redeemed.lms_user_id, content_key=redeemed.course_run_key))
    attempts.append(make_attempt(assigned, outcome=AttemptOutcome.REDEEMED, started_at=now,
                                 source=AttemptSource.OPERATOR_API, acting_user=people.superuser,
                                 assignment=assignments[AssignmentState.ACCEPTED],
                                 transaction_uuid=assignments[AssignmentState.ACCEPTED].transaction_uuid))
    # A row whose policy and history row were deleted since: the audit row outlives them.
    gone = make_attempt(policies["per_learner_spend"], outcome=AttemptOutcome.NOT_REDEEMABLE, started_at=now,
                        reason=c.REASON_POLICY_EXPIRED)
    RedemptionAttempt.objects.filter(uuid=gone.uuid).update(
        policy_id=None, policy_uuid=uuid4(), acting_user_id=987_654, policy_history_id=987_654,
        forced_redemption_id=uuid4())
    attempts.append(gone)
    return SimpleNamespace(people=people, policies=policies, assignments=assignments, forced=forced,
                           attempts=attempts, jobs=jobs)


def build_jobs(forced, forcer, now):
    """A bulk forcing job in every state; the finished one has a row of every result."""
    results = [value for value, _ in BulkForcingRow.RESULTS if value]
    records = list(forced.values())
    jobs = {}
    for state in JOB_STATES:
        job = BulkForcingJob.objects.create(created_by=forcer, total=len(results) if state == "finished" else 2)
        if state != "queued":
            heartbeat = now - timedelta(hours=1) if state == "stalled" else now
            job.started_at, job.heartbeat_at, job.runs = heartbeat - timedelta(minutes=1), heartbeat, 1
        if state == "finished":
            job.finished_at = now
        job.save()
        for position in range(1, job.total + 1):
            record = records[(position - 1) % len(records)]
            result = results[position - 1] if state == "finished" else (
                BulkForcingRow.REDEEMED if position == 1 and state != "queued" else BulkForcingRow.PENDING)
            BulkForcingRow.objects.create(
                job=job, position=position, forced_redemption=record, result=result,
                transaction_uuid=uuid4() if result in (BulkForcingRow.REDEEMED, BulkForcingRow.ALREADY_REDEEMED)
                else None,
                error_message="not_enough_value_in_subsidy: The subsidy has too little left." if result in (
                    BulkForcingRow.ERRORED, BulkForcingRow.BUSY) else "",
                finished_at=now if result else None)
        jobs[state] = job
    return jobs
