"""The choice classes are Django TextChoices whose stored values never change (rows and API clients hold them)."""
import pytest
from django.db import models

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt

STORED_VALUES = {
    c.PolicyType: ["PerLearnerEnrollmentCreditAccessPolicy", "PerLearnerSpendCreditAccessPolicy",
                   "AssignedLearnerCreditAccessPolicy"],
    c.AccessMethods: ["direct", "assigned"],
    AttemptSource: ["learner_redeem_api", "forced_redemption", "operator_api"],
    AttemptOutcome: ["in_progress", "redeemed", "not_redeemable", "subsidy_refused", "policy_busy",
                     "upstream_unavailable", "unexpected_error", "uncertain"],
    AssignmentState: ["allocated", "accepted", "cancelled", "errored", "expired", "reversed"],
}


@pytest.mark.parametrize("choices", list(STORED_VALUES), ids=lambda cls: cls.__name__)
def test_choice_classes_are_text_choices_with_unchanged_values(choices):
    assert issubclass(choices, models.TextChoices)
    assert choices.values == STORED_VALUES[choices]
    assert choices.CHOICES == tuple(choices.choices)  # the tuple form fields and filters read


def test_members_compare_and_serialize_as_their_stored_string():
    assert AttemptOutcome.REDEEMED == "redeemed"
    assert f"{AttemptOutcome.REDEEMED}" == "redeemed"
    assert c.PER_LEARNER_SPEND_CREDIT == c.PolicyType.PER_LEARNER_SPEND_CREDIT == "PerLearnerSpendCreditAccessPolicy"
    assert dict(c.POLICY_TYPE_CHOICES)[c.ASSIGNED_LEARNER_CREDIT] == "Assigned learner credit"
    assert AttemptOutcome.UPSTREAM_UNAVAILABLE.label.startswith("Upstream unavailable")


def test_outcomes_and_sources_have_one_definition():
    from enterprise_access.apps.subsidy_access_policy.models import attempt

    assert attempt.AttemptOutcome is c.AttemptOutcome and attempt.AttemptSource is c.AttemptSource
    assert RedemptionAttempt._meta.get_field("outcome").choices == list(AttemptOutcome.choices)


def test_reallocatable_states_are_not_states_themselves():
    assert AssignmentState.REALLOCATABLE == ("cancelled", "errored", "expired", "reversed")
    assert len(AssignmentState) == 6
