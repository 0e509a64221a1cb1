"""
Tenancy (issue 11; decision 0013): a policy spends only its own customer's subsidy, on its own customer's catalog.

The emulator's demo world has two customers: the demo customer (three subsidies and catalogs) and "Other Co"
(``demo.OTHER_*``: one subsidy, one catalog, learner 4242). Policies made with the factories skip the check, as rows
written before it existed did.
"""
import json
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, RedemptionAttempt, SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.redemption import CODE_SUBSIDY_NOT_THE_CUSTOMERS, redeem_policy
from enterprise_access.apps.subsidy_access_policy.tenancy import (
    TenancyCheckUnavailable,
    policy_tenancy_errors,
    subsidy_belongs_to_policy_customer,
)
from enterprise_access.devtools import demo

from .factories import PerLearnerEnrollmentPolicyFactory, UserFactory
from .test_history_who import post_change_form

pytestmark = pytest.mark.django_db

OWN = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "subsidy_uuid": demo.SUBSIDY_UUIDS["per_learner_enrollment"],
       "catalog_uuid": demo.CATALOG_UUIDS["per_learner_enrollment"]}
OTHERS = {"enterprise_customer_uuid": demo.OTHER_CUSTOMER_UUID, "subsidy_uuid": demo.OTHER_SUBSIDY_UUID,
          "catalog_uuid": demo.OTHER_CATALOG_UUID}


# ----- the check -----------------------------------------------------------------------------------------------

def test_a_customers_own_subsidy_and_catalog_pass(upstream):
    assert policy_tenancy_errors(**OWN) == {}
    assert policy_tenancy_errors(**OTHERS) == {}


def test_another_customers_subsidy_is_named(upstream):
    errors = policy_tenancy_errors(**{**OTHERS, "subsidy_uuid": OWN["subsidy_uuid"]})
    assert set(errors) == {"subsidy_uuid"}
    assert "belongs to another enterprise customer" in errors["subsidy_uuid"]


def test_another_customers_catalog_is_named(upstream):
    errors = policy_tenancy_errors(**{**OTHERS, "catalog_uuid": OWN["catalog_uuid"]})
    assert set(errors) == {"catalog_uuid"}
    assert "belongs to another enterprise customer" in errors["catalog_uuid"]


def test_unknown_subsidy_and_catalog_are_named(upstream):
    errors = policy_tenancy_errors(**{**OWN, "subsidy_uuid": str(uuid4()), "catalog_uuid": str(uuid4())})
    assert set(errors) == {"subsidy_uuid", "catalog_uuid"}
    assert "check the uuid" in errors["subsidy_uuid"] and "check the uuid" in errors["catalog_uuid"]


@pytest.mark.parametrize("service", ["subsidy", "catalog"])
@pytest.mark.parametrize("status", [503, 0])
def test_an_upstream_outage_is_unknown_not_a_verdict(upstream, service, status):
    upstream.control.add_fault(service, status=status)
    with pytest.raises(TenancyCheckUnavailable) as caught:
        policy_tenancy_errors(**OWN)
    assert caught.value.service == service


# ----- the redeem-time guard -----------------------------------------------------------------------------------

def _foreign_policy():
    """What the issue found: a policy of Other Co whose subsidy is the demo customer's."""
    return PerLearnerEnrollmentPolicyFactory(**{**OTHERS, "subsidy_uuid": OWN["subsidy_uuid"]})


def _subsidy_creates(upstream):
    return [r for r in upstream.control.requests(service="subsidy")
            if r["method"] == "POST" and "/admin/transactions/" in r["path"]]


@pytest.mark.django_db(transaction=True, databases=["default", "independent"])
def test_redeem_refuses_to_spend_another_customers_subsidy_and_records_why(upstream):
    policy = _foreign_policy()
    before = len(upstream.control.transactions(OWN["subsidy_uuid"]))
    result = redeem_policy(policy=policy, lms_user_id=demo.OTHER_LEARNER["lms_user_id"], content_key=upstream.run)
    assert result.outcome == AttemptOutcome.NOT_REDEEMABLE and result.reason == c.REASON_POLICY_MISCONFIGURED
    assert not _subsidy_creates(upstream)
    assert len(upstream.control.transactions(OWN["subsidy_uuid"])) == before
    attempt = RedemptionAttempt.objects.get(uuid=result.attempt_uuid)
    assert (attempt.outcome, attempt.reason, attempt.error_code) == (
        AttemptOutcome.NOT_REDEEMABLE, c.REASON_POLICY_MISCONFIGURED, CODE_SUBSIDY_NOT_THE_CUSTOMERS)
    assert str(policy.subsidy_uuid) in attempt.error_message  # staff see which subsidy


@pytest.mark.django_db(transaction=True, databases=["default", "independent"])
def test_the_learner_is_told_in_the_services_words(upstream):
    from enterprise_access.apps.api.tests.helpers import client_for, learner_role, redeem_url

    policy = _foreign_policy()
    learner = demo.OTHER_LEARNER["lms_user_id"]
    response = client_for(learner, [learner_role(demo.OTHER_CUSTOMER_UUID)]).post(
        redeem_url(policy.uuid), {"lms_user_id": learner, "content_key": upstream.run}, format="json")
    assert response.status_code == 422, response.content
    entry = response.json()["detail"][0]
    assert entry["reason"] == c.REASON_POLICY_MISCONFIGURED
    assert "setup problem" in entry["user_message"]
    assert str(policy.subsidy_uuid) not in json.dumps(response.json())
    assert not _subsidy_creates(upstream)


