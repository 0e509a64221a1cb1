"""
What each caller reads of a redemption attempt is decided per row and is the same in the list and the detail
(issue 11): staff fields to operators and admins of *that row's* customer, learner fields to the learner it
concerns, whatever other roles they hold elsewhere. Two customers, every role combination.
"""
from datetime import datetime, timezone

import pytest

from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt

from .helpers import client_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

URL = "/api/v1/redemption-attempts/"
A = "0da00000-0000-4000-8000-00000000000a"
B = "0da00000-0000-4000-8000-00000000000b"
PAT, SAM = 101, 102
STAFF_ONLY = {"error_payload", "error_message", "request_metadata", "acting_user", "error_code"}

# name: (roles, lms_user_id, {row: "staff" | "learner"} for every row the caller sees)
CALLERS = {
    "learner of A": ([f"enterprise_learner:{A}"], PAT, {"pat_a": "learner"}),
    "learner of A, admin of B": ([f"enterprise_learner:{A}", f"enterprise_admin:{B}"], PAT,
                                 {"pat_a": "learner", "pat_b": "staff", "sam_b": "staff"}),
    "learner of A and B, admin of B": ([f"enterprise_learner:{A}", f"enterprise_learner:{B}",
                                        f"enterprise_admin:{B}"], PAT,
                                       {"pat_a": "learner", "pat_b": "staff", "sam_b": "staff"}),
    "learner of A, operator of B": ([f"enterprise_learner:{A}", f"enterprise_openedx_operator:{B}"], PAT,
                                    {"pat_a": "learner", "pat_b": "staff", "sam_b": "staff"}),
    "admin of A, learner of A": ([f"enterprise_admin:{A}", f"enterprise_learner:{A}"], PAT,
                                 {"pat_a": "staff", "sam_a": "staff"}),
    "admin of A": ([f"enterprise_admin:{A}"], 90, {"pat_a": "staff", "sam_a": "staff"}),
    "operator of every customer": (["enterprise_openedx_operator:*"], 900,
                                   {"pat_a": "staff", "sam_a": "staff", "pat_b": "staff", "sam_b": "staff"}),
    "learner of B only, pat": ([f"enterprise_learner:{B}"], PAT, {"pat_b": "learner"}),
    "no role": ([], PAT, {}),
}


def row(customer, lms_user_id):
    return RedemptionAttempt.objects.create(
        policy_uuid="a1b2c3d4-0000-4000-8000-00000000000a", enterprise_customer_uuid=customer,
        lms_user_id=lms_user_id, content_key="course-v1:X+Y+Z", source=AttemptSource.LEARNER_REDEEM_API,
        outcome=AttemptOutcome.SUBSIDY_REFUSED, started_at=datetime(2026, 11, 2, 10, tzinfo=timezone.utc),
        can_redeem=True, error_status=422, error_code="fulfillment_error",
        error_message="422 Client Error for url: http://subsidy.internal/api/v2/...",
        error_payload={"detail": "internal detail"}, request_metadata={"geag_email": "***"},
    )


@pytest.fixture
def rows():
    return {"pat_a": row(A, PAT), "sam_a": row(A, SAM), "pat_b": row(B, PAT), "sam_b": row(B, SAM)}


@pytest.mark.parametrize("caller", list(CALLERS))
def test_each_row_reads_the_same_in_list_and_detail_and_as_its_own_customer_decides(rows, caller):
    roles, lms_user_id, expected = CALLERS[caller]
    client = client_for(lms_user_id, roles)
    listed = client.get(URL)
    assert listed.status_code == 200, listed.content
    by_uuid = {r["uuid"]: r for r in listed.json()["results"]}
    names = {str(attempt.uuid): name for name, attempt in rows.items()}
    assert {names[u] for u in by_uuid} == set(expected)
    for name, attempt in rows.items():
        detail = client.get(f"{URL}{attempt.uuid}/")
        if name not in expected:
            assert detail.status_code == 404
            continue
        assert detail.status_code == 200
        assert detail.json() == by_uuid[str(attempt.uuid)], f"{caller}: {name} differs between list and detail"
        fields = set(detail.json())
        if expected[name] == "staff":
            assert STAFF_ONLY <= fields, (caller, name)
        else:
            assert not fields & STAFF_ONLY, (caller, name, fields & STAFF_ONLY)
            assert "internal" not in str(detail.json())


def test_a_learner_who_administers_another_customer_cannot_summarize_their_own_rows(rows):
    client = client_for(PAT, [f"enterprise_learner:{A}", f"enterprise_admin:{B}"])
    summary = client.get(f"{URL}summary/")
    assert summary.status_code == 200
    assert summary.json()["total"] == 2  # B's two rows; pat's row at A is not counted
    assert client.get(f"{URL}summary/", {"enterprise_customer_uuid": A}).json()["total"] == 0


def test_a_learner_alone_may_not_read_summaries(rows):
    assert client_for(PAT, [f"enterprise_learner:{A}"]).get(f"{URL}summary/").status_code == 403
