"""``selectors.attempt_summary``: the one aggregation of attempts, which the REST summary answers as is."""
from datetime import datetime, timezone
from uuid import uuid4

import pytest

from enterprise_access.apps.api.tests.helpers import operator_client
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.apps.subsidy_access_policy.selectors import attempt_summary

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

CUSTOMER = uuid4()
POLICY = uuid4()
DAY1 = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 4, 10, tzinfo=timezone.utc)


def attempt(**fields):
    defaults = dict(policy_uuid=POLICY, enterprise_customer_uuid=CUSTOMER, lms_user_id=101, content_key="k",
                    source=AttemptSource.LEARNER_REDEEM_API, outcome=AttemptOutcome.REDEEMED, started_at=DAY1)
    return RedemptionAttempt.objects.create(**{**defaults, **fields})


@pytest.fixture
def rows():
    attempt()
    attempt(outcome=AttemptOutcome.NOT_REDEEMABLE, reason=c.REASON_CONTENT_NOT_IN_CATALOG)
    attempt(outcome=AttemptOutcome.SUBSIDY_REFUSED, error_status=422, error_code="enrollment_error", started_at=DAY2)
    attempt(outcome=AttemptOutcome.UPSTREAM_UNAVAILABLE, error_code="timeout", started_at=DAY2)
    attempt(policy_uuid=uuid4(), enterprise_customer_uuid=uuid4(), started_at=DAY2)


def test_summary_by_day(rows):
    summary = attempt_summary(enterprise_customer_uuid=CUSTOMER, group_by="day", with_error_codes=True)
    assert summary["total"] == 4
    assert summary["by_outcome"] == {"redeemed": 1, "not_redeemable": 1, "subsidy_refused": 1,
                                     "upstream_unavailable": 1}
    assert summary["by_reason"] == {c.REASON_CONTENT_NOT_IN_CATALOG: 1}
    assert summary["by_error_code"] == {"enrollment_error": 1, "timeout": 1}
    assert [(g["group"], g["total"]) for g in summary["groups"]] == [("2026-11-02", 2), ("2026-11-04", 2)]


def test_summary_filters_and_groups(rows):
    assert attempt_summary(created_after=DAY2)["total"] == 3
    assert attempt_summary(created_before=DAY2)["total"] == 2
    assert attempt_summary(policy_uuid=POLICY, group_by="reason")["groups"][0]["group"] == ""
    scoped = RedemptionAttempt.objects.filter(outcome=AttemptOutcome.REDEEMED)
    assert attempt_summary(queryset=scoped)["total"] == 2
    assert "by_error_code" not in attempt_summary()
    with pytest.raises(ValueError, match="group_by must be one of day, policy, reason"):
        attempt_summary(group_by="week")


def test_rest_summary_answers_the_selectors_numbers(rows):
    params = {"enterprise_customer_uuid": str(CUSTOMER), "created_after": "2026-11-01T00:00:00Z",
              "created_before": "2026-11-05T00:00:00Z", "group_by": "day"}
    body = operator_client().get("/api/v1/redemption-attempts/summary/", params).json()
    expected = attempt_summary(enterprise_customer_uuid=CUSTOMER,
                               created_after=datetime(2026, 11, 1, tzinfo=timezone.utc),
                               created_before=datetime(2026, 11, 5, tzinfo=timezone.utc))
    assert body == expected
