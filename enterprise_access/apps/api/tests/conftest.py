"""Policies of the demo world, created in the service's database for API tests."""
import pytest

from enterprise_access.apps.subsidy_access_policy.tests.factories import (
    PerLearnerEnrollmentPolicyFactory,
    PerLearnerSpendPolicyFactory,
)
from enterprise_access.devtools import demo


@pytest.fixture
def make_policy(upstream):
    """A direct policy on the demo customer, subsidy and catalog; override fields as needed."""
    def make(kind="per_learner_enrollment", **fields):
        factory = PerLearnerSpendPolicyFactory if kind == "per_learner_spend" else PerLearnerEnrollmentPolicyFactory
        return factory(enterprise_customer_uuid=demo.CUSTOMER_UUID, subsidy_uuid=demo.SUBSIDY_UUIDS[kind],
                       catalog_uuid=demo.CATALOG_UUIDS[kind], **fields)
    return make


@pytest.fixture
def policy(make_policy):
    return make_policy()
