"""The policy model: types, validation and history."""
import pytest
from django.core.exceptions import ValidationError

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import (
    AssignedLearnerCreditAccessPolicy,
    PerLearnerEnrollmentCreditAccessPolicy,
    PerLearnerSpendCreditAccessPolicy,
    SubsidyAccessPolicy,
)

from .factories import (
    AssignedPolicyFactory,
    AssignmentConfigurationFactory,
    PerLearnerEnrollmentPolicyFactory,
    PerLearnerSpendPolicyFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("factory_class, expected_class", [
    (PerLearnerEnrollmentPolicyFactory, PerLearnerEnrollmentCreditAccessPolicy),
    (PerLearnerSpendPolicyFactory, PerLearnerSpendCreditAccessPolicy),
    (AssignedPolicyFactory, AssignedLearnerCreditAccessPolicy),
])
def test_loading_any_row_yields_its_type_class(factory_class, expected_class):
    policy = factory_class()
    assert policy.policy_type == expected_class.__name__
    loaded = SubsidyAccessPolicy.objects.get(uuid=policy.uuid)
    assert type(loaded) is expected_class
    assert [type(p) for p in SubsidyAccessPolicy.objects.filter(uuid=policy.uuid)] == [expected_class]


def test_proxy_managers_list_only_their_type():
    enrollment = PerLearnerEnrollmentPolicyFactory()
    spend = PerLearnerSpendPolicyFactory()
    assert list(PerLearnerEnrollmentCreditAccessPolicy.objects.all()) == [enrollment]
    assert list(PerLearnerSpendCreditAccessPolicy.objects.all()) == [spend]
    assert SubsidyAccessPolicy.objects.count() == 2


def test_saving_a_proxy_writes_history():
    policy = PerLearnerSpendPolicyFactory(spend_limit=500)
    policy.spend_limit = 700
    policy.save()
    rows = list(policy.history.order_by("history_date").values_list("spend_limit", flat=True))
    assert rows == [500, 700]
    assert policy.current_history_row().spend_limit == 700


@pytest.mark.parametrize("factory_class, changes, field, message", [
    (PerLearnerEnrollmentPolicyFactory, {"per_learner_spend_limit": 100}, "per_learner_spend_limit", "no per-learner spend"),
    (PerLearnerSpendPolicyFactory, {"per_learner_enrollment_limit": 3}, "per_learner_enrollment_limit", "no enrollment"),
    (PerLearnerSpendPolicyFactory, {"access_method": c.AccessMethods.ASSIGNED}, "access_method", "direct"),
    (AssignedPolicyFactory, {"assignment_configuration": None}, "assignment_configuration", "needs an assignment"),
    (AssignedPolicyFactory, {"spend_limit": None}, "spend_limit", "needs a spend limit"),
    (AssignedPolicyFactory, {"per_learner_spend_limit": 5}, "per_learner_spend_limit", "no per-learner limits"),
    (PerLearnerEnrollmentPolicyFactory, {"spend_limit": -1}, "spend_limit", "zero or more"),
])
def test_clean_rejects_impossible_combinations(factory_class, changes, field, message):
    policy = factory_class()
    for name, value in changes.items():
        setattr(policy, name, value)
    with pytest.raises(ValidationError) as caught:
        policy.clean()
    assert message in " ".join(caught.value.message_dict[field])


def test_clean_rejects_assignment_configuration_on_direct_policy():
    policy = PerLearnerEnrollmentPolicyFactory()
    policy.assignment_configuration = AssignmentConfigurationFactory()
    with pytest.raises(ValidationError) as caught:
        policy.clean()
    assert "assignment_configuration" in caught.value.message_dict


def test_valid_policies_pass_clean():
    for factory_class in (PerLearnerEnrollmentPolicyFactory, PerLearnerSpendPolicyFactory, AssignedPolicyFactory):
        factory_class().clean()


def test_base_class_with_type_saves_as_that_type():
    policy = SubsidyAccessPolicy(
        policy_type=c.PER_LEARNER_SPEND_CREDIT, enterprise_customer_uuid="c0ffee00-0000-4000-8000-000000000001",
        catalog_uuid="c0ffee00-0000-4000-8000-000000000002", subsidy_uuid="c0ffee00-0000-4000-8000-000000000003",
    )
    policy.save()
    assert type(policy) is PerLearnerSpendCreditAccessPolicy