def test_the_guard_passes_a_customers_own_subsidy_and_caches_the_answer(upstream):
    policy = PerLearnerEnrollmentPolicyFactory(**OWN)
    assert subsidy_belongs_to_policy_customer(policy)
    upstream.control.add_fault("subsidy", status=503)
    assert subsidy_belongs_to_policy_customer(policy)  # the subsidy's customer never changes: cached


def test_the_guard_does_not_decide_when_the_subsidy_service_is_down(upstream):
    from enterprise_access.apps.api_client import UpstreamAPIError

    upstream.control.add_fault("subsidy", status=503)
    with pytest.raises(UpstreamAPIError):
        subsidy_belongs_to_policy_customer(_foreign_policy())


# ----- Django admin ----------------------------------------------------------------------------------------------

ADD = "admin:subsidy_access_policy_subsidyaccesspolicy_add"


def _add_form(**fields):
    data = {"policy_type": c.PER_LEARNER_ENROLLMENT_CREDIT, "display_name": "From admin", "description": "",
            "active": "on", "access_method": c.AccessMethods.DIRECT, "enterprise_group_uuids": "[]",
            "spend_limit": "100000", "per_learner_enrollment_limit": "3", **OWN}
    data.update(fields)
    return data


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_add_saves_a_policy_on_its_own_customers_subsidy(upstream, superuser_client):
    response = superuser_client.post(reverse(ADD), _add_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert SubsidyAccessPolicy.objects.get().display_name == "From admin"


@pytest.mark.parametrize("field", ["subsidy_uuid", "catalog_uuid"])
def test_admin_add_refuses_another_customers_subsidy_or_catalog(upstream, superuser_client, field):
    foreign = {"subsidy_uuid": demo.OTHER_SUBSIDY_UUID, "catalog_uuid": demo.OTHER_CATALOG_UUID}[field]
    response = superuser_client.post(reverse(ADD), _add_form(**{field: foreign}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {field} and "belongs to another enterprise customer" in errors[field][0]
    assert not SubsidyAccessPolicy.objects.exists()


def test_admin_add_saves_nothing_when_an_upstream_cannot_answer(upstream, superuser_client):
    upstream.control.add_fault("catalog", status=503)
    response = superuser_client.post(reverse(ADD), _add_form())
    assert response.status_code == 200
    assert "could not be reached" in str(response.context["adminform"].form.non_field_errors())
    assert not SubsidyAccessPolicy.objects.exists()


def test_admin_change_to_another_customers_subsidy_is_refused(upstream, superuser_client):
    policy = PerLearnerEnrollmentPolicyFactory(**OWN)
    url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk])
    form = superuser_client.get(url).context["adminform"].form
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
    data.update(subsidy_uuid=demo.OTHER_SUBSIDY_UUID, enterprise_group_uuids="[]")
    response = superuser_client.post(url, data)
    assert response.status_code == 200 and "subsidy_uuid" in response.context["adminform"].form.errors
    policy.refresh_from_db()
    assert str(policy.subsidy_uuid) == OWN["subsidy_uuid"]


def test_admin_edit_that_leaves_the_tenancy_alone_works_while_upstreams_are_down(upstream, superuser_client):
    policy = PerLearnerEnrollmentPolicyFactory(**OWN)
    upstream.control.add_fault("subsidy", status=503)
    upstream.control.add_fault("catalog", status=503)
    url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk])
    post_change_form(superuser_client, url, display_name="Renamed while down", active="", enterprise_group_uuids="[]")
    policy.refresh_from_db()
    assert policy.display_name == "Renamed while down" and not policy.active


# ----- the management command ------------------------------------------------------------------------------------

def _run_command(*args):
    out = StringIO()
    try:
        call_command("check_policy_tenancy", *args, stdout=out)
    except CommandError as failed:
        return failed.returncode, out.getvalue()
    return 0, out.getvalue()


def test_the_command_passes_when_every_policy_is_its_customers(upstream):
    PerLearnerEnrollmentPolicyFactory(**OWN)
    PerLearnerEnrollmentPolicyFactory(**OTHERS)
    status, out = _run_command()
    assert status == 0 and "2 policies checked: 0 failing, 0 unchecked." in out


def test_the_command_lists_failing_policies_and_exits_1(upstream):
    PerLearnerEnrollmentPolicyFactory(**OWN)
    bad = _foreign_policy()
    status, out = _run_command()
    assert status == 1
    assert f"FAIL {bad.uuid}" in out and "subsidy_uuid:" in out


def test_the_command_json(upstream):
    good = PerLearnerEnrollmentPolicyFactory(**OWN)
    bad = PerLearnerEnrollmentPolicyFactory(**{**OWN, "catalog_uuid": demo.OTHER_CATALOG_UUID})
    status, out = _run_command("--json")
    report = json.loads(out)
    assert status == 1 and report["checked"] == 2 and report["unchecked"] == []
    assert [(entry["policy_uuid"], set(entry["errors"])) for entry in report["failing"]] == [
        (str(bad.uuid), {"catalog_uuid"})]
    assert str(good.uuid) not in out
    status, out = _run_command("--json", "--customer", demo.OTHER_CUSTOMER_UUID)
    assert status == 0 and json.loads(out)["checked"] == 0


def test_the_command_exits_2_when_it_could_not_check(upstream):
    PerLearnerEnrollmentPolicyFactory(**OWN)
    upstream.control.add_fault("subsidy", status=503)
    status, out = _run_command("--json")
    assert status == 2 and len(json.loads(out)["unchecked"]) == 1


def test_the_command_refuses_a_malformed_customer():
    with pytest.raises(CommandError, match="--customer"):
        call_command("check_policy_tenancy", "--customer", "nope", stdout=StringIO())
