"""
The policy API checks tenancy with the upstreams (issue 11, decision 0013): the finding was an operator scoped to one
customer creating a policy on another customer's subsidy. Two customers here: the demo customer and Other Co.
"""
from unittest import mock

import pytest

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.tests.factories import PerLearnerEnrollmentPolicyFactory
from enterprise_access.devtools import demo

from .helpers import admin_role, client_for, learner_role, operator_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/subsidy-access-policies/"
DEMO = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"],
        "catalog_uuid": demo.CATALOG_UUIDS["per_learner_enrollment"]}
OTHER = {"enterprise_customer_uuid": demo.OTHER_CUSTOMER_UUID, "subsidy_uuid": demo.OTHER_SUBSIDY_UUID,
         "catalog_uuid": demo.OTHER_CATALOG_UUID}


def other_operator():
    """An operator scoped to Other Co only, as in the finding."""
    return client_for(950, [f"enterprise_openedx_operator:{demo.OTHER_CUSTOMER_UUID}"])


def body(**fields):
    return {"policy_type": c.PER_LEARNER_ENROLLMENT_CREDIT, "display_name": "New", "active": True,
            "spend_limit": 100_000, "per_learner_enrollment_limit": 2, **fields}


def upstream_reads(upstream):
    return [r for r in upstream.control.requests() if r["service"] in ("subsidy", "catalog")]


def test_the_finding_a_scoped_operator_cannot_put_another_customers_subsidy_under_its_customer(upstream):
    response = other_operator().post(URL, body(**{**OTHER, "subsidy_uuid": DEMO["subsidy_uuid"]}), format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"subsidy_uuid"}
    assert "belongs to another enterprise customer" in response.json()["subsidy_uuid"][0]
    assert not SubsidyAccessPolicy.objects.exists()


def test_nor_another_customers_catalog(upstream):
    response = other_operator().post(URL, body(**{**OTHER, "catalog_uuid": DEMO["catalog_uuid"]}), format="json")
    assert response.status_code == 400 and set(response.json()) == {"catalog_uuid"}
    assert not SubsidyAccessPolicy.objects.exists()


def test_both_wrong_names_both_fields(upstream):
    response = operator_client().post(URL, body(**{**DEMO, "subsidy_uuid": demo.OTHER_SUBSIDY_UUID,
                                                   "catalog_uuid": demo.OTHER_CATALOG_UUID}), format="json")
    assert response.status_code == 400 and set(response.json()) == {"subsidy_uuid", "catalog_uuid"}


@pytest.mark.parametrize("customer", ["demo", "other"])
def test_each_customers_own_policy_is_created(upstream, customer):
    fields, client = (DEMO, operator_client()) if customer == "demo" else (OTHER, other_operator())
    response = client.post(URL, body(**fields), format="json")
    assert response.status_code == 201, response.content
    assert str(SubsidyAccessPolicy.objects.get().subsidy_uuid) == fields["subsidy_uuid"]


@pytest.mark.parametrize("service", ["subsidy", "catalog"])
def test_an_upstream_outage_answers_503_and_saves_nothing(upstream, service):
    upstream.control.add_fault(service, status=503)
    response = operator_client().post(URL, body(**DEMO), format="json")
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    answer = response.json()
    assert answer["code"] == "tenancy_check_unavailable" and answer["service"] == service
    assert "nothing was saved" in answer["detail"]
    assert not SubsidyAccessPolicy.objects.exists()


def test_callers_who_may_not_write_learn_nothing_and_cause_no_upstream_call(upstream):
    upstream.control.clear_requests()
    foreign = body(**{**OTHER, "subsidy_uuid": DEMO["subsidy_uuid"]})
    for client in (client_for(600, [admin_role(demo.OTHER_CUSTOMER_UUID)]),
                   client_for(4242, [learner_role(demo.OTHER_CUSTOMER_UUID)]),
                   operator_client_scoped_to_demo()):
        assert client.post(URL, foreign, format="json").status_code == 403
    assert upstream_reads(upstream) == []


def operator_client_scoped_to_demo():
    return client_for(951, [f"enterprise_openedx_operator:{demo.CUSTOMER_UUID}"])


def test_patching_in_another_customers_subsidy_is_refused(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**OTHER)
    response = other_operator().patch(f"{URL}{policy.uuid}/", {"subsidy_uuid": DEMO["subsidy_uuid"]}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"subsidy_uuid"}
    policy.refresh_from_db()
    assert str(policy.subsidy_uuid) == OTHER["subsidy_uuid"]


def test_moving_a_policy_to_another_customer_keeps_its_subsidy_honest(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    response = operator_client().patch(f"{URL}{policy.uuid}/",
                                       {"enterprise_customer_uuid": demo.OTHER_CUSTOMER_UUID}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"subsidy_uuid", "catalog_uuid"}
    moved = operator_client().patch(f"{URL}{policy.uuid}/", OTHER, format="json")
    assert moved.status_code == 200, moved.content


def test_switching_on_a_policy_checks_it(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**{**OTHER, "subsidy_uuid": DEMO["subsidy_uuid"]}, active=False)
    response = operator_client().patch(f"{URL}{policy.uuid}/", {"active": True}, format="json")
    assert response.status_code == 400 and "subsidy_uuid" in response.json()
    policy.refresh_from_db()
    assert not policy.active


def test_edits_that_leave_the_tenancy_alone_work_while_upstreams_are_down(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    upstream.control.add_fault("subsidy", status=503)
    upstream.control.add_fault("catalog", status=503)
    for change in ({"display_name": "Renamed"}, {"active": False}, {"spend_limit": 5}, dict(DEMO)):
        response = operator_client().patch(f"{URL}{policy.uuid}/", change, format="json")
        assert response.status_code == 200, (change, response.content)


def test_two_operators_two_tabs_the_later_save_sees_the_change(upstream):
    """Tab 2's subsidy change was checked against the row as read; tab 1 changed the customer meanwhile: 409."""
    from enterprise_access.apps.subsidy_access_policy import tenancy

    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    real_check = tenancy.policy_tenancy_errors

    def check_while_tab_one_saves(**fields):
        errors = real_check(**fields)
        SubsidyAccessPolicy.objects.filter(pk=policy.pk).update(**OTHER)  # tab 1's save lands now
        return errors

    with mock.patch("enterprise_access.apps.api.v1.views.policies.policy_tenancy_errors", check_while_tab_one_saves):
        response = operator_client().patch(f"{URL}{policy.uuid}/",
                                           {"subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_spend"]}, format="json")
    assert response.status_code == 409, response.content
    assert "nothing was saved" in response.json()["detail"]
    policy.refresh_from_db()
    assert {name: str(getattr(policy, name)) for name in OTHER} == OTHER  # tab 1's change stands, whole
