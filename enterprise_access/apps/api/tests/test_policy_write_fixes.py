"""
Hostile findings on the policy write path: F2 (a switch-off undone by a concurrent PATCH), F3 (malformed
enterprise_group_uuids stored, then learners' answers 500), F7 (another customer's assignment configuration).
"""
from unittest import mock
from uuid import uuid4

import pytest
from django.core.exceptions import ValidationError

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy import tenancy
from enterprise_access.apps.subsidy_access_policy.models import SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.tests.factories import (
    AssignedPolicyFactory,
    AssignmentConfigurationFactory,
    PerLearnerEnrollmentPolicyFactory,
)
from enterprise_access.devtools import demo

from .helpers import client_for, operator_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/subsidy-access-policies/"
DEMO = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"],
        "catalog_uuid": demo.CATALOG_UUIDS["per_learner_enrollment"]}
ASSIGNED = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "subsidy_uuid": demo.SUBSIDY_UUIDS["assigned"],
            "catalog_uuid": demo.CATALOG_UUIDS["assigned"]}


def other_operator():
    return client_for(950, [f"enterprise_openedx_operator:{demo.OTHER_CUSTOMER_UUID}"])


# ----- F2: a concurrent PATCH of another field stands ------------------------------------------------------------

def test_a_switch_off_made_while_a_subsidy_change_is_checked_survives(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    new_subsidy = demo.SUBSIDY_UUIDS["per_learner_spend"]
    real_check = tenancy.policy_tenancy_errors
    answers = []

    def check_while_b_switches_off(**fields):
        errors = real_check(**fields)
        # Operator B's PATCH lands while A's tenancy check waits on upstream.
        answers.append(operator_client().patch(f"{URL}{policy.uuid}/", {"active": False}, format="json"))
        return errors

    with mock.patch("enterprise_access.apps.api.v1.views.policies.policy_tenancy_errors", check_while_b_switches_off):
        response_a = operator_client().patch(f"{URL}{policy.uuid}/", {"subsidy_uuid": new_subsidy}, format="json")
    assert answers[0].status_code == 200, answers[0].content
    assert response_a.status_code == 200, response_a.content
    assert response_a.json()["active"] is False  # A answers with the row as saved, B's switch-off included
    policy = SubsidyAccessPolicy.objects.get(pk=policy.pk)
    assert policy.active is False
    assert str(policy.subsidy_uuid) == new_subsidy
    history = list(policy.history.order_by("history_date", "history_id").values_list("active", "subsidy_uuid"))
    old_subsidy = DEMO["subsidy_uuid"]
    assert [(active, str(subsidy)) for active, subsidy in history] == [
        (True, old_subsidy), (False, old_subsidy), (False, new_subsidy)]


def test_a_rename_made_meanwhile_stands_too(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True, display_name="Old")
    real_check = tenancy.policy_tenancy_errors

    def check_while_b_renames(**fields):
        errors = real_check(**fields)
        assert operator_client().patch(f"{URL}{policy.uuid}/", {"display_name": "B's name"},
                                       format="json").status_code == 200
        return errors

    with mock.patch("enterprise_access.apps.api.v1.views.policies.policy_tenancy_errors", check_while_b_renames):
        response = operator_client().patch(f"{URL}{policy.uuid}/", {"spend_limit": 7, "catalog_uuid":
                                           demo.CATALOG_UUIDS["per_learner_spend"]}, format="json")
    assert response.status_code == 200, response.content
    policy.refresh_from_db()
    assert (policy.display_name, policy.spend_limit) == ("B's name", 7)


def test_switching_on_a_policy_someone_switched_off_meanwhile_is_not_saved_unchecked(upstream):
    """A read the policy active, so its {"active": true} needed no check; B switched it off meanwhile: 409."""
    from enterprise_access.apps.api.v1.views import policies

    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    real_check = policies.SubsidyAccessPolicyViewSet._check_tenancy

    def check_while_b_switches_off(self, serializer):
        result = real_check(self, serializer)
        SubsidyAccessPolicy.objects.filter(pk=policy.pk).update(active=False)
        return result

    with mock.patch.object(policies.SubsidyAccessPolicyViewSet, "_check_tenancy", check_while_b_switches_off):
        response = operator_client().patch(f"{URL}{policy.uuid}/", {"active": True, "display_name": "x"},
                                           format="json")
    assert response.status_code == 409, response.content
    policy.refresh_from_db()
    assert policy.active is False and policy.display_name != "x"


# ----- F3: enterprise_group_uuids is a list of uuids ------------------------------------------------------------

BAD_GROUPS = [5, "abc", {"a": 1}, ["not-a-uuid"], [5], [None], None, True, [["nested"]]]


@pytest.mark.parametrize("bad", BAD_GROUPS, ids=repr)
def test_a_malformed_group_list_is_a_400_naming_the_field_on_patch(upstream, bad):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    response = operator_client().patch(f"{URL}{policy.uuid}/", {"enterprise_group_uuids": bad}, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"enterprise_group_uuids"}
    policy.refresh_from_db()
    assert policy.enterprise_group_uuids == []


@pytest.mark.parametrize("bad", [5, "abc", {"a": 1}, ["not-a-uuid"]], ids=repr)
def test_a_malformed_group_list_is_refused_on_create(upstream, bad):
    body = {"policy_type": c.PER_LEARNER_ENROLLMENT_CREDIT, "per_learner_enrollment_limit": 2, **DEMO,
            "enterprise_group_uuids": bad}
    response = operator_client().post(URL, body, format="json")
    assert response.status_code == 400 and set(response.json()) == {"enterprise_group_uuids"}, response.content
    assert not SubsidyAccessPolicy.objects.exists()


@pytest.mark.parametrize("bad", ["5", "abc", '{"a": 1}', "not-a-uuid"])
def test_a_malformed_group_in_multipart_is_a_400(upstream, bad):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    response = operator_client().patch(f"{URL}{policy.uuid}/", {"enterprise_group_uuids": bad}, format="multipart")
    assert response.status_code == 400 and set(response.json()) == {"enterprise_group_uuids"}, response.content
    policy.refresh_from_db()
    assert policy.enterprise_group_uuids == []


def test_groups_are_stored_canonical_and_learners_get_an_answer(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    group = uuid4()
    sent = [str(group).upper(), group.hex, str(group)]
    response = operator_client().patch(f"{URL}{policy.uuid}/", {"enterprise_group_uuids": sent}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["enterprise_group_uuids"] == [str(group)]
    policy.refresh_from_db()
    assert policy.enterprise_group_uuids == [str(group)]
    answer = policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)
    assert answer.reason == c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP


@pytest.mark.parametrize("stored", [5, "abc", {"a": 1}, ["not-a-uuid"]], ids=repr)
def test_a_row_stored_before_the_validation_refuses_as_misconfigured_not_500(upstream, stored):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    SubsidyAccessPolicy.objects.filter(uuid=policy.uuid).update(enterprise_group_uuids=stored)  # as an old row holds
    policy.refresh_from_db()
    answer = policy.can_redeem(upstream.learner["lms_user_id"], upstream.run)
    assert (answer.redeemable, answer.reason) == (False, c.REASON_POLICY_MISCONFIGURED)


@pytest.mark.parametrize("bad", BAD_GROUPS, ids=repr)
def test_the_models_clean_refuses_what_the_admin_form_could_send(bad):
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    policy.enterprise_group_uuids = bad
    if bad is None:
        policy.clean()  # an empty form value: no restriction
        assert policy.enterprise_group_uuids == []
        return
    with pytest.raises(ValidationError) as caught:
        policy.clean()
    assert set(caught.value.message_dict) == {"enterprise_group_uuids"}


def test_the_models_clean_stores_canonical():
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    group = uuid4()
    policy.enterprise_group_uuids = [group.hex.upper()]
    policy.clean()
    assert policy.enterprise_group_uuids == [str(group)]


# ----- F7: the assignment configuration is the policy's customer's -----------------------------------------------

def assigned_body(configuration):
    return {"policy_type": c.ASSIGNED_LEARNER_CREDIT, "access_method": c.AccessMethods.ASSIGNED, "spend_limit": 1000,
            **ASSIGNED, "assignment_configuration": str(configuration)}


def test_an_operator_cannot_create_a_policy_on_another_customers_configuration(upstream):
    theirs = AssignmentConfigurationFactory(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID)
    unknown_uuid = uuid4()
    foreign = operator_client().post(URL, assigned_body(theirs.uuid), format="json")
    unknown = operator_client().post(URL, assigned_body(unknown_uuid), format="json")
    assert foreign.status_code == unknown.status_code == 400, (foreign.content, unknown.content)
    assert set(foreign.json()) == set(unknown.json()) == {"assignment_configuration"}
    # The same words either way: nothing tells the caller the other customer's configuration exists.
    assert foreign.json()["assignment_configuration"][0].replace(str(theirs.uuid), "X") == \
        unknown.json()["assignment_configuration"][0].replace(str(unknown_uuid), "X")
    assert not SubsidyAccessPolicy.objects.exists()


def test_another_customers_used_configuration_gives_the_same_answer_not_already_exists(upstream):
    """The finding's leak: 'already exists' confirmed another customer's configuration uuid."""
    theirs = AssignedPolicyFactory(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID,
                                   subsidy_uuid=demo.OTHER_SUBSIDY_UUID, catalog_uuid=demo.OTHER_CATALOG_UUID)
    configuration = theirs.assignment_configuration_id
    response = operator_client().post(URL, assigned_body(configuration), format="json")
    assert response.status_code == 400
    message = response.json()["assignment_configuration"][0]
    assert "already" not in message and "No assignment configuration" in message


def test_an_operator_cannot_patch_in_another_customers_configuration(upstream):
    policy = AssignedPolicyFactory(**ASSIGNED)
    mine = policy.assignment_configuration_id
    theirs = AssignmentConfigurationFactory(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID)
    response = operator_client().patch(f"{URL}{policy.uuid}/", {"assignment_configuration": str(theirs.uuid)},
                                       format="json")
    assert response.status_code == 400 and set(response.json()) == {"assignment_configuration"}
    policy.refresh_from_db()
    assert policy.assignment_configuration_id == mine


def test_the_scoped_operator_of_the_finding_is_refused_too(upstream):
    mine = AssignmentConfigurationFactory(enterprise_customer_uuid=demo.CUSTOMER_UUID)
    body = {**assigned_body(mine.uuid), "enterprise_customer_uuid": demo.OTHER_CUSTOMER_UUID,
            "subsidy_uuid": demo.OTHER_SUBSIDY_UUID, "catalog_uuid": demo.OTHER_CATALOG_UUID}
    response = other_operator().post(URL, body, format="json")
    assert response.status_code == 400 and set(response.json()) == {"assignment_configuration"}, response.content
    assert not SubsidyAccessPolicy.objects.exists()


def test_own_configuration_works_and_a_second_policy_on_it_is_refused(upstream):
    mine = AssignmentConfigurationFactory(enterprise_customer_uuid=demo.CUSTOMER_UUID)
    created = operator_client().post(URL, assigned_body(mine.uuid), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["assignment_configuration"] == str(mine.uuid)
    again = operator_client().post(URL, assigned_body(mine.uuid), format="json")
    assert again.status_code == 400 and set(again.json()) == {"assignment_configuration"}
    assert SubsidyAccessPolicy.objects.count() == 1


def test_the_models_clean_refuses_another_customers_configuration():
    policy = AssignedPolicyFactory(**ASSIGNED)
    policy.assignment_configuration = AssignmentConfigurationFactory(enterprise_customer_uuid=demo.OTHER_CUSTOMER_UUID)
    with pytest.raises(ValidationError) as caught:
        policy.clean()
    assert "assignment_configuration" in caught.value.message_dict


@pytest.mark.parametrize("bad", ["5", '"abc"', '{"a": 1}', '["not-a-uuid"]'])
def test_the_admin_form_refuses_malformed_groups(upstream, client, bad):
    from django.urls import reverse

    from enterprise_access.apps.subsidy_access_policy.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    policy = PerLearnerEnrollmentPolicyFactory(**DEMO)
    url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk])
    form = client.get(url).context["adminform"].form
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
    data.update(enterprise_group_uuids=bad)
    response = client.post(url, data)
    assert response.status_code == 200 and "enterprise_group_uuids" in response.context["adminform"].form.errors
    policy.refresh_from_db()
    assert policy.enterprise_group_uuids == []


@pytest.mark.django_db(transaction=True, databases=["default", "independent"])
def test_the_finding_with_two_real_requests_at_once(upstream):
    """The finding's repro: A's subsidy change waits on a slow upstream; B switches the policy off meanwhile."""
    import time

    from enterprise_access.devtools.testing import run_concurrently

    policy = PerLearnerEnrollmentPolicyFactory(**DEMO, active=True)
    new_subsidy = demo.SUBSIDY_UUIDS["per_learner_spend"]
    upstream.control.set_latency(1500)

    def patch(delay, change):
        time.sleep(delay)  # B starts once A waits on upstream; if B came late, the final row is the same
        return operator_client().patch(f"{URL}{policy.uuid}/", change, format="json")

    try:
        response_a, response_b = run_concurrently(patch, [(0, {"subsidy_uuid": new_subsidy}),
                                                          (0.5, {"active": False})])
    finally:
        upstream.control.set_latency(0)
    assert (response_a.status_code, response_b.status_code) == (200, 200), (response_a.content, response_b.content)
    policy = SubsidyAccessPolicy.objects.get(pk=policy.pk)
    assert policy.active is False and str(policy.subsidy_uuid) == new_subsidy
    saved = {(active, str(subsidy)) for active, subsidy in policy.history.values_list("active", "subsidy_uuid")}
    assert {(False, DEMO["subsidy_uuid"]), (False, new_subsidy)} <= saved or \
        {(True, new_subsidy), (False, new_subsidy)} <= saved
