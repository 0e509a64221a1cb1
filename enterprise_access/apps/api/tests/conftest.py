"""Policies of the demo world, created in the service's database for API tests."""
import pytest


@pytest.fixture
def make_policy(policy_world):
    """The suite-wide ``policy_world`` under the name the API tests use: ``make_policy("per_learner_spend", ...)``."""
    return policy_world


@pytest.fixture
def policy(make_policy):
    return make_policy()
