"""One factory per policy type, plus the records around them."""
from datetime import timedelta
from uuid import uuid4

import factory
from django.utils import timezone

from enterprise_access.apps.content_assignments.models import AssignmentConfiguration, LearnerContentAssignment
from enterprise_access.apps.core.models import User
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import (
    AssignedLearnerCreditAccessPolicy,
    AttemptOutcome,
    AttemptSource,
    ForcedPolicyRedemption,
    PerLearnerEnrollmentCreditAccessPolicy,
    PerLearnerSpendCreditAccessPolicy,
    RedemptionAttempt,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    lms_user_id = factory.Sequence(lambda n: 5000 + n)


class _PolicyFactory(factory.django.DjangoModelFactory):
    enterprise_customer_uuid = factory.LazyFunction(uuid4)
    catalog_uuid = factory.LazyFunction(uuid4)
    subsidy_uuid = factory.LazyFunction(uuid4)
    display_name = factory.Sequence(lambda n: f"Policy {n}")
    active = True
    spend_limit = 10_000_000


class PerLearnerEnrollmentPolicyFactory(_PolicyFactory):
    class Meta:
        model = PerLearnerEnrollmentCreditAccessPolicy

    per_learner_enrollment_limit = 5


class PerLearnerSpendPolicyFactory(_PolicyFactory):
    class Meta:
        model = PerLearnerSpendCreditAccessPolicy

    per_learner_spend_limit = 1_000_000


class AssignmentConfigurationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssignmentConfiguration

    enterprise_customer_uuid = factory.LazyFunction(uuid4)


class AssignedPolicyFactory(_PolicyFactory):
    class Meta:
        model = AssignedLearnerCreditAccessPolicy

    access_method = c.AccessMethods.ASSIGNED
    assignment_configuration = factory.SubFactory(
        AssignmentConfigurationFactory,
        enterprise_customer_uuid=factory.SelfAttribute("..enterprise_customer_uuid"),
    )


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LearnerContentAssignment

    assignment_configuration = factory.SubFactory(AssignmentConfigurationFactory)
    learner_email = factory.Sequence(lambda n: f"learner{n}@example.org")
    lms_user_id = factory.Sequence(lambda n: 7000 + n)
    content_key = "course-v1:DemoU+Cooking101+2T2026"
    content_quantity = -19900
    allocated_at = factory.LazyFunction(timezone.now)


class ForcedRedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ForcedPolicyRedemption

    subsidy_access_policy = factory.SubFactory(PerLearnerEnrollmentPolicyFactory)
    lms_user_id = 101
    course_run_key = "course-v1:DemoU+Cooking101+2T2026"
    # Only assigned policies take a price (their assignment's); the others pay the catalog price.
    content_price_cents = factory.LazyAttribute(
        lambda record: 19900 if record.subsidy_access_policy.assignment_configuration_id else None)
    wait_to_redeem = True


def later(days=30):
    return timezone.now() + timedelta(days=days)


class RedemptionAttemptFactory(factory.django.DjangoModelFactory):
    """An attempt row as the workflow leaves it; a redeemed one unless told otherwise."""

    class Meta:
        model = RedemptionAttempt

    policy_uuid = factory.LazyFunction(uuid4)
    enterprise_customer_uuid = factory.LazyFunction(uuid4)
    lms_user_id = factory.Sequence(lambda n: 9000 + n)
    content_key = "course-v1:DemoU+Cooking101+2T2026"
    source = AttemptSource.LEARNER_REDEEM_API
    outcome = AttemptOutcome.REDEEMED
    can_redeem = True
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda a: a.started_at + timedelta(milliseconds=40))
