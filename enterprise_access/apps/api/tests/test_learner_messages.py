"""
Learners read messages this service wrote, never upstream text (issue 11): the subsidy's 422 ``detail`` (here with
an internal URL in it, as an LMS error relayed by the real subsidy service reads) stays on the attempt row, where
staff read it in admin and in the staff view of the attempt API.
"""
import pytest
from django.urls import reverse

from enterprise_access.apps.api.reasons import SUBSIDY_REFUSAL_MESSAGES
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, RedemptionAttempt
from enterprise_access.apps.subsidy_access_policy.tests.admin_world import person

from .helpers import admin_role, client_for, learner_client, operator_client, redeem_url

pytestmark = [pytest.mark.emulator, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

INTERNAL = "http://lms.internal:18000/enterprise/api/v1/enterprise-subsidy-fulfillment/42/"
UPSTREAM_DETAIL = f"500 Server Error: Internal Server Error for url: {INTERNAL}"


def refuse_with(upstream, code):
    upstream.control.add_fault("subsidy", path=".*/admin/transactions/?$", method="POST", status=422,
                               body={"detail": UPSTREAM_DETAIL, "code": code})


def redeem(policy, upstream, client=None):
    return (client or learner_client()).post(redeem_url(policy.uuid),
                                             {"lms_user_id": 101, "content_key": upstream.run}, format="json")


@pytest.mark.parametrize("code", ["enrollment_error", "fulfillment_error", "transaction_creation_error",
                                  "content_not_found", "invalid_requested_price", "inactive_subsidy_creation_error",
                                  "some_new_code", "<script>"])
def test_the_learner_reads_the_services_message_and_the_attempt_keeps_the_subsidys(policy, upstream, code):
    refuse_with(upstream, code)
    response = redeem(policy, upstream)
    assert response.status_code == 422, response.content
    body = response.json()
    assert INTERNAL not in response.content.decode() and "Server Error" not in response.content.decode()
    expected_code = code if code in SUBSIDY_REFUSAL_MESSAGES else "subsidy_refused"
    assert body["code"] == expected_code
    assert body["detail"].startswith(SUBSIDY_REFUSAL_MESSAGES[expected_code].split(".")[0])
    assert "Nothing was charged." in body["detail"]

    attempt = RedemptionAttempt.objects.get(uuid=body["attempt_uuid"])
    assert attempt.outcome == AttemptOutcome.SUBSIDY_REFUSED
    assert INTERNAL in attempt.error_message and attempt.error_payload["detail"] == UPSTREAM_DETAIL


def test_an_operator_redeeming_for_a_learner_also_reads_the_services_message(policy, upstream):
    refuse_with(upstream, "enrollment_error")
    response = redeem(policy, upstream, operator_client())
    assert response.status_code == 422 and INTERNAL not in response.content.decode()


def test_staff_read_the_raw_detail_on_the_attempt_and_the_learner_does_not(policy, upstream, client):
    refuse_with(upstream, "enrollment_error")
    attempt_uuid = redeem(policy, upstream).json()["attempt_uuid"]
    url = f"/api/v1/redemption-attempts/{attempt_uuid}/"

    assert INTERNAL not in learner_client().get(url).content.decode()
    staff_view = operator_client().get(url).json()
    assert staff_view["error_payload"]["detail"] == UPSTREAM_DETAIL
    admin_view = client_for(90, [admin_role()]).get(url).json()
    assert INTERNAL in admin_view["error_message"]

    client.force_login(person(superuser=True))
    attempt = RedemptionAttempt.objects.get(uuid=attempt_uuid)
    page = client.get(reverse("admin:subsidy_access_policy_redemptionattempt_change", args=[attempt.pk]))
    assert page.status_code == 200 and INTERNAL in page.content.decode()

