"""
Fault suite for forced redemption (issue 7, item 3): each upstream of the forced path (the same five as the redeem
API, see ``enterprise_access.apps.api.tests.test_faults``) fails with a timeout, a 503, a malformed 200 or its
documented 4xx. The record must never be marked redeemed, must carry ``errored_at`` and the error, the run must
leave exactly one attempt row saying the same, and nothing may be half-done: no committed transaction, no
assignment accepted.
"""

import pytest

from enterprise_access.apps.api.tests.test_faults import (
    FOUR_XX,
    LEARNER,
    PRICE,
    RUN,
    UPSTREAMS,
    await_delayed_answer,
    committed_transactions,
    inject,
    subsidy_creates,
)
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy.forcing import force_redemption
from enterprise_access.apps.subsidy_access_policy.models import (
    AssignedLearnerCreditAccessPolicy,
    AttemptOutcome,
    AttemptSource,
    RedemptionAttempt,
)
from enterprise_access.devtools import demo

from .factories import AssignedPolicyFactory, ForcedRedemptionFactory, PerLearnerEnrollmentPolicyFactory, UserFactory

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

FORCED_FAULTS = ["timeout", "http_503", "malformed_json", "http_4xx"]


def forced_record(kind):
    factory = AssignedPolicyFactory if kind == "assigned" else PerLearnerEnrollmentPolicyFactory
    policy = factory(enterprise_customer_uuid=demo.CUSTOMER_UUID, subsidy_uuid=demo.SUBSIDY_UUIDS[kind],
                     catalog_uuid=demo.CATALOG_UUIDS[kind])
    return ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=LEARNER["lms_user_id"],
                                   course_run_key=RUN, content_price_cents=PRICE if kind == "assigned" else None)


@pytest.mark.parametrize("kind", ["assigned", "per_learner_enrollment"])
@pytest.mark.parametrize("fault", FORCED_FAULTS)
@pytest.mark.parametrize("upstream_name", list(UPSTREAMS))
def test_forced_redemption_fault_matrix(upstream, settings, kind, upstream_name, fault):
    record = forced_record(kind)
    policy = record.subsidy_access_policy
    staff = UserFactory(is_staff=True)
    _, outcome, error_code, error_status = inject(upstream, settings, upstream_name, fault)

    result = force_redemption(forced_redemption=record, acting_user=staff)

    # The result and the record: failed, with the error, never redeemed.
    assert result.outcome == outcome and not result.succeeded
    record.refresh_from_db()
    assert record.redeemed_at is None and record.transaction_uuid is None
    assert record.errored_at is not None
    assert record.error_code == error_code
    assert record.error_status == error_status
    assert record.error_message
    if fault == "http_4xx":
        _, body, _ = FOUR_XX[upstream_name]
        assert record.error_payload == body

    # The audit row: one, finished, saying the same.
    attempts = list(RedemptionAttempt.objects.filter(forced_redemption=record))
    assert len(attempts) == 1, attempts
    attempt = attempts[0]
    assert attempt.source == AttemptSource.FORCED_REDEMPTION and attempt.acting_user_id == staff.pk
    assert (attempt.outcome, attempt.error_code, attempt.error_status) == (outcome, error_code, error_status)
    assert attempt.error_message.startswith(f"{UPSTREAMS[upstream_name]['service']}: ")
    assert attempt.finished_at is not None and attempt.transaction_uuid is None

    # Nothing half-done. A create whose answer was lost is asked again, with the same key, a bounded number of times.
    tries = settings.SUBSIDY_CREATE_RETRIES + 1 if outcome == AttemptOutcome.UNCERTAIN else 1
    if fault == "timeout":
        await_delayed_answer(upstream, upstream_name, count=tries if upstream_name == "subsidy_create" else 1)
    creates = len(subsidy_creates(upstream))
    assert creates == (tries if upstream_name == "subsidy_create" else 0)
    assert committed_transactions(upstream, policy) == []
    if isinstance(policy, AssignedLearnerCreditAccessPolicy):
        for assignment in policy.assignment_configuration.assignments.all():
            assert assignment.state != AssignmentState.ACCEPTED and assignment.transaction_uuid is None
